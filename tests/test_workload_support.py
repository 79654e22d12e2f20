"""Helpers for the workload tests (no tests of their own are defined here besides the checks
of the helpers themselves).

- ``open_raw``: a SampleFile over files of fixed-size records, read with one range request
  per sample (for loop and loader tests that must not depend on a format's parsing cost);
  importable by MPI ranks as ``test_workload_support:open_raw`` with this directory on
  PYTHONPATH.
- ``ThrottledStorage``: a real Storage wrapping another that sleeps before every read
  request: a deliberately slow storage.
- ``open_raw_slow_start`` (``test_workload_support:open_raw_slow_start``): the same, with the
  first read through each storage (the first batch of a run, with one read thread) taking
  SLOW_START seconds longer: a slow first step, as a first request to S3 is.
- ``write_raw_dataset``: the files of a workload's dataset, seeded content.
"""

from __future__ import annotations

import os
import threading
import time
import weakref

from pytest_iobench.data.random import stream_for
from pytest_iobench.storage.base import Storage
from pytest_iobench.storage.wrapping import WrappedStorage

HERE = os.path.dirname(os.path.abspath(__file__))
RAW_OPENER = "test_workload_support:open_raw"


class RawRecords:
    """Sample i of a file is bytes [i*size, (i+1)*size): one get_range per sample."""

    def __init__(self, storage: Storage, key: str, spec):
        self.storage = storage
        self.key = key
        self.size = int(spec.record_length_bytes)
        self.num_samples = spec.num_samples_per_file
        self.closed = False

    def read_sample(self, index: int):
        if not 0 <= index < self.num_samples:
            raise IndexError(f"sample {index} of {self.num_samples}")
        data = self.storage.get_range(self.key, index * self.size, self.size)
        if len(data) != self.size:
            raise ValueError(f"short read: {len(data)} of {self.size} bytes")
        return data

    def close(self) -> None:
        self.closed = True


def open_raw(storage: Storage, key: str, spec) -> RawRecords:
    return RawRecords(storage, key, spec)


#: what the first read through a storage takes in addition (open_raw_slow_start)
SLOW_START = 0.3
_started: weakref.WeakSet[Storage] = weakref.WeakSet()
_started_lock = threading.Lock()


class SlowStartRecords(RawRecords):
    def read_sample(self, index: int):
        with _started_lock:
            first = self.storage not in _started
            _started.add(self.storage)
        if first:
            time.sleep(SLOW_START)
        return super().read_sample(index)


def open_raw_slow_start(storage: Storage, key: str, spec) -> SlowStartRecords:
    return SlowStartRecords(storage, key, spec)


def write_raw_dataset(storage: Storage, config, seed: int = 7) -> int:
    """Write every train (and eval) file of ``config``'s dataset; returns the bytes written."""
    spec = config.dataset
    size = int(spec.record_length_bytes) * spec.num_samples_per_file
    total = 0
    keys = spec.file_keys("train") + (spec.file_keys("eval") if spec.num_files_eval else [])
    for i, key in enumerate(keys):
        storage.put(key, stream_for(seed, i, limit=size).read(size))
        total += size
    return total


class ThrottledStorage(WrappedStorage):
    """Another storage, slowed down: every read request waits ``delay`` seconds first, and
    at most ``concurrency`` requests are served at once (a slow device with a queue)."""

    def __init__(self, inner: Storage, delay: float, concurrency: int = 1):
        super().__init__(inner)
        self.delay = delay
        self._gate = threading.Semaphore(concurrency)
        self.requests = 0

    def _wait(self) -> None:
        with self._gate:
            self.requests += 1
            time.sleep(self.delay)

    def get(self, key):
        self._wait()
        return self.inner.get(key)

    def get_range(self, key, offset, length):
        self._wait()
        return self.inner.get_range(key, offset, length)


def test_throttled_storage_waits_per_request_and_returns_the_same_bytes(tmp_path):
    from pytest_iobench.storage.posix import PosixStorage

    inner = PosixStorage(str(tmp_path))
    inner.put("a", b"x" * 1000)
    slow = ThrottledStorage(inner, delay=0.05)
    got = bytes(slow.get_range("a", 10, 20))
    assert got == b"x" * 20 and slow.requests == 1
