"""Generation: identical bytes for any thread count, rank count (real mpiexec) and storage
library; the manifest (reuse, mismatch, regeneration); nothing complete-looking after a failure;
bad specs rejected before anything is written; progress; memory bounded by a slow storage."""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time

import numpy as np
import pytest

from pytest_iobench.data.datasets import DatasetCache
from pytest_iobench.data.formats import get_format
from pytest_iobench.data.generate import (
    MANIFEST,
    MARKER,
    DatasetMismatch,
    ForeignData,
    Progress,
    dataset_prefix,
    delete_dataset,
    generate,
    read_manifest,
)
from pytest_iobench.data.memory import PeakRSS
from pytest_iobench.data.random import STAGING
from pytest_iobench.data.spec import FORMATS, DatasetSpec, DatasetSpecError
from pytest_iobench.mpi.generate import main
from pytest_iobench.mpi.launch import launch
from pytest_iobench.storage import Storage, StorageError, StorageSpec, open_storage
from pytest_iobench.storage.wrapping import WrappedStorage, WrappedWriter

MiB = 1 << 20


def local(path) -> Storage:
    return open_storage(StorageSpec("local", "posix", root=str(path)))


def hashes(storage: Storage) -> dict[str, str]:
    """sha256 of every object but the manifest (which records when and how it was made)."""
    return {key: hashlib.sha256(bytes(storage.get(key))).hexdigest()
            for key in storage.list("") if key != MANIFEST}


def small(fmt: str, **extra) -> DatasetSpec:
    images = fmt in ("jpeg", "png")
    return DatasetSpec.from_mapping({
        "format": fmt, "num_files_train": 6, "num_files_eval": 2, "num_subfolders_train": 2,
        "num_samples_per_file": 1 if images else 3, "record_length_bytes": 30000,
        "record_length_bytes_stdev": 3000, **extra})


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "mmap_indexed_binary"])
def test_same_bytes_with_1_and_4_threads(tmp_path, fmt):
    spec = small(fmt)
    one, four = local(tmp_path / "t1"), local(tmp_path / "t4")
    r1 = generate(spec, one, threads=1)
    r4 = generate(spec, four, threads=4)
    assert r1.sizes == r4.sizes and len(r1.sizes) >= 8
    assert hashes(one) == hashes(four)
    assert set(hashes(one)) == set(r1.sizes)  # every file generation reported, and no other


#: every format, and each compression whose output could follow how its input is handed over
BUFFER_CASES = {f: {} for f in FORMATS if f != "mmap_indexed_binary"} | {
    "npz-zip-0": {"format": "npz", "compression": "zip", "compression_level": 0},
    "npz-zip-1": {"format": "npz", "compression": "zip", "compression_level": 1},
    "hdf5-gzip-0": {"format": "hdf5", "compression": "gzip", "compression_level": 0},
    "hdf5-lzf": {"format": "hdf5", "compression": "lzf", "num_samples_per_file": 40},
    "csv-gzip-0": {"format": "csv", "compression": "gzip", "compression_level": 0},
    "csv-zip-0": {"format": "csv", "compression": "zip", "compression_level": 0},
    "csv-xz": {"format": "csv", "compression": "xz", "compression_level": 0},
    "parquet-zstd": {"format": "parquet", "compression": "zstd"},
}


@pytest.mark.parametrize("case", list(BUFFER_CASES))
def test_same_bytes_whatever_the_generation_buffer_size(tmp_path, case):
    # generation_buffer_size sets the pieces handed to the storage (64 KiB to 8 MiB), and it is
    # not part of the spec's identity: a kept dataset is reused whatever it says
    extra = {"format": case, **BUFFER_CASES[case]}
    images = extra["format"] in ("jpeg", "png")
    mapping = {"num_files_train": 2, "num_samples_per_file": 1 if images else 2, "record_length_bytes": 300_000,
               **extra}
    spec = DatasetSpec.from_mapping(mapping)
    small_pieces = DatasetSpec.from_mapping({**mapping, "generation_buffer_size": 65536})
    assert small_pieces.write_chunk_bytes == 65536 and small_pieces.digest() == spec.digest()
    a, b = local(tmp_path / "default"), local(tmp_path / "64k")
    generate(spec, a)
    generate(small_pieces, b)
    assert hashes(a) == hashes(b) and len(hashes(a)) >= 2


