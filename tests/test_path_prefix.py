"""An S3 API served under a path prefix, as AIStore serves it under /s3: the fault proxy serves
the embedded moto endpoint under /s3, and real sessions run against http://127.0.0.1:PORT/s3.
boto3 and s3torchconnector keep the prefix; minio and s3dlio cannot (registry.endpoint_limit), which a session says
at start: one line when they are named, a skip with the reason when they are not."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from pytest_iobench.settings import url
from pytest_iobench.storage.endpoint import EmbeddedS3
from pytest_iobench.storage.errors import StorageError
from pytest_iobench.storage.faultproxy import FaultProxy
from pytest_iobench.storage.registry import StorageSpec, library_installed, open_storage
from pytest_iobench.storage.s3common import S3Endpoint

REPO = Path(__file__).resolve().parents[1]
BUCKET = "prefixed"


@pytest.fixture(scope="module")
def moto():
    with EmbeddedS3(bucket=BUCKET) as endpoint:
        yield endpoint


@pytest.fixture
def proxy(moto):
    with FaultProxy(moto.url, path_prefix="/s3") as proxy:
        yield proxy


def _boto3(moto, endpoint_url: str):
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url, aws_access_key_id=moto.access_key,
        aws_secret_access_key=moto.secret_key, region_name=moto.region,
        config=Config(retries={"total_max_attempts": 1}, s3={"addressing_style": "path"}))


def test_settings_take_an_endpoint_with_a_path_prefix():
    assert url("http://127.0.0.1:9000/s3/") == "http://127.0.0.1:9000/s3"
    assert url("https://ais.example.com/s3") == "https://ais.example.com/s3"
    with pytest.raises(ValueError, match="with no query or fragment"):
        url("http://127.0.0.1:9000/s3?x=1")
    with pytest.raises(ValueError, match="empty segment"):
        url("http://127.0.0.1:9000//s3")


def test_the_proxy_serves_the_endpoint_under_the_prefix_only(moto, proxy):
    assert proxy.url.endswith("/s3")
    _boto3(moto, proxy.url).put_object(Bucket=BUCKET, Key="under", Body=b"abc")
    assert _boto3(moto, moto.url).get_object(Bucket=BUCKET, Key="under")["Body"].read() == b"abc"
    outside = proxy.url[: -len("/s3")]
    with pytest.raises(ClientError, match="404"):
        _boto3(moto, outside).head_object(Bucket=BUCKET, Key="under")
    assert proxy.stats["outside-prefix"] == 1 and proxy.stats["pass"] == 1


def test_boto3_works_under_the_prefix_and_the_others_refuse_it_in_one_line(moto, proxy):
    endpoint = S3Endpoint(proxy.url, moto.access_key, moto.secret_key, moto.region)
    spec = StorageSpec("s3", "boto3", bucket=BUCKET, prefix="unit", endpoint_url=proxy.url)
    storage = open_storage(spec, endpoint)
    storage.put("a/k", b"x" * 1000)
    assert storage.get("a/k") == b"x" * 1000 and storage.list("a/") == ["a/k"]
    assert proxy.stats["outside-prefix"] == 0
    for library in ("minio", "s3dlio"):
        unreachable = re.escape(f"{library} cannot reach {proxy.url} (an S3 API under a path prefix)")
        with pytest.raises(StorageError, match=unreachable):
            open_storage(StorageSpec("s3", library, bucket=BUCKET, endpoint_url=proxy.url), endpoint)


def _session(moto, proxy, tmp_path, *args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "IOBENCH_"))}
    env.update(AWS_ACCESS_KEY_ID=moto.access_key, AWS_SECRET_ACCESS_KEY=moto.secret_key)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs",
         str(REPO / "suites" / "test_storage_conformance.py"), "--iobench-storage=s3",
         f"--iobench-s3-endpoint={proxy.url}", f"--iobench-bucket={BUCKET}/session",
         f"--iobench-json={tmp_path / 'out.json'}", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)


def test_the_conformance_suite_passes_under_the_prefix(moto, proxy, tmp_path):
    """Every conformance case on boto3 through /s3; minio and s3dlio skip with the reason."""
    result = _session(moto, proxy, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    tests = json.loads((tmp_path / "out.json").read_text())["tests"]
    ran = [t for t in tests if t["params"].get("library") == "boto3" and t["outcome"] != "skipped"]
    assert len(ran) > 30 and all(t["outcome"] == "passed" for t in ran), ran
    for library in ("minio", "s3dlio"):
        expected = f"{library} cannot reach {proxy.url} (an S3 API under a path prefix)"
        assert expected in result.stdout, result.stdout[-3000:]
    if library_installed("s3torchconnector"):  # the CRT keeps the prefix too (tests/test_s3torch.py)
        ran = [t for t in tests if t["params"].get("library") == "s3torchconnector" and t["outcome"] != "skipped"]
        assert len(ran) > 30 and all(t["outcome"] == "passed" for t in ran), ran
    assert proxy.stats["pass"] > len(ran) and proxy.stats["outside-prefix"] == 0


@pytest.mark.parametrize("library", ["minio", "s3dlio"])
def test_naming_a_library_that_cannot_take_the_prefix_is_one_line_at_start(moto, proxy, tmp_path, library):
    result = _session(moto, proxy, tmp_path, f"--iobench-libraries={library}")
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "cannot reach" in line]
    why = ("its SDK refuses an endpoint with a path" if library == "minio"
           else "it drops the path of its endpoint URL and sends /bucket/key to the host")
    assert lines == [f"ERROR: --iobench-libraries: {library} cannot reach {proxy.url} (an S3 API under a path "
                     f"prefix): {why}; use boto3 or s3torchconnector for it"], result.stdout + result.stderr
