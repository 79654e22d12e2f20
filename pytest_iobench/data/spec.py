"""The dataset spec: DLIO's ``dataset`` section, validated, plus DLIO's file naming and sizes.

    spec = DatasetSpec.from_mapping({"format": "npz", "num_files_train": 8}, where="dataset")
    spec.file_keys("train")      # ['train/img_0_of_8.npz', ...]
    spec.record_sizes("train")   # bytes of one sample, per file

Keys are named as DLIO names them, with DLIO's defaults, so a DLIO workload file loads
unchanged. ``from_mapping`` checks everything before anything is written and reports every
problem at once, one line each, naming the key, what is wrong and what is valid. Keys DLIO
accepts that change nothing here are reported in ``not_emulated`` (never silently ignored).

Sizes: a file's samples all have the same size (as in DLIO), drawn once per file from a
normal distribution around ``record_length_bytes`` with ``record_length_bytes_stdev``,
seeded by ``seed``: the same spec always gives the same sizes.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

#: bumped when a writer changes the bytes it produces: old datasets are then not reused
DATA_VERSION = 3

#: formats with a writer and a reader; DLIO's ``mmap_indexed_binary`` writes indexed_binary files
FORMATS = ("npz", "npy", "hdf5", "parquet", "csv", "jpeg", "png", "tfrecord", "indexed_binary",
           "mmap_indexed_binary")
IMAGE_FORMATS = ("jpeg", "png")

#: compression names DLIO knows (its Compression enum, the MLCommons fork's parquet ones added)
COMPRESSIONS = ("none", "gzip", "lzf", "bz2", "zip", "xz", "snappy", "lz4", "zstd", "brotli")
#: what each format can write
FORMAT_COMPRESSIONS: dict[str, tuple[str, ...]] = {
    "npz": ("none", "zip"),
    "hdf5": ("none", "gzip", "lzf"),
    "parquet": ("none", "snappy", "zstd", "gzip", "lz4", "brotli"),
    "csv": ("none", "gzip", "bz2", "xz", "zip"),
}
#: valid compression_level per compression (None: the compression takes no level)
LEVELS: dict[str, tuple[int, int] | None] = {
    "none": None, "gzip": (0, 9), "zip": (0, 9), "lzf": None, "bz2": (1, 9), "xz": (0, 9),
    "snappy": None, "lz4": None, "zstd": (1, 22), "brotli": (0, 11),
}
#: file name suffix DLIO adds to compressed csv files
CSV_SUFFIX = {"gzip": ".gz", "bz2": ".bz2", "xz": ".xz", "zip": ".zip"}

#: parquet file layouts (dataset.parquet.layout): "dlio", a fixed_size_binary ``data`` column
#: with dictionary and statistics on, which the MLCommons fork's readers read (they need each
#: column chunk's dictionary page) and which encodes at memory speed; "list", the fork's own
#: column type (a fixed_size_list of the element type, dictionary and statistics on), some 20x
#: slower to encode (one value per byte); "fast", fixed_size_binary without dictionary or
#: statistics, which the fork's readers cannot read (the dictionary page offset they take is
#: None: ``TypeError: '>' not supported between 'NoneType' and 'int'``)
PARQUET_LAYOUTS = ("dlio", "list", "fast")
#: parquet column types: "binary" is fixed_size_binary (the fast one for random bytes)
PARQUET_DTYPES = ("binary", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                  "uint64", "float16", "float32", "float64")

#: rows of one parquet row group are kept under this many bytes while generating (a writer holds
#: one or two: formats/parquet.py, FILL_AHEAD)
MAX_ROW_GROUP_BYTES = 16 << 20
#: the largest piece a writer hands to the storage at once
WRITE_CHUNK = 8 << 20

SPLITS = {"train": "train", "eval": "valid", "valid": "valid"}
_SPLIT_CODE = {"train": 1, "valid": 2}

DEFAULT_SEED = 10  # DLIO seeds its generators with 10


class DatasetSpecError(ValueError):
    """A dataset spec that cannot be generated; one line per problem, each naming its key."""


@dataclass(frozen=True)
class HDF5Options:
    """DLIO's ``dataset.hdf5`` sub-section."""

    chunk_dims: tuple[int, ...] = ()
    num_dset_per_record: int = 1
    #: None entries are unlimited dimensions
    max_shape: tuple[int | None, ...] = ()