def test_same_bytes_with_1_and_2_mpi_ranks(tmp_path):
    spec = small("tfrecord", num_files_train=7)
    single = local(tmp_path / "r1")
    generate(spec, single, threads=2)
    two = tmp_path / "r2"
    run = launch("pytest_iobench.mpi.generate",
                 ["--spec", json.dumps(spec.to_dict()), "--root", str(two), "--threads", "2", "--quiet"],
                 ranks=2, timeout=120)
    results = run.check()
    assert [r["rank"] for r in results] == [0, 1] and all(r["result"]["ranks"] == 2 for r in results)
    assert hashes(local(two)) == hashes(single)
    manifest = read_manifest(local(two))
    assert manifest["generated_with"]["ranks"] == 2 and len(manifest["files"]) == 2 * 9  # and their DALI indexes


def test_same_bytes_on_s3_and_local_files(tmp_path, storage_factory):
    spec = small("parquet")
    files = local(tmp_path)
    generate(spec, files)
    s3 = storage_factory.at(storage_factory.get("s3", "minio"), f"gen-{tmp_path.name}")
    try:
        generate(spec, s3, threads=2)
        assert hashes(s3) == hashes(files)
    finally:
        s3.delete_prefix("")


def test_a_complete_dataset_is_reused_and_another_spec_is_refused(tmp_path):
    storage = local(tmp_path)
    spec = small("npy")
    first = generate(spec, storage, threads=2)
    assert not first.reused and read_manifest(storage)["digest"] == spec.digest()
    before = hashes(storage)
    again = generate(spec, storage)
    assert again.reused and again.sizes == first.sizes and hashes(storage) == before

    other = spec.with_changes(record_length_bytes=20000)
    with pytest.raises(DatasetMismatch) as info:
        generate(other, storage)
    message = str(info.value)
    assert "holds a dataset generated from another spec (record_length_bytes: 30000 -> 20000)" in message
    assert "--iobench-regenerate" in message
    assert hashes(storage) == before  # refused: nothing touched

    replaced = generate(other, storage, regenerate=True)
    assert not replaced.reused and read_manifest(storage)["digest"] == other.digest()
    assert set(hashes(storage)) == set(replaced.sizes)


