"""Redaction masks secrets where they stand as values and never touches names: with a secret
as short as ``test`` (moto's default), test ids, file names and metric names stay intact and
every test is listed once, with or without xdist."""

from __future__ import annotations

import pytest

from pytest_iobench.report.redaction import redacted
from pytest_iobench.report.schema import load_document
from pytest_iobench.storage.errors import redact, register_secret

TESTS = """
import pytest


@pytest.mark.parametrize("word", ["test", "other"])
def test_named_test(word, iobench_record, tmp_path):
    iobench_record.metric("test_rate", 1.0, "MB/s")
    iobench_record.details["file"] = str(tmp_path / "test" / "test_file.bin")
    iobench_record.details["env"] = "AWS_SECRET_ACCESS_KEY=test"
    iobench_record.warn("signed with test")


def test_plain(iobench_record):
    assert False, "url http://key:test@127.0.0.1:9000 refused"
"""


def test_a_short_secret_is_masked_as_a_value_only():
    register_secret("test")
    assert redact("AWS_SECRET_ACCESS_KEY=test") == "AWS_SECRET_ACCESS_KEY=***"
    assert redact("http://id:test@host:9000/") == "http://id:***@host:9000/"
    assert redact('{"secret": "test"}') == '{"secret": "***"}'
    assert redact("X-Amz-Security-Token: test\n") == "X-Amz-Security-Token: ***\n"
    for name in ("suites/test_generate.py::test_generate[npz-local-posix-t2]", "/tmp/test/test_file.bin",
                 "test.py", "latest", "contest-test_1"):
        assert redact(name) == name
    entry = {"id": "t.py::test_x[test]", "params": {"word": "test"}, "message": "key test refused",
             "metrics": {"test": {"unit": "MB/s"}}}
    assert redacted(entry) == {**entry, "message": "key *** refused"}  # ids, params, metric names kept
    register_secret("LongerSecretKeyOf40Characters/abcdefghij")
    assert redact("x/LongerSecretKeyOf40Characters/abcdefghij_y") == "x/***_y"  # a long one anywhere


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_a_short_secret_leaves_test_ids_intact_and_each_test_listed_once(pytester, monkeypatch, workers):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    pytester.makepyfile(test_short_secret=TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "--iobench-report=none", *workers)
    result.assert_outcomes(passed=2, failed=1)
    document = load_document(pytester.path / "reports" / "latest.json")
    ids = [t["id"] for t in document["tests"]]
    assert sorted(ids) == ["test_short_secret.py::test_named_test[other]",
                           "test_short_secret.py::test_named_test[test]", "test_short_secret.py::test_plain"]
    by_id = {t["id"]: t for t in document["tests"]}
    named = by_id["test_short_secret.py::test_named_test[test]"]
    assert named["outcome"] == "passed" and named["suite"] == "test_short_secret"
    assert named["params"]["word"] == "test" and "test_rate" in named["metrics"]
    assert named["details"]["file"].endswith("/test/test_file.bin")
    assert named["details"]["env"] == "AWS_SECRET_ACCESS_KEY=***" and named["warnings"] == ["signed with ***"]
    plain = by_id["test_short_secret.py::test_plain"]
    assert plain["outcome"] == "failed" and "http://key:***@127.0.0.1:9000" in plain["message"]
    assert ":test@" not in result.stdout.str()
