"""tfrecord: TFRecord framing around tf.train.Example records, with no TensorFlow.

A record on disk is
    uint64 length (little endian) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)
and each record's data is a serialized tf.train.Example with two features, as DLIO writes:
``image`` (bytes_list: the sample's bytes) and ``size`` (int64_list: the sample's size).
The Example is small enough to encode by hand: everything before the image bytes is a
prefix computed once per file, and the image bytes stream straight from the random source
into the writer while the CRC is updated over them.

Index files: as DLIO's generator does (it runs DALI's tfrecord2idx after each file), every
file gets ``index/{train,valid}/<file name>.idx``, a text line ``<offset> <framed size>`` per
record, for DALI's ``fn.readers.tfrecord(index_path=...)``. It is written before the data file.

Reading: all records of one of our files have the same length, so record i is at
i * framed_size; each read checks the length it finds and both CRCs. Files whose records
differ in length (other writers) are indexed by walking the 12-byte headers.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import Any

import crc32c as _crc32c

from ...storage.base import Storage, StreamWriter
from ..random import RandomStream
from ..spec import DatasetSpec
from .base import FileInfo, Format, RangeFile, SampleFile, WriterSink
from .registry import FormatInfo

_MASK_DELTA = 0xA282EAD8


def masked_crc(crc: int) -> int:
    """TFRecord's masking of a CRC32C (so that CRCs of CRCs stay well distributed)."""
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def crc32c(data: Any, value: int = 0) -> int:
    return _crc32c.crc32c(data, value)


# -- protobuf wire format, the few pieces an Example needs ---------------------------------------
def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload_len: int) -> bytes:
    """Tag (length-delimited) and length of a field whose payload follows."""
    return varint(number << 3 | 2) + varint(payload_len)


def example_parts(image_size: int, size_value: int) -> tuple[bytes, bytes]:
    """(prefix, suffix) of a serialized Example whose ``image`` feature holds ``image_size``
    bytes that go between them, and whose ``size`` feature is ``size_value``."""
    # Feature{bytes_list: BytesList{value: [image]}}
    bytes_list_len = len(_field(1, image_size)) + image_size
    feature_image_len = len(_field(1, bytes_list_len)) + bytes_list_len
    key_image = b"image"
    entry_image_len = (len(_field(1, len(key_image))) + len(key_image) + len(_field(2, feature_image_len))
                       + feature_image_len)
    # Feature{int64_list: Int64List{value: [size]}} (packed)
    packed = varint(size_value)
    int64_list = _field(1, len(packed)) + packed
    feature_size = _field(3, len(int64_list)) + int64_list
    key_size = b"size"
    entry_size = _field(1, len(key_size)) + key_size + _field(2, len(feature_size)) + feature_size
    # Features{feature: map<string, Feature>}: one length-delimited entry per map item
    features_len = len(_field(1, entry_image_len)) + entry_image_len + len(_field(1, len(entry_size))) + len(entry_size)
    prefix = (_field(1, features_len)                       # Example.features
              + _field(1, entry_image_len)                  # Features.feature entry
              + _field(1, len(key_image)) + key_image       # entry.key
              + _field(2, feature_image_len)                # entry.value (Feature)
              + _field(1, bytes_list_len)                   # Feature.bytes_list
              + _field(1, image_size))                      # BytesList.value
    suffix = _field(1, len(entry_size)) + entry_size
    return prefix, suffix


def parse_fields(data: Any, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int, Any]]:
    """Yield (field number, wire type, value) of a protobuf message; length-delimited values
    are (offset, length) into ``data``."""
    view = memoryview(data)
    pos, end = start, len(view) if end is None else end
    while pos < end:
        tag, pos = _read_varint(view, pos)
        number, wire = tag >> 3, tag & 7
        value: Any
        if wire == 0:
            value, pos = _read_varint(view, pos)
        elif wire == 2:
            length, pos = _read_varint(view, pos)
            value = (pos, length)
            pos += length
        elif wire == 1:
            value, pos = bytes(view[pos:pos + 8]), pos + 8
        elif wire == 5:
            value, pos = bytes(view[pos:pos + 4]), pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if pos > end:
            raise ValueError("protobuf field runs past the end of its message")
        yield number, wire, value


