"""The training loop end to end, in-process and under mpiexec: AU with a fast cached dataset,
AU with a deliberately slow storage (and the failure it causes), uneven ranks, evaluation,
total_training_steps, computation-time distributions, DLIO's output files."""

from __future__ import annotations

import json
import os
import statistics

import numpy as np
import pytest
from test_workload_support import HERE, RAW_OPENER, SLOW_START, ThrottledStorage, write_raw_dataset

from pytest_iobench.mpi.session import MPISession
from pytest_iobench.mpi.training import measure_training, record_training, run_training_session
from pytest_iobench.report.record import TestRecord as Record
from pytest_iobench.storage import StorageSpec, open_storage
from pytest_iobench.workload.config import load_mapping

KiB = 1024


def workload(**sections):
    base = {
        "model": {"name": "tiny"},
        "dataset": {"num_files_train": 32, "num_samples_per_file": 1, "record_length_bytes": 256 * KiB},
        "reader": {"batch_size": 2, "read_threads": 4, "prefetch_size": 4, "file_shuffle": "seed",
                   "sample_shuffle": "seed"},
        "train": {"epochs": 2, "computation_time": 0.05},
    }
    for name, values in sections.items():
        if isinstance(values, dict):
            base.setdefault(name, {}).update(values)
        else:
            base[name] = values
    return load_mapping(base, "tiny")


@pytest.fixture
def local(tmp_path):
    return open_storage(StorageSpec("local", "posix", root=str(tmp_path / "data")))


@pytest.fixture(scope="module")
def session():
    # ranks import the test reader from this directory
    return MPISession(env={"PYTHONPATH": HERE}, timeout=120)


def assert_harness_costs_little(summary, ranks):
    """AU >= 98% on any rank count: what the harness costs a step of 50 ms. It depends on the
    machine's speed and load, so the tests that call it are ``perf`` tests (not in the README's
    test command; ``pytest -m perf tests/`` runs them on a quiet machine)."""
    detail = (summary["au_percent"], summary["slowest_phase"], summary["phases"])
    assert summary["au_mean_percent"] >= 98.0, detail


def assert_au_is_computed(summary, ranks):
    """What is not timing in an AU: one value per rank and epoch, each a percentage, and their mean."""
    per_epoch = summary["au_percent"]
    assert per_epoch and all(0 < au <= 100 for au in per_epoch), per_epoch
    assert 0 < summary["au_mean_percent"] <= 100
    assert summary["au_met"] == (summary["au_mean_percent"] >= 90.0)


def train(session, config, storage, ranks, **kw):
    return run_training_session(session, config, storage, ranks=ranks, opener=RAW_OPENER, **kw)


def fast_cached_training(session, local, ranks):
    # 16 steps of 50 ms per rank and epoch whatever the rank count
    files = 32 * ranks
    config = workload(train={"epochs": 3}, dataset={"num_files_train": files})
    write_raw_dataset(local, config)
    return train(session, config, local, ranks), files


@pytest.mark.parametrize("ranks", [1, 2], ids=["r1", "r2"])
def test_a_fast_cached_dataset_is_read_whole_and_its_au_computed(session, local, ranks):
    outcome, files = fast_cached_training(session, local, ranks)
    s = outcome.summary
    assert_au_is_computed(s, ranks)
    assert len(outcome.results) == ranks and outcome.run.in_process == (ranks == 1)
    # every rank read its share once per epoch: bytes counted from what the storage returned
    steps = files // (2 * ranks)
    assert all(r["steps_per_epoch"] == steps for r in outcome.results)
    assert s["bytes_read"] == 3 * steps * 2 * ranks * 256 * KiB
    assert s["samples_per_second_mean"] > 0 and s["batch_read_seconds"]["max"] > 0


@pytest.mark.perf
@pytest.mark.parametrize("ranks", [1, 2], ids=["r1", "r2"])
def test_au_is_at_least_98_percent_with_a_fast_cached_dataset(session, local, ranks):
    outcome, _ = fast_cached_training(session, local, ranks)
    assert_harness_costs_little(outcome.summary, ranks)
    assert outcome.summary["au_met"]


def test_a_slow_storage_drops_au_and_fails_with_the_reason(session, local):
    config = workload(reader={"read_threads": 1, "prefetch_size": 1}, train={"computation_time": 0.01})
    write_raw_dataset(local, config)
    slow = ThrottledStorage(local, delay=0.05)
    outcome = train(session, config, slow, 1)
    assert slow.requests == 2 * 32, "every sample went through the slow storage"
    s = outcome.summary
    # each step waits ~2 x 50 ms for 10 ms of compute: AU near 10%
    assert s["au_mean_percent"] < 50
    assert not s["au_met"]
    record = Record("t")
    record_training(record, outcome)
    assert record.metrics["train_au_percent"].value == s["au_mean_percent"], "metrics recorded either way"
    failed = record.failed_criteria
    assert len(failed) == 1
    text = failed[0].explain()
    assert f"mean AU {s['au_mean_percent']:.2f}% is below the 90% floor" in text
    assert "slowest phase: waiting for the loader" in text and "batch read p50" in text


