"""hdf5: DLIO's layout, read with h5py: datasets ``records_0`` .. ``records_{k-1}`` (k =
hdf5.num_dset_per_record, the record's first dimension split across them), each of shape
(num_samples, *part of the record), and ``labels`` (zeros).

Streaming an HDF5 file: the HDF5 library writes metadata wherever it likes (the superblock
at offset 0 last of all), so a file cannot be produced front to back by writing through it.
Uncompressed datasets do not need HDF5 to see their data, though: h5py lays the file out with
every dataset's space allocated up front and never filled (alloc time EARLY, fill time NEVER),
into a file object that keeps only the metadata it is given (a few KiB). Then the file is
emitted in offset order: metadata from memory, dataset regions (contiguous or chunk by chunk)
straight from the random source, zeros in the gaps (which is what the labels are).

Compressed datasets (gzip, lzf) must go through HDF5's filters; they are written with h5py to
a local temporary file and then copied to the storage: memory stays bounded, at the cost of a
local copy. HDF5 filters a chunk whole in memory, so chunks chosen here (the spec gives no
hdf5.chunk_dims) are at most CHUNK_BYTES, and h5py is handed slabs of whole chunks of at most
SLAB_BYTES (a sample of any size goes in pieces): memory does not grow with the sample, and
every chunk is written once, so the bytes depend on the spec only (not on write sizes).
"""

from __future__ import annotations

import itertools
import math
import os
import re
import tempfile
from collections.abc import Iterator
from typing import Any

import h5py
import numpy as np

from ...storage.base import Storage, StreamWriter
from ..checks import Rule
from ..random import RandomStream
from ..spec import DatasetSpec
from .base import FileInfo, Format, RangeFile, SampleFile, SeekableRaw, WriterSink, copy_random
from .registry import FormatInfo

MiB = 1 << 20
_ZEROS = memoryview(bytes(MiB))
#: the largest chunk chosen here when the spec gives no hdf5.chunk_dims (nor chunk_size)
CHUNK_BYTES = 4 * MiB
#: the most handed to h5py per write of a compressed dataset (or one chunk, if larger)
SLAB_BYTES = 8 * MiB


