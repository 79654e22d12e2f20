"""The settle guard: after a dataset is generated, rank 0 waits storage.post_generation_settle_seconds
(or --iobench-settle), then every rank passes a barrier before reading; the wait is recorded in
the document, outside every figure. Real ranks under mpiexec and a real training suite session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_workload_support import HERE, RAW_OPENER, write_raw_dataset

from pytest_iobench.mpi.session import MPISession
from pytest_iobench.mpi.training import run_training_session, settle_for
from pytest_iobench.storage import StorageSpec, open_storage
from pytest_iobench.workload.config import load_mapping

REPO = Path(__file__).resolve().parents[1]
SETTLE = 1.5


def tiny(settle: float = 0):
    return load_mapping({
        "dataset": {"num_files_train": 8, "num_samples_per_file": 1, "record_length_bytes": 4096},
        "reader": {"batch_size": 1, "read_threads": 1},
        "train": {"epochs": 1, "computation_time": 0.001},
        "storage": {"post_generation_settle_seconds": settle},
    }, "tiny")


def test_the_fork_key_is_emulated_and_the_option_wins():
    config = tiny(settle=5)
    assert "storage.post_generation_settle_seconds" not in config.not_emulated
    assert settle_for(config, None, generated=True) == 5
    assert settle_for(config, 0.25, generated=True) == 0.25  # --iobench-settle overrides the key
    assert settle_for(config, 0.0, generated=True) == 0
    assert settle_for(config, None, generated=False) == 0  # a dataset from an earlier run has settled


def test_a_bad_settle_is_one_line_at_start():
    import pytest_iobench.plugin.options  # noqa: F401  (declares every option)
    from pytest_iobench.settings import SettingsError, resolve

    assert resolve({}, {}, {"IOBENCH_SETTLE": "2.5"}).settle == 2.5
    assert resolve({}, {}, {}).settle is None
    for bad in ("-1", "soon", "inf"):
        with pytest.raises(SettingsError, match="give a number of seconds, 0 or more"):
            resolve({}, {}, {"IOBENCH_SETTLE": bad})


def test_rank_0_waits_and_the_barrier_holds_every_rank(tmp_path):
    """With the settle, both ranks wait at least the settle time before training (rank 1 at the
    barrier); without it, neither waits."""
    local = open_storage(StorageSpec("local", "posix", root=str(tmp_path / "data")))
    config = tiny()
    write_raw_dataset(local, config)
    session = MPISession(env={"PYTHONPATH": HERE}, timeout=120)
    settled = run_training_session(session, config, local, ranks=2, opener=RAW_OPENER, settle_seconds=SETTLE)
    plain = run_training_session(session, config, local, ranks=2, opener=RAW_OPENER)
    assert settled.settle_seconds == SETTLE and len(settled.settle_waited) == 2
    assert all(waited >= SETTLE for waited in settled.settle_waited), settled.settle_waited
    assert plain.settle_seconds == 0 and plain.settle_waited == [0.0, 0.0]


@pytest.mark.parametrize("how", ["workload-key", "option"])
def test_the_wait_is_recorded_in_the_document(tmp_path, how):
    """A training suite session on a dataset it generates: the first run waits and the
    document says so; the settle is in no metric."""
    args = (["--iobench-set", f"storage.post_generation_settle_seconds={SETTLE}"] if how == "workload-key"
            else [f"--iobench-settle={SETTLE}"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "IOBENCH_"))}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(REPO / "suites" / "test_training.py"),
         "--iobench-storage=local", "--iobench-libraries=posix", "--iobench-workload=unet3d_small",
         f"--iobench-root={tmp_path / 'root'}", "--iobench-json=out.json", "--iobench-report=none", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    (test,) = json.loads((tmp_path / "out.json").read_text())["tests"]
    settle = test["details"]["training"]["settle"]
    assert settle["seconds"] == SETTLE and settle["run"] == 0, settle
    assert all(waited >= SETTLE for waited in settle["waited_seconds_per_rank"]), settle
    assert "storage.post_generation_settle_seconds" not in " ".join(test["warnings"])
    assert not any("settle" in name for name in test["metrics"])
