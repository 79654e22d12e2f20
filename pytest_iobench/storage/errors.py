"""The one small exception family every storage library's errors are turned into.

A caller catches ``StorageNotFound`` / ``StoragePermissionDenied`` / ``StorageError`` whatever
the client library; the message names the operation, the key and the library, and the client's
own exception is chained (``__cause__``) for the details. Messages never carry credentials:
they are built from our own words plus the client's message passed through ``redact``.
"""

from __future__ import annotations

import errno
import re


class StorageError(Exception):
    """An operation on a storage failed."""

    def __init__(self, op: str, key: str, library: str, detail: str = ""):
        self.op = op
        self.key = key
        self.library = library
        self.detail = redact(detail)
        message = f"{library}: {op} {key!r} failed"
        if self.detail:
            message += f": {self.detail}"
        super().__init__(message)

    # picklable across xdist/MPI boundaries
    def __reduce__(self) -> tuple[type[StorageError], tuple[str, str, str, str]]:
        return (type(self), (self.op, self.key, self.library, self.detail))


class StorageNotFound(StorageError):
    """The key does not exist."""


class StoragePermissionDenied(StorageError):
    """The credentials or the file system refused the operation."""


def os_error(op: str, key: str, library: str, exc: OSError) -> StorageError:
    """Map an OSError to the family (the caller chains it)."""
    detail = exc.strerror or str(exc)
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return StorageNotFound(op, key, library, detail)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StoragePermissionDenied(op, key, library, detail)
    return StorageError(op, key, library, detail)


class StorageTimeout(StorageError):
    """The operation did not finish within its deadline (--iobench-op-timeout); the library's
    call was abandoned."""


class StorageInterrupted(StorageError):
    """The session was interrupted (SIGINT, SIGTERM) while the operation was under way."""


class StorageUnsupported(Exception):
    """This storage cannot run here (for example O_DIRECT on tmpfs); a reason for a skip."""


# Things that look like secrets in a client's message: AWS key ids, signatures, and anything
# introduced as a secret/token/password/credential.
_SECRET_PATTERNS = [
    re.compile(r"(?i)((?:secret|token|password|passwd|credential|signature)[\w-]*[\"']?\s*[=:]\s*[\"']?)[^\s&\"',;]+"),
    re.compile(r"(?i)(X-Amz-Signature=|X-Amz-Credential=|X-Amz-Security-Token=)[^&\s\"']+"),
    re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{12,}\b"),
]

_known_secrets: set[str] = set()
#: a registered secret shorter than this is masked only where it stands as a value of its own
#: (``=test``, ``:test@``, ``"test"``, ``test`` between spaces), never inside a word, a test id
#: or a file name (``suites/test_generate.py``): a short word is likely to be part of those.
#: Longer ones (real keys and tokens) are masked wherever they occur.
WHOLE_WORD_BELOW = 16
#: characters that continue a name: a short secret next to one is part of a name, not a value
_NAME_CHARS = r"\w\-./"
_short_patterns: dict[str, re.Pattern[str]] = {}


def register_secret(value: str | None) -> None:
    """Remember a secret (a secret key, a session token, a workload file's credential) so
    ``redact`` masks it (values of fewer than 4 characters are not kept: masking them would
    garble every message)."""
    if value and len(value) >= 4:
        _known_secrets.add(value)
        if len(value) < WHOLE_WORD_BELOW:
            # a sentence's full stop after it still ends the value
            _short_patterns[value] = re.compile(
                rf"(?<![{_NAME_CHARS}]){re.escape(value)}(?![\w\-/]|\.[\w])")


def holds_secret(text: str) -> bool:
    """Whether ``text`` contains a registered secret (an access key id that is also the secret
    key, as minio's default minioadmin is, must not be shown even in part)."""
    return bool(text) and any(secret in text for secret in _known_secrets)


def redact(text: str) -> str:
    """Return ``text`` with registered secrets and secret-looking values replaced by ``***``."""
    if not text:
        return text
    for secret in sorted(_known_secrets, key=len, reverse=True):  # one may contain another
        short = _short_patterns.get(secret)
        text = short.sub("***", text) if short is not None else text.replace(secret, "***")
    text = _SECRET_PATTERNS[0].sub(r"\1***", text)
    text = _SECRET_PATTERNS[1].sub(r"\1***", text)
    text = _SECRET_PATTERNS[2].sub("***", text)
    return text
