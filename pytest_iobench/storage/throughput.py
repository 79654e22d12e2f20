"""Object throughput as warp and fio measure it: ``threads`` workers, each taking the next
object and putting or getting it whole, timed together (bytes moved over wall time, from the
moment every worker is ready to the last one done) and call by call (latency).

The bytes of a get are counted from what it returned, a put's from what it was given. The
first failure stops the other workers after the call they are in, and is raised (a
``StorageError`` naming the operation, key and library).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from .base import Buffer, Storage

OPERATIONS = ("put", "get")


@dataclass
class Transfer:
    operation: str
    threads: int
    objects: int
    #: bytes put or returned by the gets
    bytes: int
    #: wall time from the start signal to the last worker's end
    seconds: float
    #: seconds of each call, by object
    latencies: list[float]

    @property
    def bytes_per_second(self) -> float:
        return self.bytes / self.seconds if self.seconds > 0 else 0.0

    @property
    def objects_per_second(self) -> float:
        return self.objects / self.seconds if self.seconds > 0 else 0.0


def transfer(storage: Storage, operation: str, keys: Sequence[str], threads: int,
             payloads: Sequence[Buffer] | None = None) -> Transfer:
    """Put ``payloads[i]`` under ``keys[i]`` (``operation`` "put"), or get every key ("get"),
    with ``threads`` workers; each object once."""
    if operation not in OPERATIONS:
        raise ValueError(f"operation must be one of {', '.join(OPERATIONS)}, not {operation!r}")
    if threads < 1:
        raise ValueError(f"threads must be at least 1, not {threads}")
    if operation == "put" and (payloads is None or len(payloads) != len(keys)):
        raise ValueError("a put needs one payload per key")
    count = len(keys)
    data: Sequence[Buffer] = payloads if payloads is not None else ()
    latencies = [0.0] * count
    moved = [0] * count
    failures: list[BaseException] = []
    take = iter(range(count)).__next__
    take_lock = threading.Lock()
    ready = threading.Barrier(threads + 1)

    def work() -> None:
        ready.wait()
        while not failures:
            with take_lock:
                try:
                    i = take()
                except StopIteration:
                    return
            start = time.perf_counter()
            try:
                if operation == "put":
                    storage.put(keys[i], data[i])
                    size = memoryview(data[i]).nbytes
                else:
                    size = memoryview(storage.get(keys[i])).nbytes
            except BaseException as exc:  # raised by the caller, once every worker has stopped
                failures.append(exc)
                return
            latencies[i] = time.perf_counter() - start
            moved[i] = size

    workers = [threading.Thread(target=work, name=f"iobench-{operation}-{w}", daemon=True) for w in range(threads)]
    for worker in workers:
        worker.start()
    ready.wait()
    start = time.perf_counter()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - start
    if failures:
        raise failures[0]
    return Transfer(operation, threads, count, sum(moved), seconds, latencies)
