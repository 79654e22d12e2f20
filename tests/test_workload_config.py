"""Workload configuration: DLIO's files load unchanged, overrides, validation before anything
runs (unknown key -> nearest valid key; bad value -> which key and what is valid), keys
accepted but not emulated reported once, and every emulated key read somewhere."""

from __future__ import annotations

import pathlib
import re

import pytest
import yaml

from pytest_iobench.workload.compute import TimeDistribution
from pytest_iobench.workload.config import (
    WorkloadError,
    available_workloads,
    load_mapping,
    load_workload,
    parse_override,
)
from pytest_iobench.workload.schema import SCHEMA, Key, Section

SHIPPED = available_workloads()
PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "pytest_iobench"
ROOT = PACKAGE.parent


def errors_of(data, overrides=()) -> str:
    with pytest.raises(WorkloadError) as info:
        load_mapping(data, "t", overrides)
    return str(info.value)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_workload_loads(name):
    config = load_workload(name)
    assert config.reader.batch_size >= 1
    assert config.dataset is not None
    assert 0 < config.metric.au <= 1


def test_shipped_set_is_complete():
    for name in ("unet3d_h100", "resnet50_h100", "cosmoflow_h100", "dlrm_parquet_h100",
                 "unet3d_small", "resnet50_small", "cosmoflow_small", "dlrm_parquet_small",
                 "llama3-8b", "llama3-70b", "llama3-405b", "llama3-1t"):
        assert name in SHIPPED


