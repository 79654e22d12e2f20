"""Baselines and gating: a metric 20% better in the baseline fails the session at 10% and names the
test and metric; the same run compared with itself passes; directions, per-metric overrides, new
and missing tests, machine differences; bad baselines and thresholds are one-line usage errors."""

from __future__ import annotations

import copy
import json

import pytest

from pytest_iobench.report.compare import compare, worse_by
from pytest_iobench.report.schema import load_document
from pytest_iobench.report.thresholds import Override, parse_override, parse_percentage, threshold_for

SYNTHETIC = """
def test_read(iobench_record):
    iobench_record.kind = "read"
    iobench_record.metric("read_MB_per_second", 400.0, "MB/s", "higher")
    iobench_record.metric("file_bytes", 4096, "B", "none")

def test_latency(iobench_record):
    iobench_record.kind = "latency"
    iobench_record.metric("latency_p50_us", 100.0, "us", "lower")

def test_train(iobench_record):
    iobench_record.kind = "train"
    iobench_record.metric("train_au_percent", 95.0, "%", "higher")
"""


@pytest.fixture
def first_run(pytester):
    """A run of the synthetic suite and its document (the baseline of the tests below)."""
    pytester.makepyfile(test_synthetic=SYNTHETIC)
    pytester.runpytest("--iobench-json=base.json", "--iobench-report=none").assert_outcomes(passed=3)
    return load_document(pytester.path / "base.json")


def save(pytester, document, name="baseline.json"):
    (pytester.path / name).write_text(json.dumps(document))
    return name


def changed(document, test_name, metric, factor):
    document = copy.deepcopy(document)
    for test in document["tests"]:
        if test["id"].endswith("::" + test_name):
            entry = test["metrics"][metric]
            entry["value"] *= factor
            entry["repeats"] = [v * factor for v in entry["repeats"]]
            entry["min"], entry["max"] = min(entry["repeats"]), max(entry["repeats"])
    return document


def test_baseline_20_percent_better_fails_at_10_percent(pytester, first_run):
    baseline = save(pytester, changed(first_run, "test_read", "read_MB_per_second", 1.20))
    result = pytester.runpytest(f"--iobench-compare={baseline}", "--iobench-fail-regression=10%",
                                "--iobench-report=none")
    result.assert_outcomes(passed=3)
    assert result.ret == 1, "a regression fails the session though every test passed"
    result.stdout.fnmatch_lines([
        "*- iobench comparison -*",
        "*regressions beyond the threshold and the noise (1):",
        "*test*metric*baseline*current*change (- worse)*threshold*spread",
        "*test_read*read_MB_per_second*480 MB/s*400 MB/s*-16.7%*10.0%*none",
    ])
    # the verdict is the session's very last line, after pytest's own summary
    assert result.outlines[-1] == ("iobench gate: FAILED, 1 regression (worst: test_read read_MB_per_second -16.7%); "
                                   "no spread: threshold only")
    document = load_document(pytester.path / "reports" / "latest.json")
    assert document["run"]["exit_status"] == 1
    regressions = [c for c in document["comparison"]["changes"] if c["status"] == "regression"]
    assert [(c["id"], c["metric"]) for c in regressions] == [("test_synthetic.py::test_read", "read_MB_per_second")]


def test_lower_is_better_metric_20_percent_better_in_the_baseline_fails(pytester, first_run):
    baseline = save(pytester, changed(first_run, "test_latency", "latency_p50_us", 1 / 1.20))
    result = pytester.runpytest(f"--iobench-compare={baseline}", "--iobench-fail-regression=10%",
                                "--iobench-report=none")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*test_latency*latency_p50_us*83.3 us*100 us*-20.0%*10.0%*"])


def test_same_run_compared_with_itself_passes(pytester, first_run):
    result = pytester.runpytest("--iobench-compare=base.json", "--iobench-fail-regression=10%", "--iobench-report=none")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*compared with base.json*threshold 10.0%", "*3 metrics unchanged"])
    assert "FAILED" not in result.stdout.str()


def test_improvement_and_size_change_do_not_fail(pytester, first_run):
    baseline = changed(first_run, "test_read", "read_MB_per_second", 0.5)  # the run is twice as fast
    baseline = changed(baseline, "test_read", "file_bytes", 10)  # direction none: never compared
    result = pytester.runpytest(f"--iobench-compare={save(pytester, baseline)}", "--iobench-fail-regression=10%",
                                "--iobench-report=none")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*improvements (1):", "*test_read*read_MB_per_second*200 MB/s*400 MB/s*+100.0%*"])


def test_without_fail_regression_the_comparison_is_shown_but_does_not_fail(pytester, first_run):
    baseline = save(pytester, changed(first_run, "test_read", "read_MB_per_second", 2.0))
    result = pytester.runpytest(f"--iobench-compare={baseline}", "--iobench-report=none")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*not gating: no --iobench-fail-regression*",
                                 "*regressions beyond the threshold and the noise (1):"])


