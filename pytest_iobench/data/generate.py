"""Generating a dataset: DLIO's layout, in parallel, safely, reusable.

    result = generate(spec, storage, threads=4)          # storage rooted at the dataset folder

- Layout: ``spec.file_keys("train")`` and ``spec.file_keys("eval")`` (train/, valid/), plus
  ``iobench-manifest.json`` at the root.
- Parallel: files are numbered train first, then eval (as DLIO numbers them); rank r of N
  writes files g with g % N == r, each rank with a pool of ``threads``. A file's bytes depend
  on the spec and the file only, so any split gives identical bytes.
- Safe: each file is written through the storage's streaming writer, which makes it appear
  under its name only once complete (temporary name + rename, or a multipart upload aborted
  on failure). The manifest is written last, by rank 0, once every rank is done: a dataset
  without a manifest is never reused.
- Reusable: a manifest whose spec digest matches, with every file present at its recorded
  size, is reused as is. A manifest from another spec is a DatasetMismatch error naming what
  differs, unless ``regenerate`` is asked (the old files are then deleted first).
- Ours only: ``iobench-generating.json`` is written before the first file and removed once the
  manifest is written, so what an interrupted run left is known to be ours and is cleaned up
  silently. Files in ``train/``, ``valid/`` or ``index/`` with neither marker nor manifest were
  written by someone else (DLIO, a user): a ForeignData error, nothing touched, unless
  ``regenerate`` is asked.
- Progress: a reporter is called about once a second with files done, bytes, MB/s and ETA.

From a shell or under mpiexec: ``python -m pytest_iobench.mpi.generate --spec ... --root ...``
(the mpi layer's command line over this module).
"""

from __future__ import annotations

import json
import re
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from ..storage.base import Storage, StreamWriter
from ..storage.errors import StorageError, StorageNotFound
from .formats import get_format
from .integrity import ChecksummingStorage, Verification, verify
from .random import RandomStream, stream_for
from .spec import SPLITS, DatasetSpec, DatasetSpecError

MANIFEST = "iobench-manifest.json"
MANIFEST_KIND = "pytest-iobench dataset"
#: written before the first file of a generation (or deletion), removed after the manifest:
#: a folder with it and no manifest holds what an interrupted run of ours left
MARKER = "iobench-generating.json"
MARKER_KIND = "pytest-iobench generation in progress"
#: the folders of DLIO's layout that a dataset's files live in
FOLDERS = ("train/", "valid/", "index/")
#: above this many files, a reuse check stats an even sample of them (all are checked present)
STAT_ALL_UP_TO = 10000


class DatasetMismatch(RuntimeError):
    """The location holds a dataset generated from another spec."""


class ForeignData(DatasetMismatch):
    """The location holds files this tool did not write (no manifest, no marker of ours)."""


class NothingToAdopt(DatasetMismatch):
    """Adoption was asked for and the location holds no dataset."""


class DatasetCorrupt(DatasetMismatch):
    """A kept dataset's file no longer has the content it was written with (its checksum)."""


_ERRORS = {"mismatch": DatasetMismatch, "foreign": ForeignData, "corrupt": DatasetCorrupt}
#: what a reuse check that finds a changed file does
ON_CORRUPT = ("fail", "regenerate")


class GenerationCancelled(RuntimeError):
    """Generation stopped because another file failed or the run was interrupted."""