@pytest.mark.parametrize("ranks", [1, 2], ids=["r1", "r2"])
def test_read_throughput_is_measured_over_the_au_window(session, local, tmp_path, ranks):
    # the first batch of each rank takes SLOW_START longer (as a first S3 request does): the
    # excluded step. bytes/s counts the bytes of the window's batches over the window's time, as
    # samples/s counts their samples, so bytes/s = samples/s x bytes per sample exactly; the
    # epoch-wide figure (every byte over the whole epoch) is kept as a detail
    size = 64 * KiB
    config = workload(dataset={"num_files_train": 16 * ranks, "record_length_bytes": size},
                      reader={"read_threads": 1, "prefetch_size": 1},
                      train={"epochs": 1, "computation_time": 0.005})
    write_raw_dataset(local, config)
    outcome = run_training_session(session, config, local, ranks=ranks,
                                   opener="test_workload_support:open_raw_slow_start",
                                   output_folder=str(tmp_path / "dlio"))
    s = outcome.summary
    for r in outcome.results:
        (ep,) = r["epochs"]
        assert ep["read"][0] >= SLOW_START, "the first batch was the slow one"
        assert ep["batch_bytes"] == [2 * size] * 8 and sum(ep["batch_bytes"]) == ep["bytes_read"]
        assert ep["window_bytes"] == ep["window_samples"] * size == 7 * 2 * size
        assert ep["bytes_per_second"] == pytest.approx(ep["samples_per_second"] * size, rel=1e-12)
        assert ep["whole_epoch_bytes_per_second"] == pytest.approx(ep["bytes_read"] / ep["read_duration"], rel=1e-12)
    assert s["bytes_per_second"][0] == pytest.approx(s["samples_per_second"][0] * size, rel=1e-12)
    metric = json.loads((tmp_path / "dlio" / "summary.json").read_text())["metric"]
    assert metric["train_io_mean_MiB_per_second"] == pytest.approx(metric["train_io_nominal_MiB_per_second"], rel=1e-12)
    assert metric["train_io_mean_MB_per_second"] == pytest.approx(
        metric["train_throughput_mean_samples_per_second"] * size / 1e6, rel=1e-12)
    assert metric["train_io_whole_epoch_mean_MB_per_second"] == pytest.approx(
        s["whole_epoch_bytes_per_second_mean"] / 1e6, rel=1e-12)
    record = Record("t")
    record_training(record, outcome)
    assert record.metrics["train_read_MB_per_second"].value == pytest.approx(
        record.metrics["train_samples_per_second"].value * size / 1e6, rel=1e-12)
    assert record.details["training"]["whole_epoch_bytes_per_second_per_epoch"] == s["whole_epoch_bytes_per_second"]


def test_fast_storage_meets_a_criterion_and_reports_diagnostics(session, local):
    config = workload(framework="pytorch", reader={"computation_threads": 4})
    write_raw_dataset(local, config)
    outcome = train(session, config, local, 1)
    record = Record("t")
    record_training(record, outcome)
    assert not record.failed_criteria
    assert record.metrics["train_read_MB_per_second"].unit == "MB/s"
    assert record.metrics["train_read_MiB_per_second"].value == pytest.approx(
        record.metrics["train_read_MB_per_second"].value * 1e6 / 2**20)
    assert any("fits in this host's memory" in w for w in record.warnings)
    assert sum("accepted, not emulated" in w for w in record.warnings) == 1
    assert "framework" in next(w for w in record.warnings if "not emulated" in w)
    assert record.details["training"]["per_rank"][0]["rank"] == 0


@pytest.mark.parametrize("ranks", [2, 4], ids=["r2", "r4"])
def test_uneven_files_over_ranks_do_not_deadlock(session, local, ranks):
    config = workload(dataset={"num_files_train": 13}, reader={"batch_size": 1, "read_threads": 1},
                      train={"computation_time": 0.001})
    write_raw_dataset(local, config)
    outcome = train(session, config, local, ranks)
    expected = 13 // ranks
    assert [r["steps_per_epoch"] for r in outcome.results] == [expected] * ranks
    assert all(len(ep["load"]) == expected for r in outcome.results for ep in r["epochs"])


