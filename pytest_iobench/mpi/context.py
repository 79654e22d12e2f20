"""The communicator a rank sees: MPI's COMM_WORLD under mpiexec, a single rank otherwise.

mpi4py is imported only under mpiexec (PMI_RANK/PMI_SIZE set by the process manager), so
that a single in-process rank needs no MPI runtime. A rank reports its result by writing
``rank-<r>.json`` into ``$IOBENCH_RESULT_DIR`` (see launch.py): the launcher learns which
ranks finished from the files, even when others hang or crash.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import time
from typing import Any

RESULT_DIR_ENV = "IOBENCH_RESULT_DIR"

#: a rank waiting at a barrier polls, yielding the CPU between polls, for this long (ranks
#: of a data-parallel step arrive within the jitter of their compute sleeps: tens to hundreds
#: of microseconds), then sleeps this long between polls (a rank that waits longer waits for
#: a genuinely slower one, and a sleep's granularity is small against that wait)
SPIN_SECONDS = 1e-3
POLL_SECONDS = 50e-6


def under_mpiexec() -> bool:
    return "PMI_RANK" in os.environ or "PMI_SIZE" in os.environ or "OMPI_COMM_WORLD_RANK" in os.environ


class SingleRank:
    """Rank 0 of 1: the in-process stand-in for a communicator."""

    rank = 0
    size = 1

    def barrier(self) -> None:
        pass

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return obj

    def gather(self, obj: Any, root: int = 0) -> list[Any]:
        return [obj]

    def allgather(self, obj: Any) -> list[Any]:
        return [obj]

    def allreduce_max(self, value: float) -> float:
        return value

    def allreduce_sum(self, value: float) -> float:
        return value

    def abort(self, code: int = 1) -> None:
        raise SystemExit(code)


class MPIRanks:
    """COMM_WORLD through mpi4py, with the few collectives the workloads use."""

    def __init__(self) -> None:
        from mpi4py import MPI

        self._mpi = MPI
        self.comm = MPI.COMM_WORLD
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()

    def barrier(self) -> None:
        """Wait for every rank, cheaply and without starving this rank's reader threads.

        MPI's own Barrier busy-polls in C for the whole wait: it takes a core from the reader
        threads (on a 2-core host with 2 ranks, half the machine) while a fast rank waits for
        a slow one. Sleeping between polls leaves the CPU free but costs each step a sleep's
        granularity (~100 us here: a 2-rank barrier cost 200 us instead of 3). So: poll the
        non-blocking barrier with sched_yield between polls (which gives the core to any
        runnable thread, and the GIL to a reader that wants it: both calls release it) for up
        to SPIN_SECONDS, then sleep POLL_SECONDS between polls."""
        request = self.comm.Ibarrier()
        if request.Test():
            return
        deadline = time.perf_counter() + SPIN_SECONDS
        while not request.Test():
            if time.perf_counter() < deadline:
                os.sched_yield()
            else:
                time.sleep(POLL_SECONDS)

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return self.comm.bcast(obj, root=root)

    def gather(self, obj: Any, root: int = 0) -> list[Any] | None:
        return self.comm.gather(obj, root=root)

    def allgather(self, obj: Any) -> list[Any]:
        return self.comm.allgather(obj)

    def allreduce_max(self, value: float) -> float:
        reduced: float = self.comm.allreduce(value, op=self._mpi.MAX)  # mpi4py types it Any
        return reduced

    def allreduce_sum(self, value: float) -> float:
        reduced: float = self.comm.allreduce(value, op=self._mpi.SUM)
        return reduced

    def abort(self, code: int = 1) -> None:
        """End every rank now: a failed rank must not leave the others waiting at a barrier
        (a plain exit would wait in MPI_Finalize for them, and they for it)."""
        self.comm.Abort(code)


_world: SingleRank | MPIRanks | None = None


def world() -> SingleRank | MPIRanks:
    """The communicator of this process (created once). A rank under a launcher starts its
    heartbeat here."""
    global _world
    if _world is None:
        _world = MPIRanks() if under_mpiexec() else SingleRank()
        if isinstance(_world, MPIRanks):
            start_heartbeat(_world.rank)
    return _world


#: how often a rank says it is alive (``rank-<r>.alive``: its pid, host and the time)
HEARTBEAT_SECONDS = 1.0


def start_heartbeat(rank: int, directory: str | None = None, every: float = HEARTBEAT_SECONDS) -> bool:
    """Write this rank's heartbeat every ``every`` seconds from a daemon thread, so the launcher
    can tell a stopped or frozen rank (no heartbeat) from a slow one, and map the pid MPICH
    names on a bad termination to the rank. False when there is no result directory."""
    directory = directory or os.environ.get(RESULT_DIR_ENV)
    if not directory:
        return False
    path = os.path.join(directory, f"rank-{rank}.alive")
    host = socket.gethostname()

    first = time.time()

    def beat() -> None:
        while True:
            try:
                tmp = f"{path}.{os.getpid()}.tmp"
                with open(tmp, "w") as f:
                    json.dump({"pid": os.getpid(), "host": host, "time": time.time(), "first": first}, f)
                os.replace(tmp, path)
            except OSError:
                pass  # the launcher's directory is gone: the run is over
            time.sleep(every)

    threading.Thread(target=beat, name=f"iobench-heartbeat-{rank}", daemon=True).start()
    return True


def write_rank_result(rank: int, data: dict[str, Any], directory: str | None = None) -> str | None:
    """Write this rank's result where the launcher looks for it; atomically (temp + rename).

    Returns the path, or None when no result directory is set (an in-process run)."""
    directory = directory or os.environ.get(RESULT_DIR_ENV)
    if not directory:
        return None
    fd, tmp = tempfile.mkstemp(prefix=f".rank-{rank}-", dir=directory)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    path = os.path.join(directory, f"rank-{rank}.json")
    os.replace(tmp, path)
    return path


def report_progress(rank: int, text: str, directory: str | None = None) -> None:
    """Note where this rank is (``epoch 2 step 17``), so a timeout can say where each rank
    stopped. Cheap enough to call once per step: one small overwrite."""
    directory = directory or os.environ.get(RESULT_DIR_ENV)
    if not directory:
        return
    path = os.path.join(directory, f"rank-{rank}.progress")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
