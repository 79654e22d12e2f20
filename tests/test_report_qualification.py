"""The qualification page of the human report: the verdict in words, the search as a plot of AU
against accelerators with the floor (a PNG next to the Markdown, embedded in the HTML), the rules
and the per-run table; a run without a qualification has no such page."""

from __future__ import annotations

import base64
import re

from pytest_iobench.report.qualification import qualification_sections, search_points

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

SYNTHETIC = '''
def test_qualification(iobench_record):
    iobench_record.metric("train_samples_per_second", 100.1, "samples/s")
    iobench_record.details["qualification"] = {
        "workload": "unet3d_small", "kind": "training", "dry_run": True, "scale": 0.001, "hosts": 1,
        "host_memory_bytes": 4194304, "min_steps": 1, "accelerators_asked": "auto",
        "dataset": {"num_files_train": 56, "bytes": 29360128, "files_by_memory": 40, "files_by_steps": 28},
        "rules": [{"id": "dataset-memory", "checks": "5x memory", "passed": True, "label": "CLOSED", "reason": "ok"},
                  {"id": "au-floor", "checks": "floor", "passed": True, "label": "CLOSED", "reason": "met"}],
        "label": "CLOSED",
        "search": {"floor_percent": 90.0, "start": 1, "limit": 8, "best": 3, "limited": False,
                   "probes": [{"accelerators": 1, "au_percent": 99.0, "met": True},
                              {"accelerators": 2, "au_percent": 97.0, "met": True},
                              {"accelerators": 4, "au_percent": 70.0, "met": False},
                              {"accelerators": 3, "au_percent": 92.0, "met": True}]},
        "accelerators": 3,
        "runs": {"accelerators": 3, "warmups": 1, "au_percent": [92.0, 93.0, 94.0, 92.5, 93.5],
                 "samples_per_second": [100.0, 101.0, 99.0, 100.0, 100.5], "au_mean_percent": 93.0,
                 "samples_per_second_mean": 100.1},
        "verdict": "CLOSED: unet3d_small on local-posix: 3 accelerators meet the 90% AU floor"}

def test_plain(iobench_record):
    iobench_record.metric("read_MB_per_second", 10.0, "MB/s")
'''


def test_the_report_has_a_qualification_page_with_the_search_plot(pytester):
    pytester.makepyfile(test_synthetic=SYNTHETIC)
    result = pytester.runpytest("--iobench-libraries=posix", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    (path,) = sorted((pytester.path / "reports").glob("iobench-*.json"))
    stem = path.with_suffix("")
    markdown = stem.with_name(stem.name + ".md").read_text()
    html = stem.with_name(stem.name + ".html").read_text()
    images = re.findall(r"!\[[^]]*\]\(([^)]+\.png)\)", markdown)
    assert [re.sub(r"^iobench-\w+-", "", i) for i in images] == ["qualification-1.png"]
    assert (path.parent / images[0]).read_bytes().startswith(PNG_MAGIC)
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(embedded) == 1 and base64.b64decode(embedded[0]).startswith(PNG_MAGIC)
    for text in (markdown, html):
        assert "Qualification" in text and "test_qualification" in text
        assert "CLOSED: every rule of the closed division is kept" in text
        assert "Verdict: CLOSED: unet3d_small on local-posix: 3 accelerators meet the 90% AU floor" in text
        assert "measured run" in text and "samples/s" in text and "dataset-memory" in text
    # the search plot is on the qualification page, not among the general plots
    assert "## Plots" not in markdown
    assert markdown.index("## Qualification") < markdown.index("![Accelerator search") < markdown.index("## Results")


def test_sections_from_the_document():
    q = {"label": "INVALID", "verdict": "refused before running: overrides: ...", "hosts": 2,
         "host_memory_bytes": 2 * 1024 ** 3, "accelerators_asked": "4-8",
         "rules": [{"id": "overrides", "checks": "c", "passed": False, "label": "INVALID", "reason": "r"}]}
    test = {"id": "suites/test_qualification.py::test_qualification[x-local-posix]", "details": {"qualification": q}}
    (section,) = qualification_sections([test, {"id": "t::other", "details": {}}], [])
    assert section.title == "test_qualification[x-local-posix]" and section.plot is None
    assert section.words[0].startswith("INVALID: a rule is broken")
    assert "2 client host(s) of 2 GiB; accelerators asked: 4-8" in section.words[-1]
    assert [t.headers[0] for t in section.tables] == ["rule"] and section.tables[0].row_classes == ["failed"]
    assert search_points(q) == []