def test_files_this_tool_did_not_write_are_refused_and_left_untouched(tmp_path, capsys):
    # a DLIO-written dataset: its files and names, no manifest of ours
    root = tmp_path / "dlio_ds"
    (root / "train").mkdir(parents=True)
    for i in range(2):
        np.savez(root / "train" / f"img_{i}_of_2.npz", x=np.full((100, 2), i, np.uint8), y=np.zeros(2))
    before = hashes(local(root))
    spec = json.dumps({"format": "npz", "num_files_train": 2, "num_samples_per_file": 2, "record_length_bytes": 100})
    assert main(["--spec", spec, "--root", str(root), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"{root}" in err and "holds files this tool did not write (2 files with no iobench-manifest.json" in err
    assert "nothing was changed" in err and "--regenerate" in err and "another data_folder" in err
    assert hashes(local(root)) == before
    with pytest.raises(ForeignData, match="regenerate=True"):
        generate(DatasetSpec.from_mapping(json.loads(spec)), local(root))
    assert hashes(local(root)) == before and not (root / MARKER).exists()

    # adopted for reading when the names are the spec's: nothing written, DLIO's bytes read
    assert main(["--spec", spec, "--root", str(root), "--adopt"]) == 0
    assert "adopted 2 files" in capsys.readouterr().out and hashes(local(root)) == before
    adopted = generate(DatasetSpec.from_mapping(json.loads(spec)), local(root), adopt=True)
    assert adopted.adopted and adopted.reused and adopted.sizes == {k: (root / k).stat().st_size for k in before}
    with get_format("npz").open(local(root), "train/img_1_of_2.npz", DatasetSpec.from_mapping(json.loads(spec))) as f:
        assert f.num_samples == 2 and f.read_sample(1).tolist() == [1] * 100
    other = DatasetSpec.from_mapping({**json.loads(spec), "num_files_train": 3})
    with pytest.raises(ForeignData, match=r"cannot adopt the files there for this spec .3 of the spec's files are "
                       r"missing, e.g. train/img_0_of_3.npz"):
        generate(other, local(root), adopt=True)
    assert hashes(local(root)) == before
    with pytest.raises(ForeignData, match="not deleted: its 2 files were not written by this tool"):
        delete_dataset(local(root))
    cache = DatasetCache(lambda area, prefix: area, adopt=True)  # read in place: <root>/<data_folder>/
    assert cache.get({**json.loads(spec), "data_folder": ".", "keep_files": False}, local(root)).result.adopted
    assert cache.cleanup() == [] and hashes(local(root)) == before  # keep_files: false never deletes adopted files

    assert main(["--spec", spec, "--root", str(root), "--quiet", "--regenerate"]) == 0
    assert hashes(local(root)) != before and read_manifest(local(root)) is not None
    assert not (root / MARKER).exists()  # removed once the manifest is written


def test_what_an_interrupted_generation_left_is_ours_and_cleaned_silently(tmp_path):
    spec = small("npy", record_length_bytes_stdev=0)
    storage = local(tmp_path)
    with pytest.raises(StorageError):
        generate(spec, FailingStorage(storage, spec.file_key("train", 4), after=1000), threads=1)
    left = storage.list("")
    assert MARKER in left and MANIFEST not in left and spec.file_key("train", 0) in left
    result = generate(spec, storage)  # no regenerate needed: the marker says the files are ours
    assert not result.reused and MARKER not in storage.list("") and read_manifest(storage) is not None
    assert delete_dataset(storage) == len(result.sizes) and storage.list("") == []


def test_a_dataset_with_a_missing_or_resized_file_is_generated_again(tmp_path):
    storage = local(tmp_path)
    spec = small("indexed_binary")
    generate(spec, storage)
    before = hashes(storage)
    victim = spec.file_keys("train")[3]
    storage.delete(victim + ".sz.idx")
    assert not generate(spec, storage).reused
    assert hashes(storage) == before
    storage.put(victim, b"short")
    assert not generate(spec, storage).reused
    assert hashes(storage) == before


class WatchingStorage(WrappedStorage):
    """Records the fsync flag of every writer opened, and every stat."""

    def __init__(self, inner: Storage):
        super().__init__(inner)
        self.opened: dict[str, bool] = {}
        self.stats: list[str] = []

    def open_writer(self, key, *, fsync=False):
        self.opened[key] = fsync
        return super().open_writer(key, fsync=fsync)

    def stat(self, key):
        self.stats.append(key)
        return super().stat(key)


@pytest.mark.parametrize("fsync", [True, False])
def test_index_files_are_durable_with_fsync_and_sized_without_a_stat(tmp_path, fsync):
    spec = small("indexed_binary")
    watching = WatchingStorage(local(tmp_path))
    result = generate(spec, watching, fsync=fsync)
    assert sorted(watching.opened) == sorted(result.sizes) and len(result.sizes) == 3 * 8
    assert set(watching.opened.values()) == {fsync}  # index files included
    assert watching.stats == []  # sizes come from the writers
    assert result.sizes == {key: local(tmp_path).stat(key).size for key in result.sizes}


class FailingStorage(WrappedStorage):
    """A storage whose writer for one key fails after some bytes (a storage error mid-file);
    ``on_fail`` is called just before it fails."""

    def __init__(self, inner: Storage, fail_key: str, after: int, on_fail=None):
        super().__init__(inner)
        self.fail_key, self.after, self.on_fail = fail_key, after, on_fail

    def open_writer(self, key, *, fsync=False):
        writer = self.inner.open_writer(key, fsync=fsync)
        return _FailingWriter(self, writer, self.after) if key == self.fail_key else writer


class _FailingWriter(WrappedWriter):
    def __init__(self, storage: Storage, inner, after: int):
        super().__init__(storage, inner)
        self.after = after

    def _write(self, view):
        room = self.after - self.bytes_written
        if view.nbytes > room:
            self.inner.write(view[:max(0, room)])  # what fits reaches the storage, then it fails
            if self.storage.on_fail is not None:
                self.storage.on_fail()
            raise StorageError("write", self.key, "test", "device full (injected)")
        self.inner.write(view)


def s3_client(storage_factory):
    """A boto3 client of the session's S3 endpoint (the embedded moto server)."""
    import boto3

    ep = storage_factory.endpoint()
    return boto3.client("s3", endpoint_url=ep.url, aws_access_key_id=ep.access_key,
                        aws_secret_access_key=ep.secret_key, region_name=ep.region)


def uploads_under(client, uri: str) -> list[dict]:
    """The multipart uploads in progress under an s3:// URI."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])


@pytest.mark.parametrize("where", ["local", "s3"])
@pytest.mark.parametrize("fmt", ["hdf5", "parquet", "npz"])
def test_a_failed_generation_leaves_nothing_that_looks_complete(tmp_path, storage_factory, where, fmt):
    # files of 10.5 MiB failing after 9 MiB: on S3 past the first 8 MiB part, so the writer
    # has a multipart upload (parts sent) to abort
    spec = small(fmt, num_files_train=4, num_files_eval=0, num_samples_per_file=3,
                 record_length_bytes=7 << 19, record_length_bytes_stdev=0)
    if where == "local":
        inner = local(tmp_path)
    else:
        inner = storage_factory.at(storage_factory.get("s3", "boto3"), f"fail-{fmt}-{tmp_path.name}")
        client = s3_client(storage_factory)
    failing = spec.file_keys("train")[2]
    open_uploads: list[list[dict]] = []
    on_fail = (lambda: open_uploads.append(uploads_under(client, inner.uri(failing)))) if where == "s3" else None
    storage = FailingStorage(inner, failing, after=9 << 20, on_fail=on_fail)
    try:
        with pytest.raises(StorageError, match="device full"):
            generate(spec, storage, threads=3)
        left = inner.list("")
        assert failing not in left and MANIFEST not in left
        assert not any("iobench-tmp" in key for key in left)
        if where == "local":  # no temporary file remains on disk either
            assert not [p for p in tmp_path.rglob("*") if "iobench-tmp" in p.name]
        else:  # the failing file had an upload with parts in flight, and it was aborted
            assert len(open_uploads) == 1 and len(open_uploads[0]) == 1
            assert uploads_under(client, inner.uri("")) == []
        # every file that is there is complete: the next run (no failure) regenerates and reuses none of it blindly
        result = generate(spec, inner, threads=2)
        assert not result.reused and failing in inner.list("train/")
    finally:
        if where == "s3":
            inner.delete_prefix("")


class HoldingStorage(WrappedStorage):
    """A storage whose writer for one key waits, before committing, until ``others`` other files
    have been committed (a file much slower than the rest); it counts files open at once."""

    def __init__(self, inner: Storage, hold_key: str, others: int):
        super().__init__(inner)
        self.hold_key, self.others = hold_key, others
        self.lock = threading.Lock()
        self.released = threading.Event()
        self.committed, self.open_now, self.open_most = 0, 0, 0
        self.committed_when_released: int | None = None

    def open_writer(self, key, *, fsync=False):
        with self.lock:
            self.open_now += 1
            self.open_most = max(self.open_most, self.open_now)
        return _HoldingWriter(self, self.inner.open_writer(key, fsync=fsync))

    def closed(self, key: str, committed: bool) -> None:
        with self.lock:
            self.open_now -= 1
            if committed and key != self.hold_key:
                self.committed += 1
                if self.committed >= self.others:
                    self.released.set()


class _HoldingWriter(WrappedWriter):
    def _commit(self):
        if self.key == self.storage.hold_key:
            # bounded only so that a regression fails instead of hanging the test run
            self.storage.released.wait(60)
            self.storage.committed_when_released = self.storage.committed
        self.inner.commit()
        self.storage.closed(self.key, True)

    def _abort(self):
        self.inner.abort()
        self.storage.closed(self.key, False)


@pytest.mark.parametrize("threads", [2, 3])
def test_one_slow_file_holds_one_thread_while_the_others_write_the_rest(tmp_path, threads):
    spec = small("npy", num_files_train=9, num_files_eval=0, num_subfolders_train=0)
    storage = HoldingStorage(local(tmp_path), spec.file_key("train", 0), others=8)
    result = generate(spec, storage, threads=threads)
    # file 0 was held until the 8 others were committed: the free threads went on without it
    assert storage.committed_when_released == 8
    assert result.files == 9 and sorted(result.sizes) == spec.file_keys("train")
    # others were written while it was held, and never more files at once than threads (whether
    # the free threads' small files overlap each other is up to timing)
    assert 1 < storage.open_most <= threads


@pytest.mark.parametrize("fmt", ["npy", "jpeg", "indexed_binary"])
def test_the_result_says_where_the_writer_threads_spent_their_time(tmp_path, fmt):
    result = generate(small(fmt), local(tmp_path), threads=2)
    assert set(result.stages) == {"random", "format", "encode", "write", "commit", "companions"}
    assert all(seconds >= 0 for seconds in result.stages.values())
    assert result.stages["write"] > 0 and result.stages["commit"] > 0
    assert (result.stages["encode"] > 0) == (fmt == "jpeg")
    assert (result.stages["companions"] > 0) == (fmt == "indexed_binary")


def test_bad_specs_are_rejected_before_anything_is_written(tmp_path, capsys):
    root = tmp_path / "data"
    bad = {"format": "npz", "num_files_train": -3, "record_length_bytes": 10, "record_element_type": "float32"}
    assert main(["--spec", json.dumps(bad), "--root", str(root), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "dataset.num_files_train: -3 is not valid" in err and "cannot be divided into whole float32" in err
    assert not root.exists()
    cache = DatasetCache(lambda area, prefix: area, threads=1)
    storage = local(tmp_path / "area")
    with pytest.raises(DatasetSpecError, match=r"dataset.compression: 'gzip' is not available for npy"):
        cache.get({"format": "npy", "compression": "gzip"}, storage)
    assert storage.list("") == []


def test_command_line_generates_then_reuses(tmp_path, capsys):
    spec = json.dumps({"format": "npz", "num_files_train": 3, "num_samples_per_file": 2, "record_length_bytes": 1000})
    assert main(["--spec", spec, "--root", str(tmp_path), "--threads", "2"]) == 0
    assert "generated 3 files" in capsys.readouterr().out
    assert main(["--spec", spec, "--root", str(tmp_path)]) == 0
    assert "reused 3 files" in capsys.readouterr().out


def test_progress_reports_files_bytes_rate_and_eta(tmp_path):
    seen: list[Progress] = []
    spec = small("npy", num_files_train=12, record_length_bytes=200_000, record_length_bytes_stdev=0)
    result = generate(spec, local(tmp_path), threads=2, progress=seen.append, interval=0.01)
    last = seen[-1]
    assert (last.files_done, last.files_total, last.bytes_done) == (14, 14, result.bytes)
    assert all(a.bytes_done <= b.bytes_done for a, b in itertools.pairwise(seen))
    assert "14/14 files" in last.line() and "MB/s" in last.line() and "ETA 0 s" in last.line()


class PausingStorage(WrappedStorage):
    """A storage whose writer for one key, once written, waits for ``resume`` before committing."""

    def __init__(self, inner: Storage, pause_key: str):
        super().__init__(inner)
        self.pause_key = pause_key
        self.paused, self.resume = threading.Event(), threading.Event()

    def open_writer(self, key, *, fsync=False):
        return _PausingWriter(self, self.inner.open_writer(key, fsync=fsync))


class _PausingWriter(WrappedWriter):
    def _commit(self):
        if self.key == self.storage.pause_key:
            self.storage.paused.set()
            self.storage.resume.wait(60)  # bounded only so that a regression fails instead of hanging
        self.inner.commit()


def test_csv_progress_eta_follows_the_random_bytes_pulled_not_the_text_written(tmp_path):
    # csv text is ~3.6 times its random bytes: an ETA from bytes written reached 0 at a quarter
    spec = DatasetSpec.from_mapping({"format": "csv", "num_files_train": 8, "num_samples_per_file": 2,
                                     "record_length_bytes": 256 << 10, "record_element_type": "float64"})
    storage = PausingStorage(local(tmp_path), spec.file_key("train", 4))
    seen_paused: list[Progress] = []
    held: list[Progress] = []

    def report(p: Progress) -> None:
        # reports come one after another, each from a snapshot taken after the previous report:
        # the one after the first to see file 4 paused is a snapshot of file 4 written, not committed
        if storage.paused.is_set() and not storage.resume.is_set():
            if seen_paused:
                held.append(p)
                storage.resume.set()
            seen_paused.append(p)

    generate(spec, storage, threads=1, progress=report, interval=0.01)
    p = held[0]
    assert p.files_done == 4 and p.source_total == 8 * 2 * (256 << 10) and p.source_done == 5 * 2 * (256 << 10)
    assert p.bytes_done > p.source_total  # the text written so far is already more than all the random bytes
    assert p.eta == pytest.approx(p.elapsed * 3 / 5) and p.eta > 0


class SlowStorage(WrappedStorage):
    """Local files whose writers take ``delay`` seconds per write call: a slow device. Counts
    the writes, the largest, and the most in progress at once."""

    def __init__(self, inner: Storage, delay: float):
        super().__init__(inner)
        self.delay = delay
        self.writes = self.largest = self.in_progress = self.most_in_progress = 0
        self.lock = threading.Lock()

    def open_writer(self, key, *, fsync=False):
        return _SlowWriter(self.inner.open_writer(key, fsync=fsync), self)


class _SlowWriter(WrappedWriter):
    def __init__(self, inner, owner):
        super().__init__(owner, inner)
        self.owner = owner

    def _write(self, view):
        owner = self.owner
        with owner.lock:
            owner.writes += 1
            owner.largest = max(owner.largest, view.nbytes)
            owner.in_progress += 1
            owner.most_in_progress = max(owner.most_in_progress, owner.in_progress)
        time.sleep(owner.delay)
        self.inner.write(view)
        with owner.lock:
            owner.in_progress -= 1


def _slow_generation(storage: Storage, bound: int = 160 * MiB) -> None:
    # 256 MiB in 8 MiB pieces, each write taking 20 ms: generation must wait for the storage
    spec = DatasetSpec.from_mapping({"format": "npy", "num_files_train": 4, "num_samples_per_file": 8,
                                     "record_length_bytes": 8 * MiB})
    slow = SlowStorage(storage, delay=0.02)
    with PeakRSS() as rss:
        result = generate(spec, slow, threads=4)
    assert result.bytes >= 256 * MiB and slow.writes >= 32
    # each writer thread waits for its own write: no more pieces in the storage's hands than
    # threads, none larger than a write chunk (nothing queued behind the slow device)
    assert slow.most_in_progress <= 4 and slow.largest <= spec.write_chunk_bytes
    assert rss.growth < bound, (f"memory grew by {rss.growth / MiB:.0f} MiB while writing {result.bytes / MiB:.0f} "
                                f"MiB (bound {bound / MiB:.0f} MiB)")


class FsyncingStorage(WrappedStorage):
    """Local files whose write calls take 10 ms and whose commits with fsync ``delay`` seconds
    (a device writing back):
    records how many files were being written at once, and the most being written while one was
    committed."""

    def __init__(self, inner: Storage, delay: float):
        super().__init__(inner)
        self.delay = delay
        self.lock = threading.Lock()
        self.writing = self.committing = self.most_writing = self.writing_while_committing = 0

    def open_writer(self, key, *, fsync=False):
        with self.lock:
            self.writing += 1
            self.most_writing = max(self.most_writing, self.writing)
        return _FsyncingWriter(self.inner.open_writer(key, fsync=fsync), self, fsync)


class _FsyncingWriter(WrappedWriter):
    def __init__(self, inner, owner, fsync):
        super().__init__(owner, inner)
        self.owner, self.fsync = owner, fsync

    def _write(self, view):
        time.sleep(0.01)
        self.inner.write(view)

    def _commit(self):
        owner = self.owner
        with owner.lock:
            owner.writing -= 1
            owner.committing += 1
        if self.fsync:
            deadline = time.monotonic() + owner.delay
            while time.monotonic() < deadline:  # sample: is another file being written meanwhile?
                with owner.lock:
                    owner.writing_while_committing = max(owner.writing_while_committing, owner.writing)
                time.sleep(0.002)
        self.inner.commit()
        with owner.lock:
            owner.committing -= 1

    def _abort(self):
        with self.owner.lock:
            self.owner.writing -= 1
        self.inner.abort()


def test_with_fsync_the_next_files_are_written_while_a_file_is_committed(tmp_path):
    """A commit that waits for the device (fsync) runs beside the writing of the next files, so
    the CPU and the device work at once; still at most ``threads`` files are written at once,
    and the bytes are those of a run without fsync."""
    spec = small("npy", num_files_train=6)
    plain = local(tmp_path / "plain")
    generate(spec, plain, threads=2)
    slow = FsyncingStorage(local(tmp_path / "durable"), delay=0.1)
    result = generate(spec, slow, threads=2, fsync=True)
    assert result.files == len(spec.all_files()) == 8 and hashes(slow) == hashes(plain)
    assert slow.most_writing <= 2, f"{slow.most_writing} files written at once with 2 threads"
    # the other thread's file, and the one this thread took up while its own was committed
    assert slow.writing_while_committing == 2, (
        f"at most {slow.writing_while_committing} files were written while a file's fsync ran, with 2 threads")
    assert slow.writing == slow.committing == 0


def test_a_slow_storage_slows_generation_instead_of_filling_memory(tmp_path):
    _slow_generation(local(tmp_path))


def s3_writers_hold(writers: int) -> int:
    """Bytes the S3 streaming writers of a process may hold, as the storage layer declares it:
    each writer's part being filled (and its copy while handed over), plus the parts in flight
    (a per-process budget where there is one, else MAX_PARTS_IN_FLIGHT per writer)."""
    from pytest_iobench.storage import s3common

    budget = getattr(s3common, "PART_BUDGET_PARTS", None)
    in_flight = budget if budget is not None else writers * s3common.MAX_PARTS_IN_FLIGHT
    return (2 * writers + in_flight) * s3common.PART_SIZE


@pytest.mark.parametrize("library", ["boto3", "s3dlio"])
def test_a_slow_s3_storage_slows_generation_instead_of_filling_memory(tmp_path, storage_factory, library):
    # the real S3 writers (multipart uploads to the embedded endpoint, in another process)
    # behind slow write calls: what the process holds is generation's own (4 writers' random
    # staging, 2 x 8 MiB each, and change) plus what the S3 writers may hold
    s3 = storage_factory.at(storage_factory.get("s3", library), f"slow-{library}-{tmp_path.name}")
    try:
        _slow_generation(s3, bound=4 * 2 * STAGING + 32 * MiB + s3_writers_hold(4))
    finally:
        s3.delete_prefix("")


def test_dataset_prefix_is_the_data_folder_then_the_digest():
    spec = DatasetSpec.from_mapping({"format": "npz", "data_folder": "./data/../unet3d/"})
    assert dataset_prefix(spec) == f"data/unet3d/{spec.digest()}"
    assert dataset_prefix(spec.with_changes(keep_files=False)) == dataset_prefix(spec)  # same content, same folder


def test_a_dataset_is_generated_once_per_location_and_read_through_each_library(tmp_path, storage_factory):
    """s3-minio and s3-boto3 share a bucket, local and direct a directory: one generation,
    and each library gets the dataset through its own storage (a test reads what it tests)."""
    spec = {"format": "npy", "num_files_train": 2, "record_length_bytes": 4096}
    writes = []

    def open_at(area, prefix):
        storage = storage_factory.at(area, prefix)
        writes.append(storage.library)
        return storage

    cache = DatasetCache(open_at)
    where = f"datasets-{tmp_path.name}"
    minio = storage_factory.at(storage_factory.get("s3", "minio", area="datasets"), where)
    boto3 = storage_factory.at(storage_factory.get("s3", "boto3", area="datasets"), where)
    files = open_storage(StorageSpec("local", "posix", root=str(tmp_path)))
    direct = open_storage(StorageSpec("direct", "posix", root=str(tmp_path)))
    try:
        first, second = cache.get(spec, minio), cache.get(spec, boto3)
        on_files, on_direct = cache.get(spec, files), cache.get(spec, direct)
        assert not first.reused and second.result is first.result  # generated once on S3
        assert not on_files.reused and on_direct.result is on_files.result  # and once in the directory
        for dataset, area in ((first, minio), (second, boto3), (on_files, files), (on_direct, direct)):
            assert dataset.area is area and (dataset.storage.kind, dataset.storage.library) == (area.kind, area.library)
            assert dataset.prefix == first.prefix and dataset.storage.list("train/") == dataset.keys()
        assert cache.get(spec, boto3) is second
        assert read_manifest(second.storage)["digest"] == read_manifest(on_direct.storage)["digest"]
    finally:
        minio.delete_prefix("")


def test_adopting_the_first_files_of_a_larger_dlio_dataset(tmp_path):
    """DLIO uses the first num_files_train files of a larger dataset, with a warning (the fork's
    num_files_generated says the same explicitly); files of two sets are refused."""
    from pytest_iobench.data.generate import NothingToAdopt, SubsetWarning, adopt

    (tmp_path / "train").mkdir()
    (tmp_path / "valid").mkdir()
    for i in range(4):
        np.savez(tmp_path / "train" / f"img_{i}_of_4.npz", x=np.full((100, 1), i, np.uint8), y=np.zeros(1))
    np.savez(tmp_path / "valid" / "img_0_of_1.npz", x=np.zeros((100, 1), np.uint8))  # unread: no evaluation
    before = hashes(local(tmp_path))
    mapping = {"format": "npz", "num_files_train": 2, "record_length_bytes": 100}
    with pytest.warns(SubsetWarning, match=r"train/ holds 4 training files; the workload reads the first 2 "
                                           r"\(dataset.num_files_train\), as DLIO"):
        result = adopt(DatasetSpec.from_mapping(mapping), local(tmp_path))
    assert result.adopted and result.num_files_generated == 4 and len(result.warnings) == 1
    assert sorted(result.sizes) == ["train/img_0_of_4.npz", "train/img_1_of_4.npz"]
    np.savez(tmp_path / "train" / "img_0_of_2.npz", x=np.zeros((100, 1), np.uint8))  # a second set
    with pytest.raises(ForeignData, match=r"1 of the spec's files are missing, e\.g\. train/img_1_of_2\.npz"):
        adopt(DatasetSpec.from_mapping(mapping), local(tmp_path))
    (tmp_path / "train" / "img_0_of_2.npz").unlink()
    spec = DatasetSpec.from_mapping({**mapping, "num_files_generated": 4})
    result = adopt(spec, local(tmp_path))
    assert result.adopted and sorted(result.sizes) == ["train/img_0_of_4.npz", "train/img_1_of_4.npz"]
    assert hashes(local(tmp_path)) == before  # nothing written
    ours = tmp_path / "ours"
    generate(spec, local(ours))
    assert not adopt(spec, local(ours)).adopted  # a complete dataset of ours is used as it is
    with pytest.raises(NothingToAdopt, match="no dataset to adopt"):
        adopt(spec, local(tmp_path / "empty"))


@pytest.mark.parametrize("library", ["posix", "s3dlio"])
def test_train_and_valid_folders_exist_whatever_the_eval_files(tmp_path, library):
    """DLIO lists <data_folder>/valid on every training run and stops when it is missing: a
    dataset without eval files has an empty valid/ (tfrecord: index/train/ and index/valid/ too),
    made on reuse as well (a dataset generated before lacks it)."""
    storage = open_storage(StorageSpec("local", library, root=str(tmp_path)))
    spec = DatasetSpec.from_mapping({"format": "tfrecord", "num_files_train": 2, "record_length_bytes": 1000})
    generate(spec, storage)
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == ["img_0_of_2.tfrecord", "img_1_of_2.tfrecord"]
    for folder in ("valid", "index/valid"):
        assert (tmp_path / folder).is_dir() and not any((tmp_path / folder).iterdir()), folder
    assert (tmp_path / "index" / "train").is_dir()
    (tmp_path / "valid").rmdir()
    assert generate(spec, storage).reused and (tmp_path / "valid").is_dir()
    assert storage.list("valid/") == []  # a folder, no key


def test_no_folder_is_written_on_s3(storage_factory, tmp_path):
    """Object stores have no folders: an empty valid/ prefix lists as [], all DLIO's S3 readers
    need (they list the prefix); nothing is written for it."""
    storage = storage_factory.at(storage_factory.get("s3", "boto3"), f"folders-{tmp_path.name}")
    spec = DatasetSpec.from_mapping({"format": "npy", "num_files_train": 1, "record_length_bytes": 1000})
    try:
        generate(spec, storage)
        assert storage.list("valid") == [] and storage.list("") == sorted(["train/img_0_of_1.npy", MANIFEST])
    finally:
        storage.delete_prefix("")
