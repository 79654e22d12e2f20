"""The workload options, declared once for command line, ini and environment (see settings.py)."""

from __future__ import annotations

import os
from fractions import Fraction

from ..settings import Option, Settings, SettingsError, comma_list, declare, positive_int_list


def override(text: str) -> str:
    """``section.key=value``; the key and value are checked with the workload. A credential it
    sets is registered as a secret at once, before the report header shows the settings."""
    key, eq, _ = text.partition("=")
    if not eq or not key.strip().lstrip("+") or key.strip().startswith(".") or key.strip().endswith("."):
        raise ValueError("give section.key=value, such as dataset.num_files_train=8")
    from .config import register_override_credentials

    register_override_credentials(split_override(text.strip())[1])
    return text.strip()


def split_override(text: str) -> tuple[str | None, str]:
    """``unet3d_h100:dataset.num_files_train=8`` -> ("unet3d_h100", "dataset.num_files_train=8");
    an override without a workload name applies to every workload (None)."""
    key = text.partition("=")[0]
    if ":" in key:
        workload, _, rest = text.partition(":")
        return workload.strip(), rest
    return None, text


def workload_id(name: str) -> str:
    """A workload as test ids name it: a path given as a workload becomes its file name."""
    return os.path.splitext(os.path.basename(name))[0] if os.sep in name or name.endswith((".yaml", ".yml")) else name


def overrides_for(name: str, overrides: list[str]) -> list[str]:
    """The --iobench-set overrides that apply to workload ``name`` (by its name or its id)."""
    own = workload_id(name)
    return [rest for workload, rest in map(split_override, overrides) if workload in (None, name, own)]


def override_problems(overrides: list[str], names: list[str]) -> list[str]:
    """One line per --iobench-set override naming a workload the session does not run."""
    known = {n for name in names for n in (name, workload_id(name))}
    return [f"--iobench-set {text}: workload {workload!r} is not run in this session "
            f"(workloads: {', '.join(map(workload_id, names))})"
            for text in overrides for workload in [split_override(text)[0]]
            if workload is not None and workload not in known]


def scale(text: str) -> float:
    """``1/1000``, ``0.001`` or ``1``: a fraction in (0, 1]."""
    try:
        value = float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError):
        raise ValueError("give a fraction such as 1/1000 or 0.001 (1 = full size)") from None
    if not 0 < value <= 1:
        raise ValueError(f"{value:g} is not in (0, 1]; give a fraction such as 1/1000 (1 = full size)")
    return value


def directory(text: str) -> str:
    """An existing directory, as an absolute path (ranks on other hosts see the same path)."""
    path = os.path.abspath(os.path.expanduser(text.strip()))
    if not os.path.isdir(path):
        raise ValueError(f"{path} is not an existing directory; give a directory every host mounts at the same path")
    return path


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("give a number of seconds, such as 600") from None
    if value <= 0:
        raise ValueError("give a positive number of seconds, such as 600")
    return value


def settle_seconds(text: str) -> float:
    """0 or more seconds, such as 30 or 0.5."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError("give a number of seconds, 0 or more, such as 30") from None
    if not 0 <= value < float("inf"):
        raise ValueError("give a number of seconds, 0 or more, such as 30")
    return value


declare(
    Option("workload", "workloads to run: names of the shipped workloads (pytest_iobench/workloads/) "
           "or paths of DLIO workload YAML files (comma list); default: each suite's scaled-down workloads",
           parse=comma_list(), metavar="NAMES"),
    Option("set", "override a workload key, as section.key=value (repeatable), e.g. dataset.num_files_train=8; "
           "WORKLOAD:section.key=value overrides one workload only (unet3d_h100:dataset.num_files_train=8); "
           "DLIO's ++workload.section.key=value is accepted too", parse=override, multiple=True,
           metavar="KEY=VALUE"),
    Option("ranks", "rank counts (simulated accelerators) to run each workload with (comma list); "
           "1 runs in-process, more run under mpiexec", default="1", parse=positive_int_list, metavar="N,N"),
    Option("hosts", "hosts for mpiexec (comma list, passed as -hosts)", parse=comma_list(), metavar="HOSTS"),
    Option("hostfile", "a hostfile for mpiexec (passed as -f)", metavar="PATH"),
    Option("mpi-dir", "a directory every host sees at the same path, where each multi-rank run's job, rank "
           "results and progress go (required with --iobench-hosts or --iobench-hostfile); "
           "default: a local temporary directory", parse=directory, metavar="PATH"),
    Option("mpi-timeout", "seconds before a multi-rank run is ended and the ranks that did not finish are named",
           default="900", parse=seconds, metavar="SECONDS"),
    Option("settle", "seconds rank 0 waits after a dataset is generated, before the ranks read it (all ranks "
           "then pass a barrier; the wait is recorded, not counted in any figure); default: the workload's "
           "storage.post_generation_settle_seconds", parse=settle_seconds, metavar="SECONDS"),
    Option("scale", "checkpoint size scale, e.g. 1/1000 (1 = the model's full size)", default="1/1000",
           parse=scale, metavar="FRACTION"),
)


def check_mpi_settings(settings: Settings) -> None:
    """Ranks on other hosts cannot reach this host's temporary directory: a multi-host run
    needs --iobench-mpi-dir."""
    if (settings.hosts or settings.hostfile) and not settings.mpi_dir:
        given = "--iobench-hosts" if settings.hosts else "--iobench-hostfile"
        raise SettingsError(
            f"{given} is given without --iobench-mpi-dir: ranks on other hosts cannot read the job or write "
            "their results in a local temporary directory; give a directory every host mounts at the same path")
    if settings.hostfile and not os.path.isfile(settings.hostfile):
        raise SettingsError(f"--iobench-hostfile: {settings.hostfile} is not a file; give a file that lists the "
                            "hosts, one per line (host or host:slots), as mpiexec -f takes it")

