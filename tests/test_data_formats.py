"""Every format's files open with the format's standard reader (np.load, h5py, pyarrow,
Pillow, a CRC-checking TFRecord reader written here independently of ours), with the asked
shapes, sizes and element types; our readers return the same samples through the storage,
and every byte they return is counted by a CountingStorage."""

from __future__ import annotations

import io
import os
import struct
import zlib

import crc32c
import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pytest_iobench.data.formats import get_format
from pytest_iobench.data.formats.hdf5 import CHUNK_BYTES, fit_chunk, slabs
from pytest_iobench.data.generate import generate
from pytest_iobench.data.memory import PeakRSS
from pytest_iobench.data.random import RandomStream, derive_seed
from pytest_iobench.data.spec import DatasetSpec, DatasetSpecError
from pytest_iobench.storage import StorageSpec, open_storage
from pytest_iobench.storage.counting import CountingStorage


def make(tmp_path, mapping):
    """Generate ``mapping``'s dataset in local files; returns (spec, root, storage)."""
    spec = DatasetSpec.from_mapping({"num_files_train": 2, **mapping})
    storage = open_storage(StorageSpec("local", "posix", root=str(tmp_path)))
    generate(spec, storage, threads=2)
    return spec, str(tmp_path), storage


def our_samples(storage, spec, key):
    counting = CountingStorage(storage)
    with get_format(spec.format).open(counting, key, spec) as f:
        samples = [f.read_sample(i) for i in range(f.num_samples)]
        with pytest.raises(IndexError):
            f.read_sample(f.num_samples)
    return samples, counting.bytes_read


def path(root, key):
    return os.path.join(root, *key.split("/"))


# -- numpy -------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["npy", "npz"])
@pytest.mark.parametrize("dims, dtype", [([32, 48], "float32"), ([], "uint8")], ids=["dims-f32", "flat-u8"])
def test_numpy_formats_open_with_np_load(tmp_path, fmt, dims, dtype):
    size = {"record_dims": dims} if dims else {"record_length_bytes": 5000}
    spec, root, storage = make(tmp_path, {"format": fmt, "num_samples_per_file": 3, "record_element_type": dtype,
                                          **size})
    for i, key in enumerate(spec.file_keys()):
        loaded = np.load(path(root, key))
        x = loaded["x"] if fmt == "npz" else loaded
        assert x.shape == (*spec.sample_shape("train", i), 3) and x.dtype == np.dtype(dtype)
        if fmt == "npz":
            assert loaded["y"].tolist() == [0, 0, 0]  # DLIO's labels
        samples, moved = our_samples(storage, spec, key)
        for s, sample in enumerate(samples):
            assert np.array_equal(sample, x[..., s], equal_nan=True)
        sample_bytes = spec.record_bytes("train", i)
        assert 3 * sample_bytes <= moved <= os.path.getsize(path(root, key)) + 8192


def test_compressed_npz_is_deflated_and_opens(tmp_path):
    spec, root, storage = make(tmp_path, {"format": "npz", "num_samples_per_file": 2, "record_length_bytes": 3000,
                                          "compression": "zip"})
    import zipfile

    key = spec.file_keys()[0]
    with zipfile.ZipFile(path(root, key)) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_DEFLATED}
        assert zf.testzip() is None  # every member's CRC checks
    x = np.load(path(root, key))["x"]
    samples, _ = our_samples(storage, spec, key)
    assert x.shape == (3000, 2) and np.array_equal(samples[1], x[..., 1])


def test_stored_npz_members_check_and_are_written_as_zipfile_writes_them(tmp_path):
    import io
    import zipfile

    from pytest_iobench.data.formats.base import zip_member
    from pytest_iobench.data.formats.npz import _StoredMember

    spec, root, _storage = make(tmp_path, {"format": "npz", "num_samples_per_file": 3, "record_length_bytes": 3 << 20,
                                          "generation_buffer_size": 1 << 20})
    with zipfile.ZipFile(path(root, spec.file_keys()[0])) as zf:
        assert zf.testzip() is None  # the CRC of x.npy, written in 9 pieces, checks
    # zipfile's own writes and ours give the same archive, zip64 member headers included
    data = [os.urandom(n) for n in (10, 70000, 1 << 20, 3)]
    archives = []

    class Unseekable(io.BytesIO):  # as generation's sink: data descriptors after each member
        def seek(self, *args):
            raise OSError("not seekable")

    for ours in (False, True):
        out = Unseekable()
        with zipfile.ZipFile(out, mode="w", allowZip64=True) as zf:
            for name, zip64 in (("x.npy", True), ("y.npy", False)):
                with zf.open(zip_member(name, False, 0), "w", force_zip64=zip64) as member:
                    writer = _StoredMember(member) if ours else member
                    assert not ours or writer._fast
                    for piece in data:
                        writer.write(piece)
        archives.append(out.getvalue())
    assert archives[0] == archives[1] and b"PK\x07\x08" in archives[0]  # a data descriptor's signature


