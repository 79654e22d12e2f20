"""npy: one array per file, read with np.load.

Layout (DLIO's): the array has shape (*sample_shape, num_samples), samples along the last
axis, so ``np.load(f)[..., i]`` is sample i. We write it in Fortran order, which makes
each sample one contiguous run of bytes: the file streams out sample after sample, and a
reader fetches sample i with one range read after the header.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np

from ...storage.base import Storage, StreamWriter
from ..random import RandomStream
from ..spec import DatasetSpec
from .base import FileInfo, Format, RangeFile, SampleFile, WriterSink, copy_random
from .registry import FormatInfo

#: bytes fetched to parse a header (npy headers are padded to 64 bytes; 4 KiB covers any we meet)
HEADER_READ = 4096


def npy_header(dtype: np.dtype, shape: tuple[int, ...], fortran_order: bool = True) -> bytes:
    """The .npy header (magic, version, padded dict) for an array of ``shape``."""
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": fortran_order, "shape": tuple(shape)}
    buf = io.BytesIO()
    try:
        np.lib.format.write_array_header_1_0(buf, header)
    except ValueError:  # a header over 64 KiB needs version 2.0
        buf = io.BytesIO()
        np.lib.format.write_array_header_2_0(buf, header)
    return buf.getvalue()


def read_npy_header(fp: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) from a file object positioned at an .npy header; leaves
    it positioned at the data."""
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fp)
    return np.lib.format.read_array_header_2_0(fp)


def write_samples_array(sink: Any, spec: DatasetSpec, split: str, index: int, stream: RandomStream) -> int:
    """Header then samples, as an .npy stream into ``sink``; returns the bytes written."""
    shape = spec.sample_shape(split, index)
    n = spec.num_samples_per_file
    header = npy_header(spec.dtype, (*shape, n))
    sink.write(header)
    data = n * int(np.prod(shape)) * spec.dtype.itemsize
    copy_random(stream, sink, data, spec.write_chunk_bytes)
    return len(header) + data


class SampleArray:
    """Samples of an .npy array that starts at ``base`` in a file, read with range reads when
    samples are contiguous (Fortran order), else from the whole array read once."""

    def __init__(self, rf: RangeFile, base: int, load_whole: Callable[[], np.ndarray]):
        rf.seek(base)
        self.shape, self.fortran, self.dtype = read_npy_header(rf)
        self.data_at = rf.tell()
        self.rf = rf
        self.sample_shape = self.shape[:-1]
        self.num_samples = self.shape[-1] if self.shape else 1
        self.sample_bytes = int(np.prod(self.sample_shape)) * self.dtype.itemsize
        self._load_whole = load_whole
        self._whole: np.ndarray | None = None

    def read(self, index: int) -> np.ndarray:
        if self.fortran:
            data = self.rf.read_at(self.data_at + index * self.sample_bytes, self.sample_bytes)
            if len(data) != self.sample_bytes:
                raise ValueError(f"{self.rf.key}: sample {index} is cut short "
                                 f"({len(data)} of {self.sample_bytes} bytes)")
            return np.frombuffer(data, dtype=self.dtype).reshape(self.sample_shape, order="F")
        # C order (files from other writers): a sample is strided, read the array once
        whole = self._whole
        if whole is None:
            whole = self._whole = self._load_whole()
        return whole[..., index]


class NpyFile(SampleFile):
    def __init__(self, storage: Storage, key: str):
        self.rf = RangeFile(storage, key, readahead=HEADER_READ)
        # a C-order array (another writer's) is read whole, through rf: a small file it holds
        # already is not fetched again
        self.array = SampleArray(self.rf, 0, lambda: np.load(io.BytesIO(self.rf.read_at(0, self.rf.size))))
        self.num_samples = self.array.num_samples

    def read_sample(self, index: int) -> np.ndarray:
        self.check_index(index)
        return self.array.read(index)

    def close(self) -> None:
        self.array._whole = None


class Npy(Format):
    info = FormatInfo("npy", sample_bytes=1 << 20)  # unet3d-like arrays

    def write(self, writer: StreamWriter, spec: DatasetSpec, split: str, index: int,
              stream: RandomStream) -> FileInfo:
        sink = WriterSink(writer)
        size = write_samples_array(sink, spec, split, index, stream)
        sink.finish()
        return FileInfo(size, spec.num_samples_per_file)

    def open(self, storage: Storage, key: str, spec: DatasetSpec) -> SampleFile:
        return NpyFile(storage, key)


FORMAT = Npy()