# MLPerf Storage's workload table (docs: dlio-compat reference): format, record bytes, files,
# samples per file, batch, seconds of compute per step, AU floor
REFERENCE = {
    "unet3d_h100": ("npz", 146600628, 168, 1, 7, 0.323, 0.90),
    "resnet50_h100": ("tfrecord", 114660, 1024, 1251, 400, 0.224, 0.90),
    "cosmoflow_h100": ("tfrecord", 2828486, 524288, 1, 1, 0.00350, 0.70),
    "dlrm_parquet_h100": ("parquet", 761, 1024, 4718592, 16384, 0.000375, 0.70),
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_shipped_h100_workloads_match_the_reference_table(name):
    config = load_workload(name)
    ds = config.dataset
    got = (ds.format, int(ds.record_length_bytes), ds.num_files_train, ds.num_samples_per_file,
           config.reader.batch_size, config.train.computation_time.mean, config.metric.au)
    assert got == REFERENCE[name]


def test_unet3d_as_dlio_ships_it():
    config = load_workload("unet3d_h100")
    assert (config.dataset.format, config.dataset.num_files_train, config.reader.batch_size) == ("npz", 168, 7)
    assert config.reader.read_threads == 4
    assert config.train.computation_time == TimeDistribution("fixed", {"value": 0.323})
    assert (config.reader.file_shuffle, config.reader.sample_shuffle) == ("seed", "seed")
    assert config.metric.au == 0.90
    # model.model_size, which DLIO ignores, is read with its evident meaning and said so
    assert config.model.model_size_bytes == 499153191
    assert any("model.model_size" in note and "model_size_bytes" in note for note in config.notes)


def test_dlio_defaults_fill_what_the_file_omits():
    config = load_mapping({}, "empty")
    assert config.reader.batch_size == 1 and config.reader.prefetch_size == 2 and config.reader.read_threads == 1
    assert config.train.epochs == 1 and config.train.seed == 123 and config.train.seed_change_epoch is True
    assert config.output.metric.exclude_start_steps == 1 and config.output.metric.exclude_end_steps == 0
    assert config.checkpoint.fsync is False and config.checkpoint.num_checkpoints_write == -1
    assert config.model.parallelism.tensor == 1 and config.model.transformer.vocab_size == 32000
    assert config.metric.au == 0.90
    assert config.dataset.num_files_train == 8 and config.dataset.record_length_bytes == 65536


def test_hydra_workload_wrapper_and_data_reader_alias(tmp_path):
    path = tmp_path / "wrapped.yaml"
    path.write_text(yaml.safe_dump({"workload": {"data_reader": {"batch_size": 5}, "train": {"epochs": 3}}}))
    config = load_workload(str(path))
    assert config.reader.batch_size == 5 and config.train.epochs == 3
    assert config.name == "wrapped"
    # an override may use either name of the section
    assert load_workload(str(path), ["data_reader.batch_size=7"]).reader.batch_size == 7
    assert load_workload(str(path), ["reader.batch_size=9"]).reader.batch_size == 9


def test_model_given_as_a_name():
    config = load_mapping({"model": "resnet50"})
    assert config.model.name == "resnet50"
    assert any("model.name" in note for note in config.notes)


def test_overrides_apply_and_are_validated():
    config = load_workload("unet3d_h100", ["dataset.num_files_train=8", "++workload.reader.batch_size=3",
                                           "train.computation_time={type: uniform, min: 0.1, max: 0.2}",
                                           "evaluation.eval_time=0.5"])
    assert config.dataset.num_files_train == 8 and config.reader.batch_size == 3
    assert config.train.computation_time == TimeDistribution("uniform", {"min": 0.1, "max": 0.2})
    assert config.evaluation.eval_time.mean == 0.5
    assert config.overrides[0] == "dataset.num_files_train=8"
    again = config.with_overrides(["train.epochs=2"])
    assert again.train.epochs == 2 and again.dataset.num_files_train == 8


def test_parse_override_forms():
    assert parse_override("reader.batch_size=8") == (["reader", "batch_size"], 8)
    assert parse_override("++workload.workflow.train=False") == (["workflow", "train"], False)
    with pytest.raises(WorkloadError, match=re.escape("section.key=value")):
        parse_override("reader.batch_size")


def test_unknown_key_names_the_nearest_valid_key():
    message = errors_of({"reader": {"batchsize": 4}})
    assert "reader.batchsize: unknown key; did you mean reader.batch_size?" in message
    # a key in the wrong section is found where it belongs
    assert "did you mean reader.read_threads?" in errors_of({"train": {"read_threads": 4}})
    assert "did you mean dataset.num_files_train?" in errors_of({"dataset": {"num_file_train": 4}})
    assert "readr: unknown key; did you mean reader?" in errors_of({"readr": {}})
    # dataset and data_reader are sections too, though validated apart
    message = errors_of({"datset": {}})
    assert "datset: unknown key; did you mean dataset?" in message
    assert {"dataset", "data_reader"} <= set(message.split("valid in the workload: ")[1].rstrip(")").split(", "))
    assert "data_readr: unknown key; did you mean data_reader?" in errors_of({"data_readr": {}})


def test_unknown_key_in_an_override_is_an_error():
    message = errors_of({}, ["reader.bach_size=3"])
    assert "reader.bach_size: unknown key; did you mean reader.batch_size?" in message


@pytest.mark.parametrize("data,expected", [
    ({"reader": {"read_threads": -1}}, "reader.read_threads: -1 is not valid; give a whole number >= 0"),
    ({"reader": {"batch_size": "eight"}}, "reader.batch_size: 'eight' is not valid; give a whole number >= 1"),
    ({"reader": {"file_shuffle": "yes"}}, "reader.file_shuffle: 'yes' is not valid; give one of off, seed, random"),
    ({"metric": {"au": 90}}, "metric.au: 90 is not valid; give a fraction between 0 and 1"),
    ({"train": {"computation_time": {"type": "lognormal", "mean": 1}}},
     "train.computation_time: unknown distribution type 'lognormal'; "
     "valid: normal, uniform, gamma, exponential, poisson"),
    ({"train": {"computation_time": {"type": "gamma", "shape": 2}}},
     "train.computation_time: a gamma distribution takes shape, scale; missing scale"),
    ({"train": {"computation_time": -1}}, "train.computation_time: the time must be a number >= 0"),
    ({"train": {"computation_time": {"type": "uniform", "min": 0.1, "max": 0.2}, "computation_time_stdev": 0.01}},
     "train.computation_time_stdev: applies to a number of seconds or a normal distribution only; "
     "train.computation_time is a uniform distribution"),
    ({"evaluation": {"eval_time": {"type": "gamma", "shape": 1, "scale": 1}, "eval_time_stdev": 0}},
     "evaluation.eval_time_stdev: applies to a number of seconds or a normal distribution only"),
    ({"reader": {"preprocess_time": {"type": "poisson", "lam": 1}, "preprocess_time_stdev": 0.1}},
     "reader.preprocess_time_stdev: applies to a number of seconds or a normal distribution only"),
    ({"checkpoint": {"num_checkpoints_write": 2, "num_checkpoints_read": 3}},
     "checkpoint.num_checkpoints_read: 3 is more than the 2 checkpoints written"),
    ({"model": {"parallelism": {"pipeline": 2, "zero_stage": 3}}}, "zero_stage 3"),
    ({"reader": 5}, "reader: a section (a mapping of keys), not 5"),
    ({"workflow": {"train": "maybe"}}, "workflow.train: 'maybe' is not valid; give True or False"),
    ({"workflow": {"evaluation": True}},
     "workflow.evaluation: True needs evaluation files but dataset.num_files_eval is 0; "
     "give dataset.num_files_eval > 0 or workflow.evaluation: False"),
])
def test_bad_values_name_the_key_and_what_is_valid(data, expected):
    assert expected in errors_of(data)


@pytest.mark.parametrize("time", [0.1, {"mean": 0.1}, {"type": "normal", "mean": 0.1}])
def test_a_sibling_stdev_makes_a_number_or_normal_time_normal(time):
    config = load_mapping({"train": {"computation_time": time, "computation_time_stdev": 0.02}}, "t")
    assert config.train.computation_time.to_dict() == {"type": "normal", "mean": 0.1, "stdev": 0.02}


def test_every_problem_is_reported_at_once():
    message = errors_of({"reader": {"batch_size": 0, "prefetch": 2}, "train": {"epochs": 0}})
    assert message.startswith("workload t (<t>): 3 problems")
    for part in ("reader.batch_size", "reader.prefetch", "train.epochs"):
        assert part in message


def test_alias_conflict_is_an_error():
    message = errors_of({"model": {"model_size": 5, "model_size_bytes": 6}})
    assert "model.model_size: 5 and model.model_size_bytes: 6 both set" in message


@pytest.mark.parametrize("override", ["model.model_size_bytes=1000", "model.model_size=1000"])
def test_an_override_replaces_the_files_value_under_either_name(override):
    # DLIO's unet3d file says model.model_size (DLIO's alias); the override wins whichever name it uses
    assert load_workload("unet3d_h100").model.model_size_bytes != 1000
    assert load_workload("unet3d_h100", [override]).model.model_size_bytes == 1000


def test_not_emulated_keys_are_listed_once_by_name():
    config = load_mapping({"framework": "pytorch", "reader": {"computation_threads": 8, "data_loader": "pytorch",
                                                              "batch_size": 4},
                           "profiling": {"profiler": "iostat"}})
    line = config.describe_not_emulated()
    for key in ("framework", "reader.computation_threads", "reader.data_loader", "profiling"):
        assert line.count(key + " (") == 1, line
    assert "reader.batch_size" not in line  # emulated keys are not listed
    assert load_mapping({"reader": {"batch_size": 4}}).describe_not_emulated() == ""


def test_unknown_workload_name_suggests_a_known_one():
    with pytest.raises(WorkloadError, match=r"unknown workload 'unet3d_h10'; did you mean 'unet3d_h100'\?"):
        load_workload("unet3d_h10")
    with pytest.raises(WorkloadError, match="does not exist"):
        load_workload("/nonexistent/w.yaml")


def test_not_a_mapping_and_not_yaml(tmp_path):
    bad = tmp_path / "list.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(WorkloadError, match="a workload file is a mapping of sections"):
        load_workload(str(bad))
    broken = tmp_path / "broken.yaml"
    broken.write_text("reader: {batch_size: 4\n")
    with pytest.raises(WorkloadError, match="not valid YAML"):
        load_workload(str(broken))


def _emulated_keys(section: Section, prefix: str = ""):
    for name, spec in section.keys.items():
        if isinstance(spec, Section):
            if spec.emulated is True:
                yield from _emulated_keys(spec, f"{prefix}{name}.")
        elif isinstance(spec, Key) and spec.emulated is True:
            yield prefix + name, name


def test_every_emulated_key_is_read_by_the_code():
    """A key declared emulated must be read outside its declaration (config.<section>.<key>)."""
    sources = "\n".join(p.read_text() for d in ("workload", "mpi") for p in (PACKAGE / d).glob("*.py")
                        if p.name != "schema.py")
    unread = [path for path, name in _emulated_keys(SCHEMA)
              if not re.search(rf"\.{re.escape(name)}\b", sources) and name not in ("name",)]
    assert not unread, f"declared emulated but never read: {unread}"


def test_plugin_rejects_a_bad_override_before_running(pytester):
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--iobench-set", "reader.batch_sise=4")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*reader.batch_sise: unknown key; did you mean reader.batch_size?*"])
    result.stdout.no_fnmatch_line("*test_x*")