@dataclass
class Progress:
    """Where a generation run is (this rank's share).

    ``bytes_done`` counts bytes written (the MB and MB/s shown). The ETA comes from
    ``source_done`` of ``source_total``: random bytes the files have pulled, of all they pull.
    Written bytes cannot give it: csv text is several times its random bytes, and compressed
    or encoded files are smaller, so the total written is not known in advance."""

    files_done: int
    files_total: int
    bytes_done: int
    source_done: int
    source_total: int
    elapsed: float
    rank: int = 0
    ranks: int = 1

    @property
    def mb_per_s(self) -> float:
        return self.bytes_done / self.elapsed / 1e6 if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left, from the random bytes still to pull at the rate so far."""
        if self.source_done <= 0 or self.elapsed <= 0:
            return None
        return max(0.0, (self.source_total - self.source_done) * self.elapsed / self.source_done)

    def line(self) -> str:
        eta = self.eta
        eta_text = "?" if eta is None else f"{eta:.0f} s"
        who = f"rank {self.rank}/{self.ranks}: " if self.ranks > 1 else ""
        return (f"{who}{self.files_done}/{self.files_total} files, {self.bytes_done / 1e6:,.0f} MB, "
                f"{self.mb_per_s:,.0f} MB/s, ETA {eta_text}")


@dataclass
class GenerateResult:
    """What a generation run did. Totals cover every rank (gathered on rank 0 and shared)."""

    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    reused: bool = False
    #: the files were written by another tool (a DLIO dataset with the spec's names), used as they are
    adopted: bool = False
    #: seconds spent encoding (images), summed over files
    encode_seconds: float = 0.0
    #: seconds of the writer threads per stage, summed over threads and ranks: random (making the
    #: random bytes), format (the format's own work: layout, checksums, compression,
    #: copies), encode (images), write (the storage's write calls), commit, companions
    stages: dict[str, float] = field(default_factory=dict)
    #: key -> size of every file of the dataset (data files and companions)
    sizes: dict[str, int] = field(default_factory=dict)
    threads: int = 1
    ranks: int = 1
    digest: str = ""
    #: what was done: 'generated', 'reused', 'regenerated' or 'adopted', and why (the state
    #: found: 'no dataset there', 'crc32c mismatch in ...', 'asked for (--iobench-regenerate)')
    action: str = "generated"
    why: str = ""
    #: the reuse check's reading of the files (integrity.Verification.to_dict()); None when
    #: nothing was reused
    verification: dict[str, Any] | None = None
    #: seconds this process waited for another's generation (the lease) before it could start
    waited: float = 0.0
    #: an adopted DLIO dataset of more training files than the spec reads (names ``_of_N``): N,
    #: of which the first num_files_train are read (the spec's num_files_generated); else 0
    num_files_generated: int = 0
    #: what the run must say (a subset of an adopted dataset read)
    warnings: list[str] = field(default_factory=list)

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.seconds / 1e6 if self.seconds > 0 else 0.0

    @property
    def files_per_s(self) -> float:
        return self.files / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- where a dataset lives ------------------------------------------------------------------
def dlio_folder(spec: DatasetSpec) -> str:
    """The spec's data_folder made relative ('.', '..' and empty segments dropped): where DLIO
    puts the dataset under its storage root, e.g. ``data/unet3d``."""
    return "/".join(p for p in spec.data_folder.replace("\\", "/").split("/") if p not in ("", ".", ".."))


def dataset_prefix(spec: DatasetSpec) -> str:
    """The folder of a dataset under a datasets area: its data_folder (made relative: '.',
    '..' and empty segments dropped) then the spec digest, e.g. ``data/unet3d/3f2a9c1b7d0e4a51``.
    Different specs never share a folder; the same spec always finds its own again."""
    folder = dlio_folder(spec)
    return f"{folder}/{spec.digest()}" if folder else spec.digest()


def dlio_folders(spec: DatasetSpec) -> list[str]:
    """The folders DLIO lists or writes whatever the files: ``train/`` and ``valid/`` (DLIO lists
    ``<data_folder>/valid`` on every training run, evaluation or not, and stops when it is
    missing), and tfrecord's ``index/train/`` and ``index/valid/``. Made empty where the storage
    has folders (Storage.make_folder; object stores need nothing)."""
    return ["train/", "valid/", *spec.format_info.folders]


def make_folders(spec: DatasetSpec, storage: Storage) -> None:
    for folder in dlio_folders(spec):
        storage.make_folder(folder)


def all_keys(spec: DatasetSpec) -> list[str]:
    """Every key a complete dataset has: data files and their companions (not the manifest)."""
    fmt = get_format(spec.format)
    keys = []
    for _, _, key in spec.all_files():
        keys.append(key)
        keys.extend(fmt.companion_keys(key))
    return keys


# -- the manifest ----------------------------------------------------------------------------
def read_manifest(storage: Storage) -> dict[str, Any] | None:
    """The manifest at the root of ``storage``, or None when there is none (or it is unreadable)."""
    try:
        data = storage.get(MANIFEST)
    except StorageNotFound:
        return None
    try:
        manifest = json.loads(bytes(data))
    except ValueError:
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("kind") == MANIFEST_KIND else None


def spec_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for every content key that differs."""
    out = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            out.append(f"{key}: {old.get(key)!r} -> {new.get(key)!r}")
    return out


def _listed(storage: Storage) -> list[str]:
    """Every key under the dataset folders (train/, valid/, index/)."""
    keys: list[str] = []
    for folder in FOLDERS:
        keys.extend(storage.list(folder))
    return keys


def _has(storage: Storage, key: str) -> bool:
    return key in storage.list(key)  # a listing, not a stat: generation stats no file


