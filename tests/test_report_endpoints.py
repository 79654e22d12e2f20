"""The balance over several endpoints: what each endpoint served for a test (its operations and
bytes, counted by storage/spread.py's tally) is in the terminal summary, in the Markdown and HTML
reports as a table and as a plot; a run over one endpoint shows none of it.

The tests here feed the tally the way the spread storages do (``TALLY.add``) inside a pytester
session, so the plugin's per-test recording is the real one; tests/test_endpoints.py checks that
real two-endpoint runs fill it."""

from __future__ import annotations

import re

from pytest_iobench.report.plots import endpoint_balance
from pytest_iobench.report.schema import load_document

SPREAD = """
from pytest_iobench.storage.tally import TALLY

def test_spread(iobench_record):
    iobench_record.metric("files", 4, "files", "none")
    TALLY.add("http://127.0.0.1:9001", ops=3, read=3_000_000)
    TALLY.add("http://127.0.0.1:9002", ops=1, read=500_000, written=500_000)

def test_one_endpoint(iobench_record):
    iobench_record.metric("files", 4, "files", "none")
"""

HEADING = "Balance over the endpoints"


def _run(pytester, source):
    pytester.makepyfile(test_spread=source)
    result = pytester.runpytest("--iobench-libraries=posix", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=source.count("def test_"))
    path = sorted((pytester.path / "reports").glob("iobench-*.json"))[-1]
    stem = path.with_suffix("")
    html, markdown = (stem.with_name(stem.name + suffix).read_text() for suffix in (".html", ".md"))
    return result, load_document(path), html, markdown


def test_each_endpoints_share_is_in_the_document_terminal_and_reports(pytester):
    result, document, html, markdown = _run(pytester, SPREAD)
    assert endpoint_balance(document["tests"]) == [
        ("test_spread", {"http://127.0.0.1:9001": (3, 3_000_000), "http://127.0.0.1:9002": (1, 1_000_000)})]
    result.stdout.fnmatch_lines(["*test_spread: endpoints: http://127.0.0.1:9001 75.0% of 4 ops, 75.0% of 4 MB; "
                                 "http://127.0.0.1:9002 25.0% of 4 ops, 25.0% of 4 MB"])
    assert "| test_spread | http://127.0.0.1:9001 | 3 | 75.0% | 3 | 75.0% |" in markdown
    assert "| test_spread | http://127.0.0.1:9002 | 1 | 25.0% | 1 | 25.0% |" in markdown
    assert "test_one_endpoint" not in markdown.split(HEADING + " (operations")[1].split("\n\n")[1]
    images = re.findall(r"!\[[^]]*\]\(([^)]+\.png)\)", markdown)
    assert [re.sub(r"^iobench-\w+-", "", i) for i in images] == ["endpoints.png"]
    assert HEADING in html and html.count('src="data:image/png;base64,') == 1


def test_a_run_over_one_endpoint_shows_no_balance(pytester):
    result, document, html, markdown = _run(pytester, SPREAD.split("def test_spread")[0]
                                            + "def test_one_endpoint" + SPREAD.split("def test_one_endpoint")[1])
    assert endpoint_balance(document["tests"]) == []
    assert HEADING not in html and HEADING not in markdown and "endpoints:" not in result.stdout.str()
