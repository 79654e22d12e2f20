"""The ``boto3`` SDK on S3, through its client API.

The streaming writer fills one part buffer at a time and uploads full parts concurrently:
at most MAX_PARTS_IN_FLIGHT for the writer, and only while the process-wide PART_BUDGET has
a token (``write`` blocks otherwise: backpressure). A full part is handed to its upload as it
is (no copy: botocore reads the memory map as a file of known length) and the writer fills
another buffer from the process's PART_BUFFERS; the upload's buffer goes back there once
botocore is done with it. The multipart upload is created only once a
first full part exists: smaller objects are a plain PUT, as every SDK does.
"""

from __future__ import annotations

import mmap
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.retries import standard

from . import deadline
from .base import Buffer, ObjectInfo, Storage, StreamWriter, check_key
from .deadline import Timeouts
from .errors import StorageError, StorageNotFound
from .retry import COUNTS, RetryPolicy, classify_exception, classify_status
from .s3common import (
    MAX_PARTS_IN_FLIGHT,
    PART_BUFFERS,
    PartFiller,
    S3Location,
    check_stream_size,
    completed_anyway,
    error_for_code,
    is_invalid_range,
    multipart_etag,
)

LIBRARY = "boto3"


def translate(op: str, key: str, exc: BaseException) -> StorageError:
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        return error_for_code(op, key, LIBRARY, code, f"{code}: {error.get('Message', '')}".rstrip(": "))
    if isinstance(exc, BotoCoreError):
        return StorageError(op, key, LIBRARY, f"{type(exc).__name__}: {exc}")
    return StorageError(op, key, LIBRARY, f"{type(exc).__name__}: {exc}")


class _Backoff:
    """botocore's retry delay from our policy (its own waits 1 s or more on throttling); what
    botocore's ``BaseRetryBackoff`` asks of a backoff: ``delay_amount``."""

    def __init__(self, policy: RetryPolicy):
        self.policy = policy

    def delay_amount(self, context: Any) -> float:
        return self.policy.delay(context.attempt_number)


class _NoQuota:
    """botocore's standard mode stops retrying once a token bucket of retries is spent (about
    100 throttled requests per client): under steady throttling that fails requests the attempt
    budget would carry. The attempt budget alone bounds retries here."""

    def acquire_retry_quota(self, context: Any) -> bool:
        return True

    def release_retry_quota(self, context: Any, http_response: Any, **kwargs: Any) -> None:
        pass


def install_retries(client: Any, policy: RetryPolicy, *, timeouts: bool = True) -> None:
    """Put botocore's standard retry conditions (throttling, 500/502/503/504, resets, timeouts)
    with our attempt budget and backoff in place of the client's handler, counting each attempt.
    ``timeouts=False``: an attempt that timed out is not retried (the start-up check: a silent
    endpoint is refused after one wait, not six)."""
    handler = standard.RetryHandler(
        retry_policy=standard.RetryPolicy(
            retry_checker=standard.StandardRetryConditions(max_attempts=policy.attempts),
            retry_backoff=_Backoff(policy)),
        retry_event_adapter=standard.RetryEventAdapter(), retry_quota=_NoQuota())

    def needs_retry(response: Any = None, caught_exception: BaseException | None = None,
                    **kwargs: Any) -> float | None:
        if response is not None:
            http, parsed = response
            outcome = classify_status(http.status_code, str((parsed or {}).get("Error", {}).get("Code", "")))
        else:
            outcome = classify_exception(caught_exception)
        delay: float | None = None
        if timeouts or outcome != "timeout":
            delay = handler.needs_retry(response=response, caught_exception=caught_exception, **kwargs)
        COUNTS.attempt(LIBRARY, outcome, delay if delay else None)
        return delay

    events = client.meta.events
    events.unregister("needs-retry.s3", unique_id="retry-config-s3")
    events.register("needs-retry.s3", needs_retry, unique_id="retry-config-s3")
    events.register("before-call.s3", lambda **_: COUNTS.add(LIBRARY, requests=1))