def check_existing(spec: DatasetSpec, storage: Storage, verify_mode: str = "none",
                   verified: list[Verification] | None = None) -> tuple[str, str, dict[str, Any] | None]:
    """('complete' | 'absent' | 'incomplete' | 'corrupt' | 'interrupted' | 'foreign' | 'mismatch',
    why, manifest).

    incomplete, corrupt and interrupted are ours (a manifest, or the in-progress marker): safe
    to replace. foreign: files with neither, which only regeneration asked for may replace.
    ``verify_mode`` (integrity.MODES): how much of a complete dataset's content is read back
    and compared with the manifest's checksums; what was read is appended to ``verified``."""
    manifest = read_manifest(storage)
    if manifest is None:
        present = _listed(storage)
        if _has(storage, MARKER):
            return "interrupted", "an earlier generation did not finish", None
        if present:
            return "foreign", f"{len(present)} files with no {MANIFEST}, e.g. {present[0]}", None
        return "absent", "no manifest", None
    if manifest.get("digest") != spec.digest():
        diff = spec_differences(manifest.get("content", {}), spec.content_dict())
        return "mismatch", "; ".join(diff) or "the spec digest differs", manifest
    sizes: dict[str, int] = manifest.get("files", {})
    expected = all_keys(spec)
    if sorted(sizes) != sorted(expected):
        return "incomplete", "the manifest does not list the spec's files", manifest
    listed = set(_listed(storage))
    missing = [k for k in expected if k not in listed]
    if missing:
        return "incomplete", f"{len(missing)} files are missing, e.g. {missing[0]}", manifest
    step = max(1, len(expected) // STAT_ALL_UP_TO)
    checked = expected[::step]
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="iobench-stat") as pool:
        found = list(pool.map(lambda key: storage.stat(key).size, checked))
    for key, size in zip(checked, found):
        if size != sizes[key]:
            return "incomplete", f"{key} has {size} bytes, the manifest says {sizes[key]}", manifest
    verification = verify(storage, manifest.get("checksums"), sizes, verify_mode)
    if verified is not None:
        verified.append(verification)
    if verification.mismatch:
        return "corrupt", f"crc32c mismatch: {verification.mismatch}", manifest
    return "complete", "", manifest


def write_marker(storage: Storage, spec: DatasetSpec) -> None:
    """Claim the folder for a generation (or deletion) of ours, before touching any file."""
    marker = {"kind": MARKER_KIND, "digest": spec.digest(), "spec": spec.to_dict(),
              "started": datetime.now(UTC).isoformat(timespec="seconds")}
    storage.put(MARKER, json.dumps(marker).encode())


def write_manifest(storage: Storage, spec: DatasetSpec, sizes: dict[str, int], *, ranks: int, threads: int,
                   seconds: float, checksums: dict[str, str] | None = None) -> dict[str, Any]:
    manifest = {
        "kind": MANIFEST_KIND,
        "version": 1,
        "digest": spec.digest(),
        "spec": spec.to_dict(),
        "content": spec.content_dict(),
        "files": dict(sorted(sizes.items())),
        #: every file's CRC-32C as it was written (integrity.py): what a reuse reads back
        "checksums": dict(sorted((checksums or {}).items())),
        "bytes": sum(sizes.values()),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "generated_with": {"ranks": ranks, "threads": threads, "seconds": round(seconds, 3)},
    }
    storage.put(MANIFEST, json.dumps(manifest, indent=1).encode())
    storage.delete(MARKER)  # after the manifest: at every moment one of them says the files are ours
    return manifest


def _read_marker(storage: Storage) -> dict[str, Any] | None:
    try:
        marker = json.loads(bytes(storage.get(MARKER)))
    except (StorageNotFound, ValueError):
        return None
    return marker if isinstance(marker, dict) and marker.get("kind") == MARKER_KIND else None


def our_names(storage: Storage, spec: DatasetSpec | None = None, manifest: dict[str, Any] | None = None) -> set[str]:
    """The names this tool writes in a dataset folder: the files ``spec`` defines, those the
    manifest lists, those of the spec the manifest or the in-progress marker was written for."""
    names: set[str] = set(all_keys(spec)) if spec is not None else set()
    manifest = manifest if manifest is not None else read_manifest(storage)
    marker = _read_marker(storage)
    for record in (manifest, marker):
        if not record:
            continue
        names.update(record.get("files", {}))
        try:
            names.update(all_keys(DatasetSpec.from_mapping(record["spec"])))
        except (KeyError, TypeError, ValueError, DatasetSpecError):
            pass  # an older record without its spec: its file list (a manifest's) is what we know
    return names


def _clear(storage: Storage, names: set[str]) -> tuple[int, list[str]]:
    """Delete the manifest (first: nothing half-deleted looks complete) and those of ``names``
    present under the dataset folders; the marker, written before, stays and says that what a
    crash leaves is ours. Returns (files deleted, files left: not ours, reported, never touched)."""
    storage.delete(MANIFEST)
    present = _listed(storage)
    ours = [k for k in present if k in names]
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="iobench-delete") as pool:
        list(pool.map(storage.delete, ours))
    return len(ours), [k for k in present if k not in names]