# -- hdf5 --------------------------------------------------------------------------------------
@pytest.mark.parametrize("extra, chunks, compression", [
    ({"record_dims": [6, 10, 10], "record_element_type": "float32", "hdf5": {"num_dset_per_record": 3}}, None, None),
    ({"record_length_bytes": 10000, "enable_chunking": True, "chunk_size": 3000}, (1, 3000), None),
    ({"record_dims": [20, 30], "hdf5": {"chunk_dims": [2, 7, 7], "max_shape": [None, 20, 30]}}, (2, 7, 7), None),
    ({"record_length_bytes": 8000, "compression": "gzip", "compression_level": 1}, (1, 8000), "gzip"),
    ({"record_length_bytes": 8000, "compression": "lzf"}, (1, 8000), "lzf"),
], ids=["3-datasets", "chunk-size", "chunk-dims-maxshape", "gzip", "lzf"])
def test_hdf5_opens_with_h5py(tmp_path, extra, chunks, compression):
    spec, root, storage = make(tmp_path, {"format": "hdf5", "num_samples_per_file": 5, **extra})
    key = spec.file_keys()[1]
    k = spec.hdf5.num_dset_per_record
    with h5py.File(path(root, key), "r") as f:
        assert sorted(f) == ["labels", *[f"records_{j}" for j in range(k)]]
        assert f["labels"][:].tolist() == [0] * 5
        sample = spec.sample_shape("train", 1)
        datasets = [f[f"records_{j}"] for j in range(k)]
        for ds in datasets:
            assert ds.shape == (5, sample[0] // k, *sample[1:]) and ds.dtype == spec.dtype
            assert ds.chunks == chunks and ds.compression == compression
        if spec.hdf5.max_shape:
            assert datasets[0].maxshape == (None, 20, 30)
        expected = [[ds[i] for ds in datasets] for i in range(5)]
    samples, moved = our_samples(storage, spec, key)
    for got, want in zip(samples, expected):
        got = got if isinstance(got, list) else [got]
        assert all(np.array_equal(g, w, equal_nan=True) for g, w in zip(got, want))
    assert moved >= 5 * spec.record_bytes("train", 1) * (0.9 if compression else 1)


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_hdf5_max_shape_as_dlio_gives_it(tmp_path, compression):
    # DLIO: maxshape = (samples, *hdf5.max_shape); the record's dimensions, split across datasets
    spec, root, _storage = make(tmp_path, {"format": "hdf5", "num_samples_per_file": 4, "record_dims": [20, 30],
                                          "compression": compression, "hdf5": {"max_shape": [None, 30],
                                                                                "num_dset_per_record": 2}})
    with h5py.File(path(root, spec.file_keys()[0]), "r") as f:
        assert [f[f"records_{j}"].maxshape for j in (0, 1)] == [(4, None, 30)] * 2
        assert f["records_1"].shape == (4, 10, 30)
    with pytest.raises(DatasetSpecError,
                       match=r"hdf5.max_shape: \[5, 30\] is smaller than the dataset shape \[10, 30\]"):
        spec.with_changes(hdf5={"max_shape": [5, 30], "num_dset_per_record": 2})
    with pytest.raises(DatasetSpecError, match=r"has 1 dimensions; give the record's 2 \(as DLIO\), or 3"):
        spec.with_changes(hdf5={"max_shape": [30]})


def test_compressed_hdf5_memory_does_not_grow_with_the_sample(tmp_path):
    # one 96 MiB sample: it was built whole and compressed as one chunk (300 MiB of growth);
    # chunks are capped and h5py gets slabs of whole chunks
    spec = DatasetSpec.from_mapping({"format": "hdf5", "num_files_train": 1, "record_length_bytes": 96 << 20,
                                     "compression": "lzf"})
    storage = open_storage(StorageSpec("local", "posix", root=str(tmp_path)))
    with PeakRSS() as rss:
        generate(spec, storage)
    assert rss.growth < 96 << 20, f"grew by {rss.growth >> 20} MiB"
    with h5py.File(path(tmp_path, spec.file_keys()[0]), "r") as f:
        ds = f["records_0"]
        assert np.prod(ds.chunks) <= CHUNK_BYTES and ds.chunks[0] == 1
        # the sample is the file's random stream in order, whatever the chunks
        expected = RandomStream(derive_seed(spec.seed, "train", 0), limit=96 << 20).read(96 << 20)
        assert ds[0].tobytes() == expected


def test_slabs_cover_the_dataset_once_in_whole_chunks():
    for shape, chunks in (((5, 20, 30), (2, 7, 7)), ((3, 3, 1024, 1024), (1, 1, 1024, 1024)),
                          ((2, 9, 100), (1, 4, 100)), ((1, 10_000_000), (1, 4 << 20))):
        seen = np.zeros(shape, dtype=np.uint8)
        for selection in slabs(shape, chunks, 1, limit=8 << 20):
            seen[selection] += 1
            for dim, cut in enumerate(selection):  # starts on a chunk boundary, ends on one or at the edge
                assert cut.start % chunks[dim] == 0 and (cut.stop % chunks[dim] == 0 or cut.stop == shape[dim])
        assert (seen == 1).all()
    assert fit_chunk((3, 1024, 1024), 4, 4 << 20) == (1, 1024, 1024)
    assert fit_chunk((384 << 20,), 1, 4 << 20) == (4 << 20,) and fit_chunk((8000,), 1, 4 << 20) == (8000,)
    assert fit_chunk((10, 3000, 3000), 1, 4 << 20) == (1, 1398, 3000)


# -- parquet -----------------------------------------------------------------------------------
@pytest.mark.parametrize("compression", ["none", "snappy", "zstd"])
def test_parquet_opens_with_pyarrow(tmp_path, compression):
    spec, root, storage = make(tmp_path, {"format": "parquet", "num_samples_per_file": 100, "record_length_bytes": 4104,
                                          "compression": compression, "parquet": {
                                              "row_group_size": 30, "layout": "fast", "columns": [
                                              {"name": "label", "dtype": "int64"},
                                              {"name": "features", "dtype": "float32", "size": 4},
                                              {"name": "data", "dtype": "binary"}]}})
    key = spec.file_keys()[0]
    pf = pq.ParquetFile(path(root, key))
    assert pf.metadata.num_rows == 100 and pf.metadata.num_row_groups == 4  # 30 + 30 + 30 + 10
    group = pf.metadata.row_group(0)
    for column in (group.column(c) for c in range(group.num_columns)):
        assert column.compression == {"none": "UNCOMPRESSED"}.get(compression, compression.upper())
        # random values gain nothing from a dictionary (pyarrow names its encoding RLE_DICTIONARY)
        assert not column.has_dictionary_page and not any("DICTIONARY" in e for e in column.encodings)
    table = pf.read()
    assert str(table.schema.field("data").type) == "fixed_size_binary[4080]"
    assert str(table.schema.field("features").type) == "fixed_size_list<element: float>[4]"
    samples, moved = our_samples(storage, spec, key)
    assert moved >= 100 * 4104 * (0.9 if compression != "none" else 1)
    for i in (0, 31, 99):
        assert samples[i]["label"] == table.column("label")[i].as_py()
        assert bytes(samples[i]["data"]) == table.column("data")[i].as_py()
        assert np.array_equal(samples[i]["features"], np.array(table.column("features")[i].as_py(), np.float32),
                              equal_nan=True)


@pytest.mark.parametrize("element, layout, arrow_type", [
    ("uint8", None, "fixed_size_binary[4096]"),
    ("float32", None, "fixed_size_list<element: float>[1024]"),
    ("uint8", "list", "fixed_size_list<element: uint8>[4096]"),
])
def test_parquet_layouts_the_mlcommons_fork_reads(tmp_path, element, layout, arrow_type):
    """The fork's readers take each column chunk's dictionary page offset: the default layout
    ('dlio') and the fork's own column type ('list') both write a dictionary page and
    statistics (pyarrow's defaults, as the fork writes); 'dlio' keeps uint8 records in a
    fixed_size_binary column, 'list' in the fork's fixed_size_list<uint8>."""
    parquet = {"row_group_size": 4} | ({"layout": layout} if layout else {})
    spec, root, storage = make(tmp_path, {"format": "parquet", "num_samples_per_file": 10, "record_length_bytes": 4096,
                                          "record_element_type": element, "parquet": parquet})
    key = spec.file_keys()[0]
    pf = pq.ParquetFile(path(root, key))
    assert str(pf.schema_arrow.field("data").type) == arrow_type
    assert pf.metadata.num_row_groups == 3  # 4 + 4 + 2
    for g in range(pf.metadata.num_row_groups):
        chunk = pf.metadata.row_group(g).column(0)
        assert chunk.dictionary_page_offset is not None and chunk.dictionary_page_offset > 0
        assert chunk.is_stats_set and chunk.compression == "UNCOMPRESSED"
    table = pf.read()
    samples, _ = our_samples(storage, spec, key)
    for i in (0, 5, 9):
        value = table.column("data")[i].as_py()
        if isinstance(value, bytes):  # a fixed_size_binary column: our reader hands back the bytes
            assert bytes(samples[i]) == value
        else:
            assert np.array_equal(samples[i], np.array(value, dtype=element), equal_nan=True)


def test_parquet_fast_layout_has_no_dictionary_page(tmp_path):
    """'fast': fixed_size_binary, no dictionary (the fork's readers fail on its None offset)."""
    fast, root, _storage = make(tmp_path / "fast", {"format": "parquet", "num_samples_per_file": 10,
                                                   "record_length_bytes": 4096, "parquet": {"layout": "fast"}})
    pf = pq.ParquetFile(path(root, fast.file_keys()[0]))
    assert str(pf.schema_arrow.field("data").type) == "fixed_size_binary[4096]"
    assert pf.metadata.row_group(0).column(0).dictionary_page_offset is None
    with pytest.raises(DatasetSpecError, match=r"dataset.parquet.layout: 'fork' is not a known parquet layout "
                                               r".*\(valid: dlio, list, fast\)"):
        DatasetSpec.from_mapping({"format": "parquet", "parquet": {"layout": "fork"}})


def test_parquet_bytes_do_not_depend_on_filling_row_groups_ahead(tmp_path):
    """A file fills its next row group ahead only while a FILL_AHEAD permit is free (one per
    core); a file that finds none fills one buffer in turn, and writes the same bytes."""
    from pytest_iobench.data.formats import parquet

    mapping = {"format": "parquet", "num_samples_per_file": 100, "record_length_bytes": 4104,
               "parquet": {"row_group_size": 30}}
    spec, root, _ = make(tmp_path / "ahead", mapping)
    taken = 0
    while parquet.FILL_AHEAD.acquire(blocking=False):
        taken += 1
    try:
        assert taken >= 1
        _, alone, _ = make(tmp_path / "in-turn", mapping)
    finally:
        for _ in range(taken):
            parquet.FILL_AHEAD.release()
    for key in spec.file_keys():
        assert pq.ParquetFile(path(alone, key)).metadata.num_row_groups == 4
        assert open(path(root, key), "rb").read() == open(path(alone, key), "rb").read()


def test_parquet_reader_projects_columns_and_caches_row_groups(tmp_path):
    spec, _root, storage = make(tmp_path, {
        "format": "parquet", "num_samples_per_file": 64, "record_length_bytes": 16392,
        "parquet": {"row_group_size": 16, "columns": [{"name": "label", "dtype": "int64"},
                                                      {"name": "data", "dtype": "binary"}]}})
    counting = CountingStorage(storage)
    f = get_format("parquet").open(counting, spec.file_keys()[0], spec, columns=["label"])
    f.read_sample(0)
    opened = counting.reset()[0]
    for i in range(1, 16):  # the same row group: from the cache
        assert isinstance(f.read_sample(i), int)
    assert counting.reset()[0] == 0
    f.read_sample(16)
    assert 0 < counting.reset()[0] < 16 * 16392  # the label column of the next row group, not its data
    f.close()
    assert opened > 0


def _row_group_bytes(filename: str) -> int:
    """Bytes of every column chunk of a parquet file (what reading each row group moves)."""
    meta = pq.ParquetFile(filename).metadata
    return sum(meta.row_group(g).column(c).total_compressed_size for g in range(meta.num_row_groups)
               for c in range(meta.num_columns))


def test_parquet_row_groups_are_read_once_in_any_order_by_any_number_of_handles(tmp_path):
    """DLIO's fork reads parquet a row group at a time; a shuffled order over several read
    threads (each with its own handle) reads each row group once, then again next time."""
    from pytest_iobench.data.formats.parquet import ParquetFile, RowGroups

    spec, root, storage = make(tmp_path, {"format": "parquet", "num_files_train": 1, "num_samples_per_file": 600,
                                          "record_length_bytes": 1000,
                                          "parquet": {"layout": "fast", "row_group_size": 50}})
    key = spec.file_keys()[0]
    file_bytes = os.path.getsize(path(root, key))
    groups_bytes = _row_group_bytes(path(root, key))
    table = pq.ParquetFile(path(root, key)).read()
    shared = RowGroups(budget=64 << 20)
    counting = CountingStorage(storage)
    order = np.random.default_rng(7).permutation(600)
    for epoch in range(2):
        handles = [ParquetFile(counting, key, shared=shared) for _ in range(4)]
        for n, row in enumerate(order):  # the rows dealt to 4 handles in turn, as batches to read threads
            assert bytes(handles[n % 4].read_sample(int(row))) == table.column("data")[int(row)].as_py()
        read, _, requests = counting.reset()
        # one footer read (64 KiB from the end, shared by the handles) and each row group once
        assert requests == 1 + 12 and read == min(64 << 10, file_bytes) + groups_bytes, epoch
        assert shared.held_bytes == 0  # every row was read: nothing is held
        for handle in handles:
            handle.close()


def test_parquet_row_groups_past_the_budget_are_read_again_and_counted(tmp_path):
    from pytest_iobench.data.formats.parquet import ParquetFile, RowGroups

    spec, _root, storage = make(tmp_path, {"format": "parquet", "num_files_train": 1, "num_samples_per_file": 400,
                                          "record_length_bytes": 1000,
                                          "parquet": {"layout": "fast", "row_group_size": 100}})
    key = spec.file_keys()[0]
    shared = RowGroups(budget=150_000)  # one row group of 100 KB held at a time
    counting = CountingStorage(storage)
    f = ParquetFile(counting, key, shared=shared)
    counting.reset()
    for row in (0, 100, 1, 101):  # alternating between two row groups: each switch reads again
        f.read_sample(row)
    read, _, requests = counting.reset()
    assert requests == 4 and read >= 4 * 100 * 1000 and shared.held_bytes <= 150_000
    second = ParquetFile(counting, key, shared=shared)
    f.close()
    assert shared.held_bytes > 0  # another handle of the file is open
    second.close()
    assert shared.held_bytes == 0  # the last handle closed: nothing is held


# -- csv ---------------------------------------------------------------------------------------
def _open_csv(filename: str):
    """A text file object over a csv file as DLIO names them (.gz, .bz2, .xz, .zip)."""
    import bz2
    import gzip
    import lzma
    import zipfile

    if filename.endswith(".zip"):
        zf = zipfile.ZipFile(filename)
        (member,) = zf.namelist()
        return io.TextIOWrapper(zf.open(member), encoding="ascii")
    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(os.path.splitext(filename)[1], open)
    return opener(filename, "rt")


@pytest.mark.parametrize("compression", ["none", "gzip", "bz2", "xz", "zip"])
def test_csv_opens_with_loadtxt(tmp_path, compression):
    spec, root, storage = make(tmp_path, {"format": "csv", "num_samples_per_file": 4, "record_dims": [3, 5],
                                          "record_element_type": "int16", "compression": compression})
    key = spec.file_keys()[0]
    with _open_csv(path(root, key)) as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)  # no header line, no index column
    assert table.shape == (4, 15)
    samples, _ = our_samples(storage, spec, key)
    assert all(np.array_equal(s, row) for s, row in zip(samples, table))


