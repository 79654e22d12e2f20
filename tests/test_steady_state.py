"""Steady-state rates: the first slices of a run are dropped until the rate settles, the rate
after them is reported with its per-slice spread, and a run too short or too unsteady is
flagged. Against real storages slowed by wrappers whose sleeps dominate what a loaded machine
adds (so the checks hold on a busy 2-core machine), and on exact synthetic samples."""

from __future__ import annotations

import threading
import time

import pytest

from pytest_iobench.storage.counting import CountingStorage
from pytest_iobench.storage.posix import PosixStorage
from pytest_iobench.storage.wrapping import WrappedStorage
from pytest_iobench.workload.steady import MAX_CV, RateSampler, steady_state

SIZE = 4096


class Paced(WrappedStorage):
    """Each get sleeps ``delay(seconds since the first get)`` first: a storage whose speed the
    test sets."""

    def __init__(self, inner, delay):
        super().__init__(inner)
        self.delay = delay
        self.start: float | None = None
        self.lock = threading.Lock()

    def get(self, key):
        with self.lock:
            if self.start is None:
                self.start = time.perf_counter()
        time.sleep(self.delay(time.perf_counter() - self.start))
        return self.inner.get(key)


@pytest.fixture
def objects(tmp_path):
    storage = PosixStorage(str(tmp_path))
    keys = [f"o{i:04d}" for i in range(1000)]
    for key in keys:
        storage.put(key, b"s" * SIZE)
    return storage, keys


def sampled_gets(storage, keys, delay, seconds):
    counting = CountingStorage(Paced(storage, delay))
    deadline = time.perf_counter() + seconds
    with RateSampler(lambda: counting.bytes_read) as sampler:
        for key in keys:  # one get at a time until the run's length is reached
            if time.perf_counter() >= deadline:
                break
            counting.get(key)
    return steady_state(sampler.samples)


def test_a_storage_slow_for_its_first_200_ms_gives_the_steady_rate_after_the_ramp(objects):
    storage, keys = objects
    fast = 0.010  # then 10 ms per get: 410 kB/s; before, 100 ms per get
    # 4 s: slices of 200 ms, 20 gets each (a get more or less is 5%)
    steady = sampled_gets(storage, keys, lambda t: 0.100 if t < 0.2 else fast, seconds=4.0)
    expected = SIZE / fast
    assert steady.flag == "", steady
    assert 0.5 * expected < steady.rate <= 1.05 * expected, (steady.rate, expected)
    assert steady.whole < 0.97 * steady.rate, "the whole run's rate includes the slow start"
    assert 0.2 <= steady.ramp_seconds <= 1.2, steady  # the slow start, and on a busy machine a little more
    assert steady.slices >= 5 and steady.cv <= MAX_CV


def test_a_storage_whose_speed_keeps_jumping_is_flagged_unsteady(objects):
    storage, keys = objects
    # 2 ms per get for 300 ms, then 40 ms per get for 300 ms, and again
    steady = sampled_gets(storage, keys, lambda t: 0.002 if int(t / 0.3) % 2 == 0 else 0.040, seconds=4.0)
    assert steady.flag.startswith("unsteady: the rate varies by"), steady
    assert steady.cv > MAX_CV


def test_a_run_too_short_is_flagged(objects):
    storage, keys = objects
    steady = sampled_gets(storage, keys, lambda t: 0.005, seconds=0.25)
    assert steady.flag.startswith("too short:"), steady


def test_steady_state_of_exact_samples():
    # 1 MB/s for 0.2 s, then 10 MB/s until 2.2 s, sampled every 20 ms
    def moved(t):
        return 1e6 * min(t, 0.2) + 10e6 * max(0.0, t - 0.2)

    samples = [(i * 0.02, int(moved(i * 0.02))) for i in range(111)]
    steady = steady_state(samples)
    assert steady.rate == pytest.approx(10e6, rel=1e-3)
    assert steady.whole == pytest.approx(moved(2.2) / 2.2, rel=1e-3)
    assert steady.ramp_slices == 2 and steady.slice_seconds == pytest.approx(0.11)
    assert steady.cv == pytest.approx(0.0, abs=1e-3) and steady.flag == ""
    d = steady.to_dict(1e6, "MB/s")
    assert d["rate"] == pytest.approx(10.0, rel=1e-3) and d["unit"] == "MB/s"


def test_a_steady_run_drops_only_its_first_slice():
    samples = [(i * 0.05, i * 50_000) for i in range(41)]  # 1 MB/s for 2 s
    steady = steady_state(samples)
    assert steady.ramp_slices == 1 and steady.slices == 19 and steady.rate == pytest.approx(1e6)
