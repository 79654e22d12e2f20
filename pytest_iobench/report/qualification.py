"""The qualification page of the human report: per qualification test (``details.qualification``,
docs/results.md) the verdict in words, the search as a plot of AU against accelerators with the
floor, the rules with their reasons and the per-run (or per-checkpoint) table.

Plain data here (``qualification_sections``) and the plot (``qualification_plots``, matplotlib's
Agg canvas as plots.py draws); human.py turns the sections into its blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .plots import BLUE, GREEN, GREY, RED, Plot, _figure, _png, short_id
from .text import fmt

#: the name of every qualification plot starts with this
PLOT_PREFIX = "qualification-"

#: what each label means, for the verdict in words
LABEL_WORDS = {
    "CLOSED": "CLOSED: every rule of the closed division is kept; the result may be compared with other "
              "closed results",
    "OPEN": "OPEN: a rule of the closed division is relaxed in a way the open division allows (the reasons "
            "below); the result stands, but is not comparable with closed ones",
    "INVALID": "INVALID: a rule is broken (the reasons below); this is not a qualification result",
}


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    row_classes: list[str] = field(default_factory=list)


@dataclass
class Section:
    """One qualification test: its title, the verdict in words, its plot (if any), its tables."""

    title: str
    words: list[str]
    plot: Plot | None = None
    tables: list[Table] = field(default_factory=list)


def qualified(tests: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(test, its qualification section) for every test that has one."""
    return [(t, q) for t in tests for q in [(t.get("details") or {}).get("qualification")] if isinstance(q, dict)]


def search_points(q: dict[str, Any]) -> list[tuple[int, float, bool]]:
    """The search's probes as (accelerators, AU %, met), by accelerator count."""
    probes = (q.get("search") or {}).get("probes") or []
    return sorted((int(p["accelerators"]), float(p["au_percent"]), bool(p["met"])) for p in probes)


def plot_search(title: str, q: dict[str, Any]) -> bytes:
    """AU of each probe against its accelerator count (in probe order, numbered), the 5
    measured runs at the count chosen, and the floor as a dashed line."""
    fig, ax = _figure(rows=10)
    search = q.get("search") or {}
    probes = search.get("probes") or []
    floor = search.get("floor_percent")
    points = search_points(q)
    if points:
        ax.plot([p[0] for p in points], [p[1] for p in points], color=GREY, linewidth=1, zorder=2)
        ax.scatter([p[0] for p in points], [p[1] for p in points], c=[GREEN if p[2] else RED for p in points],
                   s=50, zorder=3, label="probe (green: met the floor, red: not)")
    for n, p in enumerate(probes, start=1):
        ax.annotate(str(n), (p["accelerators"], p["au_percent"]), textcoords="offset points", xytext=(6, 6),
                    fontsize="small")
    runs = q.get("runs") or {}
    if runs.get("au_percent"):
        ax.scatter([runs["accelerators"] * 1.04] * len(runs["au_percent"]), runs["au_percent"], marker="x", color=BLUE,
                   zorder=4, label=f"the {len(runs['au_percent'])} measured runs")
    if floor is not None:
        ax.axhline(floor, color="black", linestyle="--", linewidth=1, label=f"the floor, {floor:g}%")
    counts = sorted({p[0] for p in points} | ({runs["accelerators"]} if runs.get("accelerators") else set()))
    if counts:
        ax.set_xscale("log", base=2)
        ax.set_xticks(counts, [str(c) for c in counts])
        ax.minorticks_off()
        ax.set_xlim(counts[0] / 1.5, counts[-1] * 1.5)
    ax.set_ylim(0, 105)
    ax.set_xlabel("simulated accelerators (log scale); numbers: the order probed")
    ax.set_ylabel("accelerator utilization, %")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="lower left")
    return _png(fig)


def qualification_plots(document: dict[str, Any]) -> list[Plot]:
    """One search plot per qualification test that searched."""
    plots = []
    for n, (test, q) in enumerate(qualified(document["tests"]), start=1):
        if search_points(q):
            title = f"Accelerator search: {short_id(test['id'])}"
            plots.append(Plot(f"{PLOT_PREFIX}{n}", title,
                              "AU of each probe of the search (doubling, then bisection) against its accelerator "
                              "count, the measured runs at the count found, and the workload's AU floor.",
                              plot_search(title, q)))
    return plots


def _rules_table(q: dict[str, Any]) -> Table:
    rules = q.get("rules") or []
    return Table(["rule", "checks", "label", "reason"],
                 [[r["id"], r["checks"], r["label"], r["reason"]] for r in rules],
                 ["passed" if r["passed"] else "failed" for r in rules])


def _runs_table(q: dict[str, Any]) -> Table | None:
    runs = q.get("runs")
    if not runs or not runs.get("au_percent"):
        return None
    rows = [[str(i), str(runs["accelerators"]), fmt(au), fmt(rate)]
            for i, (au, rate) in enumerate(zip(runs["au_percent"], runs["samples_per_second"]), start=1)]
    rows.append(["mean", str(runs["accelerators"]), fmt(runs["au_mean_percent"]), fmt(runs["samples_per_second_mean"])])
    return Table(["measured run", "accelerators", "AU %", "samples/s"], rows)


def _checkpoint_table(q: dict[str, Any]) -> Table | None:
    ck = q.get("checkpoint")
    if not ck:
        return None
    writes, reads = ck["write_seconds"], ck["read_seconds"]
    size = ck["size_bytes"]
    rows = [[str(i + 1), fmt(w), fmt(size / w / 1e9) if w else "-",
             fmt(reads[i]) if i < len(reads) else "-",
             fmt(size / reads[i] / 1e9) if i < len(reads) and reads[i] else "-"]
            for i, w in enumerate(writes)]
    return Table(["checkpoint", "write s (longest rank)", "write GB/s", "read s (longest rank)", "read GB/s"], rows)


def qualification_sections(tests: Sequence[dict[str, Any]], plots: Sequence[Plot]) -> list[Section]:
    """A section per qualification test, in the order of the tests."""
    sections = []
    by_title = {p.title: p for p in plots if p.name.startswith(PLOT_PREFIX)}
    for test, q in qualified(tests):
        label = q.get("label", "")
        words = [LABEL_WORDS.get(label, label)]
        if q.get("verdict"):
            words.append(f"Verdict: {q['verdict']}")
        if q.get("dry_run"):
            words.append(f"A dry run (scale {q.get('scale')}): it proves the flow on a small dataset and qualifies "
                         "nothing; its verdict is recorded, not applied.")
        memory = q.get("host_memory_bytes", 0)
        each = f"{fmt(memory / 1024 ** 3)} GiB" if memory >= 1024 ** 3 else f"{fmt(memory / 1024 ** 2)} MiB"
        clients = f"{q.get('hosts', 1)} client host(s) of {each}"
        words.append(f"Checked against {clients}; accelerators asked: {q.get('accelerators_asked', 'auto')}.")
        tables = [_rules_table(q)]
        tables += [t for t in (_runs_table(q), _checkpoint_table(q)) if t is not None]
        title = short_id(test["id"])
        sections.append(Section(title, words, by_title.get(f"Accelerator search: {title}"), tables))
    return sections
