"""Several endpoints of one store (--iobench-s3-endpoint=http://a:9000,http://b:9000): one moto
server behind two fault-proxy ports (two servers sharing nothing would lose reads), real
clients; requests spread by object name, the same object always through the same endpoint, and
each endpoint's share of operations and bytes in the document. s3dlio spreads through its own
MultiEndpointStore (request by request) and its own counters fill the same tally."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_iobench.settings import urls
from pytest_iobench.storage.endpoint import EmbeddedS3
from pytest_iobench.storage.faultproxy import FaultProxy
from pytest_iobench.storage.registry import StorageSpec, library_installed, open_storage
from pytest_iobench.storage.s3common import S3Endpoint
from pytest_iobench.storage.tally import TALLY, EndpointTally

REPO = Path(__file__).resolve().parents[1]
BUCKET = "gateways"


@pytest.fixture(scope="module")
def moto():
    with EmbeddedS3(bucket=BUCKET) as endpoint:
        yield endpoint


@pytest.fixture
def gateways(moto):
    with FaultProxy(moto.url) as a, FaultProxy(moto.url) as b:
        yield a, b


def test_the_setting_takes_a_comma_list_of_urls():
    assert urls("http://a:9000, http://b:9000/") == "http://a:9000,http://b:9000"
    assert urls("http://a:9000") == "http://a:9000"
    with pytest.raises(ValueError, match="an empty endpoint in the list"):
        urls("http://a:9000,")
    with pytest.raises(ValueError, match="named twice"):
        urls("http://a:9000,http://a:9000")
    with pytest.raises(ValueError, match="'ftp://b': give an http:// or https:// URL"):
        urls("http://a:9000,ftp://b")


@pytest.mark.parametrize("library", ["boto3", "minio"])
def test_requests_spread_and_an_object_keeps_its_endpoint(moto, gateways, library):
    a, b = gateways
    endpoint = S3Endpoint(f"{a.url},{b.url}", moto.access_key, moto.secret_key, moto.region)
    spec = StorageSpec("s3", library, bucket=BUCKET, prefix=f"spread-{library}", endpoint_url=endpoint.url)
    storage = open_storage(spec, endpoint)
    before = TALLY.snapshot()
    for i in range(40):
        storage.put(f"dir/k{i}", b"x" * 1000)
    served = EndpointTally.since(before, TALLY.snapshot())
    assert set(served) == {a.url, b.url}, served  # both gateways wrote
    assert sum(e["bytes_written"] for e in served.values()) == 40_000
    assert a.stats["requests"] > 0 and b.stats["requests"] > 0
    # the same object through a storage rooted elsewhere goes through the same endpoint
    deeper = open_storage(StorageSpec("s3", library, bucket=BUCKET, prefix=f"spread-{library}/dir",
                                      endpoint_url=endpoint.url), endpoint)
    for i in range(40):
        before = TALLY.snapshot()
        assert storage.get(f"dir/k{i}") == b"x" * 1000
        first = EndpointTally.since(before, TALLY.snapshot())
        before = TALLY.snapshot()
        assert deeper.get(f"k{i}") == b"x" * 1000
        assert EndpointTally.since(before, TALLY.snapshot()) == first
    assert sorted(storage.list("dir/")) == sorted(f"dir/k{i}" for i in range(40))


_S3DLIO_SPREAD = """
import json, sys
from pytest_iobench.storage.registry import StorageSpec, library_installed, open_storage
from pytest_iobench.storage.s3common import S3Endpoint
from pytest_iobench.storage.tally import TALLY, EndpointTally
url, access, secret, region, bucket = sys.argv[1:6]
storage = open_storage(StorageSpec("s3", "s3dlio", bucket=bucket, prefix="spread-s3dlio", endpoint_url=url),
                       S3Endpoint(url, access, secret, region))
before = TALLY.snapshot()
for i in range(40):
    storage.put(f"dir/k{i}", bytes([i]) * 1000)
wrote = EndpointTally.since(before, TALLY.snapshot())
assert all(storage.get(f"dir/k{i}") == bytes([i]) * 1000 for i in range(40))
keys = [f"dir/k{i}" for i in range(40)]
assert [bytes(b) for b in storage.get_many(keys, 8)] == [bytes([i]) * 1000 for i in range(40)]
assert storage.get_range("dir/k7", 10, 5) == bytes([7]) * 5
assert storage.list("dir/") == sorted(f"dir/k{i}" for i in range(40))
for i in range(40):
    storage.delete(f"dir/k{i}")
