"""What the S3 client libraries share: where to connect, where to work, and error mapping."""

from __future__ import annotations

import hashlib
import mmap
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from .base import join_key
from .errors import StorageError, StorageNotFound, StoragePermissionDenied, register_secret

#: part size of the streaming uploads, the same for boto3 and s3dlio so they compare fairly
#: (minio's SDK holds each part two or three times: it uses S3's minimum, minio_backend.PART_SIZE)
PART_SIZE = 8 << 20
#: the most parts of one multipart upload (S3's limit)
MAX_PARTS = 10_000
#: parts one streaming writer uploads concurrently, at most (the process budget below may
#: allow it fewer)
MAX_PARTS_IN_FLIGHT = 4
#: parts all the streaming writers of a process may have in flight together: with the part
#: each writer fills, N writers hold about (N + PART_BUDGET_PARTS) * PART_SIZE, not
#: N * (MAX_PARTS_IN_FLIGHT + 1) * PART_SIZE
PART_BUDGET_PARTS = 8


class PartBudget:
    """The parts in flight (handed to an upload and not yet uploaded) of every streaming
    writer of this process, at most ``parts`` at a time.

    A writer takes one before it hands a full part over (``acquire`` waits while the budget
    is spent: backpressure) and gives it back once the part is uploaded, failed or dropped.
    The part a writer is filling is its own and not counted, so every writer can always make
    progress: a token is only ever held by an upload under way, which ends by itself, so
    waiting for one cannot deadlock (a thread may hold several writers at once). A writer
    whose library keeps its parts until the whole upload ends (minio) takes what is free
    when it starts (``take_available``), never waits, and gives them back at the end.
    """

    def __init__(self, parts: int):
        self.parts = parts
        self.in_use = 0
        #: the most tokens out at once since the last reset_peak()
        self.peak = 0
        self._cond = threading.Condition()

    def acquire(self) -> None:
        with self._cond:
            while self.in_use >= self.parts:
                self._cond.wait()
            self.in_use += 1
            self.peak = max(self.peak, self.in_use)

    def take_available(self, most: int) -> int:
        """Take up to ``most`` tokens without waiting; returns how many were taken."""
        with self._cond:
            taken = max(0, min(most, self.parts - self.in_use))
            self.in_use += taken
            self.peak = max(self.peak, self.in_use)
            return taken

    def release(self, count: int = 1) -> None:
        if count <= 0:
            return
        with self._cond:
            if count > self.in_use:
                raise RuntimeError("the part budget was given back more tokens than it handed out")
            self.in_use -= count
            self._cond.notify(count)

    def resize(self, parts: int) -> int:
        """Allow ``parts`` from now on (tests, benchmarks); returns the previous size."""
        if parts < 1:
            raise ValueError(f"a part budget of {parts} parts would stop every writer; give 1 or more")
        with self._cond:
            previous, self.parts = self.parts, parts
            self._cond.notify_all()
        return previous

    def reset_peak(self) -> None:
        with self._cond:
            self.peak = self.in_use


#: the process-wide budget every S3 streaming writer draws from
PART_BUDGET = PartBudget(PART_BUDGET_PARTS)


class PartBuffers:
    """Part buffers (anonymous memory maps of ``PART_SIZE``) shared by the streaming writers of
    a process: a part, once uploaded, comes back here and is filled again, so parts are neither
    reallocated nor faulted in afresh. They are memory maps, not heap memory, so the allocator
    plays no part in them: heap-allocated 8 MiB parts, freed and reallocated among other
    allocations, fragmented the one heap of storage/allocator.py (docs/architecture.md,
    "Memory", has the figures). In use are the parts being
    filled (one per open writer) and the parts in flight (PART_BUDGET); of those given back, at
    most ``keep`` are kept for the next parts and the rest unmapped, so a process that streamed
    to S3 keeps up to ``keep`` parts (64 MiB) for the next writer (a thread writing one object
    after another reuses them)."""

    def __init__(self, keep: int):
        self.keep = keep
        #: buffers made since the process started (to tell reuse from allocation)
        self.made = 0
        self._free: list[mmap.mmap] = []
        self._lock = threading.Lock()

    @property
    def free(self) -> int:
        return len(self._free)

    def take(self) -> mmap.mmap:
        with self._lock:
            if self._free:
                return self._free.pop()
            self.made += 1
        return mmap.mmap(-1, PART_SIZE)

    def give(self, buffer: object) -> None:
        """Take back a buffer from ``take`` (anything else, such as a copied tail, is dropped)."""
        if not isinstance(buffer, mmap.mmap) or len(buffer) != PART_SIZE:
            return
        with self._lock:
            if len(self._free) < self.keep:
                self._free.append(buffer)


