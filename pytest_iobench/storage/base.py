"""The storage interface every client library implements.

A storage is a flat namespace of keys ("train/img_0_of_8.npz") under a root (a directory, or a
bucket and prefix). Keys use "/" as separator, never start with "/" and never contain "." or
".." segments. Every method is safe to call from several threads at once.

Writes are atomic as seen by a reader: ``put`` and ``open_writer`` make the key appear only
once all its bytes are there (temporary name + rename on files, multipart upload completed
on S3); an aborted writer leaves nothing under the key.

Every failure is one of the ``errors`` family: ``StorageNotFound`` (the key, or the bucket,
does not exist), ``StoragePermissionDenied``, or ``StorageError``, naming the operation, the
key and the library, with the client's own exception chained.
"""

from __future__ import annotations

import abc
import builtins
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from . import allocator
from .errors import StorageError, os_error

Buffer = bytes | bytearray | memoryview


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


class StreamWriter(abc.ABC):
    """Writes one object piece by piece, with memory bounded by the library's part size.

    ``write`` may be called with a buffer the caller reuses at once after the call returns:
    an implementation copies or finishes with the bytes before returning. Use as a context
    manager: leaving the block normally commits, leaving it with an exception aborts.
    """

    def __init__(self, storage: Storage, key: str):
        self.storage = storage
        self.key = key
        self.bytes_written = 0
        self._closed = False

    def write(self, data: Buffer) -> None:
        if self._closed:
            raise StorageError("write", self.key, self.storage.library, "writer is already closed")
        view = memoryview(data).cast("B")
        if view.nbytes:
            try:
                self._write(view)
            except OSError as exc:  # file writers: a full disk, a permission, ...
                raise os_error("write", self.key, self.storage.library, exc) from exc
            self.bytes_written += view.nbytes

    def commit(self) -> ObjectInfo:
        """Finish the object; it appears under its key. Returns its info."""
        if self._closed:
            raise StorageError("commit", self.key, self.storage.library, "writer is already closed")
        self._closed = True
        try:
            self._commit()
        except BaseException as exc:
            self._abort_quietly()
            if isinstance(exc, OSError):
                raise os_error("commit", self.key, self.storage.library, exc) from exc
            raise
        return ObjectInfo(self.key, self.bytes_written)

    def abort(self) -> None:
        """Drop everything written; nothing is left under the key (or its temporary name)."""
        if not self._closed:
            self._closed = True
            self._abort()

    def _abort_quietly(self) -> None:
        try:
            self._abort()
        except Exception:  # the original failure is what the caller needs to see
            pass

    def __enter__(self) -> StreamWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.commit()
        elif not self._closed:
            # the exception leaving the block is what the caller needs, not a failed abort's
            self._closed = True
            self._abort_quietly()

    @abc.abstractmethod
    def _write(self, view: memoryview) -> None: ...

    @abc.abstractmethod
    def _commit(self) -> None: ...

    @abc.abstractmethod
    def _abort(self) -> None: ...


