"""Object throughput, as warp's put and get (or fio's sequential jobs) measure it: every storage x
library x thread count x object size, objects put or got whole by ``threads`` workers at once.

    pytest suites/test_throughput.py --iobench-storage=s3 --iobench-threads=1,8,32
    pytest suites/test_throughput.py --iobench-object-sizes=64KiB,1MiB,16MiB --iobench-throughput-bytes=1GiB

A case moves --iobench-throughput-bytes (default ``auto``: enough for the rate to settle on the
case's storage, pytest_iobench/workload/case_size.py; 64 MiB with --iobench-quick) per run as
objects of its size (at least one per thread), each with its own content from the seeded random
source, generated before the clock starts and held in memory (so a run of 1 GiB holds 1 GiB). A put
run writes every object under a fresh prefix (deleted after it); a get run reads back objects put
once before the runs, from the storage, not from memory: before each get run the page cache of local
objects is dropped and the drop verified (O_DIRECT where it did not work; tmpfs or a failed drop is
a warning), as the checkpoint suite does before its reads; an S3 client keeps no cache. Recorded,
with --iobench-warmup / --iobench-repeat: MB/s (bytes moved over the run's wall time, MB = 10^6
bytes; a get's bytes counted from what it returned), objects/s, and the latency of every call of the
counted runs (p50, p90, p99, max in ms). Outside the timed transfers, every object a put run wrote
(and, after the runs, every object the get runs read) is read back and compared with what was put: a
test whose storage holds other bytes fails."""

from __future__ import annotations

import uuid

import pytest

from pytest_iobench.data.random import stream_for
from pytest_iobench.plugin.options import get_settings
from pytest_iobench.storage.counting import CountingStorage
from pytest_iobench.storage.throughput import transfer
from pytest_iobench.workload import steady
from pytest_iobench.workload.case_size import case_size
from pytest_iobench.workload.page_cache import drop_cache

SEED = 20261201
MB = 1_000_000


