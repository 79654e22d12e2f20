"""Options, ini keys and the effective settings (``iobench_config``), checked at start."""

from __future__ import annotations

import os

import pytest

from .. import settings as settings_mod

# Importing a layer's options module declares its options.
from ..data import options as _data_options  # noqa: F401
from ..report import options as _report_options  # noqa: F401
from ..report.options import check_output
from ..settings import REGISTRY, Settings, SettingsError
from ..storage import options as _storage_options  # noqa: F401
from ..storage.endpoint import EndpointError
from ..storage.errors import redact
from ..storage.factory import check_settings
from ..workload import options as _workload_options  # noqa: F401

SETTINGS_KEY = pytest.StashKey[Settings]()


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
        parser.addini(option.ini, option.help, type="linelist" if option.multiple else "string", default=None)


def resolve_settings(config: pytest.Config) -> Settings:
    cli = {name: getattr(config.option, opt.dest, None) for name, opt in REGISTRY.items()}
    ini = {name: config.getini(opt.ini) for name, opt in REGISTRY.items()}
    return settings_mod.resolve(cli, ini, os.environ)


def get_settings(config: pytest.Config) -> Settings:
    """The session's effective settings (resolved once)."""
    if SETTINGS_KEY not in config.stash:
        config.stash[SETTINGS_KEY] = resolve_settings(config)
    return config.stash[SETTINGS_KEY]


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config):
    """Check every setting before anything runs: a wrong one is one line, not a traceback."""
    if config.option.help or config.option.version:
        return None
    try:
        settings = get_settings(config)
        if not hasattr(config, "workerinput"):  # the controller checked already
            check_settings(settings)
            check_output(settings, str(config.invocation_params.dir))
    except (SettingsError, EndpointError) as exc:
        raise pytest.UsageError(str(exc)) from None
    return None


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
