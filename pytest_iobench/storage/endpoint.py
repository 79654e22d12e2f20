"""S3 endpoints: the embedded one (moto's server on 127.0.0.1) and checks of a given one.

The embedded endpoint runs moto's server in a child process, so that its request handling
does not share the benchmark process's interpreter lock. It listens on a free loopback
port, gets fresh random credentials, and is stopped (with everything in it) at the end.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any

from .errors import redact
from .retry import RetryPolicy
from .s3common import S3Endpoint

EMBEDDED_BUCKET = "iobench"
START_TIMEOUT = 60.0


LOG_PREFIX = "iobench-moto-"


def remove_stale_logs(directory: str | None = None) -> list[str]:
    """Remove the embedded endpoint's logs (``iobench-moto-<pid>-*.log`` in the temporary
    directory) whose session is no longer running on this host; returns the paths removed."""
    directory = directory or tempfile.gettempdir()
    removed: list[str] = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(LOG_PREFIX) and name.endswith(".log")):
            continue
        pid = name[len(LOG_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            try:
                os.unlink(os.path.join(directory, name))
                removed.append(os.path.join(directory, name))
            except OSError:
                pass
    return removed


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host (one of another user counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EndpointError(Exception):
    """The S3 endpoint cannot be used; the message is one line for the user, secrets redacted."""

    def __init__(self, message: str):
        super().__init__(redact(message))


class _PortTaken(Exception):
    """The embedded server lost its port to another process before binding it."""


def _tail(path: str, size: int = 4096) -> bytes:
    with open(path, "rb") as log:
        log.seek(0, os.SEEK_END)
        log.seek(max(0, log.tell() - size))
        return log.read()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedS3:
    """moto's S3 server on 127.0.0.1, with a bucket, for one session."""

    def __init__(self, bucket: str = EMBEDDED_BUCKET, region: str = "us-east-1"):
        self.bucket = bucket
        self.region = region
        self.process: subprocess.Popen[bytes] | None = None
        self.endpoint: S3Endpoint | None = None
        remove_stale_logs()
        # the pid in the name: a later session removes the log of one that was killed
        self.log = tempfile.NamedTemporaryFile(prefix=f"{LOG_PREFIX}{os.getpid()}-", suffix=".log", delete=False)

    def start(self, attempts: int = 3) -> S3Endpoint:
        # The free port is released before moto binds it, so another process (an xdist worker
        # starting its own endpoint) may take it first: our server then exits at start, and
        # the probe may even have reached the other one. Try again on a fresh port.
        for attempt in range(1, attempts + 1):
            try:
                return self._start_on(free_port())
            except _PortTaken:
                self.stop(keep_log=True)
                if attempt == attempts:
                    raise EndpointError(f"the embedded S3 endpoint (moto) could not bind a free port in "
                                        f"{attempts} attempts; its log: {self.log.name}") from None
        raise AssertionError("unreachable")

    def _start_on(self, port: int) -> S3Endpoint:
        url = f"http://127.0.0.1:{port}"
        # A session of its own: the terminal's Ctrl-C goes to the benchmark only, which still
        # needs the endpoint to clean up; the child ends by itself if we are killed.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pytest_iobench.storage._moto_child", str(os.getpid()),
             "-H", "127.0.0.1", "-p", str(port)],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                if b"Address already in use" in _tail(self.log.name):
                    raise _PortTaken()
                raise EndpointError(
                    f"the embedded S3 endpoint (moto) exited at start with code "
                    f"{self.process.returncode}; its log: {self.log.name}"
                )
            try:
                urllib.request.urlopen(url + "/", timeout=2).close()
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise EndpointError(f"the embedded S3 endpoint did not answer on {url} "
                                        f"within {START_TIMEOUT:.0f} s") from None
                time.sleep(0.1)
        self.endpoint = S3Endpoint(
            url=url, access_key="iobench-embedded", secret_key=secrets.token_hex(20), region=self.region
        )
        try:
            create_bucket(self.endpoint, self.bucket)
        except Exception as exc:  # botocore's errors: one line for the user, the log for details
            if self.process.poll() is not None:
                raise _PortTaken() from None
            self.stop(keep_log=True)
            raise EndpointError(f"the embedded S3 endpoint on {url} did not create its bucket "
                                f"{self.bucket!r}: {exc}; its log: {self.log.name}") from None
        if self.process.poll() is not None:  # the probe and the bucket were another server's
            raise _PortTaken()
        return self.endpoint

    def stop(self, keep_log: bool = False) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if keep_log:
            return
        self.log.close()
        try:
            os.unlink(self.log.name)
        except FileNotFoundError:
            pass

    def __enter__(self) -> S3Endpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _client(endpoint: S3Endpoint, timeout: float, retry: RetryPolicy | None = None) -> Any:
    """A boto3 client; without ``retry`` it makes one attempt per call. With it, throttling and
    resets are retried, a timeout is not (the check's wait is its own ``timeout``)."""
    import boto3
    from botocore.config import Config

    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint.urls[0],  # gateways of one store: any of them serves the bucket
        aws_access_key_id=endpoint.access_key,
        aws_secret_access_key=endpoint.secret_key,
        aws_session_token=endpoint.session_token,
        region_name=endpoint.region,
        # total_max_attempts counts the first request: 1 is no retry (botocore's max_attempts
        # counts retries, so max_attempts=1 meant two requests, twice the timeout)
        config=Config(connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": 1},
                      s3={"addressing_style": "path"}),
    )
    if retry is not None:
        from .boto3_backend import install_retries

        install_retries(client, retry, timeouts=False)
    return client


