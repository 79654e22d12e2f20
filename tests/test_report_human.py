"""The human report: Markdown with PNG plots next to it, HTML with the plots embedded, only the plots
a run has data for; ``python -m pytest_iobench report`` renders it (or a comparison) from stored
documents without running anything."""

from __future__ import annotations

import base64
import copy
import json
import re
import subprocess
import sys

from pytest_iobench.__main__ import main
from pytest_iobench.report.plots import au_bars, latency_rows, render_plots, throughput_series
from pytest_iobench.report.schema import load_document

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

SYNTHETIC = """
import pytest

@pytest.mark.parametrize("fmt", ["npz", "hdf5"])
def test_read(fmt, threads, storage, iobench_record):
    iobench_record.kind = "read"
    iobench_record.metric("read_MiB_per_second", 100.0 * threads, "MiB/s", "higher",
                          repeats=[90.0 * threads, 100.0 * threads, 120.0 * threads])

@pytest.mark.parametrize("workload", ["unet3d_small", "resnet50_small"])
def test_train(workload, iobench_record):
    iobench_record.kind = "train"
    iobench_record.metric("train_au_percent", 95.0 if workload == "unet3d_small" else 60.0, "%")
    iobench_record.criterion("train_au_percent", ">=", 90)
    iobench_record.latency("batch_read", [0.001 * i for i in range(1, 21)], "ms")
"""


def run(pytester, *args):
    pytester.makepyfile(test_synthetic=SYNTHETIC)
    result = pytester.runpytest("--iobench-threads=1,4", "--iobench-libraries=posix", *args)
    stamped = sorted((pytester.path / "reports").glob("iobench-*.json"))
    return result, stamped[-1]


def test_markdown_and_html_reports_with_plots(pytester):
    result, path = run(pytester)
    result.assert_outcomes(passed=5, failed=1)
    stem = path.with_suffix("")
    markdown = stem.with_name(stem.name + ".md").read_text()
    html = stem.with_name(stem.name + ".html").read_text()
    images = re.findall(r"!\[[^]]*\]\(([^)]+\.png)\)", markdown)
    assert [re.sub(r"^iobench-\w+-", "", i) for i in images] == ["throughput-1-test_read.png", "au.png", "latency.png"]
    for image in images:
        assert (path.parent / image).read_bytes().startswith(PNG_MAGIC), f"{image} is not a PNG"
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(embedded) == 3 and all(base64.b64decode(e).startswith(PNG_MAGIC) for e in embedded)
    for text in (markdown, html):
        assert "test_train[resnet50_small]" in text and "NOT met" in text
        assert "read_MiB_per_second" in text and "400 MiB/s" in text
    result.stdout.fnmatch_lines(["iobench: results in *.json, *latest.json, *.md, *.html"])


def test_plot_data_is_what_the_run_measured(pytester):
    _, path = run(pytester, "--iobench-report=none")
    tests = load_document(path)["tests"]
    series = throughput_series(tests)
    assert list(series) == ["test_read: read_MiB_per_second"]
    panels = series["test_read: read_MiB_per_second"]
    assert sorted(panels) == ["hdf5", "npz"]  # a panel per format, a line per storage and library
    assert sorted(panels["npz"]) == ["local / posix"]
    threads, value, low, high = panels["npz"]["local / posix"][1]
    MiB = 1024**2 / 1e6
    assert (threads, value, low, high) == (4, 400 * MiB, 360 * MiB, 480 * MiB)
    assert au_bars(tests) == [("test_train[resnet50_small]", 60.0, 90.0, False),
                              ("test_train[unet3d_small]", 95.0, 90.0, True)]
    rows = latency_rows(tests)
    assert [label for label, _ in rows] == ["test_train[resnet50_small] batch_read",
                                            "test_train[unet3d_small] batch_read"]
    assert set(rows[0][1]) == {"p50", "p90", "p99", "max"} and rows[0][1]["max"] == 20.0


def test_no_empty_plots_when_a_run_has_no_such_data(pytester):
    pytester.makepyfile(
        test_plain="def test_a(iobench_record):\n    iobench_record.metric('files', 3, 'files', 'none')\n")
    pytester.runpytest().assert_outcomes(passed=1)
    reports = pytester.path / "reports"
    assert not list(reports.glob("*.png"))
    document = load_document(reports / "latest.json")
    assert render_plots(document) == []
    html = next(reports.glob("iobench-*.html")).read_text()
    assert "<img" not in html and "Plots" not in html


