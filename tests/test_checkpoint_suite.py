"""suites/test_checkpoint.py as a user runs it: at 2 ranks (llama3-8b's 8-rank layout on 2
processes) over local, direct and S3 with every library (posix, s3dlio, minio, boto3), each
checkpoint written and read back verified; and --iobench-warmup / --iobench-repeat re-running the
whole write + read session."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_iobench.report.schema import load_document

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "suites" / "test_checkpoint.py"


@pytest.fixture
def checkpoint_suite(pytester):
    pytester.makepyfile(test_checkpoint=SUITE.read_text())
    return pytester


def test_every_storage_and_library_at_two_ranks(checkpoint_suite):
    # fsync off: the libraries that sync anyway say so
    result = checkpoint_suite.runpytest_subprocess(
        "--iobench-storage=local,direct,s3", "--iobench-ranks=2", "--iobench-scale=1/10000",
        "--iobench-set", "checkpoint.fsync=False", "--iobench-report=none", "-p", "no:cacheprovider")
    ids = ["local-posix", "local-s3dlio", "direct-posix", "direct-s3dlio", "s3-s3dlio", "s3-minio", "s3-boto3"]
    result.assert_outcomes(passed=len(ids))
    tests = {t["params"]["storage"] + "-" + t["params"]["library"]: t
             for t in load_document(checkpoint_suite.path / "reports" / "latest.json")["tests"]}
    assert sorted(tests) == sorted(ids)
    for storage_id, test in tests.items():
        assert test["id"] == f"test_checkpoint.py::test_checkpoint[llama3-8b-r2-{storage_id}]"
        details = test["details"]["checkpoint"]
        run = details["runs"][0]
        size = test["metrics"]["checkpoint_size_GB"]["value"] * 1e9
        assert size == pytest.approx(112_457_113_600 / 10_000, rel=1e-3), storage_id  # 11.2 MB
        assert run["write_bytes"] == run["read_bytes"] == [pytest.approx(size)] * 2, storage_id
        assert details["processes"] == 2 and details["layout"]["ranks"] == 8
        assert [r["shards"] for r in run["per_rank"]] == [8, 8], "each process takes 8 of the 16 shards"
        assert any("the layout is computed for the model's 8 ranks; 2 processes wrote and read it" in w
                   for w in test["warnings"]), storage_id
        assert test["metrics"]["checkpoint_read_GB_per_second"]["value"] > 0
        syncs_anyway = any(w.startswith(f"checkpoint.fsync: False does not take effect on {storage_id}")
                           for w in test["warnings"])
        assert syncs_anyway == (storage_id in ("local-s3dlio", "direct-s3dlio")), storage_id
        buffered = any(storage_id in w and "page cache" in w and "O_DIRECT" in w for w in test["warnings"])
        assert buffered == (storage_id == "direct-s3dlio"), storage_id
        kind = storage_id.split("-")[0]
        assert details["cache_between_write_and_read"] == {
            "local": "evicted", "direct": "odirect", "s3": "no-client-cache"}[kind], storage_id
        assert details["fsync"] == ("not applicable" if kind == "s3" else False), storage_id


def test_repeat_and_warmup_rerun_the_whole_session(checkpoint_suite):
    result = checkpoint_suite.runpytest(
        "--iobench-libraries=posix", "--iobench-storage=local", "--iobench-scale=1/10000",
        "--iobench-repeat=2", "--iobench-warmup=1", "--iobench-report=none")
    result.assert_outcomes(passed=1)
    test = load_document(checkpoint_suite.path / "reports" / "latest.json")["tests"][0]
    runs = test["details"]["checkpoint"]["runs"]
    assert [r["warmup"] for r in runs] == [True, False, False], "one warm-up run, two counted runs"
    assert all(len(r["write_seconds"]) == 2 == len(r["read_seconds"]) for r in runs), "2 checkpoints per run"
    for phase in ("write", "read"):
        metric = test["metrics"][f"checkpoint_{phase}_seconds"]
        means = [sum(r[f"{phase}_seconds"]) / 2 for r in runs]
        assert metric["warmup"] == pytest.approx(means[:1]) and metric["repeats"] == pytest.approx(means[1:])
        assert metric["value"] == pytest.approx(sum(means[1:]) / 2)
