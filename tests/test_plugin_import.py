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


def test_a_pytest_run_without_iobench_settings_loads_no_storage_code(tmp_path):
    """The plugin installs its interrupt handlers and resolves its settings in every session; a
    session given no iobench setting has nothing of the storage layer to check or open."""
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    assert True\n")
    storage_code = ("pytest_iobench.storage.registry", "pytest_iobench.storage.factory",
                    "pytest_iobench.storage.s3common", "pytest_iobench.storage.deadline", "pytest_iobench.storage.base")
    probe = ("import json, os, sys, pytest\n"
             "for name in [n for n in os.environ if n.startswith(('IOBENCH_', 'AWS_'))]: del os.environ[name]\n"
             "rc = pytest.main(['-q', '-p', 'no:cacheprovider', '-p', 'no:xdist', '-p', 'no:benchmark',"
             " 'test_plain.py'])\n"
             f"print(json.dumps([rc, [m for m in {storage_code!r} if m in sys.modules]]))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.splitlines()[-1]) == [0, []], out.stdout


def test_the_storage_package_exports_what_it_lists():
    import pytest_iobench.storage as storage

    assert set(storage.__all__) == set(storage._HOME)
    for name in storage.__all__:
        assert getattr(storage, name) is not None
