"""The ``s3torchconnector`` library on S3: AWS's S3 connector for PyTorch, whose client is
Mountpoint's Rust client on the AWS Common Runtime (CRT).

Every operation goes through its ``S3Client``: ``get`` reads a sequential ``S3Reader`` to the
end (one GET), ``get_range`` a range-based reader (a HEAD for the size, then one ranged GET),
``put`` and streams go through ``S3Writer`` (the CRT's multipart upload, its own 8 MiB parts),
``stat`` is ``head_object``, ``list`` pages ``list_objects``, ``delete`` is ``delete_object``.
The client is made with the endpoint URL as given (the CRT keeps a path prefix such as
AIStore's ``/s3``), path-style addressing and the endpoint's region.

Three things follow from the library, not from us:

- Credentials: the CRT client takes none as arguments; it reads the process environment
  (``AWS_ACCESS_KEY_ID``, ...) when it is built. ``_use_credentials`` puts the endpoint's there,
  and refuses a second, different set in the same process (one process, one identity), as
  s3dlio's process-wide client does with its endpoint.
- Aborting a stream: ``S3Writer`` has no abort, and it is an ``io.BufferedIOBase``, whose
  finalizer *closes* it, which completes the upload: a writer dropped after a failure would
  publish a partial object. ``_Writer._abort`` therefore marks the ``S3Writer`` closed and
  drops the CRT stream underneath without closing it, which cancels the upload (CRT aborts the
  multipart upload; tests/test_s3torch.py checks that nothing is left, object or upload).
- Memory: ``S3Writer.write`` copies each piece into ``bytes`` before handing it to the CRT,
  which holds its parts in flight itself; the process-wide part budget of s3common does not
  apply to it (the figures in docs/s3.md say what it costs).

Retries are the CRT's (``max_attempts`` from --iobench-retries); the deadline of every
operation is DeadlineStorage's, as for the other libraries. A call past its deadline is
abandoned on its worker thread, but the CRT keeps it going; if the interpreter shut down under
it, the CRT's thread would call into a finalized Python and abort the process (pyo3's panic,
exit status 134, seen after the resilience suite's blackout cases). ``_calls`` counts the calls
in progress and an exit hook waits for them, at most ``EXIT_WAIT`` seconds.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from s3torchconnector import S3ClientConfig, S3ReaderConstructor, S3Writer
from s3torchconnector._s3client import S3Client

from .base import Buffer, ObjectInfo, Storage, StreamWriter, check_key
from .deadline import Timeouts
from .errors import StorageError, StorageNotFound
from .s3common import S3Endpoint, S3Location, error_from_text

LIBRARY = "s3torchconnector"

_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
_credentials_lock = threading.Lock()
_credentials_set: list[tuple[str, str, str]] = []

#: the longest the interpreter's exit waits for calls still in the CRT (abandoned ones)
EXIT_WAIT = 60.0
_calls_lock = threading.Condition()
_calls = [0]


@contextlib.contextmanager
def _in_crt() -> Iterator[None]:
    """Counts a call into the CRT while it runs (module docstring: why the exit waits)."""
    with _calls_lock:
        _calls[0] += 1
    try:
        yield
    finally:
        with _calls_lock:
            _calls[0] -= 1
            _calls_lock.notify_all()


@atexit.register
def _wait_for_calls() -> None:
    end = time.monotonic() + EXIT_WAIT
    with _calls_lock:
        while _calls[0] and (left := end - time.monotonic()) > 0:
            _calls_lock.wait(left)


def _use_credentials(endpoint: S3Endpoint) -> None:
    """Put the endpoint's credentials where the CRT reads them: this process's environment."""
    wanted = (endpoint.access_key, endpoint.secret_key, endpoint.session_token or "")
    with _credentials_lock:
        if _credentials_set and _credentials_set[0] != wanted:
            raise StorageError("open", "", LIBRARY, (
                "s3torchconnector reads its credentials from the process environment, and another "
                "storage of this process set different ones; use one set of credentials per process"))
        if not _credentials_set:
            _credentials_set.append(wanted)
        for name, value in zip(_CREDENTIALS, wanted):
            if value:
                os.environ[name] = value
            else:
                os.environ.pop(name, None)


def translate(op: str, key: str, exc: Exception) -> StorageError:
    if isinstance(exc, StorageError):
        return exc
    return error_from_text(op, key, LIBRARY, f"{type(exc).__name__}: {exc}")


class _Writer(StreamWriter):
    """A stream through ``S3Writer``: written as it comes, completed on commit, cancelled on
    abort (module docstring)."""

    def __init__(self, storage: S3TorchStorage, key: str):
        super().__init__(storage, key)
        with _in_crt():
            self.writer: S3Writer | None = storage.client.put_object(storage.location.bucket, storage.name(key))

    def _write(self, view: memoryview) -> None:
        assert self.writer is not None
        try:
            with _in_crt():
                self.writer.write(view)  # copies the piece (bytes) before it returns
        except Exception as exc:
            raise translate("write", self.key, exc) from exc

    def _commit(self) -> None:
        assert self.writer is not None
        writer: Any = self.writer  # typed by s3torchconnector only when installed (an optional extra)
        self.writer = None
        try:
            with _in_crt():
                writer.close()
        except Exception as exc:
            raise translate("commit", self.key, exc) from exc

    def _abort(self) -> None:
        writer: Any = self.writer
        self.writer = None
        if writer is not None:
            # no close (it would complete the upload): the CRT stream, dropped, cancels it
            writer._closed = True
            writer.stream = None


class S3TorchStorage(Storage):
    kind = "s3"
    library = LIBRARY

    def __init__(self, location: S3Location, timeouts: Timeouts | None = None):
        super().__init__(location.uri())
        timeouts = timeouts or Timeouts()
        self.location = location
        _use_credentials(location.endpoint)
        self.client = S3Client(
            location.endpoint.region, endpoint=location.endpoint.url,
            s3client_config=S3ClientConfig(force_path_style=True, max_attempts=timeouts.retry.attempts))
        self._ranged = S3ReaderConstructor.range_based()

    def name(self, key: str) -> str:
        return self.location.object_name(key)

    def uri(self, key: str) -> str:
        return self.location.uri(key)

    def put(self, key: str, data: Buffer) -> None:
        check_key(key, LIBRARY, "put")
        with self.open_writer(key) as writer:
            writer.write(data)

    def open_writer(self, key: str, *, fsync: bool = False) -> StreamWriter:
        check_key(key, LIBRARY, "open_writer")
        try:
            return _Writer(self, key)
        except Exception as exc:
            raise translate("open_writer", key, exc) from exc

    def get(self, key: str) -> Buffer:
        check_key(key, LIBRARY, "get")
        try:
            with _in_crt():
                data: bytes = self.client.get_object(self.location.bucket, self.name(key)).read()
        except Exception as exc:
            raise translate("get", key, exc) from exc
        return data

    def get_range(self, key: str, offset: int, length: int) -> Buffer:
        check_key(key, LIBRARY, "get_range")
        if offset < 0 or length < 0:
            raise StorageError("get_range", key, LIBRARY, f"offset {offset} and length {length} must be >= 0")
        try:
            with _in_crt():
                reader = self.client.get_object(self.location.bucket, self.name(key), reader_constructor=self._ranged)
                if length == 0:
                    reader.seek(0, os.SEEK_END)  # still report a missing key (its HEAD)
                    return b""
                reader.seek(offset)
                data: bytes = reader.read(length)
        except Exception as exc:
            raise translate("get_range", key, exc) from exc
        return data

    def list(self, prefix: str = "") -> list[str]:
        keys: list[str] = []
        try:
            with _in_crt():
                for page in self.client.list_objects(self.location.bucket, self.location.list_prefix(prefix)):
                    keys.extend(self.location.key_of(info.key) for info in page.object_info)
        except Exception as exc:
            raise translate("list", prefix, exc) from exc
        return sorted(keys)

    def stat(self, key: str) -> ObjectInfo:
        check_key(key, LIBRARY, "stat")
        try:
            with _in_crt():
                head: Any = self.client.head_object(self.location.bucket, self.name(key))
        except Exception as exc:
            raise translate("stat", key, exc) from exc
        return ObjectInfo(key, int(head.size))

    def delete(self, key: str) -> None:
        check_key(key, LIBRARY, "delete")
        try:
            with _in_crt():
                self.client.delete_object(self.location.bucket, self.name(key))
        except Exception as exc:
            err = translate("delete", key, exc)
            if not isinstance(err, StorageNotFound):
                raise err from exc

    def evict_cache(self, keys: Iterable[str]) -> bool:
        return True  # no client-side cache
