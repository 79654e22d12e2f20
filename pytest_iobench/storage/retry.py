"""One retry policy for every S3 library, and the count of what retrying cost.

``RetryPolicy`` is the attempt budget and the backoff (``--iobench-retries``,
``--iobench-backoff``): every library retries the same classes of errors (throttling, 503
SlowDown; 500/502/504; a connection reset; a read or connect timeout) with exponential backoff
and full jitter, each through its own mechanism (docs/resilience.md: botocore's standard retry
handler with our backoff and no retry quota, urllib3's ``Retry`` with every method allowed,
s3dlio's environment).

``COUNTS`` adds up, per library, what the libraries report of their attempts: requests,
attempts, retries, throttles, resets, timeouts and the seconds slept in backoff. The plugin
takes its difference around each test (``snapshot`` / ``since``) for the result document.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

#: --iobench-retries's default: 6 attempts make a request fail at 10 % throttling once in a
#: million, where 3 failed training runs (the issue's trial)
DEFAULT_RETRIES = 5
#: --iobench-backoff's default, seconds: the first retry waits up to this, each next one twice
#: as long at most (full jitter), never more than MAX_BACKOFF
DEFAULT_BACKOFF = 0.05
MAX_BACKOFF = 5.0

FIELDS = ("requests", "attempts", "retries", "throttles", "resets", "timeouts", "backoff_s")


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = DEFAULT_RETRIES
    backoff: float = DEFAULT_BACKOFF

    @property
    def attempts(self) -> int:
        return self.retries + 1

    def delay(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first): full jitter over an
        exponential ceiling, so that throttled clients do not come back together."""
        return rand() * min(MAX_BACKOFF, self.backoff * 2.0 ** (retry - 1))


class Counts:
    """Per library, what its attempts met; thread-safe, process-wide (``COUNTS``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_library: dict[str, dict[str, float]] = {}
        self._stale: dict[str, int] = {}

    def add(self, library: str, **amounts: float) -> None:
        with self._lock:
            counts = self._by_library.setdefault(library, dict.fromkeys(FIELDS, 0))
            for name, amount in amounts.items():
                counts[name] += amount

    def attempt(self, library: str, outcome: str | None, delay: float | None) -> None:
        """One attempt ended: ``outcome`` is None (answered), "throttle", "reset", "timeout" or
        "error" (another retryable error); ``delay`` is the backoff before the retry the library
        decided on, None when it does not retry."""
        amounts: dict[str, float] = {"attempts": 1}
        if outcome in ("throttle", "reset", "timeout"):
            amounts[outcome + "s"] = 1
        if delay is not None:
            amounts["retries"] = 1
            amounts["backoff_s"] = delay
        self.add(library, **amounts)

    def stale_connection(self, library: str) -> None:
        """A kept-alive connection the endpoint had closed was reused, and the request sent
        again at once on another: no fault, no retry, no backoff; counted apart (not in the
        document)."""
        with self._lock:
            self._stale[library] = self._stale.get(library, 0) + 1

    def stale_connections(self, library: str) -> int:
        with self._lock:
            return self._stale.get(library, 0)

    def snapshot(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {lib: dict(counts) for lib, counts in self._by_library.items()}

    def since(self, before: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        """What was counted after ``before`` (a snapshot), per library that did anything."""
        now = self.snapshot()
        out: dict[str, dict[str, float]] = {}
        for lib, counts in now.items():
            old = before.get(lib, {})
            diff = {name: counts[name] - old.get(name, 0) for name in FIELDS}
            if diff["requests"] or diff["attempts"]:
                diff["backoff_s"] = round(diff["backoff_s"], 6)
                out[lib] = {k: (int(v) if k != "backoff_s" else v) for k, v in diff.items()}
        return out


COUNTS = Counts()


def classify_exception(exc: BaseException | None) -> str:
    """"timeout", "reset" or "error" for an exception a library met on the wire."""
    names = {cls.__name__ for cls in type(exc).__mro__} if exc is not None else set()
    text = f"{type(exc).__name__}: {exc}"
    if names & {"ReadTimeoutError", "ConnectTimeoutError", "TimeoutError", "ReadTimeout", "ConnectTimeout"} \
            or "timed out" in text.lower():
        return "timeout"
    if names & {"ConnectionResetError", "ConnectionClosedError", "ProtocolError", "ConnectionError",
                "EndpointConnectionError", "RemoteDisconnected", "BrokenPipeError", "IncompleteRead"}:
        return "reset"
    return "error"


def classify_status(status: int, code: str = "") -> str | None:
    """The outcome of an answer: None when it is not an error worth retrying."""
    if status == 503 or code in ("SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded"):
        return "throttle"
    if status in (500, 502, 504):
        return "error"
    return None
