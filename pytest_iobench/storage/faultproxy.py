"""A fault-injecting HTTP proxy on 127.0.0.1, in front of an S3 endpoint on loopback.

It is how the tool's own behaviour under faults is tested with real sockets and real client
libraries: requests pass through unchanged, or get a fault chosen by a ``Profile``:

- ``throttle``: the request is answered ``503 SlowDown`` (S3's XML error body), as a throttled
  S3 endpoint does; clients retry these;
- ``reset``: the connection is reset (TCP RST) once the request's head has arrived;
- ``blackhole``: the connection is accepted and never answered (what a silent endpoint, a dead
  load balancer or a lost route looks like to a client);
- ``lost``: the request is passed on whole and the endpoint answers it (it took effect), but
  the answer is dropped and the client's connection reset: a reply lost on the way back, the
  case a retry must handle idempotently (a PUT or a complete-multipart-upload done twice);
  ``lose_next`` makes it hit one chosen request;
- ``slow``: every request waits ``delay_ms`` before it is passed on;
- ``blackout``: for ``seconds`` from when the profile is set, every request is blackholed;
  afterwards requests pass.

Rates are exact and reproducible: requests are numbered in the order their heads arrive,
and in every block of ``BLOCK`` requests exactly ``round(rate * BLOCK)`` of them get the
fault, at positions drawn from ``random.Random(seed, block)``: the same seed and the same
request order give the same faults. ``after`` lets that many requests pass first (a session's
start-up checks, say). Profiles are written as resilience suites name them:
``parse_profile("throttle-10%,reset-5%,slow-20ms")``, ``"blackout-5s"``, ``"blackhole"``.

Each request is passed on with ``Connection: close`` in its head, so a connection carries one
request and a fault hits exactly the request it was drawn for; the clients reconnect (on
loopback a connect costs well under a millisecond).

``path_prefix="/s3"`` serves the upstream under that path, as AIStore serves its S3 API:
``/s3/bucket/key`` is passed on as ``/bucket/key``, and a request outside the prefix is
answered 404, so a client that drops the prefix fails instead of passing by luck.

Bounded and self-stopping: it listens on 127.0.0.1 only and forwards only to a loopback
upstream, holds at most ``max_connections`` connections (more are refused), and stops by itself
after ``lifetime`` seconds if its owner never calls ``stop``; its threads are daemons.
"""

from __future__ import annotations

import ipaddress
import random
import re
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

#: requests per block over which a rate is exact
BLOCK = 100
#: the most bytes of a request head read before the request is refused as malformed
MAX_HEAD = 64 << 10
FAULTS = ("throttle", "reset", "blackhole", "lost", "slow", "blackout")
#: the faults given as rates, in the order a block's positions are drawn for them
_RATED = ("throttle", "reset", "blackhole", "lost")

SLOW_DOWN_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
    b"<RequestId>iobench-faultproxy</RequestId></Error>"
)


@dataclass(frozen=True)
class Profile:
    """What the proxy does to requests. Rates are fractions (0.1 = 10 %); ``throttle``,
    ``reset`` and ``blackhole`` together take at most every request."""

    throttle: float = 0.0
    reset: float = 0.0
    blackhole: float = 0.0
    lost: float = 0.0
    #: every passed request waits this long first
    delay_ms: float = 0.0
    #: every request is blackholed for this many seconds from when the profile is set
    blackout_s: float = 0.0
    #: the first ``after`` requests pass whatever the rates say
    after: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in _RATED:
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"the {name} rate {rate!r} is not a fraction from 0 to 1")
        if self.throttle + self.reset + self.blackhole + self.lost > 1.0 + 1e-9:
            raise ValueError("throttle, reset, blackhole and lost rates add up to more than 100 %")
        if self.delay_ms < 0 or self.blackout_s < 0 or self.after < 0:
            raise ValueError("delay, blackout and after are not negative")

    def counts(self) -> dict[str, int]:
        """Faulted requests per BLOCK requests, per fault: exact."""
        return {name: round(getattr(self, name) * BLOCK) for name in _RATED}


