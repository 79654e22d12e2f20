"""Peak resident memory of this process over a block of code, without touching the process's
lifetime peak (another measurement in the same process may rely on it): RSS is sampled
every few milliseconds from a helper thread.

    with PeakRSS() as rss:
        generate(...)
    rss.peak, rss.growth     # bytes
"""

from __future__ import annotations

import threading

import psutil


class PeakRSS:
    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.start = 0
        self.peak = 0
        self._process = psutil.Process()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def growth(self) -> int:
        """How far above the RSS at the start the peak went."""
        return max(0, self.peak - self.start)

    def _sample(self) -> None:
        rss = self._process.memory_info().rss
        if rss > self.peak:
            self.peak = rss

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            self._sample()

    def __enter__(self) -> "PeakRSS":
        self.start = self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._run, name="iobench-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