def _pandas_rows(text: str) -> list[list[str]]:
    """The rows pandas.read_csv(f, header=None) (current DLIO's csv reader) reads: every line."""
    return [line.split(",") for line in text.splitlines()]


def _dlio_csv(values: np.ndarray) -> str:
    """A csv file as current DLIO's generator writes it: to_csv(path, index=False, header=False)."""
    return "\n".join([*(",".join(str(v) for v in row) for row in values), ""])


def _older_dlio_csv(values: np.ndarray) -> str:
    """A csv file as DLIO wrote it until 2025-09: to_csv(path) with pandas' defaults (a header of
    column numbers after an empty index name, then each row's index)."""
    header = "," + ",".join(str(c) for c in range(values.shape[1]))
    return "\n".join([header, *(f"{i}," + ",".join(str(v) for v in row) for i, row in enumerate(values)), ""])


@pytest.mark.parametrize("compression", ["none", "gzip", "zip"])
def test_csv_files_are_dlios_both_ways(tmp_path, compression):
    import gzip
    import zipfile

    # DLIO reads ours: read_csv(header=None) takes every line as a sample of 300 values (a header
    # line would be a sample more, an index column a value more)
    spec, root, storage = make(tmp_path, {"format": "csv", "num_samples_per_file": 5, "record_length_bytes": 300,
                                          "compression": compression})
    key = spec.file_keys()[1]
    with _open_csv(path(root, key)) as f:
        rows = _pandas_rows(f.read())
    assert len(rows) == 5 and all(len(r) == 300 for r in rows)
    samples, _ = our_samples(storage, spec, key)
    assert [s.tolist() for s in samples] == [[int(v) for v in r] for r in rows]

    # we read DLIO's, current and older (whose header is no sample and index column no value)
    values = np.random.default_rng(7).integers(0, 255, size=(4, 300), dtype=np.uint8)
    for n, make_text in enumerate((_dlio_csv, _older_dlio_csv)):
        text = make_text(values).encode()
        dlio_key = f"dlio{n}/img_0_of_1.csv" + {"none": "", "gzip": ".gz", "zip": ".zip"}[compression]
        if compression == "gzip":
            text = gzip.compress(text)
        elif compression == "zip":
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
                zf.writestr("img_0_of_1.csv", text)  # pandas names the member after the file
            text = buf.getvalue()
        storage.put(dlio_key, text)
        with get_format("csv").open(storage, dlio_key, spec) as f:
            assert f.num_samples == 4, make_text.__name__
            assert all(np.array_equal(f.read_sample(i), values[i]) for i in range(4))