class Storage(abc.ABC):
    """One storage location reached through one client library."""

    #: "local", "direct" or "s3": what is under test
    kind: str = ""
    #: the client library: "posix", "s3dlio", "minio", "boto3"
    library: str = ""
    #: how to open this storage again in another process: the registry.StorageSpec that
    #: registry.open_storage opened it from, None otherwise (Any: the registry imports this
    #: module, so this one cannot name the class)
    spec: Any = None
    #: True when the streaming writer (``open_writer``, what the write-measuring suites use)
    #: writes through O_DIRECT, so write figures are the device's, not the page cache's. Only
    #: the direct storage claims it, and only where the library really opens its files so.
    write_is_direct: bool = False
    #: True when the streaming writer makes every file durable (fsync) when it is committed,
    #: whether or not ``fsync`` asks for it, so write figures include an fsync (s3dlio's file://
    #: and direct:// writers; tests/test_checkpoint_io.py checks the claim under strace)
    write_always_syncs: bool = False

    def __init__(self, root: str):
        self.root = root
        allocator.tune()  # the process's malloc policy, before our threads allocate

    @property
    def id(self) -> str:
        """The test-id fragment, e.g. ``s3-minio``."""
        return f"{self.kind}-{self.library}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.uri('')}>"

    @property
    def write_caveat(self) -> str | None:
        """What a write figure of this storage does not mean, for the results' warnings; None
        when it means what its label says."""
        if self.kind == "direct" and not self.write_is_direct:
            return (f"{self.id}: the {self.library} library writes the direct storage's streams through "
                    "the page cache (it has no O_DIRECT streaming writer); write figures are "
                    "buffered writes, reads are O_DIRECT")
        return None

    def write_notes(self, fsync: bool, setting: str = "fsync") -> list[str]:
        """What write figures of this storage do not mean when written with ``fsync`` (asked for
        by ``setting``, named in the note): an fsync the writer makes anyway, and ``write_caveat``."""
        notes = []
        if not fsync and self.write_always_syncs:
            notes.append(f"{setting}: False does not take effect on {self.id}: its file writer fsyncs every "
                         "file when it commits it, so its write figures include an fsync")
        if self.write_caveat:
            notes.append(self.write_caveat)
        return notes

    # -- what every library implements ---------------------------------------------------
    @abc.abstractmethod
    def uri(self, key: str) -> str:
        """Where ``key`` lives, for messages and reports (never with credentials)."""

    @abc.abstractmethod
    def put(self, key: str, data: Buffer) -> None:
        """Store ``data`` under ``key`` (replacing what was there), atomically."""

    @abc.abstractmethod
    def open_writer(self, key: str, *, fsync: bool = False) -> StreamWriter:
        """A streaming writer for a large object; the key appears on ``commit`` and not before.
        ``fsync`` makes commit durable on files. On S3 the parts in flight of all the writers
        of a process share one budget (``s3common.PART_BUDGET``): memory grows with the
        number of writers only by the part each one fills (and the minio SDK's copies of it)."""

    @abc.abstractmethod
    def get(self, key: str) -> Buffer:
        """The whole object; ``StorageNotFound`` when there is none."""

    @abc.abstractmethod
    def get_range(self, key: str, offset: int, length: int) -> Buffer:
        """Up to ``length`` bytes from ``offset``; shorter at the end, empty past the end;
        ``StorageNotFound`` for a missing key, whatever the range."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Every key that starts with ``prefix`` (a plain string prefix, as on S3), sorted.
        Objects still being written are never listed; a prefix with nothing under it is [],
        a missing bucket is ``StorageNotFound``."""

    @abc.abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """The key and its size; ``StorageNotFound`` when there is no such object (a directory
        is not one)."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; removing a key that does not exist is not an error (as on S3)."""

    # -- shared behaviour, overridden where a library does better --------------------------
    def put_if_absent(self, key: str, data: Buffer) -> bool:
        """Store a small ``data`` under ``key`` only if nothing is there, atomically (the
        lease's create); False when something was. NotImplementedError where the library
        cannot make it atomic (the lease then writes and reads back)."""
        raise NotImplementedError

    def get_many(self, keys: Sequence[str], max_in_flight: int = 16) -> builtins.list[Buffer]:
        """The objects for ``keys``, in the same order, fetched concurrently."""
        if not keys:
            return []
        with ThreadPoolExecutor(max_workers=max(1, min(max_in_flight, len(keys)))) as pool:
            return list(pool.map(self.get, keys))

    def delete_prefix(self, prefix: str) -> int:
        """Remove every key under ``prefix``; returns how many were removed."""
        keys = self.list(prefix)
        for key in keys:
            self.delete(key)
        return len(keys)

    def make_folder(self, prefix: str) -> None:  # noqa: B027 - a default, not abstract: no folders
        """Make an empty folder ``prefix`` exist where the storage has folders (a directory on
        files), because other tools list it (DLIO lists ``<data_folder>/valid`` on every run and
        stops when a directory is missing). Object stores have no folders: a prefix with nothing
        under it lists as [], which is all DLIO's S3 readers need, so nothing is written."""

    def evict_cache(self, keys: Iterable[str]) -> bool:
        """Ask that later reads of ``keys`` come from the device, not a client cache.

        Returns True when that is assured (files dropped from the page cache; object stores,
        where the client keeps no cache); False when it could not be done.
        """
        return True

    def close(self) -> None:  # noqa: B027 - a default, not abstract: nothing to release
        """Release connections and pools."""


def check_key(key: str, library: str, op: str) -> str:
    """Reject keys that would escape the root or mean different things on different stores."""
    bad = (
        not isinstance(key, str)
        or key == ""
        or key.startswith("/")
        or key.endswith("/")
        or "\x00" in key
        or any(part in ("", ".", "..") for part in key.split("/"))
    )
    if bad:
        raise StorageError(
            op, str(key), library,
            "a key is a non-empty '/'-separated path with no leading or trailing '/', "
            "no empty, '.' or '..' segments",
        )
    return key


def join_key(*parts: str) -> str:
    """Join key fragments with '/', ignoring empty ones."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))
