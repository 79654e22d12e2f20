"""Keeping secrets out of result documents, reports and the terminal.

The guarantee: no secret the session knows of reaches the terminal, a document or a report.
It rests on two things, both here:

- *Registered before anything is printed.* ``register_session_secrets`` makes ``redact`` know
  the secret settings and secret environment variables. The plugin calls it where the settings
  are resolved (``plugin.options.get_settings``), which every pytest process (the controller and
  each xdist worker) does in ``pytest_cmdline_main``: before the report header, before the first
  test, whether or not the report layer is ever imported. A workload's credentials are
  registered as their override or file is parsed (``workload.config.register_credentials``),
  the S3 client's as it is made (``storage.s3common``).
- *Every way out goes through ``redact``*: ``redacted`` for document entries (in the process
  that ran the test), ``redact_in_place`` for pytest's failure reports (traceback, assertion
  message, captured output, hence the short summary too) before they are printed or shipped to
  the xdist controller, ``masked_command`` for the command line, ``redact`` for the header.

Registering is idempotent, so code that builds a session without the plugin (``RunResults``)
calls it again.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

from ..settings import REGISTRY, Option, Settings, hidden
from ..storage.errors import holds_secret, redact, register_secret

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


#: fields of a document entry that are names, never values: a test's id (baselines match on
#: it, and the controller merges workers' entries by it), its suite, parameters and kind
NAMES = frozenset({"id", "suite", "kind", "params", "nodeid", "fullname"})


def redacted(value: Any) -> Any:
    """``value`` (JSON types) with every string redacted; mapping keys are kept, and so are
    the values of ``NAMES`` (test ids and their parts)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: v if k in NAMES else redacted(v) for k, v in value.items()}
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


def _shown(option: Option, value: str) -> str:
    """``value`` of a secret or masked option as the document shows it (as the header does)."""
    return hidden(option, value, holds_secret(value))


def _masked_arg(arg: str, options: Sequence[Option]) -> str | None:
    """``arg`` with the value of one of ``options`` in it hidden; None when it holds none.
    An ini override (``-o iobench_x=V``, ``-oiobench_x=V``, ``--override-ini=iobench_x=V``) too."""
    for option in options:
        for prefix in (option.flag + "=", option.ini + "=", f"-o{option.ini}=", f"--override-ini={option.ini}="):
            if arg.startswith(prefix):
                return prefix + _shown(option, arg[len(prefix):])
    return None


def masked_command(args: Sequence[str]) -> list[str]:
    """The command line as the document shows it: the values of secret options as ``***``, of
    masked ones (an access key id) as ``settings.mask`` shows them (``****`` and the last 4
    characters; ``****`` alone when the value is also a secret), every other argument through
    ``redact``. Call it once the session's secrets are registered (``register_session_secrets``)."""
    concealed = [option for option in REGISTRY.values() if option.secret or option.masked]
    flags = {option.flag: option for option in concealed}
    shown, pending = [], None
    for arg in map(str, args):
        if pending is not None:
            shown.append(_shown(pending, arg))
            pending = None
        elif arg in flags:
            shown.append(arg)
            pending = flags[arg]
        else:
            masked = _masked_arg(arg, concealed)
            shown.append(redact(arg) if masked is None else masked)
    return shown
