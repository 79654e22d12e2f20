"""The ``minio`` SDK on S3.

The SDK streams an upload of unknown length (``put_object(length=-1)``) from anything with a
``read()``, as a multipart upload with a bounded number of parts in flight, and aborts the
upload when ``read()`` raises. The streaming writer hands it a ``_Pipe``: ``write`` pushes
bytes in (blocking when the SDK falls behind: backpressure), a background thread runs
``put_object`` reading them out.

The SDK uploads ``num_parallel_uploads`` parts at once from a pool whose threads each keep
the last part they uploaded until the upload ends, so its parts cannot be given back to the
process-wide PART_BUDGET one by one: a writer takes the tokens that are free when it starts
(at most MAX_PARTS_IN_FLIGHT, never waiting) and uploads that many parts at once, or one at a
time from the SDK's own thread when fewer than two are free; it gives them back at its end.

What the SDK holds per writer is about (parallel uploads + 2) parts: the parts its pool threads
keep, and while it reads the next part from the pipe, the part growing read by read and its copy
without the look-ahead byte (``put_object(length=-1)`` reads a part and one byte more). So minio's
parts are the smallest S3 allows, 5 MiB (the SDK's own choice for objects under 48.8 GiB), not
the 8 MiB of the other libraries: its memory scales with its part size, its speed does not
(figures in docs/architecture.md, "Memory"). The cost: 10,000 parts make a streamed object of at
most 48.8 GiB, refused beyond that with a clear error (``s3common.check_stream_size``).
"""

from __future__ import annotations

import io
import threading
import time
from collections import deque
from http.client import RemoteDisconnected
from types import TracebackType
from typing import Any, BinaryIO, Self, cast

import urllib3
from minio import Minio
from minio.error import S3Error
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import ConnectionPool, HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ProtocolError
from urllib3.response import BaseHTTPResponse

from .base import Buffer, ObjectInfo, Storage, StreamWriter, check_key
from .deadline import Timeouts
from .errors import StorageError, StorageNotFound
from .retry import COUNTS, RetryPolicy, classify_exception, classify_status
from .s3common import (
    MAX_PARTS_IN_FLIGHT,
    PART_BUDGET,
    S3Location,
    check_stream_size,
    completed_anyway,
    endpoint_limit,
    error_for_code,
    is_invalid_range,
)

LIBRARY = "minio"
#: minio's part size: S3's minimum (see above)
PART_SIZE = 5 << 20
#: the largest object S3 takes in one PUT
MAX_SINGLE_PUT = 5 << 30


def put_part_size(length: int) -> int:
    """The part size that makes ``put_object`` send ``length`` bytes as one PUT, as s3dlio's
    ``put_bytes`` and boto3's ``put_object`` do (0, the SDK's own choice, past MAX_SINGLE_PUT).
    Left to itself the SDK makes anything over 5 MiB a multipart upload of 5 MiB parts: a
    16 MiB object is 6 requests, and the embedded endpoint (moto) spends about twice the CPU
    per byte on them (docs/s3.md)."""
    return max(PART_SIZE, length) if length <= MAX_SINGLE_PUT else 0


def translate(op: str, key: str, exc: BaseException) -> StorageError:
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, S3Error):
        return error_for_code(op, key, LIBRARY, exc.code or "", f"{exc.code}: {exc.message}")
    return StorageError(op, key, LIBRARY, f"{type(exc).__name__}: {exc}")