def test_ini_override_loosens_one_metric(pytester, first_run):
    baseline = save(pytester, changed(first_run, "test_train", "train_au_percent", 1.20))
    pytester.makeini("[pytest]\niobench_fail_regression_overrides =\n    train_au_percent=25%\n    latency_*=off\n")
    result = pytester.runpytest(f"--iobench-compare={baseline}", "--iobench-fail-regression=10%",
                                "--iobench-report=none")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*overrides train_au_percent=25%, latency_*=off*"])
    pytester.makeini("[pytest]\niobench_fail_regression_overrides = train_au_percent=2%\n")
    result = pytester.runpytest(f"--iobench-compare={baseline}", "--iobench-fail-regression=50%",
                                "--iobench-report=none")
    assert result.ret == 1, "a tighter override gates a metric the default threshold would let through"
    result.stdout.fnmatch_lines(["*test_train*train_au_percent*114%*95%*2.0%*"])


def test_new_and_missing_tests_and_machine_differences_are_shown(pytester, first_run):
    baseline = copy.deepcopy(first_run)
    baseline["tests"] = [t for t in baseline["tests"] if not t["id"].endswith("test_train")]
    gone = copy.deepcopy(baseline["tests"][0])
    gone["id"] = "test_synthetic.py::test_removed"
    baseline["tests"].append(gone)
    baseline["machine"]["hostname"] = "lab-node-7"
    baseline["machine"]["memory_bytes"] = 16 * 2**30
    result = pytester.runpytest(f"--iobench-compare={save(pytester, baseline)}", "--iobench-fail-regression=10%",
                                "--iobench-report=none")
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "*the machines differ: hostname lab-node-7 -> *; memory bytes 17179869184 -> *",
        "*new tests (not in the baseline) (1):", "*test_train",
        "*missing tests (in the baseline, not run) (1):", "*test_removed",
    ])


def test_missing_baseline_metrics_are_shown_and_fail_only_when_asked(pytester, first_run):
    baseline = copy.deepcopy(first_run)
    gone = copy.deepcopy(baseline["tests"][0])  # test_read: read_MB_per_second and file_bytes (a size)
    gone["id"] = "test_synthetic.py::test_read_minio"  # a library this run did not have
    baseline["tests"].append(gone)
    latency = next(t for t in baseline["tests"] if t["id"].endswith("::test_latency"))
    latency["metrics"]["latency_p99_us"] = dict(latency["metrics"]["latency_p50_us"])
    latency["metrics"]["latency_p90_us"] = dict(latency["metrics"]["latency_p50_us"])
    name = save(pytester, baseline)
    result = pytester.runpytest(f"--iobench-compare={name}", "--iobench-fail-regression=10%",
                                "--iobench-fail-regression-overrides=latency_p90_us=off", "--iobench-report=none")
    assert result.ret == 0, "a missing test or metric alone does not fail the gate"
    result.stdout.fnmatch_lines([
        "*baseline metrics missing (2): not checked by the gate*",
        "*test_read_minio read_MB_per_second: its test did not run",
        "*test_latency latency_p99_us: not recorded in this run",
        "*missing tests (in the baseline, not run) (1):",
        "iobench gate: passed (3 metrics, 0 regressions; "
        "2 baseline metrics missing (not checked): test_read_minio read_MB_per_second, test_latency latency_p99_us); "
        "no spread: threshold only",
    ])
    document = load_document(pytester.path / "reports" / "latest.json")
    assert {(m["metric"], m["reason"]) for m in document["comparison"]["missing_metrics"]} == {
        ("read_MB_per_second", "its test did not run"), ("latency_p99_us", "not recorded in this run")}
    strict = compare(baseline, document, threshold=0.1, overrides=[parse_override("latency_p90_us=off")],
                     fail_missing=True)
    assert strict.failed and not strict.regressions and len(strict.missing_metrics) == 2
    itself = compare(first_run, first_run, threshold=0.1, fail_missing=True)
    assert not itself.missing_metrics and not itself.failed

    # the plugin's gate: --iobench-fail-missing fails the session on them (every test passed)
    result = pytester.runpytest(f"--iobench-compare={name}", "--iobench-fail-regression=10%",
                                "--iobench-fail-regression-overrides=latency_p90_us=off",
                                "--iobench-fail-missing=true", "--iobench-report=none")
    result.assert_outcomes(passed=3)
    assert result.ret == 1, "missing gated metrics fail the gate when asked"
    result.stdout.fnmatch_lines([
        "*baseline metrics missing (2): they fail the gate (fail-missing)*",
        "iobench gate: FAILED (3 metrics, 0 regressions; 2 baseline metrics missing "
        "(failing the gate): test_read_minio read_MB_per_second, test_latency latency_p99_us); "
        "no spread: threshold only",
    ])
    document = load_document(pytester.path / "reports" / "latest.json")
    assert document["comparison"]["fail_missing"] is True and document["run"]["exit_status"] == 1
    # compared with itself nothing is missing: the same option passes
    result = pytester.runpytest("--iobench-compare=base.json", "--iobench-fail-regression=10%",
                                "--iobench-fail-missing=true", "--iobench-report=none")
    assert result.ret == 0