class _MultipartWriter(StreamWriter):
    def __init__(self, storage: Boto3Storage, key: str):
        super().__init__(storage, key)
        self.s3 = storage
        self.client = storage.client
        self.bucket = storage.location.bucket
        self.name = storage.location.object_name(key)
        self.upload_id: str | None = None
        self.futures: list[Future[dict[str, Any]]] = []
        self.pool: ThreadPoolExecutor | None = None
        self.filler = PartFiller(self._send_part)  # the part being filled: this writer's own, not budgeted

    def _write(self, view: memoryview) -> None:
        check_stream_size(self.key, LIBRARY, self.bytes_written, view.nbytes)
        self.filler.write(view)

    def _send_part(self, part: Buffer | mmap.mmap) -> None:
        """Upload ``part`` (a buffer of PART_BUFFERS, a memory map botocore reads as a file with a
        length, or the copied tail) once a token is free."""
        try:
            if self.upload_id is None:
                try:
                    self.upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=self.name)["UploadId"]
                except Exception as exc:
                    raise translate("write", self.key, exc) from exc
            if self.pool is None:
                self.pool = ThreadPoolExecutor(MAX_PARTS_IN_FLIGHT, thread_name_prefix="boto3-part")
            pool = self.pool
            self._raise_failed_part()
        except BaseException:
            PART_BUFFERS.give(part)
            raise
        self.filler.hold()  # backpressure: this writer's limit and the process's
        if isinstance(part, mmap.mmap):
            # botocore reads a file-like body from where it stands (checksum, then the send),
            # and a reused buffer stands where its last upload left it
            part.seek(0)
        number = len(self.futures) + 1
        try:
            future = pool.submit(self._upload_part, number, part)
        except BaseException:
            self.filler.done(part)
            raise
        future.add_done_callback(lambda _future: self.filler.done(part))  # uploaded, failed or cancelled
        self.futures.append(future)

    def _upload_part(self, number: int, body: Buffer | mmap.mmap) -> dict[str, Any]:
        # on a daemon worker under the deadline: the pool's own threads are joined when the
        # interpreter exits, and must not be stuck in a call to a silent endpoint then
        response = deadline.run(
            lambda: self.client.upload_part(Bucket=self.bucket, Key=self.name, UploadId=self.upload_id,
                                            PartNumber=number, Body=body),
            op="write", key=self.key, library=LIBRARY, where=self.s3.endpoint_url,
            timeout=self.s3.timeouts.total)
        return {"PartNumber": number, "ETag": response["ETag"]}

    def _raise_failed_part(self) -> None:
        for future in self.futures:
            exc = future.exception() if future.done() and not future.cancelled() else None
            if exc is not None:
                raise translate("write", self.key, exc) from exc

    def _commit(self) -> None:
        try:
            tail = bytes(self.filler.tail())  # botocore takes bytes or a bytearray, not a view
            if self.upload_id is None:
                self.client.put_object(Bucket=self.bucket, Key=self.name, Body=tail)
                return
            if tail:
                self._send_part(tail)
            parts = [f.result() for f in self.futures]
            try:
                self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=self.name, UploadId=self.upload_id, MultipartUpload={"Parts": parts}
                )
            except ClientError:
                # a complete retried after its reply was lost finds the upload gone
                def head() -> Any:
                    return self.client.head_object(Bucket=self.bucket, Key=self.name)

                if not completed_anyway(lambda: head()["ContentLength"], self.bytes_written,
                                        lambda: head()["ETag"], multipart_etag([p["ETag"] for p in parts])):
                    raise
        except StorageError:
            raise
        except Exception as exc:
            raise translate("commit", self.key, exc) from exc
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)  # every part's token and buffer are back once this returns
            self.filler.close()

    def _abort(self) -> None:
        self.filler.close()
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        if self.upload_id is not None:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.name, UploadId=self.upload_id)


