"""s3torchconnector (AWS's S3 connector for PyTorch, on the CRT) as an S3 library, against the
embedded moto endpoint: custom endpoint, path style, region; an aborted stream leaves neither an
object nor an upload; an endpoint under a path prefix (AIStore's /s3) works; the conformance
suite passes for it through that prefix. Skipped when the library (and torch) is not installed:
it is the optional extra ``pytest-iobench[s3torch]``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from pytest_iobench.storage.endpoint import EmbeddedS3
from pytest_iobench.storage.errors import StorageNotFound
from pytest_iobench.storage.faultproxy import FaultProxy
from pytest_iobench.storage.registry import StorageSpec, library_installed, missing_reason, open_storage
from pytest_iobench.storage.s3common import PART_SIZE, S3Endpoint

pytestmark = pytest.mark.skipif(not library_installed("s3torchconnector"), reason=missing_reason("s3torchconnector"))

REPO = Path(__file__).resolve().parents[1]
BUCKET = "torchbucket"


@pytest.fixture(scope="module")
def moto():
    with EmbeddedS3(bucket=BUCKET) as endpoint:
        yield endpoint


def _boto3(moto):
    return boto3.session.Session().client(
        "s3", endpoint_url=moto.url, aws_access_key_id=moto.access_key,
        aws_secret_access_key=moto.secret_key, region_name=moto.region)


def _open(moto, url: str, prefix: str):
    endpoint = S3Endpoint(url, moto.access_key, moto.secret_key, moto.region)
    return open_storage(StorageSpec("s3", "s3torchconnector", bucket=BUCKET, prefix=prefix, endpoint_url=url), endpoint)


def test_round_trips_through_its_own_client(moto):
    storage = _open(moto, moto.url, "unit")
    data = os.urandom(PART_SIZE + 12345)  # more than one of its parts
    storage.put("a/big", data)
    storage.put("a/small", b"abc")
    assert storage.get("a/big") == data and storage.get("a/small") == b"abc"
    assert storage.get_range("a/big", PART_SIZE - 5, 10) == data[PART_SIZE - 5:PART_SIZE + 5]
    assert storage.get_range("a/big", len(data) - 3, 100) == data[-3:]
    assert storage.get_range("a/small", 10, 5) == b""
    assert storage.stat("a/big").size == len(data)
    assert storage.list("a/") == ["a/big", "a/small"]
    # what it wrote is what another library reads, under the storage's prefix
    assert _boto3(moto).get_object(Bucket=BUCKET, Key="unit/a/small")["Body"].read() == b"abc"
    with pytest.raises(StorageNotFound, match="s3torchconnector"):
        storage.get("a/none")
    with pytest.raises(StorageNotFound):
        storage.get_range("a/none", 0, 0)
    storage.delete("a/big")
    storage.delete("a/none")  # a missing key deletes quietly, as with the others
    assert storage.list("a/") == ["a/small"]


@pytest.mark.parametrize("size", [1000, PART_SIZE + 1000])
def test_an_aborted_stream_leaves_neither_object_nor_upload(moto, size):
    """S3Writer has no abort and its finalizer completes the upload; the backend drops the CRT
    stream instead, which cancels it."""
    storage = _open(moto, moto.url, f"abort-{size}")
    writer = storage.open_writer("k")
    writer.write(os.urandom(size))
    writer.abort()
    del writer
    client = _boto3(moto)
    assert storage.list("") == []
    uploads = client.list_multipart_uploads(Bucket=BUCKET, Prefix=f"abort-{size}/").get("Uploads", [])
    assert uploads == [], uploads
    with pytest.raises(RuntimeError, match="boom"), storage.open_writer("k2") as writer:
        writer.write(os.urandom(size))
        raise RuntimeError("boom")
    assert storage.list("") == []


def test_an_endpoint_under_a_path_prefix_works(moto):
    with FaultProxy(moto.url, path_prefix="/s3") as proxy:
        storage = _open(moto, proxy.url, "prefixed")
        storage.put("k", b"x" * 1000)
        assert storage.get("k") == b"x" * 1000 and storage.list("") == ["k"]
        assert proxy.stats["pass"] >= 3 and proxy.stats["outside-prefix"] == 0, proxy.stats


def test_the_conformance_suite_passes_under_a_path_prefix(moto, tmp_path):
    with FaultProxy(moto.url, path_prefix="/s3") as proxy:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "IOBENCH_"))}
        env.update(AWS_ACCESS_KEY_ID=moto.access_key, AWS_SECRET_ACCESS_KEY=moto.secret_key)
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs",
             str(REPO / "suites" / "test_storage_conformance.py"), "--iobench-storage=s3",
             "--iobench-libraries=s3torchconnector", f"--iobench-s3-endpoint={proxy.url}",
             f"--iobench-bucket={BUCKET}/session", f"--iobench-json={tmp_path / 'out.json'}",
             "--iobench-report=none"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        tests = json.loads((tmp_path / "out.json").read_text())["tests"]
        ran = [t for t in tests if t["outcome"] != "skipped"]
        assert len(ran) > 30 and all(t["outcome"] == "passed" for t in ran), ran
        skipped = [t for t in tests if t["outcome"] == "skipped"]
        assert len(skipped) <= 3, skipped  # no single PUT, no part budget (docs/s3.md), and one skip of s3's own
        assert proxy.stats["outside-prefix"] == 0
