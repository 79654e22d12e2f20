"""The generation and throughput suites size their cases by the storage they run on (``auto``),
small with ``--iobench-quick``, and as given when the user gives a size; the record says which."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_iobench.data.options import byte_size_or_auto
from pytest_iobench.workload.case_size import GiB, MiB, case_size

SUITES = Path(__file__).resolve().parents[1] / "suites"


@pytest.mark.parametrize(("suite", "kind", "expected"), [
    ("generate", "local", GiB), ("generate", "direct", GiB), ("generate", "s3", 256 * MiB),
    ("throughput", "local", GiB), ("throughput", "s3", 256 * MiB),
])
def test_auto_takes_the_settled_size_of_the_storage_kind(suite, kind, expected):
    chosen = case_size(suite, kind, None, quick=False)
    assert chosen.bytes == expected
    assert f"default for {kind} storage" in chosen.chosen_by


def test_an_unmeasured_storage_kind_takes_the_largest_settled_size():
    assert case_size("generate", "ais", None, quick=False).bytes == GiB


def test_quick_takes_the_small_sizes_and_a_given_size_wins_over_both():
    assert case_size("generate", "local", None, quick=True).bytes == 32 * MiB
    assert case_size("throughput", "s3", None, quick=True).bytes == 64 * MiB
    given = case_size("throughput", "local", 5 * MiB, quick=True)
    assert (given.bytes, given.chosen_by) == (5 * MiB, "--iobench-throughput-bytes")


def test_an_unknown_suite_is_refused_by_name():
    with pytest.raises(ValueError, match="no case sizes for suite 'latency'; known: generate, throughput"):
        case_size("latency", "local", None, quick=False)


def test_the_size_options_take_auto_or_a_size():
    assert byte_size_or_auto("auto") is None and byte_size_or_auto(" AUTO ") is None
    assert byte_size_or_auto("64MiB") == 64 * MiB
    with pytest.raises(ValueError, match=r"give auto or a size such as 64MiB"):
        byte_size_or_auto("lots")


def test_a_bad_size_stops_the_session_naming_the_option(pytester):
    result = pytester.runpytest_subprocess(str(SUITES / "test_throughput.py"), "--iobench-throughput-bytes=lots",
                                           "-p", "no:cacheprovider")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--iobench-throughput-bytes*lots*give auto or a size such as 64MiB*"])


def test_quick_generation_records_how_its_size_was_chosen(pytester):
    result = pytester.runpytest_subprocess(
        str(SUITES / "test_generate.py"), "--iobench-quick=true", "--iobench-formats=npy", "--iobench-threads=1",
        "--iobench-storage=local", "--iobench-libraries=posix", "-p", "no:cacheprovider", f"--rootdir={pytester.path}")
    result.assert_outcomes(passed=1)
    (record,) = json.loads(sorted((pytester.path / "reports").glob("iobench-*.json"))[-1].read_text())["tests"]
    assert record["details"]["size_chosen_by"] == "--iobench-quick"
    assert record["params"]["bytes_asked"] == 32 * MiB
    # 32 MiB is mostly over before its rate settles, and the figure says so (whether it is
    # depends on the machine's speed: the flag must follow from the run it records)
    steady = record["metrics"]["steady_write_throughput"]
    (run,) = steady["steady"]["runs"]
    assert ("too short" in steady.get("unfit", "")) == (run["slices"] < steady["steady"]["min_slices"])
