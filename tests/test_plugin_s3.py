"""The S3 side of the plugin against real moto servers: the embedded endpoint, a given
endpoint (used under a unique prefix, cleaned up, never touching what it did not write),
and one-line errors for unusable endpoints."""

from __future__ import annotations

import re
import socket
import threading

import boto3
import pytest

from pytest_iobench.storage.endpoint import EmbeddedS3, free_port
from pytest_iobench.storage.registry import LIBRARIES, library_installed

SECRET = "k33p-th1s-0ut-of-0utput-9876543210"

WRITER_TEST = """
def test_write(storage):
    print("ROOT=" + storage.uri(""))
    storage.put("some/object", b"data")
    with storage.open_writer("big") as w:
        w.write(b"x" * (9 << 20))
    assert storage.list("") == ["big", "some/object"]
"""


@pytest.fixture(scope="module")
def external():
    """A moto server started here, standing in for a user's S3 endpoint."""
    with EmbeddedS3(bucket="team-bucket") as endpoint:
        client = boto3.client(
            "s3", endpoint_url=endpoint.url, aws_access_key_id=endpoint.access_key,
            aws_secret_access_key=endpoint.secret_key, region_name="us-east-1",
        )
        client.put_object(Bucket="team-bucket", Key="theirs/precious.bin", Body=b"keep me")
        yield endpoint, client


def env_for(endpoint) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": endpoint.access_key, "AWS_SECRET_ACCESS_KEY": endpoint.secret_key,
            "AWS_ENDPOINT_URL": "", "IOBENCH_S3_ENDPOINT": ""}


def all_keys(client, bucket="team-bucket") -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_given_endpoint_unique_prefix_and_cleanup(pytester, monkeypatch, external):
    endpoint, client = external
    for name, value in env_for(endpoint).items():
        monkeypatch.setenv(name, value)
    pytester.makepyfile(WRITER_TEST)
    result = pytester.runpytest_subprocess(
        "-s", "--iobench-storage=s3", f"--iobench-s3-endpoint={endpoint.url}", "--iobench-bucket=team-bucket/ci",
    )
    installed = sum(map(library_installed, LIBRARIES["s3"]))  # s3torchconnector is an optional extra
    result.assert_outcomes(passed=installed)
    roots = set(re.findall(r"ROOT=(\S+)", result.stdout.str()))
    assert len(roots) == installed, roots  # one scratch prefix per library
    for root in roots:
        assert re.fullmatch(r"s3://team-bucket/ci/iobench-run-\d{8}T\d{6}Z-[0-9a-f]{6}/s3-\w+/", root), root
    assert all_keys(client) == ["theirs/precious.bin"], "the session left objects or removed one it did not write"
    assert "team-bucket" in [b["Name"] for b in client.list_buckets()["Buckets"]]


def test_given_endpoint_under_xdist_uses_a_prefix_per_worker(pytester, monkeypatch, external):
    endpoint, client = external
    for name, value in env_for(endpoint).items():
        monkeypatch.setenv(name, value)
    roots = pytester.mkdir("roots")
    pytester.makepyfile(
        f"""
        import os
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_write(storage, n):
            worker = os.environ["PYTEST_XDIST_WORKER"]
            with open(os.path.join({str(roots)!r}, f"{{worker}}-{{n}}"), "w") as f:
                f.write(storage.uri(""))
            storage.put(f"obj-{{n}}", b"data")
        """
    )
    result = pytester.runpytest_subprocess(
        "-n", "2", "-s", "--iobench-storage=s3", "--iobench-libraries=boto3",
        f"--iobench-s3-endpoint={endpoint.url}", "--iobench-bucket=team-bucket",
    )
    result.assert_outcomes(passed=4)
    by_worker: dict[str, set[str]] = {}
    for path in roots.iterdir():
        by_worker.setdefault(path.name.split("-")[0], set()).add(path.read_text())
    assert sorted(by_worker) == ["gw0", "gw1"], f"both workers ran tests: {sorted(by_worker)}"
    prefixes = [next(iter(p)) for p in by_worker.values()]
    assert all(len(p) == 1 for p in by_worker.values()), f"a worker used several prefixes: {by_worker}"
    assert len(set(prefixes)) == 2, f"the workers shared a prefix: {prefixes}"
    for worker, (prefix,) in by_worker.items():
        assert re.fullmatch(rf"s3://team-bucket/iobench-run-\d{{8}}T\d{{6}}Z-[0-9a-f]{{6}}-{worker}/s3-boto3/",
                            prefix), prefix
    assert all_keys(client) == ["theirs/precious.bin"]