def _read_varint(view: Any, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(view):
            raise ValueError("truncated varint")
        byte = view[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def example_features(data: Any) -> dict[str, tuple[str, Any]]:
    """{name: (kind, value)} of a serialized Example: bytes_list -> list of memoryviews,
    int64_list -> list of ints, float_list -> list of floats."""
    view = memoryview(data)
    out: dict[str, tuple[str, Any]] = {}
    for number, _, (f_at, f_len) in _only(parse_fields(view), 1, "Example.features"):
        for _, _, (e_at, e_len) in _only(parse_fields(view, f_at, f_at + f_len), 1, "Features.feature"):
            key = value = None
            for number, wire, item in parse_fields(view, e_at, e_at + e_len):
                if number == 1 and wire == 2:
                    key = bytes(view[item[0]:item[0] + item[1]]).decode()
                elif number == 2 and wire == 2:
                    value = _feature(view, *item)
            if key is None or value is None:
                raise ValueError("Example feature entry without key or value")
            out[key] = value
    return out


def _only(fields: Iterable[tuple[int, int, Any]], number: int, what: str) -> Iterator[tuple[int, int, Any]]:
    for item in fields:
        if item[0] != number or item[1] != 2:
            raise ValueError(f"{what}: unexpected field {item[0]}")
        yield item


def _feature(view: Any, at: int, length: int) -> tuple[str, list[Any]]:
    for number, _wire, (l_at, l_len) in parse_fields(view, at, at + length):
        values: list[Any] = []
        for _, vwire, item in parse_fields(view, l_at, l_at + l_len):
            if number == 1:
                values.append(view[item[0]:item[0] + item[1]])
            elif number == 3 and vwire == 2:  # packed int64
                pos, stop = item[0], item[0] + item[1]
                while pos < stop:
                    v, pos = _read_varint(view, pos)
                    values.append(v - (1 << 64) if v >> 63 else v)
            elif number == 3:
                values.append(item - (1 << 64) if item >> 63 else item)
            elif number == 2 and vwire == 2:
                values.extend(struct.unpack(f"<{item[1] // 4}f", view[item[0]:item[0] + item[1]]))
            else:
                values.append(struct.unpack("<f", item)[0])
        kind = {1: "bytes_list", 2: "float_list", 3: "int64_list"}.get(number)
        if kind is None:
            raise ValueError(f"Feature: unexpected field {number}")
        return kind, values
    return "empty", []


class TFRecordError(ValueError):
    """A TFRecord file whose framing or checksums are wrong."""


def frame_header(length: int) -> bytes:
    head = struct.pack("<Q", length)
    return head + struct.pack("<I", masked_crc(crc32c(head)))


# -- the format ------------------------------------------------------------------------------
class TFRecordFile(SampleFile):
    def __init__(self, storage: Storage, key: str, spec: DatasetSpec):
        self.storage = storage
        self.key = key
        # exact reads (no read-ahead); a small file is one read
        self.rf = RangeFile(storage, key, readahead=0)
        self.size = self.rf.size
        self._offsets: list[int] | None = None
        self._record = 0
        if self.size:
            self._record = self._header(0)
            framed = 16 + self._record
            if self.size % framed == 0:
                self.num_samples = self.size // framed
            else:
                self._build_index()
        else:
            self.num_samples = 0

    def _header(self, offset: int) -> int:
        head = bytes(self.rf.read_at(offset, 12))
        if len(head) != 12:
            raise TFRecordError(f"{self.key}: record header at {offset} is cut short")
        (length,), (crc,) = struct.unpack("<Q", head[:8]), struct.unpack("<I", head[8:])
        if masked_crc(crc32c(head[:8])) != crc:
            raise TFRecordError(f"{self.key}: length CRC of the record at {offset} does not match")
        return int(length)

    def _build_index(self) -> None:
        offsets, pos = [], 0
        while pos < self.size:
            offsets.append(pos)
            pos += 16 + self._header(pos)
        if pos != self.size:
            raise TFRecordError(f"{self.key}: the last record runs past the end of the file")
        self._offsets = offsets
        self.num_samples = len(offsets)

    def read_record(self, index: int) -> memoryview:
        """The data of record ``index`` (a serialized Example), both CRCs checked."""
        self.check_index(index)
        if self._offsets is None:
            offset, length = index * (16 + self._record), self._record
        else:
            offset = self._offsets[index]
            end = self._offsets[index + 1] if index + 1 < len(self._offsets) else self.size
            length = end - offset - 16
        raw = memoryview(self.rf.read_at(offset, length + 16))
        if len(raw) != length + 16:
            raise TFRecordError(f"{self.key}: record {index} is cut short")
        (found,) = struct.unpack("<Q", raw[:8])
        if found != length:
            if self._offsets is None:  # not uniform after all: index the file and retry
                self._build_index()
                return self.read_record(index)
            raise TFRecordError(f"{self.key}: record {index} has length {found}, expected {length}")
        (len_crc,) = struct.unpack("<I", raw[8:12])
        if masked_crc(crc32c(raw[:8])) != len_crc:
            raise TFRecordError(f"{self.key}: length CRC of record {index} does not match")
        data = raw[12:12 + length]
        (data_crc,) = struct.unpack("<I", raw[12 + length:])
        if masked_crc(crc32c(data)) != data_crc:
            raise TFRecordError(f"{self.key}: data CRC of record {index} does not match")
        return data

    def read_sample(self, index: int) -> Any:
        features = example_features(self.read_record(index))
        kind, values = features.get("image", ("", []))
        if kind != "bytes_list" or len(values) != 1:
            raise TFRecordError(f"{self.key}: record {index} has no 'image' bytes feature")
        return values[0]


def index_key(key: str) -> str:
    """Where DLIO puts the DALI index of the data file ``key`` (train/... or valid/...)."""
    folder, name = key.split("/", 1)[0], key.rsplit("/", 1)[-1]
    return f"index/{folder}/{name}.idx"


#: index lines written per call
_INDEX_LINES = 1 << 16


class TFRecord(Format):
    # resnet50's images of about 112 KiB; DLIO lists (and writes) the index folders too
    info = FormatInfo("tfrecord", sample_bytes=112 << 10, folders=("index/train/", "index/valid/"))

    def companion_keys(self, key: str) -> list[str]:
        return [index_key(key)]

    def write_companions(self, storage: Storage, key: str, spec: DatasetSpec, split: str, index: int, *,
                         fsync: bool = False) -> dict[str, int]:
        size = spec.record_bytes(split, index)
        prefix, suffix = example_parts(size, size)
        framed = 16 + len(prefix) + size + len(suffix)
        n = spec.num_samples_per_file
        with storage.open_writer(index_key(key), fsync=fsync) as writer:
            for lo in range(0, n, _INDEX_LINES):
                writer.write("".join(f"{i * framed} {framed}\n" for i in range(lo, min(n, lo + _INDEX_LINES))).encode())
        return {index_key(key): writer.bytes_written}

    def write(self, writer: StreamWriter, spec: DatasetSpec, split: str, index: int,
              stream: RandomStream) -> FileInfo:
        size = spec.record_bytes(split, index)
        prefix, suffix = example_parts(size, size)
        record_len = len(prefix) + size + len(suffix)
        header = frame_header(record_len)
        prefix_crc = crc32c(prefix)
        # records and their framing are gathered into writes of 1 MiB (records of 1 MiB or more
        # go as they are): a copy costs less than two write calls per record (a 112 KiB record
        # and a 20-byte frame) into the page cache
        sink = WriterSink(writer)
        n = spec.num_samples_per_file
        head = header + prefix  # the same before every record's bytes
        for _ in range(n):
            sink.write(head)
            crc, left = prefix_crc, size
            while left:
                piece = stream.view(min(left, spec.write_chunk_bytes))
                crc = crc32c(piece, crc)
                sink.write(piece)
                left -= piece.nbytes
            crc = crc32c(suffix, crc)
            sink.write(suffix + struct.pack("<I", masked_crc(crc)))
        sink.finish()
        return FileInfo(n * (16 + record_len), n)

    def open(self, storage: Storage, key: str, spec: DatasetSpec) -> SampleFile:
        return TFRecordFile(storage, key, spec)


FORMAT = TFRecord()