PASS = Profile()
BLACKHOLE = Profile(blackhole=1.0)

_ITEM = re.compile(r"^(throttle|reset|blackhole|lost)(?:-(\d+(?:\.\d+)?)%)?$|^slow-(\d+(?:\.\d+)?)ms$|"
                   r"^blackout-(\d+(?:\.\d+)?)s$|^after-(\d+)$|^seed-(\d+)$|^pass$")


def parse_profile(text: str) -> Profile:
    """``throttle-N%``, ``reset-N%``, ``blackhole[-N%]``, ``lost[-N%]``, ``slow-Nms``, ``blackout-Ns``,
    ``after-N``, ``seed-N`` or ``pass``, joined by commas."""
    rates: dict[str, float] = {}
    values: dict[str, float] = {}
    counts: dict[str, int] = {}
    for item in (part.strip() for part in text.split(",")):
        match = _ITEM.match(item)
        if not match:
            raise ValueError(f"{item!r} is not a fault; valid: throttle-N%, reset-N%, blackhole[-N%], lost[-N%], "
                             "slow-Nms, blackout-Ns, after-N, seed-N, pass")
        name, rate, slow, blackout, after, seed = match.groups()
        if name:
            rates[name] = float(rate) / 100 if rate else 1.0
        elif slow:
            values["delay_ms"] = float(slow)
        elif blackout:
            values["blackout_s"] = float(blackout)
        elif after:
            counts["after"] = int(after)
        elif seed:
            counts["seed"] = int(seed)
    return Profile(throttle=rates.get("throttle", 0.0), reset=rates.get("reset", 0.0),
                   blackhole=rates.get("blackhole", 0.0), lost=rates.get("lost", 0.0),
                   delay_ms=values.get("delay_ms", 0.0), blackout_s=values.get("blackout_s", 0.0),
                   after=counts.get("after", 0), seed=counts.get("seed", 0))


def _is_loopback(host: str) -> bool:
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback
                   for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP))
    except (OSError, ValueError):
        return False


class _Schedule:
    """The fate of request number n under a profile (exact per block, seeded)."""

    def __init__(self, profile: Profile):
        self.profile = profile
        self.started = time.monotonic()
        self._blocks: dict[int, list[str]] = {}

    def fate(self, n: int) -> str:
        profile = self.profile
        if n < profile.after:
            return "pass"
        if profile.blackout_s and time.monotonic() - self.started < profile.blackout_s:
            return "blackhole"
        n -= profile.after
        block, position = divmod(n, BLOCK)
        if block not in self._blocks:
            fates = [name for name, count in profile.counts().items() for _ in range(count)]
            fates += ["pass"] * (BLOCK - len(fates))
            random.Random(f"{profile.seed}/{block}").shuffle(fates)
            self._blocks = {block: fates}  # one block at a time: memory stays bounded
        return self._blocks[block][position]


@dataclass
class _Request:
    head: bytes
    method: str
    headers: dict[str, str] = field(default_factory=dict)


