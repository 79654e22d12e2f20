"""What one test contributes to the run's result document.

A benchmark test gets a ``TestRecord`` (the ``iobench_record`` fixture), says what it measured
with ``metric`` (value, unit, direction) and what it promises with ``criterion``; diagnostics
go to ``warn`` and never into the values. ``measure`` runs a measurement with the session's
warm-up and repeat counts and records every raw value; the reported value is the median.
``latency`` turns per-call durations into percentile metrics.
"""

from __future__ import annotations

import json
import math
import operator
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .jsonable import jsonable

KINDS = ("conformance", "generate", "read", "train", "checkpoint", "latency", "throughput")
#: time units ``latency`` can record in, and seconds per unit
TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
DIRECTIONS = ("higher", "lower", "none")
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq,
}


@dataclass
class Metric:
    name: str
    value: float
    unit: str
    #: which way is better: "higher", "lower", or "none" (a size, a count: not compared)
    direction: str = "higher"
    #: every measured value (warm-ups excluded); value is their median
    repeats: list[float] = field(default_factory=list)
    warmup: list[float] = field(default_factory=list)
    #: why the figure is unfit for gating (too short, too unsteady); "" when fit
    unfit: str = ""
    #: a rate's steady state (workload/steady.py), when the test measured one
    steady: dict[str, Any] | None = None

    @property
    def min(self) -> float:
        return min(self.repeats) if self.repeats else self.value

    @property
    def max(self) -> float:
        return max(self.repeats) if self.repeats else self.value

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("name")
        data["min"], data["max"] = self.min, self.max
        for optional in ("unfit", "steady"):  # only when there is something to say
            if not data[optional]:
                data.pop(optional)
        return data


@dataclass
class Criterion:
    metric: str
    comparison: str
    threshold: float
    value: float
    passed: bool
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def explain(self) -> str:
        verdict = "met" if self.passed else "NOT met"
        text = f"{self.metric} = {self.value:g} {self.comparison} {self.threshold:g}: {verdict}"
        return f"{text} ({self.description})" if self.description else text


#: calls beyond a latency percentile it takes to gate on it (p90: 100 calls a run, p99: 1,000):
#: with fewer, the percentile is one or two calls, and one stall of the machine moves it
TAIL_CALLS = 10


