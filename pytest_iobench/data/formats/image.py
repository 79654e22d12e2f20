"""jpeg and png: one image per file, encoded by Pillow, with the asked pixel dimensions.

The image is record_dims ([height, width] grayscale, or [height, width, channels]) or, without
record_dims, a square grayscale image whose side is the square root of the record size (as
DLIO sizes its images). Pixels come from the random source; Pillow encodes them straight into
the storage's writer. The encode time is measured apart (``FileInfo.encode_seconds``) because
it is CPU work of the generator, not the storage's: random pixels do not compress, so JPEG's
and PNG's encoders work hard for nothing. PNG is written at zlib level 0 (stored deflate
blocks: the same size as level 1 on random pixels, in less than half the time).

Reading returns the file's bytes (one read of the whole file), as a loader hands them to a
decoder.
"""

from __future__ import annotations

import threading
import time
from typing import IO, cast

import numpy as np
from PIL import Image

from ...storage.base import Storage, StreamWriter
from ..checks import Rule
from ..random import RandomStream
from ..spec import DatasetSpec
from .base import FileInfo, Format, SampleFile, WriterSink
from .registry import FormatInfo

#: Pillow's save options per format (the image benchmark saves with the same)
SAVE_OPTIONS = {"jpeg": {"quality": 75}, "png": {"compress_level": 0}}
_PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG"}


_local = threading.local()


def _gathering_buffer() -> bytearray:
    """The writer thread's buffer that gathers what Pillow writes (an image is a few MiB at
    most): one per thread, reused for every image, since a fresh buffer pays its page faults
    again for every image, a cost of the order of a small image's encoding."""
    buffer = getattr(_local, "buffer", None)
    if buffer is None:
        buffer = _local.buffer = bytearray(4 << 20)
    return buffer


def image_shape(spec: DatasetSpec, split: str, index: int) -> tuple[int, ...]:
    shape = spec.sample_shape(split, index)
    return shape if len(shape) == 3 else (*shape, 1)


class ImageFile(SampleFile):
    num_samples = 1

    def __init__(self, storage: Storage, key: str):
        self.storage = storage
        self.key = key

    def read_sample(self, index: int) -> object:
        self.check_index(index)
        return self.storage.get(self.key)


class ImageFormat(Format):
    def __init__(self, info: FormatInfo):
        self.info = info

    def write(self, writer: StreamWriter, spec: DatasetSpec, split: str, index: int,
              stream: RandomStream) -> FileInfo:
        h, w, c = image_shape(spec, split, index)
        pixels = stream.array((h, w, c), np.uint8)
        image = Image.fromarray(pixels[:, :, 0] if c == 1 else pixels)  # L, RGB or RGBA from the shape
        sink = WriterSink(writer, buffer=_gathering_buffer())
        start = time.perf_counter()
        # the sink gathers what Pillow writes (an image is a few MiB at most): this is encoding
        image.save(cast(IO[bytes], sink), format=_PIL_FORMAT[self.name], **SAVE_OPTIONS[self.name])
        encode = time.perf_counter() - start
        sink.finish()
        return FileInfo(sink.position, 1, encode_seconds=encode)

    def open(self, storage: Storage, key: str, spec: DatasetSpec) -> SampleFile:
        return ImageFile(storage, key)

    def stream_bytes(self, spec: DatasetSpec, split: str, index: int) -> int:
        h, w, c = image_shape(spec, split, index)
        return h * w * c


def image_rules(fmt: str, channels: tuple[int, ...]) -> tuple[Rule, ...]:
    """The dataset keys an image format constrains."""
    rules: tuple[Rule, ...] = (
        Rule("record_element_type", lambda v: v.dtype != np.uint8,
             f"{{dtype.name}} is not valid for {fmt}: images hold uint8 pixels"),
        Rule("record_dims",
             lambda v: v.dims and not (len(v.dims) == 2 or (len(v.dims) == 3 and v.dims[2] in channels)),
             f"{{dims_list}} is not an image shape for {fmt}; give [height, width] or [height, width, channels] "
             f"with channels in {list(channels)}"),
        Rule("num_samples_per_file", lambda v: v.num_samples_per_file != 1,
             f"{{num_samples_per_file}} is not valid for {fmt}: an image file holds one image; give 1"),
    )
    if fmt == "jpeg":
        rules += (Rule("record_dims", lambda v: v.dims and max(v.dims[:2]) > 65535,
                       "{dims_list}: JPEG images are at most 65535 pixels wide and high"),)
    return rules


def _info(name: str, channels: tuple[int, ...]) -> FormatInfo:
    # 512 x 512 pixels; one image per file, encoded at tens of MB/s
    return FormatInfo(name, sample_bytes=256 << 10, single_sample=True, slow=True, image=True,
                      rules=image_rules(name, channels))


def formats() -> dict[str, Format]:
    return {"jpeg": ImageFormat(_info("jpeg", (1, 3))), "png": ImageFormat(_info("png", (1, 3, 4)))}
