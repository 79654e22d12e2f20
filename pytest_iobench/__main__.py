"""``python -m pytest_iobench report RUN.json [BASELINE.json]`` (also ``iobench report ...``);
``iobench suites [DIR]`` copies the shipped suites out of an installed package.

Renders the Markdown/HTML report of a stored result document, or its comparison with a baseline,
without running anything. With ``--fail-regression``, exits 1 when a metric regressed beyond it
(and, with ``--fail-missing``, when a gated metric of the baseline is missing from the run).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .qualify.cli import add_commands
from .report.baseline import baseline_paths, load_baseline
from .report.compare import compare
from .report.gate_rules import REPORT_NAMES, gate_problems
from .report.human import write_reports
from .report.options import human_formats
from .report.schema import DocumentError, load_document
from .report.text import comparison_lines, gate_line, suite_tables
from .report.thresholds import parse_override, parse_percentage
from .shipped import copy_suites


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pytest_iobench", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    report = commands.add_parser(
        "report", help="render the report of a result document, or its comparison with a baseline",
        description="Render RUN's Markdown and HTML report (plots included); with BASELINE, the report "
                    "includes the comparison of RUN with BASELINE (BASELINE is the earlier run).")
    report.add_argument("run", metavar="RUN.json", help="a result document (e.g. reports/latest.json)")
    report.add_argument("baseline", metavar="BASELINE.json", nargs="?",
                        help="an earlier result document to compare with, or several (a comma list: their "
                             "repeats pooled, so the band spans the drift between sessions)")
    report.add_argument("--out", metavar="DIR", help="where to write the reports (default: next to RUN.json)")
    report.add_argument("--format", default="md,html", type=_argtype(human_formats), metavar="FORMATS",
                        help="md, html (comma list) or none (default: md,html)")
    report.add_argument("--fail-regression", type=_argtype(parse_percentage), metavar="PCT",
                        help="exit 1 when a metric is worse than in BASELINE by more than PCT, e.g. 10%%")
    report.add_argument("--fail-missing", action="store_true",
                        help="with --fail-regression, also exit 1 when a gated metric of BASELINE is missing from RUN")
    report.add_argument("--override", action="append", default=[], type=_argtype(parse_override),
                        metavar="METRIC=PCT",
                        help="a per-metric threshold (METRIC may be a glob; PCT or off); repeatable")
    suites = commands.add_parser(
        "suites", help="copy the shipped suites into DIR (default ./suites) to run them with pytest",
        description="Copy the suites shipped with the installed package into DIR, so that "
                    "`pytest DIR/ --iobench-storage=...` runs them as a checkout's suites/ does.")
    suites.add_argument("dir", metavar="DIR", nargs="?", default="suites", help="where to copy them (default: suites)")
    add_commands(commands)
    return parser


def _argtype(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from one of our parsers: their ValueError text says what is valid."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r} is not valid: {exc}") from None

    convert.__name__ = parse.__name__
    return convert


def report(args: argparse.Namespace) -> int:
    run_path = Path(args.run)
    problems = gate_problems(baseline=args.baseline, threshold=args.fail_regression,
                             fail_missing=args.fail_missing, names=REPORT_NAMES)
    if problems:
        raise DocumentError("; ".join(problems))
    document = load_document(run_path)
    if args.baseline:
        baseline = load_baseline(args.baseline)
        comparison = compare(baseline, document, baseline_path=args.baseline,
                             threshold=args.fail_regression, overrides=args.override,
                             fail_missing=args.fail_missing)
        document["comparison"] = comparison.to_dict()
        first, *more = baseline_paths(args.baseline)
        base = f"{run_path.stem}-vs-{Path(first).stem}" + (f"+{len(more)}" if more else "")
    else:
        comparison = None
        base = run_path.stem
    out = Path(args.out) if args.out else run_path.parent
    for line in suite_tables(document):
        print(line)
    if comparison is not None:
        for line in comparison_lines(document["comparison"]):
            print(line)
    for path in write_reports(document, out / base, args.format):
        if path.suffix in (".md", ".html"):
            print(f"wrote {path}")
    if comparison is not None and comparison.gating:
        failed = comparison.failed
        print(gate_line(document["comparison"], failed), file=sys.stderr if failed else sys.stdout)
        return 1 if failed else 0
    return 0


def suites(args: argparse.Namespace) -> int:
    for path in copy_suites(Path(args.dir)):
        print(f"wrote {path}")
    print(f"run them with: pytest {args.dir}/ --iobench-storage=local,s3")
    return 0


def run_report(args: argparse.Namespace) -> int:
    try:
        return report(args)
    except DocumentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write the report: {exc}", file=sys.stderr)
        return 2


def run_suites(args: argparse.Namespace) -> int:
    try:
        return suites(args)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


#: each subcommand's function: it takes the parsed arguments and returns the exit code (the
#: commands qualify.cli.add_commands adds name theirs with set_defaults(run=...))
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"report": run_report, "suites": run_suites}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = COMMANDS.get(args.command)
    if command is None:
        return int(args.run(args))
    return command(args)


if __name__ == "__main__":
    sys.exit(main())
