"""The accelerator search: pure behaviour over synthetic AU curves (deterministic), and the
real training engine reading through a storage whose throughput is capped at a known rate."""

from __future__ import annotations

import threading
import time

import pytest
from test_workload_support import RAW_OPENER, write_raw_dataset

from pytest_iobench.mpi.session import MPISession
from pytest_iobench.mpi.training import run_training_session
from pytest_iobench.qualify.search import search
from pytest_iobench.storage import StorageSpec, open_storage
from pytest_iobench.storage.wrapping import WrappedStorage
from pytest_iobench.workload.config import load_mapping

KiB = 1024


def capped(capacity: float):
    """AU of a storage that feeds ``capacity`` accelerators fully: min(100, 100 x capacity / n)."""
    calls: list[int] = []

    def probe(n: int) -> float:
        calls.append(n)
        return min(100.0, 100.0 * capacity / n)
    return probe, calls


@pytest.mark.parametrize("capacity,floor,expected", [(5, 90, 5), (5.5, 90, 6), (1, 90, 1), (16, 90, 17),
                                                     (2, 60, 3), (100, 90, 64)])
def test_the_search_finds_the_largest_count_meeting_the_floor(capacity, floor, expected):
    probe, calls = capped(capacity)
    result = search(probe, floor, start=1, limit=64)
    assert result.best == expected
    assert len(calls) == len(set(calls)), "each count is probed once"
    assert result.limited == (expected == 64)


def test_doubling_then_bisection_probes_few_counts():
    probe, calls = capped(5)
    search(probe, 90, start=1, limit=1024)
    assert calls == [1, 2, 4, 8, 6, 5]


def test_nothing_meets_the_floor():
    probe, calls = capped(0.5)
    result = search(probe, 90, start=1, limit=64)
    assert result.best == 0 and calls == [1]
    assert result.to_dict()["probes"] == [{"accelerators": 1, "au_percent": 50.0, "met": False}]


def test_a_range_starts_and_stops_where_given():
    probe, calls = capped(40)
    assert search(probe, 90, start=4, limit=20).best == 20
    assert calls == [4, 8, 16, 20]
    with pytest.raises(ValueError, match="start <= limit"):
        search(probe, 90, start=8, limit=4)


class RateCapped(WrappedStorage):
    """A storage whose reads, all together, move at most ``rate`` bytes a second: each read
    waits its turn on a virtual clock that ``size / rate`` seconds advance (a token bucket
    with no burst)."""

    def __init__(self, inner, rate: float):
        super().__init__(inner)
        self.rate = rate
        self._lock = threading.Lock()
        self._free = 0.0

    def _take(self, size: int) -> None:
        with self._lock:
            now = time.monotonic()
            self._free = max(self._free, now) + size / self.rate
            wait = self._free - now
        time.sleep(wait)

    def get(self, key):
        data = self.inner.get(key)
        self._take(len(data))
        return data

    def get_range(self, key, offset, length):
        data = self.inner.get_range(key, offset, length)
        self._take(len(data))
        return data


def test_the_search_finds_what_a_rate_capped_storage_sustains(tmp_path):
    """A storage capped at RATE serves n accelerators RATE / n each. A step reads BATCH x RECORD
    bytes and computes COMPUTE seconds, so with reads overlapping compute (prefetch) a rank's
    AU is min(1, K / n), K = COMPUTE x RATE / (BATCH x RECORD) = 2: the floor of 60% is met up
    to n = floor(K / 0.6) = 3 (AU 67%) and missed from 4 (AU 50%). The probe runs the real
    training loop on one rank reading the real local files through a cap of RATE / n (its
    share). The harness only lowers AU, and AU at 2 has a 40-point margin: the search finds
    3 within one."""
    record, batch, compute, k = 64 * KiB, 2, 0.05, 2
    rate = k * batch * record / compute
    config = load_mapping({
        "model": {"name": "tiny"},
        "dataset": {"num_files_train": 48, "num_samples_per_file": 1, "record_length_bytes": record},
        "reader": {"batch_size": batch, "read_threads": 4, "prefetch_size": 2},
        "train": {"epochs": 1, "computation_time": compute},
        "metric": {"au": 0.60}}, "tiny")
    local = open_storage(StorageSpec("local", "posix", root=str(tmp_path / "data")))
    write_raw_dataset(local, config)
    session = MPISession(timeout=120)

    def probe(n: int) -> float:
        outcome = run_training_session(session, config, RateCapped(local, rate / n), ranks=1, opener=RAW_OPENER)
        return outcome.summary["au_mean_percent"]

    result = search(probe, 60.0, start=1, limit=8)
    assert abs(result.best - 3) <= 1, result.to_dict()
    assert [p.accelerators for p in result.probes][:3] == [1, 2, 4]
