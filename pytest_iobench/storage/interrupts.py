"""Interrupts: what SIGINT and SIGTERM do to a session's storage operations.

``interrupt()`` (the plugin's handlers call it on SIGINT and SIGTERM) releases every caller
waiting for an operation at once, in every thread (deadline.py registers them in ``PENDING``);
deadline.py gives operations started after it ``GRACE`` seconds at most. A module of its own,
with nothing to import, because the plugin installs the handlers in every pytest session, also
one that never touches a storage.
"""

from __future__ import annotations

import signal
import threading
import weakref
from collections.abc import Callable
from types import FrameType
from typing import Any

#: seconds an operation started after an interrupt may take (aborting uploads, deleting scratch):
#: an interrupted session ends within seconds even when its endpoint no longer answers
GRACE = 2.0

_interrupted: list[str] = []
_signalled: list[str] = []
#: what waits for an operation (deadline._Task): set ``interrupted`` and ``done`` to release it
PENDING: weakref.WeakSet[Any] = weakref.WeakSet()
PENDING_LOCK = threading.Lock()


def interrupt(reason: str = "interrupted") -> None:
    """Release every caller waiting for an operation (``StorageInterrupted``) and give the
    operations started from now on GRACE seconds. Safe to call from a signal handler."""
    if not _interrupted:
        _interrupted.append(reason)
    # no lock (a signal handler may run while its thread holds it): copy the set, again if
    # another thread changed it meanwhile
    for _ in range(10):
        try:
            tasks = list(PENDING)
            break
        except RuntimeError:
            continue
    else:
        tasks = []
    for task in tasks:
        task.interrupted = True
        task.done.set()


def install_interrupt_handlers() -> Callable[[], None]:
    """On SIGINT and SIGTERM: ``interrupt()`` and a KeyboardInterrupt in the main thread, which
    pytest turns into an interrupted session (its results written, its fixtures torn down).
    SIGTERM, what CI sends to cancel a job, would otherwise end the process on the spot. Returns
    a function that puts the previous handlers back. Only from the main thread."""
    previous: dict[signal.Signals, Any] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if not _signalled:
            _signalled.append(name)
        interrupt(name)
        raise KeyboardInterrupt(name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        current = signal.getsignal(sig)
        if current not in (signal.default_int_handler, signal.SIG_DFL):
            continue  # someone else's handler (a debugger, a harness): theirs to run
        previous[sig] = current
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


def signalled() -> str | None:
    """The signal the handlers of ``install_interrupt_handlers`` received, None if none."""
    return _signalled[0] if _signalled else None


def interrupted() -> str | None:
    """The reason given to ``interrupt()`` (``SIGINT``, ``SIGTERM``), None when not interrupted."""
    return _interrupted[0] if _interrupted else None


def reset() -> None:
    """Forget an interrupt (a new session in the same process: tests)."""
    _interrupted.clear()
    _signalled.clear()


# -- the worker threads ---------------------------------------------------------------------------
