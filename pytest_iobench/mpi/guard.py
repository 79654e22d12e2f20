"""What mpiexec starts for each rank: ``python -m pytest_iobench.mpi.guard MODULE ARGS...``.

The guard runs the rank (``python -m MODULE ARGS``) as its child and, when the child ends
badly, writes how (``rank-<r>.exit``: its pid, the signal or exit code, the time) before
ending with the same status. This is how a launcher names the rank that died: MPICH's cleanup
kills every other rank at once and then reports one of them, not always the first to die. The
child dies with its guard (PR_SET_PDEATHSIG), so MPICH's cleanup, which kills the guards,
still ends every rank. Signals the guard gets (SIGTERM, SIGINT) are passed to the rank.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time

from .context import RESULT_DIR_ENV

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the rank outlives a killed guard until MPICH's cleanup reaches it


def rank_of_environment() -> int | None:
    for name in ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # close_fds=False: the rank needs the process manager's PMI socket (PMI_FD) the guard inherited
    child = subprocess.Popen([sys.executable, "-m", *argv], preexec_fn=_die_with_parent, close_fds=False)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, _frame: child.send_signal(number))
    code = child.wait()
    directory, rank = os.environ.get(RESULT_DIR_ENV), rank_of_environment()
    if code != 0 and directory and rank is not None:
        how: dict[str, int | float | str] = {"pid": child.pid, "time": time.time()}
        how.update({"signal": -code, "name": signal.Signals(-code).name} if code < 0 else {"code": code})
        try:
            with open(os.path.join(directory, f"rank-{rank}.exit"), "w") as f:
                json.dump(how, f)
        except OSError:
            pass
    if code < 0:  # end as the rank did, so mpiexec reports the same
        if -code not in (signal.SIGKILL, signal.SIGSTOP):  # those two take no handler
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main())
