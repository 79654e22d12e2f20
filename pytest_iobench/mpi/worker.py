"""What each MPI rank runs: ``python -m pytest_iobench.mpi.worker JOB.json``.

The rank reads the job, runs its part (workload/job.py) on MPI's COMM_WORLD and writes its
result where the launcher collects it, with what the rank's S3 requests met (its
``storage_ops``: the session's own counts do not see other processes). A rank that fails writes what went wrong (so the
session can name the rank and the error) and exits non-zero, which makes mpiexec end the
other ranks instead of leaving them waiting at a barrier.
"""

from __future__ import annotations

import json
import sys
import traceback

from ..storage.errors import redact
from ..storage.retry import COUNTS
from ..workload.job import run_rank
from .context import report_progress, world, write_rank_result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m pytest_iobench.mpi.worker JOB.json", file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        job = json.load(f)
    comm = world()
    rank = comm.rank
    report_progress(rank, "starting")
    before = COUNTS.snapshot()
    try:
        result = run_rank(job, comm, progress=lambda text: report_progress(rank, text))
        result["storage_ops"] = COUNTS.since(before)
    except BaseException as exc:  # reported to the session, then the whole run is ended
        message = redact(f"{type(exc).__name__}: {exc}")
        write_rank_result(rank, {"rank": rank, "error": message,
                                 "traceback": redact(traceback.format_exc(limit=8))})
        print(f"rank {rank} failed: {message}", file=sys.stderr, flush=True)
        if comm.size > 1:
            comm.abort(1)
        return 1
    write_rank_result(rank, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
