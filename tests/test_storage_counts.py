"""What a test's storage_ops count where the library cannot count its attempts (s3dlio), and
per rank under MPI: s3dlio's requests and failures are counted and what it cannot count is
named unknown, never shown as a zero; ranks run by real mpiexec through the real fault proxy
each bring their counts into the record, non-zero where faults were injected, zero on a clean
run; the reports show them per rank."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jsonschema
import pytest
from test_mpi_session import tiny
from test_workload_support import HERE, RAW_OPENER, write_raw_dataset

from pytest_iobench.mpi.checkpointing import record_checkpoint, run_checkpoint_session
from pytest_iobench.mpi.session import MPISession
from pytest_iobench.mpi.storage_ops import rank_ops, record_rank_ops
from pytest_iobench.mpi.training import record_training, run_training_session
from pytest_iobench.report.human import _storage_ops_blocks
from pytest_iobench.report.record import TestRecord
from pytest_iobench.report.schema import schema
from pytest_iobench.report.text import retries_cell
from pytest_iobench.storage.endpoint import EmbeddedS3
from pytest_iobench.storage.faultproxy import FaultProxy, parse_profile
from pytest_iobench.storage.registry import StorageSpec, open_storage
from pytest_iobench.storage.retry import FIELDS, Counts, add_entries, entry, seen_on_the_wire
from pytest_iobench.storage.s3common import S3Endpoint
from pytest_iobench.workload.config import load_workload

BUCKET = "counts"
S3DLIO_UNKNOWN = ["attempts", "retries", "throttles", "resets", "timeouts", "backoff_s"]


@pytest.fixture(scope="module")
def moto():
    with EmbeddedS3(bucket=BUCKET) as endpoint:
        yield endpoint


def _problems(definition: str, value: dict) -> list[str]:
    """What makes ``value`` invalid against one definition of the result schema."""
    validator = jsonschema.Draft202012Validator({"$defs": schema()["$defs"], "$ref": f"#/$defs/{definition}"})
    return [e.message for e in validator.iter_errors(value)]


def _valid_ops(ops: dict) -> list[str]:
    return _problems("storage_ops", ops)


def test_a_library_that_cannot_count_attempts_names_them_unknown():
    counts = Counts()
    before = counts.snapshot()
    counts.add("s3dlio", requests=5)
    counts.add("s3dlio", failures=1)
    counts.attempt("boto3", "throttle", 0.25)
    counts.add("boto3", requests=1)
    got = counts.since(before)
    assert got["s3dlio"] == {"requests": 5, "failures": 1, "unknown": S3DLIO_UNKNOWN}
    assert set(got["boto3"]) == set(FIELDS) and got["boto3"]["throttles"] == 1 and got["boto3"]["retries"] == 1
    assert _valid_ops(got) == []
    # a boto3 entry lacking a field it counts is invalid: only an unknown field may be absent
    assert _valid_ops({"boto3": {"requests": 1}})


def test_entries_add_up_and_unknown_stays_unknown():
    total: dict = {}
    add_entries(total, {"s3dlio": entry("s3dlio", {"requests": 3, "failures": 1})})
    add_entries(total, {"s3dlio": entry("s3dlio", {"requests": 4}), "minio": entry("minio", {"requests": 2,
                                                                                          "attempts": 3, "retries": 1,
                                                                                          "backoff_s": 0.1})})
    add_entries(total, {"minio": entry("minio", {"requests": 1, "attempts": 1, "backoff_s": 0.2})})
    assert total["s3dlio"] == {"requests": 7, "failures": 1, "unknown": S3DLIO_UNKNOWN}
    assert total["minio"]["requests"] == 3 and total["minio"]["attempts"] == 4
    assert total["minio"]["backoff_s"] == pytest.approx(0.3)


def test_what_the_proxy_saw_completes_an_s3dlio_entry():
    ops = seen_on_the_wire({"requests": 69, "failures": 0, "unknown": S3DLIO_UNKNOWN},
                           attempts=83, throttles=10, resets=4, timeouts=0)
    assert ops == {"requests": 69, "attempts": 83, "retries": 14, "throttles": 10, "resets": 4, "timeouts": 0,
                   "failures": 0, "unknown": ["backoff_s"]}
    assert _valid_ops({"s3dlio": ops}) == []
    # a step that did not complete, or fewer attempts than requests counted (a get_many's keys
    # not all sent before a deadline): retries cannot be told, and are not made up
    for completed, attempts in ((False, 83), (True, 4)):
        ops = seen_on_the_wire({"requests": 8, "failures": 0, "unknown": S3DLIO_UNKNOWN},
                               attempts=attempts, throttles=0, resets=0, timeouts=4, completed=completed)
        assert "retries" not in ops and ops["unknown"] == ["retries", "backoff_s"]
        assert _valid_ops({"s3dlio": ops}) == []


S3DLIO_CHILD = r"""
import json, sys
from pytest_iobench.storage.errors import StorageError, StorageNotFound
from pytest_iobench.storage.registry import StorageSpec, open_storage
from pytest_iobench.storage.retry import COUNTS
from pytest_iobench.storage.s3common import S3Endpoint
from pytest_iobench.workload.config import load_workload
url, key, secret, retries = json.loads(sys.argv[1])
storage = open_storage(StorageSpec("s3", "s3dlio", bucket="counts", prefix="s3dlio", endpoint_url=url,
                                   op_timeout=30, retries=retries, backoff=0.01), S3Endpoint(url, key, secret))
