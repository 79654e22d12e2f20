"""indexed_binary (and DLIO's mmap_indexed_binary): a data file of samples back to back, with
two index files next to it, as DLIO writes them:
    <file>.off.idx   uint64 offset of each sample (native byte order: little endian here)
    <file>.sz.idx    uint64 size of each sample

The index files are written first, so a data file never appears without them. A reader
fetches both index files when it opens a file, then one range read per sample.
"""

from __future__ import annotations

from typing import cast

import numpy as np

from ...storage.base import Storage, StreamWriter
from ..random import RandomStream
from ..spec import DatasetSpec
from .base import FileInfo, Format, SampleFile, WriterSink, copy_random
from .registry import FormatInfo

OFFSETS = ".off.idx"
SIZES = ".sz.idx"
#: index entries produced per write (8 bytes each): index files stream too
_INDEX_STEP = 1 << 17


class IndexedBinaryFile(SampleFile):
    def __init__(self, storage: Storage, key: str):
        self.storage = storage
        self.key = key
        self.offsets = np.frombuffer(storage.get(key + OFFSETS), dtype="<u8")
        self.sizes = np.frombuffer(storage.get(key + SIZES), dtype="<u8")
        if len(self.offsets) != len(self.sizes):
            raise ValueError(f"{key}: {len(self.offsets)} offsets but {len(self.sizes)} sizes in its index files")
        self.num_samples = len(self.offsets)

    def read_sample(self, index: int) -> object:
        self.check_index(index)
        size = int(self.sizes[index])
        data = self.storage.get_range(self.key, int(self.offsets[index]), size)
        if len(data) != size:
            raise ValueError(f"{self.key}: sample {index} is cut short ({len(data)} of {size} bytes)")
        return data


class IndexedBinary(Format):
    def __init__(self, info: FormatInfo):
        self.info = info

    def companion_keys(self, key: str) -> list[str]:
        return [key + OFFSETS, key + SIZES]

    def write_companions(self, storage: Storage, key: str, spec: DatasetSpec, split: str, index: int, *,
                         fsync: bool = False) -> dict[str, int]:
        size = spec.record_bytes(split, index)
        n = spec.num_samples_per_file
        sizes = {}
        for suffix, values in ((OFFSETS, lambda lo, hi: np.arange(lo, hi, dtype="<u8") * size),
                               (SIZES, lambda lo, hi: np.full(hi - lo, size, dtype="<u8"))):
            with storage.open_writer(key + suffix, fsync=fsync) as writer:
                for lo in range(0, n, _INDEX_STEP):
                    # an array is a buffer; the stubs do not say so
                    writer.write(cast(bytes, values(lo, min(n, lo + _INDEX_STEP))))
            sizes[key + suffix] = writer.bytes_written
        return sizes

    def write(self, writer: StreamWriter, spec: DatasetSpec, split: str, index: int,
              stream: RandomStream) -> FileInfo:
        n = spec.num_samples_per_file
        total = n * spec.record_bytes(split, index)
        sink = WriterSink(writer)
        copy_random(stream, sink, total, spec.write_chunk_bytes)
        sink.finish()
        return FileInfo(total, n)

    def open(self, storage: Storage, key: str, spec: DatasetSpec) -> SampleFile:
        return IndexedBinaryFile(storage, key)


def formats() -> dict[str, Format]:
    return {"indexed_binary": IndexedBinary(FormatInfo("indexed_binary", sample_bytes=64 << 10)),
            "mmap_indexed_binary": IndexedBinary(FormatInfo(
                "mmap_indexed_binary", sample_bytes=64 << 10,
                note="mmap_indexed_binary files are read with range reads through the storage (no mmap)"))}