#: the part buffers of every S3 streaming writer of this process
PART_BUFFERS = PartBuffers(PART_BUDGET_PARTS)


def check_stream_size(key: str, library: str, written: int, adding: int, part_size: int = PART_SIZE) -> None:
    """Refuse the write that would take a streamed object past S3's MAX_PARTS parts of
    ``part_size``, before any of it is sent: the upload would fail at part 10,001 anyway, after
    tens of GiB."""
    most = MAX_PARTS * part_size
    if written + adding > most:
        raise StorageError("write", key, library, (
            f"an object streamed through {library} holds at most {most:,} bytes ({most / (1 << 30):.1f} GiB: "
            f"{MAX_PARTS:,} parts of {part_size // (1 << 20)} MiB); this write would make it {written + adding:,}"))


class PartFiller:
    """The part one streaming writer fills, and the parts it has in flight: the caller's pieces
    are copied into a buffer from PART_BUFFERS, and each full part is handed to ``send``, which
    owns it from then on (``send`` that raises must have given it back). ``tail`` is what is
    left at the end, less than a part; ``close`` gives the buffer back.

    A writer whose library hands a part back on its own (boto3, s3dlio) calls ``hold`` before
    it hands a part over (a token of its own MAX_PARTS_IN_FLIGHT, then of the process's
    PART_BUDGET: backpressure) and ``done(part)`` once the library has let go of it."""

    def __init__(self, send: Callable[[mmap.mmap], None]):
        self.send = send
        self.buffer: mmap.mmap | None = None
        self.fill = 0
        self.slots = threading.BoundedSemaphore(MAX_PARTS_IN_FLIGHT)

    def hold(self) -> None:
        self.slots.acquire()  # this writer's own limit ...
        PART_BUDGET.acquire()  # ... and the process's

    def done(self, part: object) -> None:
        """A part held is uploaded, failed or dropped: its buffer and tokens go back."""
        PART_BUFFERS.give(part)
        PART_BUDGET.release()
        self.slots.release()

    def write(self, view: memoryview) -> None:
        while view.nbytes:
            if self.buffer is None:
                self.buffer, self.fill = PART_BUFFERS.take(), 0
            n = min(PART_SIZE - self.fill, view.nbytes)
            self.buffer[self.fill:self.fill + n] = view[:n]
            self.fill += n
            view = view[n:]
            if self.fill == PART_SIZE:
                part, self.buffer, self.fill = self.buffer, None, 0
                self.send(part)

    def tail(self) -> memoryview:
        """The bytes of the unfinished part, in the buffer: copy them before ``close``."""
        if self.buffer is None:
            return memoryview(b"")
        return memoryview(self.buffer)[:self.fill]

    def close(self) -> None:
        PART_BUFFERS.give(self.buffer)
        self.buffer, self.fill = None, 0


