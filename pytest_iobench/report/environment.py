"""Where a run ran: the machine, the software, the git commit of the checkout."""

from __future__ import annotations

import platform
import socket
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import psutil

#: distributions whose versions a result depends on (data formats, clients, MPI, the harness)
LIBRARIES = (
    "numpy", "pyarrow", "h5py", "Pillow", "PyYAML", "crc32c", "dgen-py",
    "s3dlio", "minio", "boto3", "botocore", "moto",
    "mpi4py", "mpich", "psutil",
    "pytest", "pytest-xdist", "pytest-benchmark", "jsonschema", "matplotlib",
)


def machine() -> dict[str, Any]:
    uname = platform.uname()
    try:
        distribution = platform.freedesktop_os_release().get("PRETTY_NAME")
    except OSError:  # not Linux, or no os-release file
        distribution = None
    return {
        "hostname": socket.gethostname(),
        "os": {"system": uname.system, "release": uname.release, "version": uname.version,
               "distribution": distribution},
        "architecture": uname.machine,
        "cpu": {"model": cpu_model(), "logical_cores": psutil.cpu_count(logical=True),
                "physical_cores": psutil.cpu_count(logical=False)},
        "memory_bytes": psutil.virtual_memory().total,
    }


def cpu_model() -> str | None:
    """The CPU's model name (/proc/cpuinfo on Linux, where platform.processor() is often empty)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def software() -> dict[str, Any]:
    return {
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation()},
        "libraries": {name: installed_version(name) for name in LIBRARIES},
    }


def installed_version(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def plugin_version() -> str:
    from .. import __version__

    return __version__


def git_state(directory: str | Path) -> dict[str, Any] | None:
    """The commit, branch and dirty flag of the git checkout holding ``directory``; None outside one."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True,
                                  timeout=10, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    branch = git("rev-parse", "--abbrev-ref", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": commit,
        "branch": None if branch in (None, "HEAD") else branch,
        "dirty": None if status is None else bool(status),
    }
