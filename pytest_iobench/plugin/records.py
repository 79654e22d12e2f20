"""The ``iobench_record`` fixture: each test's results, attached to its test item."""

from __future__ import annotations

import pytest

from ..report.record import TestRecord

RECORD_KEY = pytest.StashKey[TestRecord]()


def _suite_of(item: pytest.Item) -> str:
    return item.path.stem if item.path is not None else ""


def _params_of(item: pytest.Item) -> dict:
    """Parameters known from the test id: storage, library, threads and the test's own."""
    params = {}
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return params
    for name, value in callspec.params.items():
        if name == "storage" and hasattr(value, "kind"):
            params["storage"], params["library"] = value.kind, value.library
        elif isinstance(value, (str, int, float, bool)) or value is None:
            params[name] = value
    return params


@pytest.fixture
def iobench_record(request: pytest.FixtureRequest) -> TestRecord:
    """This test's result record: ``metric(...)``, ``criterion(...)``, ``warn(...)``."""
    item = request.node
    record = TestRecord(nodeid=item.nodeid, suite=_suite_of(item), params=_params_of(item))
    item.stash[RECORD_KEY] = record
    return record


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """A criterion that is not met fails the test, with its explanation."""
    result = yield
    record = item.stash.get(RECORD_KEY, None)
    if record is not None and record.failed_criteria:
        pytest.fail("criteria not met: " + "; ".join(c.explain() for c in record.failed_criteria), pytrace=False)
    return result