class _Retry(urllib3.Retry):
    """urllib3's Retry with our backoff, counting each failed attempt and the wait after it.

    Every method is retried (``allowed_methods=None``): urllib3 leaves POST out by default, and
    a create or complete of a multipart upload is a POST that S3 throttles like any request.
    A complete retried after its reply was lost finds the upload gone: _StreamingPut checks
    the object then."""

    policy = RetryPolicy()
    #: set on the copy that retries a stale pooled connection: no backoff, nothing counted
    _at_once = False
    #: stale pooled connections met by this request so far
    _stale = 0

    def increment(self, method: str | None = None, url: str | None = None, response: BaseHTTPResponse | None = None,
                  error: Exception | None = None, _pool: ConnectionPool | None = None,
                  _stacktrace: TracebackType | None = None) -> Self:
        if response is None and self._stale < MAX_STALE_RETRIES and _stale_connection(error):
            # the endpoint closed a kept-alive connection as we reused it: not a fault of the
            # endpoint's, nothing was processed; again at once on another connection
            again = self.new()
            again._stale, again._at_once = self._stale + 1, True
            COUNTS.stale_connection(LIBRARY)
            return again
        outcome = classify_status(response.status) if response is not None else classify_exception(error)
        if outcome in ("throttle", "reset", "timeout"):
            COUNTS.add(LIBRARY, **{outcome + "s": 1})
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def get_backoff_time(self) -> float:
        retries = len(self.history)
        return self.policy.delay(retries) if retries else 0.0

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        """The wait before a retry (a Retry-After the endpoint sent, or our backoff): the next
        attempt follows it, so it is counted here (a request's first attempt: _CountingPool)."""
        if self._at_once:
            return
        started = time.monotonic()
        super().sleep(response)
        COUNTS.add(LIBRARY, attempts=1, retries=1, backoff_s=time.monotonic() - started)


def retry_for(policy: RetryPolicy) -> urllib3.Retry:
    retry_class = type("Retry", (_Retry,), {"policy": policy})
    # raise_on_status=False: the last answer goes to the SDK, which names the S3 error
    retry: urllib3.Retry = retry_class(total=policy.retries, connect=policy.retries, read=policy.retries,
                                       status=policy.retries, allowed_methods=None,
                                       status_forcelist=[500, 502, 503, 504], raise_on_status=False)
    return retry


#: a request meets at most this many stale pooled connections (then a reset counts as one):
#: each is discarded, so more than the pool's size would mean the endpoint closes new ones too
MAX_STALE_RETRIES = 33
_wire = threading.local()


def _stale_connection(error: Exception | None) -> bool:
    """Did this attempt fail because a pooled connection it reused had been closed by the
    endpoint (the request went out on it, no byte of an answer came back)?"""
    cause = error.args[1] if isinstance(error, ProtocolError) and len(error.args) > 1 else error
    reused = getattr(_wire, "reused", False)
    _wire.reused = False
    return reused and isinstance(cause, (RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                                         ConnectionAbortedError))


class _Connection(HTTPConnection):
    """A connection that notes, per thread, whether the request it sends goes out on a socket
    that has already carried an answered request (a kept-alive one, which the endpoint may have
    closed meanwhile)."""

    _answered = 0

    def connect(self) -> None:
        super().connect()
        self._answered = 0

    def request(self, *args: Any, **kw: Any) -> None:
        _wire.reused = self.sock is not None and self._answered > 0
        super().request(*args, **kw)

    def getresponse(self, *args: Any, **kw: Any) -> Any:
        response = super().getresponse(*args, **kw)
        self._answered += 1
        return response


class _TLSConnection(_Connection, HTTPSConnection):
    pass


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _TLSPool(HTTPSConnectionPool):
    ConnectionCls = _TLSConnection


class _CountingPool(urllib3.PoolManager):
    def __init__(self, **kw: Any):
        super().__init__(**kw)
        self.pool_classes_by_scheme = {"http": _Pool, "https": _TLSPool}

    # PoolManager's own signature, which urllib3 declares with the same ignore
    def urlopen(self, method: str, url: str, redirect: bool = True, **kw: Any) -> BaseHTTPResponse:  # type: ignore[override]
        COUNTS.add(LIBRARY, requests=1, attempts=1)
        return super().urlopen(method, url, redirect=redirect, **kw)


class _Aborted(Exception):
    """Raised into the SDK's read() so that it aborts the multipart upload."""


#: the most bytes a pipe holds, and the least a read() waits for (unless at the end). The SDK
#: joins reads into a part itself (one copy per read), so the pipe need not hold a part:
#: pieces of this size keep those copies few and the pipe small.
PIPE_BYTES = 2 << 20
#: a write is copied into the pipe in pieces of at most this size, each waiting for room: a
#: whole 8 MiB write copied at once sat in the pipe beside the SDK's part (56 MiB of the peak
#: generating to S3 with 4 threads)
PIECE_BYTES = 1 << 20


