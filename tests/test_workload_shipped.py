"""DLIO's own workload files, as MLPerf Storage ships them, run scaled down with overrides on
real datasets (the data layer's formats and generation): on every storage and library of the
session (--iobench-storage) with 1 and 2 ranks, checking what was read; the AU of a fast cached
dataset read through a real format; parquet column projection."""

from __future__ import annotations

import json

import pytest
from test_workload_training import assert_au_is_computed, assert_harness_costs_little

from pytest_iobench.data.generate import dataset_prefix, generate
from pytest_iobench.mpi.session import MPISession
from pytest_iobench.mpi.training import run_training_session
from pytest_iobench.storage import StorageSpec, open_storage
from pytest_iobench.workload.config import load_workload
from pytest_iobench.workload.job import storage_at
from pytest_iobench.workload.sampler import Sampler

#: each file's own scale-down: fewer, smaller files, one epoch, a short compute
SCALED = {
    "unet3d_h100": ["dataset.num_files_train=28", "dataset.record_length_bytes=262144",
                    "dataset.record_length_bytes_stdev=32768", "train.epochs=1", "train.computation_time=0.02"],
    "resnet50_h100": ["dataset.num_files_train=4", "dataset.num_samples_per_file=64", "reader.batch_size=16",
                      "train.epochs=1", "train.computation_time=0.02"],
    "cosmoflow_h100": ["dataset.num_files_train=24", "dataset.record_length_bytes=65536",
                       "dataset.record_length_bytes_stdev=1024", "train.epochs=1", "train.computation_time=0.01"],
    "dlrm_parquet_h100": ["dataset.num_files_train=8", "dataset.num_samples_per_file=512", "reader.batch_size=64",
                          "train.computation_time=0.01"],
}


@pytest.fixture(scope="module")
def area(tmp_path_factory):
    return open_storage(StorageSpec("local", "posix", root=str(tmp_path_factory.mktemp("datasets"))))


def prepared(area, name, overrides=()):
    config = load_workload(name, [*SCALED.get(name, []), *overrides])
    prefix = dataset_prefix(config.dataset)
    generate(config.dataset, storage_at(area.spec, prefix), threads=2)
    return config, prefix


@pytest.mark.parametrize("ranks", [1, 2], ids=["r1", "r2"])
@pytest.mark.parametrize("name", sorted(SCALED))
def test_dlio_files_run_scaled_down(area, name, ranks):
    config, prefix = prepared(area, name)
    outcome = run_training_session(MPISession(timeout=120), config, area, ranks=ranks, dataset_prefix=prefix)
    s = outcome.summary
    steps = outcome.results[0]["steps_per_epoch"]
    spec = config.dataset
    assert steps == spec.num_files_train * spec.num_samples_per_file // (config.reader.batch_size * ranks)
    # every sample of every step was read through the format, from the storage
    sizes = [spec.record_bytes("train", i) for i in range(spec.num_files_train)]
    assert s["bytes_read"] >= steps * config.reader.batch_size * ranks * min(sizes)
    # every byte is the batch's that moved it, once (parquet's row groups, shared by the samples
    # of several batches and threads, too): the batches' bytes add up to the epoch's
    assert all(sum(ep["batch_bytes"]) == ep["bytes_read"] for r in outcome.results for ep in r["epochs"])
    assert s["au_mean_percent"] > 0 and s["samples_per_second_mean"] > 0
    if name == "unet3d_h100":
        assert any("model.model_size" in w for w in outcome.warnings)


def npz_training(area, ranks):
    # 16 steps of 50 ms per rank and epoch on 2 ranks (32 on 1)
    config, prefix = prepared(area, "unet3d_small", ["train.epochs=3", "dataset.num_files_train=224",
                                                     "dataset.record_length_bytes=131072",
                                                     "dataset.record_length_bytes_stdev=16384"])
    assert config.train.computation_time.mean == 0.05
    return run_training_session(MPISession(timeout=120), config, area, ranks=ranks, dataset_prefix=prefix)


