"""Effective settings: every ``--iobench-*`` option, its ini twin and its environment twin.

Each option is declared once as an ``Option``; the plugin turns the declarations into
command-line options and ini keys, and ``resolve`` picks each value by precedence:
command line > ini file > environment > default. A value that does not parse raises
``SettingsError`` with one line naming the option, the bad value and what is valid.

This module does not import pytest: MPI ranks and the report command resolve the same
settings without a pytest session.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit


class SettingsError(ValueError):
    """A setting has a value that cannot be used. The message is one line for the user."""


class HiddenValueError(ValueError):
    """A value that does not parse and must not be echoed as given (it holds a credential):
    ``shown`` is what the error message prints instead."""

    def __init__(self, message: str, shown: str):
        super().__init__(message)
        self.shown = shown


@dataclass(frozen=True)
class Option:
    """One ``--iobench-<name>`` option with its ini key ``iobench_<name>``."""

    name: str  # "s3-endpoint"
    help: str
    default: str | None = None
    #: environment variables consulted, first set wins (IOBENCH_<NAME> is always first)
    env: tuple[str, ...] = ()
    #: turns the raw string into the value; raises ValueError with the "what is valid" text
    parse: Callable[[str], Any] = str
    secret: bool = False
    #: shown with only its last 4 characters, as the AWS CLI shows an access key id: not a
    #: secret, but not for every log either
    masked: bool = False
    #: repeatable on the command line (values accumulate); ini value is one per line
    multiple: bool = False
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return f"--iobench-{self.name}"

    @property
    def ini(self) -> str:
        return "iobench_" + self.name.replace("-", "_")

    @property
    def dest(self) -> str:
        return self.ini

    @property
    def env_names(self) -> tuple[str, ...]:
        return ("IOBENCH_" + self.name.replace("-", "_").upper(), *self.env)


#: every declared option, in declaration order (the --help order)
REGISTRY: dict[str, Option] = {}


def declare(*options: Option) -> None:
    for option in options:
        REGISTRY[option.name] = option


class Settings:
    """The resolved value of every declared option, and where each value came from.

    Each option is an attribute named as the option with ``_`` for ``-``
    (``settings.generate_size``), typed below; the object is frozen once ``resolve`` built it.
    ``values`` and ``sources`` map option names to the same values and to where each came from
    ("command line", "ini iobench_...", "env ...", "default"). An option declared without an
    annotation here is still an attribute (tests/test_settings_typed.py asks for one).
    """

    # storage layer
    storage: list[str]
    libraries: list[str] | None
    threads: list[int]
    root: str | None
    s3_endpoint: str | None
    ais_endpoint: str | None
    bucket: str | None
    s3_region: str
    s3_access_key: str | None
    s3_secret_key: str | None
    op_timeout: float
    retries: int
    backoff: float
    # data layer
    formats: list[str]
    generate_size: int | None  # None: auto, the suite picks the size for the storage
    quick: bool
    generate_threads: int
    regenerate: bool
    adopt: bool
    verify: str
    on_corrupt: str
    # report layer (thresholds' Percentage and Override: a type of a layer below this module)
    json: str | None
    report: tuple[str, ...]
    repeat: int
    warmup: int
    compare: str | None
    fail_regression: Any
    fail_missing: bool
    fail_regression_overrides: list[Any]
    confirm: int
    latency_rounds: int
    object_sizes: tuple[int, ...]
    throughput_bytes: int | None  # None: auto
    # workload and mpi layers
    workload: list[str] | None
    set: list[str]
    ranks: list[int]
    hosts: list[str] | None
    hostfile: str | None
    mpi_dir: str | None
    mpi_timeout: float
    settle: float | None
    scale: float
    # qualification (qualify.options.Accelerators: a type of a layer above this module)
    accelerators: Any
    host_memory: float | None  # GiB; None: this host's

    values: Mapping[str, Any]
    sources: Mapping[str, str]

    def __init__(self, values: Mapping[str, Any] | None = None, sources: Mapping[str, str] | None = None) -> None:
        values = dict(values or {})
        object.__setattr__(self, "values", MappingProxyType(values))
        object.__setattr__(self, "sources", MappingProxyType(dict(sources or {})))
        for name, value in values.items():
            object.__setattr__(self, attribute_name(name), value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"iobench settings are frozen: {name} cannot be set")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"iobench settings are frozen: {name} cannot be deleted")

    def __repr__(self) -> str:
        return f"Settings({dict(self.describe())!r})"

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def describe(self) -> dict[str, str]:
        """Printable settings: secrets as ``***``, masked ones as ``****`` and their last 4
        characters, unset ones left out."""
        secrets = {str(v) for n, v in self.values.items() if v and n in REGISTRY and REGISTRY[n].secret}
        shown = {}
        for name, value in self.values.items():
            if value is None or value == [] or value == ():
                continue
            option = REGISTRY.get(name)
            if option is not None and (option.secret or option.masked):
                text = hidden(option, str(value), str(value) in secrets)
            elif isinstance(value, (list, tuple)):
                text = ",".join(str(v) for v in value)
            else:
                text = str(value)
            shown[name] = f"{text} ({self.sources.get(name, 'default')})"
        return shown


def resolve(
    cli: Mapping[str, Any],
    ini: Mapping[str, Any],
    environ: Mapping[str, str],
) -> Settings:
    """Resolve every declared option. ``cli``/``ini`` map option names to raw values or None."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, option in REGISTRY.items():
        raw, source = _pick(option, cli.get(name), ini.get(name), environ)
        try:
            value = _parse(option, raw)
        except ValueError as exc:
            if option.secret:
                shown = "***"
            elif isinstance(exc, HiddenValueError):
                shown = repr(exc.shown)
            elif option.masked:
                shown = repr(mask(str(raw)))
            else:
                shown = repr(raw)
            raise SettingsError(f"{option.flag} ({source}): {shown} is not valid: {exc}") from None
        values[name] = value
        sources[name] = source
    return Settings(values, sources)