class Boto3Storage(Storage):
    kind = "s3"
    library = LIBRARY

    def __init__(self, location: S3Location, timeouts: Timeouts = Timeouts()):
        super().__init__(location.uri())
        self.location = location
        self.timeouts = timeouts
        ep = location.endpoint
        self.endpoint_url = ep.url
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=ep.url,
            aws_access_key_id=ep.access_key,
            aws_secret_access_key=ep.secret_key,
            aws_session_token=ep.session_token,
            region_name=ep.region,
            config=Config(
                max_pool_connections=32,
                # replaced by install_retries: same conditions, our budget and backoff
                retries={"total_max_attempts": timeouts.retry.attempts, "mode": "standard"},
                connect_timeout=timeouts.connect,
                read_timeout=timeouts.read,
                s3={"addressing_style": "path"},
            ),
        )
        install_retries(self.client, timeouts.retry)

    def uri(self, key: str) -> str:
        return self.location.uri(key)

    def _name(self, op: str, key: str) -> str:
        return self.location.object_name(check_key(key, LIBRARY, op))

    def put(self, key: str, data: Buffer) -> None:
        name = self._name("put", key)
        body = data if isinstance(data, bytes) else bytes(data)
        try:
            self.client.put_object(Bucket=self.location.bucket, Key=name, Body=body)
        except Exception as exc:
            raise translate("put", key, exc) from exc

    def put_if_absent(self, key: str, data: Buffer) -> bool:
        name = self._name("put_if_absent", key)
        try:
            self.client.put_object(Bucket=self.location.bucket, Key=name, Body=bytes(data), IfNoneMatch="*")
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            if code == "NotImplemented":
                raise NotImplementedError from exc
            raise translate("put_if_absent", key, exc) from exc
        except Exception as exc:
            raise translate("put_if_absent", key, exc) from exc
        return True

    def open_writer(self, key: str, *, fsync: bool = False) -> StreamWriter:
        self._name("open_writer", key)
        return _MultipartWriter(self, key)

    def get(self, key: str) -> Buffer:
        name = self._name("get", key)
        try:
            data: bytes = self.client.get_object(Bucket=self.location.bucket, Key=name)["Body"].read()
            return data
        except Exception as exc:
            raise translate("get", key, exc) from exc

    def get_range(self, key: str, offset: int, length: int) -> Buffer:
        name = self._name("get_range", key)
        if offset < 0 or length < 0:
            raise StorageError("get_range", key, LIBRARY, f"offset {offset} and length {length} must be >= 0")
        if length == 0:
            self.stat(key)
            return b""
        try:
            response = self.client.get_object(
                Bucket=self.location.bucket, Key=name, Range=f"bytes={offset}-{offset + length - 1}"
            )
            data: bytes = response["Body"].read()
            return data
        except Exception as exc:
            if is_invalid_range(str(exc)):
                self.stat(key)
                return b""
            raise translate("get_range", key, exc) from exc

    def list(self, prefix: str = "") -> list[str]:
        keys: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.location.bucket, Prefix=self.location.list_prefix(prefix)
            )
            for page in pages:
                keys.extend(self.location.key_of(o["Key"]) for o in page.get("Contents", []))
        except Exception as exc:
            raise translate("list", prefix, exc) from exc
        return sorted(keys)

    def stat(self, key: str) -> ObjectInfo:
        name = self._name("stat", key)
        try:
            return ObjectInfo(key, self.client.head_object(Bucket=self.location.bucket, Key=name)["ContentLength"])
        except Exception as exc:
            raise translate("stat", key, exc) from exc

    def delete(self, key: str) -> None:
        name = self._name("delete", key)
        try:
            self.client.delete_object(Bucket=self.location.bucket, Key=name)
        except Exception as exc:
            err = translate("delete", key, exc)
            if not isinstance(err, StorageNotFound):
                raise err from exc

    def close(self) -> None:
        self.client.close()