@pytest.mark.parametrize("content,message", [
    ("{not json", "not JSON (line 1, column 2"),
    ('{"hello": 1}', "not a pytest-iobench result document"),
    ('{"schema": "iobench-result", "schema_version": 99}', "schema_version 99; this pytest-iobench reads version 1"),
    ('{"schema": "iobench-result", "schema_version": 1, "run": {}}', "does not match the iobench-result schema"),
])
def test_malformed_baseline_is_a_usage_error(pytester, content, message):
    pytester.makepyfile(test_synthetic=SYNTHETIC)
    (pytester.path / "bad.json").write_text(content)
    result = pytester.runpytest("--iobench-compare=bad.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --iobench-compare: *bad.json: *{message}*"])


def test_missing_baseline_is_a_usage_error(pytester):
    result = pytester.runpytest("--iobench-compare=nowhere.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --iobench-compare: *nowhere.json: no such file*"])


@pytest.mark.parametrize("args,message", [
    (["--iobench-fail-regression=ten"],
     "--iobench-fail-regression (command line): 'ten' is not valid: give a percentage such as 10%"),
    (["--iobench-fail-regression=10"], "'10' is not valid: give a percentage such as 10%"),
    (["--iobench-fail-regression-overrides=train_au_percent"], "give METRIC=PCT or METRIC=off"),
    (["--iobench-fail-regression-overrides=au=lots"], "'lots' is not a percentage"),
])
def test_bad_threshold_is_a_usage_error(pytester, args, message):
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: *{message}*"])


# -- the rules themselves -----------------------------------------------------------------------
@pytest.mark.parametrize("baseline,current,direction,expected", [
    (100, 80, "higher", 0.20), (100, 120, "higher", -0.20), (100, 120, "lower", 0.20), (100, 80, "lower", -0.20),
    (0, 0, "lower", 0.0),
])
def test_worse_by_is_relative_to_the_baseline(baseline, current, direction, expected):
    assert worse_by(baseline, current, direction) == pytest.approx(expected)


def test_zero_baseline_change_is_infinitely_worse_or_better():
    assert worse_by(0, 1, "lower") == float("inf") and worse_by(0, 1, "higher") == float("-inf")


def test_percentages_and_overrides_parse():
    assert parse_percentage("10%") == pytest.approx(0.10) and str(parse_percentage("2.5 %")) == "2.5%"
    assert parse_override("batch_read_*=off") == Override("batch_read_*", None)
    overrides = [parse_override("batch_*=50%"), parse_override("batch_read_p99_seconds=5%")]
    assert threshold_for("batch_read_p99_seconds", 0.1, overrides) == pytest.approx(0.05), "an exact name wins"
    assert threshold_for("batch_read_p50_seconds", 0.1, overrides) == pytest.approx(0.50)
    assert threshold_for("train_au_percent", 0.1, overrides) == pytest.approx(0.10)


def test_unit_change_is_not_compared(first_run):
    current = copy.deepcopy(first_run)
    current["tests"][0]["metrics"]["read_MB_per_second"]["unit"] = "MiB/s"
    result = compare(first_run, current, threshold=0.1)
    assert not result.failed
    assert {"id": "test_synthetic.py::test_read", "metric": "read_MB_per_second",
            "reason": "baseline is MB/s (higher is better), now MiB/s (higher is better)"} in result.not_compared


def test_shipped_sample_baselines_are_valid_documents():
    from pathlib import Path

    shipped = sorted((Path(__file__).resolve().parent.parent / "fixtures" / "baselines").glob("*.json"))
    assert shipped, "fixtures/baselines/ holds at least one sample document"
    for path in shipped:
        document = load_document(path)
        assert document["tests"] and any(t["metrics"] for t in document["tests"])
        itself = compare(document, document, threshold=0.1)
        assert not itself.failed and not itself.new_tests and not itself.missing_tests


def test_a_gate_without_a_baseline_stops_at_start(pytester, first_run):
    result = pytester.runpytest("--iobench-fail-regression=10%", "--iobench-report=none")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --iobench-fail-regression (command line) needs a baseline to compare with: "
                                 "give --iobench-compare PATH*"])
    # in the ini file it is the project's default threshold for the runs that do compare
    pytester.makeini("[pytest]\niobench_fail_regression = 10%\n")
    assert pytester.runpytest("--iobench-report=none").ret == 0


@pytest.mark.parametrize("args", [["--iobench-fail-missing=true"],
                                  ["--iobench-fail-missing=yes", "--iobench-compare=base.json"]],
                         ids=["no-baseline", "no-threshold"])
def test_fail_missing_without_a_gate_stops_at_start(pytester, first_run, args):
    result = pytester.runpytest(*args, "--iobench-report=none")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --iobench-fail-missing (command line) is part of the gate: give "
                                 "--iobench-compare PATH and --iobench-fail-regression PCT too"])
    result = pytester.runpytest("--iobench-fail-missing=maybe", "--iobench-report=none")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --iobench-fail-missing (command line): 'maybe' is not valid: give true or false*"])
    # in the ini file it is the project's default for the runs that gate
    pytester.makeini("[pytest]\niobench_fail_missing = true\n")
    assert pytester.runpytest("--iobench-report=none").ret == 0
