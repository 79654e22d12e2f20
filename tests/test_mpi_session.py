"""MPI sessions: N ranks under mpiexec, a hung run ended with the ranks named and where each
was, a failed rank named with its error, hosts and hostfile passed to mpiexec with the job and
results exchanged in a shared directory (required with them), credentials kept out of the
command line."""

from __future__ import annotations

import os
import statistics
import sys
import time

import pytest
from test_workload_support import HERE, RAW_OPENER, write_raw_dataset

from pytest_iobench.mpi import context
from pytest_iobench.mpi.launch import MPIRunError, launch
from pytest_iobench.mpi.session import MPISession, RankFailed
from pytest_iobench.mpi.training import run_training_session
from pytest_iobench.storage import StorageSpec, open_storage
from pytest_iobench.workload.config import load_mapping


def tiny(**train):
    return load_mapping({
        "dataset": {"num_files_train": 8, "num_samples_per_file": 1, "record_length_bytes": 4096},
        "reader": {"batch_size": 1, "read_threads": 1},
        "train": {"epochs": 1, "computation_time": 0.001, **train},
    }, "tiny")


@pytest.fixture
def local(tmp_path):
    return open_storage(StorageSpec("local", "posix", root=str(tmp_path / "data")))


def test_a_hung_run_is_ended_naming_every_rank_and_where_it_was(local):
    config = tiny(computation_time=60)
    write_raw_dataset(local, config)
    # generous: mpiexec and the ranks' imports must reach step 0 on a loaded host; the first
    # step computes 60 s, so every rank is still there when the timeout ends the run
    session = MPISession(env={"PYTHONPATH": HERE}, timeout=20)
    with pytest.raises(MPIRunError) as info:
        run_training_session(session, config, local, ranks=2, opener=RAW_OPENER)
    message = str(info.value)
    assert "2-rank run timed out after" in message
    assert "ranks that did not finish: 0 (last at: epoch 1 step 0/4" in message
    assert "1 (last at: epoch 1 step 0/4" in message


def test_a_failed_rank_is_named_with_its_error(local):
    config = tiny()
    write_raw_dataset(local, config)
    missing = config.dataset.file_keys()[5]  # read by rank 1 (files 4..7 with 2 ranks, no shuffle)
    local.delete(missing)
    session = MPISession(env={"PYTHONPATH": HERE}, timeout=60)
    with pytest.raises(RankFailed) as info:
        run_training_session(session, config, local, ranks=2, opener=RAW_OPENER)
    assert f"rank 1 of 2 failed: LoaderError: reading sample 0 of {missing}" in str(info.value)
    assert set(info.value.errors) == {1}


def test_one_rank_runs_in_process_and_can_be_forced_under_mpi(local):
    config = tiny()
    write_raw_dataset(local, config)
    own = run_training_session(MPISession(), config, local, ranks=1, opener=RAW_OPENER)
    assert own.run.in_process and own.results[0]["host"]["host_memory_bytes"] > 0
    forced = MPISession(env={"PYTHONPATH": HERE}, mpi_for_one=True, timeout=60)
    under = run_training_session(forced, config, local, ranks=1, opener=RAW_OPENER)
    assert not under.run.in_process and "mpiexec" in under.run.command[0]


@pytest.mark.parametrize("how", ["hosts", "hostfile"])
def test_hosts_and_hostfile_reach_mpiexec(local, tmp_path, how):
    config = tiny()
    write_raw_dataset(local, config)
    shared = tmp_path / "shared"
    shared.mkdir()
    if how == "hosts":
        session = MPISession(env={"PYTHONPATH": HERE}, hosts=["localhost"], timeout=60, shared_dir=str(shared))
        expected = ["-hosts", "localhost"]
    else:
        hostfile = tmp_path / "hosts"
        hostfile.write_text("localhost:2\n")
        session = MPISession(env={"PYTHONPATH": HERE}, hostfile=str(hostfile), timeout=60, shared_dir=str(shared))
        expected = ["-f", str(hostfile)]
    outcome = run_training_session(session, config, local, ranks=2, opener=RAW_OPENER)
    command = outcome.run.command
    i = command.index(expected[0])
    assert command[i:i + 2] == expected
    assert [r["rank"] for r in outcome.results] == [0, 1]
    # the ranks' results (read back from there) went through the shared directory, cleaned after
    assert os.path.dirname(outcome.run.exchange_dir) == str(shared)
    assert os.listdir(shared) == []


