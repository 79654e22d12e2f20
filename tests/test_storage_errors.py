"""The storage exception family: what messages say, what they never say."""

from __future__ import annotations

import pickle

from botocore.exceptions import ClientError
from minio.error import S3Error

from pytest_iobench.storage import boto3_backend, minio_backend, s3dlio_backend
from pytest_iobench.storage.errors import (
    StorageError,
    StorageNotFound,
    StoragePermissionDenied,
    redact,
    register_secret,
)
from pytest_iobench.storage.s3common import S3Endpoint


def client_error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "GetObject")


def test_boto3_codes_map_to_the_family():
    assert isinstance(boto3_backend.translate("get", "k", client_error("NoSuchKey", "gone")), StorageNotFound)
    assert isinstance(boto3_backend.translate("stat", "k", client_error("404", "Not Found")), StorageNotFound)
    err = boto3_backend.translate("put", "a/b", client_error("AccessDenied", "no"))
    assert isinstance(err, StoragePermissionDenied)
    assert str(err) == "boto3: put 'a/b' failed: AccessDenied: no"
    assert type(boto3_backend.translate("get", "k", client_error("SlowDown", "busy"))) is StorageError


def test_minio_codes_map_to_the_family():
    exc = S3Error(None, "NoSuchKey", "The specified key does not exist.", "/b/k", "req", "host")
    err = minio_backend.translate("get", "k", exc)
    assert isinstance(err, StorageNotFound) and (err.op, err.key, err.library) == ("get", "k", "minio")


def test_s3dlio_messages_map_to_the_family():
    def translated(op: str, message: str) -> Exception:
        return s3dlio_backend.translate(op, "k", RuntimeError(message))

    assert isinstance(translated("get", "service error: NoSuchKey (x)"), StorageNotFound)
    assert isinstance(translated("get", "File not found: /x"), StorageNotFound)
    assert isinstance(translated("put", "service error: AccessDenied"), StoragePermissionDenied)


def test_secrets_are_redacted_from_messages():
    endpoint = S3Endpoint("http://127.0.0.1:1", "AKIAABCDEFGHIJKLMNOP", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    text = (f"signature failed for {endpoint.access_key} with {endpoint.secret_key}; "
            "X-Amz-Signature=abcdef0123&x=1 password=hunter2")
    clean = redact(text)
    for secret in (endpoint.secret_key, "AKIAABCDEFGHIJKLMNOP", "abcdef0123", "hunter2"):
        assert secret not in clean
    err = StorageError("get", "k", "boto3", text)
    assert endpoint.secret_key not in str(err)
    assert "wJalr" not in repr(endpoint)


def test_errors_survive_pickling_for_xdist_and_mpi():
    register_secret("s3cr3t-value")
    err = StorageNotFound("stat", "a/b", "minio", "detail with s3cr3t-value")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is StorageNotFound
    assert str(back) == str(err) == "minio: stat 'a/b' failed: detail with ***"


def test_a_secret_inside_another_is_redacted_whole():
    register_secret("Inner5ecretValue")
    register_secret("Token-Inner5ecretValue-Tail")
    clean = redact("token Token-Inner5ecretValue-Tail and key Inner5ecretValue")
    assert clean == "token *** and key ***"


FULL_DISK = """
import os, resource, signal, sys
from pytest_iobench.storage.posix import PosixStorage
from pytest_iobench.storage.errors import StorageError

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
storage = PosixStorage(sys.argv[1])
try:
    with storage.open_writer("dir/big.bin") as writer:
        for _ in range(4):
            writer.write(bytes(1 << 20))
except StorageError as exc:
    print(type(exc).__name__, exc.op, exc.key, exc.library, type(exc.__cause__).__name__)
print(sorted(os.listdir(os.path.join(sys.argv[1], "dir"))))
"""


def test_a_file_writer_that_runs_out_of_room_raises_the_family_and_leaves_nothing(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", FULL_DISK, str(tmp_path)],
                         capture_output=True, text=True, check=True).stdout
    first, files = out.splitlines()
    name, op, key, library, cause = first.split()
    assert (name, key, library, cause) == ("StorageError", "dir/big.bin", "posix", "OSError")
    assert op in ("write", "commit")
    assert files == "[]", f"a failed write left {files}"


def test_a_failing_abort_does_not_hide_why_the_write_stopped(tmp_path):
    import pytest

    from pytest_iobench.storage.posix import PosixStorage
    from pytest_iobench.storage.wrapping import WrappedStorage, WrappedWriter

    class AbortFails(WrappedWriter):
        def _abort(self):
            raise RuntimeError("endpoint down while aborting")

    storage = WrappedStorage(PosixStorage(str(tmp_path)))
    with pytest.raises(ValueError, match="the generator broke"):
        with AbortFails(storage, storage.inner.open_writer("k")) as writer:
            writer.write(b"x")
            raise ValueError("the generator broke")


def test_a_password_in_an_endpoint_url_made_in_code_stays_out_of_its_errors():
    # the settings refuse user:password in --iobench-s3-endpoint; an endpoint built in code may
    # still carry one, and the endpoint check's one-line errors name the URL
    from pytest_iobench.storage.endpoint import EndpointError, check_endpoint

    endpoint = S3Endpoint("http://user:Pa55wordInTheUrl@127.0.0.1:1", "AKIAABCDEFGHIJKLMNOP", "another-secret-key")
    try:
        check_endpoint(endpoint, "bucket", timeout=1.0)
    except EndpointError as exc:
        message = str(exc)
    else:
        raise AssertionError("port 1 on loopback answered")
    assert "unreachable" in message and "127.0.0.1:1" in message
    assert "Pa55wordInTheUrl" not in message and "***" in message