def out_of_space(exc: BaseException) -> bool:
    """Whether a failure is the storage being full (ENOSPC, or a quota: EDQUOT)."""
    import errno

    seen = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if getattr(cause, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(cause) or "Disk quota exceeded" in str(cause):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def discard(storage: Storage, spec: DatasetSpec) -> None:
    """After a generation that failed for want of space: delete what it wrote (the spec's
    files, the marker last), so that it holds no space and nothing of it looks complete.
    Best effort: what cannot be deleted keeps the marker, and the next run cleans it."""
    try:
        _clear(storage, our_names(storage, spec))
        storage.delete(MARKER)
    except StorageError:
        pass


def interrupted_generations(area: Storage, skip: str = "") -> list[tuple[str, int]]:
    """(folder, files) of each generation in ``area`` (a datasets area) that never finished
    (its in-progress marker is there, no manifest): space an earlier failed or killed run holds.
    ``skip``: a folder not to count (the one being generated)."""
    keys = area.list("")
    folders = [k[: -len(MARKER) - 1] for k in keys if k.endswith("/" + MARKER) or k == MARKER]
    found = []
    for folder in folders:
        if folder == skip.strip("/") or f"{folder}/{MANIFEST}" in keys:
            continue
        under = [k for k in keys if k.startswith(f"{folder}/") and not k.endswith(MARKER)]
        found.append((folder, len(under)))
    return found


def _left_note(storage: Storage, left: list[str]) -> str:
    return (f"{len(left)} files under {storage.uri('')} that this tool did not write were left as they are, "
            f"e.g. {left[0]}") if left else ""


def delete_dataset(storage: Storage, spec: DatasetSpec | None = None) -> int:
    """Remove a dataset of ours (manifest, the files of its spec, marker); returns the files
    deleted. Files with neither our manifest nor our marker (adopted, or someone else's) are
    refused; other files beside ours are left (and named in a warning)."""
    manifest = read_manifest(storage)
    if manifest is None and not _has(storage, MARKER):
        present = _listed(storage)
        if present:
            raise ForeignData(f"{storage.uri('')}: not deleted: its {len(present)} files were not written by this "
                              f"tool (no {MANIFEST}, e.g. {present[0]})")
    names = our_names(storage, spec, manifest)
    marker = {"kind": MARKER_KIND, "deleting": True, "files": sorted(names),
              "started": datetime.now(UTC).isoformat(timespec="seconds")}
    storage.put(MARKER, json.dumps(marker).encode())
    deleted, left = _clear(storage, names)
    storage.delete(MARKER)
    if left:
        import warnings

        warnings.warn(_left_note(storage, left), stacklevel=2)
    return deleted


# -- writing ---------------------------------------------------------------------------------
#: the stages a generation's time goes to, in the writer threads (``GenerateResult.stages``)
STAGES = ("random", "format", "encode", "write", "commit", "companions")


class _Tally:
    """Bytes, files and time per stage of this process, shared by its writer threads."""

    def __init__(self, files_total: int, source_total: int):
        self.lock = threading.Lock()
        self.files_done = 0
        self.files_total = files_total
        self.bytes_done = 0
        self.source_total = source_total
        #: random bytes of the files finished (each counted at its expected size)
        self.source_finished = 0
        #: the files being written: their streams and the random bytes each is expected to pull
        self.streams: dict[str, tuple[RandomStream, int]] = {}
        self.encode_seconds = 0.0
        #: seconds of the writer threads per stage (STAGES), summed over threads
        self.stages = dict.fromkeys(STAGES, 0.0)
        self.stop = threading.Event()

    def add(self, n: int) -> None:
        with self.lock:
            self.bytes_done += n

    def source_done(self) -> int:
        """Random bytes pulled so far (called with the lock held)."""
        return self.source_finished + sum(min(s.position, n) for s, n in self.streams.values())


class _TallyWriter(StreamWriter):
    """Passes writes through, counting them and timing the storage's part, and stops a file once
    the run is cancelled. Every byte of a data file passes through ``_write`` here, once, in
    order: the one place to hook anything computed over the written bytes (a digest)."""

    def __init__(self, inner: StreamWriter, tally: _Tally):
        super().__init__(inner.storage, inner.key)
        self.inner = inner
        self.tally = tally
        self.write_seconds = 0.0
        self.commit_seconds = 0.0

    def _write(self, view: memoryview) -> None:
        if self.tally.stop.is_set():
            raise GenerationCancelled(f"{self.key}: generation cancelled")
        start = time.perf_counter()
        self.inner.write(view)
        self.write_seconds += time.perf_counter() - start
        self.tally.add(view.nbytes)

    def _commit(self) -> None:
        start = time.perf_counter()
        self.inner.commit()
        self.commit_seconds += time.perf_counter() - start

    def _abort(self) -> None:
        self.inner.abort()


def file_stream(spec: DatasetSpec, split: str, index: int) -> RandomStream:
    """The random stream of one file, sized to what its format pulls."""
    expected = get_format(spec.format).stream_bytes(spec, split, index)
    return stream_for(spec.seed, SPLITS[split], index, limit=expected)


def write_file(spec: DatasetSpec, storage: Storage, split: str, index: int, *, fsync: bool = False,
               tally: _Tally | None = None, writing: threading.Semaphore | None = None,
               stream: RandomStream | None = None) -> dict[str, int]:
    """Write one file (and its companions); returns {key: size} of what was written.

    ``writing``: a slot held while the file is written and given back before its commit, so
    that another file is written while this one's commit waits for the device. ``stream``: the
    file's random stream, made (and started) beforehand by the caller (``file_stream``)."""
    fmt = get_format(spec.format)
    key = spec.file_key(split, index)
    slot = _Slot(writing)
    with slot:
        if tally is not None and tally.stop.is_set():
            raise GenerationCancelled(f"{key}: generation cancelled")
        expected = fmt.stream_bytes(spec, split, index)
        if stream is None:
            stream = file_stream(spec, split, index)
        inner = storage.open_writer(key, fsync=fsync)
        writer = _TallyWriter(inner, tally) if tally is not None else inner
        if tally is not None:
            with tally.lock:
                tally.streams[key] = (stream, expected)
        try:
            with writer:  # commits when the block ends normally, aborts on any exception
                start = time.perf_counter()
                info = fmt.write(writer, spec, split, index, stream)
                written = time.perf_counter() - start
                waited = stream.waited
                if tally is not None:
                    with tally.lock:
                        del tally.streams[key]
                        tally.source_finished += expected
                del stream  # its buffers go before the commit
                slot.release()  # the commit (an fsync) runs while another file is written
                # the companions before the data file's commit: a data file never appears without
                # them (their sizes from the writers: a stat would cost a request per file on
                # object stores). Not in the slot: their fsyncs wait behind the device too.
                start = time.perf_counter()
                sizes = fmt.write_companions(storage, key, spec, split, index, fsync=fsync)
                companions = time.perf_counter() - start if sizes else 0.0
        finally:
            if tally is not None:
                with tally.lock:
                    tally.streams.pop(key, None)
    if tally is not None:
        assert isinstance(writer, _TallyWriter)  # what a tally writes through
        with tally.lock:
            tally.files_done += 1
            tally.encode_seconds += info.encode_seconds
            stages = tally.stages
            stages["random"] += waited
            stages["encode"] += info.encode_seconds
            stages["write"] += writer.write_seconds
            stages["format"] += max(0.0, written - waited - info.encode_seconds - writer.write_seconds)
            stages["commit"] += writer.commit_seconds
            stages["companions"] += companions
    sizes[key] = writer.bytes_written
    return sizes


class _Slot:
    """Holds a semaphore (or nothing) from entry until ``release()`` or exit, whichever first."""

    def __init__(self, semaphore: threading.Semaphore | None):
        self.semaphore = semaphore

    def __enter__(self) -> _Slot:
        if self.semaphore is not None:
            self.semaphore.acquire()
        return self

    def release(self) -> None:
        semaphore, self.semaphore = self.semaphore, None
        if semaphore is not None:
            semaphore.release()

    def __exit__(self, *exc: object) -> None:
        self.release()


def commits_aside(storage: Storage, fsync: bool) -> bool:
    """Whether a file's commit runs beside the writing of the next files: when it waits for the
    device (an fsync, asked for or always made) and holds nothing of the process's (a file's
    bytes are the kernel's by then; an S3 upload still holds its parts in flight)."""
    return storage.kind != "s3" and (fsync or storage.write_always_syncs)


def _my_files(spec: DatasetSpec, rank: int, ranks: int) -> list[tuple[str, int]]:
    files = [(split, index) for split, index, _ in spec.all_files()]
    return [f for g, f in enumerate(files) if g % ranks == rank]


class _Files:
    """The files still to write, handed out one at a time to the writer threads, in order, each
    with its random stream."""

    def __init__(self, spec: DatasetSpec, files: list[tuple[str, int]], stop: threading.Event):
        self._spec = spec
        self._files = iter(files)
        self._lock = threading.Lock()
        self._stop = stop

    def claim(self) -> tuple[str, int, RandomStream] | None:
        """The next file and its stream, or None when there is none left (or the run stops)."""
        if self._stop.is_set():
            return None
        with self._lock:
            item = next(self._files, None)
        return None if item is None else (*item, file_stream(self._spec, *item))


def write_files(spec: DatasetSpec, storage: Storage, files: list[tuple[str, int]], *, threads: int = 1,
                fsync: bool = False, progress: Callable[[Progress], None] | None = None,
                interval: float = 1.0, rank: int = 0, ranks: int = 1) -> tuple[dict[str, int], float, dict[str, Any]]:
    """Write ``files`` ((split, index) pairs) with ``threads`` writers. At most ``threads`` files
    are being written at once; when commits wait for the device (``commits_aside``), up to
    ``threads`` more are being committed meanwhile: with every thread writing a file and then
    waiting for its fsync, the CPU idled while the device wrote and the device while the CPU
    generated (durable parquet with 2 threads: 0.64-0.69 of a plain write, 0.79-0.83 with the
    commits aside). Each writer thread takes file after file from one queue (``_Files``).
    Returns ({key: size}, encode seconds, seconds per stage). On the first failure the other
    files in flight are aborted and the failure is raised."""
    fmt = get_format(spec.format)
    expected = sum(fmt.stream_bytes(spec, s, i) for s, i in files)
    tally = _Tally(len(files), expected)
    sizes: dict[str, int] = {}
    ticker = _Ticker(tally, progress, interval, rank, ranks) if progress is not None else None
    workers = max(1, threads)
    writing = None
    if commits_aside(storage, fsync):
        writing = threading.Semaphore(workers)
        workers *= 2  # the files being written, and as many being committed
    queue = _Files(spec, files, tally.stop)
    errors: list[BaseException] = []

    def writer_loop() -> None:
        # one thread writes file after file: no task and future per file, no waiting in between
        try:
            while (claimed := queue.claim()) is not None:
                split, index, stream = claimed
                done = write_file(spec, storage, split, index, fsync=fsync, tally=tally, writing=writing,
                                  stream=stream)
                with tally.lock:
                    sizes.update(done)
        except BaseException as exc:  # the run stops: the other writers abort their files
            tally.stop.set()
            errors.append(exc)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="iobench-gen") as pool:
        running = [pool.submit(writer_loop) for _ in range(min(workers, len(files)))]
        try:
            wait(running)
        except BaseException as exc:  # KeyboardInterrupt: stop the writers in flight
            tally.stop.set()
            wait(running)
            errors.insert(0, exc)
        finally:
            if ticker is not None:
                ticker.stop()
    if errors:
        # the failure that stopped the run, not the cancellations it caused
        raise next((e for e in errors if not isinstance(e, GenerationCancelled)), errors[0])
    return sizes, tally.encode_seconds, dict(tally.stages)


