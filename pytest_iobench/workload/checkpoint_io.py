"""Writing and reading checkpoint shards through the storage layer.

A checkpoint is a folder of shards plus ``manifest.json``, written last by rank 0 once every
rank has committed its shards: the manifest is the commit marker. A checkpoint without one is
incomplete (a write failed) and is never read as a checkpoint. The manifest lists every
shard with its size and CRC32C, computed while the shard was streamed.

Shard content comes from the seeded random source: a function of (seed, checkpoint, shard)
with ``randomize_tensor`` (DLIO's default), of (seed, shard) without it (every checkpoint the
same bytes, as a deduplicating store would like). Shards stream through the storage's
writer (multipart on S3) from one reused buffer: memory does not grow with shard size.
Reads take each shard whole and check its size and CRC32C against the manifest.

Whether a read can come from the page cache is checked, not assumed, by the storage layer:
``storage.posix.resident_pages`` counts the pages of a file that are in memory, and
``storage.posix.memory_file_system`` tells a tmpfs or ramfs root (the files are memory, there is
no cache to drop).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import crc32c
import numpy as np

from ..data.random import RandomStream, stream_for
from ..storage import Storage, StorageNotFound
from ..storage.base import join_key
from .checkpoint_layout import Shard

MANIFEST = "manifest.json"
#: write buffer: large pieces, few calls
WRITE_BUFFER = 8 << 20
#: shards larger than this are read in ranges of this size (bounded memory)
READ_PIECE = 64 << 20


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read back as written; the message names the shard."""


class CheckpointIncomplete(CheckpointError):
    """The checkpoint has no manifest: its write did not complete."""


def checkpoint_name(epoch: int, step: int) -> str:
    """DLIO's folder name for a checkpoint."""
    return f"global_epoch{epoch}_step{step}"


@dataclass
class ShardWritten:
    name: str
    size: int
    crc32c: int
    seconds: float
    rank: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "crc32c": self.crc32c, "rank": self.rank}


class CheckpointIO:
    def __init__(self, storage: Storage, *, seed: int, fsync: bool, randomize: bool = True):
        self.storage = storage
        self.seed = seed
        self.fsync = fsync
        self.randomize = randomize
        self._buffer = np.empty(WRITE_BUFFER, dtype=np.uint8)

    def _stream(self, index: int, shard: Shard) -> RandomStream:
        path = (index, shard.name) if self.randomize else (shard.name,)
        return stream_for(self.seed, "checkpoint", *path, limit=shard.size)

    def write_shard(self, folder: str, index: int, shard: Shard) -> ShardWritten:
        """Stream one shard; it appears under its key only once whole (atomic commit)."""
        key = join_key(folder, shard.name)
        stream = self._stream(index, shard)
        crc = 0
        left = shard.size
        view = self._buffer.data  # the array's bytes as a memoryview
        start = time.perf_counter()
        with self.storage.open_writer(key, fsync=self.fsync) as writer:
            while left:
                n = min(left, len(view))
                piece = view[:n]
                stream.readinto(piece)
                crc = crc32c.crc32c(piece, crc)
                writer.write(piece)
                left -= n
        return ShardWritten(shard.name, shard.size, crc, time.perf_counter() - start, shard.rank)

    def write_manifest(self, folder: str, entries: list[dict[str, Any]], info: dict[str, Any]) -> None:
        manifest = {"format": "pytest-iobench checkpoint 1", **info,
                    "shards": sorted(entries, key=lambda e: e["name"])}
        data = json.dumps(manifest, indent=1).encode()
        with self.storage.open_writer(join_key(folder, MANIFEST), fsync=self.fsync) as writer:
            writer.write(data)

    def remove_manifest(self, folder: str) -> None:
        """Uncommit the checkpoint in ``folder`` (no error when it has no manifest)."""
        self.storage.delete(join_key(folder, MANIFEST))

    def read_manifest(self, folder: str) -> dict[str, Any]:
        try:
            data = self.storage.get(join_key(folder, MANIFEST))
        except StorageNotFound:
            raise CheckpointIncomplete(
                f"checkpoint {folder} has no {MANIFEST}: its write did not complete, it is not a checkpoint"
            ) from None
        manifest: dict[str, Any] = json.loads(bytes(data))  # written by write_manifest
        return manifest

    def read_shard(self, folder: str, entry: dict[str, Any]) -> tuple[int, float]:
        """Read a shard whole and check it; returns (bytes read, seconds)."""
        key = join_key(folder, entry["name"])
        size = entry["size"]
        start = time.perf_counter()
        crc = 0
        got = 0
        try:
            if size <= READ_PIECE:
                data = self.storage.get(key)
                got = memoryview(data).nbytes
                crc = crc32c.crc32c(data)
            else:
                while got < size + 1:  # one byte past the end: a longer shard is found too
                    data = self.storage.get_range(key, got, min(READ_PIECE, size + 1 - got))
                    n = memoryview(data).nbytes
                    if n == 0:
                        break
                    crc = crc32c.crc32c(data, crc)
                    got += n
        except StorageNotFound:
            raise CheckpointError(f"shard {key} is missing (the manifest lists it, {size} bytes)") from None
        seconds = time.perf_counter() - start
        if got != size:
            raise CheckpointError(f"shard {key} has {got} bytes; the manifest says {size}")
        if crc != entry["crc32c"]:
            raise CheckpointError(f"shard {key} is corrupted: CRC32C {crc:08x}, written {entry['crc32c']:08x}")
        return got, seconds
