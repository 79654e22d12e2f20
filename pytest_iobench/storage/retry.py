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
A library that reports no attempts (s3dlio: its retries happen inside its Rust SDK) has the
fields it cannot count left out of its entry and named in ``unknown`` (``UNCOUNTED``), so
that its entry never reads as "no retries"; it counts ``failures`` (operations that raised)
instead.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .names import DEFAULT_BACKOFF, DEFAULT_RETRIES

MAX_BACKOFF = 5.0

FIELDS = ("requests", "attempts", "retries", "throttles", "resets", "timeouts", "backoff_s")
#: counted only by the libraries that say so (``UNCOUNTED``): operations that raised
EXTRA_FIELDS = ("failures",)
#: per library, the FIELDS it cannot count: absent from its entries, listed in ``unknown``
UNCOUNTED: dict[str, tuple[str, ...]] = {
    "s3dlio": ("attempts", "retries", "throttles", "resets", "timeouts", "backoff_s"),
}


def entry(library: str, counts: dict[str, float]) -> dict[str, Any]:
    """A library's storage_ops entry from its counts: what it cannot count left out and named
    in ``unknown``, ``failures`` kept only for a library that counts them."""
    unknown = UNCOUNTED.get(library, ())
    out: dict[str, Any] = {}
    for name in FIELDS + (EXTRA_FIELDS if unknown else ()):
        if name in unknown:
            continue
        value = counts.get(name, 0)
        out[name] = round(float(value), 6) if name == "backoff_s" else int(value)
    if unknown:
        out["unknown"] = list(unknown)
    return out


def add_entries(total: dict[str, dict[str, Any]], more: dict[str, dict[str, Any]]) -> None:
    """Add storage_ops entries ``more`` into ``total`` (per library, field by field; a field
    unknown in either stays unknown)."""
    for library, ops in more.items():
        mine = total.get(library)
        if mine is None:
            total[library] = dict(ops)
            continue
        unknown = sorted(set(mine.get("unknown", ())) | set(ops.get("unknown", ())),
                         key=FIELDS.index)
        for name in FIELDS + EXTRA_FIELDS:
            if name in unknown:
                mine.pop(name, None)
            elif name in mine or name in ops:
                value = mine.get(name, 0) + ops.get(name, 0)
                mine[name] = round(value, 6) if name == "backoff_s" else value
        if unknown:
            mine["unknown"] = unknown


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


def seen_on_the_wire(ops: dict[str, Any], *, attempts: int, throttles: int, resets: int,
                     timeouts: int, completed: bool = True) -> dict[str, Any]:
    """A library's entry (one that cannot count its attempts, s3dlio) completed with what a fault
    proxy that carried its requests, and only its, saw: every request the proxy got is an
    attempt, every 503 it gave a throttle met, every connection it reset a reset, every request
    it held unanswered a timeout. Retries are the attempts beyond the requests when the work
    ``completed`` and there are no fewer attempts than requests; otherwise (calls abandoned at
    a deadline, requests counted but never sent) they stay unknown, as does the backoff (the
    proxy cannot tell a wait from the client's own work)."""
    out = {k: v for k, v in ops.items() if k != "unknown"}
    out.update(attempts=attempts, throttles=throttles, resets=resets, timeouts=timeouts)
    if completed and attempts >= int(ops["requests"]):
        out["retries"] = attempts - int(ops["requests"])
    unknown = [name for name in ops.get("unknown", ()) if name not in out]
    ordered = {name: out[name] for name in FIELDS + EXTRA_FIELDS if name in out}
    return {**ordered, **({"unknown": unknown} if unknown else {})}


class Counts:
    """Per library, what its attempts met; thread-safe, process-wide (``COUNTS``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_library: dict[str, dict[str, float]] = {}
        self._stale: dict[str, int] = {}

    def add(self, library: str, **amounts: float) -> None:
        with self._lock:
            counts = self._by_library.setdefault(library, dict.fromkeys(FIELDS + EXTRA_FIELDS, 0))
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

    def since(self, before: dict[str, dict[str, float]]) -> dict[str, dict[str, Any]]:
        """What was counted after ``before`` (a snapshot), per library that did anything, as
        storage_ops entries (``entry``)."""
        now = self.snapshot()
        out: dict[str, dict[str, Any]] = {}
        for lib, counts in now.items():
            old = before.get(lib, {})
            diff = {name: counts[name] - old.get(name, 0) for name in FIELDS + EXTRA_FIELDS}
            if diff["requests"] or diff["attempts"]:
                out[lib] = entry(lib, diff)
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
