"""Workload fixtures and parametrization: workloads, rank counts, MPI sessions.

Every workload the session will run is loaded and validated in ``pytest_cmdline_main``,
before collection: a bad key or value is one usage error listing every problem.
"""

from __future__ import annotations

import re

import pytest

from ..mpi.session import MPISession
from ..settings import Settings, SettingsError
from ..workload.config import WorkloadConfig, WorkloadError, load_workload
from ..workload.options import check_mpi_settings, override_problems, overrides_for, workload_id
from .options import get_settings
from .storage import _explicitly_parametrized

#: what the training suite runs when --iobench-workload is not given: seconds each
TRAINING_WORKLOADS = ("unet3d_small", "resnet50_small", "cosmoflow_small", "dlrm_parquet_small")
#: what the checkpoint suite runs when --iobench-workload is not given (at --iobench-scale)
CHECKPOINT_WORKLOADS = ("llama3-8b",)

_CACHE_KEY = pytest.StashKey[dict]()


def _load(config: pytest.Config, name: str) -> WorkloadConfig:
    cache = config.stash.setdefault(_CACHE_KEY, {})
    if name not in cache:
        cache[name] = load_workload(name, overrides_for(name, get_settings(config).set))
    return cache[name]


def workload_kind(workload: WorkloadConfig) -> str:
    """'train' for a workload that trains (checkpoints during training included), 'checkpoint'
    for a checkpoint-only workload (workflow.train False, workflow.checkpoint True)."""
    if workload.workflow.train:
        return "train"
    return "checkpoint" if workload.workflow.checkpoint else "none"


def selected(config: pytest.Config, kind: str) -> list[str]:
    settings = get_settings(config)
    if not settings.workload:
        return list(TRAINING_WORKLOADS if kind == "train" else CHECKPOINT_WORKLOADS)
    return [name for name in settings.workload if workload_kind(_load(config, name)) == kind]


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config):
    """Load and check every workload this session may run, before anything runs."""
    if config.option.help or config.option.version:
        return None
    try:
        settings: Settings = get_settings(config)
    except SettingsError:
        return None  # the options plugin reports it
    try:
        check_mpi_settings(settings)
    except SettingsError as exc:
        raise pytest.UsageError(str(exc)) from None
    names = settings.workload or (TRAINING_WORKLOADS + CHECKPOINT_WORKLOADS)
    problems = override_problems(settings.set, names)
    for name in names:
        try:
            workload = _load(config, name)
        except WorkloadError as exc:
            problems.append(str(exc))
            continue
        if settings.workload and workload_kind(workload) == "none":
            problems.append(f"workload {name}: workflow.train and workflow.checkpoint are both False: "
                            "nothing to run")
    if problems:
        where = " (with --iobench-set " + " ".join(settings.set) + ")" if settings.set else ""
        raise pytest.UsageError("\n".join(problems) + where)
    return None


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
    return getattr(request, "param", get_settings(request.config).ranks[0])


@pytest.fixture
def training_workload(request: pytest.FixtureRequest) -> WorkloadConfig:
    """The training workload of this test, validated, with --iobench-set applied."""
    return _load(request.config, getattr(request, "param", TRAINING_WORKLOADS[0]))


@pytest.fixture
def checkpoint_workload(request: pytest.FixtureRequest) -> WorkloadConfig:
    """The checkpoint workload of this test, validated, with --iobench-set applied."""
    return _load(request.config, getattr(request, "param", CHECKPOINT_WORKLOADS[0]))


@pytest.fixture(scope="session")
def mpi_session(pytestconfig: pytest.Config, storage_factory) -> MPISession:
    """Runs jobs on N ranks: in-process for one rank, ``mpiexec -n N`` otherwise, with the
    S3 credentials passed through the environment, --iobench-hosts / --iobench-hostfile
    passed to mpiexec, jobs and results exchanged in --iobench-mpi-dir and
    --iobench-mpi-timeout ending a hung run."""
    settings = get_settings(pytestconfig)
    return MPISession(env=storage_factory.environ, hosts=settings.hosts, hostfile=settings.hostfile,
                      timeout=settings.mpi_timeout, shared_dir=settings.mpi_dir)


@pytest.fixture
def dlio_output_dir(request: pytest.FixtureRequest) -> str:
    """Where this test writes DLIO's output files (summary.json, {rank}_output.json, ...):
    reports/dlio/<test id>/ under the rootdir."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid.split("::", 1)[-1]).strip("_")
    return str(request.config.rootpath / "reports" / "dlio" / safe)
