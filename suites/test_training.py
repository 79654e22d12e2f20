"""Training emulation: each workload's dataset read as DLIO's training loop reads it, through
every storage and library, on each rank count; AU against the workload's floor.

    pytest suites/test_training.py --iobench-storage=local,direct,s3 --iobench-ranks=1,2
    pytest suites/test_training.py --iobench-workload=unet3d_h100 --iobench-set dataset.num_files_train=32

Each test runs the whole workload --iobench-warmup times (recorded, not counted), then
--iobench-repeat times (MLPerf Storage: one warm-up run, then measured runs); each metric is the
median of the measured runs. A run whose (median) mean AU is below ``metric.au`` fails with AU,
floor and the slowest phase; the metrics are recorded either way, and DLIO's output files of the
last run are written to reports/dlio/<run start>/<test id>/.
On the embedded S3 endpoint the floor is not applied (the results say why): it stands in for
an S3 storage, far slower than one. Datasets are generated once in the storage's datasets area
and reused by later tests and runs (a manifest records what was generated).
"""

from __future__ import annotations

import re
import time
import uuid

from pytest_iobench.mpi.training import measure_training, run_training_session, settle_for

#: a run that takes longer than this shows rank 0's progress, at most every PROGRESS_EVERY seconds
PROGRESS_AFTER = PROGRESS_EVERY = 2.0
_STEP = re.compile(r"^epoch (\d+) step (\d+)/(\d+)")

EMBEDDED_S3 = ("the embedded S3 endpoint (moto, one Python process serving a few hundred requests a second) "
               "is far slower than any S3 storage: its figures rank the client libraries against each other only; "
               "give --iobench-s3-endpoint to hold an S3 storage to the floor")


def progress_line(note: str, epochs: int, elapsed: float) -> str:
    """``epoch 2/5 step 40/125, 12 s, ETA 31 s`` from rank 0's note ``epoch 2 step 40/125``."""
    match = _STEP.match(note)
    if not match:
        return f"{note}, {elapsed:.0f} s"
    epoch, step, steps = (int(g) for g in match.groups())
    done = ((epoch - 1) * steps + step) / (epochs * steps)
    eta = f", ETA {elapsed * (1 - done) / done:.0f} s" if done > 0 else ""
    return f"epoch {epoch}/{epochs} step {step}/{steps}{note[match.end():]}, {elapsed:.0f} s{eta}"


def test_training(training_workload, storage, ranks, mpi_session, iobench_config, iobench_record,
                  dataset_factory, dlio_output_dir, storage_factory, iobench_progress):
    config = training_workload
    # generated once per location, kept for later runs; dataset.area is this test's library's
    dataset = dataset_factory(config.dataset, storage)
    if dataset.spec.num_files_generated != config.dataset.num_files_generated:
        # an adopted DLIO dataset larger than the workload asks: its first files, as DLIO reads them
        config = config.with_overrides([f"dataset.num_files_generated={dataset.spec.num_files_generated}"])
    waived = EMBEDDED_S3 if storage.kind == "s3" and storage_factory.embedded else ""
    # a dataset this session generated: the first run waits the settle time (once per test)
    settle = [settle_for(config, iobench_config.settle, generated=not dataset.reused)]

    def run():
        checkpoints = f"training-checkpoints-{uuid.uuid4().hex[:10]}"
        start, shown = time.monotonic(), [0.0]

        def show(note: str) -> None:
            elapsed = time.monotonic() - start
            if iobench_progress is not None and elapsed >= PROGRESS_AFTER and elapsed - shown[0] >= PROGRESS_EVERY:
                shown[0] = elapsed
                iobench_progress("training", f"rank 0 {progress_line(note, config.train.epochs, elapsed)}")

        try:
            with mpi_session.reporting(show):
                return run_training_session(
                    mpi_session, config, dataset.area, ranks=ranks, dataset_prefix=dataset.prefix,
                    output_folder=dlio_output_dir, dataset_bytes=dataset.bytes,
                    checkpoint_storage=storage, checkpoint_prefix=checkpoints, scale=iobench_config.scale,
                    settle_seconds=settle.pop() if settle else 0.0)
        finally:
            if config.workflow.checkpoint:
                storage.delete_prefix(checkpoints + "/")

    # below the floor the test fails (the criterion holds the median of the measured runs)
    outcome = measure_training(iobench_record, run, config, ranks, floor_waived=waived)
    assert outcome.summary["bytes_read"] > 0, "no byte came from the storage"
    used = {(r["storage"]["kind"], r["storage"]["library"]) for r in outcome.results}
    expected = {("direct" if config.reader.odirect and storage.kind == "local" else storage.kind, storage.library)}
    assert used == expected, f"the ranks read through {used}, not the storage under test"