@dataclass(frozen=True)
class ParquetColumn:
    name: str
    #: one of PARQUET_DTYPES; float32 when left out, as in DLIO
    dtype: str = "float32"
    #: bytes for "binary", elements for the others (1 when left out, as in the MLCommons fork);
    #: None for "binary" only: the rest of the record
    size: int | None = 1

    def fixed_bytes(self) -> int | None:
        if self.size is None:
            return None
        return self.size if self.dtype == "binary" else self.size * np.dtype(self.dtype).itemsize


@dataclass(frozen=True)
class ParquetOptions:
    """Our ``dataset.parquet`` sub-section (names as in the MLCommons fork where it has them)."""

    #: the columns of a row (one row = one sample); empty: one "data" column holding the record
    columns: tuple[ParquetColumn, ...] = ()
    #: rows per row group (the fork's default)
    row_group_size: int = 1024
    #: overrides dataset.compression for parquet; None: use dataset.compression
    compression: str | None = None
    compression_level: int | None = None
    #: the fork's key; accepted, generation streams row groups whatever it says
    generation_batch_size: int = 0
    #: one of PARQUET_LAYOUTS: "dlio" and "list" (the fork reads both) or "fast" (it cannot)
    layout: str = "dlio"


_HDF5_KEYS = {"chunk_dims": (), "num_dset_per_record": 1, "max_shape": ()}
_PARQUET_KEYS = {"columns": [], "row_group_size": 1024, "compression": None, "compression_level": None,
                 "generation_batch_size": 0, "partition_by": None, "use_s3dlio_gen": False, "layout": "dlio"}
#: the MLCommons fork's dataset.arrow section (its Arrow IPC format, not emulated here)
_ARROW_KEYS = {"columns": [], "generation_batch_size": 0}
_COLUMN_KEYS = ("name", "dtype", "size")

#: DatasetSpec fields that are not dataset keys
_INTERNAL = ("given", "replaced", "write_chunk_bytes", "aliased")

#: keys DLIO accepts that are checked here but kept nowhere (derived, or not emulated)
_EXTRA_KEYS = {"record_element_bytes": None, "generation_buffer_size": 2 << 30, "data_gen_method": None,
               # the MLCommons fork's (dlio_benchmark/utils/config.py, LoadConfig)
               "skip_listing": False, "listing_validation_interval": 1000, "arrow": None,
               # in DLIO's dlrm.yaml; no DLIO's config loader reads it
               "eval_num_samples_per_file": None}

#: keys that, when given, change nothing generated or read here, and why (DatasetSpec.not_emulated)
_NOT_EMULATED = {
    "record_length_bytes_resize": ("DLIO's readers hand back an array of this size instead of the data read; our "
                                   "readers return the data read"),
    "eval_num_samples_per_file": ("no DLIO's config loader reads it (DLIO's dlrm.yaml sets it): eval files hold "
                                  "num_samples_per_file samples, as in DLIO"),
    "skip_listing": ("file names always come from DLIO's naming convention, never from listing the folder (what "
                     "skip_listing: true does in the MLCommons fork)"),
    "listing_validation_interval": ("the fork checks every N-th name exists before training; here every file is "
                                    "known present before any read (the manifest and a listing, or a stat of each "
                                    "adopted file)"),
    "parquet.use_s3dlio_gen": "data is always generated with dgen-py (seeded)",
    "arrow": "the MLCommons fork's Arrow IPC format (format: arrow) is not emulated; these keys apply to it only",
    "data_gen_method": "data is always generated with dgen-py (seeded)",
    "parquet.generation_batch_size": "parquet is generated one row group at a time",
}

