"""Checkpointing: each model's checkpoint written and read back, verified, through every
storage and library, on each rank count.

    pytest suites/test_checkpoint.py --iobench-storage=local,direct,s3 --iobench-ranks=1,2
    pytest suites/test_checkpoint.py --iobench-workload=llama3-70b --iobench-scale=1/100
    pytest suites/test_checkpoint.py --iobench-warmup=1 --iobench-repeat=5      # MLPerf Storage's runs

Sizes follow the model's layout at --iobench-scale (default 1/1000). A run on fewer ranks than
the layout has takes the layout's shards in turn (the results say so). For CI, this suite
writes and reads 2 checkpoints with no pause between them unless --iobench-set says otherwise
(MLPerf Storage's rules: checkpoint.num_checkpoints_write=10, num_checkpoints_read=10,
time_between_checkpoints as in the workload file). A run is the whole write + read session; its
figure is the mean over its checkpoints, and --iobench-warmup / --iobench-repeat repeat runs
(the value is the median of the counted ones). The test fails when a checkpoint cannot be read
back as written, naming the shard, with the figures measured until then recorded.
"""

from __future__ import annotations

import uuid

import pytest

from pytest_iobench.mpi.checkpointing import CheckpointReadFailed, measure_checkpoints, run_checkpoint_session

#: applied before --iobench-set, which wins
SUITE_DEFAULTS = (
    "checkpoint.num_checkpoints_write=2",
    "checkpoint.num_checkpoints_read=2",
    "checkpoint.time_between_checkpoints=0",
)


@pytest.fixture
def checkpoint_space(storage):
    """A fresh prefix in the session's scratch space, emptied after the test."""
    prefix = f"checkpoint-{uuid.uuid4().hex[:10]}"
    yield prefix
    storage.delete_prefix(prefix + "/")


def test_checkpoint(checkpoint_workload, storage, ranks, mpi_session, iobench_config, iobench_record,
                    checkpoint_space):
    config = checkpoint_workload.with_defaults(SUITE_DEFAULTS)
    iobench_record.details["suite_defaults"] = list(SUITE_DEFAULTS)

    def run():  # one run: every checkpoint written, then read back verified
        return run_checkpoint_session(mpi_session, config, storage, ranks=ranks, prefix=checkpoint_space,
                                      scale=iobench_config.scale)

    try:
        outcomes = measure_checkpoints(iobench_record, run, config)
    except CheckpointReadFailed as exc:
        pytest.fail(f"{exc} (the figures measured before are recorded)", pytrace=False)
    for outcome in outcomes:
        assert outcome.write_bytes and all(b == outcome.size_bytes for b in outcome.write_bytes)
        assert all(b == outcome.size_bytes for b in outcome.read_bytes), "every shard was read back whole"
