"""Which client libraries serve which storage, whether they are installed, and how to open one.

A ``StorageSpec`` says where a storage is and through which library, without credentials, so
it can be handed to another process (an MPI rank) that reads the credentials from its own
environment.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from urllib.parse import urlsplit

from .base import Storage
from .deadline import DEFAULT_OP_TIMEOUT, DeadlineStorage, Timeouts
from .s3common import S3Endpoint, S3Location
from .retry import DEFAULT_BACKOFF, DEFAULT_RETRIES, RetryPolicy

STORAGE_KINDS = ("local", "direct", "s3")

#: the libraries that can reach each storage, in the order they are parametrized
LIBRARIES: dict[str, tuple[str, ...]] = {
    "local": ("posix", "s3dlio"),
    "direct": ("posix", "s3dlio"),
    "s3": ("s3dlio", "minio", "boto3"),
}
ALL_LIBRARIES = tuple(dict.fromkeys(lib for libs in LIBRARIES.values() for lib in libs))

#: the module a library needs; None = the standard library
_MODULES = {"posix": None, "s3dlio": "s3dlio", "minio": "minio", "boto3": "boto3"}


def library_installed(library: str) -> bool:
    module = _MODULES[library]
    return module is None or importlib.util.find_spec(module) is not None


def missing_reason(library: str) -> str:
    return f"the {library} library is not installed (pip install {_MODULES[library]})"


#: the S3 libraries that cannot reach an endpoint under a path prefix (AIStore's /s3), and why
_NO_PATH_PREFIX = {
    "minio": "its SDK refuses an endpoint with a path",
    "s3dlio": "it drops the path of its endpoint URL and sends /bucket/key to the host",
}


def endpoint_limit(library: str, endpoint_url: str | None) -> str | None:
    """Why ``library`` cannot reach ``endpoint_url``, or None: only boto3 keeps an endpoint's
    path prefix in its requests (tests/test_path_prefix.py shows each case)."""
    if library == "s3dlio" and endpoint_url and "," in endpoint_url:
        return (f"s3dlio cannot spread over several endpoints ({endpoint_url}) here: its client is bound to "
                "one endpoint per process and its MultiEndpointStore is not wired in yet; use boto3 or minio")
    if library in _NO_PATH_PREFIX and endpoint_url and any(urlsplit(u).path.strip("/") for u in endpoint_url.split(",")):
        return (f"{library} cannot reach {endpoint_url} (an S3 API under a path prefix): "
                f"{_NO_PATH_PREFIX[library]}; use boto3 for it")
    return None


@dataclass(frozen=True)
class StorageSpec:
    """Where a storage is and which library reaches it. No credentials: those come from the
    environment of whoever opens it."""

    kind: str
    library: str
    root: str = ""  # a directory, for local and direct
    bucket: str = ""
    prefix: str = ""
    endpoint_url: str = ""
    region: str = "us-east-1"
    #: seconds one operation may take (--iobench-op-timeout)
    op_timeout: float = DEFAULT_OP_TIMEOUT
    #: retries of a request and the first backoff in seconds (--iobench-retries, --iobench-backoff)
    retries: int = DEFAULT_RETRIES
    backoff: float = DEFAULT_BACKOFF

    @property
    def id(self) -> str:
        return f"{self.kind}-{self.library}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> "StorageSpec":
        return cls(**data)


def endpoint_from_env(spec: StorageSpec, environ: Mapping[str, str]) -> S3Endpoint:
    return S3Endpoint(
        url=spec.endpoint_url,
        access_key=environ.get("AWS_ACCESS_KEY_ID", ""),
        secret_key=environ.get("AWS_SECRET_ACCESS_KEY", ""),
        region=spec.region,
        session_token=environ.get("AWS_SESSION_TOKEN") or None,
    )


def open_storage(spec: StorageSpec, endpoint: S3Endpoint | None = None, environ: Mapping[str, str] | None = None) -> Storage:
    """Open the storage ``spec`` describes. For S3, ``endpoint`` carries the credentials;
    without it they are read from ``environ`` (default: this process's environment)."""
    if spec.kind not in LIBRARIES:
        raise ValueError(f"unknown storage {spec.kind!r}; valid: {', '.join(STORAGE_KINDS)}")
    if spec.library not in LIBRARIES[spec.kind]:
        raise ValueError(
            f"library {spec.library!r} does not serve the {spec.kind} storage; "
            f"valid: {', '.join(LIBRARIES[spec.kind])}"
        )
    if spec.kind == "s3" and endpoint is None:
        endpoint = endpoint_from_env(spec, os.environ if environ is None else environ)
    if spec.kind == "s3" and len(endpoint.urls) > 1:
        from .spread import SpreadStorage

        one = lambda url: _construct(spec, replace(endpoint, url=url))  # noqa: E731
        storage = SpreadStorage(S3Location(endpoint, spec.bucket, spec.prefix), endpoint.urls, one)
    else:
        storage = _construct(spec, endpoint)
    storage.spec = spec
    if spec.kind == "s3":  # network calls: each under its deadline (local ones: see deadline.py)
        storage = DeadlineStorage(storage, spec.op_timeout, where=endpoint.url)
    return storage


def _construct(spec: StorageSpec, endpoint: S3Endpoint | None) -> Storage:
    # Client libraries are imported only when used: a missing optional one must not break
    # the others.
    if spec.kind == "s3":
        location = S3Location(endpoint, spec.bucket, spec.prefix)
        timeouts = Timeouts(spec.op_timeout, retry=RetryPolicy(spec.retries, spec.backoff))
        if spec.library == "s3dlio":
            from .s3dlio_backend import S3dlioStorage

            return S3dlioStorage("s3", location=location, timeouts=timeouts)
        if spec.library == "minio":
            from .minio_backend import MinioStorage

            return MinioStorage(location, timeouts)
        from .boto3_backend import Boto3Storage

        return Boto3Storage(location, timeouts)
    if spec.library == "s3dlio":
        from .s3dlio_backend import S3dlioStorage

        return S3dlioStorage(spec.kind, root=spec.root)
    if spec.kind == "direct":
        from .direct import DirectStorage

        return DirectStorage(spec.root)
    from .posix import PosixStorage

    return PosixStorage(spec.root)