@pytest.mark.parametrize("option", [["--iobench-hosts", "localhost"], ["--iobench-hostfile", "hosts.txt"]])
def test_hosts_without_a_shared_mpi_dir_stop_the_session_at_start(pytester, option):
    pytester.makepyfile("def test_x():\n    pass\n")
    pytester.makefile(".txt", hosts="localhost\n")  # a hostfile that is not there stops the session too
    result = pytester.runpytest(*option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{option[0]} is given without --iobench-mpi-dir: ranks on other hosts cannot*"])
    result.stdout.no_fnmatch_line("*test_x*")
    shared = pytester.mkdir("shared")
    assert pytester.runpytest(*option, "--iobench-mpi-dir", str(shared)).ret == pytest.ExitCode.OK


def test_mpi_dir_must_be_an_existing_directory(pytester):
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--iobench-mpi-dir", "no/such/dir")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--iobench-mpi-dir (command line): * is not valid: *no/such/dir is not an existing "
                                 "directory; give a directory every host mounts at the same path*"])


def test_credentials_reach_ranks_through_the_environment_only(local, monkeypatch):
    config = tiny()
    write_raw_dataset(local, config)
    secret = "s3cr3t-value-never-in-argv"
    seen = {}
    session = MPISession(env=lambda: seen.setdefault("env", {"PYTHONPATH": HERE, "AWS_SECRET_ACCESS_KEY": secret}),
                         timeout=60)
    outcome = run_training_session(session, config, local, ranks=2, opener=RAW_OPENER)
    assert seen["env"]["AWS_SECRET_ACCESS_KEY"] == secret, "the environment is asked for at launch"
    assert not any(secret in part for part in outcome.run.command)
    assert secret not in os.environ.get("AWS_SECRET_ACCESS_KEY", "")


class _CountingClock:
    """context's clock, with its sleeps counted (perf_counter and everything else unchanged)."""

    def __init__(self):
        self.sleeps = 0

    def sleep(self, seconds):
        self.sleeps += 1
        time.sleep(seconds)

    def __getattr__(self, name):
        return getattr(time, name)


def barrier_probe(late_seconds: float, rounds: int) -> dict:
    """Under mpiexec: rank 1 reaches each barrier ``late_seconds`` after rank 0 (busy-waiting,
    so it is not a sleep of its own); rank 0 counts the sleeps of each of its barrier waits."""
    comm = context.world()
    clock = _CountingClock()
    context.time = clock
    comm.comm.Barrier()
    slept = []
    for _ in range(rounds):
        if comm.rank == 1:
            until = time.perf_counter() + late_seconds
            while time.perf_counter() < until:
                pass
        before = clock.sleeps
        comm.barrier()
        slept.append(clock.sleeps - before)
    return {"rank": comm.rank, "slept": slept}


def _probe(late: float, rounds: int) -> list[int]:
    run = launch("test_mpi_session", ["barrier-probe", str(late), str(rounds)], 2,
                 env={"PYTHONPATH": HERE}, timeout=60)
    return run.check()[0]["slept"]


def test_a_rank_arriving_a_little_later_is_met_without_sleeping():
    # ranks of a data-parallel step arrive within the jitter of their compute sleeps; a wait
    # that sleeps costs the step a sleep's granularity (~100 us), so a short wait must not sleep
    # (the rounds where the host descheduled rank 1 for over a millisecond may sleep: a minority)
    slept = _probe(200e-6, 200)
    assert statistics.median(slept) == 0, f"sleeps per barrier wait: {slept}"


