"""The human report of a result document: Markdown (plots as PNG files next to it) and HTML (plots
embedded as base64 data URIs), built from one list of blocks so the two say the same thing."""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .plots import Plot, endpoint_balance, render_plots, short_id
from .qualification import PLOT_PREFIX, qualification_plots, qualification_sections
from .text import (
    CHANGE_HEADERS,
    by_suite,
    change_rows,
    fmt,
    fmt_percent,
    missing_note,
    ops_value,
    ops_worth_showing,
    outcome_counts,
    severity,
    spread_note,
    with_unit,
)
from .writer import write_atomic

GiB = 1024**3


@dataclass
class Block:
    kind: str  # heading, paragraph, table, plot, list
    text: str = ""
    level: int = 2
    headers: Sequence[str] = ()
    rows: Sequence[Sequence[str]] = ()
    items: Sequence[str] = ()
    plot: Plot | None = None
    css: str = ""
    row_classes: Sequence[str] = field(default_factory=list)


def _heading(text: str, level: int = 2) -> Block:
    return Block("heading", text, level=level)


def _run_blocks(document: dict[str, Any]) -> list[Block]:
    run, machine, software = document["run"], document["machine"], document["software"]
    git = run["git"]
    commit = "not a git checkout" if git is None else (
        f"{git['commit'][:12]}" + (f" on {git['branch']}" if git["branch"] else "")
        + (" (uncommitted changes)" if git["dirty"] else ""))
    cpu = machine["cpu"]
    memory = machine["memory_bytes"]
    rows = [
        ["run", run["id"]],
        ["started / finished (UTC)", f"{run['started']} / {run['finished']} ({fmt(run['duration_s'])} s)"],
        ["exit status", str(run["exit_status"])],
        ["command", " ".join(run["command"])],
        ["host", machine["hostname"]],
        ["CPU", f"{cpu['model'] or 'unknown'}, {cpu['logical_cores']} logical cores"
                + (f", {cpu['physical_cores']} physical" if cpu["physical_cores"] else "")],
        ["memory", "unknown" if memory is None else f"{memory / GiB:.1f} GiB"],
        ["OS", f"{machine['os']['distribution'] or machine['os']['system']} ({machine['os']['system']} "
               f"{machine['os']['release']}, {machine['architecture']})"],
        ["Python", f"{software['python']['implementation']} {software['python']['version']}"],
        ["pytest-iobench", f"{run['plugin_version']}, {commit}"],
        ["xdist workers", str(run["xdist_workers"])],
    ]
    summary = document["summary"]
    text = (f"{summary['tests']} tests: {outcome_counts(document['tests']) or 'none ran'}; "
            f"{summary['criteria_failed']} criteria not met; {summary['warnings']} warnings.")
    return [_heading("Run"), Block("table", headers=["", ""], rows=rows), Block("paragraph", text)]


