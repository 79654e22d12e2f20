"""parquet: one row per sample, written one row group at a time through pyarrow's ParquetWriter.

Columns (dataset.parquet.columns; by default one ``data`` column holding the whole record):
``binary`` columns are fixed_size_binary, which pyarrow encodes about ten times faster than a
list of uint8 (one value per byte); numeric columns of one element are plain columns, of
several elements fixed_size_list columns. Every column is built without a copy over a slice of
one of two reused buffers filled from the random source (the next row group's is filled by a
helper thread while this one is encoded and written), dictionary encoding and statistics are off
(random values gain nothing from them), and pages are kept near 1 MiB (write_batch_size) which
is where pyarrow encodes large values fastest. A row group is at most MAX_ROW_GROUP_BYTES, so
memory stays bounded whatever the file size.

Reading: the footer and each row group's column chunks are range reads through the storage;
a small LRU keeps the last row groups decoded, and ``columns`` projects the read.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ...storage.base import Storage, StreamWriter
from ..random import RandomStream
from ..spec import DatasetSpec
from .base import FileInfo, Format, RangeFile, SampleFile, WriterSink

#: pyarrow's compression names for ours
_CODECS = {"none": "NONE", "snappy": "SNAPPY", "zstd": "ZSTD", "gzip": "GZIP", "lz4": "LZ4", "brotli": "BROTLI"}
#: row groups a reader keeps decoded
ROW_GROUP_CACHE = 2
#: target data page size: pyarrow encodes large values fastest with pages near 1 MiB
PAGE_BYTES = 1 << 20


def _arrow_type(dtype: str, count: int) -> pa.DataType:
    if dtype == "binary":
        return pa.binary(count)
    base = pa.from_numpy_dtype(np.dtype(dtype))
    return base if count == 1 else pa.list_(base, count)


def _column(dtype: str, count: int, rows: int, data: pa.Buffer) -> pa.Array:
    """A column of ``rows`` values over ``data`` (no copy)."""
    if dtype == "binary":
        return pa.FixedSizeBinaryArray.from_buffers(pa.binary(count), rows, [None, data])
    base = pa.from_numpy_dtype(np.dtype(dtype))
    values = pa.Array.from_buffers(base, rows * count, [None, data])
    return values if count == 1 else pa.FixedSizeListArray.from_arrays(values, count)


def _element_bytes(dtype: str) -> int:
    return 1 if dtype == "binary" else np.dtype(dtype).itemsize


class ParquetFile(SampleFile):
    def __init__(self, storage: Storage, key: str, columns: list[str] | None = None,
                 cache: int = ROW_GROUP_CACHE):
        self.key = key
        self.rf = RangeFile(storage, key, readahead=64 << 10)
        self.pf = pq.ParquetFile(self.rf)
        meta = self.pf.metadata
        self.num_samples = meta.num_rows
        self._starts = []
        row = 0
        for i in range(meta.num_row_groups):
            self._starts.append(row)
            row += meta.row_group(i).num_rows
        self.columns = columns
        self._cache: OrderedDict[int, pa.Table] = OrderedDict()
        self._size = max(1, cache)

    def row_group(self, index: int) -> pa.Table:
        table = self._cache.get(index)
        if table is not None:
            self._cache.move_to_end(index)
            return table
        table = self.pf.read_row_group(index, columns=self.columns)
        self._cache[index] = table
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return table

    def read_sample(self, index: int):
        """The row: its only column's value (bytes view or array), or {column: value}."""
        self.check_index(index)
        group = bisect.bisect_right(self._starts, index) - 1
        table = self.row_group(group)
        row = index - self._starts[group]
        values = {name: _value(table.column(name), row) for name in table.column_names}
        return next(iter(values.values())) if len(values) == 1 else values

    def close(self) -> None:
        self._cache.clear()
        self.pf.close()


def _value(column: pa.ChunkedArray, row: int):
    for chunk in column.chunks:
        if row < len(chunk):
            break
        row -= len(chunk)
    t = chunk.type
    if pa.types.is_fixed_size_binary(t):
        width = t.byte_width
        start = (chunk.offset + row) * width
        return memoryview(chunk.buffers()[1])[start:start + width]
    if pa.types.is_fixed_size_list(t):
        return chunk.values.slice((chunk.offset + row) * t.list_size, t.list_size).to_numpy(zero_copy_only=False)
    return chunk[row].as_py()


class Parquet(Format):
    name = "parquet"

    def write(self, writer: StreamWriter, spec: DatasetSpec, split: str, index: int,
              stream: RandomStream) -> FileInfo:
        record = spec.record_bytes(split, index)
        layout = spec.parquet_columns(record)
        row_bytes = sum(count * _element_bytes(dtype) for _, dtype, count in layout)
        schema = pa.schema([(name, _arrow_type(dtype, count)) for name, dtype, count in layout])
        n = spec.num_samples_per_file
        rows = spec.row_group_rows
        counts = [min(rows, n - done) for done in range(0, n, rows)]
        # two buffers: a helper thread fills the next row group's from the random source while
        # pyarrow encodes and writes this one (one fill at a time, in order: the same bytes)
        buffers = [np.empty(rows * row_bytes, dtype=np.uint8) for _ in range(min(2, len(counts)))]
        sink = WriterSink(writer)
        options = dict(compression=_CODECS[spec.effective_compression], use_dictionary=False,
                       write_statistics=False, write_batch_size=max(1, PAGE_BYTES // row_bytes))
        if spec.effective_compression_level is not None:
            options["compression_level"] = spec.effective_compression_level
        pq_writer = pq.ParquetWriter(sink, schema, **options)
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="iobench-parquet-fill") as filler:
                def fill(g: int) -> Future:
                    return filler.submit(stream.readinto, buffers[g % 2][:counts[g] * row_bytes])

                pending = fill(0)
                for g, count in enumerate(counts):
                    pending.result()
                    used = buffers[g % 2][:count * row_bytes]
                    if g + 1 < len(counts):
                        pending = fill(g + 1)
                    arrays, at = [], 0
                    for _, dtype, elems in layout:
                        size = count * elems * _element_bytes(dtype)
                        arrays.append(_column(dtype, elems, count, pa.py_buffer(used[at:at + size])))
                        at += size
                    # one row group per call; pyarrow is done with the buffer when this returns
                    pq_writer.write_table(pa.Table.from_arrays(arrays, schema=schema), row_group_size=count)
        finally:
            pq_writer.close()  # writes the footer into the sink (the caller aborts on failure)
        sink.finish()
        return FileInfo(sink.position, n)

    def open(self, storage: Storage, key: str, spec: DatasetSpec, columns: list[str] | None = None) -> SampleFile:
        return ParquetFile(storage, key, columns=columns)


FORMAT = Parquet()
