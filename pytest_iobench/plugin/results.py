"""The session's result document: tests gathered as they run (xdist workers hand theirs to the
controller through ``workeroutput``), then at the end one JSON document, the human reports, the
comparison with ``--iobench-compare`` and its gate, and the terminal summary.

The work is in pytest_iobench.report (session.py and the modules it uses); this module only wires it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..report.collect import Phase, ResultCollector, add_to_benchmark_json, record_entry
from ..report.redaction import redact_in_place
from ..storage import interrupts, retry
from .options import BASELINE_KEY, get_settings, is_worker, worker_id
from .records import RECORD_KEY, new_record

if TYPE_CHECKING:
    from ..report.session import FinishedRun, RunResults
    from ..report.writer import WrittenRun

WORKER_OUTPUT = "iobench"
STARTED_KEY = "iobench_started"


def pytest_configure(config: pytest.Config) -> None:
    if config.option.help or config.option.version:
        return
    started = getattr(config, "workerinput", {}).get(STARTED_KEY)
    # an xdist worker's files go under the controller's run
    plugin = ResultsPlugin(config, datetime.fromisoformat(started) if started else datetime.now(UTC))
    config.pluginmanager.register(plugin, "iobench-results")
    if not is_worker(config) and hasattr(config.hook, "pytest_testnodedown"):
        config.pluginmanager.register(XdistController(plugin), "iobench-xdist-controller")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    return _redacted_report((yield))


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    return _redacted_report((yield))


def _redacted_report(report: Any) -> Any:
    """The report with secrets out of what pytest prints and xdist ships (failure, captured output)."""
    report.longrepr = redact_in_place(report.longrepr)
    report.sections = redact_in_place(report.sections)
    return report


class XdistController:
    """Takes each worker's tests when it finishes (registered only when xdist is loaded)."""

    def __init__(self, plugin: ResultsPlugin):
        self.plugin = plugin

    def pytest_configure_node(self, node: Any) -> None:
        """Workers take the controller's start: one run, one folder of DLIO output."""
        node.workerinput[STARTED_KEY] = self.plugin.started.isoformat()

    def pytest_testnodedown(self, node: Any, error: object) -> None:
        output = getattr(node, "workeroutput", None) or {}
        if WORKER_OUTPUT in output:
            self.plugin.collector.merge(output[WORKER_OUTPUT])


#: the S3 libraries' counts when the test's setup began
_OPS_BEFORE = pytest.StashKey[dict[str, Any]]()


