"""TestRecord: metrics, criteria, repeats and warm-ups, latency percentiles, JSON-safe entries; and
the pieces a run's entries are made of (outcomes from phase reports, kinds from suite names)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pytest_iobench.report.collect import Phase, ResultCollector, infer_kind, outcome_of, record_entry
from pytest_iobench.report.record import TestRecord


def test_measure_counts_repeats_not_warmups_and_reports_the_median():
    record = TestRecord("t", repeat=3, warmups=2)
    values = iter([1000.0, 900.0, 10.0, 30.0, 20.0])  # two warm-ups, then three repeats
    medians = record.measure(lambda: {"read_MB_per_second": next(values)}, {"read_MB_per_second": ("MB/s", "higher")})
    metric = record.metrics["read_MB_per_second"]
    assert medians == {"read_MB_per_second": 20.0}
    assert (metric.value, metric.min, metric.max) == (20.0, 10.0, 30.0)
    assert metric.repeats == [10.0, 30.0, 20.0]
    assert metric.warmup == [1000.0, 900.0]


class _ReadFailed(RuntimeError):
    def __init__(self, measured):
        super().__init__("shard x is corrupted")
        self.measured = measured


def test_measure_keeps_what_was_measured_before_a_run_failed():
    record = TestRecord("t", repeat=3, warmups=1)
    units = {"write_GB_per_second": ("GB/s", "higher"), "read_GB_per_second": ("GB/s", "higher")}
    runs = iter([{"write_GB_per_second": 9.0, "read_GB_per_second": 8.0},   # warm-up
                 {"write_GB_per_second": 1.0, "read_GB_per_second": 2.0}])

    def run():
        try:
            return next(runs)
        except StopIteration:  # the second repeat writes, then a read fails
            raise _ReadFailed({"write_GB_per_second": 3.0}) from None

    with pytest.raises(_ReadFailed):
        record.measure(run, units)
    assert record.metrics["write_GB_per_second"].repeats == [1.0, 3.0]
    assert record.metrics["write_GB_per_second"].warmup == [9.0]
    assert record.metrics["read_GB_per_second"].repeats == [2.0]
    # a plain failure in the first warm-up leaves nothing that has a counted value
    empty = TestRecord("t", repeat=1, warmups=1)
    with pytest.raises(ZeroDivisionError):
        empty.measure(lambda: {"x": 1 / 0}, {"x": ("s", "lower")})
    assert empty.metrics == {}


@pytest.mark.parametrize("bad", [math.inf, math.nan, "fast", None])
def test_metric_refuses_what_is_not_a_finite_number(bad):
    record = TestRecord("suite.py::test_x")
    with pytest.raises(ValueError, match=r"metric 'rate' of test suite.py::test_x: value .* not a"):
        record.metric("rate", bad, "MB/s")
    with pytest.raises(ValueError, match="repeat"):
        record.metric("rate", 1.0, "MB/s", repeats=[1.0, bad])


def test_metric_takes_numpy_numbers():
    record = TestRecord("t")
    metric = record.metric("rate", np.float32(2.5), "MB/s", repeats=[np.float64(2.0), np.int64(3)])
    assert metric.to_dict() == {"value": 2.5, "unit": "MB/s", "direction": "higher", "repeats": [2.0, 3.0],
                                "warmup": [], "min": 2.0, "max": 3.0}


def test_bad_direction_and_comparison_are_named():
    record = TestRecord("t")
    with pytest.raises(ValueError, match="direction must be one of"):
        record.metric("x", 1, "s", "up")
    record.metric("x", 1, "s", "lower")
    with pytest.raises(ValueError, match="comparison must be one of"):
        record.criterion("x", "=>", 2)
    with pytest.raises(KeyError, match="not recorded"):
        record.criterion("y", "<", 2)


def test_latency_percentiles_in_the_unit_asked():
    record = TestRecord("t")
    seconds = [i / 1000 for i in range(1, 101)]  # 1 ms .. 100 ms
    recorded = record.latency("get", seconds, "ms", warmup=[0.5])
    assert recorded["get_p50_ms"] == pytest.approx(50.5)
    assert recorded["get_p90_ms"] == pytest.approx(np.percentile(np.arange(1, 101), 90))
    assert recorded["get_p99_ms"] == pytest.approx(np.percentile(np.arange(1, 101), 99))
    assert recorded["get_max_ms"] == pytest.approx(100.0)
    p50 = record.metrics["get_p50_ms"]
    assert p50.direction == "lower" and len(p50.repeats) == 100 and p50.warmup == [500.0]
    with pytest.raises(ValueError, match="latency unit"):
        record.latency("get", seconds, "minutes")
    with pytest.raises(ValueError, match="no duration"):
        record.latency("get", [], "us")


def test_entry_is_json_whatever_the_suite_put_in_details():
    record = TestRecord("suites/test_read.py::test_read[npz]", suite="test_read",
                        params={"fmt": "npz", "shape": (2, 3), "threads": 4})
    record.details["per_rank"] = [{"rank": np.int64(0), "bytes": np.arange(3)}]
    record.details["odd"] = {1: float("nan"), "obj": object.__new__(object)}
    entry = record_entry(record, worker="gw1")
    json.dumps(entry, allow_nan=False)  # raises on anything JSON cannot hold
    assert entry["kind"] == "read"  # from the suite name
    assert entry["worker"] == "gw1"
    assert entry["params"] == {"fmt": "npz", "shape": "[2, 3]", "threads": 4}
    assert entry["details"]["per_rank"] == [{"rank": 0, "bytes": [0, 1, 2]}]
    assert entry["details"]["odd"]["1"] is None


@pytest.mark.parametrize("suite,kind", [
    ("test_storage_conformance", "conformance"), ("test_generate", "generate"), ("test_generation", "generate"),
    ("test_training", "train"), ("test_checkpoint", "checkpoint"), ("test_latency", "latency"),
    ("test_read", "read"), ("test_misc", None)])
def test_kind_from_suite_name(suite, kind):
    assert infer_kind(suite) == kind


def P(outcome, wasxfail=False, message=""):
    return Phase(outcome, 0.1, wasxfail, message)


@pytest.mark.parametrize("phases,expected", [
    ({"setup": P("passed"), "call": P("passed"), "teardown": P("passed")}, "passed"),
    ({"setup": P("passed"), "call": P("failed", message="boom"), "teardown": P("passed")}, "failed"),
    ({"setup": P("failed", message="no fixture"), "teardown": P("passed")}, "error"),
    ({"setup": P("skipped", message="no s3"), "teardown": P("passed")}, "skipped"),
    ({"setup": P("passed"), "call": P("skipped", wasxfail=True), "teardown": P("passed")}, "xfailed"),
    ({"setup": P("passed"), "call": P("passed", wasxfail=True), "teardown": P("passed")}, "xpassed"),
    ({"setup": P("passed"), "call": P("passed"), "teardown": P("failed", message="cleanup")}, "error"),
    ({"setup": P("passed")}, "incomplete"),
])
def test_outcome_from_phases(phases, expected):
    assert outcome_of(phases)[0] == expected


def test_collector_keeps_run_order_and_takes_worker_entries():
    controller = ResultCollector()
    for nodeid in ("a.py::t1", "a.py::t2"):
        controller.add_phase(nodeid, "setup", P("passed"))
        controller.add_phase(nodeid, "call", P("passed"))
    worker = ResultCollector()
    record = TestRecord("a.py::t2", suite="a")
    record.metric("rate", 5, "MB/s")
    worker.add_test(record_entry(record, "gw0"))
    worker.iobench_used = True
    controller.merge(worker.export())
    entries = controller.entries()
    assert [e["id"] for e in entries] == ["a.py::t1", "a.py::t2"]
    assert entries[0]["metrics"] == {} and entries[0]["outcome"] == "passed"
    assert entries[1]["metrics"]["rate"]["value"] == 5 and entries[1]["worker"] == "gw0"
    assert controller.iobench_used


def test_latency_of_several_runs_keeps_each_runs_tail():
    record = TestRecord("t")
    runs = [[0.001] * 9 + [0.010], [0.001] * 9 + [0.012], [0.001] * 9 + [0.100]]  # one run stalled once
    recorded = record.latency("op", [s for run in runs for s in run], "ms", runs=runs)
    p99, top = record.metrics["op_p99_ms"], record.metrics["op_max_ms"]
    assert top.repeats == pytest.approx([10.0, 12.0, 100.0]) and top.value == pytest.approx(12.0)
    assert len(p99.repeats) == 3 and p99.value == pytest.approx(sorted(p99.repeats)[1])
    assert len(record.metrics["op_p50_ms"].repeats) == 30 and recorded["op_p50_ms"] == pytest.approx(1.0)
