"""--iobench-confirm: a test whose metrics regress is run again at the end of the session, and
the gate counts the regression only when the re-run regresses too. The slowdowns are real: gets
through a storage wrapper that sleeps, for the first run only (a stall that passes) or for every
run (a slower storage)."""

from __future__ import annotations

import json

import pytest

SUITE = """
import os
import pathlib
import time

import pytest

from pytest_iobench.storage.throughput import transfer
from pytest_iobench.storage.wrapping import WrappedStorage


def delay():
    '''This run's delay per get: the n-th run of the test takes the n-th of SLOWED_DELAYS (the
    last one from there on); RUNS counts the runs.'''
    runs = pathlib.Path(os.environ["RUNS"])
    n = int(runs.read_text()) if runs.exists() else 0
    runs.write_text(str(n + 1))
    delays = os.environ["SLOWED_DELAYS"].split(",")
    this = delays[min(n, len(delays) - 1)]
    if this == "skip":  # this run finds what it needs gone
        pytest.skip("the storage is not there this time")
    return float(this)


class Slowed(WrappedStorage):
    def __init__(self, inner, seconds):
        super().__init__(inner)
        self.seconds = seconds

    def get(self, key):
        time.sleep(self.seconds)
        return self.inner.get(key)


def test_get(storage, iobench_record):
    keys = [f"o{i}" for i in range(4)]
    for key in keys:
        storage.put(key, b"x" * 4096)
    slowed = Slowed(storage, delay())

    def run():
        return {"throughput": transfer(slowed, "get", keys, 1).bytes_per_second / 1e6}

    iobench_record.measure(run, {"throughput": ("MB/s", "higher")})
"""

ARGS = ["--iobench-storage=local", "--iobench-libraries=posix", "--iobench-repeat=5", "--iobench-report=none"]
GATE = ["--iobench-compare=base.json", "--iobench-fail-regression=10%"]


@pytest.fixture
def suite(pytester, monkeypatch):
    """The suite, and a baseline of it with 100 ms per get (which dominates what a loaded machine
    adds to a 4 KiB get)."""
    pytester.makepyfile(test_slowed=SUITE)
    runs = pytester.path / "runs"
    monkeypatch.setenv("RUNS", str(runs))
    monkeypatch.setenv("SLOWED_DELAYS", "0.1")
    pytester.runpytest(*ARGS, "--iobench-json=base.json").assert_outcomes(passed=1)
    runs.unlink()
    return runs


def run(pytester, monkeypatch, delays, *extra):
    monkeypatch.setenv("SLOWED_DELAYS", delays)
    result = pytester.runpytest(*ARGS, *GATE, "--iobench-json=run.json", *extra)
    result.assert_outcomes(passed=1)  # a re-run is not another test
    return result, json.loads((pytester.path / "run.json").read_text())


def test_a_stall_that_passes_is_not_a_regression(pytester, monkeypatch, suite):
    # every get 25% longer in the first run only: 20% less throughput, then back
    result, document = run(pytester, monkeypatch, "0.125,0.1")
    assert result.ret == 0, result.stdout.str()
    assert suite.read_text() == "2", "the test ran once more"
    assert result.outlines[-1] == "iobench gate: passed (1 metric, 0 regressions); 1 test not reproduced when run again"
    result.stdout.fnmatch_lines(["iobench confirm: test_get[[]local-posix[]] regressed (throughput -*%); "
                                 "running it again (1 of 1)",
                                 "*not reproduced (1): regressed in the first run, not when run again*",
                                 "*test_get[[]local-posix[]] throughput: first run -*%, 1 re-run"])
    test = document["tests"][0]
    first = test["details"]["confirmation"]["first_run"]["throughput"]
    assert test["details"]["confirmation"]["reruns"] == 1
    assert first["change"] == pytest.approx(-0.2, abs=0.1)
    assert test["metrics"]["throughput"]["value"] > first["value"] * 1.1, "the document has the re-run's figures"
    assert document["comparison"]["not_reproduced"] == [
        {"id": test["id"], "metric": "throughput", "first_change": first["change"], "reruns": 1}]
    assert document["comparison"]["changes"][0]["status"] != "regression"


def test_a_slower_storage_stays_a_regression_through_every_re_run(pytester, monkeypatch, suite):
    result, document = run(pytester, monkeypatch, "0.125", "--iobench-confirm=2")
    assert result.ret == 1
    assert suite.read_text() == "3", "run, then twice again"
    assert result.outlines[-1].startswith(
        "iobench gate: FAILED, 1 regression (worst: test_get[local-posix] throughput -"), result.outlines[-1]
    test = document["tests"][0]
    assert test["details"]["confirmation"]["reruns"] == 2
    assert document["comparison"]["not_reproduced"] == []


def test_a_re_run_that_is_skipped_keeps_the_first_runs_regression(pytester, monkeypatch, suite):
    # the first run is slower; its re-run skips: that says nothing of speed, the regression stands
    result, document = run(pytester, monkeypatch, "0.125,skip")
    assert result.ret == 1 and suite.read_text() == "2", "run, then once again"
    assert result.outlines[-1].startswith(
        "iobench gate: FAILED, 1 regression (worst: test_get[local-posix] throughput -"), result.outlines[-1]
    test = document["tests"][0]
    assert test["outcome"] == "passed" and test["metrics"]["throughput"]["value"] > 0
    assert test["details"]["confirmation"]["skipped_rerun"] == "the storage is not there this time"
    assert document["comparison"]["not_reproduced"] == []


def test_confirm_0_gates_the_first_run(pytester, monkeypatch, suite):
    result, document = run(pytester, monkeypatch, "0.125,0.1", "--iobench-confirm=0")
    assert result.ret == 1 and suite.read_text() == "1", "no re-run"
    assert "confirmation" not in document["tests"][0]["details"]
    assert "iobench confirm" not in result.stdout.str()
