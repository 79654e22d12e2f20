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
an S3 storage, far slower than one. Datasets are generated once in the storage's datasets area and reused by later tests and runs
(a manifest records what was generated).
"""

from __future__ import annotations

import uuid

from pytest_iobench.mpi.training import measure_training, run_training_session

EMBEDDED_S3 = ("the embedded S3 endpoint (moto, one Python process serving a few hundred requests a second) "
               "is far slower than any S3 storage: its figures rank the client libraries against each other only; "
               "give --iobench-s3-endpoint to hold an S3 storage to the floor")


def test_training(training_workload, storage, ranks, mpi_session, iobench_config, iobench_record,
                  dataset_factory, dlio_output_dir, storage_factory):
    config = training_workload
    # generated once per location, kept for later runs; dataset.area is this test's library's
    dataset = dataset_factory(config.dataset, storage)
    if dataset.spec.num_files_generated != config.dataset.num_files_generated:
        # an adopted DLIO dataset larger than the workload asks: its first files, as DLIO reads them
        config = config.with_overrides([f"dataset.num_files_generated={dataset.spec.num_files_generated}"])
    waived = EMBEDDED_S3 if storage.kind == "s3" and storage_factory.embedded else ""

    def run():
        checkpoints = f"training-checkpoints-{uuid.uuid4().hex[:10]}"
        try:
            return run_training_session(
                mpi_session, config, dataset.area, ranks=ranks, dataset_prefix=dataset.prefix,
                output_folder=dlio_output_dir, dataset_bytes=dataset.bytes,
                checkpoint_storage=storage, checkpoint_prefix=checkpoints, scale=iobench_config.scale)
        finally:
            if config.workflow.checkpoint:
                storage.delete_prefix(checkpoints + "/")

    # below the floor the test fails (the criterion holds the median of the measured runs)
    outcome = measure_training(iobench_record, run, config, ranks, floor_waived=waived)
    assert outcome.summary["bytes_read"] > 0, "no byte came from the storage"
    used = {(r["storage"]["kind"], r["storage"]["library"]) for r in outcome.results}
    expected = {("direct" if config.reader.odirect and storage.kind == "local" else storage.kind, storage.library)}
    assert used == expected, f"the ranks read through {used}, not the storage under test"