class FaultProxy:
    """``with FaultProxy("http://127.0.0.1:9000", parse_profile("reset-10%")) as proxy:`` and
    point clients at ``proxy.url``. ``stats`` counts requests by fate."""

    def __init__(self, upstream: str, profile: Profile = PASS, *, max_connections: int = 256,
                 lifetime: float = 3600.0, io_timeout: float = 60.0, path_prefix: str = ""):
        parts = urlsplit(upstream)
        if path_prefix and (not path_prefix.startswith("/") or path_prefix.endswith("/") or "?" in path_prefix):
            raise ValueError(f"the path prefix {path_prefix!r} is not a path such as /s3")
        self.path_prefix = path_prefix
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the upstream {upstream!r} is not an http://host:port URL")
        if not _is_loopback(parts.hostname):
            raise ValueError(f"the upstream {upstream!r} is not on loopback; the fault proxy stays on this machine")
        self.upstream = (parts.hostname, parts.port or 80)
        self.max_connections = max_connections
        self.lifetime = lifetime
        #: how long a passed request's bytes may stall before its connection is dropped
        self.io_timeout = io_timeout
        self.stats: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._schedule = _Schedule(profile)
        self._count = 0
        #: (method, text in the request target) of requests whose replies are to be lost
        self._lose: list[tuple[str, str]] = []
        self._sockets: set[socket.socket] = set()
        self._stopped = threading.Event()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """Where clients point: the listening port, and the path prefix if any."""
        return f"http://127.0.0.1:{self.port}{self.path_prefix}"

    @property
    def profile(self) -> Profile:
        return self._schedule.profile

    def set_profile(self, profile: Profile) -> None:
        """Use ``profile`` from the next request on; request numbering and a blackout's clock
        start again."""
        with self._lock:
            self._schedule = _Schedule(profile)
            self._count = 0

    def lose_next(self, method: str, target_contains: str = "") -> None:
        """Lose the reply to the next ``method`` request whose target contains
        ``target_contains`` (``"POST", "uploadId="``: a complete-multipart-upload), once,
        whatever the profile says."""
        with self._lock:
            self._lose.append((method.upper(), target_contains))

    def _lost_by_request(self, request: _Request) -> bool:
        target = request.head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")[1:2]
        with self._lock:
            for i, (method, text) in enumerate(self._lose):
                if request.method == method and target and text in target[0]:
                    del self._lose[i]
                    return True
        return False

    # -- life ---------------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        listener.settimeout(0.2)  # the accept loop notices stop() and the lifetime
        self._listener, self.port = listener, listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name=f"faultproxy-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listener and every connection (blackholed ones included)."""
        self._stopped.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            _close(sock)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        deadline = time.monotonic() + self.lifetime
        listener = self._listener
        if listener is None:
            return
        try:
            while not self._stopped.is_set() and time.monotonic() < deadline:
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    break
                with self._lock:
                    if len(self._sockets) >= self.max_connections:
                        self.stats["refused"] += 1
                        _close(client)
                        continue
                    self._sockets.add(client)
                threading.Thread(target=self._serve, args=(client,), name="faultproxy-conn", daemon=True).start()
        finally:
            _close(listener)
            if not self._stopped.is_set():  # the lifetime ran out: end everything
                threading.Thread(target=self.stop, daemon=True).start()

    # -- one connection, one request ------------------------------------------------------------
    def _serve(self, client: socket.socket) -> None:
        upstream = None
        try:
            client.settimeout(self.io_timeout)
            request, rest = _read_head(client)
            if request is None:
                return
            if self.path_prefix:
                unprefixed = _strip_prefix(request, self.path_prefix)
                if unprefixed is None:
                    self.stats["outside-prefix"] += 1
                    _drain_body(client, request, rest)
                    client.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    return
                request = unprefixed
            with self._lock:
                n, self._count = self._count, self._count + 1
                schedule = self._schedule
            fate = "lost" if self._lost_by_request(request) else schedule.fate(n)
            self.stats["requests"] += 1
            self.stats[fate] += 1
            if fate == "blackhole":
                self._hold(client)
            elif fate == "reset":
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif fate == "throttle":
                self._slow_down(client, request, rest)
            else:
                if schedule.profile.delay_ms:
                    self._stopped.wait(schedule.profile.delay_ms / 1000)
                upstream = socket.create_connection(self.upstream, timeout=self.io_timeout)
                with self._lock:
                    self._sockets.add(upstream)
                upstream.sendall(_closing(request.head) + rest)
                _pump_both(client, upstream, lose_answer=fate == "lost")
        except OSError:
            pass  # a client or upstream that went away: nothing to report to anyone
        finally:
            with self._lock:
                self._sockets.discard(client)
                if upstream is not None:
                    self._sockets.discard(upstream)
            _close(client)
            if upstream is not None:
                _close(upstream)

    def _hold(self, client: socket.socket) -> None:
        """Say nothing: read and drop what the client sends until it gives up or we stop."""
        client.settimeout(0.2)
        while not self._stopped.is_set():
            try:
                if not client.recv(1 << 16):
                    return
            except TimeoutError:
                continue

    def _slow_down(self, client: socket.socket, request: _Request, rest: bytes) -> None:
        """503 SlowDown. A client waiting for ``100 Continue`` sends no body: answer at once
        and close; otherwise read the body first, so the client reads the answer, not a reset."""
        expects = request.headers.get("expect", "").lower() == "100-continue"
        if not expects:
            _drain_body(client, request, rest)
        response = (b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
                    b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(SLOW_DOWN_BODY))
        client.sendall(response + (b"" if request.method == "HEAD" else SLOW_DOWN_BODY))


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