@pytest.mark.parametrize("ranks", [1, 2], ids=["r1", "r2"])
def test_npz_files_are_read_with_their_au_computed_and_said_to_be_cached(area, ranks):
    outcome = npz_training(area, ranks)
    assert_au_is_computed(outcome.summary, ranks)
    assert [r["steps_per_epoch"] for r in outcome.results] == [224 // (7 * ranks)] * ranks
    assert any("page cache" in w for w in outcome.warnings), "a cached dataset is said to be cached"


@pytest.mark.perf
@pytest.mark.parametrize("ranks", [1, 2], ids=["r1", "r2"])
def test_au_is_at_least_98_percent_reading_npz_files(area, ranks):
    assert_harness_costs_little(npz_training(area, ranks).summary, ranks)


#: DLIO's files for the storage matrix, each scaled to a few steps of small samples, no compute
MATRIX = {
    "unet3d_h100": ["dataset.num_files_train=28", "dataset.record_length_bytes=262144",
                    "dataset.record_length_bytes_stdev=16384", "train.epochs=1", "train.computation_time=0"],
    "resnet50_h100": ["dataset.num_files_train=4", "dataset.num_samples_per_file=16", "reader.batch_size=8",
                      "train.epochs=1", "train.computation_time=0"],
    "cosmoflow_h100": ["dataset.num_files_train=8", "dataset.record_length_bytes=131072",
                       "dataset.record_length_bytes_stdev=8192", "train.epochs=1", "train.computation_time=0"],
}
#: what a reader may read beyond the bytes of the files it touches: its format's metadata,
#: read ahead in blocks (data/formats/base.py RangeFile: 64 KiB), at most two per file
METADATA_SLACK = 2 * 64 << 10


def files_touched(config, ranks: int) -> set[int]:
    """The train files the sampler gives the ranks in epoch 1 (seed or no shuffle: no run seed)."""
    ds, r = config.dataset, config.reader
    touched = set()
    for rank in range(ranks):
        plan = Sampler(num_files=ds.num_files_train, samples_per_file=ds.num_samples_per_file,
                       batch_size=r.batch_size, rank=rank, ranks=ranks, file_shuffle=r.file_shuffle,
                       sample_shuffle=r.sample_shuffle, shuffle_size=r.shuffle_size, seed=config.train.seed,
                       seed_change_epoch=config.train.seed_change_epoch).epoch(1)
        touched.update(int(i) // ds.num_samples_per_file for i in plan.ravel())
    return touched


@pytest.mark.parametrize("ranks", [1, 2], ids=["r1", "r2"])
@pytest.mark.parametrize("name", sorted(MATRIX))
def test_dlio_files_on_every_storage_and_library(name, ranks, storage, dataset_factory, storage_factory, mpi_session,
                                                tmp_path):
    config = load_workload(name, MATRIX[name])
    dataset = dataset_factory(config.dataset, storage)
    area = dataset.area  # this test's library's, whichever library generated the files
    assert area is storage_factory.get(storage.kind, storage.library, area="datasets")
    out = tmp_path / "dlio"
    outcome = run_training_session(mpi_session, config, area, ranks=ranks, dataset_prefix=dataset.prefix,
                                   output_folder=str(out), dataset_bytes=dataset.bytes)
    s, ds, batch = outcome.summary, config.dataset, config.reader.batch_size
    steps = ds.num_files_train * ds.num_samples_per_file // (batch * ranks)
    assert [r["steps_per_epoch"] for r in outcome.results] == [steps] * ranks
    assert [r["storage"] for r in outcome.results] == [{"kind": storage.kind, "library": storage.library}] * ranks
    # every sample of every step was read: steps x batch x ranks
    assert sum(ep["samples"] for r in outcome.results for ep in r["epochs"]) == steps * batch * ranks
    # the bytes the storage returned: every byte of every file touched, and no file twice
    files = storage_at(area.spec, dataset.prefix)
    keys = ds.file_keys("train")
    touched = files_touched(config, ranks)
    file_bytes = sum(files.stat(keys[i]).size for i in touched)
    assert file_bytes <= s["bytes_read"] <= file_bytes + METADATA_SLACK * len(touched), (s["bytes_read"], file_bytes)
    assert 0 < s["au_mean_percent"] <= 100 and s["samples_per_second_mean"] > 0
    summary = json.loads((out / "summary.json").read_text())
    metric = summary["metric"]
    assert (summary["workload"], summary["num_accelerators"], summary["epochs"]) == (name, ranks, 1)
    assert summary["num_files_train"] == ds.num_files_train and summary["data_size_GB"] == dataset.bytes / 1e9
    assert metric["train_au_percentage"] == pytest.approx(s["au_percent"])
    assert metric["train_au_meet_expectation"] == ("success" if s["au_met"] else "fail")
    assert metric["train_throughput_mean_samples_per_second"] == pytest.approx(s["samples_per_second_mean"])
    assert metric["train_io_mean_MB_per_second"] == pytest.approx(s["bytes_per_second_mean"] / 1e6)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["summary.json", "per_epoch_stats.json", "dlio.log"]
        + [f"{r}_{f}" for r in range(ranks) for f in ("output.json", "per_epoch_stats.json")])


def test_parquet_column_projection_reads_fewer_bytes(area):
    # the MLCommons fork's key: storage.storage_options.columns; a 16-byte label column next
    # to a ~4 KiB feature column
    columns = "dataset.parquet.columns=[{name: label, dtype: int64, size: 2}, {name: feature, dtype: binary}]"
    config, prefix = prepared(area, "dlrm_parquet_small", [
        columns, "dataset.record_length_bytes=4096", "dataset.num_files_train=2", "dataset.num_samples_per_file=1024",
        "train.epochs=1", "train.computation_time=0"])
    full = run_training_session(MPISession(timeout=120), config, area, ranks=1, dataset_prefix=prefix)
    projected_config = config.with_overrides(["storage.storage_options={columns: [label]}"])
    projected = run_training_session(MPISession(timeout=120), projected_config, area, ranks=1, dataset_prefix=prefix)
    rows = 2 * 1024
    assert full.summary["bytes_read"] >= rows * 4096, "the full read moves the features"
    assert projected.summary["bytes_read"] < full.summary["bytes_read"] / 10, "only the labels are read"
    assert projected.summary["samples_per_second_mean"] > 0