def test_csv_reads_files_without_header_or_index_too(tmp_path):
    storage = open_storage(StorageSpec("local", "posix", root=str(tmp_path)))
    spec = DatasetSpec.from_mapping({"format": "csv", "num_files_train": 1, "record_length_bytes": 3})
    values = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8)
    for name, text in (("savetxt.csv", "1,2,3\n4,5,6\n"), ("header.csv", "0,1,2\n1,2,3\n4,5,6\n")):
        storage.put(name, text.encode())
        with get_format("csv").open(storage, name, spec) as f:
            assert f.num_samples == 2 and all(np.array_equal(f.read_sample(i), values[i]) for i in range(2))
    # a sample that reads like a header line is a sample when the file has the spec's samples as lines
    two = spec.with_changes(num_samples_per_file=2)
    storage.put("like-header.csv", b"0,1,2\n4,5,6\n")
    with get_format("csv").open(storage, "like-header.csv", two) as f:
        assert f.num_samples == 2 and f.read_sample(0).tolist() == [0, 1, 2]


class RecordingStream(RandomStream):
    """A file's real random stream that records the largest piece read from it at once."""

    largest = 0

    def readinto(self, buffer):
        self.largest = max(self.largest, memoryview(buffer).nbytes)
        return super().readinto(buffer)