def test_report_command_renders_a_stored_document(pytester, tmp_path):
    _, path = run(pytester, "--iobench-report=none")
    assert not list(path.parent.glob("*.md"))
    out = tmp_path / "rendered"
    assert main(["report", str(path), "--out", str(out), "--format", "html"]) == 0
    html = (out / (path.stem + ".html")).read_text()
    assert html.count("data:image/png;base64,") == 3
    assert not list(out.glob("*.md"))


def test_report_command_compares_and_gates(pytester, tmp_path, capsys):
    _, path = run(pytester, "--iobench-report=none")
    baseline = load_document(path)
    for test in baseline["tests"]:
        if test["id"].endswith("test_read[npz-local-posix-t4]"):
            # twice as fast in the baseline: beyond the repeats' own spread (90-120%)
            metric = test["metrics"]["read_MiB_per_second"]
            metric["value"] *= 2
            metric["repeats"] = [v * 2 for v in metric["repeats"]]
            metric["min"], metric["max"] = min(metric["repeats"]), max(metric["repeats"])
    baseline_path = tmp_path / "baseline.json"
    baseline_path.write_text(json.dumps(baseline))
    out = tmp_path / "cmp"
    status = main(["report", str(path), str(baseline_path), "--out", str(out), "--fail-regression", "10%"])
    captured = capsys.readouterr()
    assert status == 1
    assert "test_read[npz-local-posix-t4] read_MiB_per_second" in captured.err
    markdown = (out / f"{path.stem}-vs-baseline.md").read_text()
    assert "## Comparison with the baseline" in markdown and "### Regressions (1)" in markdown
    assert (out / f"{path.stem}-vs-baseline-comparison.png").read_bytes().startswith(PNG_MAGIC)
    assert main(["report", str(path), str(path), "--out", str(out), "--fail-regression", "10%",
                 "--format", "none"]) == 0
    # a baseline test this run lacks: shown, and failing only with --fail-missing
    extra = copy.deepcopy(next(t for t in baseline["tests"] if t["metrics"]))
    extra["id"] = extra["id"].replace("test_read", "test_read_gone")
    baseline["tests"].append(extra)
    baseline_path.write_text(json.dumps(baseline))
    args = ["report", str(path), str(baseline_path), "--out", str(out), "--format", "md", "--fail-regression", "50%"]
    assert main(args) == 0
    assert "baseline metrics missing" in capsys.readouterr().out
    assert "### Baseline metrics missing" in (out / f"{path.stem}-vs-baseline.md").read_text()
    assert main([*args, "--fail-missing"]) == 1
    assert "1 baseline metric missing (failing the gate)" in capsys.readouterr().err


def test_report_command_bad_input_is_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "something-else"}')
    done = subprocess.run([sys.executable, "-m", "pytest_iobench", "report", str(bad)], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"error: {bad}: not a pytest-iobench result document (no \"schema\": \"iobench-result\" at the top level)")
    done = subprocess.run([sys.executable, "-m", "pytest_iobench", "report", str(bad), "--fail-regression", "ten"],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "argument --fail-regression: 'ten' is not valid: give a percentage such as 10%" in done.stderr


def test_comparison_stored_in_the_document_is_rendered_again(pytester, tmp_path):
    _, path = run(pytester, "--iobench-report=none")
    document = load_document(path)
    baseline = copy.deepcopy(document)
    (tmp_path / "b.json").write_text(json.dumps(baseline))
    result = pytester.runpytest("--iobench-threads=1,4", "--iobench-libraries=posix",
                                f"--iobench-compare={tmp_path / 'b.json'}",
                                "--iobench-json=compared.json", "--iobench-report=none")
    assert result.ret == 1  # test_train[resnet50_small] misses its floor; the comparison itself is clean
    assert main(["report", str(pytester.path / "compared.json"), "--out", str(tmp_path / "again"),
                 "--format", "md"]) == 0
    assert "## Comparison with the baseline" in (tmp_path / "again" / "compared.md").read_text()
