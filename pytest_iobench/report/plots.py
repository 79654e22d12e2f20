"""Plots of a result document, rendered to PNG with matplotlib's Agg canvas (no pyplot, no display).

Each plot is drawn only when the run has its data: throughput against threads (tests with a
``threads`` parameter and a byte rate), AU per workload against its floor (``train_au_percent``),
latency percentiles (metrics named ``<name>_p<N>_<unit>`` in a time unit), each endpoint's share
of the operations and bytes of a test run over several endpoints (``details.endpoints``), and,
for a comparison, the change of every compared metric.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # matplotlib is imported when a plot is drawn, not with the package
    from matplotlib.axes import Axes
    from matplotlib.axis import Axis
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

from .record import TIME_UNITS

#: byte rates, in MB/s (10^6 bytes) per unit
BYTE_RATES = {"B/s": 1e-6, "kB/s": 1e-3, "KB/s": 1e-3, "MB/s": 1.0, "GB/s": 1e3,
              "KiB/s": 1024 / 1e6, "MiB/s": 1024**2 / 1e6, "GiB/s": 1024**3 / 1e6}
PERCENTILE_METRIC = re.compile(r"^(?P<head>.+?)_(?P<which>p\d+(?:\.\d+)?|max)(?P<tail>_[A-Za-z]+)?$")
#: more rows than this make a plot unreadable; the largest or first ones are drawn, and the caption says so
MAX_ROWS = 40

GREEN, RED, GREY, BLUE = "#2e7d32", "#c62828", "#9e9e9e", "#1565c0"
#: the comparison plot's width in pixels (16 inches at 100 dpi): long labels stay readable
PNG_WIDTH = 1600


@dataclass
class Plot:
    name: str  # file-name part: throughput-test_read, au, latency, comparison
    title: str
    caption: str
    png: bytes


def short_id(test_id: str) -> str:
    """``suites/test_read.py::test_read[npz-local-posix-t4]`` -> ``test_read[npz-local-posix-t4]``."""
    return test_id.split("::", 1)[-1]


def function_of(test_id: str) -> str:
    return short_id(test_id).split("[", 1)[0]


def _has_results(test: dict[str, Any]) -> bool:
    return bool(test["metrics"])


# -- the data of each plot (no matplotlib here, so it can be tested and reused) ----------------
Points = list[tuple[int, float, float, float]]  # (threads, MB/s, min, max), by threads
#: parameters that tell the lines of a throughput panel apart; the others name the panel
LINE_PARAMS = ("storage", "library")


def throughput_series(tests: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, Points]]]:
    """{test function and metric: {panel: {line: points}}} for tests with a ``threads``
    parameter and a byte-rate metric (the first one recorded, higher is better).

    A panel is the test's case (its text parameters other than storage and library, e.g. the
    format ``npz``; numbers such as sizes describe the case, they do not name it); a line is one
    storage and library, so each panel compares libraries and storages at every thread count."""
    groups: dict[str, dict[str, dict[str, Points]]] = {}
    for test in tests:
        params = test["params"]
        threads = params.get("threads")
        if not isinstance(threads, int) or isinstance(threads, bool) or not _has_results(test):
            continue
        rate = next(((name, m) for name, m in test["metrics"].items()
                     if m["unit"] in BYTE_RATES and m["direction"] == "higher"), None)
        if rate is None:
            continue
        name, metric = rate
        scale = BYTE_RATES[metric["unit"]]
        group = f"{function_of(test['id'])}: {name}"
        case = dict.fromkeys(str(v) for k, v in params.items()  # fmt and format: once
                             if isinstance(v, str) and k not in LINE_PARAMS)
        line = " / ".join(str(params[k]) for k in LINE_PARAMS if k in params)
        groups.setdefault(group, {}).setdefault(" / ".join(case) or "all", {}).setdefault(line or "all", []).append(
            (threads, metric["value"] * scale, metric["min"] * scale, metric["max"] * scale))
    for panels in groups.values():
        for lines in panels.values():
            for points in lines.values():
                points.sort()
    return groups


def au_bars(tests: Sequence[dict[str, Any]]) -> list[tuple[str, float, float | None, bool | None]]:
    """[(label, AU %, floor % or None, met or None)] for tests that recorded ``train_au_percent``."""
    bars = []
    for test in tests:
        metric = test["metrics"].get("train_au_percent")
        if metric is None:
            continue
        criterion = next((c for c in test["criteria"] if c["metric"] == "train_au_percent"), None)
        bars.append((short_id(test["id"]), metric["value"],
                     criterion["threshold"] if criterion else None,
                     criterion["passed"] if criterion else None))
    return sorted(bars, key=lambda bar: bar[0])  # a workload's storages and libraries together


def latency_rows(tests: Sequence[dict[str, Any]]) -> list[tuple[str, dict[str, float]]]:
    """[(label, {"p50": ms, "p90": ms, ..., "max": ms})] for each family of percentile metrics in
    a time unit (``latency_p50_us``, ``batch_read_p99_seconds``)."""
    rows = []
    for test in tests:
        families: dict[str, dict[str, float]] = {}
        for name, metric in test["metrics"].items():
            match = PERCENTILE_METRIC.match(name)
            unit = "s" if metric["unit"] in ("s", "seconds") else metric["unit"]
            if match is None or unit not in TIME_UNITS:
                continue
            families.setdefault(match["head"], {})[match["which"]] = metric["value"] * TIME_UNITS[unit] * 1e3
        for family, values in families.items():
            if any(k.startswith("p") for k in values):  # a max alone is no percentile
                label = short_id(test["id"]) + ("" if family == "latency" else f" {family}")
                rows.append((label, values))
    return sorted(rows, key=lambda row: row[0])


#: an endpoint's counts: (operations, bytes read + written)
Share = tuple[int, int]


def endpoint_balance(tests: Sequence[dict[str, Any]]) -> list[tuple[str, dict[str, Share]]]:
    """[(label, {endpoint URL: (operations, bytes)})] for tests run over several endpoints (their
    ``details.endpoints``: what each endpoint served, storage/spread.py), by label."""
    rows = []
    for test in tests:
        served = (test.get("details") or {}).get("endpoints")
        if not isinstance(served, dict) or not served:
            continue
        rows.append((short_id(test["id"]), {
            url: (int(c.get("operations", 0)), int(c.get("bytes_read", 0)) + int(c.get("bytes_written", 0)))
            for url, c in sorted(served.items())}))
    return sorted(rows, key=lambda row: row[0])


def change_bars(comparison: dict[str, Any]) -> list[tuple[str, float, str]]:
    """[(label, change % (negative: worse), status)] of the compared metrics, worst first: the
    sign of the terminal and the gate line (``Change.change``; older documents' ``-worse_by``)."""
    bars = []
    for c in comparison.get("changes", []):
        if c["worse_by"] is None:
            continue
        change = c["change"] if c.get("change") is not None else -c["worse_by"]
        bars.append((f"{short_id(c['id'])} {c['metric']}", change * 100.0, c["status"]))
    bars.sort(key=lambda bar: bar[1])
    return bars


def shown_changes(bars: list[tuple[str, float, str]], rows: int = MAX_ROWS) -> list[tuple[str, float, str]]:
    """The bars the plot has room for: every regression and improvement first, then the largest
    other changes; drawn worst first."""
    counted = ("regression", "improvement")
    chosen = sorted(bars, key=lambda bar: (bar[2] not in counted, -abs(bar[1])))[:rows]
    return sorted(chosen, key=lambda bar: bar[1])


def change_axis_limit(values: Sequence[float], threshold_percent: float) -> float:
    """Where the change plot's axis is clipped (%, both sides): wide enough for the threshold and
    most bars (the 80th percentile of their sizes), never beyond 100%, so that one outlier
    (-117,667%) does not flatten every other bar; the bars beyond it are drawn to the edge
    with their value written."""
    sizes = sorted(abs(v) for v in values)
    typical = sizes[int(0.8 * (len(sizes) - 1))] if sizes else 0.0
    return max(2.0 * threshold_percent, min(100.0, typical * 1.25), 5.0)


# -- rendering ---------------------------------------------------------------------------------
def _figure(rows: int, width: float = 9.0) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, min(2.0 + 0.32 * rows, 18.0)), dpi=100, layout="constrained")
    return fig, fig.add_subplot()


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _clipped(count: int, shown: int, what: str) -> str:
    return f" Showing {shown} of {count} {what}." if shown < count else ""


