"""Timing one call at a time: with pytest-benchmark's fixture when it is enabled (so its own
--benchmark-save and --benchmark-compare see the test), with ``time.perf_counter`` when it is
disabled (under xdist, or with --benchmark-disable). Either way every round's duration is returned."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Setup = Callable[[], tuple[tuple, dict]]


@dataclass
class Timings:
    seconds: list[float]
    #: durations of the warm-up calls when we timed them; pytest-benchmark does not keep its own
    warmup_seconds: list[float] = field(default_factory=list)
    timer: str = "pytest-benchmark"


def time_calls(target: Callable[..., Any], *, rounds: int, warmup: int = 0, setup: Setup | None = None,
               benchmark: Any = None) -> Timings:
    """Call ``target`` ``warmup`` times untimed-for-the-result, then ``rounds`` times, one call per
    round; ``setup`` (outside the timing) returns the call's (args, kwargs)."""
    if benchmark is not None and getattr(benchmark, "enabled", False):
        benchmark.pedantic(target, setup=setup, rounds=rounds, warmup_rounds=warmup, iterations=1)
        return Timings([float(s) for s in benchmark.stats.stats.data])
    timings = Timings([], timer="time.perf_counter")
    for i in range(warmup + rounds):
        args, kwargs = setup() if setup is not None else ((), {})
        start = time.perf_counter()
        target(*args, **kwargs)
        elapsed = time.perf_counter() - start
        (timings.warmup_seconds if i < warmup else timings.seconds).append(elapsed)
    return timings
