"""Deadlines for storage operations, and interrupts that end them.

Every operation of an S3 storage (whichever library) runs on a worker thread of this module
while its caller waits at most the operation's deadline (``--iobench-op-timeout``): a dead or
silent endpoint fails the operation with ``StorageTimeout`` naming the operation, the key, the
library and the endpoint, and the caller goes on; the library call left behind on the worker
ends by itself, because each library's own connect and read timeouts and retries are set from
the same figure (``Timeouts``). The workers are daemon threads, so a call left behind never
keeps the process from exiting.

``interrupts.interrupt()`` (the plugin calls it on SIGINT and SIGTERM) releases every caller
waiting for an operation at once, in every thread, with ``StorageInterrupted``; operations
started after it (the cleanup) get ``GRACE`` seconds at most. The main thread gets its KeyboardInterrupt from the
signal itself: waiting on an Event is interrupted by signals.

Local files (posix, direct, s3dlio's file:// and direct://) are not run here: a handoff to a
worker and back costs two thread wakeups, more than a 4 KiB page-cache read takes, and a local
system call either returns or is ended by the kernel (a signal interrupts it in the main
thread). What the handoff costs an S3 request: docs/failures.md.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from .base import Buffer, ObjectInfo, Storage, StreamWriter
from .errors import StorageError, StorageInterrupted, StorageTimeout
from .interrupts import GRACE, PENDING, PENDING_LOCK, interrupted
from .names import DEFAULT_OP_TIMEOUT
from .retry import RetryPolicy
from .wrapping import WrappedStorage, WrappedWriter

#: attempts of one request (the first and its retries) every library is set to
ATTEMPTS = 3
#: an idle worker thread ends after this many seconds
IDLE_EXIT = 30.0


@dataclass(frozen=True)
class Timeouts:
    """A library's timeouts, sized from the operation deadline ``total``: a connect gets a
    quarter of it (10 s at most: a connect is one round trip), a request attempt's silence (the
    socket read timeout) a third, so that ATTEMPTS silent attempts end near the deadline and the
    library gives up by itself soon after a caller stopped waiting."""

    total: float = DEFAULT_OP_TIMEOUT

    @property
    def connect(self) -> float:
        return min(10.0, self.total / 4)

    @property
    def read(self) -> float:
        return self.total / ATTEMPTS

    attempts: int = ATTEMPTS
    #: what every library retries, how often, and how long it waits between (retry.py)
    retry: RetryPolicy = RetryPolicy()


class _Task:
    __slots__ = ("__weakref__", "args", "done", "ended", "error", "fn", "interrupted", "result")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]):
        self.fn, self.args = fn, args
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        #: the call itself returned or raised (``done`` is also set by an interrupt)
        self.ended = False
        self.interrupted = False


class _Workers:
    """Daemon threads taking tasks from one queue; one is started when none is idle, and an
    idle one ends after IDLE_EXIT seconds."""

    def __init__(self) -> None:
        self._tasks: queue.SimpleQueue[_Task] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self.started = 0

    def submit(self, task: _Task) -> None:
        with self._lock:
            if self._idle:
                self._idle -= 1  # that worker takes it
            else:
                self.started += 1
                threading.Thread(target=self._run, name=f"iobench-op-{self.started}", daemon=True).start()
            self._tasks.put(task)

    def _run(self) -> None:
        while True:
            task: _Task | None
            try:
                task = self._tasks.get(timeout=IDLE_EXIT)
            except queue.Empty:
                with self._lock:
                    if self._tasks.empty():  # puts happen under the lock: nothing is on its way
                        self._idle -= 1
                        return
                continue
            try:
                task.result = task.fn(*task.args)
            except BaseException as exc:  # handed to the caller
                task.error = exc
            finally:
                task.ended = True
                task.done.set()
                task = None
                with self._lock:
                    self._idle += 1


_WORKERS = _Workers()
T = TypeVar("T")


def run(fn: Callable[..., T], *args: Any, op: str, key: str, library: str, where: str, timeout: float) -> T:
    """``fn(*args)`` on a worker, waiting at most ``timeout`` seconds (GRACE after an interrupt).
    Raises StorageTimeout when it has not finished by then, StorageInterrupted when an interrupt
    came first, and whatever ``fn`` raised otherwise."""
    if interrupted():
        timeout = min(timeout, GRACE)
    task = _Task(fn, args)
    with PENDING_LOCK:
        PENDING.add(task)
    try:
        _WORKERS.submit(task)
        task.done.wait(timeout)
    finally:
        with PENDING_LOCK:
            PENDING.discard(task)
    if not task.ended and task.interrupted:
        raise StorageInterrupted(op, key, library, f"interrupted ({interrupted()}) while waiting for {where}")
    if not task.ended:
        raise StorageTimeout(op, key, library, f"no answer from {where} within {timeout:g} s "
                             "(--iobench-op-timeout); the call is abandoned")
    if task.error is not None:
        raise task.error
    return cast(T, task.result)


#: how the libraries say they gave up waiting (botocore, urllib3, s3dlio)
_TIMED_OUT = re.compile(r"(?i)timed out|timeout")


# -- the storage wrapper ------------------------------------------------------------------------------
class DeadlineStorage(WrappedStorage):
    """Every operation of ``inner`` under the deadline ``timeout`` (seconds), run by ``run``.

    A bulk operation gets the deadline once per round of requests it makes (get_many: one per
    ``max_in_flight`` keys); list and delete_prefix are bounded per request by the library's
    read timeout and as a whole by the deadline of each call made here."""

    def __init__(self, inner: Storage, timeout: float, where: str):
        super().__init__(inner)
        self.timeout = timeout
        self.where = where

    def __getattr__(self, name: str) -> Any:
        """What is the library's own (its ``location``, ``client``): the inner storage's. Only
        for names this wrapper does not have; the operations above are always bounded."""
        if name == "inner":  # not set yet (unpickling, a failed __init__)
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _run(self, op: str, key: str, fn: Callable[..., T], *args: Any, rounds: int = 1) -> T:
        try:
            return run(fn, *args, op=op, key=key, library=self.library, where=self.where,
                       timeout=self.timeout * rounds)
        except StorageError as exc:
            raise self.naming_endpoint(exc) from exc

    def naming_endpoint(self, exc: StorageError) -> StorageError:
        """A failure of the endpoint itself (not a missing key or a refusal) says which endpoint;
        one the library timed out itself is a StorageTimeout."""
        if type(exc) not in (StorageError, StorageTimeout) or self.where in str(exc):
            return exc
        if _TIMED_OUT.search(exc.detail):
            return StorageTimeout(exc.op, exc.key, exc.library,
                                  f"{exc.detail} (endpoint {self.where}, --iobench-op-timeout {self.timeout:g} s)")
        return type(exc)(exc.op, exc.key, exc.library, f"{exc.detail} (endpoint {self.where})")

    def put(self, key: str, data: Buffer) -> None:
        self._run("put", key, self.inner.put, key, data)

    def open_writer(self, key: str, *, fsync: bool = False) -> StreamWriter:
        inner = self._run("open_writer", key, lambda: self.inner.open_writer(key, fsync=fsync))
        return DeadlineWriter(self, inner)

    def get(self, key: str) -> Buffer:
        return self._run("get", key, self.inner.get, key)

    def get_range(self, key: str, offset: int, length: int) -> Buffer:
        return self._run("get_range", key, self.inner.get_range, key, offset, length)

    def get_many(self, keys: Sequence[str], max_in_flight: int = 16) -> list[Buffer]:
        if not keys:
            return []
        rounds = -(-len(keys) // max(1, max_in_flight))
        return self._run("get_many", f"{keys[0]} (+{len(keys) - 1} more)", self.inner.get_many, keys, max_in_flight,
                         rounds=rounds)

    def list(self, prefix: str = "") -> list[str]:
        return self._run("list", prefix, self.inner.list, prefix)

    def stat(self, key: str) -> ObjectInfo:
        return self._run("stat", key, self.inner.stat, key)

    def delete(self, key: str) -> None:
        self._run("delete", key, self.inner.delete, key)

    def evict_cache(self, keys: Iterable[str]) -> bool:
        keys = list(keys)
        return self._run("evict_cache", keys[0] if keys else "", self.inner.evict_cache, keys)

    def close(self) -> None:
        """Close the inner storage (this wrapper is what the registry opened)."""
        try:
            self._run("close", "", self.inner.close)
        except StorageError:
            pass  # connections of a dead endpoint: nothing to release that the process exit won't


class DeadlineWriter(WrappedWriter):
    """A streaming writer whose every call is bounded like the storage's operations."""

    def __init__(self, storage: DeadlineStorage, inner: StreamWriter):
        super().__init__(storage, inner)
        self.bounded = storage

    def _write(self, view: memoryview) -> None:
        self.bounded._run("write", self.key, self.inner.write, view)

    def _commit(self) -> None:
        self.bounded._run("commit", self.key, self.inner.commit)

    def _abort(self) -> None:
        self.bounded._run("abort", self.key, self.inner.abort)
