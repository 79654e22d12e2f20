"""Every key of a DLIO workload file that we accept, with DLIO's default and what is valid.

The dataset section is declared by the data layer (``data/spec.py``) and checked there; the
other sections are declared here. A key is one of:

- ``Key``: a value with a default and a check. ``emulated`` says whether the key changes what
  we do; a key we accept but do not emulate carries the reason, and is reported once by name
  when a workload sets it.
- ``Alias``: another name for a key (a name DLIO ships in its files but reads under another
  name, or not at all); using it is said in the run's notes.
- ``Section``: a nested mapping of keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard


class Invalid(ValueError):
    """A value is not valid; the message says what is valid."""


Check = Callable[[Any], Any]


@dataclass(frozen=True)
class Key:
    default: Any
    check: Check
    #: True, or the reason we accept the key without emulating it
    emulated: bool | str = True


@dataclass(frozen=True)
class Alias:
    #: dotted path of the key this one stands for, from the top of the workload
    target: str
    #: what we say when a workload uses this name
    note: str


@dataclass(frozen=True)
class Section:
    keys: Mapping[str, Key | Alias | Section] = field(default_factory=dict)
    #: the whole section is accepted but not emulated (the reason)
    emulated: bool | str = True


# -- checks: each returns the normalised value or raises Invalid("what is valid") ------------
def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def integer(minimum: int | None = None) -> Check:
    def check(value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not _is_int(value) or (minimum is not None and value < minimum):
            raise Invalid(f"a whole number >= {minimum}" if minimum is not None else "a whole number")
        return value

    return check


def integer_or_unset(minimum: int) -> Check:
    """A whole number >= minimum, or -1 for DLIO's 'not set'."""

    def check(value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not _is_int(value) or (value != -1 and value < minimum):
            raise Invalid(f"a whole number >= {minimum}, or -1 (not set)")
        return value

    return check


def number(minimum: float | None = None) -> Check:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (minimum is not None and value < minimum):
            raise Invalid(f"a number >= {minimum:g}" if minimum is not None else "a number")
        return float(value)

    return check


def number_or_unset(minimum: float) -> Check:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (value != -1 and value < minimum):
            raise Invalid(f"a number >= {minimum:g}, or -1 (not set)")
        return float(value)

    return check


def fraction(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise Invalid("a fraction between 0 and 1 (0.90 means 90%)")
    return float(value)


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise Invalid("True or False")


def text(value: Any) -> str:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise Invalid("a string")


def optional_text(value: Any) -> str | None:
    return None if value is None else text(value)


def choice(*valid: str) -> Check:
    def check(value: Any) -> str:
        if isinstance(value, str) and value.lower() in valid:
            return value.lower()
        raise Invalid("one of " + ", ".join(valid))

    return check


def int_list(value: Any) -> list[int]:
    if isinstance(value, (list, tuple)) and all(_is_int(v) and v >= 0 for v in value):
        return list(value)
    raise Invalid("a list of whole numbers >= 0, such as [1024, 2048]")


def string_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise Invalid("a list of strings")


def mapping(value: Any) -> dict[Any, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    raise Invalid("a mapping of keys to values")


def anything(value: Any) -> Any:
    return value


def storage_options(value: Any) -> dict[str, Any] | None:
    """DLIO's storage.storage_options mapping; its ``columns`` (the MLCommons fork's parquet
    readers read the columns named there) is a list of column names, or null for all."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise Invalid("a mapping of options, such as {columns: [feature1, label]}")
    options = dict(value)
    columns = options.get("columns")
    if columns is not None:
        if isinstance(columns, str):
            columns = [columns]
        if not isinstance(columns, (list, tuple)) or not columns or not all(isinstance(c, str) and c for c in columns):
            raise Invalid("a mapping whose columns is a non-empty list of column names (or null: every column)")
        options["columns"] = list(columns)
    return options


def time_distribution(value: Any) -> Any:
    """A number of seconds or a distribution mapping (its parameters are checked with the
    sibling *_stdev key by compute.TimeDistribution.parse)."""
    if isinstance(value, Mapping) or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    raise Invalid("a number of seconds, or a mapping such as {type: normal, mean: 0.3, stdev: 0.05}")


SHUFFLE = choice("off", "seed", "random")
DATATYPES = choice("fp16", "bf16", "fp32", "fp64", "int8", "uint8")

NOT_EMULATED_LOADER = "the loader is emulated generically (threads + prefetch queue)"
NOT_EMULATED_STORAGE = "the storage under test comes from --iobench-storage / --iobench-root"
#: keys in DLIO's own workload files that no version of DLIO's config loader reads
READ_BY_NO_DLIO = "in DLIO's configs/workload/dlrm.yaml, but DLIO's config loader reads no such key either"
#: parquet reader options of the MLCommons fork (storage.storage_options) we do not emulate
PARQUET_READER_OPTIONS = {
    "row_group_cache_size": "a row group is read once and shared by the handles of its file in the process "
                            "until each of its rows was read, at most 128 MiB held (data/formats/parquet.py RowGroups)",
    "metadata_cache": "a file's footer is read once while any handle of it is open in the process",
    "memory_map": "reads go through the storage layer (no memory map)",
    "file_cache": "a read thread keeps up to 16 files open (loader.OPEN_FILES_PER_THREAD)",
}

#: every section except dataset, with DLIO's defaults
SCHEMA = Section({
    "model": Section({
        "name": Key("default", text),
        "type": Key(None, optional_text, "a label: the layout follows from the other model keys"),
        "model_size_bytes": Key(10240, integer(0)),
        "model_size": Alias(
            "model.model_size_bytes",
            "model.model_size (in DLIO's unet3d files; DLIO itself ignores it) is read as "
            "model.model_size_bytes: the size in bytes of the model state a checkpoint writes"),
        "model_datatype": Key("fp16", DATATYPES),
        "optimizer_datatype": Key("fp32", DATATYPES),
        "num_layers": Key(-1, integer_or_unset(1)),
        "layer_parameters": Key([], int_list),
        "optimization_groups": Key([], int_list),
        "parallelism": Section({
            "tensor": Key(1, integer(1)),
            "pipeline": Key(1, integer(1)),
            "data": Key(-1, integer_or_unset(1)),
            "zero_stage": Key(0, integer_or_unset(0)),
        }),
        "transformer": Section({
            "vocab_size": Key(32000, integer(1)),
            "hidden_size": Key(2048, integer(1)),
            "ffn_hidden_size": Key(8192, integer(1)),
            "num_attention_heads": Key(32, integer(1)),
            "num_kv_heads": Key(8, integer(1)),
        }),
    }),
    "framework": Key("tensorflow", choice("pytorch", "tensorflow", "jax"), NOT_EMULATED_LOADER),
    "workflow": Section({
        "generate_data": Key(False, boolean,
                             "the dataset is generated when missing and reused when its manifest matches"),
        "train": Key(True, boolean),
        "evaluation": Key(False, boolean),
        "checkpoint": Key(False, boolean),
        "profiling": Key(False, boolean, "no profiler is run"),
        "debug": Key(False, boolean, "DLIO's debug switch (in DLIO's bert_v100.yaml, read by DLIO's older "
                     "config loaders); it changes no figure, and this harness has no debug mode"),
        "do_eval": Key(False, boolean, READ_BY_NO_DLIO + " (workflow.evaluation turns evaluation on)"),
    }),
    "storage": Section({
        "storage_type": Key("local_fs", choice("local_fs", "parallel_fs", "s3", "aistore", "adls_gen2", "daos"),
                            NOT_EMULATED_STORAGE),
        "storage_root": Key("./", text, NOT_EMULATED_STORAGE),
        # columns takes effect (parquet column projection); the other options are reported
        # by name (config._cross_checks)
        "storage_options": Key(None, storage_options),
        "storage_library": Key(None, optional_text, NOT_EMULATED_STORAGE + " (the MLCommons fork's key)"),
        # the MLCommons fork's pause after generating a dataset, for eventually consistent
        # stores (mpi/training.settle; --iobench-settle overrides it)
        "post_generation_settle_seconds": Key(0, number(0)),
    }),
    "reader": Section({
        "data_loader": Key("tensorflow", choice("pytorch", "tensorflow", "dali", "native_dali", "synthetic", "custom"),
                           NOT_EMULATED_LOADER),
        "batch_size": Key(1, integer(1)),
        "batch_size_eval": Key(1, integer(1)),
        "read_threads": Key(1, integer(0)),
        "computation_threads": Key(1, integer(1), "simulated compute is a sleep; it needs no threads"),
        "write_threads": Key(1, integer(1), "the MLCommons fork's generation threads; datasets are generated "
                             "by the data layer with its own thread count"),
        "prefetch_size": Key(2, integer(0)),
        "file_shuffle": Key("off", SHUFFLE),
        "sample_shuffle": Key("off", SHUFFLE),
        "shuffle_size": Key(1024, integer(1)),
        "read_type": Key("on_demand", choice("on_demand", "memory"),
                         "every sample is read from storage when the loader asks for it"),
        "transfer_size": Key(None, lambda v: None if v is None else integer(1)(v),
                             "each sample is read with the requests its format needs"),
        "odirect": Key(False, boolean),
        "preprocess_time": Key(0, time_distribution),
        "preprocess_time_stdev": Key(None, lambda v: None if v is None else number(0)(v)),
        "multiprocessing_context": Key("fork", choice("fork", "spawn", "forkserver"),
                                       "read workers are threads"),
        "pin_memory": Key(True, boolean, "no accelerator memory is involved"),
        "dont_use_mmap": Key(False, boolean, "reads go through the storage layer"),
        "reader_classname": Key(None, optional_text, "the format's reader is ours"),
        "data_loader_classname": Key(None, optional_text, NOT_EMULATED_LOADER),
        "data_loader_sampler": Key(None, lambda v: None if v is None else choice("iterative", "index")(v),
                                   "one sampler: shuffled files, then shuffled samples, sharded by rank"),
        "file_access": Key("multi", choice("multi", "shared", "collective"), "one file per sample group"),
        "transformed_record_dims": Key([], int_list, "samples are not transformed"),
        "transformed_record_element_type": Key("uint8", text, "samples are not transformed"),
    }),
    "train": Section({
        "epochs": Key(1, integer(1)),
        "computation_time": Key(0, time_distribution),
        "computation_time_stdev": Key(None, lambda v: None if v is None else number(0)(v)),
        "total_training_steps": Key(-1, integer_or_unset(1)),
        "seed_change_epoch": Key(True, boolean),
        "seed": Key(123, integer(0)),
        "total_eval_steps": Key(-1, integer_or_unset(1), READ_BY_NO_DLIO),
    }),
    "evaluation": Section({
        "eval_time": Key(0, time_distribution),
        "eval_time_stdev": Key(None, lambda v: None if v is None else number(0)(v)),
        "eval_after_epoch": Key(1, integer(1)),
        # 0 is in the MLCommons fork's dlrm_s3dlio_s3.yaml, with evaluation off (config._cross_checks)
        "epochs_between_evals": Key(1, integer(0)),
        "steps_between_evals": Key(-1, integer_or_unset(1), READ_BY_NO_DLIO),
    }),
    "checkpoint": Section({
        "checkpoint_folder": Key("./checkpoints/", text),
        "checkpoint_after_epoch": Key(1, integer(1)),
        "epochs_between_checkpoints": Key(1, integer(1)),
        "steps_between_checkpoints": Key(-1, integer_or_unset(1)),
        "type": Key("rank_zero", choice("rank_zero", "all_ranks")),
        "fsync": Key(False, boolean),
        "num_checkpoints_write": Key(-1, integer_or_unset(0)),
        "num_checkpoints_read": Key(-1, integer_or_unset(0)),
        "time_between_checkpoints": Key(-1, number_or_unset(0)),
        "mode": Key("default", choice("default", "subset")),
        "randomize_tensor": Key(True, boolean),
        "rank_sync": Key(False, boolean),
        "recovery_rank_shift": Key(False, boolean, "every rank reads back the shards it wrote"),
        "checkpoint_mechanism_classname": Key(None, optional_text, "the checkpoint writer is ours"),
        "ksm": Key(None, anything, "no kernel same-page merging"),
        "model_size": Alias(
            "model.model_size_bytes",
            "checkpoint.model_size (in DLIO's unet3d files; DLIO itself ignores it) is read as "
            "model.model_size_bytes: the size in bytes of the model state a checkpoint writes"),
        "model_datatype": Alias("model.model_datatype",
                                "checkpoint.model_datatype (in DLIO's llama files) is read as model.model_datatype"),
        "optimizer_datatype": Alias("model.optimizer_datatype",
                                    "checkpoint.optimizer_datatype (in DLIO's llama files) is read as "
                                    "model.optimizer_datatype"),
        # where DLIO's older config loaders read the model's layout (its megatron_deepspeed.yaml)
        **{name: Alias(target, f"checkpoint.{name} (where DLIO's older config loaders read it) is read as {target}")
           for name, target in (("optimization_groups", "model.optimization_groups"),
                                ("num_layers", "model.num_layers"),
                                ("layer_parameters", "model.layer_parameters"),
                                ("tensor_parallelism", "model.parallelism.tensor"),
                                ("pipeline_parallelism", "model.parallelism.pipeline"))},
    }),
    "output": Section({
        "folder": Key(None, optional_text),
        "log_file": Key("dlio.log", text),
        "metric": Section({
            "exclude_start_steps": Key(1, integer(0)),
            "exclude_end_steps": Key(0, integer(0)),
        }),
    }),
    "metric": Section({
        "au": Key(0.90, fraction),
    }),
    "profiling": Section({
        "profiler": Key("iostat", text, "no profiler is run"),
        "iostat_devices": Key([], string_list, "no profiler is run"),
    }, emulated="no profiler is run"),
    # in the MLCommons fork's dlrm_s3dlio_*.yaml; no DLIO's config loader reads it (DLIO's log
    # level comes from the DLIO_LOG_LEVEL environment variable)
    "logging": Section({
        "verbosity": Key("warning", choice("debug", "info", "warning", "warn", "error", "critical")),
    }, emulated="no DLIO's config loader reads a logging section (DLIO takes its log level from "
                "DLIO_LOG_LEVEL); this harness's output is pytest's"),
})

#: sections whose name has a DLIO synonym
SECTION_ALIASES = {"data_reader": "reader"}
