"""One module per file format; ``get_format(name)`` gives its writer and reader.

    fmt = get_format("parquet")
    with storage.open_writer(key) as w:
        info = fmt.write(w, spec, "train", 0, stream)
    with fmt.open(storage, key, spec) as f:
        f.read_sample(0)

Modules are imported on first use, so a format's library (h5py, pyarrow, Pillow) is loaded
only when that format is used.
"""

from __future__ import annotations

import importlib

from ..spec import FORMATS
from .base import FileInfo, Format, RangeFile, SampleFile, WriterSink

#: format name -> module that defines FORMAT
_MODULES = {
    "npy": "npy",
    "npz": "npz",
    "hdf5": "hdf5",
    "parquet": "parquet",
    "csv": "csv",
    "jpeg": "image",
    "png": "image",
    "tfrecord": "tfrecord",
    "indexed_binary": "indexed_binary",
    "mmap_indexed_binary": "indexed_binary",
}

_loaded: dict[str, Format] = {}


def get_format(name: str) -> Format:
    """The format called ``name`` (as in dataset.format); ValueError names the valid ones."""
    if name not in _loaded:
        module = _MODULES.get(name)
        if module is None:
            raise ValueError(f"unknown format {name!r}; valid: {', '.join(FORMATS)}")
        mod = importlib.import_module(f"{__name__}.{module}")
        _loaded[name] = mod.formats()[name] if hasattr(mod, "formats") else mod.FORMAT
    return _loaded[name]


__all__ = ["FileInfo", "Format", "RangeFile", "SampleFile", "WriterSink", "get_format"]
