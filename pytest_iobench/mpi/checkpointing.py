"""A checkpoint run from start to end: launch the ranks, reduce per checkpoint, say what the
figures mean; and a test's measurement of it, with warm-ups and repeats.

    outcome = run_checkpoint_session(session, config, scratch_storage, ranks=2, scale=1/1000)
    outcome.write_seconds, outcome.write_bytes_per_second, outcome.warnings
    measure_checkpoints(record, lambda: run_checkpoint_session(...), config)   # in a test

A checkpoint's write (read) duration is the longest rank's; its throughput is the
checkpoint's bytes over that duration (GB = 10^9, GiB = 2^30). A *run* writes
num_checkpoints_write checkpoints and reads num_checkpoints_read back; its figure is the mean
over its checkpoints (DLIO's save/load_checkpoint_io_mean_GB_per_second). --iobench-warmup and
--iobench-repeat repeat whole runs: the reported value is the median over the counted runs.
"""

from __future__ import annotations

import secrets
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from ..storage import Storage
from ..workload.checkpoint_io import CheckpointError
from ..workload.checkpoint_layout import layout_for
from ..workload.checkpoint_run import planned_counts
from ..workload.config import WorkloadConfig
from ..workload.job import checkpoint_job
from ..workload.metrics import GB, GiB
from ..workload.page_cache import CACHE_STATES
from .recorder import Recorder
from .session import MPISession, SessionRun
from .storage_ops import record_rank_ops


@dataclass
class CheckpointOutcome:
    config: WorkloadConfig
    ranks: int
    storage_id: str
    scale: float
    layout: dict[str, Any]
    results: list[dict[str, Any]]
    run: SessionRun | None
    #: per checkpoint: the longest rank's seconds, and the bytes every rank wrote (read)
    write_seconds: list[float] = field(default_factory=list)
    write_bytes: list[int] = field(default_factory=list)
    read_seconds: list[float] = field(default_factory=list)
    read_bytes: list[int] = field(default_factory=list)
    cache: str = "none"
    warnings: list[str] = field(default_factory=list)
    #: what the storage does with checkpoint.fsync (True/False, or "not applicable" on S3)
    fsync: bool | str = False
    #: {rank, checkpoint, message} of every shard that could not be read back as written
    read_errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def size_bytes(self) -> int:
        """Bytes of one checkpoint as written (the layout's size; less in subset mode)."""
        return self.write_bytes[0] if self.write_bytes else self.layout["size_bytes"]

    @staticmethod
    def _rate(bytes_: list[int], seconds: list[float]) -> list[float]:
        return [b / s if s > 0 else 0.0 for b, s in zip(bytes_, seconds)]

    @property
    def write_bytes_per_second(self) -> list[float]:
        return self._rate(self.write_bytes, self.write_seconds)

    @property
    def read_bytes_per_second(self) -> list[float]:
        return self._rate(self.read_bytes, self.read_seconds)

    def figures(self) -> dict[str, float]:
        """This run's metrics: per phase measured, the mean over its checkpoints."""
        values = {}
        for phase, seconds, rates in (("write", self.write_seconds, self.write_bytes_per_second),
                                      ("read", self.read_seconds, self.read_bytes_per_second)):
            if seconds:
                values[f"checkpoint_{phase}_seconds"] = statistics.fmean(seconds)
                values[f"checkpoint_{phase}_GB_per_second"] = statistics.fmean(rates) / GB
                values[f"checkpoint_{phase}_GiB_per_second"] = statistics.fmean(rates) / GiB
        return values


class CheckpointReadFailed(CheckpointError):
    """A shard could not be read back as written. ``outcome`` holds what the run measured before
    (its writes, the reads that completed); ``measured`` its figures, for TestRecord.measure."""

    def __init__(self, message: str, outcome: CheckpointOutcome):
        super().__init__(message)
        self.outcome = outcome
        self.measured = outcome.figures()


def checkpoint_units(config: WorkloadConfig) -> dict[str, tuple[str, str]]:
    """The metrics a run of ``config`` measures, with (unit, direction)."""
    writes, reads = planned_counts(config)
    units = {}
    for phase, count in (("write", writes), ("read", reads)):
        if count:
            units[f"checkpoint_{phase}_seconds"] = ("s", "lower")
            units[f"checkpoint_{phase}_GB_per_second"] = ("GB/s", "higher")
            units[f"checkpoint_{phase}_GiB_per_second"] = ("GiB/s", "higher")
    return units


