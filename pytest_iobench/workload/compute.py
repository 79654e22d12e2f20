"""Simulated compute: a time per step, fixed or drawn from a distribution (DLIO's forms).

DLIO accepts, for ``train.computation_time``, ``evaluation.eval_time`` and
``reader.preprocess_time``:
    0.323                                  a fixed time in seconds
    {mean: 0.3, stdev: 0.05}               normal (without stdev: fixed at mean)
    {type: normal, mean: .., stdev: ..}
    {type: uniform, min: .., max: ..}
    {type: gamma, shape: .., scale: ..}
    {type: exponential, scale: ..}
    {type: poisson, lam: ..}
and a sibling ``<key>_stdev`` that adds a stdev to a plain number, ``{mean}`` or a normal
mapping (next to another distribution it would mean nothing: an error). Negative draws are
folded to their absolute value, as DLIO does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .schema import Invalid

#: the parameters each distribution needs
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "normal": ("mean", "stdev"),
    "uniform": ("min", "max"),
    "gamma": ("shape", "scale"),
    "exponential": ("scale",),
    "poisson": ("lam",),
}


def _nonneg(value: Any, name: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise Invalid(f"{where}{name} must be a number >= 0, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class TimeDistribution:
    """Seconds per step: ``kind`` 'fixed' (params: value) or one of DISTRIBUTIONS."""

    kind: str = "fixed"
    params: dict[str, float] = field(default_factory=lambda: {"value": 0.0})

    @classmethod
    def parse(cls, value: Any, where: str, stdev: float | None = None,
              stdev_key: str = "the sibling stdev") -> TimeDistribution:
        """Read DLIO's forms; ``where`` prefixes messages (e.g. 'train.computation_time: ').
        ``stdev`` is the sibling ``stdev_key``'s value (None when not given)."""
        if isinstance(value, bool):
            raise Invalid(f"{where}a number of seconds or a distribution mapping, not {value!r}")
        if isinstance(value, (int, float)):
            seconds = _nonneg(value, "the time", where)
            if stdev:
                return cls("normal", {"mean": seconds, "stdev": float(stdev)})
            return cls("fixed", {"value": seconds})
        if not isinstance(value, dict):
            raise Invalid(
                f"{where}a number of seconds, or a mapping such as {{type: normal, mean: 0.3, stdev: 0.05}}; "
                f"distributions: {', '.join(DISTRIBUTIONS)}")
        spec = dict(value)
        if stdev is not None and "stdev" not in spec:
            spec["stdev"] = stdev
        kind = spec.pop("type", None)
        if kind is None:  # DLIO's {mean[, stdev]}
            if set(spec) - {"mean", "stdev"} or "mean" not in spec:
                raise Invalid(f"{where}without 'type', give mean (and optionally stdev); got keys {sorted(value)}")
            mean = _nonneg(spec["mean"], "mean", where)
            if spec.get("stdev"):
                return cls("normal", {"mean": mean, "stdev": _nonneg(spec["stdev"], "stdev", where)})
            return cls("fixed", {"value": mean})
        if kind not in DISTRIBUTIONS:
            raise Invalid(f"{where}unknown distribution type {kind!r}; valid: {', '.join(DISTRIBUTIONS)}")
        if stdev is not None and kind != "normal":
            raise Invalid(f"{stdev_key}: applies to a number of seconds or a normal distribution only; "
                          f"{where.rstrip(': ')} is a {kind} distribution: drop {stdev_key} or give type normal")
        needed = DISTRIBUTIONS[kind]
        missing = [p for p in needed if p not in spec]
        extra = sorted(set(spec) - set(needed))
        if missing or extra:
            raise Invalid(f"{where}a {kind} distribution takes {', '.join(needed)}"
                          + (f"; missing {', '.join(missing)}" if missing else "")
                          + (f"; unknown {', '.join(extra)}" if extra else ""))
        params = {p: _nonneg(spec[p], p, where) for p in needed}
        if kind == "uniform" and params["min"] > params["max"]:
            raise Invalid(f"{where}uniform needs min <= max, got min {params['min']:g} > max {params['max']:g}")
        return cls(kind, params)

    @property
    def mean(self) -> float:
        p = self.params
        return {
            "fixed": lambda: p["value"],
            "normal": lambda: p["mean"],
            "uniform": lambda: (p["min"] + p["max"]) / 2,
            "gamma": lambda: p["shape"] * p["scale"],
            "exponential": lambda: p["scale"],
            "poisson": lambda: p["lam"],
        }[self.kind]()

    @property
    def is_zero(self) -> bool:
        return self.kind == "fixed" and self.params["value"] == 0

    def draw(self, rng: np.random.Generator) -> float:
        p = self.params
        if self.kind == "fixed":
            return p["value"]
        if self.kind == "normal":
            value = rng.normal(p["mean"], p["stdev"])
        elif self.kind == "uniform":
            value = rng.uniform(p["min"], p["max"])
        elif self.kind == "gamma":
            value = rng.gamma(p["shape"], p["scale"])
        elif self.kind == "exponential":
            value = rng.exponential(p["scale"])
        else:
            value = float(rng.poisson(p["lam"]))
        return abs(float(value))

    def describe(self) -> str:
        if self.kind == "fixed":
            return f"{self.params['value']:g} s"
        return f"{self.kind}(" + ", ".join(f"{k}={v:g}" for k, v in self.params.items()) + ") s"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, **self.params}


def simulate(seconds: float) -> float:
    """Spend ``seconds`` as the simulated accelerator would; returns the time actually spent
    (a sleep overshoots by up to a scheduler tick: AU counts what was spent, as DLIO does)."""
    start = time.perf_counter()
    if seconds > 0:
        time.sleep(seconds)
    return time.perf_counter() - start
