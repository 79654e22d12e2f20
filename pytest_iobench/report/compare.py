"""Comparing a run with a baseline: by test id and metric, knowing which way each metric is better.

A metric's change is measured against the baseline value: ``worse_by`` is how much worse the
current value is, as a fraction of the baseline (higher is better: (baseline - current) /
|baseline|; lower is better: (current - baseline) / |baseline|), negative when it is better.
A change counts (a regression or an improvement) only when it is beyond the metric's threshold
*and* beyond the noise: larger in absolute terms than the unit's noise floor
(``stats.NOISE_FLOORS``), and, when both runs kept at least ``stats.MIN_REPEATS`` repeats of the
metric (``--iobench-repeat``), beyond their spread: the threshold is then counted from the edge of
the baseline's band (its worst repeat, for an improvement its best) instead of its median, and
the repeats must differ as a whole (one-sided Mann-Whitney test, p <= ``stats.ALPHA``); repeats
that are outliers of their own run (``stats.without_outliers``: a run stalled by another job) are
left out of both. Single values have no spread: they are gated on the threshold (and the noise
floor) alone, and the comparison says so. A figure flagged unfit for gating in either run
(``metric.unfit``: too short or too unsteady) is not gated. Metrics whose direction is "none"
(sizes, counts) are not compared.

A gated metric of the baseline that this run does not have (its test did not run, or did not
record it: a library not installed, a test deselected) is listed in ``missing_metrics``. It does
not fail the gate unless ``fail_missing`` is set (``--iobench-fail-missing``, ``report
--fail-missing``): a skipped library must not fail a gate, but the gate says how much it did not
check.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from . import stats
from .thresholds import DEFAULT_THRESHOLD, Override, threshold_for

#: machine fields whose difference makes the two runs' figures hard to compare
MACHINE_FIELDS = (
    ("hostname", ("hostname",)),
    ("cpu model", ("cpu", "model")),
    ("logical cores", ("cpu", "logical_cores")),
    ("memory bytes", ("memory_bytes",)),
    ("os release", ("os", "release")),
)
#: settings that say where the results go or how they are judged, not what was measured
_UNMEASURED_SETTINGS = {"json", "report", "compare", "fail-regression", "fail-regression-overrides", "fail-missing"}


@dataclass
class Change:
    id: str
    metric: str
    unit: str
    direction: str
    baseline: float
    current: float
    relative_change: float | None
    worse_by: float | None
    threshold: float | None
    status: str  # regression, improvement, unchanged, within noise, within spread, unfit, not gated
    #: the change as a fraction of the baseline, negative when worse (-worse_by): the sign the
    #: terminal, the plot and the gate line share
    change: float | None = None
    #: "repeats": both runs' repeats compared (p_value); "none": single values, threshold only
    spread: str = "none"
    p_value: float | None = None
    #: the change of the current median from the edge of the baseline's band (its worst repeat
    #: for a change for the worse, its best for one for the better), negative when worse
    change_from_band: float | None = None
    noise_floor: float = 0.0
    baseline_repeats: int = 1
    current_repeats: int = 1
    #: why a figure is unfit for gating (either run's metric.unfit), else ""
    unfit: str = ""


@dataclass
class Comparison:
    baseline: dict[str, str]
    threshold: float
    gating: bool
    overrides: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    new_tests: list[str] = field(default_factory=list)
    missing_tests: list[str] = field(default_factory=list)
    outcome_changes: list[dict[str, str]] = field(default_factory=list)
    not_compared: list[dict[str, str]] = field(default_factory=list)
    #: gated metrics of the baseline absent from this run: {id, metric, reason}
    missing_metrics: list[dict[str, str]] = field(default_factory=list)
    #: whether missing_metrics fail the gate (``--iobench-fail-missing``, ``report --fail-missing``)
    fail_missing: bool = False
    machine_differences: list[dict[str, Any]] = field(default_factory=list)
    settings_differences: list[dict[str, Any]] = field(default_factory=list)
    #: tests whose first run regressed and whose re-runs did not (``--iobench-confirm``):
    #: {id, metric, first_change, reruns}; their figures above are the last re-run's
    not_reproduced: list[dict[str, Any]] = field(default_factory=list)

    @property
    def with_spread(self) -> int:
        """How many changes were judged on both runs' repeats (0: a single-run comparison)."""
        return sum(1 for c in self.changes if c.spread == "repeats")

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.status == "regression"]

    @property
    def improvements(self) -> list[Change]:
        return [c for c in self.changes if c.status == "improvement"]

    @property
    def failed(self) -> bool:
        """Whether the session fails: gating is on and a metric regressed beyond its threshold
        (or, with ``fail_missing``, a gated baseline metric is missing)."""
        return self.gating and (bool(self.regressions) or (self.fail_missing and bool(self.missing_metrics)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def worse_by(baseline: float, current: float, direction: str) -> float:
    """How much worse ``current`` is than ``baseline``, as a fraction of it (negative: better).
    A zero baseline gives +-inf for any change and 0 for none."""
    delta = current - baseline if direction == "lower" else baseline - current
    if baseline == 0:
        return 0.0 if delta == 0 else math.copysign(math.inf, delta)
    return delta / abs(baseline)


def status_of(worse: float, threshold: float | None, *, delta: float = math.inf, floor: float = 0.0,
              spread: Spread | None = None, unfit: str = "") -> str:
    """A change's status. ``worse``: worse_by of the medians; ``delta``: the change of the medians
    in the metric's unit; ``spread``: what the repeats say (None: single values)."""
    if threshold is None:
        return "not gated"
    if unfit:
        return "unfit"
    if abs(worse) <= threshold:
        return "unchanged"
    if abs(delta) <= floor:
        return "within noise"
    if spread is not None:
        beyond = spread.worse_than_band if worse > 0 else -spread.better_than_band
        p = spread.p_worse if worse > 0 else spread.p_better
        if beyond <= threshold or p > stats.ALPHA:
            return "within spread"
    return "regression" if worse > 0 else "improvement"


@dataclass
class Spread:
    """What two runs' repeats say about a change (outliers of each run left out)."""

    p_worse: float
    p_better: float
    #: worse_by of the current median against the baseline's worst repeat (its band's edge)
    worse_than_band: float
    #: worse_by of the current median against the baseline's best repeat (negative: better)
    better_than_band: float

    @classmethod
    def of(cls, baseline: list[float], current: list[float], direction: str) -> Spread | None:
        old, new = stats.without_outliers(baseline), stats.without_outliers(current)
        if len(old) < stats.MIN_REPEATS or len(new) < stats.MIN_REPEATS:
            return None
        median = statistics.median(new)
        return cls(stats.worse_p(old, new, direction), stats.worse_p(new, old, direction),
                   worse_by(stats.worst(old, direction), median, direction),
                   worse_by(stats.best(old, direction), median, direction))


def _repeats(metric: dict[str, Any]) -> list[float]:
    return [float(v) for v in metric.get("repeats") or [metric["value"]]]


def compare(baseline: dict[str, Any], current: dict[str, Any], *, baseline_path: str = "",
            threshold: float | None = None, overrides: Sequence[Override] = (),
            fail_missing: bool = False) -> Comparison:
    """Compare the ``current`` document with the ``baseline`` one. ``threshold`` (a fraction):
    gate on regressions beyond it; None: do not gate, and tell changes from noise at 10%.
    ``fail_missing``: a gated baseline metric this run lacks fails the gate too."""
    gating = threshold is not None
    default = float(threshold) if threshold is not None else DEFAULT_THRESHOLD
    result = Comparison(
        baseline={"path": str(baseline_path), "run_id": baseline["run"]["id"], "started": baseline["run"]["started"]},
        threshold=default, gating=gating, overrides=[str(o) for o in overrides], fail_missing=fail_missing,
    )
    before = {t["id"]: t for t in baseline["tests"]}
    now = {t["id"]: t for t in current["tests"]}
    result.new_tests = [i for i in now if i not in before]
    result.missing_tests = [i for i in before if i not in now]
    for test_id in result.missing_tests:
        _note_missing(result, test_id, before[test_id]["metrics"], "its test did not run", default, overrides)
    for test_id, test in now.items():
        old = before.get(test_id)
        if old is None:
            continue
        if old["outcome"] != test["outcome"]:
            result.outcome_changes.append({"id": test_id, "baseline": old["outcome"], "current": test["outcome"]})
        _compare_metrics(result, test_id, old["metrics"], test["metrics"], default, overrides)
    result.not_reproduced = not_reproduced(result, current["tests"])
    result.machine_differences = machine_differences(baseline["machine"], current["machine"])
    result.settings_differences = settings_differences(baseline["run"]["settings"], current["run"]["settings"])
    return result


def regressed_tests(baseline: dict[str, Any], tests: Sequence[dict[str, Any]], *, threshold: float,
                    overrides: Sequence[Override] = ()) -> dict[str, list[Change]]:
    """The tests among ``tests`` (document entries) with a metric that regresses against
    ``baseline`` at ``threshold`` (a fraction), and those metrics' changes; what the gate of a
    whole run would call a regression, for these tests alone."""
    before = {t["id"]: t for t in baseline["tests"]}
    probe = Comparison(baseline={}, threshold=threshold, gating=True)
    for test in tests:
        old = before.get(test["id"])
        if old is not None:
            _compare_metrics(probe, test["id"], old["metrics"], test["metrics"], threshold, overrides)
    found: dict[str, list[Change]] = {}
    for change in probe.regressions:
        found.setdefault(change.id, []).append(change)
    return found


def not_reproduced(result: Comparison, tests: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tests that were run again because their first run regressed (``details.confirmation``,
    plugin/confirm.py) and whose last run is no regression: one entry per metric that regressed
    at first."""
    regressed = {c.id for c in result.regressions}
    found = []
    for test in tests:
        confirmation = (test.get("details") or {}).get("confirmation")
        if not confirmation or test["id"] in regressed:
            continue
        for metric, first in confirmation["first_run"].items():
            found.append({"id": test["id"], "metric": metric, "first_change": first["change"],
                          "reruns": confirmation["reruns"]})
    return found


def _compare_metrics(result: Comparison, test_id: str, old: dict[str, Any], new: dict[str, Any], default: float,
                     overrides: Sequence[Override]) -> None:
    for name, metric in new.items():
        before = old.get(name)
        if before is None:
            if metric["direction"] != "none":
                result.not_compared.append({"id": test_id, "metric": name, "reason": "not in the baseline"})
            continue
        if metric["direction"] == "none":
            continue
        if before["unit"] != metric["unit"] or before["direction"] != metric["direction"]:
            result.not_compared.append({"id": test_id, "metric": name, "reason": (
                f"baseline is {before['unit']} ({before['direction']} is better), "
                f"now {metric['unit']} ({metric['direction']} is better)")})
            continue
        worse = worse_by(before["value"], metric["value"], metric["direction"])
        limit = threshold_for(name, default, overrides)
        finite = math.isfinite(worse)
        relative = (metric["value"] - before["value"]) / abs(before["value"]) if before["value"] else None
        old_runs, new_runs = _repeats(before), _repeats(metric)
        spread = Spread.of(old_runs, new_runs, metric["direction"])
        floor = stats.noise_floor(metric["unit"])
        unfit = "; ".join(f"{which}: {m['unfit']}" for which, m in (("baseline", before), ("current", metric))
                          if m.get("unfit"))
        status = status_of(worse, limit, delta=metric["value"] - before["value"], floor=floor,
                           spread=spread, unfit=unfit)
        band = None
        if spread is not None and math.isfinite(spread.worse_than_band):
            band = -(spread.worse_than_band if worse > 0 else spread.better_than_band)
        result.changes.append(Change(
            id=test_id, metric=name, unit=metric["unit"], direction=metric["direction"],
            baseline=before["value"], current=metric["value"], relative_change=relative,
            worse_by=worse if finite else None, threshold=limit, status=status,
            change=-worse if finite else None, spread="repeats" if spread else "none",
            p_value=(spread.p_worse if worse > 0 else spread.p_better) if spread else None,
            change_from_band=band, noise_floor=floor,
            baseline_repeats=len(old_runs), current_repeats=len(new_runs), unfit=unfit))
    gone = {name: metric for name, metric in old.items() if name not in new}
    for name, metric in gone.items():
        if metric["direction"] != "none":
            result.not_compared.append({"id": test_id, "metric": name, "reason": "not recorded in this run"})
    _note_missing(result, test_id, gone, "not recorded in this run", default, overrides)


def _note_missing(result: Comparison, test_id: str, metrics: dict[str, Any], reason: str, default: float,
                  overrides: Sequence[Override]) -> None:
    """Baseline metrics this run lacks that the gate would have checked (not sizes, not 'off')."""
    for name, metric in metrics.items():
        if metric["direction"] != "none" and threshold_for(name, default, overrides) is not None:
            result.missing_metrics.append({"id": test_id, "metric": name, "reason": reason})


def _dig(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = data
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def machine_differences(baseline: dict[str, Any], current: dict[str, Any]) -> list[dict[str, Any]]:
    differences = []
    for label, path in MACHINE_FIELDS:
        before, now = _dig(baseline, path), _dig(current, path)
        if before != now:
            differences.append({"field": label, "baseline": before, "current": now})
    return differences


def settings_differences(baseline: dict[str, Any], current: dict[str, Any]) -> list[dict[str, Any]]:
    """Settings whose value differs (where the results go and how they are judged left out)."""
    differences = []
    for name in sorted(set(baseline) | set(current)):
        if name in _UNMEASURED_SETTINGS:
            continue
        before = baseline.get(name, {}).get("value")
        now = current.get(name, {}).get("value")
        if before != now:
            differences.append({"field": name, "baseline": before, "current": now})
    return differences
