"""Loading the plugin is cheap: the ``pytest11`` entry point loads it in every pytest run of a
project where the package is installed, so it imports no heavy library until an iobench
option, fixture or suite is used (benchmarks/bench_import.py measures the time)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("numpy", "pyarrow", "h5py", "yaml", "jsonschema", "boto3", "botocore", "moto", "matplotlib",
         "pytest_iobench.data.spec", "pytest_iobench.report.session", "pytest_iobench.workload.config")


def imported_after(code: str, cwd) -> list[str]:
    """The HEAVY modules in sys.modules after ``code`` runs in a fresh interpreter."""
    probe = f"import sys, json\n{code}\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


def test_importing_the_plugin_imports_no_heavy_library(tmp_path):
    code = "import pytest_iobench.plugin as p\nfor m in p.pytest_plugins: __import__(m)"
    assert imported_after(code, tmp_path) == []


def test_a_pytest_run_without_iobench_imports_no_heavy_library(tmp_path):
    """A session of plain tests (the plugin loaded by its entry point, no iobench option or
    fixture) runs them without loading the layers' heavy modules."""
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    assert True\n")
    code = ("import pytest, sys\n"
            "rc = pytest.main(['-q', '-p', 'no:cacheprovider', '-p', 'no:xdist', '-p', 'no:benchmark', "
            "'test_plain.py'])\nassert rc == 0, rc")
    assert imported_after(code, tmp_path) == []


def test_the_option_names_agree_with_the_modules_that_own_them():
    from pytest_iobench.data import generate, integrity, names, spec

    assert names.FORMATS == spec.FORMATS
    assert names.MODES == integrity.MODES
    assert names.ON_CORRUPT == generate.ON_CORRUPT
