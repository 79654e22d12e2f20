"""Options that used to fail late or not at all: each is one line at start, exit code 4 (pytest's
usage error), before any test runs, and nothing is written (no result document, no report)."""

from __future__ import annotations

import http.server
import threading

import pytest

TEST = "def test_x(storage):\n    pass\n"


@pytest.fixture(scope="module")
def plain_http():
    """A plain HTTP server that is not S3 (Python's file server), on 127.0.0.1."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def stops_at_start(pytester, *args: str, message: str) -> None:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1 and message in errors[0], result.stderr.str()
    assert "passed" not in result.stdout.str() and "Traceback" not in result.stderr.str()
    written = [p for p in pytester.path.rglob("*") if p.suffix in (".json", ".md", ".html")]
    assert written == [], written


@pytest.mark.parametrize("args, message", [
    (["--iobench-json=/proc/no-such-dir/out.json"], "--iobench-json: /proc/no-such-dir/out.json cannot be written"),
    (["--iobench-json=a-file/out.json"], "a-file is a file, not a directory"),
    (["--iobench-threads=100000"], "100000 threads is more than the maximum, 1024"),
    (["--iobench-s3-region=not_a_region!"], "a region is letters, digits and '-'"),
    (["--iobench-hostfile=no-such-hostfile", "--iobench-mpi-dir=."],
     "--iobench-hostfile: no-such-hostfile is not a file"),
    (["--iobench-adopt=true"], "--iobench-adopt reads the datasets DLIO wrote under --iobench-root"),
    (["--iobench-adopt=true", "--iobench-root=empty-root"], "--iobench-adopt: no dataset to adopt under empty-root"),
    (["--iobench-workload=empty.yaml"], "empty.yaml: the workload file is empty"),
    (["--iobench-storage="], "--iobench-storage (command line): '' is not valid: give at least one value"),
    (["--iobench-storage=local", "--iobench-s3-endpoint=http://127.0.0.1:9"],
     "--iobench-s3-endpoint (command line): http://127.0.0.1:9 is an S3 location, and the session runs no S3"),
    (["--iobench-storage=local", "--iobench-root=s3://bucket/prefix"],
     "--iobench-root (command line): s3://bucket/prefix is an S3 location"),
], ids=["json-unwritable", "json-under-a-file", "threads", "region", "hostfile", "adopt-no-root", "adopt-empty",
        "empty-workload", "empty-storage", "endpoint-with-local", "s3-root-with-local"])
def test_a_bad_option_is_one_line_at_start(pytester, args, message):
    pytester.makepyfile(TEST)
    (pytester.path / "a-file").write_text("")
    (pytester.path / "empty.yaml").write_text("")
    (pytester.path / "empty-root").mkdir()
    stops_at_start(pytester, *args, message=message)


def test_a_plain_http_server_is_not_taken_for_s3(pytester, monkeypatch, plain_http):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "key-of-a-test")
    pytester.makepyfile(TEST)
    stops_at_start(pytester, "--iobench-storage=s3", f"--iobench-s3-endpoint={plain_http}", "--iobench-bucket=b1",
                   message=f"{plain_http} does not answer as an S3 endpoint (SimpleHTTP")


def test_a_workload_no_collected_suite_runs(pytester):
    pytester.makepyfile(test_train="def test_training(training_workload):\n    pass\n")
    stops_at_start(pytester, "--iobench-workload=llama3-8b",
                   f"--iobench-json={pytester.path / 'out.json'}",
                   message="--iobench-workload: no collected test runs llama3-8b (a checkpoint workload)")