#: older DLIO's names of the record size keys (its LoadConfig read record_length,
#: record_length_stdev, record_length_resize; DLIO's resnet50_v100.yaml gives record_length_std,
#: which no DLIO read): read as the current names
ALIASES = {"record_length": "record_length_bytes", "record_length_stdev": "record_length_bytes_stdev",
           "record_length_std": "record_length_bytes_stdev", "record_length_resize": "record_length_bytes_resize"}


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
    hdf5: HDF5Options = HDF5Options()
    parquet: ParquetOptions = ParquetOptions()
    seed: int = DEFAULT_SEED
    #: the size of the pieces handed to the storage (DLIO's generation_buffer_size caps it)
    write_chunk_bytes: int = WRITE_CHUNK
    #: keys given explicitly (for notes); not part of the spec's identity
    given: frozenset = field(default=frozenset(), compare=False, repr=False)
    #: keys whose given value another key replaced (DLIO's priorities), with why
    replaced: tuple = field(default=(), compare=False, repr=False)
    #: (name given, name it was read as) of the older names used (ALIASES)
    aliased: tuple = field(default=(), compare=False, repr=False)

    # -- the accepted keys -----------------------------------------------------------------
    @classmethod
    def known_keys(cls) -> list[str]:
        """Every key ``from_mapping`` accepts: top-level ones, then ``hdf5.*`` and ``parquet.*``."""
        top = [f.name for f in fields(cls) if f.name not in _INTERNAL]
        return (top + list(_EXTRA_KEYS) + list(ALIASES) + [f"hdf5.{k}" for k in _HDF5_KEYS]
                + [f"parquet.{k}" for k in _PARQUET_KEYS] + [f"arrow.{k}" for k in _ARROW_KEYS])

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The default of every top-level key (sub-sections as mappings), as in a workload file."""
        out = DatasetSpec().to_dict()
        out.update({k: v for k, v in _EXTRA_KEYS.items() if v is not None})
        out["record_element_bytes"] = 1
        out["data_gen_method"] = "dgen"
        out["parquet"]["partition_by"] = None
        out["parquet"]["use_s3dlio_gen"] = False
        out["arrow"] = dict(_ARROW_KEYS)
        return out

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None, where: str = "dataset") -> DatasetSpec:
        """Validate a ``dataset`` mapping (DLIO keys) into a spec; DatasetSpecError lists every
        problem, one line each, starting with ``where.key``."""
        return _Builder(where).build(mapping or {})

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
        out = {named.get(key, key): why for key, why in _NOT_EMULATED.items() if key in self.given}
        out.update(self.replaced)
        if self.format != "hdf5":
            for key in ("enable_chunking", "chunk_size", "hdf5"):
                if key in self.given:
                    out[key] = "applies to hdf5 only"
        elif self.hdf5.chunk_dims:
            for key in ("enable_chunking", "chunk_size"):
                if key in self.given:
                    out[key] = f"hdf5.chunk_dims {list(self.hdf5.chunk_dims)} decide the chunks"
        elif "chunk_size" in self.given and not self.enable_chunking:
            out["chunk_size"] = "applies with enable_chunking: true only"
        if self.format != "parquet" and "parquet" in self.given:
            out["parquet"] = "applies to parquet only"
        if "compression_level" in self.given and LEVELS.get(self.effective_compression) is None:
            out["compression_level"] = f"the {self.effective_compression} compression takes no level"
        if self.format == "mmap_indexed_binary":
            out["format"] = "mmap_indexed_binary files are read with range reads through the storage (no mmap)"
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
    def extension(self) -> str:
        """The file name extension: the format's name, as DLIO names files (csv adds .gz, ...)."""
        if self.format == "csv":
            return "csv" + CSV_SUFFIX.get(self.compression, "")
        return self.format

    @property
    def is_image(self) -> bool:
        return self.format in IMAGE_FORMATS

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
        out = []
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


