"""Checkpointing on one rank: write ``num_checkpoints_write`` checkpoints, then read
``num_checkpoints_read`` of them back (the latest), verifying every shard.

Between writing and reading, the page cache of the shards is dropped (``evict_cache``) and the
drop is verified (no page of a shard left in memory: ``resident_pages``); where it did not work
on local files, they are read through O_DIRECT instead; where neither is possible, the result
says reads may come from memory. A root on tmpfs or ramfs has nothing to drop: its files are
memory (state ``memory``). S3 clients keep no cache (``no-client-cache``); the server's is not
ours to drop. When fewer processes run than the layout has ranks, process p writes and reads
the shards of layout ranks p, p + N, ...

A shard that cannot be read back as written ends the reading on every rank (collectively, so no
rank waits for another); the rank's result keeps the figures measured before, with
``read_errors`` naming the shard.

Also the checkpoint hook of a training run (``checkpoint_hook``): one checkpoint per call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from ..storage import Storage
from ..storage.base import join_key
from ..storage.registry import storage_at
from .checkpoint_io import CheckpointError, CheckpointIO, checkpoint_name
from .checkpoint_layout import CheckpointLayout, layout_for
from .comm import Comm
from .config import WorkloadConfig
from .page_cache import CACHE_STATES, CacheState, drop_cache


def checkpoint_folder(config: WorkloadConfig) -> str:
    """checkpoint.checkpoint_folder as a key prefix ('./checkpoints/x/' -> 'checkpoints/x')."""
    parts = [p for p in config.checkpoint.checkpoint_folder.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"checkpoint.checkpoint_folder {config.checkpoint.checkpoint_folder!r} may not use '..'")
    return "/".join(parts) or "checkpoints"


def planned_counts(config: WorkloadConfig) -> tuple[int, int]:
    """(checkpoints to write, to read): DLIO's -1 means one write and no read."""
    ck = config.checkpoint
    writes = ck.num_checkpoints_write if ck.num_checkpoints_write >= 0 else 1
    reads = ck.num_checkpoints_read if ck.num_checkpoints_read >= 0 else 0
    return writes, min(reads, writes)


class RankCheckpointer:
    """Writes (and reads) this rank's shards of each checkpoint; rank 0 commits the manifest."""

    def __init__(self, config: WorkloadConfig, storage: Storage, comm: Comm, *, layout: CheckpointLayout,
                 seed: int):
        self.config = config
        self.storage = storage
        self.comm = comm
        self.layout = layout
        self.subset = config.checkpoint.mode == "subset"
        self.mine = layout.assign(comm.size, subset=self.subset)[comm.rank]
        self.folder = checkpoint_folder(config)
        ck = config.checkpoint
        self.io = CheckpointIO(storage, seed=seed, fsync=ck.fsync, randomize=ck.randomize_tensor)
        self.written: list[str] = []
        #: this rank's clock origin: writes record when they started and ended against it
        self.origin = time.perf_counter()

    def write(self, index: int, epoch: int, step: int) -> dict[str, Any]:
        """Write checkpoint ``index`` on every rank (collective). Returns this rank's figures."""
        folder = join_key(self.folder, checkpoint_name(epoch, step))
        if self.comm.rank == 0:
            # the folder name repeats from run to run: a manifest left from an earlier run would
            # make a failed rewrite over it look complete
            self.io.remove_manifest(folder)
        self.comm.barrier()
        start = time.perf_counter()
        entries = [self.io.write_shard(folder, index, shard) for shard in self.mine]
        if self.config.checkpoint.rank_sync:
            self.comm.barrier()  # the checkpoint ends when the slowest rank is done
        end = time.perf_counter()
        seconds = end - start
        gathered = self.comm.gather([e.to_dict() for e in entries], root=0)
        if gathered is not None:  # rank 0, the root: every rank's entries
            self.io.write_manifest(folder, [e for part in gathered for e in part], {
                "checkpoint": index, "epoch": epoch, "step": step, "layout": self.layout.to_dict(),
                "processes": self.comm.size})
        self.comm.barrier()  # committed (manifest written) before anyone goes on
        self.written.append(folder)
        return {"index": index, "folder": folder, "seconds": seconds, "bytes": sum(e.size for e in entries),
                "shards": len(entries), "started": start - self.origin, "ended": end - self.origin}

    def read(self, folder: str, io: CheckpointIO | None = None) -> dict[str, Any]:
        """Read this rank's shards of the checkpoint in ``folder`` back, verified (collective).
        ``errors``: {rank: message} of every rank that found a shard not as written."""
        io = io or self.io
        manifest = io.read_manifest(folder)
        mine = [e for e in manifest["shards"] if e["rank"] % self.comm.size == self.comm.rank]
        self.comm.barrier()
        start = time.perf_counter()
        total = 0
        error = None
        for entry in mine:
            try:
                got, _ = io.read_shard(folder, entry)
            except CheckpointError as exc:
                error = str(exc)
                break
            total += got
        seconds = time.perf_counter() - start
        # every rank learns of every failure (and waits for the slowest, as a barrier would)
        errors = {r: e for r, e in enumerate(self.comm.allgather(error)) if e}
        return {"folder": folder, "seconds": seconds, "bytes": total, "shards": len(mine), "errors": errors}

    def shard_keys(self, folders: list[str]) -> list[str]:
        return [join_key(f, s.name) for f in folders for s in self.mine]


