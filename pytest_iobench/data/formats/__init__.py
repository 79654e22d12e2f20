"""One module per file format; ``get_format(name)`` gives its writer and reader.

    fmt = get_format("parquet")
    with storage.open_writer(key) as w:
        info = fmt.write(w, spec, "train", 0, stream)
    with fmt.open(storage, key, spec) as f:
        f.read_sample(0)

The formats are listed in ``registry.py``; a format's module is imported on first use, so a
format's library (h5py, pyarrow, Pillow) is loaded only when that format is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .registry import FORMATS, FormatInfo, FormatsWith, info, register, unregister
from .registry import load as _load

if TYPE_CHECKING:
    from .base import Format


def get_format(name: str) -> Format:
    """The format called ``name`` (as in dataset.format); ValueError names the valid ones."""
    format: Format = _load(name)
    return format


__all__ = ["FORMATS", "FormatInfo", "FormatsWith", "get_format", "info", "register", "unregister"]