class _Ticker:
    """Calls the progress reporter about every ``interval`` seconds from its own thread."""

    def __init__(self, tally: _Tally, report: Callable[[Progress], None], interval: float, rank: int, ranks: int):
        self.tally = tally
        self.report = report
        self.interval = interval
        self.rank, self.ranks = rank, ranks
        self.start = time.monotonic()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="iobench-gen-progress", daemon=True)
        self._thread.start()

    def snapshot(self) -> Progress:
        t = self.tally
        with t.lock:
            return Progress(t.files_done, t.files_total, t.bytes_done, t.source_done(), t.source_total,
                            time.monotonic() - self.start, self.rank, self.ranks)

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            try:
                self.report(self.snapshot())
            except Exception:  # a broken reporter must not break generation
                pass

    def stop(self) -> None:
        self._done.set()
        self._thread.join()
        try:
            self.report(self.snapshot())
        except Exception:
            pass


# -- the whole dataset -------------------------------------------------------------------------
def generate(spec: DatasetSpec, storage: Storage, *, threads: int = 1, comm: Any = None, regenerate: bool = False,
             fsync: bool = False, progress: Callable[[Progress], None] | None = None,
             interval: float = 1.0, adopt: bool = False, verify: str = "sample",
             on_corrupt: str = "fail") -> GenerateResult:
    """Generate (or reuse) the dataset of ``spec`` at the root of ``storage``.

    ``comm``: the ranks' communicator (mpi.context.world()); None for one process. Every rank
    calls this with the same spec; rank r writes files g with g % ranks == r. Unless
    ``regenerate``, raises DatasetMismatch when the root holds another spec's dataset, and
    ForeignData (a DatasetMismatch) when it holds files this tool did not write. ``adopt``:
    files another tool wrote (a DLIO dataset) whose names are exactly the spec's are used as
    they are, for reading (nothing written, no manifest; ``result.adopted``).

    ``verify`` (integrity.MODES): how much of a kept dataset is read back and checked against
    the checksums its manifest recorded before it is reused. A mismatch (a file changed since
    it was written) raises DatasetCorrupt naming the file when ``on_corrupt`` is 'fail', and
    regenerates the dataset when it is 'regenerate' (``result.action``/``why`` say so).
    """
    if on_corrupt not in ON_CORRUPT:
        raise ValueError(f"on_corrupt {on_corrupt!r}: use one of {', '.join(ON_CORRUPT)}")
    if comm is None:
        comm = _OneRank()
    rank, ranks = comm.rank, comm.size
    decision = None
    if rank == 0:
        decision = _decide(spec, storage, regenerate, adopt, verify, on_corrupt)
    decision = comm.bcast(decision, root=0)
    if decision["action"] == "error":
        raise _ERRORS[decision.get("error", "mismatch")](decision["message"])
    if decision["action"] == "reuse" and rank == 0:
        make_folders(spec, storage)  # a dataset of ours from before valid/ was always made
    if decision["action"] in ("reuse", "adopt"):
        sizes = decision["sizes"]
        return GenerateResult(files=len(spec.all_files()), bytes=sum(sizes.values()), reused=True, sizes=sizes,
                              adopted=decision["action"] == "adopt", threads=threads, ranks=ranks, digest=spec.digest(),
                              action="adopted" if decision["action"] == "adopt" else "reused",
                              why=decision.get("why", ""), verification=decision.get("verification"),
                              **_adopted_subset(decision, warn=rank == 0))
    comm.barrier()  # rank 0 has cleared the location
    start = time.monotonic()
    failure = None
    # every byte written passes the checksumming writer on its way: the manifest's checksums
    # cost no read
    checked = ChecksummingStorage(storage)
    try:
        sizes, encode, stages = write_files(spec, checked, _my_files(spec, rank, ranks), threads=threads,
                                            fsync=fsync, progress=progress, interval=interval, rank=rank, ranks=ranks)
    except Exception as exc:
        failure = f"rank {rank}: {type(exc).__name__}: {exc}"
        sizes, encode, stages = {}, 0.0, {}
        full = out_of_space(exc)
        if ranks == 1:
            if full:
                discard(storage, spec)
            raise
    else:
        full = False
    # every rank reports, so a failed rank does not leave the others waiting
    gathered = comm.gather({"sizes": sizes, "encode": encode, "stages": stages, "failure": failure,
                            "checksums": checked.checksums, "full": full}, root=0)
    summary = None
    if rank == 0:
        failures = [g["failure"] for g in gathered if g["failure"]]
        all_sizes: dict[str, int] = {}
        checksums: dict[str, str] = {}
        for g in gathered:
            all_sizes.update(g["sizes"])
            checksums.update(g["checksums"])
        seconds = time.monotonic() - start
        if not failures:
            make_folders(spec, storage)  # before the manifest: a complete dataset has them
            write_manifest(storage, spec, all_sizes, ranks=ranks, threads=threads, seconds=seconds,
                           checksums={k: v for k, v in checksums.items() if k in all_sizes})
        elif any(g["full"] for g in gathered):
            discard(storage, spec)
        summary = {"sizes": all_sizes, "encode": sum(g["encode"] for g in gathered), "seconds": seconds,
                   "failures": failures,
                   "stages": {s: sum(g["stages"].get(s, 0.0) for g in gathered) for s in STAGES}}
    summary = comm.bcast(summary, root=0)
    if summary["failures"]:
        raise RuntimeError("generation failed: " + "; ".join(summary["failures"]))
    sizes = summary["sizes"]
    return GenerateResult(files=len(spec.all_files()), bytes=sum(sizes.values()), seconds=summary["seconds"],
                          encode_seconds=summary["encode"], sizes=sizes, threads=threads, ranks=ranks,
                          digest=spec.digest(), action=decision.get("did", "generated"), why=decision.get("why", ""),
                          verification=decision.get("verification"), stages=summary["stages"])


