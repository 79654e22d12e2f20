"""suites/test_qualification.py as a user runs it: a dry run end to end on local files, and a
run that breaks a rule refused before anything runs, with the reason in the document."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_iobench.report.schema import load_document, problems

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "suites" / "test_qualification.py"
CHECKPOINT_SUITE = ROOT / "suites" / "test_checkpoint_qualification.py"


@pytest.fixture
def qualification_suite(pytester):
    pytester.makepyfile(test_qualification=SUITE.read_text())
    return pytester


@pytest.fixture
def checkpoint_suite(pytester):
    pytester.makepyfile(test_checkpoint_qualification=CHECKPOINT_SUITE.read_text())
    return pytester


def only_test(suite):
    tests = load_document(suite.path / "reports" / "latest.json")["tests"]
    assert len(tests) == 1
    return tests[0]


def only_qualification(suite):
    return only_test(suite)["details"]["qualification"]


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


def test_a_count_given_is_qualified_without_a_search(qualification_suite):
    result = qualification_suite.runpytest_subprocess(
        "--iobench-storage=local", "--iobench-libraries=posix", "--iobench-accelerators=1",
        "--iobench-host-memory=0.001", "--iobench-report=none", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    q = only_qualification(qualification_suite)
    assert q["accelerators_asked"] == "1" and "search" not in q
    assert q["host_memory_bytes"] == int(0.001 * 1024 ** 3)
    assert q["runs"]["accelerators"] == 1 and len(q["runs"]["au_percent"]) == 5
    assert q["accelerators"] in (0, 1)
    assert ("(no search)" if q["accelerators"] == 0 else "no search: the count given") in q["verdict"]


def test_a_range_bounds_the_search_and_the_given_memory_sizes_the_dataset(qualification_suite):
    # 5 x 1 GiB of memory needs 10240 files of 512 KiB; unet3d_small has 56: refused before running
    result = qualification_suite.runpytest_subprocess(
        "--iobench-storage=local", "--iobench-libraries=posix", "--iobench-accelerators=2-3",
        "--iobench-report=none", "-p", "no:cacheprovider", "--iobench-host-memory=1")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*qualification of unet3d_small refused: dataset-memory: dataset.num_files_train "
                                 "56 < 10240*"])
    q = only_qualification(qualification_suite)
    assert q["accelerators_asked"] == "2-3" and q["dataset"]["accelerators"] == 3
    assert q["host_memory_bytes"] == 1024 ** 3 and "runs" not in q


def test_a_llama3_checkpoint_qualification_writes_then_reads_ten(checkpoint_suite):
    result = checkpoint_suite.runpytest_subprocess(
        "--iobench-storage=local", "--iobench-libraries=posix", "--iobench-workload=llama3-8b",
        "--iobench-scale=1/100000", "--iobench-report=none", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    q = only_qualification(checkpoint_suite)
    assert q["kind"] == "checkpoint" and q["dry_run"] and q["host_memory_bytes"] == 4 * 1024 ** 2
    assert [r["id"] for r in q["rules"]] == ["checkpoint-processes", "checkpoint-counts", "checkpoint-fsync",
                                             "checkpoint-overrides", "checkpoint-done", "checkpoint-page-cache"]
    ck = q["checkpoint"]
    assert ck["model"] == "llama3-8b" and ck["processes"] == 8
    assert len(ck["write_seconds"]) == len(ck["read_seconds"]) == 10
    # about 105 MB at 1/100000; 3x the dry run's 4 MiB is more: the cache had to be cleared
    assert 0 < ck["size_bytes"] < 3 * 4 * 1024 ** 2 and ck["cache_required"]
    assert q["label"] in ("CLOSED", "INVALID") and q["verdict"].endswith("(dry run, not a qualification)")
    assert q["verdict"].startswith(q["label"] + ": llama3-8b on local-posix: 8 processes wrote 10 checkpoints")


def test_a_checkpoint_process_count_the_rules_do_not_allow_is_refused(checkpoint_suite):
    result = checkpoint_suite.runpytest_subprocess(
        "--iobench-storage=local", "--iobench-libraries=posix", "--iobench-workload=llama3-70b",
        "--iobench-accelerators=12", "--iobench-report=none", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*qualification of llama3-70b refused: checkpoint-processes: 12 processes is not "
                                 "allowed for llama3-70b: CLOSED allows 8 (subset) or 64 (full); OPEN a multiple "
                                 "of 8*"])
    q = only_qualification(checkpoint_suite)
    assert q["label"] == "INVALID" and "checkpoint" not in q


def test_a_bad_accelerators_value_stops_the_session_with_one_line(qualification_suite):
    result = qualification_suite.runpytest_subprocess("--iobench-accelerators=8-2", "-p", "no:cacheprovider")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: --iobench-accelerators (command line): '8-2' is not valid: the range 8-2 "
                                 "runs backwards; give auto, a count such as 8, or a range such as 4-64"])


def test_without_a_llama3_workload_the_checkpoint_qualification_says_why_it_skips(checkpoint_suite):
    result = checkpoint_suite.runpytest_subprocess("--iobench-report=none", "-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*a checkpoint qualification runs for a llama3 workload named in --iobench-workload*"])
