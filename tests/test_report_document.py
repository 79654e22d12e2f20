"""The run's result document: written for iobench sessions (valid against the schema, every test
with its outcome), not for plain unit-test runs; --iobench-json; repeats and warm-ups from the
settings; the terminal table; secrets kept out; files written whole or not at all."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import jsonschema
import pytest

from pytest_iobench.report.schema import load_document, schema
from pytest_iobench.report.writer import write_atomic

SYNTHETIC = """
import pytest

@pytest.mark.parametrize("fmt", ["npz", "parquet"])
def test_read(fmt, threads, iobench_record):
    iobench_record.kind = "read"
    base = 100.0 if fmt == "npz" else 80.0
    iobench_record.measure(lambda: {"read_MB_per_second": base * threads},
                           {"read_MB_per_second": ("MB/s", "higher")})

def test_train(iobench_record):
    iobench_record.kind = "train"
    iobench_record.params["workload"] = "unet3d_small"
    iobench_record.metric("train_au_percent", 95.0, "%")
    iobench_record.metric("batch_read_p50_seconds", 0.010, "s", "lower")
    iobench_record.metric("batch_read_p99_seconds", 0.030, "s", "lower")
    iobench_record.criterion("train_au_percent", ">=", 90, "mean AU meets the floor")
    iobench_record.warn("the dataset fits in the page cache")

def test_below_floor(iobench_record):
    iobench_record.kind = "train"
    iobench_record.metric("train_au_percent", 50.0, "%")
    iobench_record.criterion("train_au_percent", ">=", 90, "mean AU below the floor")

def test_plain():
    assert 1 + 1 == 2

@pytest.mark.parametrize("size", [1, 2])
def test_plain_param(size):
    assert size

@pytest.mark.skip(reason="not on this machine")
def test_skipped():
    pass