def test_total_training_steps_evaluation_and_distribution(session, local):
    config = workload(dataset={"num_files_eval": 8}, workflow={"evaluation": True},
                      reader={"batch_size_eval": 2},
                      train={"epochs": 3, "total_training_steps": 5,
                             "computation_time": {"type": "uniform", "min": 0.01, "max": 0.03}},
                      evaluation={"eval_time": 0.005, "eval_after_epoch": 2, "epochs_between_evals": 1})
    write_raw_dataset(local, config)
    outcome = train(session, config, local, 1)
    result = outcome.results[0]
    assert result["steps_per_epoch"] == 5
    computes = [c for ep in result["epochs"] for c in ep["compute"]]
    # the loop's draws (its generator is seeded by train.seed and the rank): each step spent at
    # least its own draw, which varies over [0.01, 0.03] - a fixed time would miss the larger ones
    rng = np.random.default_rng([config.train.seed, 0, 0xC0])
    draws = [config.train.computation_time.draw(rng) for _ in computes]
    assert all(0.01 <= d <= 0.03 for d in draws) and max(draws) > min(draws) + 0.01
    assert all(c >= d for c, d in zip(computes, draws)), (computes, draws)
    assert [ev["epoch"] for ev in result["evals"]] == [2, 3]
    assert all(ev["steps"] == 4 and ev["bytes_read"] == 8 * 256 * KiB for ev in result["evals"])
    assert "eval" in outcome.summary and outcome.summary["eval"]["samples_per_second_mean"] > 0


