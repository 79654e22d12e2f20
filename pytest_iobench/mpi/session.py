"""Running a job as N ranks and collecting every rank's result.

    session = MPISession(env=storage_factory.environ(), timeout=600)
    run = session.run(job, ranks=2)        # mpiexec -n 2 python -m pytest_iobench.mpi.worker
    run.results                            # one result per rank, in rank order

One rank runs in this process, without MPI, unless ``mpi_for_one`` is set. A rank that fails
raises ``RankFailed`` naming the rank and its error; a run that hangs is ended after
``timeout`` seconds with ``MPIRunError`` naming the ranks that did not finish and the step
each one was at. Credentials reach the ranks through the environment (``env``), never argv.
The job, the ranks' results and their progress notes go through a directory under
``shared_dir`` (every host must see it at the same path; default: a local temporary one).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..storage import Storage
from ..workload.job import run_rank
from .context import SingleRank
from .launch import MPIRunError, launch

WORKER = "pytest_iobench.mpi.worker"


class RankFailed(MPIRunError):
    """A rank raised an error; the message names the rank and the error."""

    def __init__(self, message: str, errors: dict[int, str]):
        super().__init__(message)
        self.errors = errors


@dataclass
class SessionRun:
    ranks: int
    results: list[dict[str, Any]]
    duration: float
    in_process: bool
    command: list[str] = field(default_factory=list)
    #: the directory the job and the ranks' results went through (removed after the run)
    exchange_dir: str = ""


class MPISession:
    def __init__(self, *, env: dict[str, str] | Callable[[], dict[str, str]] | None = None,
                 hosts: list[str] | None = None, hostfile: str | None = None, timeout: float = 600.0,
                 mpi_for_one: bool = False, shared_dir: str | None = None):
        #: the ranks' extra environment, or a callable giving it at launch time (an S3
        #: endpoint started later in the session)
        self.env = env
        self.hosts = list(hosts or [])
        self.hostfile = hostfile
        self.timeout = timeout
        self.mpi_for_one = mpi_for_one
        self.shared_dir = shared_dir
        #: called with rank 0's progress notes ("epoch 2 step 40/125") while a run goes on
        self.progress: Callable[[str], None] | None = None

    @contextlib.contextmanager
    def reporting(self, progress: Callable[[str], None] | None) -> Iterator[MPISession]:
        """Runs inside the block hand rank 0's progress notes to ``progress``."""
        before, self.progress = self.progress, progress
        try:
            yield self
        finally:
            self.progress = before

    def _watch(self, workdir: str, done: threading.Event) -> None:
        """Passes rank 0's progress file on when it changes (the ranks write it; launch.py)."""
        path, last = os.path.join(workdir, "rank-0.progress"), ""
        finished = False
        while not finished:
            # one last read once the run is done: a run shorter than a poll still shows its note
            finished = done.wait(0.5)
            try:
                with open(path) as f:
                    text = f.read().strip()
            except OSError:
                continue
            if text and text != last and self.progress is not None:
                last = text
                try:
                    self.progress(text)
                except Exception:  # a broken reporter must not break the run
                    pass

    def run(self, job: dict[str, Any], ranks: int, *, storage: Storage | None = None) -> SessionRun:
        """Run ``job`` on ``ranks`` ranks. ``storage`` is used by an in-process single rank
        instead of opening the job's storage spec again."""
        if ranks < 1:
            raise ValueError(f"ranks must be >= 1, not {ranks}")
        env = self.env() if callable(self.env) else dict(self.env or {})
        if ranks == 1 and not self.mpi_for_one:
            start = time.monotonic()
            result = run_rank(job, SingleRank(), progress=self.progress, storage=storage, environ={**os.environ, **env})
            return SessionRun(1, [result], time.monotonic() - start, True)
        workdir = tempfile.mkdtemp(prefix="iobench-session-", dir=self.shared_dir)
        try:
            job_path = os.path.join(workdir, "job.json")
            with open(job_path, "w") as f:
                json.dump(job, f)
            done = threading.Event()
            watcher = None
            if self.progress is not None:
                watcher = threading.Thread(target=self._watch, args=(workdir, done), name="iobench-mpi-progress",
                                           daemon=True)
                watcher.start()
            try:
                launched = launch(WORKER, [job_path], ranks, env=env, timeout=self.timeout,
                                  hosts=self.hosts or None, hostfile=self.hostfile, workdir=workdir)
            finally:
                done.set()
                if watcher is not None:
                    watcher.join()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        errors = {r: res["error"] for r, res in enumerate(launched.results) if res and "error" in res}
        if errors:
            first = min(errors)
            others = "" if len(errors) == 1 else f" (ranks {', '.join(map(str, sorted(errors)))} failed)"
            raise RankFailed(f"rank {first} of {ranks} failed: {errors[first]}{others}", errors)
        results = launched.check()
        return SessionRun(ranks, results, launched.duration, False, launched.command, workdir)
