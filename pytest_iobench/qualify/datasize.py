"""The dataset a qualification run needs, by mlpstorage's formula (``calculate_training_data_size``):

    files_by_memory = floor(5 * hosts * host_memory / (samples_per_file * record_length_bytes))
    files_by_steps  = floor(500 * accelerators * batch_size / samples_per_file)
    num_files_train = max(files_by_memory, files_by_steps)

The dataset must be at least 5x the clients' total memory (so that the page cache cannot hold
it) and give at least 500 steps per epoch on the accelerators run. Host memory is in GiB
(2^30 bytes), as mlpstorage's ``--client-host-memory-in-gb`` is.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..workload.config import WorkloadConfig

GiB = 1024 ** 3
#: MLPerf Storage: the dataset is at least this many times the clients' total memory
MEMORY_FACTOR = 5
#: MLPerf Storage: at least this many steps per epoch
MIN_STEPS = 500


@dataclass(frozen=True)
class DatasetSize:
    """The dataset a run of ``workload`` on these clients needs, and what dictates it."""

    workload: str
    hosts: int
    host_memory_bytes: int
    accelerators: int
    batch_size: int
    samples_per_file: int
    record_length_bytes: float
    min_steps: int
    files_by_memory: int
    files_by_steps: int

    @property
    def num_files_train(self) -> int:
        return max(self.files_by_memory, self.files_by_steps)

    @property
    def file_bytes(self) -> float:
        return self.samples_per_file * self.record_length_bytes

    @property
    def bytes(self) -> int:
        return int(self.num_files_train * self.file_bytes)

    @property
    def memory_bytes(self) -> int:
        """The clients' total memory."""
        return self.hosts * self.host_memory_bytes

    @property
    def dictated_by(self) -> str:
        if self.files_by_memory > self.files_by_steps:
            return f"the dataset size: {MEMORY_FACTOR}x the clients' memory"
        return f"the steps: {self.min_steps} per epoch on {self.accelerators} accelerators"

    def overrides(self) -> list[str]:
        """The ``--iobench-set`` overrides that give the workload this dataset."""
        return [f"dataset.num_files_train={self.num_files_train}"]

    def to_dict(self) -> dict[str, object]:
        return {"workload": self.workload, "hosts": self.hosts, "host_memory_bytes": self.host_memory_bytes,
                "accelerators": self.accelerators, "min_steps": self.min_steps,
                "files_by_memory": self.files_by_memory, "files_by_steps": self.files_by_steps,
                "num_files_train": self.num_files_train, "bytes": self.bytes, "dictated_by": self.dictated_by,
                "overrides": self.overrides()}


def dataset_size(config: WorkloadConfig, *, hosts: int, host_memory_bytes: int, accelerators: int,
                 min_steps: int = MIN_STEPS) -> DatasetSize:
    """The dataset ``config`` needs on ``hosts`` client hosts of ``host_memory_bytes`` each
    running ``accelerators`` simulated accelerators in all (``min_steps`` lower for a dry run)."""
    for name, value in (("hosts", hosts), ("host memory", host_memory_bytes), ("accelerators", accelerators),
                        ("steps per epoch", min_steps)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, not {value}")
    ds = config.dataset
    spf, record = int(ds.num_samples_per_file), float(ds.record_length_bytes)
    batch = int(config.reader.batch_size)
    file_bytes = spf * record
    by_memory = int(MEMORY_FACTOR * hosts * host_memory_bytes // file_bytes) if file_bytes > 0 else 0
    by_steps = min_steps * accelerators * batch // spf
    return DatasetSize(config.name, hosts, host_memory_bytes, accelerators, batch, spf, record, min_steps,
                       by_memory, by_steps)


def max_accelerators(config: WorkloadConfig, min_steps: int = MIN_STEPS) -> int:
    """The most accelerators the workload's dataset gives ``min_steps`` steps per epoch (0: none)."""
    ds = config.dataset
    return int(ds.num_files_train) * int(ds.num_samples_per_file) // (int(config.reader.batch_size) * min_steps)
