"""Long training and throughput cases show progress in the terminal as generation does (past
pytest's capture): training by epoch and step of rank 0 (in-process and under mpiexec), with
elapsed time and ETA; throughput by bytes moved of the run's total, rate and ETA. The suites run
as a user runs them, with their progress threshold lowered so a short case shows it."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITES = ROOT / "suites"


def suite_without_delay(pytester, name: str, old: str, new: str):
    text = (SUITES / name).read_text()
    assert old in text
    pytester.makepyfile(**{name[:-3]: text.replace(old, new)})


@pytest.mark.parametrize("ranks", [1, 2])
def test_training_shows_epoch_step_and_eta(pytester, ranks):
    suite_without_delay(pytester, "test_training.py", "PROGRESS_AFTER = PROGRESS_EVERY = 2.0",
                        "PROGRESS_AFTER = PROGRESS_EVERY = 0.0")
    result = pytester.runpytest_subprocess(
        "--iobench-storage=local", "--iobench-libraries=posix", "--iobench-workload=unet3d_small",
        f"--iobench-ranks={ranks}", "--iobench-set", "train.computation_time=0.05",
        "--iobench-set", "metric.au=0.01",  # what is checked here is the progress, not the AU
        "--iobench-report=none",
        "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"iobench training test_training[[]unet3d_small-r{ranks}-local-posix]: "
                                 "rank 0 epoch */2 step */*, * s, ETA * s"])


def test_throughput_shows_bytes_rate_and_eta(pytester):
    suite_without_delay(pytester, "test_throughput.py", "progress=show)", "progress=show, progress_every=0.0)")
    result = pytester.runpytest_subprocess(
        "--iobench-storage=local", "--iobench-libraries=posix", "--iobench-threads=1", "--iobench-object-sizes=1MiB",
        "--iobench-throughput-bytes=256MiB", "-k", "not get", "--iobench-report=none", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["iobench throughput test_throughput[[]1MiB-put-local-posix-t1]: "
                                 "run 1/1, * MB of 268 MB, * MB/s, ETA * s"])
