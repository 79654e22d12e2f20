"""csv: one line per sample, the record's elements as comma-separated decimal numbers (no
header, no index column): ``np.loadtxt(f, delimiter=",")`` and
``pandas.read_csv(f, header=None)`` give a (num_samples, elements) table.

Text is made by pyarrow's vectorised number-to-string cast, a slice of values at a time, so a
record of any size streams. ``compression`` gzip, bz2 or xz compresses the stream (the file
name gets .gz, .bz2 or .xz, as DLIO names them). A reader fetches the whole file once (a line
cannot be found without reading what comes before it) and parses the line asked for.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...storage.base import Storage, StreamWriter
from ..random import RandomStream
from ..spec import DatasetSpec
from .base import FileInfo, Format, SampleFile, WriterSink

#: bytes of values turned into text per step: the step's text is a few times larger (up to
#: 25 characters per float64), so a fixed count of values would cost 8x more memory for float64
#: than for uint8
STEP_BYTES = 1 << 20
#: values per compressor call where the compressed bytes depend on how text is handed over
#: (zlib level 0 cuts a stored block at each call): the step of earlier versions, so such
#: files keep their bytes. Other levels, bz2 and xz give the same bytes for any split.
STORED_VALUES = 1 << 20


def _compressor(name: str, level: int):
    if name == "gzip":
        return zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits 31: a gzip stream
    if name == "bz2":
        return bz2.BZ2Compressor(max(1, level))
    if name == "xz":
        return lzma.LZMACompressor(preset=level)
    return None


def _decompress(name: str, data) -> bytes:
    if name.endswith(".gz"):
        return gzip.decompress(data)
    if name.endswith(".bz2"):
        return bz2.decompress(data)
    if name.endswith(".xz"):
        return lzma.decompress(data)
    return data


def values_text(values: np.ndarray, row_len: int, first: int) -> pa.Buffer:
    """CSV text of ``values`` (a run of the file's values, the first being value number
    ``first`` of the file): commas between values, a newline after each row's last one."""
    strings = pc.cast(pa.array(values), pa.string())
    count = len(values)
    # cut the run where rows end; each segment's values are joined with commas in C++
    first_end = row_len - first % row_len
    cuts = np.arange(first_end, count, row_len, dtype=np.int64)
    bounds = np.unique(np.concatenate(([0], cuts, [count])))
    segments = pc.binary_join(pa.ListArray.from_arrays(pa.array(bounds.astype(np.int32)), strings), ",")
    # what follows each segment: a newline where a row ends, a comma where the run cuts a row
    ends_row = (first + bounds[1:]) % row_len == 0
    after = pa.array(np.where(ends_row, "\n", ","), pa.string())
    joined = pc.binary_join_element_wise(segments, after, pa.scalar(""))
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32, count=len(joined) + 1, offset=joined.offset * 4)
    return joined.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0]))


class CSVFile(SampleFile):
    def __init__(self, storage: Storage, key: str, spec: DatasetSpec):
        self.key = key
        self.dtype = spec.dtype
        self.text = _decompress(key, bytes(storage.get(key)))
        ends = np.flatnonzero(np.frombuffer(self.text, dtype=np.uint8) == 10)
        self.starts = np.concatenate(([0], ends[:-1] + 1)) if len(ends) else np.zeros(0, np.int64)
        self.ends = ends
        self.num_samples = len(ends)

    def read_sample(self, index: int) -> np.ndarray:
        self.check_index(index)
        line = self.text[self.starts[index]:self.ends[index]]
        return np.asarray(line.decode("ascii").split(","), dtype=self.dtype)

    def close(self) -> None:
        self.text = b""


class CSV(Format):
    name = "csv"

    def write(self, writer: StreamWriter, spec: DatasetSpec, split: str, index: int,
              stream: RandomStream) -> FileInfo:
        elements = int(np.prod(spec.sample_shape(split, index)))
        n = spec.num_samples_per_file
        total = elements * n
        sink = WriterSink(writer)
        compressor = _compressor(spec.compression, spec.compression_level)
        step = max(1, STEP_BYTES // spec.dtype.itemsize)  # divides STORED_VALUES (itemsizes are powers of 2)
        batch = STORED_VALUES // step if spec.compression == "gzip" and spec.compression_level == 0 else 1
        texts = []
        done = 0
        while done < total:
            count = min(step, total - done)
            text = values_text(stream.array(count, spec.dtype), elements, done)
            done += count
            if compressor is None:
                sink.write(text)
                continue
            texts.append(text)
            if len(texts) == batch or done == total:
                sink.write(compressor.compress(texts[0] if len(texts) == 1 else b"".join(texts)))
                texts = []
        if compressor is not None:
            sink.write(compressor.flush())
        sink.finish()
        return FileInfo(sink.position, n)

    def open(self, storage: Storage, key: str, spec: DatasetSpec) -> SampleFile:
        return CSVFile(storage, key, spec)

    def stream_bytes(self, spec: DatasetSpec, split: str, index: int) -> int:
        return spec.num_samples_per_file * spec.record_bytes(split, index)


FORMAT = CSV()