def run_checkpoint_rank(job: dict[str, Any], config: WorkloadConfig, comm: Comm, *,
                        progress: Callable[[str], None] | None = None, storage: Storage | None = None,
                        environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Checkpoint-only run of one rank: the writes, the cache drop, the reads."""
    from .dlio_output import host_info

    note = progress or (lambda text: None)
    if storage is None:
        storage = storage_at(job["storage"], job.get("prefix", ""), environ=environ)
    layout = layout_for(config, processes=job.get("layout_processes") or comm.size, scale=job["scale"])
    ckpt = RankCheckpointer(config, storage, comm, layout=layout, seed=job["seed"])
    writes_planned, reads_planned = planned_counts(config)
    pause = config.checkpoint.time_between_checkpoints
    writes = []
    for i in range(writes_planned):
        paused = 0.0
        if i and pause > 0:
            note(f"pause before checkpoint {i + 1}")
            before = time.perf_counter()
            time.sleep(pause)  # the training steps between two checkpoints
            paused = time.perf_counter() - before
        note(f"writing checkpoint {i + 1}/{writes_planned}")
        writes.append({**ckpt.write(i, epoch=1, step=i + 1), "paused_before": paused})
    to_read = ckpt.written[len(ckpt.written) - reads_planned:] if reads_planned else []
    cache = CacheState("none")
    reader_io = ckpt.io
    if to_read:
        note("dropping the page cache of the shards")
        cache = drop_cache(storage, ckpt.shard_keys(to_read))
        if cache.reader is not None:
            reader_io = CheckpointIO(cache.reader, seed=job["seed"], fsync=False)
        cache.state = _agree(comm, cache.state)
    reads = []
    read_errors = []
    for n, folder in enumerate(to_read):
        note(f"reading checkpoint {n + 1}/{len(to_read)}")
        done = ckpt.read(folder, reader_io)
        errors = done.pop("errors")
        if errors:  # the same on every rank: all stop here
            read_errors = [{"rank": r, "checkpoint": folder, "message": m} for r, m in sorted(errors.items())]
            break
        reads.append(done)
    result = {"rank": comm.rank, "ranks": comm.size, "writes": writes, "reads": reads, "cache": cache.state,
              "cache_detail": cache.detail(), "read_errors": read_errors,
              "shards": [s.name for s in ckpt.mine], "host": host_info()}
    if comm.rank == 0:
        result["layout"] = layout.to_dict()
        result["folders"] = ckpt.written
    return result


def _agree(comm: Comm, cache: str) -> str:
    """The weakest cache state over the ranks (e.g. 'none' if any rank could not drop its cache)."""
    states = comm.allgather(cache)
    for state in CACHE_STATES:
        if state in states:
            return state
    return cache


def checkpoint_hook(config: WorkloadConfig, storage: Storage, comm: Comm, *, scale: float, seed: int,
                    layout_processes: int | None = None) -> Callable[[int, int], dict[str, Any]]:
    """For the training loop: write one checkpoint per call; returns this rank's figures."""
    layout = layout_for(config, processes=layout_processes or comm.size, scale=scale)
    ckpt = RankCheckpointer(config, storage, comm, layout=layout, seed=seed)
    count = [0]

    def write(epoch: int, step: int) -> dict[str, Any]:
        figures = ckpt.write(count[0], epoch, step)
        count[0] += 1
        return figures

    write.checkpointer = ckpt  # type: ignore[attr-defined]
    return write