"""


def run_and_load(pytester, *args):
    result = pytester.runpytest("--iobench-threads=1,4", "--iobench-report=none", *args)
    return result, load_document(pytester.path / "reports" / "latest.json")


def test_document_is_valid_and_holds_every_test(pytester):
    pytester.makepyfile(test_synthetic=SYNTHETIC)
    result, document = run_and_load(pytester)
    result.assert_outcomes(passed=8, failed=1, skipped=1)
    jsonschema.validate(document, schema())  # load_document validated too; say it plainly
    tests = {t["id"].split("::")[1]: t for t in document["tests"]}
    assert sorted(tests) == sorted([
        "test_read[npz-t1]", "test_read[npz-t4]", "test_read[parquet-t1]", "test_read[parquet-t4]",
        "test_train", "test_below_floor", "test_plain", "test_plain_param[1]", "test_plain_param[2]",
        "test_skipped"])
    assert len(document["tests"]) == 10, "one entry per test"
    read = tests["test_read[parquet-t4]"]
    assert read["kind"] == "read" and read["outcome"] == "passed"
    assert read["params"] == {"fmt": "parquet", "threads": 4}
    assert read["metrics"]["read_MB_per_second"]["value"] == 320.0
    assert read["metrics"]["read_MB_per_second"]["unit"] == "MB/s"
    assert read["suite"] == "test_synthetic"
    train = tests["test_train"]
    assert train["criteria"][0]["passed"] is True and train["warnings"] == ["the dataset fits in the page cache"]
    assert train["params"]["workload"] == "unet3d_small"
    below = tests["test_below_floor"]
    assert below["outcome"] == "failed"
    assert "train_au_percent = 50 >= 90: NOT met" in below["message"]
    assert tests["test_plain_param[2]"]["params"] == {"size": 2} and tests["test_plain"]["outcome"] == "passed"
    assert tests["test_skipped"]["outcome"] == "skipped" and tests["test_skipped"]["message"] == "not on this machine"
    assert document["summary"]["outcomes"] == {"failed": 1, "passed": 8, "skipped": 1}
    assert document["summary"]["criteria_failed"] == 1
    run = document["run"]
    assert run["exit_status"] == 1 and run["settings"]["threads"] == {"value": "1,4", "source": "command line"}
    assert document["machine"]["cpu"]["logical_cores"] >= 1 and document["machine"]["memory_bytes"] > 0
    assert document["software"]["libraries"]["numpy"] and "pyarrow" in document["software"]["libraries"]
    # the timestamped document and latest.json are the same bytes
    stamped = [p for p in (pytester.path / "reports").glob("iobench-*.json")]
    assert len(stamped) == 1 and stamped[0].read_bytes() == (pytester.path / "reports" / "latest.json").read_bytes()


def test_each_recording_case_starts_on_a_written_back_disk(pytester):
    pytester.makepyfile(test_synthetic=SYNTHETIC)
    _, document = run_and_load(pytester, "-k", "train or plain")
    tests = {t["id"].split("::")[1]: t for t in document["tests"]}
    waited = tests["test_train"]["details"]["written_back_seconds"]
    assert isinstance(waited, float) and waited >= 0, "the case says how long its write-back took"
    assert "written_back_seconds" not in tests["test_plain"].get("details", {}), (
        "a test that records nothing is not made to wait for the disk")


def test_terminal_table_per_suite(pytester):
    pytester.makepyfile(test_synthetic=SYNTHETIC)
    result, _ = run_and_load(pytester)
    result.stdout.fnmatch_lines([
        "*- iobench results -*",
        "test_synthetic.py (read, train): 8 passed, 1 failed, 1 skipped",
        "*test*outcome*key metrics*criteria*warnings*",
        "*test_read[[]npz-t4[]]*passed*read_MB_per_second 400 MB/s*-*0",
        "*test_train*passed*train_au_percent 95%, batch_read_p50_seconds 0.01 s, "
        "batch_read_p99_seconds 0.03 s*1/1 met*1",
        "*test_below_floor*failed*train_au_percent 50%*0/1 met: FAIL*0",
        "iobench: results in reports*iobench-*.json, reports*latest.json",
    ])
    assert "test_plain_param" not in result.stdout.str().split("iobench results")[1], (
        "tests without results are counted, not listed")


def test_repeat_and_warmup_settings_reach_the_record(pytester):
    pytester.makepyfile(test_synthetic=SYNTHETIC)
    _, document = run_and_load(pytester, "--iobench-repeat=3", "--iobench-warmup=2", "-k", "read")
    metric = document["tests"][0]["metrics"]["read_MB_per_second"]
    assert len(metric["repeats"]) == 3 and len(metric["warmup"]) == 2


def test_plain_unit_tests_write_nothing(pytester):
    pytester.makepyfile(test_plain="def test_a():\n    assert True\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "reports").exists()
    assert "iobench results" not in result.stdout.str()


def test_iobench_json_path_writes_even_a_plain_run(pytester):
    pytester.makepyfile(test_plain="def test_a():\n    assert True\n")
    result = pytester.runpytest("--iobench-json=out/run.json", "--iobench-report=none")
    result.assert_outcomes(passed=1)
    document = load_document(pytester.path / "out" / "run.json")
    assert [t["id"] for t in document["tests"]] == ["test_plain.py::test_a"]
    assert not (pytester.path / "reports").exists(), "--iobench-json replaces reports/ and latest.json"


def test_fixture_use_makes_an_iobench_session(pytester):
    pytester.makepyfile(test_cfg="def test_a(iobench_config):\n    assert iobench_config.repeat == 1\n")
    pytester.runpytest("--iobench-report=none").assert_outcomes(passed=1)
    assert (pytester.path / "reports" / "latest.json").exists()


def test_unknown_kind_fails_the_test_naming_the_valid_ones(pytester):
    pytester.makepyfile(test_kind="def test_a(iobench_record):\n    iobench_record.kind = 'benchmark'\n")
    result = pytester.runpytest("--iobench-report=none")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*iobench_record.kind = 'benchmark' is not a kind; valid: conformance, generate, read,*"])
    test = load_document(pytester.path / "reports" / "latest.json")["tests"][0]  # valid all the same
    assert test["kind"] is None and test["outcome"] == "failed" and "'benchmark' is not a kind" in test["message"]


@pytest.mark.parametrize("ci", ["", "true"], ids=["terminal", "ci"])
def test_secrets_never_reach_the_document_or_the_output(pytester, monkeypatch, ci):
    given, from_env = "Sup3rSecretGivenOnTheCommandLine", "An0therSecretFromTheEnvironment"
    monkeypatch.setenv("AWS_SESSION_TOKEN", from_env)
    monkeypatch.setenv("CI", ci)
    pytester.makepyfile(test_leak=f"""
        def test_leak(iobench_record):
            iobench_record.metric("rate", 1.0, "MB/s")
            iobench_record.details["config"] = {{"secret_access_key": "{given}", "token": "{from_env}"}}
            iobench_record.warn("connecting with {given}")
            assert False, "failed with {from_env}"
    """)
    result = pytester.runpytest(f"--iobench-s3-secret-key={given}", "--iobench-report=md,html")
    result.assert_outcomes(failed=1)
    files = list((pytester.path / "reports").iterdir())
    assert any(p.suffix == ".html" for p in files) and any(p.suffix == ".md" for p in files)
    for path in files:
        if path.suffix in (".json", ".md", ".html"):
            text = path.read_text()
            assert given not in text and from_env not in text, f"a secret is in {path.name}"
    document = load_document(pytester.path / "reports" / "latest.json")
    assert "--iobench-s3-secret-key=***" in document["run"]["command"]
    assert document["run"]["settings"]["s3-secret-key"]["value"] == "***"
    assert "***" in document["tests"][0]["warnings"][0]
    # pytest's own failure output too: the traceback, the assertion message, the short summary
    # (which pytest leaves untruncated when CI is set)
    output = result.stdout.str() + result.stderr.str()
    assert given not in output and from_env not in output
    result.stdout.fnmatch_lines(["*AssertionError: failed with [*][*][*]*"])


def test_masked_options_are_masked_in_the_command(pytester, monkeypatch):
    """An access key id (a masked option) is shown as the settings show it, ****<last 4>, in
    every form it can be given; one that is also the secret key (minio's minioadmin) as ****."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "IOBENCH_S3_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_a="def test_a(iobench_record):\n    iobench_record.metric('rate', 1.0, 'MB/s')\n")
    key_id = "IobenchKeyIdGiven4321"
    runs = {
        "flag=value": ([f"--iobench-s3-access-key={key_id}"], ["--iobench-s3-access-key=****4321"]),
        "flag value": (["--iobench-s3-access-key", key_id], ["--iobench-s3-access-key", "****4321"]),
        "ini override": (["-o", f"iobench_s3_access_key={key_id}"], ["-o", "iobench_s3_access_key=****4321"]),
        "also the secret": (["--iobench-s3-access-key=SameIdAndSecret77", "--iobench-s3-secret-key",
                             "SameIdAndSecret77"],
                            ["--iobench-s3-access-key=****", "--iobench-s3-secret-key", "***"]),
    }
    for case, (args, expected) in runs.items():
        json_path = f"{case.replace(' ', '-')}.json"
        pytester.runpytest(*args, f"--iobench-json={json_path}", "--iobench-report=none").assert_outcomes(passed=1)
        document = load_document(pytester.path / json_path)
        command = document["run"]["command"]
        assert command[1:1 + len(expected)] == expected, (case, command)
        text = (pytester.path / json_path).read_text()
        assert key_id not in text and "SameIdAndSecret77" not in text, case
        shown = document["run"]["settings"]["s3-access-key"]["value"]
        assert shown == ("****4321" if key_id in " ".join(args) else "****"), (case, shown)


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "latest.json"
    write_atomic(target, "old\n")

    def crash(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, "new half-written document")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["latest.json"], "no temporary file is left behind"


def test_nan_never_reaches_a_file(tmp_path):
    from pytest_iobench.report.writer import dumps

    with pytest.raises(ValueError):
        dumps({"value": float("nan")})
    assert json.loads(dumps({"value": 1.5})) == {"value": 1.5}


def test_interrupted_run_still_writes_what_ran(pytester):
    pytester.makepyfile(test_stop="""
        def test_a(iobench_record):
            iobench_record.metric("rate", 1.0, "MB/s")

        def test_b(iobench_record):
            raise KeyboardInterrupt

        def test_c(iobench_record):
            pass
    """)
    result = pytester.runpytest_subprocess("--iobench-report=none")  # in process, the interrupt would stop this session
    assert result.ret == pytest.ExitCode.INTERRUPTED
    document = load_document(pytester.path / "reports" / "latest.json")
    assert document["run"]["exit_status"] == 2
    outcomes = [(t["id"].split("::")[1], t["outcome"]) for t in document["tests"]]
    assert outcomes == [("test_a", "passed"), ("test_b", "incomplete")]
    assert not list((pytester.path / "reports").glob(".*.tmp")), "no temporary file is left behind"


def test_dlio_output_goes_under_the_run_and_is_readable(pytester):
    # two runs: each its own folder, the first run's files untouched by the second
    pytester.makepyfile(test_dlio="""
import os
from pytest_iobench.workload.dlio_output import write_json

def test_out(dlio_output_dir, iobench_record):
    iobench_record.details["dlio"] = dlio_output_dir
    write_json(os.path.join(dlio_output_dir, "summary.json"), {"ok": 1})
""")
    folders = []
    for extra in ([], ["-n", "2"]):  # the second under xdist: the controller's run
        pytester.runpytest("--iobench-report=none", *extra).assert_outcomes(passed=1)
        document = json.loads((pytester.path / "reports" / "latest.json").read_text())
        folder = Path(document["tests"][0]["details"]["dlio"])
        stamp = document["run"]["id"].split("-")[0]
        assert folder == pytester.path / "reports" / "dlio" / stamp / "test_out"
        assert stat.S_IMODE((folder / "summary.json").stat().st_mode) & 0o044 == 0o044, "readable by others"
        folders.append(folder)
        time.sleep(1.1)  # the next run starts in another second
    assert folders[0] != folders[1] and (folders[0] / "summary.json").exists()


def test_dlio_output_goes_beside_a_named_document_not_into_reports(pytester):
    # how the project's own tests run suites: their document named, the checkout untouched
    pytester.makepyfile(test_dlio="""
def test_out(dlio_output_dir, iobench_record):
    iobench_record.details["dlio"] = dlio_output_dir
""")
    for extra in ([], ["-n", "2"]):
        pytester.runpytest("--iobench-json=out/run.json", "--iobench-report=none", *extra).assert_outcomes(passed=1)
        document = json.loads((pytester.path / "out" / "run.json").read_text())
        stamp = document["run"]["id"].split("-")[0]
        assert Path(document["tests"][0]["details"]["dlio"]) == pytester.path / "out" / "dlio" / stamp / "test_out"
    assert not (pytester.path / "reports").exists()
