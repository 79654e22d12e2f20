"""Launching a Python module as N ranks under ``mpiexec`` and gathering what each reported.

Each rank writes ``rank-<r>.json`` into a result directory (context.write_rank_result) and a
heartbeat, ``rank-<r>.alive`` (its pid and host), every second. The launcher waits up to
``timeout`` seconds; a rank whose heartbeat is older than ``heartbeat_bound`` (stopped, frozen,
its host gone) is declared hung well before that, and the run is ended naming it.

A rank that dies (killed, crashed) is named too. MPICH's report cannot say which: its cleanup
kills the other ranks at once and then reports one of them, not always the first to die (seen:
rank 1 killed, rank 0 reported). So each rank runs under a guard (guard.py) that writes how
its rank ended (``rank-<r>.exit``: pid, signal or exit code); the launcher names the rank that
ended badly first, with MPICH's exit string. A rank whose process is gone without a result
while mpiexec still runs (on this host, by its pid) is named the same way, and a rank that
never starts its heartbeat while the others have for ``heartbeat_bound`` as not started.
MPICH's ``mpiexec`` from PyPI sits next to the Python interpreter of the virtualenv and is
found there first.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from ..storage.errors import redact
from .context import RESULT_DIR_ENV


class MPIRunError(RuntimeError):
    """A launch did not complete on every rank; the message says which ranks and why."""


@dataclass
class LaunchResult:
    ranks: int
    #: what each rank reported (None for a rank that did not)
    results: list[dict[str, Any] | None]
    #: the last progress note of each rank ("" if none)
    progress: list[str]
    returncode: int | None
    timed_out: bool
    duration: float
    output_tail: str = ""
    command: list[str] = field(default_factory=list)
    #: ranks declared hung: rank -> why (no heartbeat for longer than the bound)
    hung: dict[int, str] = field(default_factory=dict)
    #: ranks that died, from MPICH's bad-termination report: rank -> how
    died: dict[int, str] = field(default_factory=dict)

    @property
    def missing(self) -> list[int]:
        return [r for r, res in enumerate(self.results) if res is None]

    @property
    def ok(self) -> bool:
        return not self.timed_out and self.returncode == 0 and not self.missing

    def check(self) -> list[dict[str, Any]]:
        """The per-rank results, or MPIRunError naming the ranks that did not finish."""
        if self.ok:  # no rank is missing: every result is there
            return [result for result in self.results if result is not None]
        missing = ", ".join(
            f"{r} (last at: {self.progress[r]})" if self.progress[r] else str(r) for r in self.missing
        ) or "none"
        if self.hung:
            why = ("ended: " + "; ".join(f"rank {r} hung: {text}" for r, text in sorted(self.hung.items()))
                   + f"; ranks that did not finish: {missing}")
        elif self.died:
            why = ("ended: " + "; ".join(f"rank {r} died: {text}" for r, text in sorted(self.died.items()))
                   + f" (mpiexec exited with code {self.returncode} and ended the other ranks)")
        elif self.timed_out:
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


GUARD = "pytest_iobench.mpi.guard"
#: seconds without a heartbeat after which a rank is declared hung (its heartbeat thread
#: writes every second: 30 misses are no scheduling hiccup, even on a loaded host)
HEARTBEAT_BOUND = 30.0
#: how often the launcher looks at the heartbeats
WATCH_SECONDS = 0.5


def launch(module: str, args: list[str], ranks: int, *, env: dict[str, str] | None = None,
           timeout: float | None = None, hosts: list[str] | None = None, hostfile: str | None = None,
           workdir: str | None = None, heartbeat_bound: float = HEARTBEAT_BOUND) -> LaunchResult:
    """Run ``python -m module args`` as ``ranks`` MPI ranks; wait up to ``timeout`` seconds, and
    end the run as soon as a rank's heartbeat is older than ``heartbeat_bound``."""
    if ranks < 1:
        raise ValueError(f"ranks must be >= 1, not {ranks}")
    own_dir = workdir is None
    result_dir = workdir if workdir is not None else tempfile.mkdtemp(prefix="iobench-ranks-")
    os.makedirs(result_dir, exist_ok=True)
    # each rank under its guard, which records how the rank ended (see the module's docstring)
    command = mpiexec_command(ranks, [sys.executable, "-m", GUARD, module, *args], hosts, hostfile)
    child_env = {**os.environ, **(env or {}), RESULT_DIR_ENV: result_dir, "PYTHONUNBUFFERED": "1"}
    output = tempfile.TemporaryFile(mode="w+b")
    start = time.monotonic()
    process = subprocess.Popen(command, env=child_env, stdout=output, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    timed_out = False
    hung: dict[int, str] = {}
    died: dict[int, str] = {}
    try:
        while True:
            try:
                returncode = process.wait(timeout=WATCH_SECONDS)
                break
            except subprocess.TimeoutExpired:
                pass
            died = _gone_ranks(result_dir, ranks)
            hung = {} if died else _silent_ranks(result_dir, ranks, heartbeat_bound)
            if died or hung or (timeout is not None and time.monotonic() - start > timeout):
                timed_out = not (died or hung)
                _end_group(process)
                returncode = process.returncode
                break
    except BaseException:  # an interrupt: the ranks run in a session of their own, end them too
        _end_group(process)
        output.close()
        if own_dir:
            shutil.rmtree(result_dir, ignore_errors=True)
        raise
    duration = time.monotonic() - start
    results = [_read_rank(result_dir, r) for r in range(ranks)]
    progress = [_read_progress(result_dir, r) for r in range(ranks)]
    output.seek(0, os.SEEK_END)
    output.seek(max(0, output.tell() - 4000))
    tail = redact(output.read().decode("utf-8", "replace")).strip()
    output.close()
    for rank, text in hung.items():
        if progress[rank]:
            hung[rank] = f"{text}; last at: {progress[rank]}"
    if not (hung or timed_out) and (died or returncode not in (0, None)):
        # the guards' records say which rank ended first: by the time the launcher looked,
        # MPICH's cleanup may have killed the others too
        died = _ended_badly(result_dir, ranks) or died
    exit_string = _EXIT_STRING.search(tail)
    for rank, text in died.items():
        died[rank] = text + (f"; MPICH: {exit_string.group(1).strip()}" if exit_string else "") + (
            f"; last at: {progress[rank]}" if progress[rank] else "")
    if own_dir:
        shutil.rmtree(result_dir, ignore_errors=True)
    return LaunchResult(ranks, results, progress, returncode, timed_out, duration, tail, command, hung, died)


def _read_heartbeat(directory: str, rank: int) -> dict[str, Any] | None:
    try:
        with open(os.path.join(directory, f"rank-{rank}.alive")) as f:
            beat = json.load(f)
        return beat if isinstance(beat, dict) else None
    except (OSError, ValueError):
        return None


def _reported(directory: str, rank: int) -> bool:
    return os.path.exists(os.path.join(directory, f"rank-{rank}.json"))


def _gone_ranks(directory: str, ranks: int) -> dict[int, str]:
    """Ranks on this host whose process is gone without having reported."""
    here = socket.gethostname()
    gone = {}
    for rank in range(ranks):
        beat = _read_heartbeat(directory, rank)
        if beat is None or beat.get("host") != here or _reported(directory, rank):
            continue
        pid = int(beat.get("pid", 0))
        if pid and not _alive(pid):
            gone[rank] = f"pid {pid} on {here} is gone without reporting (killed, or it crashed)"
    return gone


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by MPICH's proxy, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _silent_ranks(directory: str, ranks: int, bound: float) -> dict[int, str]:
    """Ranks whose last heartbeat is older than ``bound``, unless they have reported; and ranks
    with no heartbeat yet ``bound`` seconds after another rank's first (they never started)."""
    now = time.time()
    silent = {}
    beats = {rank: _read_heartbeat(directory, rank) for rank in range(ranks)}
    started = [b for b in beats.values() if b]
    first = min((float(b.get("first", b.get("time", now))) for b in started), default=None)
    for rank, beat in beats.items():
        if _reported(directory, rank):
            continue
        if beat is None:
            if first is not None and now - first > bound:
                silent[rank] = (f"it never started (no heartbeat {now - first:.0f} s after the first rank's; "
                                f"the bound is {bound:.0f} s)")
            continue
        age = now - float(beat.get("time", now))
        if age > bound:
            silent[rank] = (f"pid {beat.get('pid')} on {beat.get('host')} sent no heartbeat for {age:.0f} s "
                            f"(the bound is {bound:.0f} s; stopped, frozen, or its host is gone)")
    return silent


_EXIT_STRING = re.compile(r"EXIT STRING: ([^\n]+)")


def _ended_badly(directory: str, ranks: int) -> dict[int, str]:
    """The rank whose guard recorded the earliest bad end (the others were ended by MPICH's
    cleanup after it, or ended badly later), as its guard saw it."""
    ends = {}
    for rank in range(ranks):
        try:
            with open(os.path.join(directory, f"rank-{rank}.exit")) as f:
                ends[rank] = json.load(f)
        except (OSError, ValueError):
            continue
    if not ends:
        return {}
    rank = min(ends, key=lambda r: ends[r].get("time", 0))
    end = ends[rank]
    how = f"killed by {end['name']}" if "signal" in end else f"exited with code {end.get('code')}"
    return {rank: f"pid {end.get('pid')} {how}"}
def _end_group(process: subprocess.Popen[bytes]) -> None:
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


def _read_rank(directory: str, rank: int) -> dict[str, Any] | None:
    try:
        with open(os.path.join(directory, f"rank-{rank}.json")) as f:
            result: dict[str, Any] = json.load(f)  # write_rank_result wrote a dict
            return result
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _read_progress(directory: str, rank: int) -> str:
    try:
        with open(os.path.join(directory, f"rank-{rank}.progress")) as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""
