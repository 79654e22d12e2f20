"""Storage fixtures and the parametrization over storages x libraries x threads."""

from __future__ import annotations

import warnings

import pytest

from ..storage import Storage, StorageUnsupported
from ..storage.factory import StorageFactory, StorageParam, new_run_id, plan_storages
from .options import get_settings


def _explicitly_parametrized(metafunc: pytest.Metafunc, name: str) -> bool:
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0]
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        if name in names:
            return True
    return False


@pytest.hookimpl(trylast=True)  # after the test's own parametrize marks: their ids come first
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    settings = get_settings(metafunc.config)
    if "storage" in metafunc.fixturenames and not _explicitly_parametrized(metafunc, "storage"):
        params = plan_storages(settings)
        metafunc.parametrize("storage", params, ids=[p.id for p in params], indirect=True, scope="session")
    if "threads" in metafunc.fixturenames and not _explicitly_parametrized(metafunc, "threads"):
        metafunc.parametrize("threads", settings.threads, ids=[f"t{n}" for n in settings.threads])


@pytest.fixture(scope="session")
def storage_factory(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory):
    """Opens the session's storages (starting the embedded S3 endpoint when needed) and
    deletes what the session wrote at the end."""
    worker = getattr(pytestconfig, "workerinput", {}).get("workerid")
    factory = StorageFactory(
        get_settings(pytestconfig),
        default_root=str(tmp_path_factory.mktemp("iobench-root")),
        run_id=new_run_id(worker),
    )
    yield factory
    for problem in factory.cleanup():
        warnings.warn(problem, pytest.PytestWarning, stacklevel=1)


@pytest.fixture(scope="session")
def storage(request: pytest.FixtureRequest, storage_factory: StorageFactory) -> Storage:
    """The storage under test, one per (storage, library) parameter, e.g. ``s3-s3dlio``."""
    param: StorageParam = getattr(request, "param", None)
    if param is None:
        raise pytest.UsageError("the storage fixture is parametrized by the iobench plugin; do not request it indirectly without a StorageParam")
    if param.skip:
        pytest.skip(param.skip)
    try:
        return storage_factory.get(param.kind, param.library)
    except StorageUnsupported as exc:
        pytest.skip(str(exc))


@pytest.fixture
def threads(request: pytest.FixtureRequest) -> int:
    """The thread count of this test (from --iobench-threads)."""
    return getattr(request, "param", get_settings(request.config).threads[0])


@pytest.fixture(scope="session")
def s3_endpoint(storage_factory: StorageFactory):
    """The S3 endpoint of the session (the embedded one is started on first use)."""
    return storage_factory.endpoint()
