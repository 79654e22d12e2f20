"""Datasets of a session: each (spec, location) generated once, then reused by later tests and
later runs (kept in the storage's datasets area, found again by its manifest), and read through
the library each test asks for.

    cache = DatasetCache(open_at=factory.at, threads=2)
    ds = cache.get(spec, factory.get("s3", "minio", area="datasets"))
    ds.storage            # rooted at the dataset: ds.spec.file_keys("train") are its keys
    with ds.open(ds.keys()[0]) as f:
        f.read_sample(0)

A location is where the files are, whichever library reaches it: s3-minio, s3-boto3 and
s3-s3dlio share one bucket and prefix, local and direct one directory. The dataset is generated
there once, by the first library that asks; every library gets its own ``Dataset`` whose
``area`` and ``storage`` are that library's, so a test reads through the library it runs with.

Processes that ask for the same dataset at once (pytest-xdist workers, other sessions, other
hosts on the same bucket) take turns through a lease kept in the dataset's folder itself
(``storage.lease``, ``iobench-lease.json``), so one generates and the others reuse; a lease
whose holder died is taken over once it expires. A regeneration asked for happens once per run:
the run's processes share ``lock_dir``, where the first one notes that it regenerated.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..storage.base import Storage
from ..storage.errors import StorageError
from ..storage.lease import DEFAULT_TTL, Lease
from .formats import get_format
from .formats.base import SampleFile
from .generate import (
    MARKER,
    GenerateResult,
    Progress,
    adopt,
    dataset_prefix,
    delete_dataset,
    dlio_folder,
    generate,
    interrupted_generations,
    nothing_to_adopt,
    out_of_space,
)
from .spec import DatasetSpec


@dataclass
class Dataset:
    """A complete dataset on a storage."""

    spec: DatasetSpec
    #: the datasets area it lives in, through the library this Dataset was asked for, and its
    #: folder there
    area: Storage
    prefix: str
    #: a storage rooted at the dataset's folder, through the same library (keys are spec.file_keys(...))
    storage: Storage
    result: GenerateResult

    def keys(self, split: str = "train") -> list[str]:
        return self.spec.file_keys(split)

    def open(self, key: str, storage: Storage | None = None) -> SampleFile:
        """One file for reading samples, through ``storage`` (e.g. a CountingStorage over
        ``self.storage``) or this dataset's storage."""
        return get_format(self.spec.format).open(storage or self.storage, key, self.spec)

    @property
    def bytes(self) -> int:
        return self.result.bytes

    @property
    def reused(self) -> bool:
        return self.result.reused

    def describe(self) -> dict[str, Any]:
        """What was done for this dataset, for the result document: where, generated / reused /
        regenerated / adopted and why, the reuse check's reading (integrity.Verification), and
        how long generation took (0 when reused)."""
        r = self.result
        return {"where": self.storage.uri(""), "format": self.spec.format, "digest": r.digest,
                "action": r.action, "why": r.why, "files": r.files, "bytes": r.bytes,
                "generate_seconds": 0.0 if r.reused else round(r.seconds, 3),
                "waited_seconds": r.waited, "verification": r.verification}


def as_spec(spec: DatasetSpec | Mapping[str, Any]) -> DatasetSpec:
    return spec if isinstance(spec, DatasetSpec) else DatasetSpec.from_mapping(spec)


def location(storage: Storage) -> tuple[str, ...]:
    """Where a storage's files are, whatever library reaches them: a directory, or an
    endpoint, bucket and prefix."""
    spec = storage.spec
    if spec is None:
        return ("uri", storage.uri(""))
    if spec.kind == "s3":
        return ("s3", spec.endpoint_url, spec.bucket, spec.prefix.strip("/"))
    return ("files", os.path.realpath(spec.root))


def _with_space_note(exc: StorageError, area: Storage, prefix: str) -> StorageError:
    """A full storage's error, saying when earlier generations that never finished hold space
    in the datasets area (the same error otherwise)."""
    if not out_of_space(exc):
        return exc
    try:
        held = interrupted_generations(area, skip=prefix)
    except StorageError:
        return exc
    if not held:
        return exc
    where = ", ".join(f"{area.uri(folder)} ({files} files)" for folder, files in held)
    return type(exc)(exc.op, exc.key, exc.library,
                     f"{exc.detail}; earlier generations that did not finish hold space in the datasets area: "
                     f"{where} (their {MARKER} says so); the next run that asks for those datasets replaces "
                     "them, or delete those folders")


#: the generation lease's name in a dataset's folder
LEASE = "iobench-lease.json"


