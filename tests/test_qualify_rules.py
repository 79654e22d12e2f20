"""Every qualification rule: a run that keeps it is labelled CLOSED, and one that breaks it
gets the rule's label and reason."""

from __future__ import annotations

from pytest_iobench.qualify.rules import (
    CLOSED,
    INVALID,
    OPEN,
    RULES,
    Plan,
    Results,
    check,
    label,
    override_key,
    reasons,
)
from pytest_iobench.workload.config import load_workload

MiB = 1024 ** 2


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
