"""Peak resident memory of this process over a block of code: the block's own peak, whatever
earlier blocks in the same process did.

    with PeakRSS() as rss:
        generate(...)
    rss.peak, rss.growth, rss.method     # bytes, bytes, how it was measured

Two things would otherwise carry one case's memory into the next case's figure: the kernel's
high-water mark (VmHWM) is the process's lifetime peak, and the heap keeps freed memory for
reuse (storage/allocator.py's trim threshold), so RSS at a case's start includes what earlier
cases freed. On entry the heap's free memory goes back to the system (glibc ``malloc_trim``) and
the high-water mark is reset (Linux: ``5`` written to /proc/self/clear_refs); on exit the peak is
the kernel's VmHWM, which sees spikes between samples, or, where the reset is not available, the
largest RSS sampled every few milliseconds from a helper thread.
"""

from __future__ import annotations

import ctypes
import re

import psutil

from ..sampling import PeriodicSampler

_CLEAR_REFS = "/proc/self/clear_refs"
_STATUS = "/proc/self/status"
_HWM = re.compile(rb"^VmHWM:\s+(\d+)\s+kB", re.M)


def trim_heap() -> bool:
    """Give the heap's free memory back to the system (glibc only); whether it could."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
        return True
    except (OSError, AttributeError):
        return False


def reset_high_water_mark() -> bool:
    """Reset the process's VmHWM to its current RSS (Linux 4.0+); whether it could."""
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
        return high_water_mark() is not None
    except OSError:
        return False


def high_water_mark() -> int | None:
    """The process's VmHWM in bytes (None where /proc does not have it)."""
    try:
        with open(_STATUS, "rb") as f:
            match = _HWM.search(f.read())
    except OSError:
        return None
    return int(match.group(1)) * 1024 if match else None


class PeakRSS(PeriodicSampler):
    thread_name = "iobench-rss"

    def __init__(self, interval: float = 0.005):
        super().__init__(interval)
        self.start = 0
        self.peak = 0
        #: how the peak was measured (the document says it)
        self.method = ""
        self._reset = False
        self._process = psutil.Process()

    @property
    def growth(self) -> int:
        """How far above the RSS at the start the peak went."""
        return max(0, self.peak - self.start)

    def _sample(self) -> None:
        rss = self._process.memory_info().rss
        if rss > self.peak:
            self.peak = rss

    def _begin(self) -> None:
        trimmed = trim_heap()
        self._reset = reset_high_water_mark()
        self.start = self.peak = self._process.memory_info().rss
        self.method = ("VmHWM reset at the start (/proc/self/clear_refs 5)" if self._reset
                       else f"RSS sampled every {self.interval * 1000:g} ms")
        if trimmed:
            self.method += ", after the heap's free memory was returned (malloc_trim)"

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        hwm = high_water_mark() if self._reset else None
        if hwm is not None:
            self.peak = max(self.peak, hwm)
