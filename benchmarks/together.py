"""The benchmarks' one way of timing work done by several threads at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable


def run_together(work: Iterable[Callable[[], object]]) -> float:
    """Start a thread per callable, wait for all of them; returns the seconds from the first
    start to the last end."""
    threads = [threading.Thread(target=target) for target in work]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start