def _read_head(sock: socket.socket) -> tuple[_Request | None, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1 << 16)
        if not chunk:
            return None, b""
        data += chunk
        if len(data) > MAX_HEAD:
            return None, b""
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return _Request(head + b"\r\n\r\n", lines[0].split(" ", 1)[0], headers), rest


def _strip_prefix(request: _Request, prefix: str) -> _Request | None:
    """The request with ``prefix`` taken off its target's path; None if it is not under it."""
    line, _, rest = request.head.partition(b"\r\n")
    method, _, tail = line.partition(b" ")
    target, _, version = tail.partition(b" ")
    raw = prefix.encode("latin-1")
    if target == raw:
        target = b"/"
    elif target.startswith(raw + b"/"):
        target = target[len(raw):]
    elif target.startswith(raw + b"?"):
        target = b"/" + target[len(raw):]
    else:
        return None
    return _Request(b"%s %s %s\r\n%s" % (method, target, version, rest), request.method, request.headers)


def _closing(head: bytes) -> bytes:
    """The request head with ``Connection: close``: one request per connection."""
    lines = [line for line in head[:-4].split(b"\r\n") if not line.lower().startswith(b"connection:")]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n"


def _drain_body(sock: socket.socket, request: _Request, rest: bytes) -> None:
    if "chunked" in request.headers.get("transfer-encoding", "").lower():
        data = rest
        while not data.endswith(b"0\r\n\r\n") and b"\r\n0\r\n\r\n" not in data:
            chunk = sock.recv(1 << 16)
            if not chunk:
                return
            data = data[-16:] + chunk  # only the end matters
        return
    remaining = int(request.headers.get("content-length", "0") or 0) - len(rest)
    while remaining > 0:
        chunk = sock.recv(min(remaining, 1 << 16))
        if not chunk:
            return
        remaining -= len(chunk)


def _pump_both(client: socket.socket, upstream: socket.socket, *, lose_answer: bool = False) -> None:
    """Copy bytes both ways until the upstream's answer ends (it closes: Connection: close).
    ``lose_answer``: the upstream's answer is read whole and dropped (an interim ``100
    Continue`` still reaches the client, which sends its body only after it)."""

    def pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(1 << 16):
                sink.sendall(chunk)
        except OSError:
            pass
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def drop(source: socket.socket, sink: socket.socket) -> None:
        seen: bytes | None = b""
        try:
            while chunk := source.recv(1 << 16):
                if seen is not None:
                    seen += chunk
                    while seen.startswith(b"HTTP/1.1 100") and b"\r\n\r\n" in seen:
                        interim, seen = seen.split(b"\r\n\r\n", 1)
                        sink.sendall(interim + b"\r\n\r\n")
                    if len(seen) >= 12 and not seen.startswith(b"HTTP/1.1 100"):
                        seen = None  # the final answer: dropped to its end
        except OSError:
            pass

    upward = threading.Thread(target=pump, args=(client, upstream), name="faultproxy-up", daemon=True)
    upward.start()
    if lose_answer:
        drop(upstream, client)
        # closed with a reset once the thread reading the client lets go of the socket
        # (a close while another thread is in recv() on it sends nothing)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        try:
            client.shutdown(socket.SHUT_RD)
        except OSError:
            pass
    else:
        pump(upstream, client)
    upward.join(timeout=1)