def test_plugin_rejects_an_unknown_workload(pytester):
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--iobench-workload", "resnet5O_small")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown workload 'resnet5O_small'; did you mean 'resnet50_small'?*"])


def test_plugin_parametrizes_workloads_and_ranks(pytester):
    pytester.makepyfile(
        "def test_t(training_workload, ranks):\n    assert training_workload.workflow.train\n"
        "def test_c(checkpoint_workload, ranks):\n    assert checkpoint_workload.workflow.checkpoint\n")
    result = pytester.runpytest("--collect-only", "-q", "--iobench-ranks=1,2",
                                "--iobench-workload=unet3d_small,llama3-8b")
    result.stdout.fnmatch_lines(["*test_t[[]unet3d_small-r1[]]", "*test_t[[]unet3d_small-r2[]]",
                                 "*test_c[[]llama3-8b-r1[]]", "*test_c[[]llama3-8b-r2[]]"])


def test_dlios_bert_file_loads_with_workflow_debug_reported_by_name():
    # the keys of DLIO's bert_v100.yaml that matter here (written here: the interop tier,
    # benchmarks/interop_dlio.py, loads every workload file of the installed DLIO)
    config = load_mapping({"model": "bert", "framework": "tensorflow",
                           "workflow": {"generate_data": False, "train": True, "debug": False, "checkpoint": True},
                           "dataset": {"data_folder": "data/bert", "format": "tfrecord", "num_files_train": 500,
                                       "num_samples_per_file": 313532, "record_length_bytes": 2500,
                                       "file_prefix": "part"},
                           "reader": {"data_loader": "tensorflow", "batch_size": 48, "read_threads": 1,
                                      "file_shuffle": "seed", "sample_shuffle": "seed", "transfer_size": 262144},
                           "train": {"epochs": 1, "computation_time": 0.968, "total_training_steps": 1000},
                           "checkpoint": {"checkpoint_folder": "checkpoints/megatron-deepspeed",
                                          "steps_between_checkpoints": 250, "model_size": 4034713312}})
    assert config.workflow.checkpoint and config.checkpoint.steps_between_checkpoints == 250
    assert "workflow.debug" in config.not_emulated and "reader.transfer_size" in config.not_emulated
    assert "workflow.debug (DLIO's debug switch" in config.describe_not_emulated()


