"""Launching a Python module as N ranks under ``mpiexec`` and gathering what each reported.

Each rank writes ``rank-<r>.json`` into a result directory (context.write_rank_result). The
launcher waits up to ``timeout`` seconds; on timeout it ends the whole process group and
names the ranks that did not report. MPICH's ``mpiexec`` from PyPI sits next to the Python
interpreter of the virtualenv and is found there first.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from ..storage.errors import redact
from .context import RESULT_DIR_ENV


class MPIRunError(RuntimeError):
    """A launch did not complete on every rank; the message says which ranks and why."""


@dataclass
class LaunchResult:
    ranks: int
    #: what each rank reported (None for a rank that did not)
    results: list[dict | None]
    #: the last progress note of each rank ("" if none)
    progress: list[str]
    returncode: int | None
    timed_out: bool
    duration: float
    output_tail: str = ""
    command: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[int]:
        return [r for r, res in enumerate(self.results) if res is None]

    @property
    def ok(self) -> bool:
        return not self.timed_out and self.returncode == 0 and not self.missing

    def check(self) -> list[dict]:
        """The per-rank results, or MPIRunError naming the ranks that did not finish."""
        if self.ok:
            return self.results  # type: ignore[return-value]
        missing = ", ".join(
            f"{r} (last at: {self.progress[r]})" if self.progress[r] else str(r) for r in self.missing
        ) or "none"
        if self.timed_out:
            why = f"timed out after {self.duration:.0f} s; ranks that did not finish: {missing}"
        else:
            why = f"mpiexec exited with code {self.returncode}; ranks that did not report: {missing}"
        tail = f"\n--- last output ---\n{self.output_tail}" if self.output_tail else ""
        raise MPIRunError(f"{self.ranks}-rank run {why}{tail}")


def find_mpiexec() -> str:
    """mpiexec of this virtualenv (PyPI's mpich), else the first on PATH."""
    local = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.access(local, os.X_OK):
        return local
    found = shutil.which("mpiexec")
    if not found:
        raise MPIRunError("mpiexec not found: install MPICH (pip install mpich) or put mpiexec on PATH")
    return found


def mpiexec_command(ranks: int, argv: list[str], hosts: list[str] | None = None,
                    hostfile: str | None = None) -> list[str]:
    command = [find_mpiexec(), "-n", str(ranks)]
    if hostfile:
        command += ["-f", hostfile]
    elif hosts:
        command += ["-hosts", ",".join(hosts)]
    return command + argv


def launch(module: str, args: list[str], ranks: int, *, env: dict[str, str] | None = None,
           timeout: float | None = None, hosts: list[str] | None = None, hostfile: str | None = None,
           workdir: str | None = None) -> LaunchResult:
    """Run ``python -m module args`` as ``ranks`` MPI ranks; wait up to ``timeout`` seconds."""
    if ranks < 1:
        raise ValueError(f"ranks must be >= 1, not {ranks}")
    own_dir = workdir is None
    result_dir = tempfile.mkdtemp(prefix="iobench-ranks-") if own_dir else workdir
    os.makedirs(result_dir, exist_ok=True)
    command = mpiexec_command(ranks, [sys.executable, "-m", module, *args], hosts, hostfile)
    child_env = {**os.environ, **(env or {}), RESULT_DIR_ENV: result_dir, "PYTHONUNBUFFERED": "1"}
    output = tempfile.TemporaryFile(mode="w+b")
    start = time.monotonic()
    process = subprocess.Popen(command, env=child_env, stdout=output, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    timed_out = False
    try:
        returncode = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _end_group(process)
        returncode = process.returncode
    duration = time.monotonic() - start
    results = [_read_rank(result_dir, r) for r in range(ranks)]
    progress = [_read_progress(result_dir, r) for r in range(ranks)]
    output.seek(0, os.SEEK_END)
    output.seek(max(0, output.tell() - 4000))
    tail = redact(output.read().decode("utf-8", "replace")).strip()
    output.close()
    if own_dir:
        shutil.rmtree(result_dir, ignore_errors=True)
    return LaunchResult(ranks, results, progress, returncode, timed_out, duration, tail, command)


def _end_group(process: subprocess.Popen) -> None:
    for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _read_rank(directory: str, rank: int) -> dict | None:
    try:
        with open(os.path.join(directory, f"rank-{rank}.json")) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _read_progress(directory: str, rank: int) -> str:
    try:
        with open(os.path.join(directory, f"rank-{rank}.progress")) as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""