def plot_throughput(group: str, panels: dict[str, dict[str, Points]]) -> bytes:
    """One panel per case (small multiples, each with its own MB/s scale), one line per storage
    and library in the same colour in every panel, one legend for all."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    names = sorted(panels)
    columns = min(3, len(names))
    rows = -(-len(names) // columns)
    line_labels = sorted({label for lines in panels.values() for label in lines})
    colors = {label: f"C{i % 10}" for i, label in enumerate(line_labels)}
    fig = Figure(figsize=(4.0 * columns, 1.2 + 2.6 * rows + 0.25 * -(-len(line_labels) // 4)),
                 dpi=100, layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    threads = sorted({p[0] for lines in panels.values() for points in lines.values() for p in points})
    for ax, name in zip(axes.flat, names):
        for label, points in sorted(panels[name].items()):
            ys = [p[1] for p in points]
            errors = [[p[1] - p[2] for p in points], [p[3] - p[1] for p in points]]
            ax.errorbar([p[0] for p in points], ys, yerr=errors, marker="o", capsize=3,
                        color=colors[label], label=label)
        ax.set_xscale("log", base=2)
        ax.set_xticks(threads, [str(t) for t in threads])
        ax.minorticks_off()
        ax.set_ylim(bottom=0)
        ax.set_title(name, fontsize="medium")
        ax.grid(True, alpha=0.3)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("threads")
    for ax in axes[:, 0]:
        ax.set_ylabel("MB/s (10^6 bytes/s)")
    fig.suptitle(group)
    handles = [Line2D([], [], color=colors[label], marker="o", label=label) for label in line_labels]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(4, len(line_labels)), fontsize="small")
    return _png(fig)


def plot_au(bars: list[tuple[str, float, float | None, bool | None]]) -> bytes:
    fig, ax = _figure(rows=len(bars))
    labels = [b[0] for b in bars]
    colors = [GREY if b[3] is None else (GREEN if b[3] else RED) for b in bars]
    positions = list(range(len(bars)))
    ax.barh(positions, [b[1] for b in bars], color=colors, height=0.6)
    for i, bar in enumerate(bars):
        if bar[2] is not None:
            ax.vlines(bar[2], i - 0.42, i + 0.42, color="black", linewidth=2.5, zorder=3)
        ax.text(bar[1], i, f" {bar[1]:.1f}%" + (f" (floor {bar[2]:g}%)" if bar[2] is not None else " (no floor)"),
                va="center", fontsize="small")
    ax.set_yticks(positions, labels, fontsize="small")
    ax.invert_yaxis()
    ax.set_ylim(len(bars) - 0.5, -0.5)
    ax.set_xlim(0, 130)
    ax.set_xticks(range(0, 101, 10))
    ax.set_xlabel("accelerator utilization, %  (black line: the floor)")
    ax.set_title("AU per workload against its floor")
    ax.grid(True, axis="x", alpha=0.3)
    return _png(fig)


def plot_latency(rows: list[tuple[str, dict[str, float]]]) -> bytes:
    fig, ax = _figure(rows=len(rows))
    names = sorted({k for _, values in rows for k in values},
                   key=lambda k: float("inf") if k == "max" else float(k[1:]))
    markers = "osD^v<>"
    for n, which in enumerate(names):
        points = [(values[which], i) for i, (_, values) in enumerate(rows) if which in values]
        ax.scatter([p[0] for p in points], [p[1] for p in points], marker=markers[n % len(markers)],
                   label=which, zorder=3)
    for i, (_, values) in enumerate(rows):
        ax.plot([min(values.values()), max(values.values())], [i, i], color=GREY, linewidth=1, zorder=2)
    ax.set_yticks(range(len(rows)), [label for label, _ in rows], fontsize="small")
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xscale("log")
    _plain_log_labels(ax.xaxis, [v for _, values in rows for v in values.values()])
    ax.set_xlabel("milliseconds (log scale)")
    ax.set_title("Latency percentiles")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    return _png(fig)


def plot_endpoint_balance(rows: list[tuple[str, dict[str, Share]]]) -> bytes:
    """Two panels, operations and bytes: per test a bar split into each endpoint's share (one
    colour per endpoint in both), so an uneven spread shows as unequal segments."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    urls = sorted({url for _, served in rows for url in served})
    colors = {url: f"C{i % 10}" for i, url in enumerate(urls)}
    fig = Figure(figsize=(12.0, min(2.4 + 0.32 * len(rows), 18.0)), dpi=100, layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    positions = list(range(len(rows)))
    for ax, which, title in ((axes[0], 0, "operations"), (axes[1], 1, "bytes (read + written)")):
        left = [0.0] * len(rows)
        for url in urls:
            shares = []
            for _, served in rows:
                total = sum(v[which] for v in served.values())
                shares.append(100.0 * served.get(url, (0, 0))[which] / total if total else 0.0)
            ax.barh(positions, shares, left=left, color=colors[url], height=0.6)
            for i, share in enumerate(shares):
                if share >= 8:
                    ax.text(left[i] + share / 2, i, f"{share:.0f}%", ha="center", va="center", fontsize="small")
            left = [a + b for a, b in zip(left, shares)]
        ax.set_xlim(0, 100)
        ax.set_xlabel(f"share of the test's {title}, %")
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].set_yticks(positions, [label for label, _ in rows], fontsize="small")
    axes[0].set_ylim(len(rows) - 0.5, -0.5)
    fig.suptitle("Balance over the endpoints")
    fig.legend(handles=[Patch(color=colors[u], label=u) for u in urls], loc="outside lower center",
               ncols=min(4, len(urls)), fontsize="small")
    return _png(fig)


