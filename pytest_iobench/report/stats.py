"""What the gate knows of noise: a per-unit noise floor, and whether two sets of repeats differ
beyond their spread (a one-sided Mann-Whitney U test).

Mann-Whitney compares ranks only, so it needs no assumption about the shape of the noise (a
loaded machine's figures are skewed: a run is slowed, rarely sped up). Its exact distribution is
counted here for small samples (3 to 5 repeats are usual) and approximated by the normal
distribution for large ones (a latency's p50 keeps every call); scipy is not a dependency for
this one function.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Sequence

#: a change no larger than this, in the metric's unit, is noise: never a regression or an
#: improvement. Sizes and durations have an absolute noise (a page, a context switch) that is
#: the whole figure when the figure is small; rates have none (their noise is relative, and the
#: threshold and the spread deal with it), so units not listed have a floor of 0.
NOISE_FLOORS: dict[str, float] = {
    # memory: page-granular RSS and allocator jitter
    "B": 4 * 2**20, "KiB": 4 * 1024, "MiB": 4.0, "GiB": 4 / 1024,
    # durations: a timer read and a context switch (a latency's spread is its calls' own)
    "s": 10e-6, "seconds": 10e-6, "ms": 0.01, "us": 10.0, "ns": 10_000.0,
    # AU and other percentages: one percentage point
    "%": 1.0,
}
#: a difference this unlikely under "same distribution" is beyond the spread
ALPHA = 0.05
#: repeats each side needs before its spread is measured (3 v 3 can reach ALPHA: 1/20)
MIN_REPEATS = 3
#: a repeat further than this many scaled MADs from its run's median is an outlier (a stalled run)
OUTLIER_MADS = 3.0
#: ... and further than this fraction of the median
OUTLIER_FRACTION = 0.25
#: exact Mann-Whitney up to this many arrangements' worth of values each side
_EXACT_LIMIT = 30


def without_outliers(values: Sequence[float]) -> list[float]:
    """The repeats of one run without its outliers: one run stalled by another job on the machine
    says nothing of the storage, and would widen the band of a baseline until nothing could be
    seen beyond it. An outlier is further from the run's median than OUTLIER_MADS scaled median
    absolute deviations and than OUTLIER_FRACTION of the median (so the ordinary spread of a few
    repeats is never cut); at most a quarter of the repeats can be outliers (more than that is
    how the run went, not an accident of it)."""
    if len(values) < 4:
        return list(values)
    median = statistics.median(values)
    mad = statistics.median(abs(v - median) for v in values) * 1.4826
    limit = max(OUTLIER_MADS * mad, OUTLIER_FRACTION * abs(median))
    kept = [v for v in values if abs(v - median) <= limit]
    return kept if len(values) - len(kept) <= len(values) // 4 else list(values)


#: repeats a band needs before its single most extreme value on each side is left out of its edge
BAND_SPARE_FROM = 5


def _edge(values: Sequence[float], worse_is_larger: bool) -> float:
    ordered = sorted(values, reverse=worse_is_larger)
    return ordered[1] if len(ordered) >= BAND_SPARE_FROM else ordered[0]


def worst(values: Sequence[float], direction: str) -> float:
    """The edge of a run's band on the side a regression goes to: its worst repeat, or with
    BAND_SPARE_FROM repeats or more its second worst (one run slowed by another job, not far
    enough to be an outlier, must not widen the band by itself)."""
    return _edge(values, worse_is_larger=direction == "lower")


def best(values: Sequence[float], direction: str) -> float:
    """The other edge: the best repeat, or the second best (as ``worst``)."""
    return _edge(values, worse_is_larger=direction != "lower")


def noise_floor(unit: str) -> float:
    """The smallest absolute change of a metric in ``unit`` that the gate reads as a change."""
    return NOISE_FLOORS.get(unit, 0.0)


@functools.cache
def _u_counts(n1: int, n2: int) -> tuple[int, ...]:
    """How many arrangements of n1 + n2 ranks give each U statistic 0..n1*n2 (no ties)."""
    if n1 == 0 or n2 == 0:
        return (1,)
    # the largest value is of sample 1 (it beats all n2: U += n2) or of sample 2
    with_first = _u_counts(n1 - 1, n2)
    with_second = _u_counts(n1, n2 - 1)
    counts = [0] * (n1 * n2 + 1)
    for u, c in enumerate(with_first):
        counts[u + n2] += c
    for u, c in enumerate(with_second):
        counts[u] += c
    return tuple(counts)


def mann_whitney_less(first: Sequence[float], second: Sequence[float]) -> float:
    """The one-sided p-value that values of ``first`` tend to be smaller than those of ``second``:
    the chance, if both came from one distribution, of a U statistic this small or smaller.
    U counts the pairs (a in first, b in second) with a > b, a tie counting one half."""
    n1, n2 = len(first), len(second)
    if not n1 or not n2:
        return 1.0
    u = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in first for b in second)
    if n1 <= _EXACT_LIMIT and n2 <= _EXACT_LIMIT:
        counts = _u_counts(n1, n2)
        below = sum(counts[: math.floor(u) + 1])  # U takes whole values without ties
        return below / math.comb(n1 + n2, n1)
    mean = n1 * n2 / 2
    sd = math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
    z = (u + 0.5 - mean) / sd  # continuity correction
    return 0.5 * math.erfc(-z / math.sqrt(2))


def worse_p(baseline: Sequence[float], current: Sequence[float], direction: str) -> float:
    """The p-value that ``current``'s repeats are worse than ``baseline``'s (one-sided)."""
    if direction == "lower":  # worse is larger: flip signs so worse is smaller
        return mann_whitney_less([-v for v in current], [-v for v in baseline])
    return mann_whitney_less(current, baseline)
