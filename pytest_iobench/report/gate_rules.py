"""The gate's rules, once for both commands that gate: ``pytest --iobench-compare ...`` and
``iobench report RUN BASELINE --fail-regression ...``.

A gate compares with a baseline: a threshold asked for without one would let a job pass with
nothing compared, so it is an error, and so is ``fail-missing`` without the rest of the gate.
A value from an ini file (or a default) is a project's default for the runs that do compare,
so it alone is no error.
"""

from __future__ import annotations

from dataclasses import dataclass

#: sources of a value that is a project default, not a request of this run
_DEFAULT_SOURCES = ("ini", "default")


@dataclass(frozen=True)
class GateNames:
    """How a command names the gate's inputs in its messages."""

    threshold: str
    missing: str
    baseline: str


PYTEST_NAMES = GateNames("--iobench-fail-regression", "--iobench-fail-missing", "--iobench-compare PATH")
REPORT_NAMES = GateNames("--fail-regression", "--fail-missing", "BASELINE.json")


def gate_problems(*, baseline: str | None, threshold: object | None, fail_missing: bool,
                  names: GateNames, threshold_source: str = "command line",
                  missing_source: str = "command line") -> list[str]:
    """Every problem of the gate asked for, one line each ([] when it can run as asked)."""
    problems = []
    if threshold is not None and not baseline and not threshold_source.startswith(_DEFAULT_SOURCES):
        problems.append(f"{names.threshold} ({threshold_source}) needs a baseline to compare with: "
                        f"give {names.baseline} (an earlier result document)")
    if fail_missing and not missing_source.startswith(_DEFAULT_SOURCES) and (not baseline or threshold is None):
        problems.append(f"{names.missing} ({missing_source}) is part of the gate: give "
                        f"{names.baseline} and {names.threshold} PCT too")
    return problems
