"""What every format shares: the Format and SampleFile interfaces, and the file-like adapters
that let standard libraries (pyarrow, zipfile, Pillow, h5py) write into a storage's streaming
writer and read through a storage's range reads.

A format writes one file as a stream: ``write(writer, spec, split, index, stream)`` pulls the
file's bytes from ``stream`` (a RandomStream: the file's content is a function of the spec's
seed and the file) and hands pieces to ``writer`` (a StreamWriter), never holding the whole
file. ``open(storage, key, spec)`` gives a SampleFile whose ``read_sample(i)`` moves the real
bytes through ``storage`` (so a CountingStorage counts them) and parses what the format needs.
"""

from __future__ import annotations

import abc
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...storage.base import Storage, StreamWriter
from ..random import RandomStream
from ..spec import DatasetSpec
from .registry import FormatInfo

MiB = 1 << 20


@dataclass(frozen=True)
class FileInfo:
    """What one write produced: bytes of the main file, and its samples."""

    bytes: int
    samples: int
    #: seconds spent encoding (images), reported apart from the storage's time
    encode_seconds: float = 0.0


class SampleFile(abc.ABC):
    """One file opened for reading samples. Used by one thread at a time."""

    num_samples: int = 0

    @abc.abstractmethod
    def read_sample(self, index: int) -> Any:
        """Sample ``index``: its bytes or array, read through the storage."""

    def close(self) -> None:  # noqa: B027 (a file that holds nothing has nothing to release)
        """Release what the file holds (cached row groups, open handles)."""

    def check_index(self, index: int) -> None:
        if not 0 <= index < self.num_samples:
            raise IndexError(f"sample {index} of a file with {self.num_samples} samples")

    def __enter__(self) -> SampleFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Format(abc.ABC):
    """One file format: a streaming writer and a reader, and what it declares about itself
    (``info``: name, extension, compressions, sizing, rules; see registry.FormatInfo)."""

    info: FormatInfo

    @property
    def name(self) -> str:
        """The format's name, as in dataset.format."""
        return self.info.name

    @abc.abstractmethod
    def write(self, writer: StreamWriter, spec: DatasetSpec, split: str, index: int,
              stream: RandomStream) -> FileInfo:
        """Write file ``index`` of ``split`` into ``writer`` (not committed here)."""

    @abc.abstractmethod
    def open(self, storage: Storage, key: str, spec: DatasetSpec) -> SampleFile:
        """The file under ``key`` opened for reading samples."""

    # -- files that go with a data file (indexed_binary's index files) ----------------------
    def companion_keys(self, key: str) -> list[str]:
        """Keys of the small files written with the data file under ``key``."""
        return []

    def write_companions(self, storage: Storage, key: str, spec: DatasetSpec, split: str, index: int, *,
                         fsync: bool = False) -> dict[str, int]:
        """Write the companion files (before the data file, so a data file never appears
        without them), made durable when ``fsync``. Returns {key: size} of each."""
        return {}

    def stream_bytes(self, spec: DatasetSpec, split: str, index: int) -> int:
        """An upper bound of the random bytes ``write`` pulls for one file."""
        return spec.num_samples_per_file * spec.record_bytes(split, index)


# -- writing: a file object over a StreamWriter ------------------------------------------------
class WriterSink(io.RawIOBase):
    """A write-only, non-seekable file object that forwards to a StreamWriter.

    Libraries write many small pieces (headers, page headers); those are gathered in a
    buffer of ``coalesce`` bytes so the storage sees few large writes, while writes of
    ``PASS_THROUGH`` bytes or more go straight through (after what is buffered) without a copy.
    """

    #: a write this large is not worth a copy to gather (the random source hands out 512 KiB)
    PASS_THROUGH = 256 << 10

    def __init__(self, writer: StreamWriter, coalesce: int = 1 * MiB, buffer: bytearray | None = None):
        super().__init__()
        self.writer = writer
        self.position = 0
        # ``buffer``: a gathering buffer the caller reuses from file to file (a fresh one costs
        # its page faults again for every small file)
        self._buf = memoryview(buffer if buffer is not None else bytearray(coalesce))
        self._used = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.position

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        n = view.nbytes
        self.position += n
        capacity = len(self._buf)
        if n >= min(capacity, self.PASS_THROUGH):
            self._drain()
            self.writer.write(view)
            return n
        while view.nbytes:
            take = min(view.nbytes, capacity - self._used)
            self._buf[self._used:self._used + take] = view[:take]
            self._used += take
            view = view[take:]
            if self._used == capacity:
                self._drain()
        return n

    def _drain(self) -> None:
        if self._used:
            # the writer copies or finishes with the bytes before returning: the buffer is reused
            self.writer.write(self._buf[:self._used])
            self._used = 0

    def flush(self) -> None:
        # called by libraries at every step; data reaches the writer at finish()
        pass

    def finish(self) -> None:
        """Hand over what is buffered (the writer is committed by the caller)."""
        self._drain()

    def close(self) -> None:
        # closing the sink (pyarrow closes its sink) must not close or commit the writer
        if not self.closed:
            self._drain()
        super().close()


