"""The data formats by name, and what each one declares about itself (``FormatInfo``).

Adding a format is one module in this package, whose Format carries its ``FormatInfo``, plus
one line in ``MODULES`` (docs/data.md, "Adding a data format"). A format's module is imported
the first time the format is used (a spec of it validated, a file of it written or read), so
the names here cost no import of numpy, pyarrow, h5py or Pillow.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..checks import Rule

#: format name -> module that defines it (relative to this package, or a full module path)
MODULES: dict[str, str] = {
    "npz": ".npz",
    "npy": ".npy",
    "hdf5": ".hdf5",
    "parquet": ".parquet",
    "csv": ".csv",
    "jpeg": ".image",
    "png": ".image",
    "tfrecord": ".tfrecord",
    "indexed_binary": ".indexed_binary",
    "mmap_indexed_binary": ".indexed_binary",  # DLIO's name: writes indexed_binary files
}

#: the formats that come with the package (dataset.format and --iobench-formats)
FORMATS: tuple[str, ...] = tuple(MODULES)

_extra: dict[str, str] = {}
_loaded: dict[str, Any] = {}


@dataclass(frozen=True)
class FormatInfo:
    """What the rest of the package knows of a format, declared by the format itself."""

    #: the format's name, as in dataset.format
    name: str
    #: bytes of one sample in specs of a given total size (sizing.py: the generation suite and
    #: the benchmarks), shaped like the workloads that use the format
    sample_bytes: int
    #: the file name extension (DLIO names files after the format); empty: the name
    extension: str = ""
    #: the compressions the format writes (dataset.compression), and the suffix each adds to
    #: the file name (csv's .gz)
    compressions: tuple[str, ...] = ("none",)
    suffixes: Mapping[str, str] = field(default_factory=dict)
    #: a file holds one sample (images)
    single_sample: bool = False
    #: encoding, not the storage, bounds how fast it is generated (text, images): the
    #: generation suite generates an eighth of the size asked
    slow: bool = False
    #: files are images (square when no record_dims; the time spent encoding is reported)
    image: bool = False
    #: the format's rules between dataset keys (schema.py), checked after the schema's own
    rules: tuple[Rule, ...] = ()
    #: sets values the format derives from others before its rules (schema.Values, and the
    #: list of (key, why) notes of values it replaced)
    derive: Callable[[Any, list[tuple[str, str]]], None] | None = None
    #: what a given dataset.format key does not emulate for this format
    note: str = ""
    #: folders DLIO lists or writes for this format besides train/ and valid/
    folders: tuple[str, ...] = ()

    def file_extension(self, compression: str) -> str:
        return (self.extension or self.name) + self.suffixes.get(compression, "")


class FormatsWith:
    """The formats whose FormatInfo has ``flag`` set (``slow``, ``image``...), as a container:
    ``name in it`` loads only that format's module, so a suite can name them at import."""

    def __init__(self, flag: str):
        self.flag = flag

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(getattr(info(name), self.flag))


def names() -> tuple[str, ...]:
    """Every format known: the package's, then those registered."""
    return FORMATS + tuple(name for name in _extra if name not in MODULES)


def register(name: str, module: str) -> None:
    """Add a format defined in ``module`` (a full module path) without editing MODULES."""
    _extra[name] = module
    _loaded.pop(name, None)


def unregister(name: str) -> None:
    _extra.pop(name, None)
    _loaded.pop(name, None)


def load(name: str) -> Any:
    """The Format object called ``name``, its module imported on first use; ValueError names
    the valid formats."""
    if name not in _loaded:
        path = _extra.get(name) or MODULES.get(name)
        if path is None:
            raise ValueError(f"unknown format {name!r}; valid: {', '.join(names())}")
        module = importlib.import_module(path, __package__)
        _loaded[name] = module.formats()[name] if hasattr(module, "formats") else module.FORMAT
    return _loaded[name]


def info(name: str) -> FormatInfo:
    """What format ``name`` declares (its module imported on first use)."""
    found = load(name).info
    if not isinstance(found, FormatInfo):
        raise TypeError(f"format {name!r}: its info is not a FormatInfo")
    return found


__all__ = ["FORMATS", "MODULES", "FormatInfo", "FormatsWith", "info", "load", "names", "register", "unregister"]