class _OneRank:
    """The communicator of a run in one process (the data layer does not depend on mpi/)."""

    rank, size = 0, 1

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return obj

    def gather(self, obj: Any, root: int = 0) -> Any:
        return [obj]

    def barrier(self) -> None:
        pass


_WHY = {"absent": "no dataset there", "interrupted": "an earlier generation did not finish"}


def _decide(spec: DatasetSpec, storage: Storage, regenerate: bool, adopt: bool = False, verify_mode: str = "none",
            on_corrupt: str = "fail") -> dict[str, Any]:
    checked: list[Verification] = []
    # nothing is read back when it is to be replaced anyway
    state, why, manifest = check_existing(spec, storage, "none" if regenerate else verify_mode, checked)
    verification = checked[0].to_dict() if checked else None
    if state == "complete" and not regenerate:
        assert manifest is not None  # a complete dataset has its manifest
        return {"action": "reuse", "sizes": manifest["files"], "verification": verification,
                "why": checked[0].describe() if checked else ""}
    how = ("ask for regeneration (--iobench-regenerate under pytest, --regenerate on the command line, "
           "or regenerate=True) to replace it, or use another data_folder")
    if state == "corrupt" and on_corrupt == "fail":
        return {"action": "error", "error": "corrupt", "message": (
            f"{storage.uri('')}: a kept dataset's file changed since it was written ({why}); nothing was changed; "
            "regenerate it (--iobench-regenerate, or --iobench-on-corrupt=regenerate to do so whenever this "
            "happens), and check the storage: it returned other bytes than were written")}
    if state == "mismatch" and not regenerate:
        return {"action": "error", "error": "mismatch", "message": (
            f"{storage.uri('')} holds a dataset generated from another spec ({why}); {how}")}
    if state == "foreign" and not regenerate:
        if adopt:
            return _adopt(spec, storage)
        return {"action": "error", "error": "foreign", "message": (
            f"{storage.uri('')} holds files this tool did not write ({why}; a DLIO dataset?); nothing was "
            f"changed; {how.replace('replace it', 'replace them')}; or, to read them as they are when their "
            "names are this spec's, adopt them (--adopt on the command line, adopt=True)")}
    names = our_names(storage, spec, manifest)  # before the marker of this run adds its own
    write_marker(storage, spec)  # before any file is deleted or written
    left: list[str] = []
    if state != "absent":
        _, left = _clear(storage, names)
    if state == "absent":
        did, why = "generated", _WHY["absent"]
    elif regenerate:
        did, why = "regenerated", f"asked for (regenerate); found: {_WHY.get(state, why or state)}"
    else:
        did, why = "regenerated", _WHY.get(state, why)
    if left:
        why += "; " + _left_note(storage, left)
    return {"action": "generate", "did": did, "why": why, "verification": verification}