def copy_random(stream: RandomStream, sink: Any, nbytes: int, chunk: int,
                on_piece: Callable[[memoryview], Any] | None = None) -> None:
    """Move ``nbytes`` of ``stream`` into ``sink.write`` in pieces of up to ``chunk`` bytes,
    without a copy (the pieces are views of the stream's own buffer)."""
    left = nbytes
    while left:
        view = stream.view(min(left, chunk))
        if on_piece is not None:
            on_piece(view)
        sink.write(view)
        left -= view.nbytes


class FixedPieces:
    """Hands what is written on to ``out`` in pieces of exactly ``size`` bytes (the last, at
    ``finish()``, shorter), whatever sizes it arrives in: for compressors whose output depends
    on how input is handed over (zlib level 0 cuts a stored block at every call), so a file's
    bytes do not depend on the write sizes upstream (spec.write_chunk_bytes, text steps).
    Aligned large writes pass through without a copy; ``out`` must be done with a piece when
    it returns (compressors copy their input)."""

    def __init__(self, out: Callable[[memoryview], Any], size: int = MiB):
        self.out = out
        self.size = size
        self._buf = memoryview(bytearray(size))
        self._used = 0

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        n = view.nbytes
        while view.nbytes:
            if not self._used and view.nbytes >= self.size:
                self.out(view[:self.size])
                view = view[self.size:]
                continue
            take = min(view.nbytes, self.size - self._used)
            self._buf[self._used:self._used + take] = view[:take]
            self._used += take
            view = view[take:]
            if self._used == self.size:
                self.out(self._buf)
                self._used = 0
        return n

    def finish(self) -> None:
        if self._used:
            self.out(self._buf[:self._used])
            self._used = 0


#: the zip epoch: a fixed member timestamp keeps a zip's bytes a function of the spec
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def zip_member(name: str, compressed: bool, level: int) -> zipfile.ZipInfo:
    """A zip member entry with fixed metadata (npz members, zipped csv)."""
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    info.external_attr = 0o600 << 16  # what np.savez's members get
    if compressed:
        info._compresslevel = level  # type: ignore[attr-defined]  # a slot in every version (3.13 adds a compress_level property over it)
    return info


# -- reading: a file object over range reads -------------------------------------------------
class SeekableRaw(io.RawIOBase):
    """Position keeping for the seekable file objects handed to h5py and pyarrow."""

    pos = 0

    def _end(self) -> int:
        """The size of the file, for SEEK_END."""
        raise NotImplementedError

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self.pos + offset
        elif whence == io.SEEK_END:
            pos = self._end() + offset
        else:
            raise ValueError(f"whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        self.pos = pos
        return pos


#: a file of at most this many bytes is fetched whole by its first read and served from memory
#: after: one request instead of a directory, a header and a sample read (on any storage a
#: request costs more than moving 64 KiB), and never more bytes than the file has
SMALL_FILE = 64 << 10


class RangeFile(SeekableRaw):
    """A read-only, seekable file object whose reads are storage range reads.

    Small reads (metadata parsing by h5py or pyarrow) are served from a read-ahead block of
    ``readahead`` bytes, which never reaches past the end of the file; large reads go straight
    to one range read of exactly what is asked (``readahead=0``: every read is exact). A file of
    at most SMALL_FILE bytes is read whole, once, by its first read.
    """

    def __init__(self, storage: Storage, key: str, size: int | None = None, readahead: int = 64 << 10):
        super().__init__()
        self.storage = storage
        self.key = key
        self.size = storage.stat(key).size if size is None else size
        self.readahead = readahead
        self._block = b""
        self._block_at = 0

    def _end(self) -> int:
        return self.size

    def readable(self) -> bool:
        return True

    def cached(self, offset: int, length: int) -> memoryview | None:
        """The bytes at ``offset`` when the block read before holds them all, else None."""
        if self._block_at <= offset and offset + length <= self._block_at + len(self._block):
            start = offset - self._block_at
            return memoryview(self._block)[start:start + length]
        return None

    def read_at(self, offset: int, length: int) -> bytes | bytearray | memoryview:
        """Up to ``length`` bytes at ``offset`` (shorter at the end of the file)."""
        length = max(0, min(length, self.size - offset))
        if not length:
            return b""
        held = self.cached(offset, length)
        if held is not None:
            return held
        if self.size <= SMALL_FILE:
            start, n = 0, self.size
        elif length >= self.readahead:
            return self.storage.get_range(self.key, offset, length)
        else:
            # near the end, the block ends at the end: footers and directories are read backwards
            start = max(0, min(offset, self.size - self.readahead))
            n = min(self.readahead, self.size - start)
        self._block = bytes(self.storage.get_range(self.key, start, n))
        self._block_at = start
        return memoryview(self._block)[offset - start:offset - start + length]

    def readinto(self, buffer: Any) -> int:
        out = memoryview(buffer).cast("B")
        data = self.read_at(self.pos, out.nbytes)
        n = len(data)
        out[:n] = data
        self.pos += n
        return n

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self.size - self.pos
        data = self.read_at(self.pos, size)
        self.pos += len(data)
        return bytes(data)

    def readall(self) -> bytes:
        return self.read(-1)