class ResultsPlugin:
    """The session's RunResults, fed by pytest's hooks. The tests are gathered by a
    ResultCollector from the start; the RunResults (the document, its schema, the reports)
    is made when it is first needed, so a session that runs no iobench test never imports
    the report layer's heavy modules."""

    def __init__(self, config: pytest.Config, started: datetime):
        self.config = config
        self.started = started
        self.collector = ResultCollector()
        self.finished: FinishedRun | None = None
        self.written: WrittenRun | str | None = None
        #: what interrupted the session (the signal, or a KeyboardInterrupt of its own)
        self.interrupted: str | None = None

    @cached_property
    def results(self) -> RunResults:
        from ..report.session import RunResults

        settings = get_settings(self.config)
        results = RunResults(
            settings, rootdir=self.config.rootpath, invocation_dir=self.config.invocation_params.dir,
            command=["pytest", *self.config.invocation_params.args],
            baseline=self.config.stash.get(BASELINE_KEY, None), baseline_path=settings.compare or "")
        results.collector = self.collector
        results.started = self.started
        return results

    @property
    def wanted(self) -> bool:
        """Whether this session writes a document (RunResults.wanted, known without it)."""
        settings = get_settings(self.config)
        return self.collector.iobench_used or bool(settings.json) or BASELINE_KEY in self.config.stash

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        self.interrupted = interrupts.interrupted() or "KeyboardInterrupt"

    def pytest_fixture_setup(self, fixturedef: pytest.FixtureDef[Any]) -> None:
        """A test that uses an iobench fixture makes this an iobench session (it gets a document)."""
        if getattr(fixturedef.func, "__module__", "").startswith("pytest_iobench."):
            self.collector.iobench_used = True

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        item.stash[_OPS_BEFORE] = retry.COUNTS.snapshot()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> Any:
        try:
            return (yield)
        finally:  # the record is complete once the test's fixtures are torn down
            record = item.stash.get(RECORD_KEY, None) or new_record(item)
            if _OPS_BEFORE in item.stash:  # what the S3 libraries' requests met during the test
                # added to what the test put there (its ranks', a child process's)
                retry.add_entries(record.storage_ops, retry.COUNTS.since(item.stash[_OPS_BEFORE]))
            self.collector.add_test(record_entry(record, worker_id(item.config)))

    @pytest.hookimpl(optionalhook=True)  # pytest-benchmark's hook: absent when it is not installed
    def pytest_benchmark_update_json(self, config: pytest.Config, benchmarks: Any, output_json: dict[str, Any]) -> None:
        """pytest-benchmark's JSON (--benchmark-json, --benchmark-save) gets our metrics of every
        test: each benchmark's ``extra_info["iobench"]``, and ``iobench.tests`` for all of them
        (throughput tests have no benchmark entry of their own)."""
        add_to_benchmark_json(output_json, self.collector.entries())

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.collector.add_phase(report.nodeid, report.when, Phase(
            report.outcome, report.duration, hasattr(report, "wasxfail"), _message(report)))

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.config.option.collectonly:
            return
        if is_worker(self.config):
            self.config.workeroutput[WORKER_OUTPUT] = self.collector.export()  # type: ignore[attr-defined]
            return
        if not self.wanted or exitstatus == pytest.ExitCode.USAGE_ERROR:
            return  # a usage error found at collection: nothing ran, nothing is written
        workers = getattr(self.config.option, "numprocesses", None)
        self.finished = self.results.finish(int(exitstatus), xdist_workers=workers if isinstance(workers, int) else 0,
                                            interrupted=self.interrupted)
        try:
            self.written = self.results.write(self.finished)
        except OSError as exc:
            self.written = f"iobench: could not write the results: {exc}"
            self.finished.exit_status = self.finished.exit_status or int(pytest.ExitCode.INTERNAL_ERROR)
        session.exitstatus = self.finished.exit_status

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.finished is None:
            return
        from ..report.text import comparison_lines, suite_tables

        tr, document = terminalreporter, self.finished.document
        tr.write_sep("-", "iobench results")
        for line in suite_tables(document):
            tr.write_line(line)
        if self.finished.comparison is not None:
            tr.write_sep("-", "iobench comparison")
            for line in comparison_lines(document["comparison"]):
                tr.write_line(line)
        if isinstance(self.written, str):
            tr.write_line(self.written, red=True, bold=True)
        elif self.written is not None:
            files = [self.written.document, *([self.written.latest] if self.written.latest else []),
                     *(p for p in self.written.human if p.suffix in (".md", ".html"))]
            tr.write_line("iobench: results in " + ", ".join(self._shown(p) for p in files))
        if self.finished.schema_problems:
            tr.write_line("iobench: the document does not match its schema (a pytest-iobench bug): "
                          + "; ".join(self.finished.schema_problems), red=True)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """The gate's verdict is the session's last line: after pytest's own summary line and
        after any other plugin's tables (pytest-benchmark's), where CI logs are read first."""
        comparison = self.finished.comparison if self.finished is not None else None
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if self.finished is None or comparison is None or not comparison.gating or reporter is None:
            return
        from ..report.text import gate_line

        failed = comparison.failed
        reporter.write_line(gate_line(self.finished.document["comparison"], failed),
                            red=failed, green=not failed, bold=True)

    def _shown(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.config.invocation_params.dir))
        except ValueError:
            return str(path)


def _message(report: pytest.TestReport) -> str:
    """One line saying why a test failed, errored or was skipped ("" when it passed)."""
    if hasattr(report, "wasxfail"):
        return f"xfail: {report.wasxfail}" if report.wasxfail else "xfail"
    if report.passed:
        return ""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, reason)
        return str(longrepr[2]).removeprefix("Skipped: ")[:500]
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return crash.message.splitlines()[0][:500] if crash.message else ""
    lines = [line for line in report.longreprtext.splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""