class SubsetWarning(UserWarning):
    """An adopted dataset holds more training files than the spec reads: the first are read."""


#: DLIO's file name: ``{prefix}_{i}_of_{N}.{ext}``
_DLIO_NAME = re.compile(r"^(?P<prefix>.+)_(?P<index>\d+)_of_(?P<total>\d+)\.(?P<ext>[^/]+)$")


def _generated_count(spec: DatasetSpec, present: set[str]) -> int:
    """The N of the ``_of_N`` training files present when they are one set of more files than
    the spec reads (a DLIO dataset generated larger than the workload asks), else 0."""
    totals = set()
    for key in present:
        if not key.startswith("train/"):
            continue
        match = _DLIO_NAME.match(key.rsplit("/", 1)[-1])
        if match and match["prefix"] == spec.file_prefix and match["ext"] == spec.extension:
            totals.add(int(match["total"]))
    total = totals.pop() if len(totals) == 1 else 0
    return total if total > spec.num_files_train else 0


def _adopted_subset(decision: dict[str, Any], warn: bool) -> dict[str, Any]:
    """The GenerateResult fields of an adopted subset, warning once (rank 0) as DLIO does."""
    generated = decision.get("num_files_generated", 0)
    if not generated:
        return {}
    if warn:
        warnings.warn(decision["warning"], SubsetWarning, stacklevel=3)
    return {"num_files_generated": generated, "warnings": [decision["warning"]]}