def _comparison_blocks(comparison: dict[str, Any]) -> list[Block]:
    base = comparison["baseline"]
    blocks = [_heading("Comparison with the baseline"), Block("paragraph", (
        f"Baseline {base['path']} (run {base['run_id']}, started {base['started']}). Threshold "
        f"{fmt_percent(comparison['threshold'])}" + (f", overrides {', '.join(comparison['overrides'])}"
                                                      if comparison["overrides"] else "")
        + (". Regressions fail the session." if comparison["gating"] else
           ". Not gating (no --iobench-fail-regression): changes are shown, the session does not fail on them.")))]
    differences = [(label, comparison[key]) for label, key in
                   (("The machines differ", "machine_differences"), ("The settings differ", "settings_differences"))
                   if comparison[key]]
    for label, rows in differences:
        blocks.append(Block("paragraph", f"{label}:", css="note"))
        blocks.append(Block("table", headers=["", "baseline", "this run"],
                            rows=[[d["field"], str(d["baseline"]), str(d["current"])] for d in rows]))
    changes = comparison["changes"]
    if note := spread_note(comparison):
        blocks.append(Block("paragraph", note[:1].upper() + note[1:] + ".", css="note"))
    for status, title in (("regression", "Regressions"), ("improvement", "Improvements")):
        selected = sorted((c for c in changes if c["status"] == status), key=severity, reverse=status == "improvement")
        blocks.append(_heading(f"{title} ({len(selected)})", 3))
        if selected:
            blocks.append(Block("table", headers=CHANGE_HEADERS, rows=change_rows(selected),
                                row_classes=[status] * len(selected)))
        else:
            blocks.append(Block("paragraph", "none"))
    missing = comparison.get("missing_metrics", [])
    if missing:
        blocks += [_heading(f"Baseline metrics missing ({len(missing)})", 3),
                   Block("paragraph", missing_note(comparison), css="note"),
                   Block("table", headers=["test", "metric", "why"], rows=[
                       [short_id(m["id"]), m["metric"], m["reason"]] for m in missing])]
    for key, title in (("new_tests", "New tests (not in the baseline)"),
                       ("missing_tests", "Missing tests (in the baseline, not run)")):
        if comparison[key]:
            blocks += [_heading(f"{title} ({len(comparison[key])})", 3),
                       Block("list", items=[short_id(i) for i in comparison[key]])]
    if comparison["outcome_changes"]:
        blocks += [_heading("Outcome changed", 3), Block("table", headers=["test", "baseline", "this run"], rows=[
            [short_id(o["id"]), o["baseline"], o["current"]] for o in comparison["outcome_changes"]])]
    if comparison["not_compared"]:
        blocks += [_heading("Not compared", 3), Block("table", headers=["test", "metric", "why"], rows=[
            [short_id(n["id"]), n["metric"], n["reason"]] for n in comparison["not_compared"]])]
    return blocks


def _results_blocks(tests: Sequence[dict[str, Any]]) -> list[Block]:
    blocks = [_heading("Results")]
    for path, suite_tests in by_suite(tests).items():
        kinds = sorted({t["kind"] for t in suite_tests if t["kind"]})
        blocks.append(_heading(f"{path}" + (f" ({', '.join(kinds)})" if kinds else ""), 3))
        blocks.append(Block("paragraph", outcome_counts(suite_tests)))
        rows, classes = [], []
        for test in suite_tests:
            for name, m in test["metrics"].items():
                rows.append([short_id(test["id"]), test["outcome"], name, with_unit(m["value"], m["unit"]),
                             fmt(m["min"]), fmt(m["max"]), str(len(m["repeats"])), str(len(m["warmup"])),
                             {"higher": "higher", "lower": "lower", "none": "-"}[m["direction"]]])
                classes.append(test["outcome"])
        if rows:
            blocks.append(Block("table", headers=["test", "outcome", "metric", "value (median)", "min", "max",
                                                  "repeats", "warm-ups", "better"], rows=rows, row_classes=classes))
        criteria = [(t, c) for t in suite_tests for c in t["criteria"]]
        if criteria:
            blocks.append(Block("table", headers=["test", "criterion", "verdict", "why"], rows=[
                [short_id(t["id"]), f"{c['metric']} = {fmt(c['value'])} {c['comparison']} {fmt(c['threshold'])}",
                 "met" if c["passed"] else "NOT met", c["description"]] for t, c in criteria],
                row_classes=["passed" if c["passed"] else "failed" for _, c in criteria]))
        problems = [f"{short_id(t['id'])}: {t['outcome']}: {t['message']}" for t in suite_tests
                    if t["outcome"] in ("failed", "error", "incomplete")]
        problems += [f"{short_id(t['id'])}: skipped: {t['message']}" for t in suite_tests
                     if t["outcome"] == "skipped" and t["message"]]
        warnings = [f"{short_id(t['id'])}: {w}" for t in suite_tests for w in t["warnings"]]
        blocks += _storage_ops_blocks(suite_tests)
        blocks += _endpoint_blocks(suite_tests)
        if problems:
            blocks += [Block("paragraph", "Failures and skips:"), Block("list", items=problems)]
        if warnings:
            blocks += [Block("paragraph", "Warnings (diagnostics, not results):"), Block("list", items=warnings)]
    return blocks