def test_a_rank_waiting_long_sleeps_between_polls_leaving_the_cpu_to_the_readers():
    # rank 1 is 20 ms late every time: rank 0 spins for context.SPIN_SECONDS (1 ms), then sleeps
    slept = _probe(20e-3, 10)
    assert all(n > 0 for n in slept), f"sleeps per barrier wait: {slept}"


if __name__ == "__main__" and sys.argv[1:2] == ["barrier-probe"]:
    context.write_rank_result(context.world().rank, barrier_probe(float(sys.argv[2]), int(sys.argv[3])))


RANKS_THAT_WAIT = """
import sys, time
from pytest_iobench.mpi.context import report_progress, world, write_rank_result

comm = world()  # starts the rank's heartbeat
report_progress(comm.rank, "waiting")
deadline = time.monotonic() + float(sys.argv[1])
while time.monotonic() < deadline:
    time.sleep(0.05)
write_rank_result(comm.rank, {"rank": comm.rank})
"""


def start_ranks(tmp_path, ranks: int, **launch_args):
    """``launch`` of 3 ranks that wait 120 s, in a thread; returns (thread, result holder,
    the ranks' directory) once every rank's heartbeat is there."""
    import threading

    from pytest_iobench.mpi.launch import _read_heartbeat

    (tmp_path / "ranks_that_wait.py").write_text(RANKS_THAT_WAIT)
    workdir = tmp_path / "ranks"
    held = {}
    thread = threading.Thread(target=lambda: held.update(result=launch(
        "ranks_that_wait", ["120"], ranks, env={"PYTHONPATH": str(tmp_path)}, workdir=str(workdir), **launch_args)))
    thread.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not all(_read_heartbeat(str(workdir), r) for r in range(ranks)):
        time.sleep(0.1)
    beats = [_read_heartbeat(str(workdir), r) for r in range(ranks)]
    assert all(beats), "the ranks did not start"
    time.sleep(1)  # mid-run, not while MPICH is still setting the job up
    return thread, held, beats


def test_a_killed_rank_is_named_from_mpichs_exit_status(tmp_path):
    """The rank killed, not the others MPICH's cleanup killed after it (its report may name one
    of those)."""
    import signal

    thread, held, beats = start_ranks(tmp_path, 3, timeout=300)
    os.kill(beats[1]["pid"], signal.SIGKILL)  # a real signal, from outside, as the OOM killer sends it
    thread.join(timeout=120)
    assert not thread.is_alive()
    result = held["result"]
    assert result.died.keys() == {1} and not result.timed_out and result.duration < 120
    with pytest.raises(MPIRunError) as info:
        result.check()
    message = str(info.value)
    # the guard's record (MPICH's exit string is added when mpiexec printed one before it ended)
    assert f"rank 1 died: pid {beats[1]['pid']} killed by SIGKILL" in message
    assert "last at: waiting" in message and "rank 0 died" not in message and "rank 2 died" not in message


def test_a_stopped_rank_is_declared_hung_long_before_the_timeout(tmp_path):
    import signal

    thread, held, beats = start_ranks(tmp_path, 2, timeout=600, heartbeat_bound=3)
    os.kill(beats[0]["pid"], signal.SIGSTOP)  # silent: no heartbeat, no exit
    try:
        thread.join(timeout=120)  # a deadline proving no wait for the 600 s timeout
        assert not thread.is_alive()
    finally:
        try:
            os.kill(beats[0]["pid"], signal.SIGCONT)
        except ProcessLookupError:
            pass
    result = held["result"]
    assert result.hung.keys() == {0} and not result.timed_out
    with pytest.raises(MPIRunError) as info:
        result.check()
    assert (f"rank 0 hung: pid {beats[0]['pid']} on {beats[0]['host']} sent no heartbeat for "
            in str(info.value))
    assert "the bound is 3 s" in str(info.value) and "last at: waiting" in str(info.value)