def test_the_forks_logging_section_loads_and_is_reported_by_name():
    # the MLCommons fork's dlrm_s3dlio_*.yaml end with a top-level logging section no DLIO reads
    config = load_mapping({"framework": "pytorch", "dataset": {"format": "parquet"}, "logging": {"verbosity": "INFO"}})
    assert config.logging.verbosity == "info"
    assert "logging" in config.not_emulated and "DLIO_LOG_LEVEL" in config.not_emulated["logging"]
    with pytest.raises(WorkloadError, match=r"logging.verbosty: unknown key; did you mean logging.verbosity\?"):
        load_mapping({"logging": {"verbosty": "INFO"}})
    with pytest.raises(WorkloadError, match=r"logging.verbosity: 'loud' is not valid; give one of debug, info"):
        load_mapping({"logging": {"verbosity": "loud"}})


def test_epochs_between_evals_0_loads_with_evaluation_off_only():
    # the fork's dlrm_s3dlio_s3.yaml: evaluation off, evaluation.epochs_between_evals: 0
    config = load_mapping({"workflow": {"train": True}, "evaluation": {"eval_time": 0.0, "epochs_between_evals": 0}})
    assert not config.workflow.evaluation and config.evaluation.epochs_between_evals == 0
    assert "evaluation.epochs_between_evals" in config.not_emulated
    with pytest.raises(WorkloadError, match=r"evaluation.epochs_between_evals: 0 is valid with workflow.evaluation "
                                            r"False only .*; give 1 or more"):
        load_mapping({"workflow": {"evaluation": True}, "dataset": {"num_files_eval": 2},
                      "evaluation": {"epochs_between_evals": 0}})
    with pytest.raises(WorkloadError,
                       match=r"evaluation.epochs_between_evals: -1 is not valid; give a whole number >= 0"):
        load_mapping({"evaluation": {"epochs_between_evals": -1}})


