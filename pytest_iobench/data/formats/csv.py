"""csv: the layout current DLIO and the MLCommons fork write and read (pandas'
``DataFrame.to_csv(index=False, header=False)``; ``pandas.read_csv(f, header=None)``): one line
per sample, the record's E elements as decimal numbers separated by commas, no header line
and no index column. ``np.loadtxt(f, delimiter=",")`` gives the samples too.

Text is made by pyarrow's vectorised number-to-string cast, a slice of values at a time, so a
record of any size streams. ``compression`` gzip, bz2, xz or zip compresses the stream, and the
file name gets .gz, .bz2, .xz or .zip, as DLIO names them (zip: one member named like the file
without .zip, as pandas writes it). Compressors get the text in fixed pieces (FixedPieces), so
the bytes do not depend on how the text was made.

Reading fetches the whole file once (a line cannot be found without reading what comes before
it) and parses the line asked for. It also reads what older DLIO wrote (pandas' defaults until
2025-09: a header line ``,0,1,...,E-1`` and a row number before each line) and files with a
header line ``0,1,...,E-1`` and no index column (``_layout``).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zipfile
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...storage.base import Storage, StreamWriter
from ..random import RandomStream
from ..spec import DatasetSpec
from .base import FileInfo, FixedPieces, Format, SampleFile, WriterSink, zip_member
from .registry import FormatInfo

#: bytes of values turned into text per step: the step's text is a few times larger (up to
#: 25 characters per float64), so a fixed count of values would cost 8x more memory for float64
#: than for uint8
STEP_BYTES = 1 << 20
#: characters of one value at most (float64 with sign, digits, exponent) and its separator
_MAX_VALUE_CHARS = 26


def _compressor(name: str, level: int) -> Any:
    if name == "gzip":
        return zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits 31: a gzip stream
    if name == "bz2":
        return bz2.BZ2Compressor(max(1, level))
    if name == "xz":
        return lzma.LZMACompressor(preset=level)
    return None


def _decompress(name: str, data: Any) -> bytes:
    if name.endswith(".gz"):
        return gzip.decompress(data)
    if name.endswith(".bz2"):
        return bz2.decompress(data)
    if name.endswith(".xz"):
        return lzma.decompress(data)
    if name.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = zf.namelist()
            if len(members) != 1:
                raise ValueError(f"{name}: a zipped csv holds one file, this one holds {len(members)}")
            return zf.read(members[0])
    return bytes(data)


def _buffer_of(strings: pa.Array) -> pa.Buffer:
    """The characters of a string array, back to back (no copy)."""
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int32, count=len(strings) + 1, offset=strings.offset * 4)
    return strings.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0]))


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
    # after each segment: a newline where the row ends, a comma where the run cuts a row
    ends_row = (first + bounds[1:]) % row_len == 0
    after = pa.array(np.where(ends_row, "\n", ","), pa.string())
    return _buffer_of(pc.binary_join_element_wise(segments, after, pa.scalar("")))


def _layout(text: bytes, samples: int) -> tuple[int, bool]:
    """(where the data lines start, whether each line starts with a row number). A first line
    starting with "," is older DLIO's pandas header (an empty index name, then the column
    numbers): every line starts with its row number. A first line "0,1,...,k-1" is a header
    without an index column, unless the file has exactly the spec's samples as lines (current
    DLIO: such a line is a sample). Anything else is data."""
    end = text.find(b"\n")
    first = text[:end if end >= 0 else len(text)]
    if first.startswith(b","):
        return end + 1, True
    fields = first.split(b",")
    if fields == [str(i).encode() for i in range(len(fields))]:
        lines = text.count(b"\n") + (0 if text.endswith(b"\n") or not text else 1)
        if lines != samples:
            return end + 1, False
    return 0, False


class CSVFile(SampleFile):
    def __init__(self, storage: Storage, key: str, spec: DatasetSpec):
        self.key = key
        self.dtype = spec.dtype
        text = _decompress(key, storage.get(key))
        skip, self.indexed = _layout(text, spec.num_samples_per_file)
        self.text = text[skip:] if skip else text
        ends = np.flatnonzero(np.frombuffer(self.text, dtype=np.uint8) == 10)
        self.starts = np.concatenate(([0], ends[:-1] + 1)) if len(ends) else np.zeros(0, np.int64)
        self.ends = ends
        self.num_samples = len(ends)

    def read_sample(self, index: int) -> np.ndarray:
        self.check_index(index)
        fields = self.text[self.starts[index]:self.ends[index]].decode("ascii").split(",")
        return np.asarray(fields[1:] if self.indexed else fields, dtype=self.dtype)

    def close(self) -> None:
        self.text = b""


class CSV(Format):
    # text is a few times the binary size, and encoded at tens of MB/s
    info = FormatInfo("csv", sample_bytes=16 << 10, compressions=("none", "gzip", "bz2", "xz", "zip"),
                      suffixes={"gzip": ".gz", "bz2": ".bz2", "xz": ".xz", "zip": ".zip"}, slow=True)

    def write(self, writer: StreamWriter, spec: DatasetSpec, split: str, index: int,
              stream: RandomStream) -> FileInfo:
        elements = int(np.prod(spec.sample_shape(split, index)))
        n = spec.num_samples_per_file
        total = elements * n
        sink = WriterSink(writer)
        out, finish = self._output(sink, spec, split, index, elements, n)
        step = max(1, STEP_BYTES // spec.dtype.itemsize)
        done = 0
        while done < total:
            count = min(step, total - done)
            out(values_text(stream.array(count, spec.dtype), elements, done))
            done += count
        finish()
        sink.finish()
        return FileInfo(sink.position, n)

    def _output(self, sink: WriterSink, spec: DatasetSpec, split: str, index: int, elements: int,
                n: int) -> tuple[Callable[[Any], Any], Callable[[], None]]:
        """(write, finish) of the file's text: straight into ``sink``, or through the compressor."""
        compression, level = spec.compression, spec.compression_level
        if compression == "none":
            return sink.write, lambda: None
        if compression == "zip":
            name = spec.file_key(split, index).rsplit("/", 1)[-1].removesuffix(".zip")
            zf = zipfile.ZipFile(sink, mode="w", allowZip64=True)
            # the text's size is not known before it is written: zip64 sizes when it could pass 4 GiB
            big = elements * n * _MAX_VALUE_CHARS > zipfile.ZIP64_LIMIT
            member = zf.open(zip_member(name, True, level), "w", force_zip64=big)
            pieces = FixedPieces(member.write)

            def finish_zip() -> None:
                pieces.finish()
                member.close()
                zf.close()

            return pieces.write, finish_zip
        compressor = _compressor(compression, level)
        pieces = FixedPieces(lambda piece: sink.write(compressor.compress(piece)))

        def finish() -> None:
            pieces.finish()
            sink.write(compressor.flush())

        return pieces.write, finish

    def open(self, storage: Storage, key: str, spec: DatasetSpec) -> SampleFile:
        return CSVFile(storage, key, spec)

    def stream_bytes(self, spec: DatasetSpec, split: str, index: int) -> int:
        return spec.num_samples_per_file * spec.record_bytes(split, index)


FORMAT = CSV()
