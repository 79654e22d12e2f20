"""Plain-text views of a result document: the per-suite table of the terminal summary and the
comparison with a baseline. Also the number formatting and "key metrics" the other views share."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from .plots import PERCENTILE_METRIC, endpoint_balance, short_id
from .stats import ALPHA

KEY_METRICS = 3
LIST_LIMIT = 10
_BINARY_TWIN = re.compile(r"(Ki|Mi|Gi|Ti)B")


def fmt(value: float | None) -> str:
    """A number as a reader wants it: 3 significant digits, thousands separated, no exponent
    for everyday magnitudes."""
    if value is None:
        return "n/a"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 0.001:
        return f"{value:.3g}" if magnitude < 100 else f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{value:.2e}"


def fmt_percent(fraction: float | None, signed: bool = False) -> str:
    if fraction is None:
        return "n/a"
    return f"{fraction * 100:+.1f}%" if signed else f"{fraction * 100:.1f}%"


def with_unit(value: float, unit: str) -> str:
    if not unit:
        return fmt(value)
    return f"{fmt(value)}{unit}" if unit == "%" else f"{fmt(value)} {unit}"


def key_metrics(test: dict[str, Any], limit: int = KEY_METRICS) -> list[str]:
    """The metrics a one-line summary shows: those with a criterion first, then the others in the
    order they were recorded; not sizes and counts (direction none), not binary-unit twins of a
    decimal metric (MiB/s next to MB/s), and of percentiles only p50 and p99."""
    metrics = test["metrics"]
    chosen = [c["metric"] for c in test["criteria"] if c["metric"] in metrics]
    for name, metric in metrics.items():
        if name in chosen or metric["direction"] == "none":
            continue
        match = PERCENTILE_METRIC.match(name)
        if match and match["which"] not in ("p50", "p99"):
            continue
        twin = _BINARY_TWIN.sub(lambda m: m[1][0] + "B", name)
        if twin != name and twin in metrics:
            continue
        chosen.append(name)
    return list(dict.fromkeys(chosen))[:limit]


def metric_cell(test: dict[str, Any]) -> str:
    """The key metrics with units; a figure unfit for gating (too short, unsteady) says so."""
    parts, said = [], set()
    for name in key_metrics(test):
        metric = test["metrics"][name]
        text = f"{name} {with_unit(metric['value'], metric['unit'])}"
        if metric.get("unfit") and metric["unfit"] not in said:  # once per reason in a row
            said.add(metric["unfit"])
            why = next((word for word in ("too short", "unsteady") if word in metric["unfit"]), "see warnings")
            text += f" (unfit: {why})"
        parts.append(text)
    return ", ".join(parts) or "-"


def criteria_cell(test: dict[str, Any]) -> str:
    criteria = test["criteria"]
    waived = [w["label"] for w in (test.get("details") or {}).get("waived", []) if isinstance(w, dict) and "label" in w]
    if not criteria:
        return "; ".join(waived) or "-"
    met = sum(1 for c in criteria if c["passed"])
    return f"{met}/{len(criteria)} met" if met == len(criteria) else f"{met}/{len(criteria)} met: FAIL"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    """Left-aligned columns, two spaces apart."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = []
    for row in (headers, *rows):
        lines.append(indent + "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
    return lines


def outcome_counts(tests: Sequence[dict[str, Any]]) -> str:
    counts = Counter(t["outcome"] for t in tests)
    return ", ".join(f"{n} {outcome}" for outcome, n in counts.most_common())


def by_suite(tests: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    suites: dict[str, list[dict[str, Any]]] = {}
    for test in tests:
        suites.setdefault(test["id"].split("::", 1)[0], []).append(test)
    return suites


def shows_row(test: dict[str, Any]) -> bool:
    """Tests with results, criteria or warnings get a row; a failure too. The rest are counted."""
    return bool(test["metrics"] or test["criteria"] or test["warnings"]) or test["outcome"] in ("failed", "error")


def suite_tables(document: dict[str, Any]) -> list[str]:
    """The terminal summary: per suite, its outcome counts and a row per test with results."""
    lines = []
    for path, tests in by_suite(document["tests"]).items():
        kinds = sorted({t["kind"] for t in tests if t["kind"]})
        heading = f"{path}" + (f" ({', '.join(kinds)})" if kinds else "") + f": {outcome_counts(tests)}"
        lines.append(heading)
        rows = [[short_id(t["id"]), t["outcome"], metric_cell(t), criteria_cell(t), str(len(t["warnings"]))]
                for t in tests if shows_row(t)]
        if rows:
            lines.extend(table(["test", "outcome", "key metrics", "criteria", "warnings"], rows))
        lines.extend(f"  {short_id(t['id'])}: {text}" for t in tests if (text := retries_cell(t)))
        lines.extend(f"  {label}: {endpoints_cell(served)}" for label, served in endpoint_balance(tests))
    return lines


def ops_value(ops: dict[str, Any], name: str, seconds: Callable[[float], str] = "{:.2f}".format) -> str:
    """One storage_ops field as shown (``seconds`` formats backoff_s): "?" when the library
    cannot count it (never a 0 that reads as "none")."""
    if name in ops.get("unknown", ()):
        return "?"
    value = ops.get(name, 0)
    return seconds(value) if name == "backoff_s" else str(value)


def ops_worth_showing(ops: dict[str, Any]) -> bool:
    """Whether a storage_ops entry met anything: a retry, a fault, or (s3dlio) a failed operation."""
    return any(ops.get(k) for k in ("retries", "throttles", "resets", "timeouts", "failures"))
def endpoints_cell(served: dict[str, tuple[int, int]]) -> str:
    """The balance of a test run over several endpoints: each endpoint's share of the operations
    and of the bytes, with the counts (``endpoint_balance``)."""
    ops = sum(v[0] for v in served.values())
    moved = sum(v[1] for v in served.values())
    parts = [f"{url} {fmt_percent(n / ops if ops else None)} of {ops} ops, "
             f"{fmt_percent(b / moved if moved else None)} of {fmt(moved / 1e6)} MB"
             for url, (n, b) in served.items()]
    return "endpoints: " + "; ".join(parts)


def retries_cell(test: dict[str, Any]) -> str:
    """What retrying cost a test, per S3 library, when anything was retried or failed on the
    wire ("" otherwise): a run with faults must not look like a clean one. "?" marks what the
    library cannot count (s3dlio)."""
    shown = []
    for library, ops in sorted((test.get("storage_ops") or {}).items()):
        if not ops_worth_showing(ops):
            continue
        retries, throttles, resets, timeouts, backoff = (
            ops_value(ops, k) for k in ("retries", "throttles", "resets", "timeouts", "backoff_s"))
        failed = f", {ops['failures']} failed" if "failures" in ops else ""
        shown.append(f"{library} {retries} retries of {ops['requests']} requests{failed} "
                     f"({throttles} throttled, {resets} reset, {timeouts} timed out), {backoff} s in backoff")
    return "; ".join(shown)


def _listed(items: Sequence[str], limit: int = LIST_LIMIT) -> list[str]:
    shown = [f"    {item}" for item in items[:limit]]
    if len(items) > limit:
        shown.append(f"    ... and {len(items) - limit} more")
    return shown


def change_of(change: dict[str, Any]) -> float | None:
    """A change as a fraction of the baseline, negative when worse (documents without ``change``
    have ``worse_by``, its opposite)."""
    if "change" in change:
        value: float | None = change["change"]
        return value
    return None if change["worse_by"] is None else -change["worse_by"]


def spread_cell(change: dict[str, Any]) -> str:
    if change.get("spread") == "repeats":
        return f"p={change['p_value']:.3g} ({change['baseline_repeats']} v {change['current_repeats']})"
    return "none"


def change_rows(changes: Sequence[dict[str, Any]]) -> list[list[str]]:
    return [[short_id(c["id"]), c["metric"], with_unit(c["baseline"], c["unit"]), with_unit(c["current"], c["unit"]),
             "from 0" if change_of(c) is None else fmt_percent(change_of(c), signed=True),
             "off" if c["threshold"] is None else fmt_percent(c["threshold"]), spread_cell(c)] for c in changes]


CHANGE_HEADERS = ["test", "metric", "baseline", "current", "change (- worse)", "threshold", "spread"]


def severity(change: dict[str, Any]) -> float:
    """Sort key: the worst change first (a change from 0, of unknown size, counts as the worst)."""
    value = change_of(change)
    return -math.inf if value is None else value


def spread_note(comparison: dict[str, Any]) -> str:
    """Whether the gate could see the runs' spread, in one line."""
    changes = comparison["changes"]
    with_spread = sum(1 for c in changes if c.get("spread") == "repeats")
    if changes and not with_spread:
        return ("single values (no --iobench-repeat of 3 or more on both runs): no spread measured, "
                "changes gated on the threshold and the noise floors only")
    if with_spread < len(changes):
        return (f"{with_spread} of {len(changes)} metrics judged on both runs' repeats "
                f"(Mann-Whitney, p <= {ALPHA:g}); the others on the threshold and noise floors only")
    return f"every metric judged on both runs' repeats (Mann-Whitney, p <= {ALPHA:g})" if changes else ""


def comparison_lines(comparison: dict[str, Any]) -> list[str]:
    """The comparison with the baseline: regressions, improvements, new and missing tests, and
    what differs between the two runs' machines and settings."""
    base = comparison["baseline"]
    lines = [f"compared with {base['path']} (run {base['run_id']}, started {base['started']}); "
             f"threshold {fmt_percent(comparison['threshold'])}"
             + (f", overrides {', '.join(comparison['overrides'])}" if comparison["overrides"] else "")
             + ("" if comparison["gating"] else " (not gating: no --iobench-fail-regression)")]
    if comparison["machine_differences"]:
        lines.append("  the machines differ: " + "; ".join(
            f"{d['field']} {d['baseline']} -> {d['current']}" for d in comparison["machine_differences"]))
    if comparison["settings_differences"]:
        lines.append("  the settings differ: " + "; ".join(
            f"{d['field']} {d['baseline']} -> {d['current']}" for d in comparison["settings_differences"]))
    changes = comparison["changes"]
    note = spread_note(comparison)
    if note:
        lines.append(f"  {note}")
    for status, title in (("regression", "regressions beyond the threshold and the noise"),
                          ("improvement", "improvements")):
        selected = sorted((c for c in changes if c["status"] == status), key=severity, reverse=status == "improvement")
        if selected:
            lines.append(f"  {title} ({len(selected)}):")
            lines.extend(table(CHANGE_HEADERS, change_rows(selected), indent="    "))
    shy = comparison.get("not_reproduced", [])
    if shy:
        lines.append(f"  not reproduced ({len(shy)}): regressed in the first run, not when run again "
                     "(--iobench-confirm); the figures compared are the last run's")
        lines.extend(_listed([f"{short_id(n['id'])} {n['metric']}: first run "
                              f"{fmt_percent(n['first_change'], signed=True)}, {_plural(n['reruns'], 're-run')}"
                              for n in shy]))
    quiet = Counter(c["status"] for c in changes if c["status"] not in ("regression", "improvement"))
    if quiet:
        lines.append("  " + ", ".join(f"{n} metrics {status}" for status, n in sorted(quiet.items())))
    if not changes:
        lines.append("  no metric in common with the baseline")
    missing = comparison.get("missing_metrics", [])
    if missing:
        lines.append(f"  baseline metrics missing ({len(missing)}): {missing_note(comparison)}")
        lines.extend(_listed([f"{short_id(m['id'])} {m['metric']}: {m['reason']}" for m in missing]))
    for key, title in (("new_tests", "new tests (not in the baseline)"),
                       ("missing_tests", "missing tests (in the baseline, not run)")):
        if comparison[key]:
            lines.append(f"  {title} ({len(comparison[key])}):")
            lines.extend(_listed([short_id(i) for i in comparison[key]]))
    if comparison["outcome_changes"]:
        lines.append(f"  outcome changed ({len(comparison['outcome_changes'])}):")
        lines.extend(_listed([f"{short_id(o['id'])}: {o['baseline']} -> {o['current']}"
                              for o in comparison["outcome_changes"]]))
    if comparison["not_compared"]:
        lines.append(f"  not compared ({len(comparison['not_compared'])}):")
        lines.extend(_listed([f"{short_id(n['id'])} {n['metric']}: {n['reason']}" for n in comparison["not_compared"]]))
    return lines


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def missing_note(comparison: dict[str, Any]) -> str:
    """What the gate does with baseline metrics this run lacks."""
    if comparison.get("fail_missing") and comparison["gating"]:
        return "they fail the gate (fail-missing)"
    return ("not checked by the gate, and they do not fail it (a test not run or a metric not recorded; "
            "--iobench-fail-missing, or `python -m pytest_iobench report ... --fail-missing`, fails on them)")


def gate_line(comparison: dict[str, Any], failed: bool) -> str:
    """The gate's verdict in one line, the session's last: ``iobench gate: FAILED, 3 regressions
    (worst: test_x metric -23%)`` or ``iobench gate: passed (241 metrics, 0 regressions)``; then
    how many baseline metrics it could not check, and whether it saw the runs' spread."""
    regressions = sorted((c for c in comparison["changes"] if c["status"] == "regression"), key=severity)
    missing = comparison.get("missing_metrics", [])
    missing_part = ""
    if missing:
        verdict = "failing the gate" if comparison.get("fail_missing") else "not checked"
        names = ", ".join(f"{short_id(m['id'])} {m['metric']}" for m in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        missing_part = f"; {_plural(len(missing), 'baseline metric')} missing ({verdict}): {names}{more}"
    gated = [c for c in comparison["changes"] if c["status"] not in ("unfit", "not gated")]
    with_spread = sum(1 for c in gated if c.get("spread") == "repeats")
    without = len(gated) - with_spread
    spread = ("" if not without else "; no spread: threshold only" if not with_spread
              else f"; {_plural(without, 'metric')} without spread: threshold only")
    unfit = sum(1 for c in comparison["changes"] if c["status"] == "unfit")
    spread += f"; {unfit} unfit (too short or unsteady), not gated" if unfit else ""
    shy = len({n["id"] for n in comparison.get("not_reproduced", [])})
    spread += f"; {_plural(shy, 'test')} not reproduced when run again" if shy else ""
    if regressions:
        worst = regressions[0]
        size = "from 0" if change_of(worst) is None else fmt_percent(change_of(worst), signed=True)
        return (f"iobench gate: FAILED, {_plural(len(regressions), 'regression')} "
                f"(worst: {short_id(worst['id'])} {worst['metric']} {size}){missing_part}{spread}")
    counted = f"{_plural(len(comparison['changes']), 'metric')}, 0 regressions"
    if failed:
        return f"iobench gate: FAILED ({counted}{missing_part}){spread}"
    return f"iobench gate: passed ({counted}{missing_part}){spread}"