@dataclass(frozen=True)
class S3Endpoint:
    """An S3-compatible endpoint and the credentials to use on it."""

    url: str
    access_key: str
    secret_key: str = field(repr=False)
    region: str = "us-east-1"
    session_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        register_secret(self.secret_key)
        register_secret(self.session_token)
        # the settings refuse user:password in a URL; an endpoint made in code may still carry
        # one, and its URL is in messages
        register_secret(urlsplit(self.url).password)

    @property
    def urls(self) -> list[str]:
        """Every endpoint URL: several gateways of one store are given comma-separated
        (spread.py spreads the requests over them)."""
        return self.url.split(",")

    def each(self) -> list[S3Endpoint]:
        """One S3Endpoint per URL, with the same credentials."""
        return [replace(self, url=url) for url in self.urls]

    @property
    def secure(self) -> bool:
        return self.url.startswith("https://")

    @property
    def netloc(self) -> str:
        """host:port, as the minio SDK wants it."""
        return urlsplit(self.url).netloc

    @property
    def host(self) -> str:
        """The host name or address (an IPv6 address without its brackets)."""
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        """The port, or the scheme's default."""
        return urlsplit(self.url).port or (443 if self.secure else 80)

    def environ(self) -> dict[str, str]:
        """The AWS_* variables that make an SDK (or a child process) use this endpoint."""
        env = {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ENDPOINT_URL_S3": self.url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }
        if self.session_token:
            env["AWS_SESSION_TOKEN"] = self.session_token
        return env


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key prefix on an endpoint: the root of an S3 storage."""

    endpoint: S3Endpoint
    bucket: str
    prefix: str = ""

    def object_name(self, key: str) -> str:
        return join_key(self.prefix, key)

    def key_of(self, object_name: str) -> str:
        """The storage key of an object name listed under this location."""
        if not self.prefix:
            return object_name
        return object_name[len(self.prefix) + 1:]

    def list_prefix(self, prefix: str) -> str:
        """The object-name prefix to list for a storage-key prefix."""
        if not self.prefix:
            return prefix
        return f"{self.prefix}/{prefix}"

    def uri(self, key: str = "") -> str:
        """s3://bucket/prefix/key; for the empty key the root itself, ending in '/'."""
        name = self.object_name(key)
        return f"s3://{self.bucket}/{name}" + ("/" if not key and name else "")


NOT_FOUND_CODES = {"NoSuchKey", "NotFound", "404", "NoSuchBucket", "NoSuchUpload"}
DENIED_CODES = {"AccessDenied", "Forbidden", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                "AllAccessDisabled", "AccountProblem"}


def error_for_code(op: str, key: str, library: str, code: str, detail: str) -> StorageError:
    """The storage exception for an S3 error code (the caller chains the client's error)."""
    if code in NOT_FOUND_CODES:
        return StorageNotFound(op, key, library, detail)
    if code in DENIED_CODES:
        return StoragePermissionDenied(op, key, library, detail)
    return StorageError(op, key, library, detail)


def error_from_text(op: str, key: str, library: str, text: str) -> StorageError:
    """Classify an error known only by its message (s3dlio raises RuntimeError with text)."""
    for code in ("NoSuchKey", "NotFound", "NoSuchBucket", "File not found", "No such file",
                 "not found", "does not exist"):
        if code in text:
            return StorageNotFound(op, key, library, text)
    for code in DENIED_CODES | {"Permission denied", "permission denied"}:
        if code in text:
            return StoragePermissionDenied(op, key, library, text)
    return StorageError(op, key, library, text)


def completed_anyway(size_of: Callable[[], int], expected_size: int, etag_of: Callable[[], str] | None = None,
                     expected_etag: str = "") -> bool:
    """After a complete-multipart-upload failed: is the object there anyway, with the size (and
    the ETag, when the caller knows it) the upload would have given it? A complete whose reply
    was lost is retried by the library and finds the upload gone (NoSuchUpload) although the
    object was made: that is a success, not a reason to fail or abort."""
    try:
        if size_of() != expected_size:
            return False
        return etag_of is None or etag_of().strip('"') == expected_etag.strip('"')
    except Exception:
        return False


def multipart_etag(part_etags: list[str]) -> str:
    """The ETag S3 gives an object completed from parts with these ETags (each the MD5 of its
    part): the MD5 of their digests, a dash and the number of parts."""
    digest = hashlib.md5(b"".join(bytes.fromhex(e.strip('"')) for e in part_etags), usedforsecurity=False)
    return f"{digest.hexdigest()}-{len(part_etags)}"


def is_invalid_range(text: str) -> bool:
    """S3 answers 416 InvalidRange for a range that starts at or past the end."""
    return "InvalidRange" in text or "not satisfiable" in text or "416" in text


#: the S3 libraries that cannot reach an endpoint under a path prefix (AIStore's /s3), and why
_NO_PATH_PREFIX = {
    "minio": "its SDK refuses an endpoint with a path",
    "s3dlio": "it drops the path of its endpoint URL and sends /bucket/key to the host",
}


def endpoint_limit(library: str, endpoint_url: str | None) -> str | None:
    """Why ``library`` cannot reach ``endpoint_url``, or None: only boto3 and s3torchconnector
    keep an endpoint's path prefix in their requests (tests/test_path_prefix.py shows each case), and s3dlio's own
    multi-endpoint store reaches each endpoint as ``s3://host:port/``, over http only."""
    urls = endpoint_url.split(",") if endpoint_url else []
    if library in _NO_PATH_PREFIX and any(urlsplit(u).path.strip("/") for u in urls):
        return (f"{library} cannot reach {endpoint_url} (an S3 API under a path prefix): "
                f"{_NO_PATH_PREFIX[library]}; use boto3 or s3torchconnector for it")
    if library == "s3dlio" and len(urls) > 1 and any(u.startswith("https://") for u in urls):
        return (f"s3dlio cannot spread over several https endpoints ({endpoint_url}): its multi-endpoint "
                "store names each as s3://host:port/ and connects over http; use boto3 or minio")
    return None
