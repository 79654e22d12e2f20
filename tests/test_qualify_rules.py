"""Every qualification rule: a run that keeps it is labelled CLOSED, and one that breaks it
gets the rule's label and reason."""

from __future__ import annotations

import pytest

from pytest_iobench.qualify.rules import (
    CHECKPOINT_PROCESSES,
    CHECKPOINT_RULES,
    CLOSED,
    INVALID,
    OPEN,
    RULES,
    SUBSET_PROCESSES,
    CheckpointPlan,
    CheckpointResults,
    Plan,
    Results,
    check,
    checkpoint_model,
    checkpoint_processes,
    label,
    override_key,
    reasons,
)
from pytest_iobench.workload.config import load_workload

MiB = 1024 ** 2
GiB = 1024 ** 3


def plan(*overrides, workload="unet3d_small", memory=4 * MiB, accelerators=4, min_steps=1, hosts=1):
    return Plan(load_workload(workload, list(overrides)), hosts=hosts, host_memory_bytes=memory,
                accelerators=accelerators, min_steps=min_steps)


def results(**given):
    values = {"au_floor_percent": 90.0, "warmups": 1, "au_percent": [95.0] * 5,
              "samples_per_second": [100.0, 101.0, 99.0, 100.0, 100.0]}
    values.update(given)
    return Results(**values)


def findings(phase, subject):
    checked = check(phase, subject)
    return {c.rule.id: c.finding for c in checked}, label(checked), reasons(checked)


def test_every_rule_is_in_the_table_once():
    ids = [r.id for r in RULES]
    assert ids == ["dataset-memory", "steps-per-epoch", "overrides", "odirect", "measured-runs", "runs-agree",
                   "au-floor"]
    assert all(r.phase in ("plan", "result") and r.checks for r in RULES)


def test_a_run_within_the_rules_is_closed():
    found, run, why = findings("plan", plan("dataset.num_files_train=56", "reader.read_threads=2"))
    assert run == CLOSED and why == []
    assert "dataset.num_files_train=56" in found["overrides"].reason
    found, run, why = findings("result", results())
    assert run == CLOSED and why == []


def test_a_dataset_under_5x_memory_is_invalid():
    # 56 files of 512 KiB = 28 MiB; 5 x 8 MiB = 40 MiB -> 80 files
    found, run, why = findings("plan", plan(memory=8 * MiB))
    assert run == INVALID
    assert found["dataset-memory"].label == INVALID
    assert why[0].startswith("dataset-memory: dataset.num_files_train 56 < 80")
    assert "--iobench-set dataset.num_files_train=80" in why[0]


def test_fewer_than_500_steps_per_epoch_is_invalid():
    # the real rule: 56 files / batch 7 / 4 accelerators = 2 steps < 500
    found, run, _why = findings("plan", plan(min_steps=500))
    assert run == INVALID and found["steps-per-epoch"].label == INVALID
    assert "2 steps per epoch < 500" in found["steps-per-epoch"].reason
    assert "dataset.num_files_train=14000" in found["steps-per-epoch"].reason  # 500 x 4 x 7


def test_an_open_override_labels_the_run_open():
    found, run, why = findings("plan", plan("++workload.reader.data_loader=tensorflow"))
    assert run == OPEN and found["overrides"].label == OPEN
    assert why == ["overrides: override allowed in OPEN only: ++workload.reader.data_loader=tensorflow"]


def test_an_override_in_neither_list_is_invalid():
    found, run, _why = findings("plan", plan("reader.batch_size=14", "reader.read_threads=2"))
    assert run == INVALID and found["overrides"].label == INVALID
    assert "not allowed in CLOSED or OPEN: reader.batch_size=14" in found["overrides"].reason
    assert "read_threads=2" not in found["overrides"].reason.split("(")[0]


def test_workflow_overrides_are_not_the_overrides_rule_s():
    found, _run, _ = findings("plan", plan("workflow.checkpoint=False"))
    assert found["overrides"].label == CLOSED


def test_odirect_on_another_model_is_invalid():
    found, _run, _why = findings("plan", plan("reader.odirect=True", workload="resnet50_small", memory=1,
                                            accelerators=1))
    assert found["odirect"].label == INVALID
    assert found["odirect"].reason == "reader.odirect is allowed for unet3d only, not for model resnet50"
    assert findings("plan", plan("reader.odirect=True"))[0]["odirect"].label == CLOSED


def test_fewer_than_five_measured_runs_or_no_warmup_is_invalid():
    found, run, _why = findings("result", results(au_percent=[95.0] * 3, samples_per_second=[100.0] * 3))
    assert run == INVALID and found["measured-runs"].label == INVALID
    assert "1 warm-up and 3 measured runs" in found["measured-runs"].reason
    assert findings("result", results(warmups=0))[0]["measured-runs"].label == INVALID


def test_runs_that_disagree_by_more_than_5_percent_are_invalid():
    found, run, _why = findings("result", results(samples_per_second=[100.0, 100.0, 100.0, 100.0, 120.0]))
    assert run == INVALID and found["runs-agree"].label == INVALID
    # mean 104; 120 is 15.4% from it
    assert "do not agree within 5%" in found["runs-agree"].reason and "15.4% from their mean 104" in \
        found["runs-agree"].reason


def test_au_below_the_floor_is_invalid():
    found, run, _why = findings("result", results(au_percent=[80.0, 85.0, 90.0, 80.0, 85.0]))
    assert run == INVALID and found["au-floor"].label == INVALID
    assert found["au-floor"].reason == "mean AU 84.00% over the measured runs is below the 90% floor (metric.au)"