#: what storage_ops shows beside the requests and attempts
_OPS_SHOWN = ("retries", "throttles", "resets", "timeouts", "backoff_s")


def _storage_ops_blocks(tests: Sequence[dict[str, Any]]) -> list[Block]:
    """What retrying cost, per test and S3 library, for the tests whose requests met faults:
    a run with faults must not read like a clean one (docs/resilience.md). A test whose ranks
    ran under mpiexec gets a row per rank under its total. "?" is a figure the library cannot
    count (s3dlio): never a 0 that reads as "no retries"."""
    per_rank = any((t.get("details") or {}).get("storage_ops_per_rank") for t in tests)

    def row(test_id: str, rank: str, library: str, ops: dict[str, Any]) -> list[str]:
        return [test_id, *([rank] if per_rank else []), library, str(ops["requests"]),
                *(ops_value(ops, k, fmt) for k in ("attempts", *_OPS_SHOWN))]

    rows = []
    unknown: set[str] = set()
    for t in tests:
        ranks = (t.get("details") or {}).get("storage_ops_per_rank") or []
        for library, ops in sorted((t.get("storage_ops") or {}).items()):
            if not ops_worth_showing(ops):
                continue
            if ops.get("unknown"):
                unknown.add(library)
            rows.append(row(short_id(t["id"]), "all" if ranks else "", library, ops))
            rows += [row("", str(r["rank"]), library, r["storage_ops"][library])
                     for r in ranks if library in r["storage_ops"]]
    if not rows:
        return []
    blocks = [Block("paragraph", "Storage operations that were retried (backoff seconds are inside the figures' "
                                 "wall time):"),
              Block("table", headers=["test", *(["rank"] if per_rank else []), "library", "requests", "attempts",
                                      "retries", "throttles", "resets", "timeouts", "backoff s"], rows=rows)]
    if unknown:
        blocks.append(Block("paragraph", f"? : not counted by {', '.join(sorted(unknown))}, which reports none of "
                                         "its attempts (docs/resilience.md)."))
    return blocks


def _qualification_blocks(tests: Sequence[dict[str, Any]], plots: Sequence[Plot]) -> list[Block]:
    """The qualification page (report/qualification.py): per test its verdict in words, the
    search plot, the rules and the runs."""
    sections = qualification_sections(tests, plots)
    blocks = [_heading("Qualification")] if sections else []
    for section in sections:
        blocks.append(_heading(section.title, 3))
        blocks += [Block("paragraph", text) for text in section.words]
        if section.plot is not None:
            blocks += [Block("plot", plot=section.plot), Block("paragraph", section.plot.caption)]
        blocks += [Block("table", headers=t.headers, rows=t.rows, row_classes=t.row_classes) for t in section.tables]
    return blocks


def _endpoint_blocks(tests: Sequence[dict[str, Any]]) -> list[Block]:
    """What each endpoint served, per test run over several endpoints: the balance of the spread."""
    rows = []
    for label, served in endpoint_balance(tests):
        ops = sum(v[0] for v in served.values())
        moved = sum(v[1] for v in served.values())
        for url, (n, b) in served.items():
            rows.append([label, url, str(n), fmt_percent(n / ops if ops else None), fmt(b / 1e6),
                         fmt_percent(b / moved if moved else None)])
    if not rows:
        return []
    return [Block("paragraph", "Balance over the endpoints (operations and bytes read and written each served):"),
            Block("table", headers=["test", "endpoint", "operations", "share", "MB", "share"], rows=rows)]


def report_blocks(document: dict[str, Any], plots: Sequence[Plot]) -> list[Block]:
    blocks = [_heading(f"pytest-iobench results: {document['run']['id']}", 1)]
    blocks += _run_blocks(document)
    if "comparison" in document:
        blocks += _comparison_blocks(document["comparison"])
    general = [p for p in plots if not p.name.startswith(PLOT_PREFIX)]
    if general:
        blocks.append(_heading("Plots"))
        for plot in general:
            blocks += [_heading(plot.title, 3), Block("plot", plot=plot), Block("paragraph", plot.caption)]
    blocks += _qualification_blocks(document["tests"], plots)
    blocks += _results_blocks(document["tests"])
    settings = document["run"]["settings"]
    blocks += [_heading("Settings"), Block("table", headers=["setting", "value", "from"], rows=[
        [name, s["value"], s["source"]] for name, s in settings.items()])]
    libraries = document["software"]["libraries"]
    blocks += [_heading("Libraries"), Block("table", headers=["library", "version"], rows=[
        [name, version or "not installed"] for name, version in libraries.items()])]
    return blocks


