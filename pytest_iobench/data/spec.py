"""The dataset spec: DLIO's ``dataset`` section, validated, plus DLIO's file naming and sizes.

    spec = DatasetSpec.from_mapping({"format": "npz", "num_files_train": 8}, where="dataset")
    spec.file_keys("train")      # ['train/img_0_of_8.npz', ...]
    spec.record_sizes("train")   # bytes of one sample, per file

Keys are named as DLIO names them, with DLIO's defaults, so a DLIO workload file loads
unchanged. ``from_mapping`` checks everything before anything is written (the keys and the
rules between them are declared in ``schema.py``, a format's own rules in its module) and
reports every problem at once, one line each, naming the key, what is wrong and what is
valid. Keys DLIO accepts that change nothing here are reported in ``not_emulated`` (never
silently ignored).

Sizes: a file's samples all have the same size (as in DLIO), drawn once per file from a
normal distribution around ``record_length_bytes`` with ``record_length_bytes_stdev``,
seeded by ``seed``: the same spec always gives the same sizes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from . import schema
from .formats.registry import FORMATS, FormatInfo, info
from .schema import (
    ALIASES,
    COMPRESSIONS,
    DEFAULT_SEED,
    LEVELS,
    NOT_EMULATED,
    PARQUET_DTYPES,
    PARQUET_LAYOUTS,
    WRITE_CHUNK,
    DatasetSpecError,
    HDF5Options,
    ParquetColumn,
    ParquetOptions,
)

#: bumped when a writer changes the bytes it produces: old datasets are then not reused
DATA_VERSION = 4

#: rows of one parquet row group are kept under this many bytes while generating (a writer holds
#: one or two: formats/parquet.py, FILL_AHEAD)
MAX_ROW_GROUP_BYTES = 16 << 20

SPLITS = {"train": "train", "eval": "valid", "valid": "valid"}
_SPLIT_CODE = {"train": 1, "valid": 2}

#: DatasetSpec fields that are not dataset keys
_INTERNAL = ("given", "replaced", "write_chunk_bytes", "aliased")
#: dataset keys that apply to one format only (DatasetSpec.not_emulated says so for the others)
_FORMAT_KEYS = {"enable_chunking": "hdf5", "chunk_size": "hdf5", "hdf5": "hdf5", "parquet": "parquet"}


@dataclass(frozen=True)
class DatasetSpec:
    """What to generate: DLIO's ``dataset`` keys and defaults, plus ``seed``."""

    format: str = "tfrecord"
    data_folder: str = "./data/"
    num_files_train: int = 8
    num_files_eval: int = 0
    num_samples_per_file: int = 1
    record_length_bytes: int = 65536
    record_length_bytes_stdev: int = 0
    record_length_bytes_resize: int = 0
    record_dims: tuple[int, ...] = ()
    record_element_type: str = "uint8"
    num_subfolders_train: int = 0
    num_subfolders_eval: int = 0
    file_prefix: str = "img"
    compression: str = "none"
    compression_level: int = 4
    enable_chunking: bool = False
    chunk_size: int = 0
    keep_files: bool = True
    #: the MLCommons fork's: the files were generated as N files (names ``_of_N``), of which the
    #: first num_files_train are read; 0: num_files_train
    num_files_generated: int = 0
    hdf5: HDF5Options = field(default_factory=HDF5Options)
    parquet: ParquetOptions = field(default_factory=ParquetOptions)
    seed: int = DEFAULT_SEED
    #: the size of the pieces handed to the storage (DLIO's generation_buffer_size caps it)
    write_chunk_bytes: int = WRITE_CHUNK
    #: keys given explicitly (for notes); not part of the spec's identity
    given: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    #: keys whose given value another key replaced (DLIO's priorities), with why
    replaced: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)
    #: (name given, name it was read as) of the older names used (ALIASES)
    aliased: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)

    # -- the accepted keys -----------------------------------------------------------------
    @classmethod
    def known_keys(cls) -> list[str]:
        """Every key ``from_mapping`` accepts: top-level ones, then ``hdf5.*`` and ``parquet.*``."""
        top = [f.name for f in fields(cls) if f.name not in _INTERNAL]
        return schema.known_keys(top)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The default of every top-level key (sub-sections as mappings), as in a workload file."""
        out = DatasetSpec().to_dict()
        out.update({k: v for k, v in schema.EXTRA_KEYS.items() if v is not None})
        out["record_element_bytes"] = 1
        out["data_gen_method"] = "dgen"
        out["parquet"].update(schema.section_defaults("parquet"))
        out["arrow"] = schema.section_defaults("arrow")
        return out

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None, where: str = "dataset") -> DatasetSpec:
        """Validate a ``dataset`` mapping (DLIO keys) into a spec; DatasetSpecError lists every
        problem, one line each, starting with ``where.key``."""
        defaults = {f.name: getattr(_DEFAULT, f.name) for f in fields(cls)
                    if f.name not in ("given", "replaced", "aliased")}
        checked = schema.validate(mapping or {}, where, defaults)
        return DatasetSpec(**checked.fields, given=frozenset(checked.given), replaced=tuple(checked.replaced),
                           aliased=tuple(checked.aliased))

    # -- identity --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, DLIO key names; ``from_mapping(to_dict())`` gives the same spec."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in _INTERNAL:
                continue
            value = getattr(self, f.name)
            if f.name == "hdf5":
                value = {"chunk_dims": list(value.chunk_dims), "num_dset_per_record": value.num_dset_per_record,
                         "max_shape": list(value.max_shape)}
            elif f.name == "parquet":
                value = {"columns": [{"name": c.name, "dtype": c.dtype, "size": c.size} for c in value.columns],
                         "row_group_size": value.row_group_size, "compression": value.compression,
                         "compression_level": value.compression_level,
                         "generation_batch_size": value.generation_batch_size, "layout": value.layout}
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    def content_dict(self) -> dict[str, Any]:
        """What decides the bytes of the files (not where they go, nor whether they are kept)."""
        data = self.to_dict()
        for key in ("data_folder", "keep_files", "record_length_bytes_resize"):
            data.pop(key)
        if not self.num_files_generated:
            data.pop("num_files_generated")  # 0 names files as before: their digests stay
        data["data_version"] = DATA_VERSION
        return data

    def digest(self) -> str:
        """A short hash of ``content_dict``: same digest, same files."""
        text = json.dumps(self.content_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def with_changes(self, **changes: Any) -> DatasetSpec:
        """A copy with some keys changed, validated again."""
        data = self.to_dict()
        data.update(changes)
        return DatasetSpec.from_mapping(data)

    # -- notes for the workload report --------------------------------------------------------
    @property
    def not_emulated(self) -> dict[str, str]:
        """Keys given that do not change what is generated or read here, and why."""
        named = {canonical: alias for alias, canonical in self.aliased}  # reported as the name given
        out = {named.get(key, key): why for key, why in NOT_EMULATED.items() if key in self.given}
        out.update(self.replaced)
        for key, owner in _FORMAT_KEYS.items():
            if self.format != owner and key in self.given:
                out[key] = f"applies to {owner} only"
        if self.format == "hdf5" and self.hdf5.chunk_dims:
            for key in ("enable_chunking", "chunk_size"):
                if key in self.given:
                    out[key] = f"hdf5.chunk_dims {list(self.hdf5.chunk_dims)} decide the chunks"
        elif self.format == "hdf5" and "chunk_size" in self.given and not self.enable_chunking:
            out["chunk_size"] = "applies with enable_chunking: true only"
        if "compression_level" in self.given and LEVELS.get(self.effective_compression) is None:
            out["compression_level"] = f"the {self.effective_compression} compression takes no level"
        if self.format_info.note:
            out["format"] = self.format_info.note
        return out

    @property
    def notes(self) -> list[str]:
        out = []
        for alias, canonical in self.aliased:
            if alias == "record_length_std":
                out.append(f"dataset.record_length_std is read as {canonical}: no DLIO read this name (DLIO's "
                           "resnet50_v100.yaml gives it, and DLIO runs that file without a spread)")
            else:
                out.append(f"dataset.{alias} is older DLIO's name of {canonical}, read as it")
        if self.num_files_generated:
            out.append(f"dataset.num_files_generated: the first {self.num_files_train} of "
                       f"{self.num_files_generated} files are read (names _of_{self.num_files_generated})")
        cols = self.parquet.columns
        if (self.format == "parquet" and cols and all(c.size is not None for c in cols)
                and "record_length_bytes" not in self.given):
            out.append(f"dataset.parquet.columns: a row is {self.record_length_bytes} bytes, the columns' sizes "
                       "(a column's dtype defaults to float32 and its size to 1 element, as in DLIO)")
        rows = self.row_group_rows
        if self.format == "parquet" and rows < min(self.parquet.row_group_size, self.num_samples_per_file):
            out.append(f"dataset.parquet.row_group_size: {self.parquet.row_group_size} rows of "
                       f"{self.record_length_bytes} bytes are written as row groups of {rows} rows "
                       f"(at most {MAX_ROW_GROUP_BYTES >> 20} MiB each) to keep generation memory bounded")
        return out

    # -- what the files hold ------------------------------------------------------------------
    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.record_element_type)

    @property
    def effective_compression(self) -> str:
        if self.format == "parquet" and self.parquet.compression is not None:
            return self.parquet.compression
        return self.compression

    @property
    def effective_compression_level(self) -> int | None:
        if self.format == "parquet" and self.parquet.compression_level is not None:
            return self.parquet.compression_level
        return self.compression_level if LEVELS.get(self.effective_compression) is not None else None

    @property
    def format_info(self) -> FormatInfo:
        """What the spec's format declares (its module imported on first use)."""
        return info(self.format)

    @property
    def extension(self) -> str:
        """The file name extension: the format's, as DLIO names files (csv adds .gz, ...)."""
        return self.format_info.file_extension(self.compression)

    @property
    def is_image(self) -> bool:
        return self.format_info.image

    @property
    def row_group_rows(self) -> int:
        """Rows per parquet row group as written (row_group_size, capped to bound memory)."""
        biggest = max(1, int(self.record_sizes_max()))
        fit = max(1, MAX_ROW_GROUP_BYTES // biggest)
        return max(1, min(self.parquet.row_group_size, fit, self.num_samples_per_file))

    def num_files(self, split: str) -> int:
        return self.num_files_train if _folder(split) == "train" else self.num_files_eval

    def num_subfolders(self, split: str) -> int:
        return self.num_subfolders_train if _folder(split) == "train" else self.num_subfolders_eval

    def file_key(self, split: str, index: int) -> str:
        """DLIO's name of file ``index``: ``train/{prefix}_{i}_of_{N}.{ext}``, with ``i``
        zero-padded to the digits of N as DLIO pads it, under subfolder ``i % S`` (also padded)
        when S > 1. ``split`` is "train" or "eval" (files in ``valid/``)."""
        n = self.num_files(split)
        if not 0 <= index < n:
            valid = f"0 to {n - 1}" if n else "none, it has no files"
            raise IndexError(f"file {index} of split {split!r} does not exist (valid: {valid})")
        return self._name(split, index)

    def _name(self, split: str, index: int) -> str:
        folder = _folder(split)
        n = (self.num_files_generated or self.num_files_train) if folder == "train" else self.num_files_eval
        sub = self.num_subfolders(split)
        name = f"{self.file_prefix}_{str(index).zfill(len(str(n)))}_of_{n}.{self.extension}"
        return f"{folder}/{str(index % sub).zfill(len(str(sub)))}/{name}" if sub > 1 else f"{folder}/{name}"

    def unread_keys(self) -> list[str]:
        """The names of the generated files past the first num_files_train (num_files_generated)."""
        return [self._name("train", i) for i in range(self.num_files_train, self.num_files_generated)]

    def file_keys(self, split: str = "train") -> list[str]:
        """Every file's name in ``split``, in order (see ``file_key``)."""
        return [self.file_key(split, i) for i in range(self.num_files(split))]

    def all_files(self) -> list[tuple[str, int, str]]:
        """(split, index, key) of every file: train files, then eval files."""
        out: list[tuple[str, int, str]] = []
        for split in ("train", "eval"):
            out.extend((split, i, key) for i, key in enumerate(self.file_keys(split)))
        return out

    def record_sizes(self, split: str = "train") -> np.ndarray:
        """Bytes of one sample (before any encoding), for each file of ``split``."""
        return _record_sizes(self, _folder(split))

    def record_sizes_max(self) -> int:
        sizes = [int(_record_sizes(self, f).max()) for f in ("train", "valid") if self.num_files(f)]
        return max(sizes) if sizes else self.record_length_bytes

    def record_bytes(self, split: str, index: int) -> int:
        return int(self.record_sizes(split)[index])

    def sample_shape(self, split: str, index: int) -> tuple[int, ...]:
        """Shape of one sample of file ``index``: record_dims when given; otherwise a square
        (side, side) image for jpeg/png, and a flat (elements,) array for the other formats."""
        if self.record_dims:
            return tuple(self.record_dims)
        size = self.record_bytes(split, index)
        if self.is_image:
            side = max(1, math.isqrt(size))
            return (side, side)
        return (size // self.dtype.itemsize,)

    def parquet_columns(self, record_bytes: int) -> list[tuple[str, str, int]]:
        """(name, dtype, elements) of each parquet column for records of ``record_bytes``."""
        columns = self.parquet.columns
        if not columns:
            if self.parquet.layout != "list" and self.dtype == np.uint8:
                return [("data", "binary", record_bytes)]
            return [("data", self.record_element_type, record_bytes // self.dtype.itemsize)]
        fixed = sum(c.fixed_bytes() or 0 for c in columns)
        out = []
        for c in columns:
            if c.size is None:
                out.append((c.name, "binary", max(1, record_bytes - fixed)))
            else:
                out.append((c.name, c.dtype, c.size))
        return out


_DEFAULT = DatasetSpec()


def _folder(split: str) -> str:
    try:
        return SPLITS[split]
    except KeyError:
        raise ValueError(f"split {split!r}: give 'train' or 'eval'") from None


@functools.lru_cache(maxsize=64)
def _record_sizes(spec: DatasetSpec, folder: str) -> np.ndarray:
    n = spec.num_files(folder)
    item = spec.dtype.itemsize
    if spec.record_dims:
        size = int(np.prod(spec.record_dims)) * item
        return np.full(n, size, dtype=np.int64)
    mean = spec.record_length_bytes
    if spec.record_length_bytes_stdev > 0 and n:
        rng = np.random.default_rng([spec.seed & 0xFFFFFFFF, _SPLIT_CODE[folder], 0x5EED])
        drawn = rng.normal(mean, spec.record_length_bytes_stdev, n)
    else:
        drawn = np.full(n, float(mean))
    fixed = 0
    if spec.format == "parquet" and spec.parquet.columns:
        fixed = sum(c.fixed_bytes() or 0 for c in spec.parquet.columns)
        if all(c.size is not None for c in spec.parquet.columns):
            return np.full(n, fixed, dtype=np.int64)
    elements = np.maximum(np.rint(drawn / item), 1 + fixed // item).astype(np.int64)
    sizes = elements * item
    if spec.is_image:
        # images are square: the sample is side x side pixels
        sides = np.maximum(np.floor(np.sqrt(sizes.astype(np.float64))).astype(np.int64), 1)
        sizes = sides * sides
    return sizes


__all__ = [
    "ALIASES",
    "COMPRESSIONS",
    "DATA_VERSION",
    "DEFAULT_SEED",
    "FORMATS",
    "LEVELS",
    "PARQUET_DTYPES",
    "PARQUET_LAYOUTS",
    "WRITE_CHUNK",
    "DatasetSpec",
    "DatasetSpecError",
    "HDF5Options",
    "ParquetColumn",
    "ParquetOptions",
]