def run_checkpoint_session(session: MPISession, config: WorkloadConfig, storage: Storage, *, ranks: int,
                           prefix: str = "", scale: float = 1.0, seed: int | None = None) -> CheckpointOutcome:
    """Write and read back ``config``'s checkpoints on ``ranks`` ranks under ``prefix``.
    A shard not read back as written raises CheckpointReadFailed, naming it (and its rank)."""
    if storage.spec is None:
        raise ValueError(f"{storage!r} has no spec: open it with open_storage so ranks can open it too")
    seed = secrets.randbits(31) if seed is None else seed
    layout = layout_for(config, processes=ranks, scale=scale)  # errors here, before launching
    job = checkpoint_job(config, storage.spec, prefix, scale=scale, seed=seed)
    run = session.run(job, ranks, storage=storage if not prefix else None)
    results = run.results
    outcome = CheckpointOutcome(config, ranks, storage.id, scale, layout.to_dict(), results, run)
    for i in range(len(results[0]["writes"])):
        outcome.write_seconds.append(max(r["writes"][i]["seconds"] for r in results))
        outcome.write_bytes.append(sum(r["writes"][i]["bytes"] for r in results))
    for i in range(len(results[0]["reads"])):
        outcome.read_seconds.append(max(r["reads"][i]["seconds"] for r in results))
        outcome.read_bytes.append(sum(r["reads"][i]["bytes"] for r in results))
    outcome.cache = results[0]["cache"]
    outcome.fsync = "not applicable" if storage.kind == "s3" else config.checkpoint.fsync
    outcome.read_errors = results[0].get("read_errors", [])
    outcome.warnings = checkpoint_warnings(config, outcome, layout.ranks, storage)
    if outcome.read_errors:
        first = outcome.read_errors[0]
        who = f"rank {first['rank']} of {ranks}: " if ranks > 1 else ""
        others = f" ({len(outcome.read_errors) - 1} more ranks failed too)" if len(outcome.read_errors) > 1 else ""
        raise CheckpointReadFailed(f"{who}{first['message']}{others}", outcome)
    return outcome


def checkpoint_warnings(config: WorkloadConfig, outcome: CheckpointOutcome, layout_ranks: int,
                        storage: Storage | None = None) -> list[str]:
    warnings = []
    if outcome.scale != 1:
        frac = Fraction(outcome.scale).limit_denominator(10**9)
        warnings.append(f"scaled run: every shard is {frac} of its full size "
                        f"({outcome.size_bytes / GB:.3g} GB of {outcome.layout['full_size_bytes'] / GB:.4g} GB "
                        "per checkpoint); --iobench-scale=1 writes the full model")
    if layout_ranks != outcome.ranks:
        who = "1 process wrote and read it" if outcome.ranks == 1 else (
            f"{outcome.ranks} processes wrote and read it (process p took layout ranks p, p+{outcome.ranks}, ...)")
        warnings.append(f"the layout is computed for the model's {layout_ranks} ranks; {who}")
    if config.checkpoint.mode == "subset" and outcome.size_bytes < outcome.layout["size_bytes"]:
        warnings.append(f"checkpoint.mode: subset: only the shards of layout ranks 0-{outcome.ranks - 1} are written "
                        f"({outcome.size_bytes:,} of {outcome.layout['size_bytes']:,} bytes per checkpoint)")
    warnings.extend(_cache_warnings(outcome))
    if storage is not None:
        warnings.extend(storage.write_notes(config.checkpoint.fsync, "checkpoint.fsync"))
    if config.not_emulated:
        warnings.append(config.describe_not_emulated())
    warnings.extend(config.notes)
    return warnings


def _cache_warnings(outcome: CheckpointOutcome) -> list[str]:
    """What the cache state between write and read means for the read figures."""
    if not outcome.read_seconds and not outcome.read_errors:
        return []
    notes = sorted({d["note"] for r in outcome.results for d in [r.get("cache_detail") or {}] if d.get("note")})
    why = f" ({'; '.join(notes)})" if notes else ""
    if outcome.cache == "memory":
        return [f"the checkpoint is on a file system in memory: every read came from memory, not from a device{why}"]
    if outcome.cache == "none":
        return ["the page cache of the shards could not be dropped and O_DIRECT was not possible: "
                f"reads may have come from memory, not the storage{why}"]
    if outcome.cache == "odirect" and any((r.get("cache_detail") or {}).get("resident_pages") for r in outcome.results):
        return [f"dropping the page cache did not work; the shards were read through O_DIRECT instead{why}"]
    if outcome.cache == "no-client-cache":
        return ["S3: the client keeps no cache, nothing to drop between write and read; the server may serve "
                "the reads from its own cache, which is not ours to drop"]
    return []