class DatasetCache:
    """Generates each (spec, location) once; each library gets a Dataset read through it."""

    def __init__(self, open_at: Callable[[Storage, str], Storage], *, threads: int = 2, regenerate: bool = False,
                 progress: Callable[[str, Progress], None] | None = None, lock_dir: str | None = None,
                 adopt: bool = False, verify: str = "sample", on_corrupt: str = "fail", lease_ttl: float = DEFAULT_TTL):
        self.open_at = open_at
        #: integrity.MODES and generate.ON_CORRUPT: how a kept dataset is checked before reuse
        self.verify = verify
        self.on_corrupt = on_corrupt
        self.lease_ttl = lease_ttl
        self.threads = threads
        self.regenerate = regenerate
        #: ``get``'s area is a storage root and DLIO's datasets are read where DLIO writes them,
        #: <area>/<data_folder>/, as they are (generate.adopt), never generated
        self.adopt = adopt
        self.progress = progress
        self.lock_dir = lock_dir
        #: the first Dataset of each (location, prefix): the one generated (or adopted)
        self._generated: dict[tuple[Any, ...], Dataset] = {}
        #: every library's Dataset of each (location, prefix)
        self._datasets: dict[tuple[Any, ...], Dataset] = {}
        self._lock = threading.Lock()

    def get(self, spec: DatasetSpec | Mapping[str, Any], area: Storage) -> Dataset:
        """The dataset of ``spec`` in ``area`` (a datasets area; a storage root when adopting),
        read through ``area``'s library."""
        spec = as_spec(spec)
        prefix = dlio_folder(spec) if self.adopt else dataset_prefix(spec)
        place = (*location(area), prefix)
        with self._lock:
            found = self._datasets.get((*place, area.kind, area.library))
            if found is not None:
                return found
            first = self._generated.get(place)
            if first is None:
                first = self._generated[place] = self._generate(spec, area, prefix, place)
                dataset = first
            else:
                # generated through another library: the same files, read through this one
                storage = self._at(area, prefix)
                dataset = Dataset(spec, area, prefix, storage, first.result)
            self._datasets[(*place, area.kind, area.library)] = dataset
            return dataset

    def _at(self, area: Storage, prefix: str) -> Storage:
        """A storage rooted at the dataset's folder (the area itself for an adopted dataset at
        the root: data_folder '.')."""
        return self.open_at(area, prefix) if prefix else area

    def _generate(self, spec: DatasetSpec, area: Storage, prefix: str, place: tuple[Any, ...]) -> Dataset:
        if self.adopt:
            if not area.list(f"{prefix}/" if prefix else ""):  # before opening it: nothing is created
                raise nothing_to_adopt(spec, area.uri(prefix))
            storage = self._at(area, prefix)
            result = adopt(spec, storage)
            if result.num_files_generated:  # a larger DLIO dataset: its first num_files_train files
                spec = replace(spec, num_files_generated=result.num_files_generated)
            return Dataset(spec, area, prefix, storage, result)
        storage = self._at(area, prefix)
        where = storage.uri("")
        progress = self.progress
        report = (lambda p: progress(where, p)) if progress is not None else None
        marker = self._regenerated_marker(place)
        lease = Lease(storage, LEASE, ttl=self.lease_ttl, what=f"generating {where}")
        with lease:
            # regenerate once per run: another process of the run may be reading it already
            regenerate = self.regenerate and not (marker and os.path.exists(marker))
            try:
                result = generate(spec, storage, threads=self.threads, regenerate=regenerate, progress=report,
                                  verify=self.verify, on_corrupt=self.on_corrupt)
            except StorageError as exc:
                raise _with_space_note(exc, area, prefix) from exc
            if marker and regenerate:
                open(marker, "w").close()
        result.waited = round(lease.waited, 3)
        if lease.took_over:
            result.why += f"; took over the generation lease of {lease.took_over} (expired: its owner died or hung)"
        return Dataset(spec, area, prefix, storage, result)

    def _regenerated_marker(self, place: tuple[Any, ...]) -> str | None:
        """The path of the dataset's 'regenerated in this run' note (None without a lock directory)."""
        if not self.lock_dir:
            return None
        os.makedirs(self.lock_dir, exist_ok=True)
        name = hashlib.sha256("|".join(place).encode()).hexdigest()[:24]
        return os.path.join(self.lock_dir, f"dataset-{name}.regenerated")

    def records(self) -> list[dict[str, Any]]:
        """``Dataset.describe()`` of each dataset this process generated or reused."""
        return [dataset.describe() for dataset in self._generated.values()]

    def cleanup(self) -> list[str]:
        """Delete the datasets whose spec says keep_files: false (never adopted ones: their files
        are another tool's). Returns problems."""
        problems = []
        for dataset in self._generated.values():
            if not dataset.spec.keep_files and not dataset.result.adopted:
                try:
                    delete_dataset(dataset.storage, dataset.spec)
                except Exception as exc:
                    problems.append(f"{dataset.storage.uri('')}: could not delete (keep_files: false): {exc}")
        self._generated.clear()
        self._datasets.clear()
        return problems
