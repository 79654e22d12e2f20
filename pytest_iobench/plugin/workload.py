"""Workload fixtures and parametrization: workloads, rank counts, MPI sessions.

When a workload option is given, every workload the session will run is loaded and validated
by the start-up check (startup.py), before collection: a bad key or value is one usage error
listing every problem. Otherwise the shipped workloads are loaded when a suite runs them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest

from ..workload.options import overrides_for, workload_id
from .options import WORKLOADS_KEY, get_settings, is_worker
from .startup import CHECKPOINT_WORKLOADS, TRAINING_WORKLOADS, workload_kind
from .storage import _explicitly_parametrized

if TYPE_CHECKING:
    from ..mpi.session import MPISession
    from ..storage.factory import StorageFactory
    from ..workload.config import WorkloadConfig

def _load(config: pytest.Config, name: str) -> WorkloadConfig:
    """The workload ``name`` with its --iobench-set overrides (loaded once per session; the
    start-up check loaded those it checked)."""
    cache: dict[str, WorkloadConfig] = config.stash.setdefault(WORKLOADS_KEY, {})
    if name not in cache:
        from ..workload.config import load_workload

        cache[name] = load_workload(name, overrides_for(name, get_settings(config).set))
    return cache[name]


def selected(config: pytest.Config, kind: str) -> list[str]:
    settings = get_settings(config)
    if not settings.workload:
        return list(TRAINING_WORKLOADS if kind == "train" else CHECKPOINT_WORKLOADS)
    return [name for name in settings.workload if workload_kind(_load(config, name)) == kind]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """A workload given with --iobench-workload that no collected test runs (a checkpoint
    workload on the training suite) is a usage error, not a session of skips."""
    given = get_settings(config).workload
    if not given or is_worker(config):
        return  # xdist workers each collect: an error there is no usage error of the session
    fixtures = ("training_workload", "checkpoint_workload")
    takers = [item for item in items if any(f in getattr(item, "fixturenames", ()) for f in fixtures)]
    if not takers:
        return  # no suite that runs workloads was collected: the option is not for these tests
    ran = {item.callspec.params.get(f) for item in takers if hasattr(item, "callspec") for f in fixtures}
    unused = [name for name in given if name not in ran]
    if unused:
        kinds = {name: workload_kind(_load(config, name)) for name in unused}
        raise pytest.UsageError(
            "--iobench-workload: no collected test runs " + ", ".join(f"{n} (a {k} workload)" for n, k in kinds.items())
            + "; the training suite (suites/test_training.py) runs train workloads, the checkpoint suite "
            "(suites/test_checkpoint.py) checkpoint workloads: select the suite that runs it")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    config = metafunc.config
    for fixture, kind in (("training_workload", "train"), ("checkpoint_workload", "checkpoint")):
        if fixture in metafunc.fixturenames and not _explicitly_parametrized(metafunc, fixture):
            names = selected(config, kind)
            metafunc.parametrize(fixture, names, ids=[workload_id(n) for n in names], indirect=True)
    if "ranks" in metafunc.fixturenames and not _explicitly_parametrized(metafunc, "ranks"):
        counts = get_settings(config).ranks
        metafunc.parametrize("ranks", counts, ids=[f"r{n}" for n in counts])


@pytest.fixture
def ranks(request: pytest.FixtureRequest) -> int:
    """The rank count of this test (from --iobench-ranks): simulated accelerators."""
    return int(getattr(request, "param", get_settings(request.config).ranks[0]))


@pytest.fixture
def training_workload(request: pytest.FixtureRequest) -> WorkloadConfig:
    """The training workload of this test, validated, with --iobench-set applied."""
    return _load(request.config, getattr(request, "param", TRAINING_WORKLOADS[0]))


@pytest.fixture
def checkpoint_workload(request: pytest.FixtureRequest) -> WorkloadConfig:
    """The checkpoint workload of this test, validated, with --iobench-set applied."""
    return _load(request.config, getattr(request, "param", CHECKPOINT_WORKLOADS[0]))


@pytest.fixture(scope="session")
def mpi_session(pytestconfig: pytest.Config, storage_factory: StorageFactory) -> MPISession:
    """Runs jobs on N ranks: in-process for one rank, ``mpiexec -n N`` otherwise, with the
    S3 credentials passed through the environment, --iobench-hosts / --iobench-hostfile
    passed to mpiexec, jobs and results exchanged in --iobench-mpi-dir and
    --iobench-mpi-timeout ending a hung run."""
    from ..mpi.session import MPISession

    settings = get_settings(pytestconfig)
    return MPISession(env=storage_factory.environ, hosts=settings.hosts, hostfile=settings.hostfile,
                      timeout=settings.mpi_timeout, shared_dir=settings.mpi_dir)


@pytest.fixture
def dlio_output_dir(request: pytest.FixtureRequest) -> str:
    """Where this test writes DLIO's output files (summary.json, {rank}_output.json, ...):
    dlio/<run's UTC start>/<test id>/ beside the run's document (reports/ under the rootdir,
    or --iobench-json's folder), so that a later run does not overwrite the files an earlier
    run's document names."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid.split("::", 1)[-1]).strip("_")
    results: Any = request.config.pluginmanager.get_plugin("iobench-results")
    stamp = results.results.run_stamp
    return str(results.results.output_dir / "dlio" / stamp / safe)