# -- validation ----------------------------------------------------------------------------
class _Builder:
    """Checks a mapping key by key, collecting every problem before failing."""

    def __init__(self, where: str):
        self.where = where
        self.problems: list[str] = []
        self.replaced: list[tuple[str, str]] = []

    def error(self, key: str, text: str) -> None:
        self.problems.append(f"{self.where}.{key}: {text}")

    # typed readers: each returns the default (and records a problem) on a bad value
    def integer(self, key: str, value: Any, default: int, minimum: int | None = 0) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(key, f"{value!r} is not valid; give a whole number"
                       + (f" >= {minimum}" if minimum is not None else ""))
            return default
        if minimum is not None and value < minimum:
            self.error(key, f"{value} is not valid; give a whole number >= {minimum}")
            return default
        return value

    def number(self, key: str, value: Any, default: int, minimum: float) -> int:
        """A size that DLIO files sometimes give as a float (114660.07): rounded to bytes."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not math.isfinite(value)):
            self.error(key, f"{value!r} is not valid; give a number of bytes >= {minimum:g}")
            return default
        if value < minimum:
            self.error(key, f"{value!r} is not valid; give a number of bytes >= {minimum:g}")
            return default
        return int(round(value))

    def boolean(self, key: str, value: Any, default: bool) -> bool:
        if not isinstance(value, bool):
            self.error(key, f"{value!r} is not valid; give true or false")
            return default
        return value

    def string(self, key: str, value: Any, default: str) -> str:
        if not isinstance(value, str) or not value:
            self.error(key, f"{value!r} is not valid; give a non-empty string")
            return default
        return value

    def choice(self, key: str, value: Any, valid: tuple[str, ...], default: str, what: str) -> str:
        if not isinstance(value, str) or value.lower() not in valid:
            near = difflib.get_close_matches(str(value).lower(), valid, n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]}?" if near else ""
            self.error(key, f"{value!r} is not a known {what}{hint} (valid: {', '.join(valid)})")
            return default
        return value.lower()

    def dims(self, key: str, value: Any, allow_none: bool = False) -> tuple:
        if value is None:
            return ()
        if not isinstance(value, (list, tuple)):
            self.error(key, f"{value!r} is not valid; give a list of positive whole numbers, such as [256, 256]")
            return ()
        out = []
        for item in value:
            if item is None and allow_none:
                out.append(None)
                continue
            if isinstance(item, float) and item.is_integer():
                item = int(item)
            if isinstance(item, bool) or not isinstance(item, int) or item < 1:
                self.error(key, f"{list(value)!r} is not valid; give a list of positive whole numbers"
                           + (" (null for an unlimited dimension)" if allow_none else ""))
                return ()
            out.append(item)
        return tuple(out)

    def unknown(self, key: str, valid: list[str], prefix: str = "") -> None:
        near = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
        hint = f"; did you mean {self.where}.{prefix}{near[0]}?" if near else ""
        self.error(prefix + key, f"unknown key{hint} (valid: {', '.join(valid)})")

    # -- the whole spec ---------------------------------------------------------------------
    def build(self, mapping: Mapping[str, Any]) -> DatasetSpec:
        if not isinstance(mapping, Mapping):
            raise DatasetSpecError(f"{self.where}: a mapping of keys, not {mapping!r}")
        base = DatasetSpec()
        top = [f.name for f in fields(DatasetSpec) if f.name not in _INTERNAL] + list(_EXTRA_KEYS)
        values: dict[str, Any] = {}
        given = set()
        aliased: list[tuple[str, str]] = []
        for key, value in mapping.items():
            key = str(key)
            if key in ALIASES:
                continue
            if key not in top:
                self.unknown(key, top + list(ALIASES))
                continue
            given.add(key)
            values[key] = value
        for alias, canonical in ALIASES.items():  # older names, read as the current ones
            if alias not in mapping:
                continue
            if canonical in values and values[canonical] != mapping[alias]:
                self.error(alias, f"{mapping[alias]!r} and {canonical} {values[canonical]!r} are both given "
                           f"({alias} is older DLIO's name of {canonical}); give one")
                continue
            given.add(canonical)
            values[canonical] = mapping[alias]
            aliased.append((alias, canonical))

        v = {f.name: getattr(base, f.name) for f in fields(DatasetSpec) if f.name not in ("given", "replaced", "aliased")}
        if "format" in values:
            fmt = values["format"]
            if isinstance(fmt, str) and fmt.lower() == "arrow":
                self.error("format", "'arrow' (the MLCommons fork's Arrow IPC files) is not supported here "
                           f"(valid: {', '.join(FORMATS)})")
            elif isinstance(fmt, str) and fmt.lower() == "synthetic":
                self.error("format", "'synthetic' is not supported: DLIO's synthetic format reads no files, so "
                           f"there is no storage to test (valid: {', '.join(FORMATS)})")
            else:
                v["format"] = self.choice("format", fmt, FORMATS, base.format, "format")
        for key in ("num_files_train", "num_files_eval", "num_subfolders_train", "num_subfolders_eval"):
            if key in values:
                v[key] = self.integer(key, values[key], getattr(base, key))
        if "num_samples_per_file" in values:
            v["num_samples_per_file"] = self.integer("num_samples_per_file", values["num_samples_per_file"], 1, 1)
        if "record_length_bytes" in values:
            v["record_length_bytes"] = self.number("record_length_bytes", values["record_length_bytes"], base.record_length_bytes, 1)
        for key in ("record_length_bytes_stdev", "record_length_bytes_resize"):
            if key in values:
                v[key] = self.number(key, values[key], 0, 0)
        if "record_dims" in values:
            v["record_dims"] = self.dims("record_dims", values["record_dims"])
        if "record_element_type" in values:
            v["record_element_type"] = self.element_type(values["record_element_type"])
        if "file_prefix" in values:
            prefix = self.string("file_prefix", values["file_prefix"], base.file_prefix)
            if "/" in prefix:
                self.error("file_prefix", f"{prefix!r} is not valid; a file name prefix has no '/'")
                prefix = base.file_prefix
            v["file_prefix"] = prefix
        if "data_folder" in values:
            v["data_folder"] = self.string("data_folder", values["data_folder"], base.data_folder)
        if "compression" in values:
            comp = values["compression"]
            v["compression"] = "none" if comp is None else self.choice("compression", comp, COMPRESSIONS, "none", "compression")
        if "compression_level" in values:
            v["compression_level"] = self.integer("compression_level", values["compression_level"], 4, None)
        for key in ("enable_chunking", "keep_files"):
            if key in values:
                v[key] = self.boolean(key, values[key], getattr(base, key))
        if "chunk_size" in values:
            v["chunk_size"] = self.integer("chunk_size", values["chunk_size"], 0)
        if "seed" in values:
            v["seed"] = self.integer("seed", values["seed"], DEFAULT_SEED)
        if "generation_buffer_size" in values:
            buf = self.integer("generation_buffer_size", values["generation_buffer_size"], 2 << 30, 1)
            v["write_chunk_bytes"] = max(1 << 16, min(WRITE_CHUNK, buf))
        if "data_gen_method" in values:
            self.choice("data_gen_method", values["data_gen_method"], ("dgen", "numpy"), "dgen", "data_gen_method")
        if "skip_listing" in values:
            self.boolean("skip_listing", values["skip_listing"], False)
        if "listing_validation_interval" in values:
            self.integer("listing_validation_interval", values["listing_validation_interval"], 1000)
        if "num_files_generated" in values:
            v["num_files_generated"] = self.integer("num_files_generated", values["num_files_generated"], 0)
        if "eval_num_samples_per_file" in values:
            self.integer("eval_num_samples_per_file", values["eval_num_samples_per_file"], 1, 1)
        if "arrow" in values:
            self.arrow(values["arrow"], given)
        if "hdf5" in values:
            v["hdf5"] = self.hdf5(values["hdf5"], given)
        if "parquet" in values:
            v["parquet"] = self.parquet(values["parquet"], given)

        self.check_together(v, values)
        if self.problems:
            raise DatasetSpecError("\n".join(self.problems))
        return DatasetSpec(**v, given=frozenset(given), replaced=tuple(self.replaced), aliased=tuple(aliased))

    def element_type(self, value: Any) -> str:
        valid = "numpy integer and float types such as uint8, int32, float16, float32, float64"
        try:
            dtype = np.dtype(value) if isinstance(value, str) else None
        except TypeError:
            dtype = None
        # not bool: sizes are counted in bytes per element, and parquet would pack bools as bits;
        # not longdouble (float96/float128): parquet and the other formats' readers have no such type
        if dtype is None or dtype.kind not in "iuf" or dtype.itemsize > 8:
            self.error("record_element_type", f"{value!r} is not a numeric element type (valid: {valid})")
            return "uint8"
        return dtype.name

    def hdf5(self, value: Any, given: set) -> HDF5Options:
        if value is None:
            return HDF5Options()
        if not isinstance(value, Mapping):
            self.error("hdf5", f"{value!r} is not valid; give a mapping with keys {', '.join(_HDF5_KEYS)}")
            return HDF5Options()
        out = {}
        for key, item in value.items():
            if key not in _HDF5_KEYS:
                self.unknown(str(key), list(_HDF5_KEYS), "hdf5.")
                continue
            given.add(f"hdf5.{key}")
            if key == "num_dset_per_record":
                out[key] = self.integer("hdf5.num_dset_per_record", item, 1, 1)
            else:
                out[key] = self.dims(f"hdf5.{key}", item, allow_none=(key == "max_shape"))
        return HDF5Options(**out)

    def parquet(self, value: Any, given: set) -> ParquetOptions:
        if value is None:
            return ParquetOptions()
        if not isinstance(value, Mapping):
            self.error("parquet", f"{value!r} is not valid; give a mapping with keys {', '.join(_PARQUET_KEYS)}")
            return ParquetOptions()
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key not in _PARQUET_KEYS:
                self.unknown(str(key), list(_PARQUET_KEYS), "parquet.")
                continue
            given.add(f"parquet.{key}")
            if key == "row_group_size":
                out[key] = self.integer("parquet.row_group_size", item, 1024, 1)
            elif key == "generation_batch_size":
                out[key] = self.integer("parquet.generation_batch_size", item, 0)
            elif key == "layout":
                out[key] = self.choice("parquet.layout", item, PARQUET_LAYOUTS, "dlio", "parquet layout")
            elif key == "use_s3dlio_gen":
                self.boolean("parquet.use_s3dlio_gen", item, False)
            elif key == "compression":
                out[key] = None if item is None else self.choice("parquet.compression", item, COMPRESSIONS, "none", "compression")
            elif key == "compression_level":
                out[key] = None if item is None else self.integer("parquet.compression_level", item, 0, None)
            elif key == "partition_by":
                if item is not None:
                    self.error("parquet.partition_by", f"{item!r}: Hive partitioning is not supported (one file per "
                               "DLIO file name is what readers expect); remove the key")
            elif key == "columns":
                out[key] = self.columns(item)
        return ParquetOptions(**out)

    def arrow(self, value: Any, given: set) -> None:
        """The fork's arrow section: checked, kept nowhere (its format is not emulated)."""
        if value is None:
            return
        if not isinstance(value, Mapping):
            self.error("arrow", f"{value!r} is not valid; give a mapping with keys {', '.join(_ARROW_KEYS)}")
            return
        for key, item in value.items():
            if key not in _ARROW_KEYS:
                self.unknown(str(key), list(_ARROW_KEYS), "arrow.")
            elif key == "generation_batch_size":
                self.integer("arrow.generation_batch_size", item, 0)
            elif item is not None and not isinstance(item, (list, tuple)):
                self.error("arrow.columns", f"{item!r} is not valid; give a list of columns")

    def columns(self, value: Any) -> tuple[ParquetColumn, ...]:
        key = "parquet.columns"
        if value is None or (isinstance(value, (list, tuple)) and not value):
            return ()
        if not isinstance(value, (list, tuple)):
            self.error(key, f"{value!r} is not valid; give a list of columns such as "
                       "[{name: label, dtype: int32}, {name: data, dtype: binary}]")
            return ()
        out = []
        names = set()
        for n, col in enumerate(value):
            here = f"{key}[{n}]"
            if isinstance(col, str):
                col = {"name": col}
            if not isinstance(col, Mapping):
                self.error(here, f"{col!r} is not valid; give a mapping with keys {', '.join(_COLUMN_KEYS)}")
                continue
            for extra in col:
                if extra not in _COLUMN_KEYS:
                    self.unknown(str(extra), list(_COLUMN_KEYS), f"parquet.columns[{n}].")
            name = col.get("name")
            if not isinstance(name, str) or not name:
                self.error(f"{here}.name", f"{name!r} is not valid; give a non-empty column name")
                continue
            if name in names:
                self.error(f"{here}.name", f"{name!r} is used by two columns; give unique names")
            names.add(name)
            dtype = self.choice(f"{here}.dtype", col.get("dtype", "float32"), PARQUET_DTYPES, "float32",
                                "parquet column type")
            size = col.get("size")
            if size is not None:
                size = self.integer(f"{here}.size", size, 1, 1)
            elif dtype != "binary":
                size = 1  # DLIO's (the MLCommons fork's) default
            out.append(ParquetColumn(name, dtype, size))
        if sum(1 for c in out if c.size is None) > 1:
            self.error(key, "only one binary column may leave out its size (it takes the rest of the record)")
        return tuple(out)

    def check_together(self, v: dict[str, Any], values: dict[str, Any]) -> None:
        """Rules between keys (only when each key on its own was valid)."""
        fmt = v["format"]
        dtype = np.dtype(v["record_element_type"])
        dims = v["record_dims"]
        generated = v["num_files_generated"]
        if generated and generated < v["num_files_train"]:
            self.error("num_files_generated", f"{generated} is fewer than num_files_train {v['num_files_train']}: "
                       "a run reads the first num_files_train of the files generated; give 0 (as many as "
                       f"num_files_train) or at least {v['num_files_train']}")
        if "record_element_bytes" in values:
            given_bytes = values["record_element_bytes"]
            if given_bytes != dtype.itemsize:
                self.error("record_element_bytes", f"{given_bytes!r} does not match record_element_type "
                           f"{dtype.name} ({dtype.itemsize} bytes); leave it out (it is derived) or make them agree")
        # record size against dims x element type
        if dims:
            size = int(np.prod(dims)) * dtype.itemsize
            if "record_length_bytes" in values and v["record_length_bytes"] != size:
                # DLIO: record_dims take priority over record_length_bytes
                self.replaced.append(("record_length_bytes", f"{v['record_length_bytes']} is replaced by the {size} "
                                      f"bytes of record_dims {list(dims)} of {dtype.name} (record_dims take "
                                      "priority, as in DLIO)"))
            if v["record_length_bytes_stdev"] > 0:
                self.error("record_length_bytes_stdev", "cannot be used with record_dims (DLIO's rule: fixed dims "
                           "have no spread); give record_length_bytes with record_length_bytes_stdev instead")
            v["record_length_bytes"] = size
        elif v["record_length_bytes"] % dtype.itemsize:
            self.error("record_length_bytes", f"{v['record_length_bytes']} bytes cannot be divided into whole "
                       f"{dtype.name} elements ({dtype.itemsize} bytes each); give a multiple of {dtype.itemsize}")
        # compression
        comp = v["compression"]
        formats_comp = FORMAT_COMPRESSIONS.get(fmt, ("none",))
        pq_comp = v["parquet"].compression
        if fmt == "parquet" and pq_comp is not None:
            if "compression" in values and comp != "none" and comp != pq_comp:
                self.error("parquet.compression", f"{pq_comp!r} differs from compression {comp!r}; give one")
            comp_key, comp = "parquet.compression", pq_comp
        else:
            comp_key = "compression"
        if comp not in formats_comp:
            self.error(comp_key, f"{comp!r} is not available for {fmt} (valid for {fmt}: {', '.join(formats_comp)})")
        else:
            level_key = "parquet.compression_level" if fmt == "parquet" and v["parquet"].compression_level is not None else "compression_level"
            level = v["parquet"].compression_level if level_key != "compression_level" else v["compression_level"]
            span = LEVELS.get(comp)
            if span is not None and not span[0] <= level <= span[1]:
                self.error(level_key, f"{level} is not valid for {comp}; give {span[0]} to {span[1]}")
        # images
        if fmt in IMAGE_FORMATS:
            if dtype != np.uint8:
                self.error("record_element_type", f"{dtype.name} is not valid for {fmt}: images hold uint8 pixels")
            channels = (1, 3) if fmt == "jpeg" else (1, 3, 4)
            if dims and not (len(dims) == 2 or (len(dims) == 3 and dims[2] in channels)):
                self.error("record_dims", f"{list(dims)} is not an image shape for {fmt}; give [height, width] or "
                           f"[height, width, channels] with channels in {list(channels)}")
            if v["num_samples_per_file"] != 1:
                self.error("num_samples_per_file", f"{v['num_samples_per_file']} is not valid for {fmt}: an image "
                           "file holds one image; give 1")
            if fmt == "jpeg" and dims and max(dims[:2]) > 65535:
                self.error("record_dims", f"{list(dims)}: JPEG images are at most 65535 pixels wide and high")
        # hdf5
        h5 = v["hdf5"]
        sample_rank = len(dims) if dims else 1
        lead = dims[0] if dims else v["record_length_bytes"] // dtype.itemsize
        if fmt == "hdf5":
            if lead % h5.num_dset_per_record:
                what = "record_dims[0]" if dims else "the elements of a record"
                self.error("hdf5.num_dset_per_record", f"{h5.num_dset_per_record} does not divide {what} ({lead}); "
                           "give a divisor (DLIO splits the first dimension across the datasets)")
            if v["record_length_bytes_stdev"] > 0 and h5.num_dset_per_record > 1 and not dims:
                self.error("hdf5.num_dset_per_record", "cannot split records whose size varies "
                           "(record_length_bytes_stdev > 0); give 1")
            if h5.chunk_dims and len(h5.chunk_dims) != sample_rank + 1:
                self.error("hdf5.chunk_dims", f"{list(h5.chunk_dims)} has {len(h5.chunk_dims)} dimensions; a "
                           f"dataset here has {sample_rank + 1} (samples, then the record's {sample_rank})")
            # DLIO's max_shape gives the record's dimensions (maxshape = (samples, *max_shape));
            # the samples' axis may be given too
            if h5.max_shape and len(h5.max_shape) not in (sample_rank, sample_rank + 1):
                self.error("hdf5.max_shape", f"{list(h5.max_shape)} has {len(h5.max_shape)} dimensions; give the "
                           f"record's {sample_rank} (as DLIO), or {sample_rank + 1} with the samples' axis first")
            elif h5.max_shape and not v["record_length_bytes_stdev"]:
                shape = (v["num_samples_per_file"], lead // h5.num_dset_per_record, *dims[1:])
                shape = shape[len(shape) - len(h5.max_shape):]
                for got, need in zip(h5.max_shape, shape):
                    if got is not None and got < need:
                        self.error("hdf5.max_shape", f"{list(h5.max_shape)} is smaller than the dataset shape "
                                   f"{list(shape)}; give at least that (null for unlimited)")
                        break
            if v["enable_chunking"] and v["chunk_size"] == 0 and not h5.chunk_dims and "chunk_size" in values:
                self.error("chunk_size", "0 is not valid with enable_chunking; give the chunk size in bytes")
        # parquet
        if fmt == "parquet" and v["parquet"].columns:
            cols = v["parquet"].columns
            fixed = sum(c.fixed_bytes() or 0 for c in cols)
            if all(c.size is not None for c in cols):
                if "record_length_bytes" in values and v["record_length_bytes"] != fixed:
                    # DLIO (the MLCommons fork) builds rows from the columns alone
                    self.replaced.append(("record_length_bytes", f"{v['record_length_bytes']} is replaced by the "
                                          f"{fixed} bytes of parquet.columns (the columns make the row, as in DLIO)"))
                if v["record_length_bytes_stdev"] > 0:
                    self.error("record_length_bytes_stdev", "needs a binary parquet column without a size to vary")
                v["record_length_bytes"] = fixed
            elif fixed >= v["record_length_bytes"]:
                self.error("parquet.columns", f"the sized columns take {fixed} bytes, leaving nothing of "
                           f"record_length_bytes {v['record_length_bytes']} for the column without a size")
            if dims:
                self.error("record_dims", "cannot be used with parquet.columns; give the sizes in the columns")


__all__ = [
    "COMPRESSIONS",
    "DATA_VERSION",
    "FORMATS",
    "FORMAT_COMPRESSIONS",
    "DatasetSpec",
    "DatasetSpecError",
    "HDF5Options",
    "ParquetColumn",
    "ParquetOptions",
]
