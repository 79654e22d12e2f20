"""DLIO's own workload files, as MLPerf Storage ships them, run scaled down with overrides on
real datasets (the data layer's formats and generation), and the AU of a fast cached dataset
read through a real format."""

from __future__ import annotations

import pytest

from pytest_iobench.data.generate import dataset_prefix, generate
from pytest_iobench.mpi.session import MPISession
from pytest_iobench.mpi.training import run_training_session
from pytest_iobench.storage import StorageSpec, open_storage
from pytest_iobench.workload.config import load_workload
from pytest_iobench.workload.job import storage_at
from test_workload_training import assert_harness_costs_little

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
    assert s["au_mean_percent"] > 0 and s["samples_per_second_mean"] > 0
    if name == "unet3d_h100":
        assert any("model.model_size" in w for w in outcome.warnings)


@pytest.mark.parametrize("ranks", [1, 2], ids=["r1", "r2"])
def test_au_is_at_least_98_percent_reading_npz_files(area, ranks):
    config, prefix = prepared(area, "unet3d_small", ["train.epochs=3", "dataset.num_files_train=112"])
    assert config.train.computation_time.mean == 0.05
    outcome = run_training_session(MPISession(timeout=120), config, area, ranks=ranks, dataset_prefix=prefix)
    assert_harness_costs_little(outcome.summary, ranks)
    assert any("page cache" in w for w in outcome.warnings), "a cached dataset is said to be cached"
