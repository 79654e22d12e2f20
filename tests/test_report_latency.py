"""suites/test_latency.py with pytest-benchmark: its ``benchmark`` fixture times the calls (its own
JSON gets our metrics in ``extra_info``, and those of tests that do not use it, throughput tests,
under ``iobench``), our document records the same rounds as percentiles and the warm-ups we timed;
with pytest-benchmark disabled the calls are timed with perf_counter instead, quietly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_iobench.report.schema import load_document

SUITE = Path(__file__).resolve().parent.parent / "suites" / "test_latency.py"


THROUGHPUT = """
def test_throughput(iobench_record):
    iobench_record.kind = "read"
    iobench_record.metric("read_MB_per_second", 321.0, "MB/s", "higher")
"""


@pytest.fixture
def latency_suite(pytester):
    pytester.makepyfile(test_latency=SUITE.read_text())
    return pytester


def test_latency_suite_records_benchmark_rounds(latency_suite):
    latency_suite.makepyfile(test_throughput=THROUGHPUT)
    result = latency_suite.runpytest("--iobench-libraries=posix", "--iobench-latency-rounds=5",
                                     "--benchmark-json=bench.json", "--iobench-report=none")
    result.assert_outcomes(passed=4)
    document = load_document(latency_suite.path / "reports" / "latest.json")
    output = json.loads((latency_suite.path / "bench.json").read_text())
    benchmarks = {b["fullname"]: b for b in output["benchmarks"]}
    assert len(benchmarks) == 3
    # a test without the benchmark fixture reaches pytest-benchmark's JSON too
    assert output["iobench"]["tests"]["test_throughput.py::test_throughput"]["metrics"] == {
        "read_MB_per_second": {"value": 321.0, "unit": "MB/s", "direction": "higher"}}
    latency_tests = [t for t in document["tests"] if t["kind"] == "latency"]
    assert len(latency_tests) == 3 and len(output["iobench"]["tests"]) == 4
    for test in latency_tests:
        assert test["kind"] == "latency"
        assert test["params"]["storage"] == "local" and test["params"]["library"] == "posix"
        assert test["details"]["latency"]["timer"] == "pytest-benchmark"
        p50 = test["metrics"]["latency_p50_us"]
        assert p50["unit"] == "us" and p50["direction"] == "lower" and len(p50["repeats"]) == 5
        assert len(p50["warmup"]) == 2 and all(w > 0 for w in p50["warmup"]), "the warm-up rounds are recorded"
        assert p50["min"] <= p50["value"] <= test["metrics"]["latency_p99_us"]["value"] <= p50["max"]
        stats = benchmarks[test["id"]]["stats"]
        assert p50["value"] == pytest.approx(stats["median"] * 1e6)
        assert p50["min"] == pytest.approx(stats["min"] * 1e6)
        extra = benchmarks[test["id"]]["extra_info"]["iobench"]
        assert extra["latency_p50_us"] == {"value": p50["value"], "unit": "us", "direction": "lower"}
        assert output["iobench"]["tests"][test["id"]]["metrics"]["latency_p50_us"] == extra["latency_p50_us"]
    get = next(t for t in document["tests"] if "[get-" in t["id"])
    assert get["metrics"]["object_MB_per_second"]["value"] == pytest.approx(
        4096 / (get["metrics"]["latency_p50_us"]["value"] * 1e-6) / 1e6)


def test_latency_suite_without_pytest_benchmark_timing(latency_suite):
    result = latency_suite.runpytest("--iobench-libraries=posix", "--iobench-latency-rounds=4", "--benchmark-disable",
                                     "-k", "stat", "--iobench-report=none")
    result.assert_outcomes(passed=1)
    assert "PytestBenchmarkWarning" not in result.stdout.str(), "timing the calls ourselves is not worth a warning"
    test = load_document(latency_suite.path / "reports" / "latest.json")["tests"][0]
    assert test["details"]["latency"]["timer"] == "time.perf_counter"
    p50 = test["metrics"]["latency_p50_us"]
    assert len(p50["repeats"]) == 4 and len(p50["warmup"]) == 2