def test_embedded_endpoint_starts_and_stops(pytester, monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "IOBENCH_S3_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(
        """
        def test_endpoint(s3_endpoint, storage):
            print("URL=" + s3_endpoint.url)
            assert s3_endpoint.url.startswith("http://127.0.0.1:")
            storage.put("k", b"v")
            assert bytes(storage.get("k")) == b"v"
        """
    )
    result = pytester.runpytest_subprocess("-s", "--iobench-storage=s3", "--iobench-libraries=minio")
    result.assert_outcomes(passed=1)
    url = re.search(r"URL=(\S+)", result.stdout.str()).group(1)
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


@pytest.mark.parametrize("option", ["--iobench-bucket=my-team-bucket/ci/nightly", "--iobench-root=s3://my-team-bucket/ci/nightly"],
                         ids=["bucket", "root"])
def test_embedded_endpoint_uses_the_given_bucket_and_prefix(pytester, monkeypatch, option):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "IOBENCH_S3_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(
        """
        import boto3

        def test_write(s3_endpoint, storage):
            print("ROOT=" + storage.uri(""))
            storage.put("k", b"v")
            client = boto3.client("s3", endpoint_url=s3_endpoint.url, aws_access_key_id=s3_endpoint.access_key,
                                  aws_secret_access_key=s3_endpoint.secret_key, region_name="us-east-1")
            keys = [o["Key"] for o in client.list_objects_v2(Bucket="my-team-bucket").get("Contents", [])]
            print("KEYS=" + ",".join(keys))
            print("BUCKETS=" + ",".join(b["Name"] for b in client.list_buckets()["Buckets"]))
        """
    )
    result = pytester.runpytest_subprocess("-s", "--iobench-storage=s3", "--iobench-libraries=boto3", option)
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    assert re.search(r"ROOT=s3://my-team-bucket/ci/nightly/iobench-run-[^/]+/s3-boto3/\s", out), out
    assert re.search(r"KEYS=ci/nightly/iobench-run-[^/]+/s3-boto3/k\s", out), out
    assert "BUCKETS=my-team-bucket\n" in out, "the embedded endpoint made another bucket than the one named"
    name, value = option.removeprefix("--iobench-").split("=", 1)
    result.stdout.fnmatch_lines([f"iobench: *{name}={value} (command line)*"])  # the header says where it went


