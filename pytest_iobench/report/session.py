"""A session's results from start to files: the tests gathered as they run (xdist workers merged),
then one document, the comparison with a baseline and its verdict, and the files written.

Used by the pytest plugin (plugin/results.py), which only feeds it; usable without pytest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..settings import Settings
from .collect import ResultCollector
from .compare import Comparison, compare
from .document import build_document, compact_timestamp, utc_now
from .human import write_reports
from .redaction import masked_command, redacted, register_session_secrets
from .schema import problems
from .writer import LATEST, WrittenRun, document_path, write_document

TESTS_FAILED = 1  # pytest's exit status when tests failed


@dataclass
class FinishedRun:
    document: dict[str, Any]
    comparison: Comparison | None
    exit_status: int
    #: what makes the document invalid against its schema (a bug of ours; empty when valid)
    schema_problems: list[str] = field(default_factory=list)


class RunResults:
    def __init__(self, settings: Settings, *, rootdir: str | Path, invocation_dir: str | Path,
                 command: Sequence[str], baseline: dict[str, Any] | None = None, baseline_path: str = ""):
        register_session_secrets(settings)
        self.settings = settings
        self.rootdir = Path(rootdir)
        self.invocation_dir = Path(invocation_dir)
        #: as given, with secrets and masked values hidden (once the secrets are known)
        self.command = masked_command(command)
        self.baseline = baseline
        self.baseline_path = baseline_path
        self.collector = ResultCollector()
        self.started = utc_now()

    @property
    def run_stamp(self) -> str:
        """The session's start as a folder name (20261125T101502Z): a run's own files (DLIO's
        output) go under it, so the next run does not overwrite what this run's document names."""
        return compact_timestamp(self.started)

    @property
    def output_dir(self) -> Path:
        """Where this run's files go: the folder of ``--iobench-json``'s document, else reports/
        under the rootdir (a run of the project's tests, which names its document, writes
        nothing into the checkout)."""
        return (self.invocation_dir / self.settings.json).parent if self.settings.json else self.rootdir / "reports"

    @property
    def wanted(self) -> bool:
        """Whether this session gets a document: it ran an iobench test, or one was asked for."""
        return self.collector.iobench_used or bool(self.settings.json) or self.baseline is not None

    def finish(self, exit_status: int, xdist_workers: int = 0, interrupted: str | None = None) -> FinishedRun:
        """The document; with a baseline, the comparison, and a failing exit status when gating
        finds a regression (a run that failed already keeps its status)."""
        document = build_document(
            [redacted(entry) for entry in self.collector.entries()],
            started=self.started, finished=utc_now(), exit_status=exit_status, command=self.command,
            rootdir=self.rootdir, settings=self.settings.describe(), xdist_workers=xdist_workers,
            interrupted=interrupted)
        comparison = None
        if self.baseline is not None:
            comparison = compare(self.baseline, document, baseline_path=self.baseline_path,
                                 threshold=self.settings.fail_regression,
                                 overrides=self.settings.fail_regression_overrides,
                                 fail_missing=bool(self.settings.get("fail-missing")))
            document["comparison"] = redacted(comparison.to_dict())
            if comparison.failed and exit_status == 0:
                exit_status = TESTS_FAILED
        document["run"]["exit_status"] = int(exit_status)
        return FinishedRun(document, comparison, int(exit_status), problems(document))

    def write(self, finished: FinishedRun) -> WrittenRun:
        """``--iobench-json PATH``, or reports/iobench-<UTC timestamp>.json and reports/latest.json
        under the rootdir; then the human reports next to the document."""
        if self.settings.json:
            path = self.invocation_dir / self.settings.json
            written = write_document(finished.document, path)
        else:
            reports = self.output_dir
            written = write_document(finished.document, document_path(reports, self.started), reports / LATEST)
        written.human = write_reports(finished.document, written.document.with_suffix(""), self.settings.report)
        return written