def measure_checkpoints(record: Recorder, run: Callable[[], CheckpointOutcome],
                        config: WorkloadConfig) -> list[CheckpointOutcome]:
    """Measure checkpoint runs through ``record.measure`` (TestRecord): --iobench-warmup runs
    (recorded, not counted), then --iobench-repeat runs, each a whole write + read session
    (``run``); then ``record_checkpoint``. A run whose read fails (CheckpointReadFailed) still
    has its write figures recorded before the error goes on."""
    outcomes: list[CheckpointOutcome] = []

    def once() -> dict[str, float]:
        try:
            outcome = run()
        except CheckpointReadFailed as exc:
            outcomes.append(exc.outcome)
            raise
        outcomes.append(outcome)
        return outcome.figures()

    try:
        record.measure(once, checkpoint_units(config))
    finally:
        if outcomes:
            record_checkpoint(record, outcomes, warmups=record.warmups)
    return outcomes


def record_checkpoint(record: Recorder, outcomes: CheckpointOutcome | list[CheckpointOutcome],
                      warmups: int = 0) -> None:
    """Put checkpoint runs into a test's result record (report.record.TestRecord): sizes,
    warnings and details (every run's per-checkpoint and per-rank figures). The first
    ``warmups`` runs are warm-ups. A single outcome given alone also gets its metrics (the
    mean over its checkpoints); through ``measure_checkpoints``, ``measure`` records them."""
    single = isinstance(outcomes, CheckpointOutcome)
    runs = [outcomes] if isinstance(outcomes, CheckpointOutcome) else list(outcomes)
    last = runs[-1]
    config = last.config
    record.kind = "checkpoint"
    record.params.setdefault("workload", config.name)
    record.params.setdefault("ranks", last.ranks)
    record.params.setdefault("scale", last.scale)
    record.metric("checkpoint_size_GB", last.size_bytes / GB, "GB", "none")
    record.metric("checkpoint_size_GiB", last.size_bytes / GiB, "GiB", "none")
    if single:
        units = checkpoint_units(config)
        for name, value in last.figures().items():
            record.metric(name, value, *units[name])
    for outcome in runs:
        for warning in outcome.warnings:
            record.warn(warning)
    states = [o.cache for o in runs]
    record.details["checkpoint"] = {
        "workload": config.name,
        "source": config.source,
        "overrides": config.overrides,
        "storage": last.storage_id,
        "processes": last.ranks,
        "layout": last.layout,
        "fsync": last.fsync,
        **({"fsync_note": "S3 has no fsync: an object is durable once its upload completes"}
           if last.fsync == "not applicable" else {}),
        "cache_between_write_and_read": min(states, key=CACHE_STATES.index),
        "metric_of_a_run": "the mean over its checkpoints; the reported value is the median over the counted runs",
        "runs": [_run_details(o, warmup=i < warmups) for i, o in enumerate(runs)],
    }
    record_rank_ops(record, runs)


def _run_details(outcome: CheckpointOutcome, *, warmup: bool) -> dict[str, Any]:
    return {
        "warmup": warmup,
        "cache": outcome.cache,
        "write_seconds": outcome.write_seconds,
        "write_bytes": outcome.write_bytes,
        "read_seconds": outcome.read_seconds,
        "read_bytes": outcome.read_bytes,
        "read_errors": outcome.read_errors,
        "per_rank": [{"rank": r["rank"], "shards": len(r["shards"]),
                      "write_seconds": [w["seconds"] for w in r["writes"]],
                      "write_bytes": [w["bytes"] for w in r["writes"]],
                      "paused_before_write": [w.get("paused_before", 0.0) for w in r["writes"]],
                      "read_seconds": [x["seconds"] for x in r["reads"]],
                      "read_bytes": [x["bytes"] for x in r["reads"]],
                      "cache": r.get("cache_detail")} for r in outcome.results],
    }
