"""One retry policy for every S3 library: through the fault proxy (real 503 SlowDown and real
connection resets in front of moto), each library completes its puts, streamed uploads and gets
with every byte as written, counts what it met, and leaves no multipart upload open; a clean
endpoint counts no retry."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pytest_iobench.storage.endpoint import EmbeddedS3, open_uploads
from pytest_iobench.storage.faultproxy import FaultProxy, parse_profile
from pytest_iobench.storage.options import retry_count
from pytest_iobench.storage.registry import StorageSpec, open_storage
from pytest_iobench.storage.retry import COUNTS, MAX_BACKOFF, RetryPolicy
from pytest_iobench.storage.s3common import S3Endpoint, completed_anyway, multipart_etag

BUCKET = "retries"
#: a streamed object of two parts and a bit for every library (boto3 and s3dlio: 8 MiB parts)
STREAMED = (17 << 20) + 123


@pytest.fixture(scope="module")
def moto():
    with EmbeddedS3(bucket=BUCKET) as endpoint:
        yield endpoint


def through(proxy: FaultProxy, endpoint: S3Endpoint) -> S3Endpoint:
    return S3Endpoint(proxy.url, endpoint.access_key, endpoint.secret_key, endpoint.region)


def payload(n: int, seed: int) -> bytes:
    return bytes((i * 31 + seed) & 0xFF for i in range(256)) * (n // 256) + bytes(n % 256)


def exercise(storage) -> None:
    """Small puts, one streamed object in parts, reads of all: every byte checked."""
    small = {f"small/{i}": payload(946 + i, i) for i in range(30)}
    for key, data in small.items():
        storage.put(key, data)
    big = payload(STREAMED, 7)
    with storage.open_writer("big/object") as writer:
        for start in range(0, len(big), 1 << 20):
            writer.write(big[start:start + (1 << 20)])
    for key, data in small.items():
        assert bytes(storage.get(key)) == data, key
    assert bytes(storage.get("big/object")) == big


def test_the_backoff_is_full_jitter_under_an_exponential_ceiling():
    policy = RetryPolicy(retries=4, backoff=0.1)
    assert policy.attempts == 5
    assert [policy.delay(n, rand=lambda: 1.0) for n in (1, 2, 3)] == [0.1, 0.2, 0.4]
    assert policy.delay(30, rand=lambda: 1.0) == MAX_BACKOFF
    assert policy.delay(3, rand=lambda: 0.0) == 0.0


def test_a_bad_retry_count_says_what_is_valid():
    assert retry_count("0") == 0
    for bad, says in (("-1", "out of range"), ("21", "out of range"), ("two", "not a whole number")):
        with pytest.raises(ValueError, match=f"{says}.*give 0 to 20"):
            retry_count(bad)


@pytest.mark.parametrize("library", ["boto3", "minio"])
@pytest.mark.parametrize("profile", ["throttle-30%,reset-5%,seed-3", "pass"])
def test_every_request_completes_through_faults_and_is_counted(moto, library, profile):
    prefix = f"{library}-{profile.split(',')[0]}"
    with FaultProxy(moto.url, parse_profile(profile)) as proxy:
        endpoint = through(proxy, moto)
        spec = StorageSpec("s3", library, bucket=BUCKET, prefix=prefix, endpoint_url=endpoint.url,
                           op_timeout=30, retries=8, backoff=0.01)
        storage = open_storage(spec, endpoint)
        before = COUNTS.snapshot()
        try:
            exercise(storage)
        finally:
            storage.close()
        counted = COUNTS.since(before)[library]
    faults = proxy.stats["throttle"] + proxy.stats["reset"]
    assert counted["attempts"] == counted["requests"] + counted["retries"]
    if profile == "pass":
        assert (counted["retries"], counted["throttles"], counted["resets"], counted["backoff_s"]) == (0, 0, 0, 0)
    else:
        # every injected fault was met by an attempt and retried
        assert counted["throttles"] == proxy.stats["throttle"] > 0
        assert counted["resets"] == proxy.stats["reset"] > 0
        assert counted["retries"] == faults
        assert counted["backoff_s"] > 0
    assert open_uploads(moto, BUCKET, prefix) == []


S3DLIO_CHILD = r"""
import json, sys
from pytest_iobench.storage.registry import StorageSpec, open_storage
from pytest_iobench.storage.s3common import S3Endpoint
sys.path.insert(0, sys.argv[2])
from test_storage_retries import exercise
url, key, secret = json.loads(sys.argv[1])
endpoint = S3Endpoint(url, key, secret)
storage = open_storage(StorageSpec("s3", "s3dlio", bucket="retries", prefix="s3dlio", endpoint_url=url,
                                   op_timeout=30, retries=8, backoff=0.01), endpoint)
