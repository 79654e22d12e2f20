"""The ``s3dlio`` library: S3 (s3://), plain files (file://) and O_DIRECT files (direct://).

s3dlio's S3 client is configured once per process from the AWS_* environment (its SDK
client is a process-wide singleton), so every s3dlio storage in a process must use the same
endpoint; ``configure`` enforces that with a clear error instead of silently talking to the
first endpoint.

``configure`` also turns off s3dlio's "range optimization" (S3DLIO_ENABLE_RANGE_OPTIMIZATION=0,
unless the environment already sets it), so that a get is one GET request, as with minio and
boto3. With it on (s3dlio's default), every ``get`` first sends a HEAD for the object's size,
splits objects of 32 MiB and more into concurrent 4 MiB range GETs, and keeps each object's
size in a process-wide cache for an hour: a get of an object overwritten with another size
within that hour returns the old size's bytes (cut short, or an InvalidRange error), and a
server that reads a whole object to serve a range (moto) works once per range.
docs/s3.md has the figures.

Streaming to S3 goes through ``MultipartUploadWriter`` (bounded parts in flight, with
``abort``), not ``create_s3_writer``, which buffers the whole object in memory. s3dlio's
file writers write under the final name, so on files we write a temporary name and rename.

On direct://, s3dlio 0.10 opens the file of ``put_bytes`` with O_DIRECT (objects of at least
one 4 KiB block) but its streaming writer (``create_direct_filesystem_writer``) without it:
``put`` goes through ``put_bytes``; streams are buffered writes, and the storage says so
(``write_is_direct`` is False, ``write_caveat`` explains it for the results). Its file writers
fsync every file when finalized, whatever ``fsync`` says: ``write_always_syncs``.

Counting (retry.COUNTS, the test's storage_ops): s3dlio 0.10 reports nothing of its attempts
(its retries happen inside the AWS SDK; its op log, one per process, records an operation, not
its attempts), so on s3:// each S3 operation asked of it counts as a request (a get_many one per
key, a multipart upload its create, each part and its complete), and each one that raised (but for
"not found") as a failure; attempts, retries, throttles, resets, timeouts and backoff are unknown
(retry.UNCOUNTED).

Several endpoints of one store (``S3dlioSpreadStorage``) go through s3dlio's own
``MultiEndpointStore``: one client per endpoint (``s3://host:port/bucket/``, which s3dlio
reaches over plain http), each request sent to the next endpoint in turn (its ``round_robin``
strategy: by request, not by object name as spread.py does for the other libraries; a store
with one namespace behind every gateway, which is what several endpoints of one store means
here, serves a read wherever its write went). Its per-endpoint counters (requests, bytes read
and written) are read into tally.TALLY after every operation. What the store does not offer
(stat, streamed multipart uploads, which s3dlio's process-wide client makes) goes to the first
endpoint and is tallied there by us.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import mmap
import os
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import urlsplit

import numpy as np
import s3dlio

from .base import Buffer, ObjectInfo, Storage, StreamWriter, check_key
from .deadline import Timeouts
from .direct import probe_odirect
from .errors import StorageError, StorageNotFound, os_error
from .posix import drop_page_cache, fsync_dir, link_if_absent, temp_path
from .retry import COUNTS
from .s3common import (
    MAX_PARTS_IN_FLIGHT,
    PART_BUFFERS,
    PART_SIZE,
    PartFiller,
    S3Endpoint,
    S3Location,
    check_stream_size,
    completed_anyway,
    endpoint_limit,
    error_from_text,
    is_invalid_range,
)
from .spread import TalliedWriter
from .stale import TEMP_MARKER
from .tally import TALLY

LIBRARY = "s3dlio"
#: s3dlio's switch for its HEAD-then-range-split gets (on unless set to 0)
RANGE_OPTIMIZATION = "S3DLIO_ENABLE_RANGE_OPTIMIZATION"

_configured: list[str] = []
_configure_lock = threading.Lock()


def configure(endpoint: S3Endpoint, timeouts: Timeouts | None = None) -> None:
    """Point s3dlio at ``endpoint``: once per process, before its first S3 call. Its timeouts
    and retries come from its environment, read when its client is built (the first call)."""
    timeouts = timeouts or Timeouts()
    with _configure_lock:
        if _configured:
            if _configured[0] != endpoint.url:
                raise StorageError(
                    "configure", endpoint.url, LIBRARY,
                    f"s3dlio is already bound to {_configured[0]} in this process; its S3 client "
                    "cannot change endpoint (run one endpoint per process)",
                )
            return
        os.environ.update(endpoint.environ())
        # read by s3dlio at its first get: one GET per get, no cached sizes (module docstring)
        os.environ.setdefault(RANGE_OPTIMIZATION, "0")
        os.environ.update({
            "S3DLIO_CONNECT_TIMEOUT_SECS": f"{max(1, round(timeouts.connect))}",
            "S3DLIO_OPERATION_TIMEOUT_SECS": f"{max(1, round(timeouts.total))}",
            # s3dlio retries with the AWS SDK's standard policy; only the attempts are settable
            "S3DLIO_MAX_RETRY_ATTEMPTS": str(timeouts.retry.attempts),
        })
        s3dlio.configure_s3(endpoint_url=endpoint.url, region=endpoint.region)
        _configured.append(endpoint.url)


@contextlib.contextmanager
def counted(on_s3: bool, requests: int = 1) -> Iterator[None]:
    """Count ``requests`` S3 operations asked of s3dlio, and a failure if the call raises
    anything but "not found" or "invalid range" (answers: existence checks and reads past an
    object's end meet them in every clean run). Files are not counted: no S3 request."""
    if not on_s3:
        yield
        return
    COUNTS.add(LIBRARY, requests=requests)
    try:
        yield
    except Exception as exc:
        if not (isinstance(translate("", "", exc), StorageNotFound) or is_invalid_range(str(exc))):
            COUNTS.add(LIBRARY, failures=1)
        raise
    except BaseException:
        COUNTS.add(LIBRARY, failures=1)
        raise


def translate(op: str, key: str, exc: Exception) -> StorageError:
    if isinstance(exc, StorageError):
        return exc
    return error_from_text(op, key, LIBRARY, str(exc))


class _MultipartWriter(StreamWriter):
    """s3:// streaming writer: multipart upload, parts uploaded concurrently.

    s3dlio's ``write`` returns before the upload and does not itself bound how many parts
    wait for one, so the writer fills a buffer of PART_BUFFERS, takes a token of this writer's
    MAX_PARTS_IN_FLIGHT and of the process's PART_BUDGET, and hands the part over whole
    (borrowed, not copied). It goes as a numpy view of the buffer: the view is what s3dlio holds,
    and a finalizer on it, run when s3dlio lets go (uploaded, failed, aborted), gives the token
    and the buffer back. (A memory map takes no weak reference.)
    """

    def __init__(self, storage: S3dlioStorage, key: str):
        super().__init__(storage, key)
        self.uri = storage.uri(key)
        #: created with the first full part: an object smaller than a part is one PUT, and
        #: leaves no upload to abort when that fails
        self.mpu: Any = None  # s3dlio.MultipartUploadWriter (s3dlio ships no types)
        self.filler = PartFiller(self._send_part)  # the part being filled: this writer's own, not budgeted

    def _write(self, view: memoryview) -> None:
        check_stream_size(self.key, LIBRARY, self.bytes_written, view.nbytes)
        self.filler.write(view)

    def _send_part(self, part: mmap.mmap) -> None:
        if self.mpu is None:
            try:
                with counted(True):  # the upload's create
                    self.mpu = s3dlio.MultipartUploadWriter.from_uri(
                        self.uri, part_size=PART_SIZE, max_in_flight=MAX_PARTS_IN_FLIGHT, abort_on_drop=True)
            except Exception as exc:
                PART_BUFFERS.give(part)
                raise translate("write", self.key, exc) from exc
        self.filler.hold()
        view = np.frombuffer(part, dtype=np.uint8)
        # Runs when s3dlio drops the view and we hold no reference to it; holds ``part``.
        weakref.finalize(view, self.filler.done, part)
        try:
            # a whole part: borrowed, not copied; nobody writes to it until it comes back
            with counted(True):
                self.mpu.write(view)
        except Exception as exc:
            raise translate("write", self.key, exc) from exc
        finally:
            del view

    def _commit(self) -> None:
        try:
            if self.mpu is None:  # less than a part: one PUT (S3 refuses an upload of no parts)
                with counted(True):
                    s3dlio.put_bytes(self.uri, bytes(self.filler.tail()))
            else:
                tail = self.filler.tail()
                if tail.nbytes:  # smaller than a part: s3dlio copies it at once
                    with counted(True):
                        self.mpu.write(tail, copy=True)
                tail.release()
                try:
                    with counted(True):  # the complete
                        self.mpu.close()  # waits for every part: their tokens and buffers are back when it returns
                except Exception:
                    # a complete retried after its reply was lost finds the upload gone
                    if not completed_anyway(lambda: self.storage.stat(self.key).size, self.bytes_written):
                        raise
        except Exception as exc:
            raise translate("commit", self.key, exc) from exc
        finally:
            self.filler.close()

    def _abort(self) -> None:
        self.filler.close()
        if self.mpu is not None:
            with counted(True):
                self.mpu.abort()  # releases every part it holds


class _FileWriter(StreamWriter):
    """file:// and direct:// streaming writer: a temporary name, renamed on commit."""

    def __init__(self, storage: S3dlioStorage, key: str, fsync: bool):
        super().__init__(storage, key)
        self.path = storage.path(key)
        self.tmp = temp_path(self.path)
        self.fsync = fsync
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        create = (s3dlio.create_direct_filesystem_writer if storage.scheme == "direct"
                  else s3dlio.create_filesystem_writer)
        self.writer = create(f"{storage.scheme}://{self.tmp}")

    def _write(self, view: memoryview) -> None:
        try:
            self.writer.write_chunk(view)  # file writers write from our buffer before returning
        except Exception as exc:
            raise translate("write", self.key, exc) from exc

    def _commit(self) -> None:
        try:
            self.writer.finalize()
        except Exception as exc:
            raise translate("commit", self.key, exc) from exc
        if self.fsync:
            # s3dlio has no fsync option; make the file and its rename durable ourselves
            fd = os.open(self.tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(self.tmp, self.path)
        if self.fsync:
            fsync_dir(os.path.dirname(self.path))

    def _abort(self) -> None:
        self.writer = None
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass


class S3dlioStorage(Storage):
    library = LIBRARY
    #: s3dlio's direct:// streaming writer does not open its file with O_DIRECT (0.10)
    write_is_direct = False

    def __init__(self, kind: str, *, location: S3Location | None = None, root: str | None = None,
                 timeouts: Timeouts | None = None):
        self.kind = kind
        self.scheme = {"s3": "s3", "local": "file", "direct": "direct"}[kind]
        if self.scheme == "s3":
            assert location is not None
            cannot = endpoint_limit(LIBRARY, location.endpoint.url)
            if cannot:  # it would send the requests past the prefix, to the wrong place
                raise StorageError("open", "", LIBRARY, cannot)
            configure(location.endpoint, timeouts)
            self.location = location
            super().__init__(location.uri())
            self.base = location.uri().rstrip("/") + "/"
        else:
            assert root is not None
            root = os.path.abspath(root)
            os.makedirs(root, exist_ok=True)
            if self.scheme == "direct":
                probe_odirect(root)
            super().__init__(root)
            # its file writers fsync every file on finalize, asked or not (strace)
            self.write_always_syncs = True
            self.base = f"{self.scheme}://{root}/"

    @property
    def on_files(self) -> bool:
        return self.scheme != "s3"

    def path(self, key: str) -> str:
        return os.path.join(self.root, *key.split("/"))

    def uri(self, key: str) -> str:
        return self.base + key

    def put(self, key: str, data: Buffer) -> None:
        check_key(key, LIBRARY, "put")
        if self.scheme == "file":
            with self.open_writer(key) as writer:
                writer.write(data)
            return
        if self.scheme == "direct":
            self._put_direct(key, data)
            return
        try:
            with counted(True):
                s3dlio.put_bytes(self.uri(key), data)
        except Exception as exc:
            raise translate("put", key, exc) from exc

    def put_if_absent(self, key: str, data: Buffer) -> bool:
        """Files: a hard link, as posix does; s3dlio's S3 client has no conditional put."""
        check_key(key, LIBRARY, "put_if_absent")
        if not self.on_files:
            raise NotImplementedError
        try:
            return link_if_absent(self.path(key), data)
        except OSError as exc:
            raise os_error("put_if_absent", key, LIBRARY, exc) from exc

    def _put_direct(self, key: str, data: Buffer) -> None:
        """put_bytes, s3dlio's O_DIRECT write, to a temporary name renamed into place."""
        path = self.path(key)
        tmp = temp_path(path)
        try:
            s3dlio.put_bytes(f"direct://{tmp}", data)
            os.replace(tmp, path)
        except Exception as exc:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            err = os_error("put", key, LIBRARY, exc) if isinstance(exc, OSError) else translate("put", key, exc)
            raise err from exc

    def open_writer(self, key: str, *, fsync: bool = False) -> StreamWriter:
        check_key(key, LIBRARY, "open_writer")
        try:
            return _FileWriter(self, key, fsync) if self.on_files else _MultipartWriter(self, key)
        except Exception as exc:
            raise translate("open_writer", key, exc) from exc

    def get(self, key: str) -> Buffer:
        check_key(key, LIBRARY, "get")
        try:
            with counted(not self.on_files):
                return memoryview(s3dlio.get(self.uri(key)))
        except Exception as exc:
            raise translate("get", key, exc) from exc

    def get_range(self, key: str, offset: int, length: int) -> Buffer:
        check_key(key, LIBRARY, "get_range")
        if offset < 0 or length < 0:
            raise StorageError("get_range", key, LIBRARY, f"offset {offset} and length {length} must be >= 0")
        if length == 0:
            self.stat(key)  # still report a missing key
            return b""
        try:
            with counted(not self.on_files):
                return memoryview(s3dlio.get_range(self.uri(key), offset, length))
        except Exception as exc:
            if is_invalid_range(str(exc)):
                self.stat(key)
                return b""
            raise translate("get_range", key, exc) from exc

    def get_many(self, keys: Sequence[str], max_in_flight: int = 16) -> list[Buffer]:
        if not keys:
            return []
        for key in keys:
            check_key(key, LIBRARY, "get_many")
        try:
            with counted(not self.on_files, len(keys)):
                pairs = s3dlio.get_many([self.uri(k) for k in keys], max_in_flight)
        except Exception as exc:
            raise translate("get_many", f"{keys[0]} (+{len(keys) - 1} more)", exc) from exc
        by_uri = {uri: memoryview(data) for uri, data in pairs}
        return [by_uri[self.uri(k)] for k in keys]

    def list(self, prefix: str = "") -> list[str]:
        directory = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
        try:
            uris = self._list_uris(self.base + directory)
        except Exception as exc:
            err = translate("list", prefix, exc)
            if isinstance(err, StorageNotFound) and self.on_files:
                return []  # a directory not made yet holds no keys; a missing bucket is an error
            raise err from exc
        keys = []
        for uri in uris:
            if not uri.startswith(self.base):
                continue
            key = uri[len(self.base):]
            if key.startswith(prefix) and TEMP_MARKER not in key.rsplit("/", 1)[-1]:
                keys.append(key)
        keys.sort()
        return keys

    def _list_uris(self, uri: str) -> builtins.list[str]:
        with counted(not self.on_files):
            return list(s3dlio.list(uri, recursive=True))

    def stat(self, key: str) -> ObjectInfo:
        check_key(key, LIBRARY, "stat")
        try:
            with counted(not self.on_files):
                meta = s3dlio.stat(self.uri(key))
        except Exception as exc:
            raise translate("stat", key, exc) from exc
        return ObjectInfo(key, int(meta["size"]))

    def delete(self, key: str) -> None:
        check_key(key, LIBRARY, "delete")
        try:
            with counted(not self.on_files):
                s3dlio.delete(self.uri(key))
        except Exception as exc:
            err = translate("delete", key, exc)
            if not isinstance(err, StorageNotFound):
                raise err from exc

    def make_folder(self, prefix: str) -> None:
        if self.on_files:
            try:
                os.makedirs(self.path(prefix.strip("/")), exist_ok=True)
            except OSError as exc:
                raise os_error("make_folder", prefix, LIBRARY, exc) from exc

    def evict_cache(self, keys: Iterable[str]) -> bool:
        if self.scheme == "file":
            return all([drop_page_cache(self.path(k)) for k in keys])
        return True  # direct:// bypasses the page cache; s3:// keeps no client cache


_T = TypeVar("_T")


class _Loop:
    """One event loop on a daemon thread for every multi-endpoint store of this process: the
    store's methods return awaitables that must be created on a running loop, and any thread
    (loader, writer pool, deadline worker) may call them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def run(self, make: Callable[[], Awaitable[_T]]) -> _T:
        """Call ``make`` on the loop's thread and wait for what it returns."""
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="iobench-s3dlio-loop", daemon=True).start()
                self._loop = loop
            loop = self._loop

        async def call() -> _T:
            return await make()

        return asyncio.run_coroutine_threadsafe(call(), loop).result()


_LOOP = _Loop()


def store_uri(url: str, bucket: str) -> str:
    """s3dlio's name for an endpoint's bucket: ``s3://host:port/bucket/`` (it connects over http)."""
    return f"s3://{urlsplit(url).netloc}/{bucket}/"


class S3dlioSpreadStorage(S3dlioStorage):
    """s3:// over several endpoints of one store through s3dlio's MultiEndpointStore (module
    docstring): put, get, get_range, get_many, list and delete are spread by s3dlio; stat and
    streamed writes go through its process-wide client, bound to the first endpoint."""

    def __init__(self, location: S3Location, timeouts: Timeouts | None = None):
        self.urls: Sequence[str] = location.endpoint.urls
        first = replace(location, endpoint=replace(location.endpoint, url=self.urls[0]))
        super().__init__("s3", location=first, timeouts=timeouts)
        self.location = location
        try:
            self.store = s3dlio.create_multi_endpoint_store(
                [store_uri(url, location.bucket) for url in self.urls], strategy="round_robin")
        except Exception as exc:
            raise translate("open", "", exc) from exc
        self._stats_lock = threading.Lock()
        self._seen = [(0, 0, 0)] * len(self.urls)

    def _tally(self) -> None:
        """Add what each endpoint served since the last call to tally.TALLY (s3dlio's counters
        are per store and cumulative; errors count as requests)."""
        with self._stats_lock:
            stats = self.store.get_endpoint_stats()
            now = [(int(e["total_requests"]), int(e["bytes_read"]), int(e["bytes_written"])) for e in stats]
            for url, (ops, read, written), (ops0, read0, written0) in zip(self.urls, now, self._seen):
                if ops != ops0 or read != read0 or written != written0:
                    TALLY.add(url, ops=ops - ops0, read=read - read0, written=written - written0)
            self._seen = now

    def _spread(self, op: str, key: str, make: Callable[[], Awaitable[_T]], requests: int = 1) -> _T:
        try:
            with counted(True, requests):
                return _LOOP.run(make)
        except Exception as exc:
            raise translate(op, key, exc) from exc
        finally:
            self._tally()

    def put(self, key: str, data: Buffer) -> None:
        check_key(key, LIBRARY, "put")
        self._spread("put", key, lambda: self.store.put(self.uri(key), data))

    def open_writer(self, key: str, *, fsync: bool = False) -> StreamWriter:
        TALLY.add(self.urls[0])
        return TalliedWriter(self, super().open_writer(key, fsync=fsync), self.urls[0])

    def get(self, key: str) -> Buffer:
        check_key(key, LIBRARY, "get")
        return memoryview(self._spread("get", key, lambda: self.store.get(self.uri(key))))

    def get_range(self, key: str, offset: int, length: int) -> Buffer:
        check_key(key, LIBRARY, "get_range")
        if offset < 0 or length < 0:
            raise StorageError("get_range", key, LIBRARY, f"offset {offset} and length {length} must be >= 0")
        if length == 0:
            self.stat(key)  # still report a missing key
            return b""
        try:
            blob = self._spread("get_range", key, lambda: self.store.get_range(self.uri(key), offset, length))
            return memoryview(blob)
        except StorageError as exc:
            if is_invalid_range(str(exc)):
                self.stat(key)
                return b""
            raise

    def get_many(self, keys: Sequence[str], max_in_flight: int = 16) -> builtins.list[Buffer]:
        if not keys:
            return []
        for key in keys:
            check_key(key, LIBRARY, "get_many")

        async def fetch_all() -> list[Any]:
            limit = asyncio.Semaphore(max(1, max_in_flight))

            async def one(key: str) -> Any:
                async with limit:
                    return await self.store.get(self.uri(key))

            return await asyncio.gather(*(one(k) for k in keys))

        blobs = self._spread("get_many", f"{keys[0]} (+{len(keys) - 1} more)", fetch_all, len(keys))
        return [memoryview(blob) for blob in blobs]

    def _list_uris(self, uri: str) -> builtins.list[str]:
        return list(self._spread("list", uri, lambda: self.store.list(uri, True)))

    def stat(self, key: str) -> ObjectInfo:
        try:
            return super().stat(key)
        finally:
            TALLY.add(self.urls[0])

    def delete(self, key: str) -> None:
        check_key(key, LIBRARY, "delete")
        try:
            self._spread("delete", key, lambda: self.store.delete(self.uri(key)))
        except StorageNotFound:
            pass
