"""Storage fixtures and the parametrization over storages x libraries x threads."""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from ..storage import interrupts
from .options import get_settings, worker_id

if TYPE_CHECKING:
    from ..storage import Storage
    from ..storage.factory import StorageFactory, StorageParam
    from ..storage.s3common import S3Endpoint

_RESTORE = pytest.StashKey[Any]()


def pytest_configure(config: pytest.Config) -> None:
    """SIGINT and SIGTERM end the session promptly whatever a storage is doing: operations
    waiting on an endpoint are released, the session's results are written and marked
    interrupted, its scratch areas cleaned (storage/interrupts.py)."""
    interrupts.reset()
    if threading.current_thread() is threading.main_thread():
        config.stash[_RESTORE] = interrupts.install_interrupt_handlers()


_EXIT_STATUS = pytest.StashKey[int]()
_FACTORY = pytest.StashKey["StorageFactory"]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    factory = config.stash.get(_FACTORY, None)
    if factory is not None and factory.aborted_uploads:
        terminalreporter.write_line(f"iobench: aborted {factory.aborted_uploads} multipart upload(s) left open "
                                    "under this session's scratch area")
    if factory is not None and factory.removed_stale:
        shown = ", ".join(factory.removed_stale[:5]) + (", ..." if len(factory.removed_stale) > 5 else "")
        terminalreporter.write_line(f"iobench: removed {len(factory.removed_stale)} leftovers of sessions that "
                                    f"were killed: {shown}")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT_STATUS] = int(session.exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    restore = config.stash.get(_RESTORE, None)
    if restore is not None:
        restore()
    signalled = interrupts.signalled()
    interrupts.reset()
    if signalled and restore is not None:
        # The results are written and the cleanup is done. What is left are the client
        # libraries' own finalizers, run as the interpreter exits, and one of them may wait for
        # an endpoint that no longer answers (s3dlio's writer aborts its upload when dropped, for
        # its own timeout): an interrupted session does not wait for them.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(config.stash.get(_EXIT_STATUS, int(pytest.ExitCode.INTERRUPTED)))


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
        from ..storage.factory import plan_storages

        params = plan_storages(settings)
        metafunc.parametrize("storage", params, ids=[p.id for p in params], indirect=True, scope="session")
    if "threads" in metafunc.fixturenames and not _explicitly_parametrized(metafunc, "threads"):
        metafunc.parametrize("threads", settings.threads, ids=[f"t{n}" for n in settings.threads])


@pytest.fixture(scope="session")
def storage_factory(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
                    ) -> Iterator[StorageFactory]:
    """Opens the session's storages (starting the embedded S3 endpoint when needed) and
    deletes what the session wrote at the end."""
    from ..storage.factory import StorageFactory, new_run_id
    from ..storage.posix import write_back_all

    write_back_all()  # the session measures from a quiet disk, not the last one's writeback
    worker = worker_id(pytestconfig)
    factory = StorageFactory(
        get_settings(pytestconfig),
        default_root=str(tmp_path_factory.mktemp("iobench-root")),
        run_id=new_run_id(worker),
    )
    pytestconfig.stash[_FACTORY] = factory
    yield factory
    for problem in factory.cleanup():
        warnings.warn(problem, pytest.PytestWarning, stacklevel=1)


@pytest.fixture(scope="session")
def storage(request: pytest.FixtureRequest, storage_factory: StorageFactory) -> Storage:
    """The storage under test, one per (storage, library) parameter, e.g. ``s3-s3dlio``."""
    param: StorageParam | None = getattr(request, "param", None)
    if param is None:
        raise pytest.UsageError("the storage fixture is parametrized by the iobench plugin; "
                                "do not request it indirectly without a StorageParam")
    if param.skip:
        pytest.skip(param.skip)
    from ..storage import StorageUnsupported

    try:
        return storage_factory.get(param.kind, param.library)
    except StorageUnsupported as exc:
        pytest.skip(str(exc))


@pytest.fixture
def threads(request: pytest.FixtureRequest) -> int:
    """The thread count of this test (from --iobench-threads)."""
    return int(getattr(request, "param", get_settings(request.config).threads[0]))


@pytest.fixture(scope="session")
def s3_endpoint(storage_factory: StorageFactory) -> S3Endpoint:
    """The S3 endpoint of the session (the embedded one is started on first use)."""
    return storage_factory.endpoint()
