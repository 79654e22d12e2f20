"""storage.throughput.transfer: objects put and got by N workers at once, bytes counted from
what was moved, each call timed, and the first failure raised after every worker stopped."""

from __future__ import annotations

import threading
import time

import pytest

from pytest_iobench.storage import StorageError, StorageSpec, open_storage
from pytest_iobench.storage.throughput import transfer
from pytest_iobench.storage.wrapping import WrappedStorage


@pytest.fixture
def local(tmp_path):
    return open_storage(StorageSpec("local", "posix", root=str(tmp_path)))


class Watched(WrappedStorage):
    """Counts the calls under way at once; with ``meet``, each call waits until that many are
    under way (a barrier: it breaks, failing the call, when they never are); a get of ``short``
    returns one byte less; a get of ``fail`` raises as a library would."""

    def __init__(self, inner, delay=0.0, short="", fail="", meet=0):
        super().__init__(inner)
        self.delay, self.short, self.fail = delay, short, fail
        self.meeting = threading.Barrier(meet, timeout=30) if meet > 1 else None
        self.lock = threading.Lock()
        self.now = self.most = self.calls = 0

    def _enter(self):
        with self.lock:
            self.calls += 1
            self.now += 1
            self.most = max(self.most, self.now)
        if self.meeting is not None:
            self.meeting.wait()
        time.sleep(self.delay)

    def _leave(self):
        with self.lock:
            self.now -= 1

    def get(self, key):
        self._enter()
        try:
            if key == self.fail:
                raise StorageError("get", key, self.library, "connection reset")
            data = self.inner.get(key)
            return memoryview(data)[:-1] if key == self.short else data
        finally:
            self._leave()

    def put(self, key, data):
        self._enter()
        try:
            self.inner.put(key, data)
        finally:
            self._leave()


@pytest.mark.parametrize("threads", [1, 3])
def test_put_then_get_every_object_with_n_workers(local, threads):
    keys = [f"objects/{i:03d}" for i in range(9)]
    payloads = [bytes([i]) * (1000 + i) for i in range(9)]
    watched = Watched(local, delay=0.01, meet=threads)  # 9 objects: 3 rounds of 3 calls at once
    put = transfer(watched, "put", keys, threads, payloads)
    assert [bytes(local.get(k)) for k in keys] == payloads
    assert put.objects == 9 and put.bytes == sum(map(len, payloads)) and put.threads == threads
    assert len(put.latencies) == 9 and all(s >= 0.01 for s in put.latencies), "each call timed"
    assert put.seconds >= max(put.latencies) and put.bytes_per_second == put.bytes / put.seconds
    assert watched.most == threads, "the workers ran at once (they met), no more of them than asked"
    got = transfer(watched, "get", keys, threads)
    assert got.bytes == put.bytes and got.objects_per_second == 9 / got.seconds


def test_a_get_counts_the_bytes_returned(local):
    keys = ["a", "b"]
    for key in keys:
        local.put(key, b"x" * 100)
    assert transfer(Watched(local, short="b"), "get", keys, 2).bytes == 199


def test_the_first_failure_stops_the_workers_and_is_raised(local):
    keys = [f"k{i}" for i in range(50)]
    for key in keys:
        local.put(key, b"y")
    watched = Watched(local, delay=0.005, fail="k3")
    with pytest.raises(StorageError, match=r"get.*k3.*connection reset"):
        transfer(watched, "get", keys, 2)
    assert watched.calls < 50, "the other worker stopped after the call it was in"


def test_bad_arguments_are_refused(local):
    with pytest.raises(ValueError, match="operation must be one of put, get, not 'delete'"):
        transfer(local, "delete", ["a"], 1)
    with pytest.raises(ValueError, match="one payload per key"):
        transfer(local, "put", ["a", "b"], 1, [b"1"])
    with pytest.raises(ValueError, match="threads must be at least 1"):
        transfer(local, "get", ["a"], 0)