@pytest.mark.parametrize("dtype", ["uint8", "int16", "float64"])
def test_csv_turns_one_mib_of_values_into_text_at_a_time(tmp_path, dtype):
    # the text of a step is several times its values: steps of a fixed count of float64 values
    # (8 MiB) took hundreds of MiB per writer
    spec = DatasetSpec.from_mapping({"format": "csv", "num_files_train": 1, "num_samples_per_file": 2,
                                     "record_length_bytes": 3 << 20, "record_element_type": dtype})
    storage = open_storage(StorageSpec("local", "posix", root=str(tmp_path)))
    generate(spec, storage)
    stream = RecordingStream(derive_seed(spec.seed, "train", 0), limit=6 << 20)
    with storage.open_writer("again.csv") as writer:
        get_format("csv").write(writer, spec, "train", 0, stream)
    assert stream.largest == 1 << 20
    assert storage.get("again.csv") == storage.get(spec.file_key("train", 0))  # the same bytes as generated


def test_csv_compressors_get_the_text_in_fixed_pieces(tmp_path):
    # zlib level 0 cuts a stored block wherever input is handed over: the compressor gets the
    # text in 1 MiB pieces (FixedPieces), whatever the steps the text is made in
    mapping = {"format": "csv", "num_files_train": 1, "num_samples_per_file": 3, "record_length_bytes": 1_000_000,
               "record_element_type": "int16"}
    stored, _, storage = make(tmp_path, {**mapping, "compression": "gzip", "compression_level": 0})
    plain = DatasetSpec.from_mapping(mapping)
    generate(plain, open_storage(StorageSpec("local", "posix", root=str(tmp_path / "plain"))))
    text = open(path(tmp_path / "plain", plain.file_key("train", 0)), "rb").read()
    assert len(text) > 3 << 20
    expected = zlib.compressobj(0, zlib.DEFLATED, 31)
    data = b"".join(expected.compress(text[a:a + (1 << 20)]) for a in range(0, len(text), 1 << 20)) + expected.flush()
    assert bytes(storage.get(stored.file_key("train", 0))) == data


