"""A helper thread that samples a figure every few milliseconds while a with-block runs: the
memory of a case (data/memory.py) and the bytes it has moved (workload/steady.py) are sampled
this way, with the block's end always sampled last."""

from __future__ import annotations

import threading
from typing import Self


class PeriodicSampler:
    """Calls ``_tick()`` (by default ``_sample()``) every ``interval`` seconds from a daemon thread
    while the with-block runs, and ``_sample()`` once more as it ends. Subclasses take their
    starting reading in ``_begin()``, which runs before the thread starts."""

    thread_name = "iobench-sampler"

    def __init__(self, interval: float):
        self.interval = interval
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def _begin(self) -> None:
        pass

    def _sample(self) -> None:
        raise NotImplementedError

    def _tick(self) -> None:
        self._sample()

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            self._tick()

    def __enter__(self) -> Self:
        self._begin()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
