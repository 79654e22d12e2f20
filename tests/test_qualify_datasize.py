"""``dataset_size`` agrees with mlpstorage's formula on the shipped workloads (figures worked
out by hand in each test's comment)."""

from __future__ import annotations

import pytest

from pytest_iobench.qualify.datasize import GiB, dataset_size, max_accelerators
from pytest_iobench.workload.config import load_workload


def test_unet3d_is_dictated_by_its_steps():
    # memory: 5 x 1 x 128 GiB = 687,194,767,360 B / 146,600,628 B a file = 4687.6 -> 4687 files
    # steps: 500 x 8 accelerators x batch 7 = 28,000 samples, 1 a file -> 28,000 files
    size = dataset_size(load_workload("unet3d_h100"), hosts=1, host_memory_bytes=128 * GiB, accelerators=8)
    assert (size.files_by_memory, size.files_by_steps, size.num_files_train) == (4687, 28000, 28000)
    assert size.bytes == 28000 * 146600628 == 4_104_817_584_000
    assert size.overrides() == ["dataset.num_files_train=28000"]
    assert "steps" in size.dictated_by


def test_resnet50_is_dictated_by_memory():
    # a file: 1251 x 114,660.07 B = 143,439,747.57 B; 687,194,767,360 / that = 4790.8 -> 4790 files
    # steps: 500 x 8 x batch 400 = 1,600,000 samples / 1251 a file = 1278.98 -> 1278 files
    size = dataset_size(load_workload("resnet50_h100"), hosts=1, host_memory_bytes=128 * GiB, accelerators=8)
    assert (size.files_by_memory, size.files_by_steps, size.num_files_train) == (4790, 1278, 4790)
    # the workload reads record_length_bytes as the whole bytes it generates: 114,660
    assert size.bytes == 4790 * 1251 * 114660 == 687_075_971_400
    assert "memory" in size.dictated_by


def test_cosmoflow_on_two_hosts():
    # memory: 5 x 2 x 256 GiB = 2,748,779,069,440 B / 2,828,486 B = 971,819.9 -> 971,819 files
    # steps: 500 x 16 x batch 1 = 8000 files
    size = dataset_size(load_workload("cosmoflow_h100"), hosts=2, host_memory_bytes=256 * GiB, accelerators=16)
    assert (size.files_by_memory, size.files_by_steps, size.num_files_train) == (971819, 8000, 971819)
    assert size.bytes == 971819 * 2828486 == 2_748_776_436_034
    assert size.memory_bytes == 512 * GiB


def test_dlrm_parquet_rows():
    # a file: 4,718,592 rows x 761 B = 3,590,848,512 B; 5 x 4 x 256 GiB / that = 1530.9 -> 1530
    # steps: 500 x 8 x 16384 = 65,536,000 rows / 4,718,592 = 13.9 -> 13 files
    size = dataset_size(load_workload("dlrm_parquet_h100"), hosts=4, host_memory_bytes=256 * GiB, accelerators=8)
    assert (size.files_by_memory, size.files_by_steps, size.num_files_train) == (1530, 13, 1530)


def test_a_dry_run_asks_fewer_steps():
    # unet3d_small: 56 files of 512 KiB, batch 7; 4 MiB of memory x 5 = 40 files; 1 step x 4 x 7 = 28
    config = load_workload("unet3d_small")
    size = dataset_size(config, hosts=1, host_memory_bytes=4 * 1024 ** 2, accelerators=4, min_steps=1)
    assert (size.files_by_memory, size.files_by_steps) == (40, 28)
    assert max_accelerators(config, min_steps=1) == 8  # 56 / 7
    assert max_accelerators(config) == 0  # 500 steps of 7 samples need 3500 files


@pytest.mark.parametrize("field", ["hosts", "host_memory_bytes", "accelerators"])
def test_counts_below_one_are_refused(field):
    given = {"hosts": 1, "host_memory_bytes": GiB, "accelerators": 1, field: 0}
    with pytest.raises(ValueError, match="must be at least 1"):
        dataset_size(load_workload("unet3d_small"), **given)