def _plain_log_labels(axis: Axis, values: list[float]) -> None:
    """Log-axis labels as plain numbers (0.02, 30) instead of 2x10^-2; minor ticks labelled too
    when the data spans less than a decade and a half, where majors alone say too little."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    plain = FuncFormatter(lambda v, _: f"{v:g}")
    axis.set_major_formatter(plain)
    low, high = min(values), max(values)
    axis.set_minor_formatter(plain if low > 0 and high / low < 30 else NullFormatter())


def plot_changes(bars: list[tuple[str, float, str]], threshold: float) -> bytes:
    """Horizontal bars, worst first, negative = worse; 16 inches at 100 dpi (1600 px) so that
    long labels stay readable; the axis is clipped (change_axis_limit): a clipped bar is hatched
    and carries its real value, written inside its end."""
    from matplotlib.figure import Figure

    limit = change_axis_limit([b[1] for b in bars], threshold * 100)
    fig = Figure(figsize=(PNG_WIDTH / 100, min(2.2 + 0.34 * len(bars), 24.0)), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    colors = {"regression": RED, "improvement": GREEN}
    positions = list(range(len(bars)))
    shown = [max(-limit, min(limit, b[1])) for b in bars]
    clipped = [abs(b[1]) > limit for b in bars]
    ax.barh(positions, shown, color=[colors.get(b[2], GREY) for b in bars], height=0.6,
            hatch=["//" if c else "" for c in clipped], edgecolor="white")
    for i, (bar, value, cut) in enumerate(zip(bars, shown, clipped)):
        text = f"{bar[1]:+,.1f}%" if bar[1] else "0%"
        if cut:
            text += " (clipped)"
        # inside the clipped bar's end, else just beyond the bar
        inside = cut
        ha = ("right" if value > 0 else "left") if inside else ("left" if value >= 0 else "right")
        pad = -0.01 * limit if inside == (value > 0) else 0.01 * limit
        box = {"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.9} if cut else None
        ax.text(value + (pad if value >= 0 else -pad), i, text, va="center", ha=ha, fontsize=10,
                fontweight="bold" if cut else "normal", bbox=box)
    ax.axvline(0, color="black", linewidth=0.8)
    for edge in (-threshold * 100, threshold * 100):
        ax.axvline(edge, color="black", linestyle="--", linewidth=0.8)
    ax.set_yticks(positions, [b[0] for b in bars], fontsize=10)
    ax.set_ylim(len(bars) - 0.5, -0.5)
    ax.set_xlim(-limit * 1.25, limit * 1.25)
    ax.tick_params(axis="x", labelsize=10)
    ax.xaxis.set_major_formatter(_percent_formatter())
    ax.set_xlabel(f"change against the baseline, % (negative: worse); dashed: the {threshold * 100:g}% "
                  f"threshold; axis clipped at +-{limit:g}%", fontsize=11)
    ax.set_title("Change against the baseline, worst first", fontsize=13)
    ax.grid(True, axis="x", alpha=0.3)
    return _png(fig)


def _percent_formatter() -> FuncFormatter:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{v:+g}%" if v else "0%")


def render_plots(document: dict[str, Any]) -> list[Plot]:
    """Every plot the document has data for (none when it has no such data)."""
    tests = document["tests"]
    plots = []
    for n, (group, lines) in enumerate(sorted(throughput_series(tests).items()), start=1):
        function = group.split(":", 1)[0]
        plots.append(Plot(f"throughput-{n}-{function}", f"Throughput against threads: {group}",
                          "Median of the repeats; bars span min to max. One panel per case (e.g. format), "
                          "one line per storage and library.", plot_throughput(group, lines)))
    bars = au_bars(tests)
    if bars:
        plots.append(Plot("au", "AU per workload against its floor",
                          "Mean accelerator utilization over epochs; the black line is the workload's "
                          "floor (metric.au): green met, red not met, grey no floor applied."
                          + _clipped(len(bars), min(len(bars), MAX_ROWS), "tests"),
                          plot_au(bars[:MAX_ROWS])))
    rows = latency_rows(tests)
    if rows:
        plots.append(Plot("latency", "Latency percentiles",
                          "Per test: p50, p90, p99 and max of its timed calls (batch reads for training), "
                          "in milliseconds."
                          + _clipped(len(rows), min(len(rows), MAX_ROWS), "rows"), plot_latency(rows[:MAX_ROWS])))
    balance = endpoint_balance(tests)
    if balance:
        plots.append(Plot("endpoints", "Balance over the endpoints",
                          "Per test run over several endpoints: each endpoint's share of its operations and "
                          "of its bytes (read and written); requests go to the endpoint a hash of the object's "
                          "name picks (docs/s3.md)." + _clipped(len(balance), min(len(balance), MAX_ROWS), "tests"),
                          plot_endpoint_balance(balance[:MAX_ROWS])))
    comparison = document.get("comparison")
    if comparison:
        changes = change_bars(comparison)
        if changes:
            shown = shown_changes(changes)
            limit = change_axis_limit([b[1] for b in shown], comparison["threshold"] * 100)
            outliers = sum(1 for b in shown if abs(b[1]) > limit)
            plots.append(Plot("comparison", "Change against the baseline",
                              "Each compared metric's change, worst first (negative: worse, as in the terminal "
                              "and the gate line); red: regression, green: improvement, grey: within the "
                              "threshold, the noise or the spread, or not gated."
                              + (f" The axis is clipped at +-{limit:g}%: {outliers} bar(s) beyond it are hatched "
                                 "and carry their value." if outliers else "")
                              + _clipped(len(changes), len(shown), "metrics (regressions and improvements "
                                         "first, then the largest changes)"),
                              plot_changes(shown, comparison["threshold"])))
    return plots
