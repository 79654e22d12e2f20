"""A kept dataset's content, checked: every file's CRC-32C taken as it is written (the bytes
pass through a checksumming writer on their way to the storage: no extra read) and compared
with the storage's bytes when the dataset is reused.

    checked = ChecksummingStorage(storage)       # what generation writes through
    ... write files through ``checked`` ...
    checked.checksums                            # {key: "crc32c:1a2b3c4d"}
    outcome = verify(storage, checksums, sizes, mode="sample")
    outcome.mismatch                             # None, or "train/x.npz: crc32c 0x... , the manifest says 0x..."

CRC-32C (the ``crc32c`` package, hardware-accelerated) is what S3 and TFRecord use too: it
catches a flipped byte or a torn write, which is what this is for; it is not a defence against
someone forging content.

Modes: ``none`` checks sizes only; ``full`` reads every file; ``sample`` reads every file when
the dataset is small (``FULL_UP_TO`` bytes: reading it costs less than the test that uses it)
and otherwise the first and last file plus files drawn afresh each run up to ``SAMPLE_BYTES``,
so that over runs every file is read.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import crc32c as _crc32c

from ..storage.base import Buffer, Storage, StreamWriter
from ..storage.wrapping import WrappedStorage, WrappedWriter

MODES = ("sample", "full", "none")
#: a dataset up to this size is read whole even in sample mode
FULL_UP_TO = 256 << 20
#: sample mode reads about this many bytes of a larger dataset
SAMPLE_BYTES = 128 << 20
#: the read size when checking a file: memory stays bounded whatever the file size
READ_STEP = 8 << 20
PREFIX = "crc32c:"


def checksum_text(value: int) -> str:
    return f"{PREFIX}{value:08x}"


def checksum_of(data: Buffer, value: int = 0) -> int:
    return _crc32c.crc32c(data, value)


class ChecksummingWriter(WrappedWriter):
    """Passes every byte on, updating a CRC-32C; the checksum is recorded once committed."""

    def __init__(self, storage: ChecksummingStorage, inner: StreamWriter):
        super().__init__(storage, inner)
        self._checksums = storage
        self._crc = 0

    def _write(self, view: memoryview) -> None:
        self._crc = checksum_of(view, self._crc)
        self.inner.write(view)

    def _commit(self) -> None:
        self.inner.commit()
        self._checksums.record(self.key, self._crc)


class ChecksummingStorage(WrappedStorage):
    """A storage whose writes (put and streaming writers) record each key's CRC-32C."""

    def __init__(self, inner: Storage):
        super().__init__(inner)
        self._lock = threading.Lock()
        self.checksums: dict[str, str] = {}

    def record(self, key: str, crc: int) -> None:
        with self._lock:
            self.checksums[key] = checksum_text(crc)

    def put(self, key: str, data: Buffer) -> None:
        self.inner.put(key, data)
        self.record(key, checksum_of(memoryview(data).cast("B")))

    def open_writer(self, key: str, *, fsync: bool = False) -> StreamWriter:
        return ChecksummingWriter(self, self.inner.open_writer(key, fsync=fsync))


def read_checksum(storage: Storage, key: str) -> str:
    """The CRC-32C of ``key`` as the storage returns it, read in bounded steps."""
    crc, offset = 0, 0
    while True:
        piece = storage.get_range(key, offset, READ_STEP)
        n = memoryview(piece).nbytes
        if not n:
            break
        crc = checksum_of(piece, crc)
        offset += n
        if n < READ_STEP:
            break
    return checksum_text(crc)


@dataclass
class Verification:
    """What a reuse check read: ``mode``, the files and bytes read, seconds, and the first
    mismatch (None when every file read matched its recorded checksum)."""

    mode: str
    files: int = 0
    of_files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    mismatch: str | None = None
    #: the manifest records no checksums (written before they were kept): sizes only
    unrecorded: bool = False

    def describe(self) -> str:
        if self.mode == "none":
            return "not verified (--iobench-verify=none): sizes only"
        if self.unrecorded:
            return "not verified: the manifest records no checksums (sizes only)"
        what = f"crc32c of {self.files} of {self.of_files} files ({self.bytes / 1e6:,.1f} MB, {self.seconds:.2f} s)"
        return what + (f": {self.mismatch}" if self.mismatch else ": all match")

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "files": self.files, "of_files": self.of_files, "bytes": self.bytes,
                "seconds": round(self.seconds, 3), "mismatch": self.mismatch, "unrecorded": self.unrecorded}


def choose(keys: list[str], sizes: dict[str, int], mode: str, rng: random.Random | None = None) -> list[str]:
    """The keys a check of ``mode`` reads."""
    if mode == "none" or not keys:
        return []
    if mode == "full" or sum(sizes.get(k, 0) for k in keys) <= FULL_UP_TO:
        return list(keys)
    rng = rng or random.Random()
    chosen = [keys[0], keys[-1]] if len(keys) > 1 else [keys[0]]
    budget = SAMPLE_BYTES - sum(sizes.get(k, 0) for k in chosen)
    rest = keys[1:-1]
    rng.shuffle(rest)
    for key in rest:
        if budget <= 0:
            break
        chosen.append(key)
        budget -= sizes.get(key, 0)
    return chosen


def verify(storage: Storage, checksums: dict[str, str] | None, sizes: dict[str, int], mode: str,
           *, threads: int = 4) -> Verification:
    """Read the chosen files of a kept dataset back and compare their CRC-32C with the
    manifest's. Stops at the first mismatch it finds (which it names)."""
    if mode not in MODES:
        raise ValueError(f"verify mode {mode!r}: use one of {', '.join(MODES)}")
    if mode == "none":
        return Verification(mode)
    if not checksums:
        return Verification(mode, of_files=len(sizes), unrecorded=True)
    keys = sorted(k for k in sizes if k in checksums)
    chosen = choose(keys, sizes, mode)
    outcome = Verification(mode, of_files=len(keys))
    start = time.monotonic()
    stop = threading.Event()

    def check(key: str) -> str | None:
        if stop.is_set():
            return None
        found = read_checksum(storage, key)
        if found != checksums[key]:
            stop.set()
            return (f"{storage.uri(key)}: {found} of its bytes, the manifest says {checksums[key]} "
                    "(same size: its content changed since it was written)")
        return None

    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(chosen) or 1)),
                            thread_name_prefix="iobench-verify") as pool:
        results = list(pool.map(check, chosen))
    outcome.seconds = time.monotonic() - start
    outcome.files = len(chosen)
    outcome.bytes = sum(sizes.get(k, 0) for k in chosen)
    outcome.mismatch = next((r for r in results if r), None)
    return outcome
