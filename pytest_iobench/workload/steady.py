"""Steady-state rates: what a storage sustains once a case's one-time costs are behind it.

A case's whole-run rate (bytes over its wall time) mixes the storage's speed with what it costs
to get going: a connection pool filling, a library's runtime starting, fresh buffers being
touched, a device's cache warming. ``RateSampler`` samples a byte counter from a helper thread
(time-sliced bytes moved); ``steady_state`` cuts the run into equal slices, drops the first ones
until the rate settles (the ramp), and gives the rate over the rest with its per-slice spread.
A run too short to leave ``MIN_SLICES`` slices after its ramp, or whose slices vary by more
than ``MAX_CV`` (coefficient of variation), is flagged: its figures are unfit for gating.

    counting = CountingStorage(storage)
    with RateSampler(lambda: counting.bytes_read) as sampler:
        transfer(counting, "get", keys, threads)
    steady = steady_state(sampler.samples)
    steady.rate, steady.whole, steady.cv, steady.flag
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..sampling import PeriodicSampler

#: seconds between samples of the byte counter
SAMPLE_SECONDS = 0.02
#: a slice is at least this long (shorter ones hold a few objects' worth, all quantization) ...
SLICE_MIN_SECONDS = 0.1
#: ... and the run is cut into at most this many
TARGET_SLICES = 20
#: the ramp ends at the first slice whose rate is at least (1 - this) x the later slices' median
#: (one-time costs make a start slow; a start that is fast stays in, and its spread shows)
RAMP_TOLERANCE = 0.25
#: slices a run needs after its ramp for its steady rate to be trusted
MIN_SLICES = 5
#: the largest coefficient of variation of the slices' rates of a steady run
MAX_CV = 0.25

Sample = tuple[float, int]  # (seconds since the start, bytes moved so far)


@dataclass
class Steady:
    #: bytes/s over the slices after the ramp
    rate: float
    #: bytes/s over the whole run
    whole: float
    slices: int
    ramp_slices: int
    ramp_seconds: float
    slice_seconds: float
    #: coefficient of variation of the rates of the slices after the ramp
    cv: float
    slice_min: float
    slice_max: float
    #: why the figure is unfit for gating ("" when it is fit)
    flag: str = ""

    def to_dict(self, scale: float = 1.0, unit: str = "B/s") -> dict[str, Any]:
        """JSON-ready, rates divided by ``scale`` (1e6 for MB/s) and labelled ``unit``."""
        data = asdict(self)
        for key in ("rate", "whole", "slice_min", "slice_max"):
            data[key] = data[key] / scale
        data["unit"] = unit
        return data


class RateSampler(PeriodicSampler):
    """Samples ``bytes_so_far()`` every SAMPLE_SECONDS from a helper thread while the block runs;
    ``samples`` starts at (0, bytes at the start) and ends with the block's end. ``progress``
    (optional) is called with the samples so far about every ``progress_every`` seconds."""

    thread_name = "iobench-rate"

    def __init__(self, bytes_so_far: Callable[[], int], interval: float = SAMPLE_SECONDS,
                 progress: Callable[[list[Sample]], None] | None = None, progress_every: float = 2.0):
        super().__init__(interval)
        self.bytes_so_far = bytes_so_far
        self.progress = progress
        self.progress_every = progress_every
        self.samples: list[Sample] = []
        self._start = 0.0
        self._base = 0
        self._shown = 0.0

    def _sample(self) -> None:
        self.samples.append((time.perf_counter() - self._start, self.bytes_so_far() - self._base))

    def _tick(self) -> None:
        self._sample()
        if self.progress is not None and self.samples[-1][0] - self._shown >= self.progress_every:
            self._shown = self.samples[-1][0]
            self.progress(list(self.samples))

    def _begin(self) -> None:
        self._base = self.bytes_so_far()
        self._start = time.perf_counter()
        self.samples = [(0.0, 0)]


def _bytes_at(samples: Sequence[Sample], t: float) -> float:
    """Bytes moved by time ``t``, interpolated between the samples around it."""
    for (t0, b0), (t1, b1) in itertools.pairwise(samples):
        if t0 <= t <= t1:
            return b0 if t1 == t0 else b0 + (b1 - b0) * (t - t0) / (t1 - t0)
    return float(samples[-1][1])


def steady_state(samples: Sequence[Sample], *, min_slices: int = MIN_SLICES, max_cv: float = MAX_CV,
                 slice_min: float = SLICE_MIN_SECONDS, target: int = TARGET_SLICES) -> Steady:
    """The steady state of a run from its samples (time, bytes so far), the first at (0, 0)."""
    end, total = samples[-1]
    whole = total / end if end > 0 else 0.0
    count = max(1, min(target, int(end / slice_min)))
    width = end / count if end > 0 else 0.0
    edges = [_bytes_at(samples, i * width) for i in range(count + 1)]
    rates = [(b1 - b0) / width if width > 0 else 0.0 for b0, b1 in itertools.pairwise(edges)]
    # the ramp: the first slices until one runs at (1 - RAMP_TOLERANCE) of the later slices'
    # median; the first slice always goes (it holds the start, as DLIO leaves out a run's first step)
    later = statistics.median(rates[len(rates) // 2:])
    settled = next((i for i, r in enumerate(rates) if r >= (1 - RAMP_TOLERANCE) * later), len(rates))
    ramp = min(max(1, settled), len(rates))
    after = rates[ramp:]
    seconds = (count - ramp) * width
    rate = (total - edges[ramp]) / seconds if seconds > 0 else whole
    mean = statistics.fmean(after) if after else 0.0
    cv = statistics.pstdev(after) / mean if len(after) > 1 and mean > 0 else 0.0
    flag = ""
    if len(after) < min_slices:
        flag = (f"too short: {len(after)} slice(s) of {width * 1000:.0f} ms after a ramp of {ramp * width:.2f} s, "
                f"{min_slices} needed (a run of at least {(min_slices + 1) * slice_min:.1f} s)")
    elif cv > max_cv:
        flag = f"unsteady: the rate varies by {cv:.0%} across slices after the ramp (bound {max_cv:.0%})"
    return Steady(rate, whole, len(after), ramp, ramp * width, width, cv,
                  min(after, default=0.0), max(after, default=0.0), flag)


def flag_of_runs(runs: Sequence[Steady]) -> str:
    """Why the steady rates of a case's counted runs are unfit for gating ("" when fit): a run
    flagged itself, or the runs disagree (their rates' CV above MAX_CV)."""
    for i, run in enumerate(runs, start=1):
        if run.flag:
            return f"run {i} of {len(runs)}: {run.flag}" if len(runs) > 1 else run.flag
    rates = [run.rate for run in runs]
    if len(rates) > 1 and statistics.fmean(rates) > 0:
        cv = statistics.pstdev(rates) / statistics.fmean(rates)
        if cv > MAX_CV:
            return f"unsteady: the steady rate varies by {cv:.0%} across the {len(rates)} runs (bound {MAX_CV:.0%})"
    return ""


def summary(runs: Sequence[Steady], scale: float = 1e6, unit: str = "MB/s") -> dict[str, Any]:
    """The ``steady`` block of a rate metric: each counted run's steady state, and the flag."""
    return {"runs": [run.to_dict(scale, unit) for run in runs], "flag": flag_of_runs(runs),
            "ramp": f"the first slices until the rate reaches {1 - RAMP_TOLERANCE:.0%} of the later slices' median",
            "min_slices": MIN_SLICES, "max_cv": MAX_CV}


def progress_line(samples: Sequence[Sample], total: int | None = None) -> str:
    """``120 MB of 1,074 MB, 450 MB/s, ETA 2 s`` from a sampler's samples so far."""
    t, moved = samples[-1]
    rate = moved / t if t > 0 else 0.0
    done = f"{moved / 1e6:,.0f} MB" + (f" of {total / 1e6:,.0f} MB" if total else "")
    eta = f", ETA {(total - moved) / rate:.0f} s" if total and rate > 0 else ""
    return f"{done}, {rate / 1e6:,.0f} MB/s{eta}"
