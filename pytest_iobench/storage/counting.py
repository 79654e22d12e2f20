"""Counts the bytes a storage actually returned, so throughput is computed from bytes moved.

``CountingStorage`` wraps any storage; every read (get, get_range, get_many) adds the length
of what came back, every write adds what was handed over. Thread-safe.

Reads are also counted for the piece of work that caused them (the loader's read of one
batch): the thread doing it takes its ``ReadTally`` (``tally()``), names the file it reads in
``tally.key`` while it reads it, and ``tally.bytes`` taken before and after is what its reads
moved, whatever other threads read meanwhile. A library that reads in threads of its own
(pyarrow pre-buffers a parquet row group's column chunks in its I/O threads) reads on behalf
of the thread that asked: a read from a thread that is reading no file counts for a thread
reading that key (one of them, should two read the same file at once). Every byte counts once.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable

from .base import Buffer, Storage, StreamWriter
from .wrapping import WrappedStorage, WrappedWriter


class _CountingWriter(WrappedWriter):
    def __init__(self, storage: CountingStorage, inner: StreamWriter):
        super().__init__(storage, inner)
        self.counting = storage

    def _write(self, view: memoryview) -> None:
        self.inner.write(view)
        self.counting._add_written(view.nbytes)


class ReadTally:
    """The bytes read for one thread, and the file it is reading now (None: none)."""

    __slots__ = ("__weakref__", "bytes", "key")

    def __init__(self) -> None:
        self.bytes = 0
        self.key: str | None = None


class CountingStorage(WrappedStorage):
    def __init__(self, inner: Storage):
        super().__init__(inner)
        self._lock = threading.Lock()
        self.bytes_read = 0
        self.bytes_written = 0
        self.requests = 0
        self._local = threading.local()
        #: the tallies handed out, found by key for reads made in a library's own threads
        self._tallies: weakref.WeakSet[ReadTally] = weakref.WeakSet()

    def tally(self) -> ReadTally:
        """The calling thread's ReadTally (made on first use; dropped with the thread)."""
        tally = getattr(self._local, "tally", None)
        if tally is None:
            tally = self._local.tally = ReadTally()
            with self._lock:
                self._tallies.add(tally)
        return tally

    def _add_read(self, key: str, n: int, requests: int = 1) -> None:
        own = getattr(self._local, "tally", None)
        with self._lock:
            self.bytes_read += n
            self.requests += requests
            if own is None or own.key is None:  # a library's own thread: for the one reading key
                own = next((t for t in self._tallies if t.key == key), own)
            if own is not None:
                own.bytes += n

    def _add_written(self, n: int) -> None:
        with self._lock:
            self.bytes_written += n

    def reset(self) -> tuple[int, int, int]:
        """Return (bytes_read, bytes_written, requests) so far and start again from zero."""
        with self._lock:
            counts = (self.bytes_read, self.bytes_written, self.requests)
            self.bytes_read = self.bytes_written = self.requests = 0
            return counts

    def put(self, key: str, data: Buffer) -> None:
        self.inner.put(key, data)
        self._add_written(memoryview(data).nbytes)

    def open_writer(self, key: str, *, fsync: bool = False) -> StreamWriter:
        return _CountingWriter(self, self.inner.open_writer(key, fsync=fsync))

    def get(self, key: str) -> Buffer:
        data = self.inner.get(key)
        self._add_read(key, memoryview(data).nbytes)
        return data

    def get_range(self, key: str, offset: int, length: int) -> Buffer:
        data = self.inner.get_range(key, offset, length)
        self._add_read(key, memoryview(data).nbytes)
        return data

    def get_many(self, keys: Iterable[str], max_in_flight: int = 16) -> list[Buffer]:
        keys = list(keys)
        blobs = self.inner.get_many(keys, max_in_flight)
        for key, blob in zip(keys, blobs):
            self._add_read(key, memoryview(blob).nbytes)
        return blobs

    def delete_prefix(self, prefix: str) -> int:
        return self.inner.delete_prefix(prefix)
