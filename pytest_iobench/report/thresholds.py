"""Regression thresholds: ``10%`` for every metric, with per-metric overrides (``train_au_percent=2%``,
``batch_read_*=off``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

#: used to tell regressions and improvements from noise when no --iobench-fail-regression is given
DEFAULT_THRESHOLD = 0.10

_PERCENT = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*%\s*$")


class Percentage(float):
    """A fraction (0.1) that prints as the percentage it was given as (10%)."""

    def __str__(self) -> str:
        return f"{self * 100:g}%"

    __repr__ = __str__


def parse_percentage(text: str) -> Percentage:
    """``10%`` -> 0.10. The % sign is required: ``10`` or ``0.1`` would be ambiguous."""
    match = _PERCENT.match(text)
    if not match:
        raise ValueError("give a percentage such as 10% or 2.5%")
    return Percentage(float(match.group(1)) / 100.0)


@dataclass(frozen=True)
class Override:
    """The threshold of the metrics whose name matches ``pattern``; None: not gated."""

    pattern: str
    threshold: Percentage | None

    def __str__(self) -> str:
        return f"{self.pattern}={self.threshold if self.threshold is not None else 'off'}"

    def matches(self, metric: str) -> bool:
        return fnmatchcase(metric, self.pattern)


def parse_override(text: str) -> Override:
    """``METRIC=PCT`` or ``METRIC=off``; METRIC is a metric name or a glob pattern."""
    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name or not value:
        raise ValueError(f"{text!r}: give METRIC=PCT or METRIC=off, such as train_au_percent=2%")
    if value.lower() == "off":
        return Override(name, None)
    try:
        return Override(name, parse_percentage(value))
    except ValueError:
        raise ValueError(f"{text!r}: {value!r} is not a percentage; give METRIC=PCT or METRIC=off, "
                         "such as train_au_percent=2%") from None


def threshold_for(metric: str, default: float, overrides: Sequence[Override]) -> float | None:
    """The threshold of ``metric``: an override naming it exactly, else the first override whose
    pattern matches it, else ``default``. None means the metric is not gated."""
    for override in overrides:
        if override.pattern == metric:
            return override.threshold
    for override in overrides:
        if override.matches(metric):
            return override.threshold
    return default
