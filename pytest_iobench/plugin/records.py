"""The ``iobench_record`` fixture: each test's results, attached to its test item."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import pytest

from ..storage.tally import TALLY
from .options import get_settings, is_worker

if TYPE_CHECKING:  # imported by the first test that records (not in every pytest session)
    from ..report.record import TestRecord

RECORD_KEY = pytest.StashKey["TestRecord"]()


def suite_of(item: pytest.Item) -> str:
    return item.path.stem if item.path is not None else ""


def params_of(item: pytest.Item) -> dict[str, Any]:
    """Parameters known from the test id: storage, library, threads and the test's own."""
    params: dict[str, Any] = {}
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return params
    for name, value in callspec.params.items():
        if name == "storage" and hasattr(value, "kind"):
            params["storage"], params["library"] = value.kind, value.library
        elif isinstance(value, (str, int, float, bool)) or value is None:
            params[name] = value
    return params


def new_record(item: pytest.Item) -> TestRecord:
    from ..report.record import TestRecord

    settings = get_settings(item.config)
    return TestRecord(nodeid=item.nodeid, suite=suite_of(item), params=params_of(item),
                      repeat=settings.repeat, warmups=settings.warmup)


#: a case that runs longer than this shows progress lines
PROGRESS_AFTER = 2.0


@pytest.fixture
def iobench_progress(request: pytest.FixtureRequest) -> Callable[[str, str], None] | None:
    """Writes a progress line of this test to the terminal, past pytest's capture, as generation
    does (``iobench <what> <test>: ...``); None where there is no terminal (xdist workers).
    Callers report only what runs longer than PROGRESS_AFTER seconds."""
    config = request.config
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if is_worker(config) or reporter is None:
        return None
    capture = config.pluginmanager.get_plugin("capturemanager")
    name = request.node.nodeid.split("::", 1)[-1]

    def show(what: str, text: str) -> None:
        line = f"iobench {what} {name}: {text}"
        if capture is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line(line)
        else:
            reporter.write_line(line)

    return show


@pytest.fixture
def iobench_record(request: pytest.FixtureRequest) -> TestRecord:
    """This test's result record: ``metric(...)``, ``criterion(...)``, ``warn(...)``,
    ``measure(run, units)`` (with --iobench-warmup and --iobench-repeat), ``latency(...)``."""
    item = request.node
    # a record begun by a fixture that ran first (the dataset's notes) is kept
    record = item.stash.get(RECORD_KEY, None) or new_record(item)
    item.stash[RECORD_KEY] = record
    return record


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    """A case that records figures starts on a written-back disk; a criterion that is not met
    fails the test, with its explanation."""
    written_back = None
    if "iobench_record" in getattr(item, "fixturenames", ()):
        from ..storage.posix import write_back_all

        # What earlier cases wrote and deleted (a throughput case's gigabytes) is otherwise
        # committed by the file system while this case runs: a 4 KiB local put measured 80 us
        # or 500 us by whether that happened (docs/results.md, "A quiet start").
        written_back = write_back_all()
    before = TALLY.snapshot()
    result = yield
    record = item.stash.get(RECORD_KEY, None)
    if record is None:
        return result
    if written_back is not None:
        record.details["written_back_seconds"] = round(written_back, 4)
    spread = TALLY.since(before, TALLY.snapshot())
    if spread:  # several endpoints: what each served for this test (in this process)
        record.details.setdefault("endpoints", {})
        for url, counts in spread.items():
            mine = record.details["endpoints"].setdefault(url, dict.fromkeys(counts, 0))
            for name, value in counts.items():
                mine[name] += value
    from ..report.record import KINDS

    if record.kind and record.kind not in KINDS:
        pytest.fail(f"iobench_record.kind = {record.kind!r} is not a kind; valid: {', '.join(KINDS)}", pytrace=False)
    if record.failed_criteria:
        pytest.fail("criteria not met: " + "; ".join(c.explain() for c in record.failed_criteria), pytrace=False)
    return result
