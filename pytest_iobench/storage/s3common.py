"""What the S3 client libraries share: where to connect, where to work, and error mapping."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .base import join_key
from .errors import StorageError, StorageNotFound, StoragePermissionDenied, register_secret

#: part size of every streaming upload, the same for every library so they compare fairly
PART_SIZE = 8 << 20
#: parts uploaded concurrently by one streaming writer (bounds its memory to about
#: (MAX_PARTS_IN_FLIGHT + 1) * PART_SIZE)
MAX_PARTS_IN_FLIGHT = 4


@dataclass(frozen=True)
class S3Endpoint:
    """An S3-compatible endpoint and the credentials to use on it."""

    url: str
    access_key: str
    secret_key: str = field(repr=False)
    region: str = "us-east-1"
    session_token: str | None = field(default=None, repr=False)

    def __post_init__(self):
        register_secret(self.secret_key)
        register_secret(self.session_token)

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


def is_invalid_range(text: str) -> bool:
    """S3 answers 416 InvalidRange for a range that starts at or past the end."""
    return "InvalidRange" in text or "not satisfiable" in text or "416" in text