assert storage.list("dir/") == []
print(json.dumps({"wrote": wrote, "all": EndpointTally.since(before, TALLY.snapshot())}))
"""


def test_s3dlio_spreads_through_its_own_multi_endpoint_store(moto, gateways):
    """s3dlio's MultiEndpointStore sends each request to the next endpoint; its own counters
    fill the tally, and they match what each gateway saw (in a child process: s3dlio binds
    its process-wide client to the first endpoint)."""
    a, b = gateways
    result = subprocess.run(
        [sys.executable, "-c", _S3DLIO_SPREAD, f"{a.url},{b.url}", moto.access_key, moto.secret_key,
         moto.region, BUCKET], capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3DLIO_"))})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    tally = json.loads(result.stdout.splitlines()[-1])
    wrote, served = tally["wrote"], tally["all"]
    assert {url: e["bytes_written"] for url, e in wrote.items()} == {a.url: 20_000, b.url: 20_000}, wrote
    assert set(served) == {a.url, b.url}
    # 40 puts, 40 gets, 40 in get_many, a range, 2 lists, 40 deletes: one request each, in turn
    assert sum(e["operations"] for e in served.values()) == 163, served
    assert sum(e["bytes_read"] for e in served.values()) == 80_005, served
    assert served[a.url]["operations"] == a.stats["requests"] and served[b.url]["operations"] == b.stats["requests"]


def _session(moto, gateways, tmp_path, suite, *args) -> subprocess.CompletedProcess:
    a, b = gateways
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "IOBENCH_"))}
    env.update(AWS_ACCESS_KEY_ID=moto.access_key, AWS_SECRET_ACCESS_KEY=moto.secret_key)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", str(REPO / "suites" / suite),
         "--iobench-storage=s3", f"--iobench-s3-endpoint={a.url},{b.url}", f"--iobench-bucket={BUCKET}/{suite}",
         f"--iobench-json={tmp_path / 'out.json'}", "--iobench-report=none", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)


def test_the_conformance_suite_passes_over_two_endpoints(moto, gateways, tmp_path):
    a, b = gateways
    result = _session(moto, gateways, tmp_path, "test_storage_conformance.py")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    tests = json.loads((tmp_path / "out.json").read_text())["tests"]
    # s3torchconnector (an optional extra) through spread.py too, when installed; in this child
    # process only: it takes its credentials from the process environment, one set per process
    libraries = ("boto3", "minio", "s3dlio") + (("s3torchconnector",) if library_installed("s3torchconnector") else ())
    for library in libraries:
        ran = [t for t in tests if t["params"].get("library") == library and t["outcome"] != "skipped"]
        assert len(ran) > 30 and all(t["outcome"] == "passed" for t in ran), ran
        # the writes of the round trips spread over both endpoints
        served = {url for t in ran for url in t["details"].get("endpoints", {})}
        assert served == {a.url, b.url}, served


def test_the_training_suite_records_each_endpoints_share_from_every_rank(moto, gateways, tmp_path):
    a, b = gateways
    result = _session(moto, gateways, tmp_path, "test_training.py", "--iobench-libraries=boto3",
                      "--iobench-workload=unet3d_small", "--iobench-ranks=1,2",
                      # two proxies in front of moto on a shared host: the AU floor is not this test's
                      "--iobench-set", "metric.au=0")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    tests = json.loads((tmp_path / "out.json").read_text())["tests"]
    assert len(tests) == 2
    for test in tests:
        endpoints = test["details"]["endpoints"]
        assert set(endpoints) == {a.url, b.url}, endpoints
        read = sum(e["bytes_read"] for e in endpoints.values())
        assert read >= test["details"]["training"]["bytes_read"] > 0, (read, test["details"]["training"]["bytes_read"])
        assert all(e["bytes_read"] > 0 for e in endpoints.values()), endpoints


def test_the_training_suite_reads_through_s3dlios_multi_endpoint_store(moto, gateways, tmp_path):
    a, b = gateways
    result = _session(moto, gateways, tmp_path, "test_training.py", "--iobench-libraries=s3dlio",
                      "--iobench-workload=unet3d_small", "--iobench-ranks=1", "--iobench-set", "metric.au=0")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    (test,) = json.loads((tmp_path / "out.json").read_text())["tests"]
    endpoints = test["details"]["endpoints"]
    assert set(endpoints) == {a.url, b.url} and all(e["bytes_read"] > 0 for e in endpoints.values()), endpoints
    assert sum(e["bytes_read"] for e in endpoints.values()) >= test["details"]["training"]["bytes_read"] > 0


def test_s3dlio_with_several_https_endpoints_is_one_line_at_start(moto, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "IOBENCH_"))}
    env.update(AWS_ACCESS_KEY_ID=moto.access_key, AWS_SECRET_ACCESS_KEY=moto.secret_key)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
         str(REPO / "suites" / "test_storage_conformance.py"), "--iobench-storage=s3", "--iobench-s3-endpoint=https://a.invalid:9000,https://b.invalid:9000",
         f"--iobench-bucket={BUCKET}", "--iobench-libraries=s3dlio", "--iobench-report=none"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "https endpoints" in line]
    expected = "ERROR: --iobench-libraries: s3dlio cannot spread over several https"
    assert len(lines) == 1 and lines[0].startswith(expected), result.stdout[-2000:] + result.stderr[-2000:]
