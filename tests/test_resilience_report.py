"""The human report shows what retrying cost, per test and library, when anything was retried,
throttled, reset or timed out; a clean run's report has no such section."""

from __future__ import annotations

import re

FAULTY = """
def test_clean(iobench_record):
    iobench_record.storage_ops = {"boto3": {"requests": 4, "attempts": 4, "retries": 0, "throttles": 0,
                                            "resets": 0, "timeouts": 0, "backoff_s": 0.0}}

def test_throttled(iobench_record):
    iobench_record.storage_ops = {"minio": {"requests": 10, "attempts": 13, "retries": 3, "throttles": 2,
                                            "resets": 1, "timeouts": 0, "backoff_s": 0.375}}
"""

SECTION = "Storage operations that were retried"


def _reports(pytester, source):
    pytester.makepyfile(test_ops=source)
    result = pytester.runpytest("--iobench-libraries=posix", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=source.count("def test_"))
    stem = sorted((pytester.path / "reports").glob("iobench-*.json"))[-1].with_suffix("")
    return [stem.with_name(stem.name + suffix).read_text() for suffix in (".html", ".md")]


def test_retried_operations_are_a_table_in_the_reports(pytester):
    html, markdown = _reports(pytester, FAULTY)
    rows = re.findall(r"<tr><td>(test_[a-z]+)</td><td>(\w+)</td>((?:<td>[^<]*</td>){7})</tr>", html)
    assert [(test, library) for test, library, _ in rows] == [("test_throttled", "minio")]
    assert re.findall(r"<td>([^<]*)</td>", rows[0][2]) == ["10", "13", "3", "2", "1", "0", "0.375"]
    assert SECTION in html and SECTION in markdown and "| test_throttled | minio | 10 | 13 | 3 |" in markdown


def test_a_clean_run_has_no_retry_section(pytester):
    html, markdown = _reports(pytester, FAULTY.split("def test_throttled")[0])
    assert SECTION not in html and SECTION not in markdown