before = COUNTS.snapshot()
if retries == 0:  # through an endpoint that throttles every request after the first 3
    for i in range(4):
        try:
            storage.put(f"f/{i}", b"x")
        except StorageError as exc:
            print(f"failed: {exc}", file=sys.stderr)
    print(json.dumps(COUNTS.since(before)))
    sys.exit(0)
for i in range(20):
    storage.put(f"o/{i}", bytes([i]) * 1000)
assert [bytes(b) for b in storage.get_many([f"o/{i}" for i in range(20)])] == [bytes([i]) * 1000 for i in range(20)]
assert len(storage.list("o/")) == 20
try:
    storage.get("o/missing")
except StorageNotFound:
    pass
assert bytes(storage.get_range("o/1", 10**9, 5)) == b""  # past the end: an answer, not a failure
print(json.dumps(COUNTS.since(before)))
"""


def _s3dlio_child(moto, profile: str, retries: int) -> tuple[dict, FaultProxy, str]:
    """s3dlio binds one endpoint per process: it runs in a child, through the proxy."""
    with FaultProxy(moto.url, parse_profile(profile)) as proxy:
        args = json.dumps([proxy.url, moto.access_key, moto.secret_key, retries])
        done = subprocess.run([sys.executable, "-c", S3DLIO_CHILD, args], capture_output=True, text=True,
                              timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])["s3dlio"], proxy, done.stderr


@pytest.mark.parametrize("profile", ["throttle-20%,seed-7", "pass"])
def test_s3dlio_counts_its_requests_and_names_the_rest_unknown(moto, profile):
    """Its count of requests is the requests the proxy passed on; a missing key and a range
    past the end are answers, not failures; what it met on the way is unknown to it."""
    ops, proxy, _ = _s3dlio_child(moto, profile, retries=8)
    # 20 puts, 20 gets, a list, a get of a missing key, a range past the end and the stat
    # that tells it from a missing key
    assert ops == {"requests": 44, "failures": 0, "unknown": S3DLIO_UNKNOWN}
    assert proxy.stats["requests"] - proxy.stats["throttle"] == ops["requests"]
    assert (proxy.stats["throttle"] > 0) == (profile != "pass")
    assert retries_cell({"storage_ops": {"s3dlio": ops}}) == ""  # nothing known to show


def test_s3dlio_counts_an_operation_that_failed(moto):
    """retries=0 through an endpoint throttling every request after the first 3: the 4th
    put fails, and is counted as a failure; the terminal line shows it, with ? for retries."""
    ops, proxy, stderr = _s3dlio_child(moto, "after-3,throttle-100%", retries=0)
    assert "failed: " in stderr and "f/3" in stderr
    assert ops == {"requests": 4, "failures": 1, "unknown": S3DLIO_UNKNOWN}
    assert proxy.stats["throttle"] >= 1
    assert retries_cell({"storage_ops": {"s3dlio": ops}}) == (
        "s3dlio ? retries of 4 requests, 1 failed (? throttled, ? reset, ? timed out), ? s in backoff")


def _train_through(moto, proxy: FaultProxy, profile: str, prefix: str):
    config = tiny()
    endpoint = S3Endpoint(proxy.url, moto.access_key, moto.secret_key, moto.region)
    spec = StorageSpec("s3", "boto3", bucket=BUCKET, prefix=prefix, endpoint_url=proxy.url, op_timeout=30,
                       retries=8, backoff=0.01)
    storage = open_storage(spec, endpoint)
    write_raw_dataset(storage, config)
    proxy.set_profile(parse_profile(profile))
    before = dict(proxy.stats)
    session = MPISession(env={"PYTHONPATH": HERE, "AWS_ACCESS_KEY_ID": moto.access_key,
                              "AWS_SECRET_ACCESS_KEY": moto.secret_key}, timeout=180)
    try:
        outcome = run_training_session(session, config, storage, ranks=2, opener=RAW_OPENER)
    finally:
        proxy.set_profile(parse_profile("pass"))
        storage.close()
    injected = {k: proxy.stats.get(k, 0) - before.get(k, 0) for k in ("requests", "throttle")}
    return outcome, injected


@pytest.mark.parametrize("profile", ["throttle-25%,seed-5", "pass"])
def test_each_rank_under_mpiexec_brings_its_counts_into_the_record(moto, profile):
    with FaultProxy(moto.url) as proxy:
        outcome, injected = _train_through(moto, proxy, profile, f"ranks-{profile.split('-')[0]}")
    assert not outcome.run.in_process and len(outcome.results) == 2
    record = TestRecord("tests/test_x.py::test_train[r2]")
    record_training(record, outcome, floor_waived="a test of counting")
    per_rank = record.details["storage_ops_per_rank"]
    assert [r["rank"] for r in per_rank] == [0, 1]
    for rank in per_rank:
        ops = rank["storage_ops"]["boto3"]
        assert ops["requests"] >= 4, rank  # its 4 files at least
        assert ops["attempts"] == ops["requests"] + ops["retries"]
        if profile == "pass":
            assert (ops["retries"], ops["throttles"], ops["backoff_s"]) == (0, 0, 0), rank
    total = record.storage_ops["boto3"]
    assert total["requests"] == sum(r["storage_ops"]["boto3"]["requests"] for r in per_rank)
    # every 503 the proxy gave during the run was met, and counted, by one of the ranks
    assert total["throttles"] == injected["throttle"]
    assert total["attempts"] == injected["requests"]
    if profile != "pass":
        assert total["throttles"] > 0 and total["retries"] >= total["throttles"]
        assert any(r["storage_ops"]["boto3"]["throttles"] for r in per_rank)
    assert _valid_ops(record.storage_ops) == []
    record.outcome = "passed"
    assert _problems("test", {**record.to_dict(), "message": "", "setup_s": 0.0, "teardown_s": 0.0,
                              "worker": None}) == []
    assert rank_ops([outcome.results]) == per_rank


def test_each_checkpoint_rank_under_mpiexec_brings_its_counts_into_the_record(moto):
    """Checkpoints written and read back by 2 ranks (multipart uploads) through 10 % 503s."""
    config = load_workload("llama3-8b", ["checkpoint.num_checkpoints_write=1", "checkpoint.num_checkpoints_read=1",
                                         "checkpoint.time_between_checkpoints=0"])
    with FaultProxy(moto.url, parse_profile("throttle-10%,seed-9")) as proxy:
        endpoint = S3Endpoint(proxy.url, moto.access_key, moto.secret_key, moto.region)
        spec = StorageSpec("s3", "boto3", bucket=BUCKET, prefix="ckpt-ranks", endpoint_url=proxy.url,
                           op_timeout=30, retries=8, backoff=0.01)
        storage = open_storage(spec, endpoint)
        session = MPISession(env={"PYTHONPATH": HERE, "AWS_ACCESS_KEY_ID": moto.access_key,
                                  "AWS_SECRET_ACCESS_KEY": moto.secret_key}, timeout=180)
        try:
            outcome = run_checkpoint_session(session, config, storage, ranks=2, scale=1 / 4000)
        finally:
            storage.close()
    assert not outcome.run.in_process
    record = TestRecord("tests/test_x.py::test_checkpoint[r2]")
    record_checkpoint(record, outcome)
    per_rank = record.details["storage_ops_per_rank"]
    assert [r["rank"] for r in per_rank] == [0, 1]
    assert all(r["storage_ops"]["boto3"]["requests"] > 0 for r in per_rank)
    total = record.storage_ops["boto3"]
    assert total["throttles"] == proxy.stats["throttle"] > 0
    assert total["attempts"] == proxy.stats["requests"]
    assert _valid_ops(record.storage_ops) == []


def test_the_reports_show_per_rank_counts_under_the_total():
    ranks = [{"rank": 0, "storage_ops": {"boto3": entry("boto3", {"requests": 6, "attempts": 8, "retries": 2,
                                                                   "throttles": 2, "backoff_s": 0.02})}},
             {"rank": 1, "storage_ops": {"boto3": entry("boto3", {"requests": 5, "attempts": 5})}}]
    total: dict = {}
    for rank in ranks:
        add_entries(total, rank["storage_ops"])
    tests = [{"id": "suites/test_train.py::test_train[r2]", "details": {"storage_ops_per_rank": ranks},
              "storage_ops": total},
             {"id": "suites/test_read.py::test_read[s3dlio]", "details": {},
              "storage_ops": {"s3dlio": entry("s3dlio", {"requests": 9, "failures": 2})}}]
    blocks = _storage_ops_blocks(tests)
    table = next(b for b in blocks if b.kind == "table")
    assert table.headers[:3] == ["test", "rank", "library"]
    assert table.rows == [
        ["test_train[r2]", "all", "boto3", "11", "13", "2", "2", "0", "0", "0.02"],
        ["", "0", "boto3", "6", "8", "2", "2", "0", "0", "0.02"],
        ["", "1", "boto3", "5", "5", "0", "0", "0", "0", "0"],
        ["test_read[s3dlio]", "", "s3dlio", "9", "?", "?", "?", "?", "?", "?"],
    ]
    assert any("not counted by s3dlio" in (b.text or "") for b in blocks if b.kind == "paragraph")


def test_no_rank_counts_when_the_rank_ran_in_process():
    from types import SimpleNamespace

    outcome = SimpleNamespace(run=SimpleNamespace(in_process=True), results=[{"rank": 0, "storage_ops": {}}])
    record = TestRecord("t")
    record_rank_ops(record, [outcome])
    assert "storage_ops_per_rank" not in record.details and record.storage_ops == {}



def test_a_session_records_each_ranks_counts_in_its_document(pytester, monkeypatch, moto):
    """The shipped training suite, 2 ranks under mpiexec, through 10 % 503s from the proxy in
    front of moto: the document's test entry has each rank's counts (throttles met by the
    ranks) and the total, which every 503 the proxy gave is counted in; the Markdown report
    has a row per rank."""
    from pytest_iobench.report.schema import load_document

    for name, value in {"AWS_ACCESS_KEY_ID": moto.access_key, "AWS_SECRET_ACCESS_KEY": moto.secret_key,
                        "AWS_ENDPOINT_URL": "", "IOBENCH_S3_ENDPOINT": ""}.items():
        monkeypatch.setenv(name, value)
    suite = os.path.join(os.path.dirname(HERE), "suites", "test_training.py")
    with open(suite) as f:
        pytester.makepyfile(test_training=f.read())
    with FaultProxy(moto.url, parse_profile("throttle-10%,seed-21")) as proxy:
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "-k", "resnet50_small and boto3", "--iobench-storage=s3",
            "--iobench-libraries=boto3", "--iobench-ranks=2", f"--iobench-s3-endpoint={proxy.url}",
            f"--iobench-bucket={BUCKET}/session", "--iobench-backoff=0.01", "--iobench-workload=resnet50_small",
            "--iobench-set", "metric.au=0")  # what is checked is the counts, not the AU (machine speed)
    result.assert_outcomes(passed=1)
    (test,) = load_document(pytester.path / "reports" / "latest.json")["tests"]
    per_rank = test["details"]["storage_ops_per_rank"]
    assert [r["rank"] for r in per_rank] == [0, 1]
    ranks = [r["storage_ops"]["boto3"] for r in per_rank]
    assert all(ops["requests"] > 0 for ops in ranks)
    total = test["storage_ops"]["boto3"]
    assert total["throttles"] == proxy.stats["throttle"] > 0
    assert sum(ops["throttles"] for ops in ranks) > 0
    assert total["requests"] >= sum(ops["requests"] for ops in ranks)
    markdown = next((pytester.path / "reports").glob("iobench-*.md")).read_text()
    assert "| rank |" in markdown and "| all | boto3 |" in markdown