def test_override_keys_are_read_as_the_workload_reads_them():
    assert override_key("++workload.reader.read_threads=8") == "reader.read_threads"
    assert override_key("data_reader.read_threads=8") == "reader.read_threads"


# -- checkpoint qualification (llama3) ----------------------------------------------------------
def checkpoint_plan(*overrides, workload="llama3-8b", processes=8, s3=False):
    config = load_workload(workload, list(overrides)).with_defaults(
        ["checkpoint.num_checkpoints_write=10", "checkpoint.num_checkpoints_read=10"])
    return CheckpointPlan(config, checkpoint_model(config), processes, list(overrides), fsync_not_applicable=s3)


def checkpoint_results(**given):
    values = {"size_bytes": 105 * 10 ** 9, "memory_bytes": 512 * 1024 ** 3, "writes": 10, "reads": 10,
              "cache": "evicted"}
    values.update(given)
    return CheckpointResults(**values)


def checkpoint_findings(phase, subject):
    checked = check(phase, subject, CHECKPOINT_RULES)
    return {c.rule.id: c.finding for c in checked}, label(checked), reasons(checked)


def test_the_llama3_workloads_and_their_process_counts():
    assert [checkpoint_model(load_workload(n)) for n in ("llama3-8b", "llama3-70b", "llama3-405b", "llama3-1t")] == \
        ["llama3-8b", "llama3-70b", "llama3-405b", "llama3-1t"]
    assert checkpoint_model(load_workload("unet3d_small")) is None
    assert [checkpoint_processes(m, None, dry=False) for m in CHECKPOINT_PROCESSES] == [8, 64, 512, 1024]
    assert checkpoint_processes("llama3-1t", None, dry=True) == SUBSET_PROCESSES == 8
    assert checkpoint_processes("llama3-70b", 16, dry=False) == 16


def test_a_checkpoint_run_within_the_rules_is_closed():
    found, run, why = checkpoint_findings("plan", checkpoint_plan())
    assert run == CLOSED and why == [] and set(found) == {"checkpoint-processes", "checkpoint-counts",
                                                          "checkpoint-fsync", "checkpoint-overrides"}
    found, run, why = checkpoint_findings("result", checkpoint_results())
    assert run == CLOSED and why == []


@pytest.mark.parametrize("workload,processes,expected", [
    ("llama3-70b", 64, CLOSED),   # the full run
    ("llama3-70b", 8, CLOSED),    # the subset run
    ("llama3-70b", 16, OPEN),     # a multiple of one data-parallel instance (8)
    ("llama3-405b", 768, OPEN),   # 3 x 256
    ("llama3-405b", 64, INVALID),
    ("llama3-8b", 4, INVALID),
])
def test_the_process_count_rule(workload, processes, expected):
    found, run, why = checkpoint_findings("plan", checkpoint_plan(workload=workload, processes=processes))
    assert found["checkpoint-processes"].label == expected and run == expected
    if expected != CLOSED:
        assert why[0].startswith(f"checkpoint-processes: {processes} processes")


def test_fewer_than_ten_checkpoints_is_invalid():
    _, run, why = checkpoint_findings("plan", checkpoint_plan("checkpoint.num_checkpoints_read=2"))
    assert run == INVALID
    assert why == ["checkpoint-counts: checkpoint.num_checkpoints_write 10 and num_checkpoints_read 2: the rules ask "
                   "for 10 writes then 10 reads"]


def test_fsync_off_is_invalid_but_not_on_s3():
    _, run, why = checkpoint_findings("plan", checkpoint_plan("checkpoint.fsync=False"))
    assert run == INVALID and why[0].startswith("checkpoint-fsync: checkpoint.fsync is off")
    found, _, _ = checkpoint_findings("plan", checkpoint_plan("checkpoint.fsync=False", s3=True))
    assert found["checkpoint-fsync"].label == CLOSED and "S3" in found["checkpoint-fsync"].reason


def test_a_checkpoint_override_outside_the_closed_list_is_open():
    _, run, why = checkpoint_findings("plan", checkpoint_plan("checkpoint.checkpoint_folder=ck",
                                                              "checkpoint.randomize_tensor=False"))
    assert run == OPEN and why[0].startswith("checkpoint-overrides: override allowed in OPEN only: "
                                             "checkpoint.randomize_tensor=False")


def test_checkpoints_not_all_written_and_read_is_invalid():
    _, run, why = checkpoint_findings("result", checkpoint_results(reads=3))
    assert run == INVALID and why == ["checkpoint-done: 10 checkpoints written and 3 read back: the rules ask for "
                                      "10 and 10"]


@pytest.mark.parametrize("cache,expected", [("evicted", CLOSED), ("odirect", CLOSED), ("no-client-cache", CLOSED),
                                            ("none", INVALID), ("memory", INVALID)])
def test_the_page_cache_must_be_cleared_below_three_times_memory(cache, expected):
    small = checkpoint_results(size_bytes=10 ** 9, memory_bytes=GiB, cache=cache)  # 1 GB < 3 GiB
    found, run, why = checkpoint_findings("result", small)
    assert found["checkpoint-page-cache"].label == expected == run
    if expected == INVALID:
        assert why[0].startswith("checkpoint-page-cache: a checkpoint of 0.9313 GiB is below 3x the clients' memory")
    # at 3x the clients' memory or more, the cache cannot hold it: nothing to clear
    large = checkpoint_results(size_bytes=3 * GiB, memory_bytes=GiB, cache=cache)
    assert checkpoint_findings("result", large)[0]["checkpoint-page-cache"].label == CLOSED