@dataclass
class TestRecord:
    """The results of one test (one test id)."""

    __test__ = False  # not a test class, whatever its name says to pytest

    nodeid: str
    suite: str = ""
    kind: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Metric] = field(default_factory=dict)
    criteria: list[Criterion] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: structured extras (per-rank figures, layouts); reported, never compared
    details: dict[str, Any] = field(default_factory=dict)
    #: per S3 library, what its requests met during the test: requests, attempts, retries,
    #: throttles, resets, timeouts, backoff_s, and for a library that cannot count some of them
    #: (s3dlio) failures and the ``unknown`` ones (storage/retry.py; filled in by the plugin)
    storage_ops: dict[str, dict[str, Any]] = field(default_factory=dict)
    outcome: str = ""
    duration: float = 0.0
    repeat: int = 1
    warmups: int = 0

    def metric(self, name: str, value: float, unit: str, direction: str = "higher",
               repeats: list[float] | None = None, warmup: list[float] | None = None) -> Metric:
        """Record one metric. With ``repeats``, ``value`` should be their median.

        A value that is not a finite number (inf from a zero duration, nan from an empty mean)
        is refused: a result document only holds numbers that mean something.
        """
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
        value = self._finite(name, "value", value)
        repeats = [self._finite(name, "repeat", v) for v in repeats] if repeats is not None else [value]
        warmup = [self._finite(name, "warm-up", v) for v in (warmup or [])]
        metric = Metric(name, value, unit, direction, repeats, warmup)
        self.metrics[name] = metric
        return metric

    def _finite(self, metric: str, what: str, number: Any) -> float:
        try:
            value = float(number)
        except (TypeError, ValueError):
            raise ValueError(f"metric {metric!r} of test {self.nodeid}: {what} {number!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"metric {metric!r} of test {self.nodeid}: {what} {number!r} is not a finite number")
        return value

    def criterion(self, metric: str, comparison: str, threshold: float, description: str = "") -> Criterion:
        """Check a recorded metric against a threshold; the result is kept either way."""
        if comparison not in COMPARISONS:
            raise ValueError(f"comparison must be one of {tuple(COMPARISONS)}, not {comparison!r}")
        if metric not in self.metrics:
            raise KeyError(f"criterion on {metric!r}, which is not recorded (recorded: {sorted(self.metrics)})")
        value = self.metrics[metric].value
        crit = Criterion(metric, comparison, float(threshold), value,
                         bool(COMPARISONS[comparison](value, threshold)), description)
        self.criteria.append(crit)
        return crit

    @property
    def failed_criteria(self) -> list[Criterion]:
        return [c for c in self.criteria if not c.passed]

    def unfit(self, metric: str, reason: str) -> None:
        """Flag a recorded metric unfit for gating (a baseline comparison does not gate on it),
        and say why among the warnings."""
        if metric not in self.metrics:
            raise KeyError(f"unfit: {metric!r} is not recorded (recorded: {sorted(self.metrics)})")
        self.metrics[metric].unfit = reason
        self.warn(f"{metric} unfit for gating: {reason}")

    def waive(self, metric: str, label: str, reason: str) -> None:
        """A criterion that does not apply here: ``label`` is what the table shows in its
        criteria column (``AU floor waived: the embedded S3 endpoint``), ``reason`` the whole why
        (in the document's ``details.waived`` and among the warnings)."""
        self.details.setdefault("waived", []).append({"metric": metric, "label": label, "reason": reason})
        self.warn(reason)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def measure(self, run: Callable[[], Mapping[str, float]], units: Mapping[str, tuple[str, str]]) -> dict[str, float]:
        """Run ``run`` ``warmups`` times (recorded, not counted) then ``repeat`` times.

        ``run`` returns {metric name: value}; ``units`` gives each metric's (unit, direction).
        Records the median of the repeats per metric and returns those medians.

        When a run raises, what the runs before it measured is recorded before the exception goes
        on (the test fails with its figures kept). An exception with a ``measured`` attribute
        ({name: value} of the metrics the failing run got before it failed) adds those values
        too. A metric with no counted value (the failure came in a warm-up) is not recorded.
        """
        warm: dict[str, list[float]] = {name: [] for name in units}
        counted: dict[str, list[float]] = {name: [] for name in units}
        for i in range(self.warmups + self.repeat):
            target = warm if i < self.warmups else counted
            try:
                values = run()
            except Exception as exc:
                partial = getattr(exc, "measured", None) or {}
                for name in units:
                    if name in partial:
                        target[name].append(float(partial[name]))
                self._record_measured(units, counted, warm)
                raise
            for name in units:
                target[name].append(float(values[name]))
        return self._record_measured(units, counted, warm)

    def _record_measured(self, units: Mapping[str, tuple[str, str]], counted: dict[str, list[float]],
                         warm: dict[str, list[float]]) -> dict[str, float]:
        medians = {}
        for name, (unit, direction) in units.items():
            if counted[name]:
                medians[name] = statistics.median(counted[name])
                self.metric(name, medians[name], unit, direction, counted[name], warm[name])
        return medians

    def latency(self, name: str, seconds: Sequence[float], unit: str = "us",
                percentiles: Sequence[int] = (50, 90, 99), warmup: Sequence[float] = (),
                runs: Sequence[Sequence[float]] = ()) -> dict[str, float]:
        """Record per-call durations (in seconds) as percentile metrics in ``unit``, lower is better.

        ``<name>_p50_<unit>`` holds every duration as its repeats (its value is their median),
        then ``<name>_p90_<unit>``, ``<name>_p99_<unit>`` and ``<name>_max_<unit>``. With
        ``runs`` (the calls of each of 3 or more measured runs of 10 calls or more, together
        ``seconds``), those
        three are taken per run and keep each run's as their repeats, their value the median over
        the runs: a tail of one run is then seen against the others' (a gate can tell a slower
        storage from one stalled run). Returns {metric name: value}.
        """
        if unit not in TIME_UNITS:
            raise ValueError(f"latency unit must be one of {tuple(TIME_UNITS)}, not {unit!r}")
        if not seconds:
            raise ValueError(f"latency {name!r} of test {self.nodeid}: no duration to record")
        scale = 1.0 / TIME_UNITS[unit]
        values = sorted(float(s) * scale for s in seconds)
        # a tail per run only where there are runs enough and calls enough in each (3 runs of 2
        # calls would make a "p99" of the median of two maxima, below the calls' p50)
        per_run = ([sorted(float(s) * scale for s in run) for run in runs]
                   if len(runs) >= 3 and all(len(run) >= 10 for run in runs) else [])
        recorded = {}
        for p in percentiles:
            metric = f"{name}_p{p}_{unit}"
            value = _percentile(values, p)  # p50 is the median
            repeats = [float(s) * scale for s in seconds] if p == 50 else None
            warm = [float(s) * scale for s in warmup] if p == 50 else None
            if p != 50 and per_run:
                repeats = [_percentile(run, p) for run in per_run]
                value = statistics.median(repeats)
            recorded[metric] = self.metric(metric, value, unit, "lower", repeats, warm).value
        maxima = [run[-1] for run in per_run] if per_run else None
        recorded[f"{name}_max_{unit}"] = self.metric(
            f"{name}_max_{unit}", statistics.median(maxima) if maxima else values[-1], unit, "lower", maxima).value
        calls = min(len(run) for run in per_run) if per_run else len(values)
        for p in (p for p in percentiles if p != 50):
            needed = math.ceil(TAIL_CALLS / (1 - p / 100))
            if calls < needed:
                self.metrics[f"{name}_p{p}_{unit}"].unfit = (
                    f"p{p} of {calls} calls{' a run' if per_run else ''}: a tail needs {needed} calls or more "
                    f"({TAIL_CALLS} beyond it) to be more than one stall of the machine; reported, not gated")
        self.metrics[f"{name}_max_{unit}"].unfit = ("the slowest single call: one stall of the machine decides it; "
                                                   "reported, not gated")
        return recorded

    def to_dict(self) -> dict[str, Any]:
        """The test's entry in the result document (JSON types only)."""
        return {
            "id": self.nodeid,
            "suite": self.suite,
            "kind": self.kind or None,
            "params": {str(k): _scalar(v) for k, v in self.params.items()},
            "outcome": self.outcome,
            "duration_s": self.duration,
            "metrics": {name: m.to_dict() for name, m in self.metrics.items()},
            "criteria": [c.to_dict() for c in self.criteria],
            "warnings": list(self.warnings),
            "details": jsonable(self.details),
            **({"storage_ops": jsonable(self.storage_ops)} if self.storage_ops else {}),
        }


def _scalar(value: Any) -> str | int | float | bool | None:
    """A parameter as one JSON scalar (a list or mapping becomes its JSON text)."""
    value = jsonable(value)
    return value if value is None or isinstance(value, (str, int, float, bool)) else json.dumps(value, sort_keys=True)


def _percentile(sorted_values: list[float], p: float) -> float:
    """The p-th percentile by linear interpolation between closest ranks (numpy's default)."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    position = (len(sorted_values) - 1) * p / 100.0
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)