def size_id(size: int) -> str:
    """``1048576`` -> ``1MiB``: the size as the test id shows it (stable for baselines)."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size % scale == 0:
            return f"{size // scale}{unit}"
    return f"{size}B"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "object_size" in metafunc.fixturenames:
        sizes = get_settings(metafunc.config).object_sizes
        metafunc.parametrize("object_size", sizes, ids=[size_id(s) for s in sizes])


@pytest.fixture
def space(storage):
    """A fresh key prefix for one test, deleted after it."""
    prefix = f"throughput-{uuid.uuid4().hex[:10]}"
    yield prefix
    storage.delete_prefix(prefix + "/")


@pytest.mark.parametrize("operation", ["put", "get"])
def test_throughput(operation, object_size, storage, threads, space, iobench_config, iobench_record,
                    iobench_progress):
    iobench_record.kind = "throughput"
    chosen = case_size("throughput", storage.kind, iobench_config.throughput_bytes, iobench_config.quick)
    count = max(threads, -(-chosen.bytes // object_size))
    iobench_record.details["size_chosen_by"] = chosen.chosen_by
    payloads = [stream_for(SEED, "throughput", object_size, i, limit=object_size).read(object_size)
                for i in range(count)]
    # the size by its label (the plots name a panel by its text parameters), and in bytes
    iobench_record.params.update(object_size=size_id(object_size), object_bytes=object_size, objects=count)
    stored = [f"{space}/objects/{i:06d}" for i in range(count)]
    if operation == "get":
        for key, payload in zip(stored, payloads):
            storage.put(key, payload)
    runs: list[dict] = []
    calls: list[list[float]] = []
    caches: list[dict] = []
    steadies: list[steady.Steady] = []
    # untimed warm-up: one object per worker, so the client, its connection pool, the worker
    # threads and the buffers are up before any clock starts (each timed run is the same again)
    warm = [f"{space}/warm-up/{i:06d}" for i in range(threads)]
    transfer(storage, "put", warm, threads, payloads[:threads])
    transfer(storage, "get", warm, threads)
    storage.delete_prefix(f"{space}/warm-up/")
    total_runs = iobench_record.warmups + iobench_record.repeat

    def verify(keys: list[str]) -> None:
        """Every object holds what was put (read back outside the timed transfers)."""
        for key, payload in zip(keys, payloads):
            assert bytes(storage.get(key)) == payload, f"{storage.id}: get {key!r} returned other bytes than were put"

    def timed(target, keys, data=None):
        """The transfer, its bytes sampled over time (steady state) and shown past 2 s."""
        counting = CountingStorage(target)
        moved = (lambda: counting.bytes_written) if operation == "put" else (lambda: counting.bytes_read)
        label = f"run {len(runs) + 1}/{total_runs}"
        total = count * object_size
        show = None if iobench_progress is None else (
            lambda samples: iobench_progress("throughput", f"{label}, {steady.progress_line(samples, total)}"))
        with steady.RateSampler(moved, progress=show) as sampler:
            done = transfer(counting, operation, keys, threads, data)
        steadies.append(steady.steady_state(sampler.samples))
        return done

    def run() -> dict[str, float]:
        if operation == "put":
            prefix = f"{space}/run-{len(runs)}"
            keys = [f"{prefix}/{i:06d}" for i in range(count)]
            try:
                done = timed(storage, keys, payloads)
                listed = storage.list(prefix + "/")
                assert sorted(listed) == keys, f"{storage.id}: {len(listed)} objects listed after putting {count}"
                verify(keys)  # outside the timed transfer
            finally:
                storage.delete_prefix(prefix + "/")
        else:
            # from the storage, not the page cache: dropped and verified, or O_DIRECT
            cache = drop_cache(storage, stored)
            caches.append(cache.detail())
            done = timed(cache.reader or storage, stored)
        expected = count * object_size
        assert done.bytes == expected, f"{storage.id}: {done.bytes} bytes moved, expected {expected}"
        runs.append({"seconds": done.seconds, "bytes": done.bytes, "objects": done.objects})
        calls.append(done.latencies)
        return {"steady_throughput": steadies[-1].rate / MB, "throughput": done.bytes_per_second / MB,
                "objects_per_second": done.objects_per_second}

    iobench_record.measure(run, {"steady_throughput": ("MB/s", "higher"), "throughput": ("MB/s", "higher"),
                                 "objects_per_second": ("obj/s", "higher")})
    warmups = iobench_record.warmups
    iobench_record.latency("op_latency", [s for run in calls[warmups:] for s in run], "ms",
                           warmup=[s for run in calls[:warmups] for s in run], runs=calls[warmups:])
    counted = steady.summary(steadies[warmups:])
    iobench_record.metrics["steady_throughput"].steady = counted
    if counted["flag"]:  # every timed figure of the case: the calls' latencies come from the same runs
        for name in [n for n, m in iobench_record.metrics.items() if m.direction != "none"]:
            iobench_record.unfit(name, counted["flag"])
    for note in sorted({c["note"] for c in caches if c["state"] in ("memory", "none")}):
        iobench_record.warn(f"gets may have come from memory, not the storage: {note}")
    iobench_record.details["throughput"] = {
        "operation": operation, "object_bytes": object_size, "objects": count,
        "runs": runs,  # warm-ups first (--iobench-warmup runs; the untimed warm-up is not a run)
        "warmup_excluded": ("before any timed run, one object per worker put and got (not timed): the client, "
                            "its connection pool, the worker threads and the buffers are up before the clock starts"),
        "cache_before_get": caches,  # per run (workload/page_cache.drop_cache)
        "note": ("each run puts every object to a new key" if operation == "put"
                 else "each run gets every object once; the objects were put before the runs"),
    }

    if operation == "get":
        verify(stored)