def dataset_shapes(spec: DatasetSpec, split: str, index: int) -> list[tuple[int, ...]]:
    """Shape of each records_j dataset of a file."""
    sample = spec.sample_shape(split, index)
    k = spec.hdf5.num_dset_per_record
    part = (sample[0] // k, *sample[1:])
    return [(spec.num_samples_per_file, *part) for _ in range(k)]


def fit_chunk(dims: tuple[int, ...], itemsize: int, target: int) -> tuple[int, ...]:
    """A chunk over ``dims`` of at most ``target`` bytes (at least one element): trailing
    dimensions whole while they fit, then one dimension cut, the leading ones 1. A chunk is then
    a contiguous run of the array in C order."""
    budget = max(1, target // itemsize)
    out = []
    for d in reversed(dims):
        take = d if budget >= d else max(1, budget)
        out.append(take)
        budget = budget // d if budget >= d else 1
    return tuple(reversed(out))


def chunk_shape(spec: DatasetSpec, shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The chunk shape of a dataset, or None for contiguous storage: hdf5.chunk_dims when given;
    otherwise one sample cut to chunk_size bytes (enable_chunking) or to CHUNK_BYTES."""
    h5 = spec.hdf5
    if h5.chunk_dims:
        return tuple(min(c, s) if s else c for c, s in zip(h5.chunk_dims, shape))
    compressed = spec.compression != "none"
    if not (spec.enable_chunking or h5.max_shape or compressed):
        return None
    target = spec.chunk_size if spec.enable_chunking and spec.chunk_size > 0 else CHUNK_BYTES
    return (1, *fit_chunk(shape[1:], spec.dtype.itemsize, target))


def max_shape(spec: DatasetSpec, shape: tuple[int, ...], unlimited: Any = None) -> tuple[Any, ...] | None:
    """The dataset's maxshape from hdf5.max_shape, or None. DLIO's form gives the record's
    dimensions (maxshape = (samples, *max_shape)); ours may give the samples' axis too. None
    entries (unlimited) become ``unlimited``."""
    given = spec.hdf5.max_shape
    if not given:
        return None
    if len(given) == len(shape) - 1:
        given = (shape[0], *given)
    return tuple(unlimited if m is None else m for m in given)


def slabs(shape: tuple[int, ...], chunks: tuple[int, ...], itemsize: int,
          limit: int = SLAB_BYTES) -> Iterator[tuple[slice, ...]]:
    """Selections (tuples of slices) covering ``shape`` in C order, each made of whole chunks
    (edge chunks to the edge) and at most ``limit`` bytes unless one chunk is larger: chunks
    along the leading dimensions, whole trailing dimensions, and at dimension k as many chunks
    as fit."""
    n = len(shape)
    for k in range(n):
        unit = math.prod(chunks[:k + 1]) * math.prod(shape[k + 1:]) * itemsize
        if unit <= limit or k == n - 1:
            break
    step = chunks[k] * max(1, limit // unit)
    ranges = [range(0, shape[d], chunks[d]) for d in range(k)] + [range(0, shape[k], step)]
    for starts in itertools.product(*ranges):
        yield tuple(slice(a, min(a + (chunks[d] if d < k else step), shape[d])) for d, a in enumerate(starts))


class _MetadataCapture(SeekableRaw):
    """A file object for h5py that keeps what is written (metadata only, here) in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.extents: dict[int, bytearray] = {}
        self.end = 0

    def _end(self) -> int:
        return self.end

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        data = bytes(memoryview(data).cast("B"))
        lo, hi = self.pos, self.pos + len(data)
        # merge with the extents it touches, the new bytes on top
        touching = [o for o, b in self.extents.items() if o <= hi and o + len(b) >= lo]
        start = min([lo, *touching])
        stop = max([hi, *(o + len(self.extents[o]) for o in touching)])
        merged = bytearray(stop - start)
        for o in touching:
            old = self.extents.pop(o)
            merged[o - start:o - start + len(old)] = old
        merged[lo - start:hi - start] = data
        self.extents[start] = merged
        self.pos = hi
        self.end = max(self.end, hi)
        return len(data)

    def readinto(self, buffer: Any) -> int:
        out = memoryview(buffer).cast("B")
        n = max(0, min(out.nbytes, self.end - self.pos))
        out[:n] = bytes(n)
        for o, b in self.extents.items():
            lo, hi = max(o, self.pos), min(o + len(b), self.pos + n)
            if lo < hi:
                out[lo - self.pos:hi - self.pos] = b[lo - o:hi - o]
        self.pos += n
        return n

    def truncate(self, size: int | None = None) -> int:
        self.end = self.pos if size is None else size
        return self.end

    def flush(self) -> None:
        pass


def _create_empty(group: h5py.Group, name: str, shape: tuple[int, ...], dtype: Any, chunks: Any,
                  maxshape: Any) -> h5py.h5d.DatasetID:
    """A dataset whose space is allocated now and never filled (its bytes are ours to write)."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
    dcpl.set_obj_track_times(False)
    if chunks:
        dcpl.set_chunk(chunks)
    space = h5py.h5s.create_simple(shape, maxshape or shape)
    return h5py.h5d.create(group.id, name.encode(), h5py.h5t.py_create(np.dtype(dtype)), space, dcpl=dcpl)


def _regions(dsid: h5py.h5d.DatasetID) -> list[tuple[int, int]]:
    """(offset, size) in the file of a dataset's storage, in file order."""
    if dsid.get_create_plist().get_layout() == h5py.h5d.CHUNKED:
        return [(info.byte_offset, info.size) for info in
                (dsid.get_chunk_info(i) for i in range(dsid.get_num_chunks()))]
    return [(dsid.get_offset(), dsid.get_storage_size())]


class HDF5File(SampleFile):
    def __init__(self, storage: Storage, key: str):
        # HDF5 reads its metadata in pieces of a few hundred bytes; 16 KiB read ahead serves
        # them in a few requests without fetching much beyond a small sample
        self.rf = RangeFile(storage, key, readahead=16 << 10)
        self.file = h5py.File(self.rf, "r")
        names = [n for n in self.file if n != "labels" and isinstance(self.file[n], h5py.Dataset)]
        names.sort(key=lambda n: [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", n)])
        if not names:
            raise ValueError(f"{key}: no record datasets (only {list(self.file)})")
        self.datasets = [self.file[n] for n in names]
        self.num_samples = self.datasets[0].shape[0]

    def read_sample(self, index: int) -> Any:
        """The sample's array (a list of arrays when the record spans several datasets)."""
        self.check_index(index)
        parts = [ds[index] for ds in self.datasets]
        return parts[0] if len(parts) == 1 else parts

    def close(self) -> None:
        self.file.close()


def _dataset_shape(v: Any) -> list[int]:
    """The dims of a dataset of the file (samples first) that hdf5.max_shape gives."""
    h5 = v.hdf5
    shape = (v.num_samples_per_file, v.lead // h5.num_dset_per_record, *v.dims[1:])
    return list(shape[len(shape) - len(h5.max_shape):])


def _max_shape_too_small(v: Any) -> bool:
    return any(got is not None and got < need for got, need in zip(v.hdf5.max_shape, _dataset_shape(v)))


#: DLIO's max_shape gives the record's dimensions (maxshape = (samples, *max_shape)); the
#: samples' axis may be given too
RULES = (
    Rule("hdf5.num_dset_per_record", lambda v: v.lead % v.hdf5.num_dset_per_record,
         lambda v: f"{v.hdf5.num_dset_per_record} does not divide "
                   f"{'record_dims[0]' if v.dims else 'the elements of a record'} ({v.lead}); give a divisor "
                   "(DLIO splits the first dimension across the datasets)"),
    Rule("hdf5.num_dset_per_record",
         lambda v: v.record_length_bytes_stdev > 0 and v.hdf5.num_dset_per_record > 1 and not v.dims,
         "cannot split records whose size varies (record_length_bytes_stdev > 0); give 1"),
    Rule("hdf5.chunk_dims", lambda v: v.hdf5.chunk_dims and len(v.hdf5.chunk_dims) != v.sample_rank + 1,
         lambda v: f"{list(v.hdf5.chunk_dims)} has {len(v.hdf5.chunk_dims)} dimensions; a dataset here has "
                   f"{v.sample_rank + 1} (samples, then the record's {v.sample_rank})"),
    Rule("hdf5.max_shape",
         lambda v: v.hdf5.max_shape and len(v.hdf5.max_shape) not in (v.sample_rank, v.sample_rank + 1),
         lambda v: f"{list(v.hdf5.max_shape)} has {len(v.hdf5.max_shape)} dimensions; give the record's "
                   f"{v.sample_rank} (as DLIO), or {v.sample_rank + 1} with the samples' axis first"),
    Rule("hdf5.max_shape",
         lambda v: (v.hdf5.max_shape and len(v.hdf5.max_shape) in (v.sample_rank, v.sample_rank + 1)
                    and not v.record_length_bytes_stdev and _max_shape_too_small(v)),
         lambda v: f"{list(v.hdf5.max_shape)} is smaller than the dataset shape {_dataset_shape(v)}; give at "
                   "least that (null for unlimited)"),
    Rule("chunk_size",
         lambda v: v.enable_chunking and v.chunk_size == 0 and not v.hdf5.chunk_dims and "chunk_size" in v.given,
         "0 is not valid with enable_chunking; give the chunk size in bytes"),
)


class HDF5(Format):
    info = FormatInfo("hdf5", sample_bytes=1 << 20, compressions=("none", "gzip", "lzf"), rules=RULES)

    def write(self, writer: StreamWriter, spec: DatasetSpec, split: str, index: int,
              stream: RandomStream) -> FileInfo:
        if spec.compression != "none":
            return self._write_filtered(writer, spec, split, index, stream)
        capture = _MetadataCapture()
        regions: list[tuple[int, int, Any]] = []
        with h5py.File(capture, "w") as f:
            for j, shape in enumerate(dataset_shapes(spec, split, index)):
                chunks = chunk_shape(spec, shape)
                dsid = _create_empty(f, f"records_{j}", shape, spec.dtype, chunks,
                                     max_shape(spec, shape, h5py.h5s.UNLIMITED))
                regions.extend((offset, size, "data") for offset, size in _regions(dsid))
            _create_empty(f, "labels", (spec.num_samples_per_file,), np.int64, None, None)
        regions.extend((offset, len(data), data) for offset, data in capture.extents.items())
        regions.sort(key=lambda r: r[0])
        sink = WriterSink(writer)
        pos = 0
        for offset, size, what in regions:
            if offset < pos:
                raise RuntimeError(f"HDF5 layout overlaps at {offset} (file at {pos}): metadata was "
                                   "written into a dataset's space")
            _zeros(sink, offset - pos)
            if isinstance(what, str):
                copy_random(stream, sink, size, spec.write_chunk_bytes)
            else:
                sink.write(what)
            pos = offset + size
        _zeros(sink, capture.end - pos)
        sink.finish()
        return FileInfo(sink.position, spec.num_samples_per_file)

    def _write_filtered(self, writer: StreamWriter, spec: DatasetSpec, split: str, index: int,
                        stream: RandomStream) -> FileInfo:
        options: dict[str, Any] = {"compression": spec.compression}
        if spec.compression == "gzip":
            options["compression_opts"] = spec.compression_level
        fd, path = tempfile.mkstemp(prefix="iobench-hdf5-", suffix=".h5")
        os.close(fd)
        try:
            with h5py.File(path, "w") as f:
                buffer = None
                for j, shape in enumerate(dataset_shapes(spec, split, index)):
                    chunks = chunk_shape(spec, shape)
                    assert chunks is not None  # a compressed dataset is always chunked
                    ds = f.create_dataset(f"records_{j}", shape, dtype=spec.dtype, chunks=chunks,
                                          maxshape=max_shape(spec, shape), track_times=False, **options)
                    for selection in slabs(shape, chunks, spec.dtype.itemsize):
                        slab = tuple(s.stop - s.start for s in selection) + shape[len(selection):]
                        size = math.prod(slab) * spec.dtype.itemsize
                        if buffer is None or buffer.nbytes < size:
                            buffer = np.empty(size, dtype=np.uint8)  # reused: fresh memory is slow to touch
                        stream.readinto(buffer[:size])
                        ds[selection] = buffer[:size].view(spec.dtype).reshape(slab)
                f.create_dataset("labels", data=np.zeros(spec.num_samples_per_file, np.int64), track_times=False)
            size = os.path.getsize(path)
            with open(path, "rb", buffering=0) as src:
                buf = bytearray(spec.write_chunk_bytes)
                while n := src.readinto(buf):
                    writer.write(memoryview(buf)[:n])
        finally:
            os.unlink(path)
        return FileInfo(size, spec.num_samples_per_file)

    def stream_bytes(self, spec: DatasetSpec, split: str, index: int) -> int:
        total = 0
        for shape in dataset_shapes(spec, split, index):
            chunks = chunk_shape(spec, shape) or shape
            # edge chunks are allocated whole
            total += math.prod(-(-s // c) * c for s, c in zip(shape, chunks)) * spec.dtype.itemsize
        return total

    def open(self, storage: Storage, key: str, spec: DatasetSpec) -> SampleFile:
        return HDF5File(storage, key)


def _zeros(sink: WriterSink, n: int) -> None:
    while n > 0:
        take = min(n, len(_ZEROS))
        sink.write(_ZEROS[:take])
        n -= take


FORMAT = HDF5()
