"""The installed package is self-contained: a wheel built from this checkout, installed into a
fresh virtualenv, runs a shipped suite with its shipped workloads from a folder outside the
checkout (nothing of the checkout on the path)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from pytest_iobench.report.schema import load_document

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
                   check=True, capture_output=True)
    (built,) = out.glob("pytest_iobench-*.whl")
    return built


def test_the_wheel_holds_every_subpackage_the_suites_and_the_workloads(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    in_tree = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "pytest_iobench").rglob("__init__.py")}
    assert in_tree - listed == set(), f"pyproject.toml's packages miss {sorted(in_tree - listed)}"
    for suite in (ROOT / "suites").glob("test_*.py"):
        assert f"pytest_iobench/suites/{suite.name}" in names
    for workload in (ROOT / "pytest_iobench" / "workloads").glob("*.yaml"):
        assert f"pytest_iobench/workloads/{workload.name}" in names
    assert "pytest_iobench/report/schema/iobench-result-1.json" in names


def test_an_installed_wheel_runs_a_suite_outside_the_checkout(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / "bin"
    # The dependencies come from this environment's site-packages (a .pth line adds it to the
    # path, so its own .pth files, the checkout's editable finder among them, are not run);
    # the package itself only from the wheel.
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    fresh_site = Path(subprocess.run([str(bin_dir / "python"), "-c", purelib],
                                     check=True, capture_output=True, text=True).stdout.strip())
    (fresh_site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
                   check=True, capture_output=True)
    project = tmp_path / "project"
    project.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "IOBENCH_", "PYTEST_"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{os.path.dirname(sys.executable)}{os.pathsep}{env.get('PATH', '')}"
    copied = subprocess.run([str(bin_dir / "iobench"), "suites"], cwd=project, env=env,
                            capture_output=True, text=True)
    assert copied.returncode == 0, copied.stderr
    where = subprocess.run([str(bin_dir / "python"), "-c", "import pytest_iobench; print(pytest_iobench.__file__)"],
                           cwd=project, env=env, check=True, capture_output=True, text=True).stdout
    assert str(venv) in where, f"pytest_iobench was imported from {where}, not from the installed wheel"
    # the training suite's default workload comes from the package (pytest_iobench/workloads/)
    run = subprocess.run([str(bin_dir / "python"), "-m", "pytest", "suites/test_training.py", "-q",
                          "--iobench-storage=local", "--iobench-libraries=posix", "--iobench-workload=unet3d_small",
                          "--iobench-json=result.json", "--iobench-report=none", "-p", "no:cacheprovider",
                          "--iobench-set", "metric.au=0"],  # the wheel is checked, not the AU (machine speed)
                         cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    tests = load_document(project / "result.json")["tests"]
    assert [t["id"] for t in tests] == ["suites/test_training.py::test_training[unet3d_small-r1-local-posix]"]
    assert tests[0]["outcome"] == "passed"