# -- images ------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt, dims, size, mode", [
    ("jpeg", [], (568, 568), "L"),                # DLIO: side = sqrt(record_length_bytes)
    ("jpeg", [480, 640, 3], (640, 480), "RGB"),
    ("png", [100, 200], (200, 100), "L"),
    ("png", [64, 32, 4], (32, 64), "RGBA"),
])
def test_images_open_with_pillow_at_the_asked_size(tmp_path, fmt, dims, size, mode):
    shape = {"record_dims": dims} if dims else {"record_length_bytes": 322957}
    spec, root, storage = make(tmp_path, {"format": fmt, **shape})
    key = spec.file_keys()[0]
    with Image.open(path(root, key)) as image:
        image.load()
        assert (image.format, image.size, image.mode) == (fmt.upper(), size, mode)
    samples, moved = our_samples(storage, spec, key)
    assert bytes(samples[0]) == open(path(root, key), "rb").read() and moved == os.path.getsize(path(root, key))
    if fmt == "png":  # lossless: the pixels are the random source's bytes
        pixels = np.asarray(Image.open(io.BytesIO(bytes(samples[0]))))
        assert pixels.std() > 50  # random, not a constant image


# -- tfrecord ----------------------------------------------------------------------------------
def _masked(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, pos


def _message(data: bytes) -> list[tuple[int, int, object]]:
    """(field, wire type, value) of a protobuf message (independent of the writer's code)."""
    out, pos = [], 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        if key & 7 == 2:
            n, pos = _varint(data, pos)
            out.append((key >> 3, 2, data[pos:pos + n]))
            pos += n
        elif key & 7 == 0:
            v, pos = _varint(data, pos)
            out.append((key >> 3, 0, v))
        else:
            raise AssertionError(f"unexpected wire type {key & 7}")
    return out


def read_tfrecords(raw: bytes) -> list[dict]:
    """A TFRecord reader that checks both masked CRC32Cs and decodes tf.train.Example."""
    examples, pos = [], 0
    while pos < len(raw):
        (length,) = struct.unpack_from("<Q", raw, pos)
        (len_crc,) = struct.unpack_from("<I", raw, pos + 8)
        assert _masked(crc32c.crc32c(raw[pos:pos + 8])) == len_crc, "length CRC"
        data = raw[pos + 12:pos + 12 + length]
        (data_crc,) = struct.unpack_from("<I", raw, pos + 12 + length)
        assert _masked(crc32c.crc32c(data)) == data_crc, "data CRC"
        pos += 16 + length
        features = {}
        ((field, _, feats),) = _message(data)  # Example.features
        assert field == 1
        for _field, _, entry in _message(feats):  # map entries
            parts = dict((f, v) for f, _, v in _message(entry))
            name = parts[1].decode()
            ((kind, _, values),) = _message(parts[2])
            if kind == 1:  # bytes_list
                features[name] = [v for _, _, v in _message(values)]
            elif kind == 3:  # int64_list, packed
                ((_, _, packed),) = _message(values)
                ints, p = [], 0
                while p < len(packed):
                    v, p = _varint(packed, p)
                    ints.append(v)
                features[name] = ints
        examples.append(features)
    assert pos == len(raw)
    return examples


def test_tfrecord_framing_crcs_and_examples(tmp_path):
    spec, root, storage = make(tmp_path, {"format": "tfrecord", "num_samples_per_file": 7,
                                          "record_length_bytes": 114660, "record_length_bytes_stdev": 20000})
    for i, key in enumerate(spec.file_keys()):
        raw = open(path(root, key), "rb").read()
        examples = read_tfrecords(raw)
        size = spec.record_bytes("train", i)
        assert len(examples) == 7 and size != 114660  # the stdev drew another size
        assert all(len(e["image"]) == 1 and len(e["image"][0]) == size and e["size"] == [size] for e in examples)
        samples, moved = our_samples(storage, spec, key)
        assert [bytes(s) for s in samples] == [e["image"][0] for e in examples]
        assert moved >= len(raw)


def test_tfrecord_files_have_dalis_index_where_dlio_puts_it(tmp_path):
    # DLIO runs DALI's tfrecord2idx after each file: index/<train|valid>/<name>.idx, a line
    # "<offset> <framed size>" per record
    spec, root, _storage = make(tmp_path, {"format": "tfrecord", "num_samples_per_file": 5, "record_length_bytes": 3000,
                                          "num_files_eval": 1, "num_subfolders_train": 2})
    for key in [*spec.file_keys("train"), *spec.file_keys("eval")]:
        raw = open(path(root, key), "rb").read()
        expected, pos = [], 0
        while pos < len(raw):  # tfrecord2idx's walk: length, its CRC, the data, its CRC
            (length,) = struct.unpack_from("<q", raw, pos)
            expected.append(f"{pos} {16 + length}")
            pos += 16 + length
        name = key.rsplit("/", 1)[-1]
        idx = path(root, f"index/{key.split('/')[0]}/{name}.idx")
        assert open(idx).read().splitlines() == expected and len(expected) == 5


def test_tfrecord_reader_rejects_a_corrupted_record(tmp_path):
    spec, root, storage = make(tmp_path, {"format": "tfrecord", "num_samples_per_file": 3, "record_length_bytes": 1000})
    key = spec.file_keys()[0]
    with open(path(root, key), "r+b") as f:
        f.seek(1100 + 500)  # inside the second record's image bytes
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    with get_format("tfrecord").open(storage, key, spec) as f:
        f.read_sample(0)
        with pytest.raises(ValueError, match="data CRC of record 1 does not match"):
            f.read_sample(1)


# -- indexed binary ----------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["indexed_binary", "mmap_indexed_binary"])
def test_indexed_binary_index_files(tmp_path, fmt):
    spec, root, storage = make(tmp_path, {"format": fmt, "num_samples_per_file": 9, "record_length_bytes": 761})
    key = spec.file_keys()[0]
    assert key.endswith(f".{fmt}")
    offsets = np.fromfile(path(root, key + ".off.idx"), dtype="<u8")
    sizes = np.fromfile(path(root, key + ".sz.idx"), dtype="<u8")
    data = open(path(root, key), "rb").read()
    assert offsets.tolist() == [761 * i for i in range(9)] and sizes.tolist() == [761] * 9 and len(data) == 761 * 9
    samples, moved = our_samples(storage, spec, key)
    assert [bytes(s) for s in samples] == [data[o:o + 761] for o in offsets.tolist()]
    assert moved == len(data) + 2 * 9 * 8


def test_get_format_names_the_valid_formats():
    with pytest.raises(ValueError, match="unknown format 'nope'; valid: npz, npy, hdf5, parquet"):
        get_format("nope")


@pytest.mark.parametrize("fmt", ["hdf5", "parquet", "npz", "tfrecord", "indexed_binary"])
def test_readers_work_through_s3_range_reads(tmp_path, storage_factory, fmt):
    mapping = {"format": fmt, "num_files_train": 1, "num_samples_per_file": 6, "record_length_bytes": 70000}
    spec, _root, storage = make(tmp_path, mapping)
    s3 = storage_factory.at(storage_factory.get("s3", "s3dlio"), f"read-{fmt}-{tmp_path.name}")
    try:
        generate(spec, s3)
        key = spec.file_keys()[0]
        expected, _ = our_samples(storage, spec, key)
        got, moved = our_samples(s3, spec, key)
        for a, b in zip(expected, got):
            a, b = (a if isinstance(a, (list, dict)) else [a]), (b if isinstance(b, (list, dict)) else [b])
            assert all(np.array_equal(np.frombuffer(bytes(x), np.uint8), np.frombuffer(bytes(y), np.uint8))
                       for x, y in zip(a, b))
        assert moved >= 6 * 70000
    finally:
        s3.delete_prefix("")


@pytest.mark.parametrize("fmt", ["npz", "npy", "hdf5", "parquet", "csv", "jpeg", "png", "tfrecord", "indexed_binary"])
def test_a_small_file_is_read_once_and_never_past_its_end(tmp_path, fmt):
    """A 16 KiB sample per file: reading every sample moves exactly the file's bytes (and its
    index files') in one request per file; a 64 KiB read-ahead read 1.5x an npz file."""
    spec, root, storage = make(tmp_path, {"format": fmt, "num_files_train": 1, "num_samples_per_file": 1,
                                          "record_length_bytes": 16384})
    key = spec.file_keys()[0]
    files = [key, *get_format(fmt).companion_keys(key)]
    if fmt == "tfrecord":
        files = [key]  # its DALI index is for DALI; our reader finds records by their framing
    counting = CountingStorage(storage)
    with get_format(fmt).open(counting, key, spec) as f:
        assert f.num_samples == 1 and len(bytes(np.asarray(f.read_sample(0)).data)) > 0
    assert counting.bytes_read == sum(os.path.getsize(path(root, k)) for k in files)
    assert counting.requests == len(files)


def test_read_ahead_stops_at_the_end_of_a_larger_file(tmp_path):
    spec, root, storage = make(tmp_path, {"format": "npz", "num_files_train": 1, "num_samples_per_file": 4,
                                          "record_length_bytes": 40000})
    key = spec.file_keys()[0]
    size = os.path.getsize(path(root, key))
    counting = CountingStorage(storage)
    _samples, moved = our_samples(counting, spec, key)
    # the zip directory and the npy header (4 KiB each, within the file), then each sample once
    assert size > 64 << 10 and moved <= 4 * 40000 + 2 * 4096 and counting.bytes_read <= size + 2 * 4096


#: (metadata blocks, bytes each) a reader fetches per file it opens, besides the samples: the
#: rule docs/data.md ("Bytes counted") states
METADATA_BLOCKS = {"npy": (1, 4096), "npz": (2, 4096), "hdf5": (3, 16384), "parquet": (1, 65536),
                   "indexed_binary": (0, 0), "tfrecord": (1, 12)}


@pytest.mark.parametrize("fmt", sorted(METADATA_BLOCKS))
@pytest.mark.parametrize("record", [100_000, 1 << 20])
def test_bytes_counted_are_each_samples_bytes_plus_the_metadata_blocks(tmp_path, fmt, record):
    """Reading every sample of a file (over 64 KiB) once counts each sample's bytes (parquet:
    each row group's column chunks), its index files (indexed_binary), and the format's metadata
    blocks; a block may hold bytes of a sample, which the sample's own read fetches again."""
    spec, root, storage = make(tmp_path, {"format": fmt, "num_files_train": 1, "num_samples_per_file": 4,
                                          "record_length_bytes": record})
    key = spec.file_keys()[0]
    counting = CountingStorage(storage)
    with get_format(fmt).open(counting, key, spec) as f:
        for i in range(f.num_samples):
            f.read_sample(i)
    blocks, block = METADATA_BLOCKS[fmt]
    if fmt == "parquet":
        samples = _row_group_bytes(path(root, key))
    elif fmt == "tfrecord":
        samples = os.path.getsize(path(root, key))  # the records' framing is the whole file
    else:
        samples = 4 * record + sum(os.path.getsize(path(root, k)) for k in get_format(fmt).companion_keys(key))
    assert counting.bytes_read == samples + blocks * block
    size = sum(os.path.getsize(path(root, k)) for k in (key, *get_format(fmt).companion_keys(key)))
    if fmt == "tfrecord":
        size -= os.path.getsize(path(root, get_format(fmt).companion_keys(key)[0]))  # DALI's index: not read
    assert counting.bytes_read - size <= blocks * block  # never more than the blocks over the files' size


@pytest.mark.parametrize("fmt", ["npy", "npz"])
def test_another_writers_c_order_file_is_read_once(tmp_path, fmt):
    """DLIO's generators write C-order arrays (a sample is strided): such a file is read whole,
    and a small one only once (it was counted twice: its first read, then a get of the whole)."""
    storage = open_storage(StorageSpec("local", "posix", root=str(tmp_path)))
    x = np.random.default_rng(3).integers(0, 255, size=(64, 64, 2), dtype=np.uint8)
    key = f"train/img_0_of_1.{fmt}"
    (tmp_path / "train").mkdir()
    (np.save if fmt == "npy" else lambda f, a: np.savez(f, x=a, y=np.zeros(2)))(tmp_path / key, x)
    spec = DatasetSpec.from_mapping({"format": fmt, "num_files_train": 1, "num_samples_per_file": 2,
                                     "record_length_bytes": 4096})
    samples, moved = our_samples(storage, spec, key)
    assert all(np.array_equal(samples[i], x[..., i]) for i in range(2))
    assert moved == os.path.getsize(tmp_path / key)