def attribute_name(option_name: str) -> str:
    """The ``Settings`` attribute of an option: ``generate-size`` -> ``generate_size``."""
    return option_name.replace("-", "_")


def _pick(option: Option, cli_value: Any, ini_value: Any, environ: Mapping[str, str]) -> tuple[Any, str]:
    if cli_value == "" and option.default is not None and option.parse is not str:
        # given empty on the command line (--iobench-storage=): the option's own error, not its
        # default silently; an option with no default given empty is unset
        return cli_value, "command line"
    if cli_value not in (None, [], ""):
        return cli_value, "command line"
    if ini_value not in (None, [], ""):
        return ini_value, f"ini {option.ini}"
    for env_name in option.env_names:
        if environ.get(env_name):
            return environ[env_name], f"env {env_name}"
    return option.default, "default"


def _parse(option: Option, raw: Any) -> Any:
    if option.multiple:
        if raw is None:
            return []
        items = raw if isinstance(raw, list) else [line for line in str(raw).splitlines()]
        return [option.parse(item.strip()) for item in items if item.strip()]
    if raw is None:
        return None
    return option.parse(str(raw).strip())


# -- parsers shared by options --------------------------------------------------------------
def comma_list(valid: tuple[str, ...] | None = None) -> Callable[[str], list[str]]:
    """Parse ``a,b,c``; with ``valid``, every item must be one of them."""

    def parse(text: str) -> list[str]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        if not items:
            raise ValueError("give at least one value" + (f" of: {', '.join(valid)}" if valid else ""))
        if valid is not None:
            for item in items:
                if item not in valid:
                    raise ValueError(f"unknown value {item!r}; valid: {', '.join(valid)}")
        return list(dict.fromkeys(items))

    return parse


def one_of(valid: tuple[str, ...]) -> Callable[[str], str]:
    """Parse one of ``valid`` (any case)."""

    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in valid:
            raise ValueError(f"give one of: {', '.join(valid)}")
        return value

    return parse


