"""A kept-alive connection the endpoint closed is sent again at once, not retried as a fault.

A real server on 127.0.0.1 answers the first request of a connection and keeps it open, then
closes it without a reply when the next request arrives on it: the moment an endpoint's idle
timeout fires as the client reuses the connection. minio's connection pool (the one
MinioStorage uses, with our retry policy) must send that request again on a new connection
without backoff and without counting a retry; a connection reset on a fresh connection stays
a counted retry.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from pytest_iobench.storage.minio_backend import LIBRARY, _CountingPool, retry_for
from pytest_iobench.storage.retry import COUNTS, RetryPolicy


class _ClosingServer:
    """Answers 'ok' with keep-alive; the request number ``close_at`` (1-based) of each
    connection is met by closing the connection without a reply, on the first ``faulty``
    connections only."""

    def __init__(self, close_at: int, faulty: int = 1_000_000):
        self.close_at, self.faulty = close_at, faulty
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.closed_without_reply = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            faulty = self.connections <= self.faulty
            threading.Thread(target=self._serve, args=(conn, faulty), daemon=True).start()

    def _serve(self, conn: socket.socket, faulty: bool) -> None:
        with conn:
            buffered = b""
            served = 0
            while True:
                while b"\r\n\r\n" not in buffered:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffered += chunk
                head, buffered = buffered.split(b"\r\n\r\n", 1)
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buffered) < length:
                    buffered += conn.recv(65536)
                buffered = buffered[length:]
                served += 1
                if faulty and served == self.close_at:
                    self.closed_without_reply += 1
                    return  # closed: the client sees RemoteDisconnected
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok")

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def closing_server(request: pytest.FixtureRequest) -> Iterator[_ClosingServer]:
    server = _ClosingServer(*request.param)
    yield server
    server.close()


def _get_twice(port: int, method: str) -> list[tuple[int, bytes]]:
    # a long backoff: a retry that waited would be counted in backoff_s
    pool = _CountingPool(maxsize=1, retries=retry_for(RetryPolicy(retries=2, backoff=0.5)))
    try:
        out = []
        for _ in range(2):
            response = pool.request(method, f"http://127.0.0.1:{port}/bucket/key", body=b"x" * 10)
            out.append((response.status, response.data))
        return out
    finally:
        pool.clear()


@pytest.mark.parametrize("closing_server", [(2,)], indirect=True, ids=["second-request-on-kept-alive"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_stale_kept_alive_connection_is_sent_again_without_a_retry(closing_server: _ClosingServer,
                                                                    method: str) -> None:
    before, stale_before = COUNTS.snapshot(), COUNTS.stale_connections(LIBRARY)
    answers = _get_twice(closing_server.port, method)
    assert answers == [(200, b"ok"), (200, b"ok")]
    assert closing_server.closed_without_reply == 1  # the fault really happened
    ops = COUNTS.since(before)[LIBRARY]
    assert (ops["requests"], ops["attempts"], ops["retries"], ops["resets"], ops["backoff_s"]) == (2, 2, 0, 0, 0)
    assert COUNTS.stale_connections(LIBRARY) - stale_before == 1


@pytest.mark.parametrize("closing_server", [(1, 1)], indirect=True, ids=["first-request-on-new-connection"])
def test_reset_on_a_new_connection_is_still_a_counted_retry(closing_server: _ClosingServer) -> None:
    before, stale_before = COUNTS.snapshot(), COUNTS.stale_connections(LIBRARY)
    answers = _get_twice(closing_server.port, "GET")
    assert answers == [(200, b"ok"), (200, b"ok")]
    assert closing_server.closed_without_reply == 1
    ops = COUNTS.since(before)[LIBRARY]
    assert (ops["requests"], ops["attempts"], ops["retries"], ops["resets"]) == (2, 3, 1, 1)
    assert COUNTS.stale_connections(LIBRARY) == stale_before
