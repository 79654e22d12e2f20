"""The largest accelerator count whose AU meets the floor: doubling, then bisection.

    result = search(probe, floor=90.0, start=1, limit=64)   # probe(n) -> AU (%) on n accelerators

Doubling from ``start`` finds a count that meets the floor and one that does not (or reaches
``limit``); bisection between them finds the largest that meets it, assuming AU does not grow
with the accelerator count (more accelerators ask more of the same storage). Each count is
probed once; the probes are kept, in order, for the results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Probe:
    accelerators: int
    au_percent: float
    met: bool


@dataclass
class SearchResult:
    floor_percent: float
    start: int
    limit: int
    probes: list[Probe] = field(default_factory=list)

    @property
    def best(self) -> int:
        """The largest count probed that met the floor (0: not even ``start`` did)."""
        return max((p.accelerators for p in self.probes if p.met), default=0)

    @property
    def limited(self) -> bool:
        """The limit met the floor: the storage may sustain more than the search could try."""
        return self.best == self.limit

    def to_dict(self) -> dict[str, Any]:
        return {"floor_percent": self.floor_percent, "start": self.start, "limit": self.limit,
                "best": self.best, "limited": self.limited,
                "probes": [{"accelerators": p.accelerators, "au_percent": p.au_percent, "met": p.met}
                           for p in self.probes]}


def search(probe: Callable[[int], float], floor: float, *, start: int = 1, limit: int) -> SearchResult:
    """The largest n in [start, limit] with ``probe(n) >= floor``, by doubling then bisection."""
    if start < 1 or limit < start:
        raise ValueError(f"give 1 <= start <= limit, not start {start} and limit {limit}")
    result = SearchResult(floor, start, limit)
    seen: dict[int, bool] = {}

    def meets(n: int) -> bool:
        if n not in seen:
            au = float(probe(n))
            seen[n] = au >= floor
            result.probes.append(Probe(n, au, seen[n]))
        return seen[n]

    if not meets(start):
        return result
    good, bad = start, None
    while bad is None:
        nxt = min(good * 2, limit)
        if nxt == good:  # the limit met the floor
            return result
        if meets(nxt):
            good = nxt
        else:
            bad = nxt
    while bad - good > 1:
        mid = (good + bad) // 2
        if meets(mid):
            good = mid
        else:
            bad = mid
    return result