def create_bucket(endpoint: S3Endpoint, bucket: str) -> None:
    _client(endpoint, 10).create_bucket(Bucket=bucket)


def check_endpoint(endpoint: S3Endpoint, bucket: str, timeout: float = 5.0, retry: RetryPolicy = RetryPolicy()) -> None:
    """Raise EndpointError (one line) unless ``bucket`` on ``endpoint`` can be reached. Its
    request is retried like any other on throttling and resets (``retry``); what retries cannot
    fix (unreachable, refused credentials, a missing bucket) fails at once, and so does an
    endpoint that stays silent for ``timeout``."""
    if not endpoint.access_key or not endpoint.secret_key:
        raise EndpointError(
            f"no credentials for the S3 endpoint {endpoint.url}: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or IOBENCH_S3_ACCESS_KEY / IOBENCH_S3_SECRET_KEY)"
        )
    if len(endpoint.urls) > 1:  # every gateway must answer
        for one in endpoint.each():
            check_endpoint(one, bucket, timeout)
        return
    try:  # the settings checked the URL; an endpoint made in code may still be malformed
        address = (endpoint.host, endpoint.port)
    except ValueError as exc:
        raise EndpointError(f"the S3 endpoint URL {endpoint.url} is not valid: {exc}") from None
    try:
        socket.create_connection(address, timeout=timeout).close()
    except OSError as exc:
        raise EndpointError(f"the S3 endpoint {endpoint.url} is unreachable: {exc.strerror or exc}") from None
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        _client(endpoint, timeout, retry).head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        if not any(name.lower().startswith(("x-amz", "x-minio")) for name in headers):
            # every S3 implementation names its request (x-amz-request-id; moto x-amzn-requestid)
            server = headers.get("server", "an unknown server")
            raise EndpointError(f"{endpoint.url} does not answer as an S3 endpoint ({server} answered {code or '?'} "
                                "with no S3 headers); give the URL of the S3 service") from None
        if code in ("404", "NoSuchBucket"):
            raise EndpointError(f"the bucket {bucket!r} does not exist on {endpoint.url}; "
                                "create it or name another with --iobench-bucket") from None
        if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            raise EndpointError(f"the S3 endpoint {endpoint.url} refused the credentials "
                                f"for bucket {bucket!r} ({code})") from None
        raise EndpointError(f"the S3 endpoint {endpoint.url} answered {code} for bucket {bucket!r}") from None
    except BotoCoreError as exc:
        raise EndpointError(f"the S3 endpoint {endpoint.url} cannot be used: {exc}") from None


def open_uploads(endpoint: S3Endpoint, bucket: str, prefix: str, timeout: float = 10.0) -> list[tuple[str, str]]:
    """(key, upload id) of the multipart uploads open under ``prefix`` in ``bucket``."""
    client = _client(endpoint, timeout)
    return [(upload["Key"], upload["UploadId"])
            for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix)
            for upload in page.get("Uploads", [])]


def abort_uploads(endpoint: S3Endpoint, bucket: str, prefix: str, timeout: float = 10.0) -> int:
    """Abort the multipart uploads under ``prefix`` in ``bucket`` (a scratch area of ours);
    returns how many were aborted."""
    client = _client(endpoint, timeout)
    uploads = open_uploads(endpoint, bucket, prefix, timeout)
    for key, upload_id in uploads:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    return len(uploads)
