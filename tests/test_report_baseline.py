"""A baseline of several sessions (report/baseline.py): pooled repeats, and a gate whose band
spans the drift between sessions that one session's repeats cannot show."""

from __future__ import annotations

import json
import statistics
from datetime import UTC, datetime

import numpy as np
import pytest

from pytest_iobench.report import environment
from pytest_iobench.report.baseline import load_baseline, pool
from pytest_iobench.report.compare import compare
from pytest_iobench.report.document import build_document
from pytest_iobench.report.schema import DocumentError, problems
from pytest_iobench.report.text import gate_line

MACHINE, SOFTWARE = environment.machine(), environment.software()
CASE = "suites/test_throughput.py::test_throughput[1MiB-get-local-posix-t1]"
OTHER = "suites/test_latency.py::test_latency[put-4KiB-local-posix]"


def session(seed: int, level: float, *, repeats: int = 5, started: str = "2026-12-03T06:00:00Z",
            unfit: str = "", only_first: bool = False) -> dict:
    """A session whose MB/s figure sits at ``level`` (its repeats 2% apart), and a latency."""
    rng = np.random.default_rng(seed)
    rates = [float(v) for v in level * np.exp(rng.normal(0, 0.02, repeats))]
    calls = [float(v) for v in 140 * np.exp(rng.normal(0, 0.05, 20 * repeats))]

    def metric(values: list[float], unit: str, direction: str) -> dict:
        entry = {"value": statistics.median(values), "unit": unit, "direction": direction, "repeats": values,
                 "warmup": [], "min": min(values), "max": max(values)}
        return {**entry, "unfit": unfit} if unfit else entry

    test = {"id": CASE, "suite": "test_throughput", "kind": "throughput", "params": {}, "outcome": "passed",
            "message": "", "duration_s": 1.0, "setup_s": 0.0, "teardown_s": 0.0, "worker": None,
            "metrics": {"throughput": metric(rates, "MB/s", "higher")}, "criteria": [], "warnings": [],
            "details": {}}
    tests = [test] if only_first else [
        test, {**test, "id": OTHER, "suite": "test_latency", "kind": "latency",
               "metrics": {"latency_p50_us": metric(calls, "us", "lower")}}]
    moment = datetime.fromisoformat(started.replace("Z", "+00:00")).astimezone(UTC)
    return build_document(tests, started=moment, finished=moment, exit_status=0, command=["pytest"], rootdir="/ci",
                          settings={"repeat": f"{repeats} (command line)"}, machine=MACHINE, software=SOFTWARE)


def test_pooling_keeps_every_repeat_and_the_last_documents_shape():
    first = session(1, 100.0, started="2026-12-03T05:00:00Z", only_first=True)
    second = session(2, 140.0, started="2026-12-03T06:00:00Z", unfit="too short: 2 slices")
    pooled = pool([first, second])
    rates = pooled["tests"][0]["metrics"]["throughput"]
    assert rates["repeats"] == first["tests"][0]["metrics"]["throughput"]["repeats"] + \
        second["tests"][0]["metrics"]["throughput"]["repeats"]
    assert rates["value"] == statistics.median(rates["repeats"]) and rates["unfit"] == "too short: 2 slices"
    # a test of one session only keeps that session's figures
    assert [t["id"] for t in pooled["tests"]] == [CASE, OTHER]
    assert pooled["tests"][1]["metrics"] == second["tests"][1]["metrics"]
    assert pooled["run"]["id"] == f"{first['run']['id']},{second['run']['id']}"
    assert pooled["run"]["started"] == first["run"]["started"] < second["run"]["started"]
    assert pool([first]) is first and first["tests"][0]["metrics"]["throughput"]["repeats"] != rates["repeats"]
    assert not problems(second), "pooling copies: the documents it read are unchanged"


def test_a_drift_between_sessions_trips_one_baseline_but_not_a_pooled_one():
    # the same code, three sessions: the second baseline session ran 30% slower than the first
    # (what the real pair of docs/results.md shows for some cases), the current one in between
    fast, slow = session(1, 140.0), session(2, 100.0)
    current = session(3, 108.0)
    alone = compare(fast, current, threshold=0.10)
    assert [(c.id, c.metric) for c in alone.regressions] == [(CASE, "throughput")]
    both = compare(pool([fast, slow]), current, threshold=0.10)
    assert not both.regressions and not both.failed
    (change,) = [c for c in both.changes if c.metric == "throughput"]
    assert change.status == "within spread" and change.baseline_repeats == 10
    assert gate_line(both.to_dict(), both.failed) == "iobench gate: passed (2 metrics, 0 regressions)"


def test_a_slowdown_beyond_every_pooled_session_is_still_caught():
    fast, slow = session(1, 140.0), session(2, 100.0)
    slower = session(3, 75.0)  # 25% below the slower session
    result = compare(pool([fast, slow]), slower, threshold=0.10)
    assert [(c.id, c.metric) for c in result.regressions] == [(CASE, "throughput")] and result.failed


def test_a_baseline_names_the_document_that_is_wrong(tmp_path):
    good = tmp_path / "a.json"
    good.write_text(json.dumps(session(1, 100.0)))
    (tmp_path / "b.json").write_text("{}")
    with pytest.raises(DocumentError, match=r"b\.json: not a pytest-iobench result document"):
        load_baseline("a.json,b.json", tmp_path)
    with pytest.raises(DocumentError, match=r"c\.json: no such file"):
        load_baseline(f"{good}, c.json", tmp_path)
    pooled = load_baseline(" a.json , a.json ", tmp_path)
    assert len(pooled["tests"][0]["metrics"]["throughput"]["repeats"]) == 10


def test_the_report_command_gates_on_several_baselines(tmp_path, capsys):
    from pytest_iobench.__main__ import main

    for name, seed, level in (("fast", 1, 140.0), ("slow", 2, 100.0), ("run", 3, 108.0)):
        (tmp_path / f"{name}.json").write_text(json.dumps(session(seed, level)))
    run = str(tmp_path / "run.json")
    assert main(["report", run, str(tmp_path / "fast.json"), "--fail-regression", "10%", "--format", "none"]) == 1
    capsys.readouterr()
    both = f"{tmp_path / 'fast.json'},{tmp_path / 'slow.json'}"
    assert main(["report", run, both, "--fail-regression", "10%", "--format", "md"]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("iobench gate: passed (2 metrics, 0 regressions)")
    assert (tmp_path / "run-vs-fast+1.md").is_file()
