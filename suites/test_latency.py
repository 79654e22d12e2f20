"""Small-object latency: the time of one get, stat or put of a 4 KiB object, on every storage x
library the session selects, timed call by call with pytest-benchmark's ``benchmark`` fixture.

    pytest suites/test_latency.py --iobench-storage=local,direct,s3
    pytest suites/test_latency.py --benchmark-save=before     # pytest-benchmark's own save ...
    pytest suites/test_latency.py --benchmark-compare          # ... and compare work as usual

Each test times --iobench-latency-rounds calls (default 20, small so CI stays fast) per measured
run, --iobench-repeat runs, after WARMUP_ROUNDS warm-up calls (timed and recorded as warm-ups,
not counted) and records p50 (every call kept as its repeats), p90, p99 and max in microseconds,
and for get and put the bytes per second of one call. With 3 runs or more, p90, p99 and max are
taken per run and keep each run's as their repeats, so a gate judges a tail against the tails
of the other runs instead of one value (the max of 20 calls is one call's luck). Under xdist or with
--benchmark-disable, pytest-benchmark does not time anything: the calls are then timed with
time.perf_counter (the record's details say which timer it was).
"""

from __future__ import annotations

import itertools
import statistics
import uuid

import pytest

from pytest_iobench.data.random import stream_for
from pytest_iobench.report.timing import time_calls

#: Under xdist or --benchmark-disable, time_calls times the calls itself and pytest-benchmark warns, per
#: test, that its fixture "was not used at all": noise, since details.latency.timer says which timer
#: ran. (Its one warning per xdist session, "Benchmarks are automatically disabled because xdist
#: plugin is active", says why and stays.)
pytestmark = pytest.mark.filterwarnings(
    "ignore:Benchmark fixture was not used at all:pytest_benchmark.logger.PytestBenchmarkWarning")

SEED = 20261125
WARMUP_ROUNDS = 2
MB = 1_000_000


@pytest.fixture
def space(storage):
    """A fresh key prefix for one test, deleted after it."""
    prefix = f"latency-{uuid.uuid4().hex[:10]}"
    yield prefix
    storage.delete_prefix(prefix + "/")


@pytest.mark.parametrize("size", [4096], ids=["4KiB"])
@pytest.mark.parametrize("op", ["get", "stat", "put"])
def test_latency(op, size, storage, space, benchmark, iobench_record, iobench_config):
    iobench_record.kind = "latency"
    data = stream_for(SEED, "latency", size, limit=size).read(size)
    key = f"{space}/object"
    storage.put(key, data)
    setup = None
    if op == "get":
        def call():
            return storage.get(key)
    elif op == "stat":
        def call():
            return storage.stat(key)
    else:
        names = (f"{space}/put-{n}" for n in itertools.count())

        def setup():  # a fresh key per call, outside the timing: each put creates an object
            return (next(names),), {}

        def call(name):
            storage.put(name, data)

    rounds, runs = iobench_config.latency_rounds, max(1, iobench_config.repeat)
    timings = time_calls(call, rounds=rounds * runs, warmup=WARMUP_ROUNDS, setup=setup, benchmark=benchmark)
    per_run = [timings.seconds[i * rounds:(i + 1) * rounds] for i in range(runs)]
    latency = iobench_record.latency("latency", timings.seconds, "us", warmup=timings.warmup_seconds,
                                     runs=per_run if runs > 1 else ())
    if op in ("get", "put"):  # the bytes per second of one call, at the median latency (of each run)
        if runs > 1:
            rates = [size / statistics.median(run) / MB for run in per_run]
            iobench_record.metric("object_MB_per_second", statistics.median(rates), "MB/s", "higher", rates)
        else:
            rate = size / (latency["latency_p50_us"] * 1e-6) / MB
            iobench_record.metric("object_MB_per_second", rate, "MB/s", "higher")
    iobench_record.details["latency"] = {
        "operation": op, "object_bytes": size, "rounds": len(timings.seconds), "runs": runs,
        "warmup_rounds": WARMUP_ROUNDS,
        "timer": timings.timer,
        "note": "one call per round on the same object" if op != "put" else "one call per round, each to a new key",
    }

    # what was timed did what it should
    assert bytes(storage.get(key)) == data, f"{storage.id}: get {key!r} returned other bytes than were put"
    assert storage.stat(key).size == size, f"{storage.id}: stat {key!r} size differs from {size}"
    assert len(timings.seconds) == rounds * runs, f"timed {len(timings.seconds)} calls"
    if op == "put":
        written = storage.list(f"{space}/put-")
        expected = rounds * runs + WARMUP_ROUNDS
        assert len(written) == expected, f"{storage.id}: {len(written)} objects put, expected {expected}"