def test_a_training_run_without_evaluation_generates_no_eval_file():
    # DLIO's resnet50_v100.yaml asks for 50,000 eval files and never evaluates
    config = load_mapping({"workflow": {"train": True, "evaluation": False},
                           "dataset": {"num_files_train": 256, "num_files_eval": 50000, "num_subfolders_eval": 4}})
    assert config.dataset.num_files_eval == 0 and config.dataset.file_keys("eval") == []
    assert "50000 files are not generated (valid/ is made, empty" in config.not_emulated["dataset.num_files_eval"]
    assert config.dataset.digest() == load_mapping({"dataset": {"num_files_train": 256}}).dataset.digest()
    evaluating = load_mapping({"workflow": {"evaluation": True}, "dataset": {"num_files_eval": 8}})
    assert evaluating.dataset.num_files_eval == 8
    generate_only = load_mapping({"workflow": {"generate_data": True, "train": False},
                                  "dataset": {"num_files_eval": 8}})
    assert generate_only.dataset.num_files_eval == 8  # generated for a later run, which may evaluate


def test_keys_dlio_ships_but_reads_under_other_names_or_not_at_all():
    # DLIO's dlrm.yaml sets workflow.do_eval, train.total_eval_steps, evaluation.steps_between_evals,
    # which no DLIO reads: accepted, each reported by name; evaluation stays off, as in DLIO
    config = load_mapping({"workflow": {"do_eval": True}, "train": {"total_eval_steps": 2048},
                           "evaluation": {"steps_between_evals": 16384}})
    assert not config.workflow.evaluation
    for key in ("workflow.do_eval", "train.total_eval_steps", "evaluation.steps_between_evals"):
        assert key in config.not_emulated
    # older DLIO read the model's layout under checkpoint (its megatron_deepspeed.yaml)
    config = load_mapping({"checkpoint": {"num_layers": 44, "optimization_groups": [1, 2], "tensor_parallelism": 2,
                                          "layer_parameters": [3, 4], "pipeline_parallelism": 2}})
    model = config.model
    assert (model.num_layers, model.optimization_groups, model.layer_parameters) == (44, [1, 2], [3, 4])
    assert (config.model.parallelism.tensor, config.model.parallelism.pipeline) == (2, 2)
    assert any("checkpoint.num_layers" in n and "model.num_layers" in n for n in config.notes)
    # the MLCommons fork's keys
    config = load_mapping({"storage": {"storage_library": "s3dlio", "post_generation_settle_seconds": 5},
                           "reader": {"write_threads": 4}})
    assert {"storage.storage_library", "reader.write_threads"} <= set(config.not_emulated)
    assert "storage.post_generation_settle_seconds" not in config.not_emulated  # emulated: test_settle.py


