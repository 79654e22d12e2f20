"""Gathering a session's tests: each test's entry (from the process that ran it) and the outcome of
its phases (setup, call, teardown), merged across xdist workers into one list of entries."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from .record import KINDS, TestRecord
from .redaction import redacted

OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed", "incomplete")

#: a suite's kind, from words in its file name (test_storage_conformance -> conformance)
_KIND_WORDS = (
    ("conformance", "conformance"), ("generat", "generate"), ("checkpoint", "checkpoint"),
    ("train", "train"), ("latency", "latency"), ("throughput", "throughput"), ("read", "read"),
)


def infer_kind(suite: str) -> str | None:
    """The kind of a test from its suite's name, None when the name does not say."""
    name = suite.lower()
    for word, kind in _KIND_WORDS:
        if word in name:
            return kind
    return None


def suite_of(nodeid: str) -> str:
    """``suites/test_read.py::test_read[npz]`` -> ``test_read``."""
    path = nodeid.split("::", 1)[0]
    name = path.rsplit("/", 1)[-1]
    return name[:-3] if name.endswith(".py") else name


def blank_entry(nodeid: str) -> dict[str, Any]:
    """The entry of a test known only from its reports (a crashed xdist worker ran it)."""
    suite = suite_of(nodeid)
    return {
        "id": nodeid, "suite": suite, "kind": infer_kind(suite), "params": {}, "outcome": "incomplete",
        "message": "", "duration_s": 0.0, "setup_s": 0.0, "teardown_s": 0.0, "worker": None,
        "metrics": {}, "criteria": [], "warnings": [], "details": {},
    }


def record_entry(record: TestRecord, worker: str | None = None) -> dict[str, Any]:
    """A test's entry from its record (outcome filled in later), redacted in the process that ran
    the test: only there are the secrets it may hold known (an xdist worker's embedded endpoint)."""
    entry: dict[str, Any] = {**blank_entry(record.nodeid), **record.to_dict(), "worker": worker}
    entry["suite"] = entry["suite"] or suite_of(record.nodeid)
    entry["kind"] = entry["kind"] or infer_kind(entry["suite"])
    if entry["kind"] not in KINDS:  # the test failed saying so; the document keeps to its schema
        entry["kind"] = None
    clean: dict[str, Any] = redacted(entry)  # the same shape, strings redacted
    return clean


@dataclass
class Phase:
    outcome: str  # pytest's report outcome: passed, failed, skipped
    duration: float
    wasxfail: bool = False
    message: str = ""


def outcome_of(phases: dict[str, Phase]) -> tuple[str, str]:
    """A test's outcome and its message from its phase reports, as pytest's summary counts it."""
    setup, call, teardown = phases.get("setup"), phases.get("call"), phases.get("teardown")
    if setup is not None and setup.outcome == "failed":
        return "error", setup.message
    if setup is not None and setup.outcome == "skipped":
        return ("xfailed" if setup.wasxfail else "skipped"), setup.message
    if call is None:
        return "incomplete", "the test did not finish (interrupted, or its worker crashed)"
    if call.outcome == "failed":
        return "failed", call.message
    if call.outcome == "skipped":
        return ("xfailed" if call.wasxfail else "skipped"), call.message
    if teardown is not None and teardown.outcome == "failed":
        return "error", teardown.message
    return ("xpassed" if call.wasxfail else "passed"), ""


class ResultCollector:
    """The tests of one process (or, on the xdist controller, of the whole session)."""

    def __init__(self) -> None:
        self.tests: dict[str, dict[str, Any]] = {}
        self.phases: dict[str, dict[str, Phase]] = {}
        #: whether any test used an iobench fixture (only then is a document written by default)
        self.iobench_used = False

    def add_test(self, entry: dict[str, Any]) -> None:
        """What the process that ran a test knew of it (its record's entry)."""
        self.tests[entry["id"]] = entry

    def add_phase(self, nodeid: str, when: str, phase: Phase) -> None:
        self.phases.setdefault(nodeid, {})[when] = phase
        if nodeid not in self.tests:  # keeps the run order; the test's own entry replaces it
            self.tests[nodeid] = blank_entry(nodeid)

    def export(self) -> dict[str, Any]:
        """What an xdist worker hands to the controller (JSON types, through workeroutput)."""
        return {"tests": redacted(self.entries()), "iobench_used": self.iobench_used}

    def merge(self, exported: dict[str, Any]) -> None:
        """Take a worker's tests: its entries replace the blank ones made from reports alone."""
        for entry in exported.get("tests", []):
            self.tests[entry["id"]] = entry
        self.iobench_used = self.iobench_used or bool(exported.get("iobench_used"))

    def entries(self) -> list[dict[str, Any]]:
        """One entry per test that ran, in the order they ran, with outcome and durations."""
        result = []
        for nodeid, entry in self.tests.items():
            phases = self.phases.get(nodeid, {})
            entry = copy.deepcopy(entry)
            if phases:
                outcome, message = outcome_of(phases)
                if entry.get("outcome") != outcome or not entry.get("message"):
                    entry["message"] = message  # else the worker's own, redacted where its secrets are known
                entry["outcome"] = outcome
                entry["setup_s"] = phases["setup"].duration if "setup" in phases else 0.0
                entry["duration_s"] = phases["call"].duration if "call" in phases else 0.0
                entry["teardown_s"] = phases["teardown"].duration if "teardown" in phases else 0.0
            else:
                entry["outcome"], entry["message"] = "incomplete", "no report of this test reached the session"
            result.append(entry)
        return result


def metrics_summary(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A test's metrics as {name: {value, unit, direction}} (what other tools' JSON carries)."""
    return {name: {"value": m["value"], "unit": m["unit"], "direction": m["direction"]}
            for name, m in entry["metrics"].items()}


def add_to_benchmark_json(output_json: dict[str, Any], entries: list[dict[str, Any]]) -> None:
    """Put our metrics into pytest-benchmark's JSON: into ``extra_info["iobench"]`` of each
    benchmark that is one of our tests, and every test with metrics under ``iobench.tests``
    (tests that do not use ``benchmark``, such as throughput tests, have no benchmark entry).
    Our result document stays the source of truth; this is a view of it."""
    measured = {e["id"]: e for e in entries if e["metrics"]}
    for bench in output_json.get("benchmarks", []):
        entry = measured.get(bench.get("fullname"))
        if entry is not None:
            bench.setdefault("extra_info", {})["iobench"] = metrics_summary(entry)
    output_json["iobench"] = {"tests": {
        test_id: {"kind": e["kind"], "outcome": e["outcome"], "params": e["params"], "metrics": metrics_summary(e)}
        for test_id, e in measured.items()}}
