"""suites/test_qualification.py as a user runs it: a dry run end to end on local files, and a
run that breaks a rule refused before anything runs, with the reason in the document."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_iobench.report.schema import load_document, problems

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "suites" / "test_qualification.py"


@pytest.fixture
def qualification_suite(pytester):
    pytester.makepyfile(test_qualification=SUITE.read_text())
    return pytester


def only_test(suite):
    tests = load_document(suite.path / "reports" / "latest.json")["tests"]
    assert len(tests) == 1
    return tests[0]


def test_a_dry_run_searches_then_measures_five_runs(qualification_suite):
    result = qualification_suite.runpytest_subprocess(
        "--iobench-storage=local", "--iobench-libraries=posix", "--iobench-ranks=1,2", "--iobench-report=none",
        "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    test = only_test(qualification_suite)
    assert test["id"] == "test_qualification.py::test_qualification[unet3d_small-local-posix]"
    q = test["details"]["qualification"]
    assert q["dry_run"] and q["scale"] == 0.001 and q["min_steps"] == 1 and q["host_memory_bytes"] == 4 * 1024 ** 2
    assert [r["id"] for r in q["rules"]] == ["dataset-memory", "steps-per-epoch", "overrides", "odirect",
                                             "measured-runs", "runs-agree", "au-floor"]
    # the search between the lowest and highest --iobench-ranks; whatever AU the machine gives
    probes = q["search"]["probes"]
    assert (q["search"]["start"], q["search"]["limit"]) == (1, 2)
    assert [p["accelerators"] for p in probes] in ([1], [1, 2])
    assert q["accelerators"] == q["search"]["best"] == max([0] + [p["accelerators"] for p in probes if p["met"]])
    runs = q["runs"]
    assert runs["warmups"] == 1 and len(runs["au_percent"]) == len(runs["samples_per_second"]) == 5
    assert runs["accelerators"] == (q["accelerators"] or 1)
    assert test["metrics"]["train_au_percent"]["repeats"] == runs["au_percent"], "the same 5 runs"
    assert q["label"] in ("CLOSED", "INVALID") and q["verdict"].startswith(q["label"] + ": unet3d_small on local-posix")
    assert q["verdict"].endswith("(dry run, not a qualification)")
    assert any(w.startswith("qualification: ") for w in test["warnings"])


def test_a_run_that_breaks_a_rule_is_refused_with_the_reason(qualification_suite):
    result = qualification_suite.runpytest_subprocess(
        "--iobench-storage=local", "--iobench-libraries=posix", "--iobench-set", "reader.batch_size=14",
        "--iobench-report=none", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*qualification of unet3d_small refused: overrides: override not allowed in CLOSED "
                                 "or OPEN: reader.batch_size=14*"])
    q = only_test(qualification_suite)["details"]["qualification"]
    assert q["label"] == "INVALID" and "search" not in q and "runs" not in q
    assert q["verdict"].startswith("refused before running: overrides: ")
    # the schema describes the section: a label that is none of the three is refused
    document = load_document(qualification_suite.path / "reports" / "latest.json")
    document["tests"][0]["details"]["qualification"]["label"] = "MAYBE"
    assert any("MAYBE" in p for p in problems(document))
