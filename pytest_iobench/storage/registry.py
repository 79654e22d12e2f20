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
from typing import Any

from .base import Storage, join_key
from .deadline import DeadlineStorage, Timeouts
from .names import (  # the names are the registry's too (re-exported)
    ALL_LIBRARIES,
    BUCKET_KINDS,
    DEFAULT_BACKOFF,
    DEFAULT_OP_TIMEOUT,
    DEFAULT_RETRIES,
    LIBRARIES,
    STORAGE_KINDS,
)
from .retry import RetryPolicy
from .s3common import S3Endpoint, S3Location

__all__ = ["ALL_LIBRARIES", "BUCKET_KINDS", "LIBRARIES", "STORAGE_KINDS", "StorageSpec", "library_installed",
           "missing_reason", "open_storage"]

#: the module a library needs; None = the standard library
_MODULES = {"posix": None, "s3dlio": "s3dlio", "minio": "minio", "boto3": "boto3",
            "s3torchconnector": "s3torchconnector", "aistore": "aistore"}


def library_installed(library: str) -> bool:
    module = _MODULES[library]
    return module is None or importlib.util.find_spec(module) is not None


def missing_reason(library: str) -> str:
    return f"the {library} library is not installed (pip install {_MODULES[library]})"


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StorageSpec:
        return cls(**data)


def endpoint_from_env(spec: StorageSpec, environ: Mapping[str, str]) -> S3Endpoint:
    return S3Endpoint(
        url=spec.endpoint_url,
        access_key=environ.get("AWS_ACCESS_KEY_ID", ""),
        secret_key=environ.get("AWS_SECRET_ACCESS_KEY", ""),
        region=spec.region,
        session_token=environ.get("AWS_SESSION_TOKEN") or None,
    )


def open_storage(spec: StorageSpec, endpoint: S3Endpoint | None = None,
                 environ: Mapping[str, str] | None = None) -> Storage:
    """Open the storage ``spec`` describes. For S3, ``endpoint`` carries the credentials;
    without it they are read from ``environ`` (default: this process's environment)."""
    if spec.kind not in LIBRARIES:
        raise ValueError(f"unknown storage {spec.kind!r}; valid: {', '.join(STORAGE_KINDS)}")
    if spec.library not in LIBRARIES[spec.kind]:
        raise ValueError(
            f"library {spec.library!r} does not serve the {spec.kind} storage; "
            f"valid: {', '.join(LIBRARIES[spec.kind])}"
        )
    if spec.kind == "ais":
        from .ais_backend import AisStorage

        if not spec.endpoint_url:
            raise ValueError(f"{spec.id}: the ais storage needs an endpoint (--iobench-ais-endpoint)")
        ais = AisStorage(spec.endpoint_url, spec.bucket, spec.prefix, Timeouts(spec.op_timeout))
        ais.spec = spec
        return DeadlineStorage(ais, spec.op_timeout, where=spec.endpoint_url)
    if spec.kind != "s3":
        storage = _construct(spec, None)
        storage.spec = spec
        return storage
    s3 = endpoint if endpoint is not None else endpoint_from_env(spec, os.environ if environ is None else environ)
    if len(s3.urls) > 1 and spec.library != "s3dlio":  # s3dlio: its own multi-endpoint store
        from .spread import SpreadStorage

        one = lambda url: _construct(spec, replace(s3, url=url))  # noqa: E731
        storage = SpreadStorage(S3Location(s3, spec.bucket, spec.prefix), s3.urls, one)
    else:
        storage = _construct(spec, s3)
    storage.spec = spec
    # network calls: each under its deadline (local ones: see deadline.py)
    return DeadlineStorage(storage, spec.op_timeout, where=s3.url)


def _construct(spec: StorageSpec, endpoint: S3Endpoint | None) -> Storage:
    # Client libraries are imported only when used: a missing optional one must not break
    # the others.
    if spec.kind == "s3":
        if endpoint is None:
            raise ValueError(f"{spec.id}: an S3 storage needs an endpoint")
        location = S3Location(endpoint, spec.bucket, spec.prefix)
        timeouts = Timeouts(spec.op_timeout, retry=RetryPolicy(spec.retries, spec.backoff))
        if spec.library == "s3dlio":
            from .s3dlio_backend import S3dlioSpreadStorage, S3dlioStorage

            if len(location.endpoint.urls) > 1:
                return S3dlioSpreadStorage(location, timeouts)
            return S3dlioStorage("s3", location=location, timeouts=timeouts)
        if spec.library == "minio":
            from .minio_backend import MinioStorage

            return MinioStorage(location, timeouts)
        if spec.library == "s3torchconnector":
            from .s3torch_backend import S3TorchStorage

            return S3TorchStorage(location, timeouts)
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


def storage_at(spec: StorageSpec | dict[str, Any], prefix: str = "", *, odirect: bool = False,
               environ: Mapping[str, str] | None = None) -> Storage:
    """Open the storage ``spec`` describes, rooted ``prefix`` further down. With ``odirect``,
    local files are read through O_DIRECT (the direct storage of the same library). S3
    credentials come from ``environ`` (default: this process's environment)."""
    if isinstance(spec, dict):
        spec = StorageSpec.from_dict(spec)
    if prefix:
        if spec.kind in BUCKET_KINDS:
            spec = replace(spec, prefix=join_key(spec.prefix, prefix))
        else:
            spec = replace(spec, root=spec.root.rstrip("/") + "/" + prefix.strip("/"))
    if odirect and spec.kind == "local":
        spec = replace(spec, kind="direct")
    return open_storage(spec, environ=environ)