def _adopt(spec: DatasetSpec, storage: Storage) -> dict[str, Any]:
    """Use another tool's files as they are when they are the spec's files (DLIO's names):
    their sizes, read from the storage; nothing is written. A DLIO dataset of more training
    files than the spec reads (names ``_of_N``, N > num_files_train) is adopted as DLIO uses it:
    its first num_files_train files, with a warning. Files in ``valid/`` of a spec without
    evaluation files (a run that does not evaluate) are left unread."""
    present = set(_listed(storage))
    generated = 0
    if not spec.num_files_generated and any(k not in present for k in spec.file_keys("train")):
        generated = _generated_count(spec, present)
        if generated:
            spec = replace(spec, num_files_generated=generated)
    expected = all_keys(spec)
    missing = [k for k in expected if k not in present]
    fmt = get_format(spec.format)
    # num_files_generated: the files past the first num_files_train belong to the set, unread
    unread = {name for key in spec.unread_keys() for name in (key, *fmt.companion_keys(key))}
    if not spec.num_files_eval:
        unread |= {key for key in present if key.startswith(("valid/", "index/valid/"))}
    extra = sorted(present - set(expected) - unread)
    if missing or extra:
        what = f"{len(missing)} of the spec's files are missing, e.g. {missing[0]}" if missing else \
            f"{len(extra)} files are not the spec's, e.g. {extra[0]}"
        return {"action": "error", "error": "foreign", "message": (
            f"{storage.uri('')}: cannot adopt the files there for this spec ({what}); give the spec they were "
            "generated with (file_prefix, num_files_*, num_subfolders_*, format, compression), or regenerate")}
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="iobench-stat") as pool:
        sizes = dict(zip(expected, pool.map(lambda key: storage.stat(key).size, expected)))
    decision: dict[str, Any] = {"action": "adopt", "sizes": sizes}
    if generated:
        decision["num_files_generated"] = generated
        decision["warning"] = (
            f"{storage.uri('train/')} holds {generated} training files; the workload reads the first "
            f"{spec.num_files_train} (dataset.num_files_train), as DLIO uses a subset of a larger dataset")
    return decision


def nothing_to_adopt(spec: DatasetSpec, where: str) -> NothingToAdopt:
    example = spec.all_files()[0][2] if spec.all_files() else MANIFEST
    return NothingToAdopt(f"{where.rstrip('/')}: no dataset to adopt (nothing under {', '.join(FOLDERS)}): "
                          f"expected the spec's files there, e.g. {example}")


def adopt(spec: DatasetSpec, storage: Storage) -> GenerateResult:
    """The dataset of ``spec`` at the root of ``storage`` used as it is, never written: another
    tool's files with the spec's names (a DLIO dataset: ``result.adopted``), or a complete
    dataset of ours. NothingToAdopt when there is none; ForeignData or DatasetMismatch when
    the files there are not the spec's."""
    state, why, manifest = check_existing(spec, storage)
    decision: dict[str, Any] = {}
    if state == "complete":
        assert manifest is not None  # a complete dataset has its manifest
        sizes = manifest["files"]
    elif state == "foreign":
        decision = _adopt(spec, storage)
        if decision["action"] == "error":
            raise ForeignData(decision["message"])
        sizes = decision["sizes"]
    elif state == "absent":
        raise nothing_to_adopt(spec, storage.uri(""))
    else:
        raise DatasetMismatch(f"{storage.uri('')}: cannot adopt the dataset there ({why}); nothing was changed")
    return GenerateResult(files=len(spec.all_files()), bytes=sum(sizes.values()), reused=True, sizes=sizes,
                          adopted=state == "foreign", digest=spec.digest(), **_adopted_subset(decision, warn=True))