# -- Markdown ------------------------------------------------------------------------------------
def _md_cell(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: Sequence[Block], image_name: Callable[[Plot], str]) -> str:
    out: list[str] = []
    for block in blocks:
        if block.kind == "heading":
            out += ["#" * block.level + " " + block.text, ""]
        elif block.kind == "paragraph":
            out += [block.text, ""]
        elif block.kind == "table":
            headers = [_md_cell(h) or " " for h in block.headers]
            out.append("| " + " | ".join(headers) + " |")
            out.append("|" + "|".join("---" for _ in headers) + "|")
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            out.append("")
        elif block.kind == "list":
            out += [f"- {_md_cell(item)}" for item in block.items] + [""]
        elif block.kind == "plot":
            assert block.plot is not None, "a plot block carries its plot"
            out += [f"![{block.plot.title}]({image_name(block.plot)})", ""]
    return "\n".join(out)


# -- HTML ----------------------------------------------------------------------------------------
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
tr.failed td, tr.error td, tr.regression td { background: #fdecea; }
tr.improvement td { background: #e8f5e9; }
tr.skipped td, tr.incomplete td { color: #777; }
p.note { color: #8a4b00; font-weight: bold; }
img { max-width: 100%; border: 1px solid #ddd; }
"""


def to_html(blocks: Sequence[Block], title: str) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">", f"<title>{e(title)}</title>",
           f"<style>{_STYLE}</style></head><body>"]
    for block in blocks:
        if block.kind == "heading":
            out.append(f"<h{block.level}>{e(block.text)}</h{block.level}>")
        elif block.kind == "paragraph":
            css = f' class="{block.css}"' if block.css else ""
            out.append(f"<p{css}>{e(block.text)}</p>")
        elif block.kind == "table":
            out.append("<table>")
            if any(block.headers):
                out.append("<tr>" + "".join(f"<th>{e(str(h))}</th>" for h in block.headers) + "</tr>")
            for i, row in enumerate(block.rows):
                css = f' class="{e(block.row_classes[i])}"' if i < len(block.row_classes) else ""
                out.append(f"<tr{css}>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>")
            out.append("</table>")
        elif block.kind == "list":
            out.append("<ul>" + "".join(f"<li>{e(str(item))}</li>" for item in block.items) + "</ul>")
        elif block.kind == "plot":
            assert block.plot is not None, "a plot block carries its plot"
            data = base64.b64encode(block.plot.png).decode("ascii")
            out.append(f'<img alt="{e(block.plot.title)}" src="data:image/png;base64,{data}">')
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_reports(document: dict[str, Any], base: str | Path, formats: Sequence[str]) -> list[Path]:
    """Write ``<base>.md`` (with ``<base>-<plot>.png`` next to it) and/or ``<base>.html``.
    ``base`` is a path without suffix, e.g. reports/iobench-20261125T101502Z."""
    base = Path(base)
    if not formats:
        return []
    plots = render_plots(document) + qualification_plots(document)
    blocks = report_blocks(document, plots)
    written = []
    if "md" in formats:
        for plot in plots:
            written.append(write_atomic(base.parent / f"{base.name}-{plot.name}.png", plot.png))
        text = to_markdown(blocks, lambda plot: f"{base.name}-{plot.name}.png")
        written.append(write_atomic(base.with_name(base.name + ".md"), text))
    if "html" in formats:
        page = to_html(blocks, f"pytest-iobench {document['run']['id']}")
        written.append(write_atomic(base.with_name(base.name + ".html"), page))
    return written