def test_dlio_output_files(session, local, tmp_path):
    config = workload()
    write_raw_dataset(local, config)
    out = tmp_path / "dlio"
    outcome = train(session, config, local, 2, output_folder=str(out))
    names = sorted(os.listdir(out))
    assert names == ["0_output.json", "0_per_epoch_stats.json", "1_output.json", "1_per_epoch_stats.json",
                     "dlio.log", "per_epoch_stats.json", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    metric = summary["metric"]
    assert summary["num_accelerators"] == 2 and summary["epochs"] == 2
    assert metric["train_au_percentage"] == pytest.approx(outcome.summary["au_percent"])
    assert metric["train_au_meet_expectation"] == "success"
    assert metric["train_io_mean_MB_per_second"] == pytest.approx(outcome.summary["bytes_per_second_mean"] / 1e6)
    assert metric["train_io_mean_MiB_per_second"] == pytest.approx(outcome.summary["bytes_per_second_mean"] / 2**20)
    rank1 = json.loads((out / "1_output.json").read_text())
    assert len(rank1["1"]["load"]["block1"]) == 8 and "au" in rank1["2"]
    assert "mean AU" in (out / "dlio.log").read_text()


def test_output_folder_key_takes_effect(session, local, tmp_path):
    config = workload(output={"folder": str(tmp_path / "mine"), "log_file": "run.log"})
    write_raw_dataset(local, config)
    train(session, config, local, 1, output_folder=str(tmp_path / "default"))
    assert (tmp_path / "mine" / "summary.json").exists() and (tmp_path / "mine" / "run.log").exists()
    assert not (tmp_path / "default").exists()


@pytest.mark.parametrize("ranks", [1, 2], ids=["r1", "r2"])
def test_odirect_reads_local_files_through_o_direct(session, local, ranks):
    config = workload(reader={"odirect": True}, train={"epochs": 1, "computation_time": 0.001})
    write_raw_dataset(local, config)
    outcome = train(session, config, local, ranks, dataset_prefix="")
    # every rank reopened the files as the direct storage, and says so; the page-cache warning
    # follows the storage the ranks read through, and every byte is still counted
    assert [r["storage"] for r in outcome.results] == [{"kind": "direct", "library": "posix"}] * ranks
    assert not any("page cache" in w for w in outcome.warnings), outcome.warnings
    assert outcome.summary["bytes_read"] == 16 * 2 * 256 * KiB
    record = Record("t")
    record_training(record, outcome)
    assert [r["storage"] for r in record.details["training"]["per_rank"]] == ["direct-posix"] * ranks


def test_the_page_cache_warning_follows_the_storage_the_ranks_used(session, local, monkeypatch):
    # a rank that ignored reader.odirect would read through the page cache: said, not hidden
    from pytest_iobench.workload import job

    opened = job.storage_at
    monkeypatch.setattr(job, "storage_at", lambda spec, prefix="", *, odirect=False, environ=None:
                        opened(spec, prefix, environ=environ))
    config = workload(reader={"odirect": True}, train={"epochs": 1, "computation_time": 0.001})
    write_raw_dataset(local, config)
    outcome = train(session, config, local, 1, dataset_prefix="")
    assert outcome.results[0]["storage"]["kind"] == "local"
    assert any("ranks read the local files through the page cache" in w for w in outcome.warnings)
    assert any("fits in this host's memory" in w for w in outcome.warnings)


def test_a_dataset_too_small_is_said_before_any_rank_starts(session, local):
    from pytest_iobench.workload.sampler import PlanError

    config = workload(dataset={"num_files_train": 13}, reader={"batch_size": 7})
    with pytest.raises(PlanError,
                       match="13 files x 1 samples = 13 samples cannot make one batch of 7 on each of 2 ranks"):
        train(session, config, local, 2)
    with pytest.raises(PlanError, match=r"eval: 4 files x 1 samples = 4 samples cannot make one batch of 8"):
        config = workload(dataset={"num_files_eval": 4}, workflow={"evaluation": True}, reader={"batch_size_eval": 8})
        train(session, config, local, 1)


def test_one_step_epochs_run_as_dlio_runs_them(session, local):
    """1 step per epoch (and per evaluation): DLIO runs it; excluding the first step would leave
    nothing, so every step is measured and the run says so."""
    config = workload(dataset={"num_files_train": 4, "num_files_eval": 4},
                      reader={"batch_size": 2, "batch_size_eval": 2}, workflow={"evaluation": True},
                      train={"epochs": 2, "computation_time": 0.01})
    write_raw_dataset(local, config)
    outcome = train(session, config, local, 2)  # 1 eval step per rank too
    s = outcome.summary
    assert outcome.results[0]["steps_per_epoch"] == 1 and s["epochs"] == 2
    for rank in outcome.results:
        for ep in rank["epochs"]:
            assert ep["steps"] == ep["window_steps"] == 1 and ep["window_samples"] == 2
            assert 0 < ep["au_percent"] <= 100 and ep["window_bytes"] == 2 * 256 * KiB
    assert any(w.startswith("1 steps per epoch leave nothing to measure after excluding "
                            "output.metric.exclude_start_steps=1 and exclude_end_steps=0: every step is measured")
               for w in outcome.warnings), outcome.warnings
    assert any(w.startswith("1 evaluation steps leave nothing to measure") and "dataset.num_files_eval" in w
               for w in outcome.warnings)
    # total_training_steps 1 loads too (it was refused with the same reason)
    assert load_mapping({"train": {"total_training_steps": 1}}).train.total_training_steps == 1


def test_repeats_rerun_the_whole_workload_and_the_criterion_holds_the_median(session, local):
    # --iobench-warmup 1 --iobench-repeat 2, as the training suite runs it (MLPerf: a warm-up run,
    # then measured runs)
    config = workload(train={"epochs": 1, "computation_time": 0.01})
    write_raw_dataset(local, config)
    record = Record("t", repeat=2, warmups=1)
    runs = []

    def run():
        runs.append(train(session, config, local, 1))
        return runs[-1]

    outcome = measure_training(record, run, config, 1)
    assert len(runs) == 3 and outcome is runs[-1]
    assert len({r.results[0]["epochs"][0]["start"] for r in runs}) == 3, "each repeat is a run of its own"
    au = record.metrics["train_au_percent"]
    assert au.warmup == [runs[0].summary["au_mean_percent"]]
    assert au.repeats == [r.summary["au_mean_percent"] for r in runs[1:]]
    assert au.value == statistics.median(au.repeats)
    for name, metric in record.metrics.items():
        assert len(metric.repeats) == 2 and len(metric.warmup) == 1, name
    assert record.metrics["train_read_MB_per_second"].repeats == [
        r.summary["bytes_per_second_mean"] / 1e6 for r in runs[1:]]
    (criterion,) = record.criteria
    assert criterion.value == au.value and "median over 2 runs of the mean AU" in criterion.description
    assert [r["warmup"] for r in record.details["training"]["runs"]] == [True, False, False]


def test_a_waived_au_floor_says_why_in_the_table(session, local):
    from pytest_iobench.report.collect import record_entry
    from pytest_iobench.report.text import suite_tables

    config = workload(train={"epochs": 1, "computation_time": 0.001})
    write_raw_dataset(local, config)
    outcome = train(session, config, local, 1)
    record = Record("suites/test_training.py::test_training[tiny-r1-s3-boto3]")
    record_training(record, outcome, "the embedded S3 endpoint (moto, one process) is far slower than any S3 storage")
    assert not record.criteria, "no floor applied"
    assert record.details["waived"] == [{
        "metric": "train_au_percent", "label": "AU floor waived: the embedded S3 endpoint",
        "reason": next(w for w in record.warnings if w.startswith("AU floor 90% not applied"))}]
    entry = {**record_entry(record), "outcome": "passed"}
    (row,) = [line for line in suite_tables({"tests": [entry]}) if "test_training[" in line]
    assert "AU floor waived: the embedded S3 endpoint" in row
