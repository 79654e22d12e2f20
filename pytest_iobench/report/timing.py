"""Timing one call at a time: with pytest-benchmark's fixture when it is enabled (so its own
--benchmark-save and --benchmark-compare see the test), with ``time.perf_counter`` when it is
disabled (under xdist, or with --benchmark-disable). Either way every round's duration is returned,
and the warm-up calls are timed by us with ``time.perf_counter`` (pytest-benchmark keeps no record
of its own warm-up rounds, so they are run before handing it the measured rounds)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Setup = Callable[[], tuple[tuple[Any, ...], dict[str, Any]]]


@dataclass
class Timings:
    seconds: list[float]
    #: durations of the warm-up calls (recorded, not counted), always timed with time.perf_counter
    warmup_seconds: list[float] = field(default_factory=list)
    timer: str = "pytest-benchmark"


def _timed(target: Callable[..., Any], setup: Setup | None, count: int) -> list[float]:
    durations = []
    for _ in range(count):
        args, kwargs = setup() if setup is not None else ((), {})
        start = time.perf_counter()
        target(*args, **kwargs)
        durations.append(time.perf_counter() - start)
    return durations


def time_calls(target: Callable[..., Any], *, rounds: int, warmup: int = 0, setup: Setup | None = None,
               benchmark: Any = None) -> Timings:
    """Call ``target`` ``warmup`` times (timed, kept apart), then ``rounds`` times, one call per
    round; ``setup`` (outside the timing) returns the call's (args, kwargs)."""
    warm = _timed(target, setup, warmup)
    if benchmark is not None and getattr(benchmark, "enabled", False):
        benchmark.pedantic(target, setup=setup, rounds=rounds, warmup_rounds=0, iterations=1)
        return Timings([float(s) for s in benchmark.stats.stats.data], warm)
    return Timings(_timed(target, setup, rounds), warm, timer="time.perf_counter")
