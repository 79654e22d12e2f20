"""DLIO's ``dataset`` section declared: every key with its check, the rules between keys as a
table, and the walk that applies them (``validate``), reporting every problem at once, one
line each, naming the key, what is wrong and what is valid.

A key's check (``checks.py``) runs on its own; the rules run after, in table order, on the
values that passed (``Values``): first ``RULES``, then the rules of the spec's format, which
its module declares (``formats/registry.py``). Derivations between them (record_dims make the
record size, as in DLIO) are steps of ``validate``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import checks
from .checks import Invalid, Rule
from .formats import registry

#: compression names DLIO knows (its Compression enum, the MLCommons fork's parquet ones added)
COMPRESSIONS = ("none", "gzip", "lzf", "bz2", "zip", "xz", "snappy", "lz4", "zstd", "brotli")
#: valid compression_level per compression (None: the compression takes no level)
LEVELS: dict[str, tuple[int, int] | None] = {
    "none": None, "gzip": (0, 9), "zip": (0, 9), "lzf": None, "bz2": (1, 9), "xz": (0, 9),
    "snappy": None, "lz4": None, "zstd": (1, 22), "brotli": (0, 11),
}

#: parquet file layouts (dataset.parquet.layout): "dlio", a fixed_size_binary ``data`` column
#: with dictionary and statistics on, which the MLCommons fork's readers read (they need each
#: column chunk's dictionary page) and which encodes at memory speed; "list", the fork's own
#: column type (a fixed_size_list of the element type, dictionary and statistics on), much
#: slower to encode (one value per byte); "fast", fixed_size_binary without dictionary or
#: statistics, which the fork's readers cannot read (the dictionary page offset they take is
#: None: ``TypeError: '>' not supported between 'NoneType' and 'int'``)
PARQUET_LAYOUTS = ("dlio", "list", "fast")
#: parquet column types: "binary" is fixed_size_binary (the fast one for random bytes)
PARQUET_DTYPES = ("binary", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                  "uint64", "float16", "float32", "float64")

#: the largest piece a writer hands to the storage at once
WRITE_CHUNK = 8 << 20
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


# -- the keys ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Key:
    """A key's check. ``field``: the spec field its value goes to (None: checked, kept
    nowhere); ``fallback``: the value kept when the check fails (None: the field's default)."""

    check: checks.Check
    field: str | None = ""
    fallback: Any = None


def _element_type(value: Any) -> str:
    valid = "numpy integer and float types such as uint8, int32, float16, float32, float64"
    try:
        dtype = np.dtype(value) if isinstance(value, str) else None
    except TypeError:
        dtype = None
    # not bool: sizes are counted in bytes per element, and parquet would pack bools as bits;
    # not longdouble (float96/float128): parquet and the other formats' readers have no such type
    if dtype is None or dtype.kind not in "iuf" or dtype.itemsize > 8:
        raise Invalid(f"{value!r} is not a numeric element type (valid: {valid})")
    return dtype.name


def _format(value: Any) -> str:
    if isinstance(value, str) and value.lower() == "arrow":
        raise Invalid("'arrow' (the MLCommons fork's Arrow IPC files) is not supported here "
                      f"(valid: {', '.join(registry.names())})")
    if isinstance(value, str) and value.lower() == "synthetic":
        raise Invalid("'synthetic' is not supported: DLIO's synthetic format reads no files, so "
                      f"there is no storage to test (valid: {', '.join(registry.names())})")
    name: str = checks.choice(registry.names, "format")(value)
    return name


def _file_prefix(value: Any) -> str:
    prefix = checks.text(value)
    if "/" in prefix:
        raise Invalid(f"{prefix!r} is not valid; a file name prefix has no '/'")
    return prefix


def _no_partitions(item: Any) -> None:
    if item is not None:
        raise Invalid(f"{item!r}: Hive partitioning is not supported (one file per DLIO file name is what "
                      "readers expect); remove the key")


def _column_list(item: Any) -> Any:
    if item is not None and not isinstance(item, (list, tuple)):
        raise Invalid(f"{item!r} is not valid; give a list of columns")
    return item


def _write_chunk(value: Any) -> int:
    """DLIO's generation_buffer_size caps the pieces handed to the storage."""
    size: int = checks.integer(1)(value)
    return max(1 << 16, min(WRITE_CHUNK, size))


_COMPRESSION = checks.choice(COMPRESSIONS, "compression")

#: the top-level keys, checked in this order
KEYS: dict[str, Key] = {
    "format": Key(_format),
    "num_files_train": Key(checks.integer(0)),
    "num_files_eval": Key(checks.integer(0)),
    "num_subfolders_train": Key(checks.integer(0)),
    "num_subfolders_eval": Key(checks.integer(0)),
    "num_samples_per_file": Key(checks.integer(1)),
    "record_length_bytes": Key(checks.byte_count(1)),
    "record_length_bytes_stdev": Key(checks.byte_count(0)),
    "record_length_bytes_resize": Key(checks.byte_count(0)),
    "record_dims": Key(checks.dims()),
    "record_element_type": Key(_element_type),
    "file_prefix": Key(_file_prefix),
    "data_folder": Key(checks.text),
    "compression": Key(checks.optional(_COMPRESSION, "none")),
    "compression_level": Key(checks.integer(None)),
    "enable_chunking": Key(checks.boolean),
    "keep_files": Key(checks.boolean),
    "chunk_size": Key(checks.integer(0)),
    "seed": Key(checks.integer(0)),
    "generation_buffer_size": Key(_write_chunk, field="write_chunk_bytes"),
    "data_gen_method": Key(checks.choice(("dgen", "numpy"), "data_gen_method"), field=None),
    "skip_listing": Key(checks.boolean, field=None),
    "listing_validation_interval": Key(checks.integer(0), field=None),
    "num_files_generated": Key(checks.integer(0)),
    "eval_num_samples_per_file": Key(checks.integer(1), field=None),
}

HDF5_KEYS: dict[str, Key] = {
    "chunk_dims": Key(checks.dims()),
    "num_dset_per_record": Key(checks.integer(1)),
    "max_shape": Key(checks.dims(allow_none=True)),
}
#: a bad compression or level of the parquet section falls back to "none" and 0 (not to null,
#: "use dataset.compression"), so the rules below still look at it
PARQUET_KEYS: dict[str, Key] = {
    "columns": Key(lambda value: value),  # checked by _Walk.columns (each column's problems apart)
    "row_group_size": Key(checks.integer(1)),
    "compression": Key(checks.optional(checks.choice(COMPRESSIONS, "compression")), fallback="none"),
    "compression_level": Key(checks.optional(checks.integer(None)), fallback=0),
    "generation_batch_size": Key(checks.integer(0)),
    "partition_by": Key(_no_partitions, field=None),
    "use_s3dlio_gen": Key(checks.boolean, field=None),
    "layout": Key(checks.choice(PARQUET_LAYOUTS, "parquet layout")),
}
#: the MLCommons fork's dataset.arrow section (its Arrow IPC format, not emulated here)
ARROW_KEYS: dict[str, Key] = {
    "columns": Key(_column_list, field=None),
    "generation_batch_size": Key(checks.integer(0), field=None),
}
_COLUMN_KEYS = ("name", "dtype", "size")
#: defaults of the sub-section keys kept nowhere, as a workload file gives them
_SECTION_DEFAULTS: dict[str, dict[str, Any]] = {"parquet": {"partition_by": None, "use_s3dlio_gen": False},
                     "arrow": {"columns": [], "generation_batch_size": 0}}

#: keys DLIO accepts that are checked here but kept nowhere (derived, or not emulated), with
#: their defaults (None: given apart by DatasetSpec.defaults)
EXTRA_KEYS = {"record_element_bytes": None, "generation_buffer_size": 2 << 30, "data_gen_method": None,
              # the MLCommons fork's (dlio_benchmark/utils/config.py, LoadConfig)
              "skip_listing": False, "listing_validation_interval": 1000, "arrow": None,
              # in DLIO's dlrm.yaml; no DLIO's config loader reads it
              "eval_num_samples_per_file": None}

#: keys that, when given, change nothing generated or read here, and why (DatasetSpec.not_emulated)
NOT_EMULATED = {
    "record_length_bytes_resize": ("DLIO's readers hand back an array of this size instead of the data read; our "
                                   "readers return the data read"),
    "eval_num_samples_per_file": ("no DLIO's config loader reads it (DLIO's dlrm.yaml sets it): eval files hold "
                                  "num_samples_per_file samples, as in DLIO"),
    "skip_listing": ("file names always come from DLIO's naming convention, never from listing the folder (what "
                     "skip_listing: true does in the MLCommons fork)"),
    "listing_validation_interval": ("the fork checks every N-th name exists before training; here every file is "
                                    "known present before any read (the manifest and a listing, or a stat of each "
                                    "adopted file)"),
    "parquet.use_s3dlio_gen": "data always comes from the seeded random source (a dgen-py pool, keyed per segment)",
    "arrow": "the MLCommons fork's Arrow IPC format (format: arrow) is not emulated; these keys apply to it only",
    "data_gen_method": "data always comes from the seeded random source (a dgen-py pool, keyed per segment)",
    "parquet.generation_batch_size": "parquet is generated one row group at a time",
}

#: older DLIO's names of the record size keys (its LoadConfig read record_length,
#: record_length_stdev, record_length_resize; DLIO's resnet50_v100.yaml gives record_length_std,
#: which no DLIO read): read as the current names
ALIASES = {"record_length": "record_length_bytes", "record_length_stdev": "record_length_bytes_stdev",
           "record_length_std": "record_length_bytes_stdev", "record_length_resize": "record_length_bytes_resize"}


def known_keys(top: list[str]) -> list[str]:
    """Every key ``validate`` accepts: the spec's fields ``top``, then the rest, then the
    sub-sections' keys."""
    return (top + list(EXTRA_KEYS) + list(ALIASES) + [f"hdf5.{k}" for k in HDF5_KEYS]
            + [f"parquet.{k}" for k in PARQUET_KEYS] + [f"arrow.{k}" for k in ARROW_KEYS])


def section_defaults(name: str) -> dict[str, Any]:
    return dict(_SECTION_DEFAULTS[name])


# -- the values the rules look at -----------------------------------------------------------
class Values:
    """The checked values of a spec (its fields by name) with what the rules derive from them;
    ``format_map`` reads it as a mapping, so a rule's message names any of them."""

    def __init__(self, fields: dict[str, Any], given: Mapping[str, Any]):
        self.fields = fields
        #: the values given, before any check (DLIO key names)
        self.given = given

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["fields"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Any:
        return getattr(self, name)

    @property
    def dtype(self) -> np.dtype:
        dtype: np.dtype = np.dtype(self.fields["record_element_type"])
        return dtype

    @property
    def dims(self) -> tuple[int, ...]:
        dims: tuple[int, ...] = self.fields["record_dims"]
        return dims

    @property
    def dims_list(self) -> list[int]:
        return list(self.fields["record_dims"])

    @property
    def dims_bytes(self) -> int:
        return int(np.prod(self.dims)) * self.dtype.itemsize

    @property
    def sample_rank(self) -> int:
        """Dimensions of a sample: record_dims' or one (a flat array)."""
        return len(self.dims) if self.dims else 1

    @property
    def lead(self) -> int:
        """A sample's first dimension: record_dims[0], or its elements."""
        return self.dims[0] if self.dims else self.fields["record_length_bytes"] // self.dtype.itemsize

    @property
    def own_compression(self) -> bool:
        """parquet.compression overrides dataset.compression for parquet."""
        return self.fields["format"] == "parquet" and self.fields["parquet"].compression is not None

    @property
    def compression_key(self) -> str:
        return "parquet.compression" if self.own_compression else "compression"

    @property
    def comp(self) -> str:
        comp: str = self.fields["parquet"].compression if self.own_compression else self.fields["compression"]
        return comp

    @property
    def level_key(self) -> str:
        own = self.fields["format"] == "parquet" and self.fields["parquet"].compression_level is not None
        return "parquet.compression_level" if own else "compression_level"

    @property
    def level(self) -> int:
        own = self.level_key != "compression_level"
        level: int = self.fields["parquet"].compression_level if own else self.fields["compression_level"]
        return level

    @property
    def span(self) -> tuple[int, int] | None:
        return LEVELS.get(self.comp)

    @property
    def valid_compressions(self) -> tuple[str, ...]:
        return registry.info(self.fields["format"]).compressions


#: rules between keys, in order, before the format's own (the messages name the values)
RULES_BEFORE_DIMS = (
    Rule("num_files_generated",
         lambda v: v.num_files_generated and v.num_files_generated < v.num_files_train,
         "{num_files_generated} is fewer than num_files_train {num_files_train}: a run reads the first "
         "num_files_train of the files generated; give 0 (as many as num_files_train) or at least {num_files_train}"),
    Rule("record_element_bytes",
         lambda v: "record_element_bytes" in v.given and v.given["record_element_bytes"] != v.dtype.itemsize,
         lambda v: f"{v.given['record_element_bytes']!r} does not match record_element_type {v.dtype.name} "
                   f"({v.dtype.itemsize} bytes); leave it out (it is derived) or make them agree"),
    Rule("record_length_bytes_stdev", lambda v: v.dims and v.record_length_bytes_stdev > 0,
         "cannot be used with record_dims (DLIO's rule: fixed dims have no spread); give record_length_bytes "
         "with record_length_bytes_stdev instead"),
)
RULES = (
    Rule("record_length_bytes", lambda v: not v.dims and v.record_length_bytes % v.dtype.itemsize,
         "{record_length_bytes} bytes cannot be divided into whole {dtype.name} elements ({dtype.itemsize} "
         "bytes each); give a multiple of {dtype.itemsize}"),
    Rule("parquet.compression",
         lambda v: v.own_compression and "compression" in v.given and v.compression not in ("none", v.comp),
         "{comp!r} differs from compression {compression!r}; give one"),
    Rule("{compression_key}", lambda v: v.comp not in v.valid_compressions,
         lambda v: f"{v.comp!r} is not available for {v.format} (valid for {v.format}: "
                   f"{', '.join(v.valid_compressions)})"),
    Rule("{level_key}",
         lambda v: v.comp in v.valid_compressions and v.span is not None and not v.span[0] <= v.level <= v.span[1],
         lambda v: f"{v.level} is not valid for {v.comp}; give {v.span[0]} to {v.span[1]}"),
)


class _Walk:
    """Checks a mapping key by key, collecting every problem before failing."""

    def __init__(self, where: str):
        self.where = where
        self.problems: list[str] = []
        self.replaced: list[tuple[str, str]] = []

    def error(self, key: str, text: str) -> None:
        self.problems.append(f"{self.where}.{key}: {text}")

    def unknown(self, key: str, valid: list[str], prefix: str = "") -> None:
        self.problems.append(checks.unknown_key(self.where, key, valid, prefix))

    def value(self, key: str, check: checks.Check, value: Any, fallback: Any) -> Any:
        try:
            return check(value)
        except Invalid as exc:
            self.error(key, str(exc))
            return fallback

    def section(self, name: str, value: Any, keys: Mapping[str, Key], given: set[str],
                defaults: Mapping[str, Any]) -> dict[str, Any]:
        """A sub-section's checked values (its fields only); the problems recorded."""
        out: dict[str, Any] = {}
        if value is None:
            return out
        try:
            checks.section(value, keys)
        except Invalid as exc:
            self.error(name, str(exc))
            return out
        for key, item in value.items():
            if key not in keys:
                self.unknown(str(key), list(keys), f"{name}.")
                continue
            given.add(f"{name}.{key}")
            spec = keys[key]
            if name == "parquet" and key == "columns":
                out[key] = self.columns(item)
                continue
            fallback = spec.fallback if spec.fallback is not None else defaults.get(key)
            checked = self.value(f"{name}.{key}", spec.check, item, fallback)
            if spec.field is not None:
                out[key] = checked
        return out

    def rules(self, rules: tuple[Rule, ...], v: Values) -> None:
        for rule in rules:
            if rule.when(v):
                message = rule.message(v) if callable(rule.message) else rule.message.format_map(v)
                self.error(rule.key.format_map(v), message)

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
        dtype_check = checks.choice(PARQUET_DTYPES, "parquet column type")
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
            dtype = self.value(f"{here}.dtype", dtype_check, col.get("dtype", "float32"), "float32")
            size = col.get("size")
            if size is not None:
                size = self.value(f"{here}.size", checks.integer(1), size, 1)
            elif dtype != "binary":
                size = 1  # DLIO's (the MLCommons fork's) default
            out.append(ParquetColumn(name, dtype, size))
        if sum(1 for c in out if c.size is None) > 1:
            self.error(key, "only one binary column may leave out its size (it takes the rest of the record)")
        return tuple(out)


@dataclass
class Checked:
    """What ``validate`` gives the spec: its fields, and the notes for the run."""

    fields: dict[str, Any]
    given: set[str] = field(default_factory=set)
    replaced: list[tuple[str, str]] = field(default_factory=list)
    aliased: list[tuple[str, str]] = field(default_factory=list)


def validate(mapping: Any, where: str, defaults: dict[str, Any]) -> Checked:
    """Check a ``dataset`` mapping against the schema and the rules; ``defaults`` are the
    spec's fields' defaults. DatasetSpecError lists every problem, one line each."""
    if not isinstance(mapping, Mapping):
        raise DatasetSpecError(f"{where}: a mapping of keys, not {mapping!r}")
    walk = _Walk(where)
    top = list(defaults) + [k for k in EXTRA_KEYS if k not in defaults]
    top = [k for k in top if k != "write_chunk_bytes"]
    values: dict[str, Any] = {}
    given: set[str] = set()
    aliased: list[tuple[str, str]] = []
    for key, value in mapping.items():
        key = str(key)
        if key in ALIASES:
            continue
        if key not in top:
            walk.unknown(key, top + list(ALIASES))
            continue
        given.add(key)
        values[key] = value
    for alias, canonical in ALIASES.items():  # older names, read as the current ones
        if alias not in mapping:
            continue
        if canonical in values and values[canonical] != mapping[alias]:
            walk.error(alias, f"{mapping[alias]!r} and {canonical} {values[canonical]!r} are both given "
                       f"({alias} is older DLIO's name of {canonical}); give one")
            continue
        given.add(canonical)
        values[canonical] = mapping[alias]
        aliased.append((alias, canonical))

    v = dict(defaults)
    for key, spec in KEYS.items():
        if key in values:
            target = key if spec.field == "" else spec.field
            fallback = spec.fallback if spec.fallback is not None else v.get(target or key)
            checked = walk.value(key, spec.check, values[key], fallback)
            if target:
                v[target] = checked
    if "arrow" in values:  # the fork's section: checked, kept nowhere (its format is not emulated)
        walk.section("arrow", values["arrow"], ARROW_KEYS, set(), {})
    if "hdf5" in values:
        v["hdf5"] = HDF5Options(**walk.section("hdf5", values["hdf5"], HDF5_KEYS, given, vars(HDF5Options())))
    if "parquet" in values:
        v["parquet"] = ParquetOptions(**walk.section("parquet", values["parquet"], PARQUET_KEYS, given,
                                                     vars(ParquetOptions())))

    checked_values = Values(v, values)
    walk.rules(RULES_BEFORE_DIMS, checked_values)
    if v["record_dims"]:
        # DLIO: record_dims take priority over record_length_bytes
        size = checked_values.dims_bytes
        if "record_length_bytes" in values and v["record_length_bytes"] != size:
            walk.replaced.append(("record_length_bytes", f"{v['record_length_bytes']} is replaced by the {size} "
                                  f"bytes of record_dims {list(v['record_dims'])} of {checked_values.dtype.name} "
                                  "(record_dims take priority, as in DLIO)"))
        v["record_length_bytes"] = size
    walk.rules(RULES, checked_values)
    info = registry.info(v["format"])
    if info.derive is not None:
        info.derive(checked_values, walk.replaced)
    walk.rules(info.rules, checked_values)
    if walk.problems:
        raise DatasetSpecError("\n".join(walk.problems))
    return Checked(v, given, walk.replaced, aliased)


Derive = Callable[[Values, list[tuple[str, str]]], None]

__all__ = ["ALIASES", "COMPRESSIONS", "DatasetSpecError", "HDF5Options", "Key", "ParquetColumn", "ParquetOptions",
           "Rule", "Values", "validate"]
