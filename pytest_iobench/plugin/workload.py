"""Workload fixtures and parametrization: workloads, rank counts, MPI sessions.

Every workload the session will run is loaded and validated in ``pytest_cmdline_main``,
before collection: a bad key or value is one usage error listing every problem.
"""

from __future__ import annotations

import os
import re

import pytest

from ..data.generate import dlio_folder
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
    if settings.adopt:
        # the workloads given: their data folders; else (tests with their own specs) any file
        trained = [_load(config, n).dataset for n in settings.workload or ()
                   if workload_kind(_load(config, n)) == "train"]
        try:
            check_adoptable(settings, trained)
        except SettingsError as exc:
            raise pytest.UsageError(str(exc)) from None
    return None


def check_adoptable(settings: Settings, specs: list) -> None:
    """--iobench-adopt reads DLIO's datasets under --iobench-root: on local files, at least one
    of the workloads' data folders must hold files (an S3 root is found out by its tests)."""
    root = settings.root or ""
    if root.startswith("s3://") or not {"local", "direct"} & set(settings.storage):
        return
    if not root:
        raise SettingsError("--iobench-adopt reads the datasets DLIO wrote under --iobench-root; give "
                            "--iobench-root DIR (the directory DLIO's data_folder is relative to)")
    looked = [os.path.join(root, dlio_folder(spec), "train") for spec in specs]
    if looked and not any(os.path.isdir(p) and any(os.scandir(p)) for p in looked):
        raise SettingsError(f"--iobench-adopt: no dataset to adopt under {root}: looked for files in "
                            f"{', '.join(looked)}; generate them with DLIO first, or drop --iobench-adopt")
    if not looked and not any(files for _, _, files in os.walk(root)):
        raise SettingsError(f"--iobench-adopt: no dataset to adopt under {root}: it holds no files; give the "
                            "directory DLIO wrote its datasets under, or drop --iobench-adopt")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """A workload given with --iobench-workload that no collected test runs (a checkpoint
    workload on the training suite) is a usage error, not a session of skips."""
    given = get_settings(config).workload
    if not given or hasattr(config, "workerinput"):
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
    reports/dlio/<run's UTC start>/<test id>/ under the rootdir, so that a later run does not
    overwrite the files an earlier run's document names."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid.split("::", 1)[-1]).strip("_")
    stamp = request.config.pluginmanager.get_plugin("iobench-results").results.run_stamp
    return str(request.config.rootpath / "reports" / "dlio" / stamp / safe)