def test_a_value_yaml_read_as_a_boolean_is_quoted_as_the_file_wrote_it(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text("reader:\n  file_shuffle: yes\n  sample_shuffle: off\n")
    with pytest.raises(WorkloadError) as info:
        load_workload(str(path))
    message = str(info.value)
    assert "reader.file_shuffle: 'yes' (read as True) is not valid; give one of off, seed, random" in message
    assert "reader.sample_shuffle: 'off' (read as False) is not valid" in message
    with pytest.raises(WorkloadError, match=r"reader.file_shuffle: 'on' \(read as True\) is not valid"):
        load_mapping({}, "t", ["reader.file_shuffle=on"])
    # what YAML did not change is shown as it is
    assert "reader.batch_size: 'eight' is not valid" in errors_of({"reader": {"batch_size": "eight"}})


def test_prefetch_size_0_is_said_to_read_one_batch_per_thread_ahead():
    config = load_mapping({"reader": {"prefetch_size": 0, "read_threads": 4}})
    assert any(n.startswith("reader.prefetch_size: 0 is read as 1 batch per read thread (4 read ahead)")
               for n in config.notes)
    no_prefetch = load_mapping({"reader": {"prefetch_size": 0, "read_threads": 0}})
    assert not any("prefetch_size" in n for n in no_prefetch.notes)


def test_keys_this_kind_of_run_does_not_use_are_reported_by_name():
    config = load_mapping({"workflow": {"checkpoint": False},
                           "checkpoint": {"checkpoint_folder": "c", "epochs_between_checkpoints": 2},
                           "evaluation": {"eval_time": 0.1}, "reader": {"batch_size_eval": 4}})
    for key in ("checkpoint.checkpoint_folder", "checkpoint.epochs_between_checkpoints"):
        assert config.not_emulated[key] == "workflow.checkpoint is False: no checkpoint is written"
    for key in ("evaluation.eval_time", "reader.batch_size_eval"):
        assert config.not_emulated[key] == "workflow.evaluation is False: no evaluation runs"
    # a training run that checkpoints reads none back and paces none in time (checkpoint-only runs do)
    config = load_mapping({"workflow": {"checkpoint": True},
                           "checkpoint": {"num_checkpoints_read": 2, "time_between_checkpoints": 5,
                                          "num_checkpoints_write": 3}})
    assert {"checkpoint.num_checkpoints_read", "checkpoint.time_between_checkpoints"} <= set(config.not_emulated)
    assert "checkpoint.num_checkpoints_write" not in config.not_emulated
    checkpoint_only = load_workload("llama3-8b")
    assert not any(k.startswith("checkpoint.") for k in checkpoint_only.not_emulated)
    assert not any(k.startswith(("checkpoint.", "evaluation.")) for k in load_workload("resnet50_h100").not_emulated)


def test_parquet_columns_come_from_storage_options_as_in_the_mlcommons_fork():
    dataset = {"format": "parquet", "num_samples_per_file": 64, "record_length_bytes": 1024,
               "parquet": {"columns": [{"name": "label", "dtype": "int64", "size": 1}, {"name": "feature"}]}}
    config = load_mapping({"dataset": dataset, "storage": {"storage_options": {"columns": ["label"],
                                                                                "row_group_cache_size": 8}}})
    assert config.storage.storage_options["columns"] == ["label"]
    assert "storage.storage_options.columns" not in config.not_emulated
    assert "storage.storage_options.row_group_cache_size" in config.not_emulated
    message = errors_of({"dataset": dataset, "storage": {"storage_options": {"columns": ["lable"]}}})
    assert "storage.storage_options.columns: 'lable' is not a column of the dataset; its columns " \
           "(dataset.parquet.columns): label, feature" in message
    npz = load_mapping({"dataset": {"format": "npz"}, "storage": {"storage_options": {"columns": ["x"]}}})
    assert npz.not_emulated["storage.storage_options.columns"].startswith("applies to parquet only")
    assert "storage.storage_options: 5 is not valid" in errors_of({"storage": {"storage_options": 5}})


def test_an_override_can_name_the_workload_it_applies_to(pytester):
    pytester.makepyfile("def test_t(training_workload):\n"
                        "    print('W', training_workload.name, training_workload.dataset.num_files_train,"
                        " training_workload.train.epochs)\n")
    result = pytester.runpytest("-s", "--iobench-workload=unet3d_h100,cosmoflow_h100",
                                "--iobench-set", "unet3d_h100:dataset.num_files_train=8",
                                "--iobench-set", "train.epochs=2")
    result.stdout.fnmatch_lines(["*W unet3d_h100 8 2*", "*W cosmoflow_h100 524288 2*"])
    bad = pytester.runpytest("--iobench-workload=unet3d_h100", "--iobench-set", "unet3d_h10:dataset.num_files_train=8")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--iobench-set unet3d_h10:dataset.num_files_train=8: workload 'unet3d_h10' is not run "
                              "in this session (workloads: unet3d_h100)*"])


