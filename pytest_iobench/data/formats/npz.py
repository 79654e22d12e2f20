"""npz: a zip archive holding ``x.npy`` (the samples, laid out as in npy.py) and ``y.npy``
(the labels: zeros, as DLIO writes them), read with np.load.

The archive streams through zipfile onto a non-seekable sink, so zipfile writes each member's
sizes and CRC in a data descriptor after its data instead of seeking back. Timestamps are
fixed so the bytes depend on the spec only. ``compression: zip`` deflates the members
(np.savez_compressed), fed in fixed pieces (deflate level 0 cuts a stored block at every
write: the bytes would follow generation_buffer_size); the default stores them, which lets a
reader fetch sample i with one range read once it has parsed the zip directory and the npy
header.
"""

from __future__ import annotations

import io
import struct
import zipfile
from typing import Any, cast

import numpy as np
from zlib_ng.zlib_ng import crc32

from ...storage.base import Storage, StreamWriter
from ..random import RandomStream
from ..spec import DatasetSpec
from .base import FileInfo, FixedPieces, Format, RangeFile, SampleFile, WriterSink, zip_member
from .npy import HEADER_READ, SampleArray, npy_header, write_samples_array
from .registry import FormatInfo

_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")


class NpzFile(SampleFile):
    def __init__(self, storage: Storage, key: str):
        self.storage = storage
        self.key = key
        self.rf = RangeFile(storage, key, readahead=HEADER_READ)
        with zipfile.ZipFile(self.rf) as zf:
            info = zf.getinfo("x.npy")
        self.array = None
        self._whole: np.ndarray | None = None
        if info.compress_type == zipfile.ZIP_STORED:
            local = bytes(self.rf.read_at(info.header_offset, _LOCAL_HEADER.size))
            fields = _LOCAL_HEADER.unpack(local)
            start = info.header_offset + _LOCAL_HEADER.size + fields[9] + fields[10]
            self.array = SampleArray(self.rf, start, self._load)
            self.num_samples = self.array.num_samples
        else:
            self.num_samples = self._load().shape[-1]

    def _load(self) -> np.ndarray:
        """x read whole (deflated members cannot be read in part)."""
        whole = self._whole
        if whole is None:
            # through rf: a small file it holds already is not fetched again
            with np.load(io.BytesIO(self.rf.read_at(0, self.rf.size))) as data:
                whole = self._whole = data["x"]
        return whole

    def read_sample(self, index: int) -> np.ndarray:
        self.check_index(index)
        if self.array is not None:
            return self.array.read(index)
        return self._load()[..., index]

    def close(self) -> None:
        self._whole = None
        if self.array is not None:
            self.array._whole = None


class _StoredMember:
    """Writes the data of a stored zip member opened by zipfile (``zf.open(..., "w")``) straight
    to the archive with zlib-ng's CRC-32: zipfile's own, zlib's, costs as much CPU as the page
    cache's copy of the same bytes, zlib-ng's a fraction of it (figures in docs/data.md). The member's size and
    CRC are kept where zipfile's writer keeps them, so zipfile writes the data descriptor and
    the directory as it always does: the same bytes. Where that writer is not as expected (a
    compressor, another Python's internals), writes go through it unchanged."""

    def __init__(self, member: Any) -> None:
        self.member = member
        fast = member._compressor is None if hasattr(member, "_compressor") else False
        self._fast = fast and all(hasattr(member, name) for name in ("_crc", "_file_size", "_fileobj"))

    def write(self, data: Any) -> int:
        if not self._fast:
            written: int = self.member.write(data)
            return written
        view = memoryview(data).cast("B")
        member = self.member
        member._crc = crc32(view, member._crc)
        member._file_size += view.nbytes
        member._fileobj.write(view)
        return view.nbytes


class Npz(Format):
    info = FormatInfo("npz", sample_bytes=1 << 20, compressions=("none", "zip"))  # unet3d-like arrays

    def write(self, writer: StreamWriter, spec: DatasetSpec, split: str, index: int,
              stream: RandomStream) -> FileInfo:
        compressed = spec.compression == "zip"
        level = spec.compression_level
        sink = WriterSink(writer)
        n = spec.num_samples_per_file
        shape = spec.sample_shape(split, index)
        x_bytes = n * int(np.prod(shape)) * spec.dtype.itemsize
        with zipfile.ZipFile(sink, mode="w", allowZip64=True) as zf:
            big = x_bytes + 4096 > zipfile.ZIP64_LIMIT
            with zf.open(zip_member("x.npy", compressed, level), "w", force_zip64=big) as member:
                pieces = FixedPieces(member.write) if compressed else None
                write_samples_array(pieces or _StoredMember(member), spec, split, index, stream)
                if pieces is not None:
                    pieces.finish()
            labels = np.zeros(n, dtype=np.int64)
            big = labels.nbytes > zipfile.ZIP64_LIMIT
            with zf.open(zip_member("y.npy", compressed, level), "w", force_zip64=big) as member:
                member.write(npy_header(labels.dtype, labels.shape, fortran_order=False))
                member.write(cast(bytes, labels))  # an array is a buffer; the stubs do not say so
        sink.finish()
        return FileInfo(sink.position, n)

    def open(self, storage: Storage, key: str, spec: DatasetSpec) -> SampleFile:
        return NpzFile(storage, key)


FORMAT = Npz()
