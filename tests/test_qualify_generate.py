"""``iobench generate``: the dataset alone, where the suites find it and reuse it."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_iobench.__main__ import main
from pytest_iobench.report.schema import load_document

ROOT = Path(__file__).resolve().parents[1]


def test_the_suites_reuse_what_generate_wrote(tmp_path, pytester, capsys):
    root = tmp_path / "root"
    argv = ["generate", "unet3d_small", "--iobench-storage=local", f"--iobench-root={root}", "--quiet"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert first.startswith("unet3d_small: 56 files, ") and ": generated in " in first
    where = first.split(" at ")[1].split(":")[0]
    assert main(argv) == 0 and capsys.readouterr().out.rstrip().endswith("reused (complete, same spec)")
    pytester.makepyfile(test_training=(ROOT / "suites" / "test_training.py").read_text())
    result = pytester.runpytest_subprocess(
        "--iobench-storage=local", "--iobench-libraries=posix", f"--iobench-root={root}",
        "--iobench-workload=unet3d_small", "--iobench-report=none", "-p", "no:cacheprovider",
        "--iobench-set", "metric.au=0")  # what is checked is the reuse, not the AU (machine speed)
    result.assert_outcomes(passed=1)
    (test,) = load_document(pytester.path / "reports" / "latest.json")["tests"]
    (dataset,) = test["details"]["datasets"]
    assert dataset["where"].rstrip("/") == where.rstrip("/") and dataset["action"] == "reused", dataset


@pytest.mark.parametrize("argv,message", [
    (["--iobench-storage=local"], "--iobench-root: give the directory to generate under"),
    (["--iobench-storage=local,s3", "--iobench-root=x"], "--iobench-storage: give one storage"),
    (["--iobench-storage=s3"], "--iobench-s3-endpoint: give the S3 endpoint"),
    (["--iobench-storage=tape"], "--iobench-storage (command line): 'tape' is not valid"),
])
def test_bad_settings_are_one_error_line(argv, message, monkeypatch):
    # only the command line counts: an endpoint another test left in the environment would be used
    from pytest_iobench.settings import REGISTRY

    for option in REGISTRY.values():
        for name in option.env_names:
            monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit) as exc:
        main(["generate", "unet3d_small", *argv])
    assert message in str(exc.value.code) and "\n" not in str(exc.value.code)
