"""Counts the bytes a storage actually returned, so throughput is computed from bytes moved.

``CountingStorage`` wraps any storage; every read (get, get_range, get_many) adds the length
of what came back, every write adds what was handed over. Thread-safe.
"""

from __future__ import annotations

import threading

from .base import Buffer, Storage, StreamWriter
from .wrapping import WrappedStorage, WrappedWriter


class _CountingWriter(WrappedWriter):
    def _write(self, view: memoryview) -> None:
        self.inner.write(view)
        self.storage._add_written(view.nbytes)


class CountingStorage(WrappedStorage):
    def __init__(self, inner: Storage):
        super().__init__(inner)
        self._lock = threading.Lock()
        self.bytes_read = 0
        self.bytes_written = 0
        self.requests = 0

    def _add_read(self, n: int, requests: int = 1) -> None:
        with self._lock:
            self.bytes_read += n
            self.requests += requests

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
        self._add_read(memoryview(data).nbytes)
        return data

    def get_range(self, key: str, offset: int, length: int) -> Buffer:
        data = self.inner.get_range(key, offset, length)
        self._add_read(memoryview(data).nbytes)
        return data

    def get_many(self, keys, max_in_flight: int = 16) -> list[Buffer]:
        blobs = self.inner.get_many(keys, max_in_flight)
        self._add_read(sum(memoryview(b).nbytes for b in blobs), len(blobs))
        return blobs

    def delete_prefix(self, prefix: str) -> int:
        return self.inner.delete_prefix(prefix)
