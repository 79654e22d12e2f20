"""parquet: one row per sample, written one row group at a time through pyarrow's ParquetWriter.

Columns (dataset.parquet.columns; by default one ``data`` column holding the whole record):
``binary`` columns are fixed_size_binary; numeric columns of one element are plain columns, of
several elements fixed_size_list columns. Three layouts (dataset.parquet.layout):

- ``dlio`` (default): the default ``data`` column is fixed_size_binary (for uint8 records), with
  dictionary encoding and statistics on (pyarrow's defaults, as the MLCommons fork writes; binary
  columns with a 1-byte dictionary limit, so the encoder gives up on random values at once). The
  fork's parquet readers read it: what they need is each column chunk's dictionary page.
- ``list``: the fork's own column type, a fixed_size_list of the element type
  (``fixed_size_list<uint8>[record bytes]``), dictionary and statistics on. pyarrow encodes a
  list of uint8 one value per byte, many times slower than a binary column (figures in
  docs/data.md, "Measured").
- ``fast``: fixed_size_binary with dictionary encoding and statistics off (random values gain
  nothing from them). The fork's parquet readers cannot read it: they take each column chunk's
  dictionary page offset, None without a dictionary (``TypeError: '>' not supported between
  'NoneType' and 'int'``).

Every column is built without a copy over a slice of a reused buffer filled from the random
source (with a second one where a core is free for it: the next row group's is filled by a
helper thread while this one is encoded), and pages are kept near 1 MiB (write_batch_size),
where pyarrow encodes large values fastest. A row group is at most MAX_ROW_GROUP_BYTES, so
memory stays bounded whatever the file size.

Reading: the footer and each row group's column chunks are range reads through the storage
(pyarrow's read_row_group, as the MLCommons fork's readers call it: a row group is the unit of
I/O); ``columns`` projects the read. A row group is read once and shared by the handles of the
file in the process until each of its rows has been read (``RowGroups``), so a shuffled read
order costs what the fork's row-group-at-a-time reading costs, one read of each row group an
epoch, instead of a read of a row group per sample.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ...storage.base import Storage, StreamWriter
from ..checks import Rule
from ..random import RandomStream
from ..spec import DatasetSpec
from .base import FileInfo, Format, RangeFile, SampleFile, WriterSink
from .registry import FormatInfo

#: pyarrow's compression names for ours
_CODECS = {"none": "NONE", "snappy": "SNAPPY", "zstd": "ZSTD", "gzip": "GZIP", "lz4": "LZ4", "brotli": "BROTLI"}
#: target data page size: pyarrow encodes large values fastest with pages near 1 MiB
PAGE_BYTES = 1 << 20
#: files of the process whose next row group is filled ahead, in a second buffer, while this one
#: is encoded: the fill runs on an idle core, and there are no more of those than cores (with 4
#: threads on 2 cores, a second buffer each held 64 MiB more for nothing: peak RSS 251 MiB)
FILL_AHEAD = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))


def _arrow_type(dtype: str, count: int, as_list: bool = False) -> pa.DataType:
    """``as_list``: a list even of one element (the fork's default ``data`` column)."""
    if dtype == "binary":
        return pa.binary(count)
    base = pa.from_numpy_dtype(np.dtype(dtype))
    return base if count == 1 and not as_list else pa.list_(base, count)


def _column(dtype: str, count: int, rows: int, data: pa.Buffer, as_list: bool = False) -> pa.Array:
    """A column of ``rows`` values over ``data`` (no copy)."""
    if dtype == "binary":
        return pa.FixedSizeBinaryArray.from_buffers(pa.binary(count), rows, [None, data])
    base = pa.from_numpy_dtype(np.dtype(dtype))
    values = pa.Array.from_buffers(base, rows * count, [None, data])
    return values if count == 1 and not as_list else pa.FixedSizeListArray.from_arrays(values, count)


def _element_bytes(dtype: str) -> int:
    return 1 if dtype == "binary" else np.dtype(dtype).itemsize


class _Group:
    """One decoded row group of one file, shared by the file's handles, and which of its rows
    have been read since it was."""

    def __init__(self, rows: int):
        self.table: pa.Table | None = None
        self.error: BaseException | None = None
        self.loaded = threading.Event()
        self.served = np.zeros(rows, dtype=bool)
        self.left = rows
        self.nbytes = 0


class _OpenFile:
    """What the handles of one file (the same storage and key) open in this process share:
    its size and footer, and its row groups."""

    def __init__(self, storage: Storage, key: str):
        self.storage = storage  # held: the identity below must not be reused while open
        self.key = key
        self.handles = 0
        #: one handle reads the footer while the others opening at the same time wait for it
        self.opening = threading.Lock()
        self.size: int | None = None
        self.metadata: pq.FileMetaData | None = None
        self.groups: dict[tuple[Any, ...], _Group] = {}


class RowGroups:
    """The row groups read in this process, decoded, shared by every handle of a file: a rank's
    read threads each open the files they read, and a shuffled read order sends the samples of
    one row group to several threads.

    A row group is read from the storage (its column chunks, as pyarrow's read_row_group reads
    them) when a sample of it is asked for and it is not held, decoded once, and held until
    every one of its rows has been read (then a new read starts over: each epoch reads it
    again), until the last handle of its file closes, or until holding it would pass
    ``budget`` bytes (the least recently used go first; one row group is always held).
    """

    def __init__(self, budget: int):
        self.budget = budget
        self._lock = threading.Lock()
        self._files: dict[tuple[int, str], _OpenFile] = {}
        #: held row groups, least recently used first: (file, group key) -> bytes
        self._held: OrderedDict[tuple[_OpenFile, tuple[Any, ...]], int] = OrderedDict()
        self._bytes = 0

    @property
    def held_bytes(self) -> int:
        return self._bytes

    def attach(self, storage: Storage, key: str) -> _OpenFile:
        with self._lock:
            entry = self._files.get((id(storage), key))
            if entry is None:
                entry = self._files[(id(storage), key)] = _OpenFile(storage, key)
            entry.handles += 1
            return entry

    def detach(self, entry: _OpenFile) -> None:
        with self._lock:
            entry.handles -= 1
            if entry.handles > 0:
                return
            self._files.pop((id(entry.storage), entry.key), None)
            for group_key in list(entry.groups):
                self._drop(entry, group_key)

    def _drop(self, entry: _OpenFile, group_key: tuple[Any, ...]) -> None:
        """Forget a row group (lock held)."""
        group = entry.groups.pop(group_key, None)
        if group is not None:
            self._bytes -= self._held.pop((entry, group_key), 0)

    def row(self, entry: _OpenFile, group_key: tuple[Any, ...], rows: int, row: int,
            read: Callable[[], pa.Table]) -> pa.Table:
        """The table of a row group for reading row ``row`` of it: held, or read with ``read()``
        (one thread reads it, the others asking for it wait)."""
        with self._lock:
            group = entry.groups.get(group_key)
            owner = group is None
            if group is None:
                group = entry.groups[group_key] = _Group(rows)
        if owner:
            try:
                group.table = read()
            except BaseException as exc:
                group.error = exc
                with self._lock:
                    if entry.groups.get(group_key) is group:
                        del entry.groups[group_key]
                group.loaded.set()
                raise
            group.nbytes = group.table.nbytes
            with self._lock:
                if entry.groups.get(group_key) is group:
                    self._held[(entry, group_key)] = group.nbytes
                    self._bytes += group.nbytes
                    self._trim()
            group.loaded.set()
        else:
            group.loaded.wait()
            if group.error is not None:
                raise group.error
        with self._lock:
            if (entry, group_key) in self._held:
                self._held.move_to_end((entry, group_key))
            if not group.served[row]:
                group.served[row] = True
                group.left -= 1
                if group.left == 0 and entry.groups.get(group_key) is group:
                    self._drop(entry, group_key)  # every row read: the next read starts over
        return group.table

    def _trim(self) -> None:
        """Drop the least recently used row groups past the budget, keeping the newest (lock held)."""
        while self._bytes > self.budget and len(self._held) > 1:
            entry, group_key = next(iter(self._held))
            self._drop(entry, group_key)


#: decoded row groups held at once by the process (its read threads share them)
ROW_GROUP_BUDGET = 128 << 20
ROW_GROUPS = RowGroups(ROW_GROUP_BUDGET)


class ParquetFile(SampleFile):
    """One parquet file for reading rows, through ``storage``. The footer is read once per file
    while any handle of it is open, and row groups are shared with its other handles
    (``RowGroups``)."""

    def __init__(self, storage: Storage, key: str, columns: list[str] | None = None,
                 shared: RowGroups | None = None):
        self.key = key
        self.columns = columns
        self._shared = shared or ROW_GROUPS
        self._file = self._shared.attach(storage, key)
        try:
            with self._file.opening:
                self.rf = RangeFile(storage, key, size=self._file.size, readahead=64 << 10)
                self.pf = pq.ParquetFile(self.rf, metadata=self._file.metadata)
                self._file.size, self._file.metadata = self.rf.size, self.pf.metadata
            # read ahead for the footer only: column chunks are read as pyarrow asks, exactly
            self.rf.readahead = 0
        except BaseException:
            self._shared.detach(self._file)
            raise
        meta = self.pf.metadata
        self.num_samples = meta.num_rows
        self._starts = []
        self._rows = []
        row = 0
        for i in range(meta.num_row_groups):
            self._starts.append(row)
            self._rows.append(meta.row_group(i).num_rows)
            row += self._rows[-1]
        self._columns_key = tuple(columns) if columns is not None else None
        # a handle dropped without close() lets go of its file too
        self._detach = weakref.finalize(self, self._shared.detach, self._file)

    def row_group(self, index: int, row: int = 0) -> pa.Table:
        """Row group ``index`` decoded, counting row ``row`` of it as read."""
        return self._shared.row(self._file, (index, self._columns_key), self._rows[index], row,
                                lambda: self.pf.read_row_group(index, columns=self.columns))

    def read_sample(self, index: int) -> Any:
        """The row: its only column's value (bytes view or array), or {column: value}."""
        self.check_index(index)
        group = bisect.bisect_right(self._starts, index) - 1
        row = index - self._starts[group]
        table = self.row_group(group, row)
        values = {name: _value(table.column(name), row) for name in table.column_names}
        return next(iter(values.values())) if len(values) == 1 else values

    def close(self) -> None:
        if self._detach.alive:
            self.pf.close()
            self._detach()


def _value(column: pa.ChunkedArray, row: int) -> Any:
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


def _row_group_bytes(stream: RandomStream, sizes: list[int]) -> Generator[np.ndarray, None, None]:
    """The bytes of each row group in turn, from ``stream``; each is valid until the next is
    asked for. Where a core may be idle for it (FILL_AHEAD), a helper thread fills the next
    one's buffer while the caller encodes this one; otherwise one buffer is filled in turn.
    One fill at a time, in order: the same bytes either way."""
    ahead = len(sizes) > 1 and FILL_AHEAD.acquire(blocking=False)
    buffers = [np.empty(max(sizes), dtype=np.uint8) for _ in range(2 if ahead else 1)]
    filler = ThreadPoolExecutor(max_workers=1, thread_name_prefix="iobench-parquet-fill") if ahead else None
    try:
        pending: Future[Any] | None = None
        for g, size in enumerate(sizes):
            view = buffers[g % len(buffers)][:size]
            if pending is None:
                stream.readinto(view)
            else:
                start = time.perf_counter()
                pending.result()
                stream.waited += time.perf_counter() - start
            if filler is not None and g + 1 < len(sizes):
                pending = filler.submit(_fill_aside, stream, buffers[(g + 1) % len(buffers)][:sizes[g + 1]])
            yield view
    finally:
        if filler is not None:
            filler.shutdown(wait=True)  # a fill under way ends before its buffer goes
            FILL_AHEAD.release()


def _fill_aside(stream: RandomStream, view: np.ndarray) -> None:
    """The helper thread's fill: its time is not the writer's (the writer's wait for it is).
    The writer does not use the stream until this returns."""
    spent = stream.waited
    stream.readinto(view)
    stream.waited = spent


def _fixed(v: Any) -> int:
    return sum(c.fixed_bytes() or 0 for c in v.parquet.columns)


def _sized(v: Any) -> bool:
    """parquet.columns are given and each has its size: they make the row."""
    return bool(v.parquet.columns) and all(c.size is not None for c in v.parquet.columns)


def _derive(v: Any, replaced: list[tuple[str, str]]) -> None:
    """DLIO (the MLCommons fork) builds rows from the columns alone."""
    if _sized(v):
        if "record_length_bytes" in v.given and v.record_length_bytes != _fixed(v):
            replaced.append(("record_length_bytes", f"{v.record_length_bytes} is replaced by the {_fixed(v)} "
                             "bytes of parquet.columns (the columns make the row, as in DLIO)"))
        v.fields["record_length_bytes"] = _fixed(v)


RULES = (
    Rule("record_length_bytes_stdev", lambda v: _sized(v) and v.record_length_bytes_stdev > 0,
         "needs a binary parquet column without a size to vary"),
    Rule("parquet.columns",
         lambda v: v.parquet.columns and not _sized(v) and _fixed(v) >= v.record_length_bytes,
         lambda v: f"the sized columns take {_fixed(v)} bytes, leaving nothing of record_length_bytes "
                   f"{v.record_length_bytes} for the column without a size"),
    Rule("record_dims", lambda v: v.parquet.columns and v.dims,
         "cannot be used with parquet.columns; give the sizes in the columns"),
)


class Parquet(Format):
    # rows of a few KiB to 64 KiB
    info = FormatInfo("parquet", sample_bytes=64 << 10,
                      compressions=("none", "snappy", "zstd", "gzip", "lz4", "brotli"), derive=_derive, rules=RULES)

    def write(self, writer: StreamWriter, spec: DatasetSpec, split: str, index: int,
              stream: RandomStream) -> FileInfo:
        record = spec.record_bytes(split, index)
        layout = spec.parquet_columns(record)
        fork = spec.parquet.layout != "fast"  # the fork's readers need the dictionary page
        as_list = spec.parquet.layout == "list" and not spec.parquet.columns
        row_bytes = sum(count * _element_bytes(dtype) for _, dtype, count in layout)
        schema = pa.schema([(name, _arrow_type(dtype, count, as_list)) for name, dtype, count in layout])
        n = spec.num_samples_per_file
        rows = spec.row_group_rows
        counts = [min(rows, n - done) for done in range(0, n, rows)]
        sink = WriterSink(writer)
        # the fork's layout: pyarrow's defaults (dictionary and statistics on), as the fork writes
        options: dict[str, Any] = dict(compression=_CODECS[spec.effective_compression], use_dictionary=fork,
                                       write_statistics=fork, write_batch_size=max(1, PAGE_BYTES // row_bytes))
        if fork and all(dtype == "binary" for _, dtype, _ in layout):
            # Random binary values never repeat: pyarrow's dictionary (1 MiB by default) only
            # fills up and falls back to plain pages. A 1-byte limit falls back after the first
            # value and keeps the dictionary page the fork's readers look for.
            options["dictionary_pagesize_limit"] = 1
        if spec.effective_compression_level is not None:
            options["compression_level"] = spec.effective_compression_level
        pq_writer = pq.ParquetWriter(sink, schema, **options)
        try:
            with closing(_row_group_bytes(stream, [count * row_bytes for count in counts])) as fills:
                for count, used in zip(counts, fills):
                    arrays, at = [], 0
                    for _, dtype, elems in layout:
                        size = count * elems * _element_bytes(dtype)
                        arrays.append(_column(dtype, elems, count, pa.py_buffer(used[at:at + size]), as_list))
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