def test_unreachable_endpoint_is_one_line(pytester, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    pytester.makepyfile("def test_x(storage):\n    pass\n")
    port = free_port()  # nothing listens there
    result = pytester.runpytest_subprocess(
        "--iobench-storage=s3", f"--iobench-s3-endpoint=http://127.0.0.1:{port}", "--iobench-bucket=b1"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: the S3 endpoint http://127.0.0.1:{port} is unreachable: *"])
    assert "Traceback" not in result.stderr.str()
    assert SECRET not in result.stdout.str() + result.stderr.str()


def test_ipv6_endpoint_is_one_line(pytester, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    pytester.makepyfile("def test_x(storage):\n    pass\n")
    port = free_port()  # nothing listens there, on ::1 either
    result = pytester.runpytest("--iobench-storage=s3", f"--iobench-s3-endpoint=http://[::1]:{port}",
                                "--iobench-bucket=b1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: the S3 endpoint http://[[]::1[]]:{port} is unreachable: *"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_endpoint_that_never_answers_fails_after_one_request(pytester, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    pytester.makepyfile("def test_x(storage):\n    pass\n")
    accepted = []
    with socket.create_server(("127.0.0.1", 0)) as listener:  # accepts, never replies

        def accept() -> None:
            while True:
                try:
                    accepted.append(listener.accept()[0])
                except OSError:
                    return

        threading.Thread(target=accept, daemon=True).start()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        result = pytester.runpytest("--iobench-storage=s3", f"--iobench-s3-endpoint={url}", "--iobench-bucket=b1")
    for conn in accepted:
        conn.close()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: the S3 endpoint {url} cannot be used: Read timeout on endpoint URL*"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
    # the reachability probe, then one HEAD request: no retry of a request that timed out
    assert len(accepted) == 2, f"{len(accepted)} connections: the check retried"


def test_missing_bucket_and_missing_credentials(pytester, monkeypatch, external):
    endpoint, _client = external
    for name, value in env_for(endpoint).items():
        monkeypatch.setenv(name, value)
    pytester.makepyfile("def test_x(storage):\n    pass\n")
    result = pytester.runpytest_subprocess(
        "--iobench-storage=s3", f"--iobench-s3-endpoint={endpoint.url}", "--iobench-bucket=no-such-bucket"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: the bucket 'no-such-bucket' does not exist on *; "
                                 "create it or name another with --iobench-bucket"])

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    result = pytester.runpytest_subprocess(
        "--iobench-storage=s3", f"--iobench-s3-endpoint={endpoint.url}", "--iobench-bucket=team-bucket"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: no credentials for the S3 endpoint *: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY*"])

    result = pytester.runpytest_subprocess("--iobench-storage=s3", f"--iobench-s3-endpoint={endpoint.url}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --iobench-bucket: an S3 endpoint (*) is given but no bucket*"])


def test_embedded_endpoint_takes_another_port_when_its_port_is_taken(monkeypatch):
    import socket

    from pytest_iobench.storage import endpoint as endpoint_mod

    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen()  # another process's server on the port free_port() first hands out
    ports = iter([taken.getsockname()[1]])
    real_free_port = endpoint_mod.free_port
    monkeypatch.setattr(endpoint_mod, "free_port", lambda: next(ports, None) or real_free_port())
    server = endpoint_mod.EmbeddedS3()
    try:
        endpoint = server.start()
        assert endpoint.url != f"http://127.0.0.1:{taken.getsockname()[1]}"
        assert server.process.poll() is None
        endpoint_mod.check_endpoint(endpoint, server.bucket)  # its own bucket, on its own server
    finally:
        server.stop()
        taken.close()


def test_the_root_holds_the_areas(external, tmp_path):
    """StorageFactory.root is the root the datasets and scratch areas are under (where DLIO
    writes its datasets, read there with --iobench-adopt), on files and on S3 under a prefix."""
    import pytest_iobench.plugin.options  # noqa: F401  (declares every option)
    from pytest_iobench.settings import resolve
    from pytest_iobench.storage.factory import StorageFactory

    endpoint, client = external
    settings = resolve({"storage": "local,s3", "bucket": "team-bucket/nightly", "s3-endpoint": endpoint.url,
                        "s3-access-key": endpoint.access_key, "s3-secret-key": endpoint.secret_key}, {}, {})
    factory = StorageFactory(settings, str(tmp_path), "root-test")
    try:
        for kind, library in (("local", "posix"), ("s3", "boto3")):
            factory.get(kind, library, area="datasets").put("probe", kind.encode())
            factory.get(kind, library).put("scratch-probe", b"s")
            root = factory.root(kind, library)
            assert bytes(root.get("iobench-datasets/probe")) == kind.encode()
            assert root.list("iobench-run-root-test/") == [f"iobench-run-root-test/{kind}-{library}/scratch-probe"]
        assert factory.root("local", "posix").uri("") == str(tmp_path)
        assert "nightly/iobench-datasets/probe" in all_keys(client)
        with pytest.raises(ValueError, match="area 'data'; valid: scratch, datasets, root"):
            factory.spec("local", "posix", area="data")
    finally:
        factory.root("s3", "boto3").delete("iobench-datasets/probe")
        factory.cleanup()
    assert all_keys(client) == ["theirs/precious.bin"]
