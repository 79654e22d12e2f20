"""What one test contributes to the run's result document.

A benchmark test gets a ``TestRecord`` (the ``iobench_record`` fixture), says what it measured
with ``metric`` (value, unit, direction) and what it promises with ``criterion``; diagnostics
go to ``warn`` and never into the values. ``measure`` runs a measurement with the session's
warm-up and repeat counts and records every raw value; the reported value is the median.
"""

from __future__ import annotations

import operator
import statistics
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("conformance", "generate", "read", "train", "checkpoint", "latency")
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


@dataclass
class TestRecord:
    """The results of one test (one test id)."""

    nodeid: str
    suite: str = ""
    kind: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Metric] = field(default_factory=dict)
    criteria: list[Criterion] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: structured extras (per-rank figures, layouts); reported, never compared
    details: dict[str, Any] = field(default_factory=dict)
    outcome: str = ""
    duration: float = 0.0
    repeat: int = 1
    warmups: int = 0

    def metric(self, name: str, value: float, unit: str, direction: str = "higher",
               repeats: list[float] | None = None, warmup: list[float] | None = None) -> Metric:
        """Record one metric. With ``repeats``, ``value`` should be their median."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
        metric = Metric(name, float(value), unit, direction,
                        [float(v) for v in (repeats if repeats is not None else [value])],
                        [float(v) for v in (warmup or [])])
        self.metrics[name] = metric
        return metric

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

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def measure(self, run: Callable[[], Mapping[str, float]], units: Mapping[str, tuple[str, str]]) -> dict[str, float]:
        """Run ``run`` ``warmups`` times (recorded, not counted) then ``repeat`` times.

        ``run`` returns {metric name: value}; ``units`` gives each metric's (unit, direction).
        Records the median of the repeats per metric and returns those medians.
        """
        warm: dict[str, list[float]] = {name: [] for name in units}
        counted: dict[str, list[float]] = {name: [] for name in units}
        for i in range(self.warmups + self.repeat):
            values = run()
            target = warm if i < self.warmups else counted
            for name in units:
                target[name].append(float(values[name]))
        medians = {}
        for name, (unit, direction) in units.items():
            medians[name] = statistics.median(counted[name])
            self.metric(name, medians[name], unit, direction, counted[name], warm[name])
        return medians

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.nodeid,
            "suite": self.suite,
            "kind": self.kind,
            "params": dict(self.params),
            "outcome": self.outcome,
            "duration_s": self.duration,
            "metrics": {name: m.to_dict() for name, m in self.metrics.items()},
            "criteria": [c.to_dict() for c in self.criteria],
            "warnings": list(self.warnings),
            "details": dict(self.details),
        }