exercise(storage)
print("verified")
"""


def test_s3dlio_completes_through_faults_in_one_put_for_small_objects(moto):
    """s3dlio binds one endpoint per process: it runs in a child. Its small objects are one PUT
    each (no multipart upload to leave behind when a create's reply is lost)."""
    with FaultProxy(moto.url, parse_profile("throttle-10%,reset-5%,seed-5")) as proxy:
        args = json.dumps([proxy.url, moto.access_key, moto.secret_key])
        done = subprocess.run([sys.executable, "-c", S3DLIO_CHILD, args, os.path.dirname(__file__)],
                              capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("verified")
    assert proxy.stats["throttle"] > 0 and proxy.stats["reset"] > 0
    # 30 small objects, 1 streamed of 3 parts: a create, 3 parts and a complete, 31 gets
    assert proxy.stats["requests"] - proxy.stats["throttle"] - proxy.stats["reset"] <= 30 + 5 + 31 + 5
    assert open_uploads(moto, BUCKET, "s3dlio") == []


def test_a_complete_whose_reply_was_lost_is_recognised_by_size_and_etag(moto):
    """What a retried complete-multipart-upload checks before failing: the object S3 made,
    with the multipart ETag computed from the parts' ETags (moto's real answer)."""
    import boto3

    client = boto3.client("s3", endpoint_url=moto.url, aws_access_key_id=moto.access_key,
                          aws_secret_access_key=moto.secret_key, region_name=moto.region)
    parts_data = [payload(5 << 20, 1), payload(1000, 2)]
    upload = client.create_multipart_upload(Bucket=BUCKET, Key="lost/reply")["UploadId"]
    parts = [{"PartNumber": n, "ETag": client.upload_part(Bucket=BUCKET, Key="lost/reply", UploadId=upload,
                                                          PartNumber=n, Body=data)["ETag"]}
             for n, data in enumerate(parts_data, 1)]
    client.complete_multipart_upload(Bucket=BUCKET, Key="lost/reply", UploadId=upload,
                                     MultipartUpload={"Parts": parts})
    head = lambda: client.head_object(Bucket=BUCKET, Key="lost/reply")  # noqa: E731
    size = sum(map(len, parts_data))
    etag = multipart_etag([p["ETag"] for p in parts])
    assert completed_anyway(lambda: head()["ContentLength"], size, lambda: head()["ETag"], etag)
    assert not completed_anyway(lambda: head()["ContentLength"], size + 1)
    assert not completed_anyway(lambda: head()["ContentLength"], size, lambda: head()["ETag"], "0" * 32 + "-2")
    assert not completed_anyway(lambda: client.head_object(Bucket=BUCKET, Key="lost/none")["ContentLength"], 0)


SESSION_TEST = """
def test_write(storage):
    for i in range(20):
        storage.put(f"o/{i}", bytes([i]) * 1000)
    for i in range(20):
        assert storage.get(f"o/{i}") == bytes([i]) * 1000
"""


@pytest.mark.parametrize("profile", ["throttle-30%,seed-11", "pass"])
def test_a_session_counts_retries_per_test_and_starts_through_throttling(pytester, monkeypatch, moto, profile):
    """30 % throttling from the very first request: the start-up check retries like any request,
    the session passes, and each test's entry counts what its library met; a clean endpoint's
    entries count no retry and the terminal shows no retry line."""
    from pytest_iobench.report.schema import load_document

    for name, value in {"AWS_ACCESS_KEY_ID": moto.access_key, "AWS_SECRET_ACCESS_KEY": moto.secret_key,
                        "AWS_ENDPOINT_URL": "", "IOBENCH_S3_ENDPOINT": ""}.items():
        monkeypatch.setenv(name, value)
    pytester.makepyfile(SESSION_TEST)
    with FaultProxy(moto.url, parse_profile(profile)) as proxy:
        result = pytester.runpytest_subprocess(
            "--iobench-storage=s3", "--iobench-libraries=boto3,minio", f"--iobench-s3-endpoint={proxy.url}",
            f"--iobench-bucket={BUCKET}/session", "--iobench-backoff=0.01")
    result.assert_outcomes(passed=2)
    tests = load_document(pytester.path / "reports" / "latest.json")["tests"]
    ops = {t["params"]["library"]: t["storage_ops"][t["params"]["library"]] for t in tests}
    assert set(ops) == {"boto3", "minio"}
    for library, counted in ops.items():
        assert counted["requests"] >= 40, (library, counted)
        assert counted["attempts"] == counted["requests"] + counted["retries"]
        if profile == "pass":
            assert counted["retries"] == counted["throttles"] == 0, (library, counted)
        else:
            assert counted["throttles"] > 0 and counted["retries"] >= counted["throttles"], (library, counted)
    lines = [line for line in result.stdout.lines if " retries of " in line]
    assert len(lines) == (0 if profile == "pass" else 2), lines


ORPHAN_TEST = """
import boto3, os

def test_leaves_an_upload_open(storage):
    loc = storage.location
    client = boto3.client("s3", endpoint_url=loc.endpoint.url, region_name="us-east-1")
    client.create_multipart_upload(Bucket=loc.bucket, Key=loc.object_name("orphan"))
"""


def test_an_upload_left_open_is_aborted_at_the_end_and_counted(pytester, monkeypatch, moto):
    """A real upload nobody ends, under the session's scratch area on a given endpoint: none is
    left open after the session, and the terminal says how many were aborted."""
    for name, value in {"AWS_ACCESS_KEY_ID": moto.access_key, "AWS_SECRET_ACCESS_KEY": moto.secret_key,
                        "AWS_ENDPOINT_URL": "", "IOBENCH_S3_ENDPOINT": ""}.items():
        monkeypatch.setenv(name, value)
    pytester.makepyfile(ORPHAN_TEST)
    result = pytester.runpytest_subprocess("--iobench-storage=s3", "--iobench-libraries=boto3",
                                           f"--iobench-s3-endpoint={moto.url}", f"--iobench-bucket={BUCKET}/orphans")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["iobench: aborted 1 multipart upload(s) left open under this session's scratch area"])
    assert open_uploads(moto, BUCKET, "orphans/") == []
