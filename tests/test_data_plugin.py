"""The data fixtures in real pytest sessions: a dataset generated once per session and reused by
later tests and later sessions, indirect specs, keep_files, progress in the terminal, bad specs
as clear errors, and the generation suite's test ids and records."""

from __future__ import annotations

import json
import os
import re
import statistics
from pathlib import Path

ONE_LIBRARY = ("--iobench-libraries=posix", "-p", "no:cacheprovider")
SUITE = Path(__file__).resolve().parents[1] / "suites" / "test_generate.py"

SESSION_TESTS = """
import pytest

SEEN = []

@pytest.fixture
def dataset_spec():
    return {"format": "parquet", "num_files_train": 3, "num_samples_per_file": 10, "record_length_bytes": 2000}

def test_first(dataset):
    SEEN.append(dataset)
    print("REUSED=%s PREFIX=%s" % (dataset.reused, dataset.prefix))
    with dataset.open(dataset.keys()[2]) as f:
        assert f.num_samples == 10 and len(f.read_sample(9)) == 2000

def test_second_gets_the_same(dataset):
    assert dataset is SEEN[0]

@pytest.mark.parametrize("dataset", [{"format": "npy", "num_files_train": 2, "record_length_bytes": 512}],
                         indirect=True)
def test_indirect(dataset):
    assert dataset.spec.format == "npy" and dataset.storage.list("train/") == dataset.keys()

def test_factory(dataset_factory, storage):
    ds = dataset_factory({"format": "tfrecord", "num_files_train": 2, "keep_files": False}, storage)
    print("GONE_AFTER=" + ds.storage.uri(""))
"""


def test_dataset_generated_once_per_session_and_reused_by_the_next(pytester):
    pytester.makepyfile(test_data=SESSION_TESTS)
    root = pytester.path / "root"
    first = pytester.runpytest_subprocess("-s", f"--iobench-root={root}", *ONE_LIBRARY)
    first.assert_outcomes(passed=4)
    out = first.stdout.str()
    assert "REUSED=False" in out
    prefix = re.search(r"PREFIX=(\S+)", out).group(1)
    kept = root / "iobench-datasets" / prefix
    assert (kept / "iobench-manifest.json").exists() and len(list((kept / "train").iterdir())) == 3
    gone = re.search(r"GONE_AFTER=(\S+)", out).group(1)
    assert not os.path.exists(os.path.join(gone, "iobench-manifest.json"))  # keep_files: false

    second = pytester.runpytest_subprocess("-s", f"--iobench-root={root}", *ONE_LIBRARY)
    second.assert_outcomes(passed=4)
    assert "REUSED=True" in second.stdout.str()

    third = pytester.runpytest_subprocess("-s", f"--iobench-root={root}", "--iobench-regenerate=yes", *ONE_LIBRARY)
    third.assert_outcomes(passed=4)
    assert "REUSED=False" in third.stdout.str()


def test_long_generation_shows_progress_in_the_terminal(pytester):
    pytester.makepyfile(test_progress="""
import pytest_iobench.plugin.data as data_plugin

data_plugin.PROGRESS_AFTER = 0  # show it however short the run

def test_it(dataset_factory):
    dataset_factory({"format": "npy", "num_files_train": 5, "record_length_bytes": 4096})
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")  # capture on: progress gets past it
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["iobench generating *: 5/5 files, * MB, * MB/s, ETA 0 s"])


def test_a_bad_dataset_spec_is_a_clear_error(pytester):
    pytester.makepyfile(test_bad="""
def test_it(dataset_factory):
    dataset_factory({"format": "npz", "record_length_bytes": -1, "num_file_train": 2})
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*dataset.num_file_train: unknown key; did you mean dataset.num_files_train?*",
        "*dataset.record_length_bytes: -1 is not valid; give a number of bytes >= 1*",
    ])


def test_generation_suite_ids_and_records(pytester):
    result = pytester.runpytest_subprocess(
        str(SUITE), "--iobench-formats=parquet,jpeg,tfrecord", "--iobench-generate-size=2MiB", "--iobench-threads=1,4",
        "-p", "no:cacheprovider", "-v", f"--rootdir={pytester.path}")
    result.assert_outcomes(passed=12)  # tfrecord: its DALI indexes are under index/, not train/
    for test_id in ("test_generate[parquet-local-posix-t1]", "test_generate[parquet-local-s3dlio-t4]",
                    "test_generate[jpeg-local-posix-t4]"):
        assert f"{test_id} PASSED" in result.stdout.str()
    reports = sorted((pytester.path / "reports").glob("iobench-*.json"))
    assert reports, "the run's result document"
    records = [r for r in json.loads(reports[-1].read_text())["tests"] if "parquet-local-posix-t4" in r["id"]]
    assert len(records) == 1 and records[0]["kind"] == "generate"
    metrics = records[0]["metrics"]
    assert metrics["write_throughput"]["unit"] == "MB/s" and metrics["write_throughput"]["value"] > 0
    assert metrics["files_per_second"]["value"] > 0 and metrics["peak_rss"]["unit"] == "MiB"


