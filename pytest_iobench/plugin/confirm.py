"""Regressions that reproduce (``--iobench-confirm N``, default 1).

On a shared machine a whole case can run slow for reasons that are not the storage's: another
job's burst of I/O, a noisy neighbour of the VM. Its repeats then differ from the baseline's as a
whole, and no statistic over one session can call that noise without also hiding a real
slowdown of the same size. What tells them apart is time: a stall passes, a slower storage stays.
So when the gate is on, each test whose metrics regress is run again at the end of the session
(after every other test, its fixtures set up anew), up to N times while it still regresses; the
document keeps the last run's figures and, in ``details.confirmation``, the first run's
regressed metrics. A re-run that fails or is skipped measures nothing: the first run's figures
and regression stand. The gate (report/compare.py) counts the regressions of the last run, and lists
the others as not reproduced.

Not under xdist: the controller runs no tests to run again (the terminal says so).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from ..storage import interrupts
from .options import BASELINE_KEY, get_settings, is_worker
from .records import RECORD_KEY


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, Any, Any]:
    result = yield
    settings = get_settings(session.config)
    baseline = session.config.stash.get(BASELINE_KEY, None)
    if (baseline is None or settings.fail_regression is None or settings.confirm < 1 or is_worker(session.config)
            or session.shouldfail or session.shouldstop or interrupts.signalled()):
        return result
    results = session.config.pluginmanager.get_plugin("iobench-results")
    if session.config.pluginmanager.has_plugin("dsession"):  # xdist's controller
        _say(session, "iobench confirm: not under xdist (-n): regressions are gated on the first run")
        return result
    if results is None:
        return result
    _confirm(session, baseline, settings, results.collector)
    return result


def _confirm(session: pytest.Session, baseline: dict[str, Any], settings: Any, collector: Any) -> None:
    from _pytest.runner import runtestprotocol  # how pytest itself runs an item's three phases

    from ..report.compare import regressed_tests
    from ..report.plots import short_id
    from ..report.text import fmt_percent

    items = {item.nodeid: item for item in session.items}
    first_runs: dict[str, dict[str, Any]] = {}
    for attempt in range(1, settings.confirm + 1):
        entries = [e for e in collector.entries() if e["id"] in items and e["outcome"] == "passed"]
        regressed = regressed_tests(baseline, entries, threshold=float(settings.fail_regression),
                                    overrides=settings.fail_regression_overrides)
        if not regressed:
            return
        for test_id, changes in regressed.items():
            first_runs.setdefault(test_id, {c.metric: {"value": c.current, "change": c.change} for c in changes})
            shown = ", ".join(f"{c.metric} {fmt_percent(c.change, signed=True)}" for c in changes[:3])
            _say(session, f"iobench confirm: {short_id(test_id)} regressed ({shown}); "
                          f"running it again ({attempt} of {settings.confirm})")
        todo = [items[test_id] for test_id in regressed]
        for index, item in enumerate(todo):
            if interrupts.signalled():
                return
            before = collector.tests[item.nodeid]
            if RECORD_KEY in item.stash:  # a new record for the new run
                del item.stash[RECORD_KEY]
            reports = runtestprotocol(item, log=False, nextitem=todo[index + 1] if index + 1 < len(todo) else None)
            unmeasured = next((r for r in reports if r.failed or r.skipped), None)
            if unmeasured is not None:
                # a re-run that fails or is skipped says nothing of speed: the first run's figures
                # stand, and with them its regression (a skip must not make it "not reproduced")
                before = dict(before, details=dict(before.get("details") or {}))
                before["details"]["confirmation"] = {
                    "reruns": attempt, "first_run": first_runs[item.nodeid],
                    ("skipped_rerun" if unmeasured.skipped else "failed_rerun"): _last_line(unmeasured),
                }
                collector.tests[item.nodeid] = before
                items.pop(item.nodeid)  # not run again
                continue
            entry = collector.tests[item.nodeid]  # the re-run's record (results.py, at its teardown)
            entry.setdefault("details", {})["confirmation"] = {"reruns": attempt, "first_run": first_runs[item.nodeid]}


def _last_line(report: pytest.TestReport) -> str:
    """What a failed re-run ended on, or why a re-run was skipped."""
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")[:300]  # (path, line, reason)
    text = report.longreprtext.strip()
    return text.splitlines()[-1][:300] if text else ""


def _say(session: pytest.Session, line: str) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)
