"""The ``aistore`` library on AIStore's native API (``--iobench-storage=ais``): NVIDIA's Python
SDK for its AI object store, which the MLCommons fork drives natively.

Every operation goes through the SDK's ``Client`` on the endpoint ``--iobench-ais-endpoint``
names (a gateway, ``http://host:8080``; the SDK's own ``AIS_ENDPOINT`` is the environment twin),
in an ``ais://`` bucket (``--iobench-bucket``): ``put`` is one PUT (``put_content``), a stream
is one PUT when it stays under a part and a native multipart upload (``multipart_upload``:
create, one PUT per 8 MiB part, complete; abort on failure) otherwise; ``get`` reads the object
whole, ``get_range`` with a ``Range`` header, ``stat`` is a HEAD, ``list`` pages the bucket,
``delete`` deletes. ``get_many`` is AIStore's GetBatch (``client.batch``): one request for the
whole list, answered as one ordered TAR stream, which is what the fork's reader uses.

The SDK retries by itself (its ``RetryConfig`` defaults); the deadline of every operation is
DeadlineStorage's, as for the S3 libraries. Authentication is the SDK's (``AIS_AUTHN_TOKEN``
in the environment, read by the SDK); nothing secret passes through the settings.

No AIStore server runs on the machines this project is built on, and none is faked: the
backend is checked by the conformance suite against a real endpoint only when one is given
(docs/s3.md says what was and was not tested).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from typing import Any

from aistore.sdk import Client
from aistore.sdk.errors import ErrBckNotFound, ErrObjNotFound

from .base import Buffer, ObjectInfo, Storage, StreamWriter, check_key, join_key
from .deadline import Timeouts
from .errors import StorageError, StorageNotFound

LIBRARY = "aistore"
#: a stream's part: what a writer holds before it sends it (AIStore takes parts of any size)
PART_SIZE = 8 << 20


def translate(op: str, key: str, exc: Exception) -> StorageError:
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, (ErrObjNotFound, ErrBckNotFound)):
        return StorageNotFound(op, key, LIBRARY, f"{type(exc).__name__}: {exc}")
    return StorageError(op, key, LIBRARY, f"{type(exc).__name__}: {exc}")


class _Writer(StreamWriter):
    """A stream: one PUT if it ends within a part, else a native multipart upload whose parts
    go out as they fill (memory: one part)."""

    def __init__(self, storage: AisStorage, key: str):
        super().__init__(storage, key)
        self.obj = storage.object(key)
        self.pending = bytearray()
        self.upload: Any = None
        self.parts = 0

    def _send_part(self) -> None:
        if self.upload is None:
            self.upload = self.obj.multipart_upload().create()
        self.parts += 1
        self.upload.add_part(self.parts).put_content(bytes(self.pending))
        self.pending.clear()

    def _write(self, view: memoryview) -> None:
        try:
            while view.nbytes:
                take = min(view.nbytes, PART_SIZE - len(self.pending))
                self.pending += view[:take]
                view = view[take:]
                if len(self.pending) == PART_SIZE:
                    self._send_part()
        except Exception as exc:
            raise translate("write", self.key, exc) from exc

    def _commit(self) -> None:
        try:
            if self.upload is None:
                self.obj.get_writer().put_content(bytes(self.pending))
                return
            if self.pending:
                self._send_part()
            self.upload.complete()
        except Exception as exc:
            raise translate("commit", self.key, exc) from exc

    def _abort(self) -> None:
        upload, self.upload = self.upload, None
        self.pending = bytearray()
        if upload is not None:
            upload.abort()


class AisStorage(Storage):
    kind = "ais"
    library = LIBRARY

    def __init__(self, endpoint: str, bucket: str, prefix: str = "", timeouts: Timeouts | None = None):
        super().__init__(f"ais://{bucket}/{prefix}".rstrip("/"))
        timeouts = timeouts or Timeouts()
        self.endpoint = endpoint
        self.prefix = prefix.strip("/")
        self.client = Client(endpoint, timeout=(timeouts.connect, timeouts.read))
        self.bucket = self.client.bucket(bucket)

    def name(self, key: str) -> str:
        return join_key(self.prefix, key)

    def uri(self, key: str) -> str:
        return f"ais://{self.bucket.name}/{self.name(key)}"

    def object(self, key: str) -> Any:
        return self.bucket.object(self.name(key))

    def put(self, key: str, data: Buffer) -> None:
        check_key(key, LIBRARY, "put")
        try:
            self.object(key).get_writer().put_content(bytes(data))
        except Exception as exc:
            raise translate("put", key, exc) from exc

    def open_writer(self, key: str, *, fsync: bool = False) -> StreamWriter:
        check_key(key, LIBRARY, "open_writer")
        return _Writer(self, key)

    def get(self, key: str) -> Buffer:
        check_key(key, LIBRARY, "get")
        try:
            return bytes(self.object(key).get_reader().read_all())
        except Exception as exc:
            raise translate("get", key, exc) from exc

    def get_range(self, key: str, offset: int, length: int) -> Buffer:
        check_key(key, LIBRARY, "get_range")
        if offset < 0 or length < 0:
            raise StorageError("get_range", key, LIBRARY, f"offset {offset} and length {length} must be >= 0")
        try:
            size = self.object(key).head().size
            if length == 0 or offset >= size:  # nothing to read (a missing key still raised)
                return b""
            last = min(offset + length, size) - 1
            return bytes(self.object(key).get_reader(byte_range=f"bytes={offset}-{last}").read_all())
        except Exception as exc:
            raise translate("get_range", key, exc) from exc

    def get_many(self, keys: Sequence[str], max_in_flight: int = 16) -> builtins.list[Buffer]:
        """AIStore's GetBatch: the objects in one request, in the order asked (``max_in_flight``
        does not apply: the cluster assembles the batch)."""
        if not keys:
            return []
        for key in keys:
            check_key(key, LIBRARY, "get_many")
        where = f"{keys[0]} (+{len(keys) - 1} more)"
        try:
            batch = self.client.batch([self.name(k) for k in keys], bucket=self.bucket, cont_on_err=False)
            got = [data for _, data in batch.get()]
        except Exception as exc:
            raise translate("get_many", where, exc) from exc
        if len(got) != len(keys):
            raise StorageError("get_many", where, LIBRARY, f"the batch returned {len(got)} of {len(keys)} objects")
        return got

    def list(self, prefix: str = "") -> builtins.list[str]:
        under = f"{self.prefix}/{prefix}" if self.prefix else prefix
        strip = len(self.prefix) + 1 if self.prefix else 0
        try:
            return sorted(entry.name[strip:] for entry in self.bucket.list_objects_iter(prefix=under))
        except Exception as exc:
            raise translate("list", prefix, exc) from exc

    def stat(self, key: str) -> ObjectInfo:
        check_key(key, LIBRARY, "stat")
        try:
            return ObjectInfo(key, int(self.object(key).head().size))
        except Exception as exc:
            raise translate("stat", key, exc) from exc

    def delete(self, key: str) -> None:
        check_key(key, LIBRARY, "delete")
        try:
            self.object(key).delete()
        except Exception as exc:
            err = translate("delete", key, exc)
            if not isinstance(err, StorageNotFound):
                raise err from exc

    def evict_cache(self, keys: Iterable[str]) -> bool:
        return True  # no client-side cache
