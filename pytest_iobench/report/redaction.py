"""Keeping secrets out of result documents, reports and the terminal.

Every string that goes into a document passes through the storage layer's ``redact`` (registered
secrets and secret-looking values become ``***``); the secret settings of the session are
registered first, so a secret key given on the command line is known wherever it turns up.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from typing import Any

from ..settings import REGISTRY, Settings
from ..storage.errors import redact, register_secret

#: environment variables that hold secrets whether or not an option reads them
SECRET_ENVIRONMENT = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "IOBENCH_S3_SECRET_KEY")


def register_session_secrets(settings: Settings) -> None:
    """Make ``redact`` know the values of the secret settings and secret environment variables."""
    for name, option in REGISTRY.items():
        if option.secret:
            value = settings.get(name)
            if isinstance(value, str):
                register_secret(value)
    for variable in SECRET_ENVIRONMENT:
        register_secret(os.environ.get(variable))


def redacted(value: Any) -> Any:
    """``value`` (JSON types) with every string redacted; mapping keys are kept."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v) for v in value]
    return value


def redact_in_place(value: Any) -> Any:
    """``value`` with every string inside it redacted: dataclass instances (pytest's failure
    representations) are changed in place, lists and tuples are rebuilt, anything else is kept.

    pytest prints a failure from these objects (the traceback, the assertion message, captured
    output), and xdist ships them from worker to controller; a secret a test put in its
    assertion message must not reach either.
    """
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [redact_in_place(v) for v in value]
    if isinstance(value, tuple):
        return tuple(redact_in_place(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            setattr(value, field.name, redact_in_place(getattr(value, field.name)))
    return value


def secret_flags() -> list[str]:
    return [option.flag for option in REGISTRY.values() if option.secret]


def masked_command(args: Sequence[str], flags: Iterable[str] | None = None) -> list[str]:
    """The command line with the values of secret options replaced by ``***``."""
    flags = list(secret_flags() if flags is None else flags)
    masked, hide_next = [], False
    for arg in args:
        arg = str(arg)
        if hide_next:
            masked.append("***")
            hide_next = False
        elif arg in flags:
            masked.append(arg)
            hide_next = True
        elif any(arg.startswith(flag + "=") for flag in flags):
            masked.append(arg.split("=", 1)[0] + "=***")
        else:
            masked.append(redact(arg))
    return masked