def test_generation_suite_generates_afresh_for_each_warmup_and_repeat(pytester):
    result = pytester.runpytest_subprocess(
        str(SUITE), "--iobench-formats=npy", "--iobench-generate-size=1MiB", "--iobench-threads=1",
        "--iobench-repeat=2", "--iobench-warmup=1", *ONE_LIBRARY, f"--rootdir={pytester.path}")
    result.assert_outcomes(passed=1)
    (record,) = json.loads(sorted((pytester.path / "reports").glob("iobench-*.json"))[-1].read_text())["tests"]
    throughput = record["metrics"]["write_throughput"]
    assert len(throughput["repeats"]) == 2 and len(throughput["warmup"]) == 1
    assert throughput["value"] == statistics.median(throughput["repeats"])
    runs = record["details"]["runs"]
    assert len(runs) == 3 and len({r["folder"] for r in runs}) == 3  # each in a new folder
    assert [r["bytes"] for r in runs] == [record["metrics"]["bytes_written"]["value"]] * 3
    # the steady state beside the whole-run rate; 1 MiB is (on any machine that writes it in
    # under 0.6 s) over too soon to trust, and says so
    steady = record["metrics"]["steady_write_throughput"]
    assert len(steady["repeats"]) == 2 and len(steady["steady"]["runs"]) == 2
    short = [run["slices"] < steady["steady"]["min_slices"] for run in steady["steady"]["runs"]]
    assert ("too short" in steady.get("unfit", "")) == any(short)
    assert throughput.get("unfit") == steady.get("unfit")
    assert "untimed" in record["details"]["warmup_excluded"]


def test_the_dataset_fixture_reads_through_the_tests_own_storage(pytester):
    """local-posix and direct-posix share the datasets directory: one generation, and each test
    gets the dataset through the storage it is parametrized with (direct read through local)."""
    pytester.makepyfile(test_libraries="""
RESULTS = []

def test_it(dataset, storage):
    assert (dataset.area.kind, dataset.area.library) == (storage.kind, storage.library)
    assert (dataset.storage.kind, dataset.storage.library) == (storage.kind, storage.library)
    with dataset.open(dataset.keys()[0]) as f:
        assert f.num_samples == 2
    RESULTS.append(dataset.result)

def test_generated_once():
    assert len(RESULTS) == 2 and RESULTS[0] is RESULTS[1] and not RESULTS[0].reused
""")
    result = pytester.runpytest_subprocess("--iobench-storage=local,direct", *ONE_LIBRARY)
    result.assert_outcomes(passed=3)


def test_adopt_reads_a_dlio_dataset_where_dlio_wrote_it(pytester):
    import numpy as np

    root = pytester.path / "root"
    train = root / "data" / "unet3d" / "train"
    train.mkdir(parents=True)
    for i in range(2):  # as DLIO writes npz files: np.savez of x (samples last) and y
        np.savez(train / f"img_{i}_of_2.npz", x=np.full((300, 2), i, np.uint8), y=np.zeros(2))
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    pytester.makepyfile(test_adopt="""
import pytest

SPEC = {"format": "npz", "data_folder": "./data/unet3d/", "num_files_train": 2, "num_samples_per_file": 2,
        "record_length_bytes": 300}

@pytest.mark.parametrize("dataset", [SPEC], indirect=True)
def test_adopted(dataset, storage):
    assert dataset.result.adopted and dataset.prefix == "data/unet3d"
    assert (dataset.storage.kind, dataset.storage.library) == (storage.kind, storage.library)
    with dataset.open(dataset.keys()[1]) as f:
        assert f.read_sample(1).tolist() == [1] * 300

@pytest.mark.parametrize("dataset", [{**SPEC, "data_folder": "data/resnet50"}], indirect=True)
def test_nothing_there(dataset):
    pass
""")
    result = pytester.runpytest_subprocess(f"--iobench-root={root}", "--iobench-adopt=true", *ONE_LIBRARY)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([f"*NothingToAdopt: {root}/data/resnet50: no dataset to adopt (nothing under "
                                 "train/, valid/, index/): expected the spec's files there, e.g. train/img_0_of_2.npz"])
    after = sorted(p.relative_to(root) for p in root.rglob("*") if "iobench-run-" not in str(p))
    assert after == before  # nothing written: no manifest, no dataset generated in iobench-datasets/


def test_generation_suite_warns_when_writes_are_not_what_the_storage_says(pytester):
    result = pytester.runpytest_subprocess(
        str(SUITE), "--iobench-storage=local,direct", "--iobench-libraries=posix,s3dlio", "--iobench-formats=npy",
        "--iobench-generate-size=1MiB", "--iobench-threads=1", "-p", "no:cacheprovider", f"--rootdir={pytester.path}")
    result.assert_outcomes(passed=4)
    tests = {t["id"].split("[")[1]: t for t in
             json.loads(sorted((pytester.path / "reports").glob("iobench-*.json"))[-1].read_text())["tests"]}
    caveat = tests["npy-direct-s3dlio-t1]"]["warnings"]
    assert any("direct-s3dlio" in w and "page cache" in w for w in caveat), caveat
    assert not any("page cache" in w for w in tests["npy-direct-posix-t1]"]["warnings"])  # O_DIRECT writes
    # generation does not fsync; s3dlio's file writers do all the same, so their figures say so
    for storage_id in ("local-s3dlio", "direct-s3dlio"):
        notes = tests[f"npy-{storage_id}-t1]"]["warnings"]
        assert any(w.startswith(f"fsync: False does not take effect on {storage_id}") for w in notes), notes
    for storage_id in ("local-posix", "direct-posix"):
        assert not any("fsync" in w for w in tests[f"npy-{storage_id}-t1]"]["warnings"]), storage_id
