"""Options, ini keys and the effective settings (``iobench_config``), checked once at start.

This module loads in every pytest run of a project where the package is installed (the
``pytest11`` entry point), so it imports only the option declarations; the start-up check
(``startup.check_startup``) and the layers' heavy modules are imported when they are used.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import pytest
from xdist import get_xdist_worker_id, is_xdist_worker

from .. import settings as settings_mod

# Importing a layer's options module declares its options.
from ..data import options as _data_options  # noqa: F401
from ..qualify import options as _qualify_options  # noqa: F401
from ..report import options as _report_options  # noqa: F401
from ..report.redaction import register_session_secrets
from ..settings import REGISTRY, Settings, SettingsError
from ..storage import options as _storage_options  # noqa: F401
from ..storage.errors import redact
from ..workload import options as _workload_options  # noqa: F401

SETTINGS_KEY = pytest.StashKey[Settings]()
#: the baseline document --iobench-compare names, read by the start-up check
BASELINE_KEY = pytest.StashKey[dict[str, Any]]()
#: the workloads the start-up check loaded, by name
WORKLOADS_KEY = pytest.StashKey[dict[str, Any]]()


class _Holder(NamedTuple):
    """What xdist's helpers read of a request or session: its config."""

    config: pytest.Config


def is_worker(config: pytest.Config) -> bool:
    """Whether this process is an xdist worker."""
    return bool(is_xdist_worker(_Holder(config)))


def worker_id(config: pytest.Config) -> str | None:
    """This xdist worker's id (gw0, ...), None in the controller or without xdist."""
    if not is_worker(config):
        return None
    return str(get_xdist_worker_id(_Holder(config)))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("iobench", "pytest-iobench: storage benchmarks for AI training")
    for option in REGISTRY.values():
        twins = f"ini {option.ini}; env {', '.join(option.env_names)}"
        default = f"; default {option.default}" if option.default is not None else ""
        group.addoption(
            option.flag,
            dest=option.dest,
            action="append" if option.multiple else "store",
            default=None,
            metavar=option.metavar,
            help=f"{option.help} [{twins}{default}]".replace("%", "%%"),  # argparse formats help with %
        )
        if option.multiple:
            parser.addini(option.ini, option.help, type="linelist", default=None)
        else:
            parser.addini(option.ini, option.help, type="string", default=None)


def resolve_settings(config: pytest.Config) -> Settings:
    cli = {name: getattr(config.option, opt.dest, None) for name, opt in REGISTRY.items()}
    ini = {name: config.getini(opt.ini) for name, opt in REGISTRY.items()}
    return settings_mod.resolve(cli, ini, os.environ)


def get_settings(config: pytest.Config) -> Settings:
    """The session's effective settings (resolved once). Their secrets are registered with
    ``redact`` here, as they are resolved: see report/redaction.py for why this is the place."""
    if SETTINGS_KEY not in config.stash:
        settings = resolve_settings(config)
        register_session_secrets(settings)
        config.stash[SETTINGS_KEY] = settings
    return config.stash[SETTINGS_KEY]


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """The one start-up check: every problem of the settings, one line each, as one usage
    error before anything runs (xdist workers take the controller's word for it)."""
    if config.option.help or config.option.version:
        return
    try:
        settings = get_settings(config)
    except SettingsError as exc:
        raise pytest.UsageError(str(exc)) from None
    if is_worker(config):
        return
    from .startup import check_startup

    found = check_startup(settings, config.invocation_params.dir)
    if found.problems:
        raise pytest.UsageError("\n".join(found.problems))
    if found.baseline is not None:
        config.stash[BASELINE_KEY] = found.baseline
    config.stash[WORKLOADS_KEY] = found.workloads


def pytest_report_header(config: pytest.Config) -> list[str]:
    try:
        shown = get_settings(config).describe()
    except SettingsError:
        return []
    # through redact: a secret another setting carries (a workload credential in --iobench-set)
    return [redact("iobench: " + "; ".join(f"{name}={value}" for name, value in shown.items()))]


@pytest.fixture(scope="session")
def iobench_config(pytestconfig: pytest.Config) -> Settings:
    """The effective iobench settings (command line > ini > environment > defaults)."""
    return get_settings(pytestconfig)