#: credentials as a workload file gives them (as the MLCommons fork's unet3d_h100_s3.yaml does)
WORKLOAD_CREDENTIALS = {"access_key_id": "AKIAWORKLOADFILE7777", "secret_access_key": "WorkloadFile/Secret+9x",
                        "url_password": "UrlPassw0rdInEndpoint", "override_token": "OverrideSessionTok3n"}


def test_a_workload_files_credentials_reach_no_file_the_run_writes_nor_the_terminal(pytester, tmp_path):
    """Every file a run writes (the result document, the Markdown and HTML reports, DLIO's
    output files, the dataset and its manifest) is read back and searched for each credential,
    and so is everything the run printed."""
    c = WORKLOAD_CREDENTIALS
    workload = pytester.path / "creds.yaml"
    workload.write_text(yaml.safe_dump({
        "model": {"name": "creds"}, "framework": "pytorch",
        "workflow": {"generate_data": True, "train": True},
        "storage": {"storage_type": "s3", "storage_root": "bucket", "storage_options": {
            "endpoint_url": f"http://minio:{c['url_password']}@127.0.0.1:9000",
            "access_key_id": c["access_key_id"], "secret_access_key": c["secret_access_key"]}},
        "dataset": {"data_folder": "data/creds", "format": "npz", "num_files_train": 8, "record_length_bytes": 4096},
        "reader": {"data_loader": "pytorch", "batch_size": 2, "read_threads": 1},
        "train": {"epochs": 1, "computation_time": 0.001},
        "metric": {"au": 0},  # no AU floor: how busy the machine is must not decide this test
    }))
    pytester.makepyfile(test_training=(ROOT / "suites" / "test_training.py").read_text())
    root = tmp_path / "root"
    result = pytester.runpytest_subprocess(
        f"--iobench-workload={workload}", "--iobench-storage=local", "--iobench-libraries=posix",
        f"--iobench-root={root}", "--iobench-report=md,html",
        "--iobench-set", f"storage.storage_options.session_token={c['override_token']}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    written = [p for base in (pytester.path, root) for p in base.rglob("*") if p.is_file() and p != workload]
    assert any(p.parent.name == "reports" and p.suffix == ".json" for p in written)
    assert any(p.name == "summary.json" for p in written), "DLIO's output files were written"
    for path in written:
        data = path.read_bytes()
        for name, secret in c.items():
            assert secret.encode() not in data, f"{name} is in {path}"
    output = result.stdout.str() + result.stderr.str()
    assert not [name for name, secret in c.items() if secret in output]
    # the job the ranks get (a file under mpiexec) carries none either
    from pytest_iobench.workload.job import config_payload

    config = load_workload(str(workload), [f"storage.storage_options.session_token={c['override_token']}"])
    payload = yaml.safe_dump(config_payload(config))
    assert not [name for name, secret in c.items() if secret in payload]
    assert "http://***@127.0.0.1:9000" in payload and "session_token=***" in payload