class _Pipe:
    """A bounded byte queue between ``push`` (the writer) and the SDK's ``read``.

    It holds at most ``max_bytes`` plus the piece being copied in. Pieces are kept as views of
    their copies, so a read that takes part of one cuts the view rather than copying the rest."""

    def __init__(self, max_bytes: int = PIPE_BYTES, piece: int = PIECE_BYTES):
        self.max_bytes = max_bytes
        self.piece = piece
        self.chunks: deque[memoryview] = deque()
        self.buffered = 0
        self.eof = False
        self.aborted = False
        self.consumer_done = False
        self.cond = threading.Condition()

    def push(self, view: memoryview) -> None:
        """Copy ``view`` in (the caller reuses its buffer), a piece at a time, each waiting
        while the pipe is full (backpressure)."""
        for start in range(0, view.nbytes, self.piece):
            with self.cond:
                while self.buffered >= self.max_bytes and not self.consumer_done:
                    self.cond.wait()
                if self.consumer_done:
                    return  # the upload ended (failed); the writer reports its error
            # the only producer: room can only grow while the copy is made outside the lock
            piece = memoryview(bytes(view[start:start + self.piece]))
            with self.cond:
                self.chunks.append(piece)
                self.buffered += piece.nbytes
                self.cond.notify_all()

    def finish(self, *, abort: bool = False) -> None:
        with self.cond:
            self.eof = True
            self.aborted = abort
            self.cond.notify_all()

    def done_reading(self) -> None:
        with self.cond:
            self.consumer_done = True
            self.cond.notify_all()

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes, at least ``max_bytes`` of them unless the stream ends first."""
        with self.cond:
            while not self.aborted and not self.eof and (size < 0 or self.buffered < min(size, self.max_bytes)):
                self.cond.wait()
            if self.aborted:
                raise _Aborted()
            size = self.buffered if size < 0 else min(size, self.buffered)
            parts: list[memoryview] = []
            taken = 0
            while taken < size:
                chunk = self.chunks[0]
                take = min(chunk.nbytes, size - taken)
                if take == chunk.nbytes:
                    self.chunks.popleft()
                else:
                    self.chunks[0] = chunk[take:]
                    chunk = chunk[:take]
                parts.append(chunk)
                taken += take
            self.buffered -= taken
            self.cond.notify_all()
        whole = parts[0].obj if len(parts) == 1 else None
        if isinstance(whole, bytes) and parts[0].nbytes == len(whole):
            return whole  # a whole piece: its copy as it is
        return b"".join(parts)  # the SDK wants bytes


class _StreamingPut(StreamWriter):
    def __init__(self, storage: MinioStorage, key: str):
        super().__init__(storage, key)
        self.minio = storage
        self.pipe = _Pipe()
        self.tokens = PART_BUDGET.take_available(MAX_PARTS_IN_FLIGHT)
        if self.tokens < 2:  # one part at a time: the SDK thread's own part, no pool
            PART_BUDGET.release(self.tokens)
            self.tokens = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._upload, name=f"minio-put-{key}", daemon=True)
        self.thread.start()

    def _upload(self) -> None:
        storage = self.minio
        try:
            storage.client.put_object(
                # the SDK only reads() it: a file as far as it is concerned
                storage.location.bucket, storage.location.object_name(self.key), cast(BinaryIO, self.pipe),
                length=-1, part_size=PART_SIZE, num_parallel_uploads=max(1, self.tokens),
            )
        except BaseException as exc:  # handed to the caller by _check / _commit
            self.error = exc
        finally:
            PART_BUDGET.release(self.tokens)  # the SDK's pool has ended with the upload
            self.tokens = 0
            self.pipe.done_reading()

    def _check(self, op: str) -> None:
        if self.error is not None and not isinstance(self.error, _Aborted):
            raise translate(op, self.key, self.error) from self.error

    def _write(self, view: memoryview) -> None:
        self._check("write")
        check_stream_size(self.key, LIBRARY, self.bytes_written, view.nbytes, PART_SIZE)
        self.pipe.push(view)
        self._check("write")

    def _commit(self) -> None:
        self.pipe.finish()
        self.thread.join()
        if isinstance(self.error, S3Error) and self.error.code == "NoSuchUpload" and completed_anyway(
                lambda: self.storage.stat(self.key).size, self.bytes_written):
            return  # the complete was retried after its reply was lost: the object is there
        self._check("commit")

    def _abort(self) -> None:
        self.pipe.finish(abort=True)
        self.thread.join()


class MinioStorage(Storage):
    kind = "s3"
    library = LIBRARY

    def __init__(self, location: S3Location, timeouts: Timeouts = Timeouts()):
        super().__init__(location.uri())
        self.location = location
        ep = location.endpoint
        cannot = endpoint_limit(LIBRARY, ep.url)
        if cannot:  # the SDK would drop the path and talk to the wrong place
            raise StorageError("open", "", LIBRARY, cannot)
        http = _CountingPool(
            maxsize=32,
            timeout=urllib3.Timeout(connect=timeouts.connect, read=timeouts.read),
            retries=retry_for(timeouts.retry),
        )
        self.client = Minio(
            ep.netloc, access_key=ep.access_key, secret_key=ep.secret_key,
            session_token=ep.session_token, secure=ep.secure, region=ep.region, http_client=http,
        )

    def uri(self, key: str) -> str:
        return self.location.uri(key)

    def _name(self, op: str, key: str) -> str:
        return self.location.object_name(check_key(key, LIBRARY, op))

    def put(self, key: str, data: Buffer) -> None:
        name = self._name("put", key)
        view = memoryview(data).cast("B")
        try:
            # BytesIO shares a bytes object and its whole read() returns it: no copy (a view is copied once)
            body = io.BytesIO(data if type(data) is bytes else view)
            self.client.put_object(
                self.location.bucket, name, body, length=view.nbytes, part_size=put_part_size(view.nbytes)
            )
        except Exception as exc:
            raise translate("put", key, exc) from exc

    def put_if_absent(self, key: str, data: Buffer) -> bool:
        name = self._name("put_if_absent", key)
        # the SDK's put_object takes no conditional header; its single-request PutObject does
        # (a private method: where it is gone, the lease writes and reads back instead)
        put = getattr(self.client, "_put_object", None)
        if put is None:
            raise NotImplementedError
        try:
            put(self.location.bucket, name, bytes(data), headers={"If-None-Match": "*"})
        except S3Error as exc:
            if exc.code in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            if exc.code == "NotImplemented":
                raise NotImplementedError from exc
            raise translate("put_if_absent", key, exc) from exc
        except Exception as exc:
            raise translate("put_if_absent", key, exc) from exc
        return True

    def open_writer(self, key: str, *, fsync: bool = False) -> StreamWriter:
        self._name("open_writer", key)
        return _StreamingPut(self, key)

    def _read(self, op: str, key: str, offset: int = 0, length: int = 0) -> bytes:
        name = self._name(op, key)
        response = None
        try:
            response = self.client.get_object(self.location.bucket, name, offset=offset, length=length)
            return response.read()
        except Exception as exc:
            if op == "get_range" and is_invalid_range(str(exc)):
                self.stat(key)
                return b""
            raise translate(op, key, exc) from exc
        finally:
            if response is not None:
                response.close()
                response.release_conn()

    def get(self, key: str) -> Buffer:
        return self._read("get", key)

    def get_range(self, key: str, offset: int, length: int) -> Buffer:
        if offset < 0 or length < 0:
            raise StorageError("get_range", key, LIBRARY, f"offset {offset} and length {length} must be >= 0")
        if length == 0:
            self.stat(key)
            return b""
        return self._read("get_range", key, offset, length)

    def list(self, prefix: str = "") -> list[str]:
        try:
            objects = self.client.list_objects(
                self.location.bucket, prefix=self.location.list_prefix(prefix), recursive=True
            )
            keys = [self.location.key_of(o.object_name) for o in objects if not o.is_dir]
        except Exception as exc:
            raise translate("list", prefix, exc) from exc
        return sorted(keys)

    def stat(self, key: str) -> ObjectInfo:
        name = self._name("stat", key)
        try:
            size = self.client.stat_object(self.location.bucket, name).size
        except Exception as exc:
            raise translate("stat", key, exc) from exc
        if size is None:
            raise StorageError("stat", key, LIBRARY, "the endpoint answered without the object's size")
        return ObjectInfo(key, size)

    def delete(self, key: str) -> None:
        name = self._name("delete", key)
        try:
            self.client.remove_object(self.location.bucket, name)
        except Exception as exc:
            err = translate("delete", key, exc)
            if not isinstance(err, StorageNotFound):
                raise err from exc
