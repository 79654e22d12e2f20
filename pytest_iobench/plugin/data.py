"""Fixtures of the data layer: datasets generated once per session per (spec, location), read
through the library each test runs with.

- ``dataset_factory(spec_or_mapping, storage=None)``: the Dataset of that spec on the datasets
  area of ``storage``'s kind and library (default: the first storage the session runs),
  generated on first use, then reused by the session and by later runs.
- ``dataset``: the Dataset of the test's spec on the test's storage. The spec is the
  ``dataset`` parameter when parametrized indirectly
  (``@pytest.mark.parametrize("dataset", [{"format": "npz"}], indirect=True)``), else the
  ``dataset_spec`` fixture (override it in a conftest or module).
- ``generation_progress``: the reporter that shows a long generation in the terminal.

With --iobench-adopt, datasets are not generated: each is read where DLIO writes it, under the
storage's root (--iobench-root) at its data_folder, as it is (generate.adopt).

The work is in pytest_iobench.data (datasets.py, generate.py); this module only wires it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from .options import get_settings, is_worker
from .records import RECORD_KEY, new_record

if TYPE_CHECKING:
    from ..data.datasets import Dataset, DatasetCache
    from ..data.generate import Progress
    from ..data.spec import DatasetSpec
    from ..storage import Storage
    from ..storage.factory import StorageFactory

#: a progress reporter of generation: ``(where, Progress)``
Reporter = Callable[[str, "Progress"], None]

#: generation that runs longer than this shows progress lines
PROGRESS_AFTER = 2.0


def terminal_progress(config: pytest.Config) -> Reporter | None:
    """A reporter writing progress lines to the terminal, past pytest's capture; None where
    there is no terminal (xdist workers)."""
    if is_worker(config):
        return None
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return None

    def report(where: str, progress: Progress) -> None:
        if progress.elapsed < PROGRESS_AFTER:
            return
        line = f"iobench generating {where}: {progress.line()}"
        if capture is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line(line)
        else:
            reporter.write_line(line)

    return report


@pytest.fixture(scope="session")
def generation_progress(pytestconfig: pytest.Config) -> Reporter | None:
    """Shows a generation's progress (files, bytes, MB/s, ETA) in the terminal: a callable
    ``(where, Progress)``, or None where nothing can be shown."""
    return terminal_progress(pytestconfig)


def _lock_dir(factory: pytest.TempPathFactory, config: pytest.Config) -> str:
    base = factory.getbasetemp()
    # xdist workers' base temp dirs sit in the controller's: the run's processes share it
    return str((base.parent if is_worker(config) else base) / "iobench-dataset-locks")


@pytest.fixture(scope="session")
def _dataset_cache(pytestconfig: pytest.Config, storage_factory: StorageFactory,
                   tmp_path_factory: pytest.TempPathFactory,
                   generation_progress: Reporter | None) -> Iterator[DatasetCache]:
    from ..data.datasets import DatasetCache

    settings = get_settings(pytestconfig)
    cache = DatasetCache(storage_factory.at, threads=settings.generate_threads, regenerate=settings.regenerate,
                         progress=generation_progress, lock_dir=_lock_dir(tmp_path_factory, pytestconfig),
                         adopt=settings.adopt, verify=settings.verify, on_corrupt=settings.on_corrupt)
    yield cache
    for problem in cache.cleanup():
        warnings.warn(problem, pytest.PytestWarning, stacklevel=1)


@pytest.fixture(scope="session")
def dataset_factory(pytestconfig: pytest.Config, storage_factory: StorageFactory,
                    _dataset_cache: DatasetCache) -> Callable[..., Dataset]:
    """``dataset_factory(spec_or_mapping, storage=None) -> Dataset``: generated once per
    session per (spec, location), kept in the datasets area for later runs, read through the
    storage's library (with --iobench-adopt: DLIO's, read where DLIO wrote it)."""
    from ..storage.factory import plan_storages

    settings = get_settings(pytestconfig)

    def area_for(kind: str, library: str) -> Storage:
        if settings.adopt:  # DLIO's datasets, under the root where DLIO writes them
            return storage_factory.root(kind, library)
        return storage_factory.get(kind, library, area="datasets")

    def get(spec: DatasetSpec | Mapping[str, Any], storage: Storage | None = None) -> Dataset:
        if storage is None:
            first = next((p for p in plan_storages(settings) if not p.skip), None)
            if first is None:
                pytest.skip("no storage of this session can hold a dataset")
            kind, library = first.kind, first.library
        else:
            kind, library = storage.kind, storage.library
        dataset = _dataset_cache.get(spec, area_for(kind, library))
        _note_on_running_test(pytestconfig, dataset)
        return dataset

    return get


#: the test item whose fixtures or body is running (a session fixture has no request of it)
_RUNNING = pytest.StashKey[pytest.Item]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    item.config.stash[_RUNNING] = item
    try:
        return (yield)
    finally:
        del item.config.stash[_RUNNING]


def _note_on_running_test(config: pytest.Config, dataset: Dataset) -> None:
    """The result document's record of the dataset a test used: generated, reused, verified or
    regenerated and why, and how long generation took (details.datasets of the test's entry)."""
    item = config.stash.get(_RUNNING, None)
    if item is None:
        return
    record = item.stash.get(RECORD_KEY, None)
    if record is None:
        record = item.stash[RECORD_KEY] = new_record(item)
    noted = record.details.setdefault("datasets", [])
    entry = dataset.describe()
    if entry not in noted:
        noted.append(entry)


@pytest.fixture
def dataset_spec() -> DatasetSpec | Mapping[str, Any]:
    """The spec of the ``dataset`` fixture when it is not parametrized: a small npz dataset.
    Override this fixture to change it."""
    return {"format": "npz", "num_files_train": 8, "num_samples_per_file": 2, "record_length_bytes": 1 << 20}


@pytest.fixture
def dataset(request: pytest.FixtureRequest, storage: Storage, dataset_factory: Callable[..., Dataset],
            dataset_spec: DatasetSpec | Mapping[str, Any]) -> Dataset:
    """The Dataset of this test's spec on this test's storage (generated once per session)."""
    spec = getattr(request, "param", dataset_spec)
    found: Dataset = dataset_factory(spec, storage)
    return found
