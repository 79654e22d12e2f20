"""Under pytest-xdist the workers hand their tests to the controller, which writes one document
holding every test's results; secrets of an S3 endpoint a worker started stay out of it."""

from __future__ import annotations

import os

from pytest_iobench.report.schema import load_document

SYNTHETIC = """
import os
import pytest

@pytest.mark.parametrize("n", range(6))
def test_measured(n, iobench_record):
    iobench_record.kind = "read"
    iobench_record.metric("read_MB_per_second", 100.0 + n, "MB/s")
    iobench_record.details["pid"] = os.getpid()

def test_plain():
    assert True

def test_fails(iobench_record):
    iobench_record.metric("read_MB_per_second", 1.0, "MB/s")
    iobench_record.criterion("read_MB_per_second", ">=", 10)
"""


def test_two_workers_one_document_with_every_test(pytester):
    pytester.makepyfile(test_synthetic=SYNTHETIC)
    result = pytester.runpytest_subprocess("-n", "2", "--iobench-report=none")
    result.assert_outcomes(passed=7, failed=1)
    reports = pytester.path / "reports"
    assert len(list(reports.glob("iobench-*.json"))) == 1, "workers write nothing: the controller writes one document"
    document = load_document(reports / "latest.json")
    tests = {t["id"].split("::")[1]: t for t in document["tests"]}
    assert sorted(tests) == sorted([f"test_measured[{n}]" for n in range(6)] + ["test_plain", "test_fails"])
    assert document["run"]["xdist_workers"] == 2
    assert {t["worker"] for t in tests.values()} == {"gw0", "gw1"}
    assert len({t["details"]["pid"] for name, t in tests.items() if name.startswith("test_measured")}) == 2
    for n in range(6):
        assert tests[f"test_measured[{n}]"]["metrics"]["read_MB_per_second"]["value"] == 100.0 + n
    assert tests["test_fails"]["outcome"] == "failed" and tests["test_fails"]["criteria"][0]["passed"] is False
    assert tests["test_plain"]["outcome"] == "passed"
    result.stdout.fnmatch_lines(["*test_fails*failed*read_MB_per_second 1 MB/s*0/1 met: FAIL*"])


def test_embedded_s3_secret_stays_out_under_xdist(pytester):
    pytester.makepyfile(test_leak="""
        import os
        from pathlib import Path

        def test_leak(s3_endpoint, iobench_record):
            secret = s3_endpoint.secret_key
            Path(os.environ["LEAK_FILE"]).write_text(secret)
            iobench_record.details["environment"] = s3_endpoint.environ()
            iobench_record.warn(f"the endpoint's key is {secret}")
            iobench_record.metric("rate", 1.0, "MB/s")

        def test_fails_naming_it(s3_endpoint):
            assert False, f"refused with {s3_endpoint.secret_key}"
    """)
    leak_file = pytester.path / "secret.txt"
    os.environ["LEAK_FILE"] = str(leak_file)
    try:
        result = pytester.runpytest_subprocess("-n", "1", "--iobench-storage=s3", "--iobench-report=md,html")
    finally:
        del os.environ["LEAK_FILE"]
    result.assert_outcomes(passed=1, failed=1)
    secret = leak_file.read_text()
    assert len(secret) >= 20
    for path in (pytester.path / "reports").iterdir():
        if path.suffix in (".json", ".md", ".html"):
            assert secret not in path.read_text(), f"the endpoint's secret key is in {path.name}"
    document = load_document(pytester.path / "reports" / "latest.json")
    assert document["tests"][0]["details"]["environment"]["AWS_SECRET_ACCESS_KEY"] == "***"
    assert document["tests"][1]["message"] == "AssertionError: refused with ***"
    assert secret not in result.stdout.str() + result.stderr.str(), (
        "the output (pytest's failure report included) shows no secret")
    result.stdout.fnmatch_lines(["*AssertionError: refused with [*][*][*]*"])
