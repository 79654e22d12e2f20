"""The gate's rules are one function for pytest's options and for ``iobench report``."""

from __future__ import annotations

import pytest

from pytest_iobench.__main__ import main
from pytest_iobench.report.gate_rules import PYTEST_NAMES, REPORT_NAMES, gate_problems


@pytest.mark.parametrize("baseline,threshold,fail_missing,expected", [
    ("base.json", 0.1, True, 0), (None, None, False, 0), (None, 0.1, False, 1), ("base.json", None, True, 1),
    (None, 0.1, True, 2), (None, None, True, 1),
], ids=["gate", "nothing", "no-baseline", "no-threshold", "both", "missing-alone"])
def test_the_same_requests_have_the_same_problems_in_both_commands(baseline, threshold, fail_missing, expected):
    for names in (PYTEST_NAMES, REPORT_NAMES):
        found = gate_problems(baseline=baseline, threshold=threshold, fail_missing=fail_missing, names=names)
        assert len(found) == expected, found
        assert all("\n" not in line for line in found)


def test_an_ini_value_alone_is_no_problem():
    assert gate_problems(baseline=None, threshold=0.1, fail_missing=True, names=PYTEST_NAMES,
                         threshold_source="ini iobench_fail_regression",
                         missing_source="ini iobench_fail_missing") == []


def test_iobench_report_refuses_a_gate_without_a_baseline(tmp_path, capsys):
    assert main(["report", str(tmp_path / "run.json"), "--fail-regression", "10%", "--fail-missing"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --fail-regression (command line) needs a baseline") and "--fail-missing" in err