def boolean(text: str) -> bool:
    """Parse ``true``/``false`` (also 1/0, yes/no, on/off, any case)."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("give true or false (also 1/0, yes/no, on/off)")


def positive_int_list(text: str) -> list[int]:
    """Parse ``1,4,8``: positive whole numbers."""
    values = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            number = int(item)
        except ValueError:
            raise ValueError(f"{item!r} is not a whole number; give positive whole numbers such as 1,4") from None
        if number < 1:
            raise ValueError(f"{number} is not positive; give positive whole numbers such as 1,4")
        values.append(number)
    if not values:
        raise ValueError("give at least one positive whole number, such as 1,4")
    return list(dict.fromkeys(values))


def positive_int(text: str) -> int:
    values = positive_int_list(text)
    if len(values) != 1 or "," in text:
        raise ValueError("give one positive whole number")
    return values[0]


def positive_seconds(text: str) -> float:
    """A positive number of seconds, such as 30 or 0.5."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError("give a number of seconds, such as 120") from None
    if not value > 0 or value == float("inf"):
        raise ValueError("give a positive, finite number of seconds, such as 120")
    return value


def hidden(option: Option, text: str, is_secret: bool) -> str:
    """How the value ``text`` of a secret or masked option is shown: a secret as ``***``, a
    masked one as ``mask(text)``, or as ``****`` alone where the value is also a secret (the
    last characters of a key id that is also the secret key, as minioadmin is, would be the
    secret's)."""
    if option.secret:
        return "***"
    return "****" if is_secret else mask(text)


def mask(text: str) -> str:
    """``****`` and the last 4 characters, as the AWS CLI shows an access key id; only
    ``****`` for a value too short to hide anything by that."""
    return "****" + text[-4:] if len(text) > 8 else "****"


_URL_EXAMPLE = "give an http:// or https:// URL, such as http://127.0.0.1:9000"


def urls(text: str) -> str:
    """One S3 endpoint URL, or several gateways of the same store comma-separated
    (``http://a:9000,http://b:9000``); each is checked as ``url`` checks it."""
    items = [item.strip() for item in text.split(",")]
    if len(items) > 1 and not all(items):
        raise ValueError("an empty endpoint in the list; give URLs separated by commas, such as "
                         "http://a:9000,http://b:9000")
    out = []
    for item in items:
        try:
            out.append(url(item))
        except HiddenValueError:
            raise
        except ValueError as exc:
            raise ValueError(f"{item!r}: {exc}" if len(items) > 1 else str(exc)) from None
    if len(set(out)) != len(out):
        raise ValueError("an endpoint is named twice; name each gateway once")
    return ",".join(out)


def url(text: str) -> str:
    """An S3 endpoint URL: http(s)://host[:port][/path prefix], nothing else (checked here so
    that no client library meets a URL it cannot take; minio, which cannot take a path, is
    refused or skipped by the storage plan)."""
    scheme, _, rest = text.partition("://")
    if scheme not in ("http", "https") or not rest:
        raise ValueError(_URL_EXAMPLE)
    netloc = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if "@" in netloc:
        hidden = f"{scheme}://***@{text.split('@', 1)[1]}"
        raise HiddenValueError(
            "credentials do not belong in the endpoint URL (the URL is printed in the report "
            "header); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead", hidden)
    try:
        parts = urlsplit(text)
    except ValueError:  # urlsplit refuses only an unclosed IPv6 bracket here
        raise ValueError(f"the IPv6 host has no closing ']'; {_URL_EXAMPLE}") from None
    if not parts.hostname:
        raise ValueError(f"no host; {_URL_EXAMPLE}")
    host_port = netloc[netloc.index("]") + 1:] if netloc.startswith("[") else netloc
    port_text = host_port.rpartition(":")[2] if ":" in host_port else ""
    if ":" in host_port and not (port_text.isdigit() and 1 <= int(port_text) <= 65535):
        raise ValueError(f"the port {port_text!r} is not a number from 1 to 65535; {_URL_EXAMPLE}")
    if parts.query or parts.fragment:
        raise ValueError(f"an endpoint is a scheme, a host, a port and a path prefix (such as AIStore's "
                         f"/s3), with no query or fragment; {_URL_EXAMPLE}")
    if "//" in parts.path:
        raise ValueError(f"the path prefix {parts.path!r} has an empty segment; {_URL_EXAMPLE}")
    return text.rstrip("/")
