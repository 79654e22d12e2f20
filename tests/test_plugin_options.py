"""The plugin's options: --help, precedence (command line > ini > environment > default),
test ids, the report header with secrets masked, and one-line errors for bad values."""

from __future__ import annotations

import pytest

from pytest_iobench.settings import REGISTRY

PRINT_SETTINGS = """
def test_show(iobench_config):
    print("THREADS=" + ",".join(map(str, iobench_config.threads)))
    print("STORAGE=" + ",".join(iobench_config.storage))
"""


def test_every_option_in_help_under_iobench_group(pytester):
    result = pytester.runpytest("--help")
    out = result.stdout.str()
    assert "pytest-iobench: storage benchmarks for AI training" in out
    for option in REGISTRY.values():
        assert option.flag in out, f"{option.flag} missing from --help"
        assert option.ini in out, f"ini key {option.ini} missing from --help"


@pytest.mark.parametrize(
    "cli,ini,env,expected",
    [
        (None, None, None, "1,4"),
        (None, None, "3", "3"),
        (None, "2,5", "3", "2,5"),
        ("7", "2,5", "3", "7"),
    ],
    ids=["default", "env", "ini-over-env", "cli-over-ini"],
)
def test_precedence(pytester, monkeypatch, cli, ini, env, expected):
    pytester.makepyfile(PRINT_SETTINGS)
    if ini:
        pytester.makeini(f"[pytest]\niobench_threads = {ini}\n")
    if env:
        monkeypatch.setenv("IOBENCH_THREADS", env)
    else:
        monkeypatch.delenv("IOBENCH_THREADS", raising=False)
    args = ["-s"] + ([f"--iobench-threads={cli}"] if cli else [])
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*THREADS={expected}"])


def test_pyproject_ini_twin(pytester):
    pytester.makepyfile(PRINT_SETTINGS)
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\niobench_storage = "local,direct"\n')
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*STORAGE=local,direct"])


def test_ids_storage_library_threads(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("fmt", ["npz", "parquet"])
        def test_read(fmt, storage, threads):
            assert storage.kind == "local"
        """
    )
    result = pytester.runpytest("--collect-only", "-q", "--iobench-threads=1,4")
    result.stdout.fnmatch_lines(
        [
            "*test_read[[]npz-local-posix-t1[]]",
            "*test_read[[]npz-local-posix-t4[]]",
            "*test_read[[]npz-local-s3dlio-t1[]]",
            "*test_read[[]parquet-local-s3dlio-t4[]]",
        ]
    )
    result = pytester.runpytest("-q", "--iobench-threads=1,4")
    result.assert_outcomes(passed=8)


def test_header_shows_settings_and_masks_secrets(pytester, monkeypatch):
    secret = "sUp3r-s3cr3t-v4lue-0123456789"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("--iobench-storage=local,direct")
    out = result.stdout.str() + result.stderr.str()
    assert secret not in out
    result.stdout.fnmatch_lines(["iobench: storage=local,direct (command line)*s3-secret-key=*** (env AWS_SECRET_ACCESS_KEY)*"])


@pytest.mark.parametrize(
    "args,message",
    [
        (["--iobench-storage=nfs"], "ERROR: --iobench-storage (command line): 'nfs' is not valid: unknown value 'nfs'; valid: local, direct, s3"),
        (["--iobench-libraries=curl"], "ERROR: --iobench-libraries (command line): 'curl' is not valid: unknown value 'curl'; valid: posix, s3dlio, minio, boto3"),
        (["--iobench-threads=0"], "ERROR: --iobench-threads (command line): '0' is not valid: 0 is not positive*"),
        (["--iobench-threads=four"], "ERROR: --iobench-threads (command line): 'four' is not valid: 'four' is not a whole number*"),
        (["--iobench-storage=local", "--iobench-libraries=minio"], "ERROR: --iobench-libraries: minio cannot reach the local storage; valid for local: posix, s3dlio"),
        (["--iobench-s3-endpoint=ftp://x"], "ERROR: --iobench-s3-endpoint (command line): 'ftp://x' is not valid: give an http:// or https:// URL*"),
    ],
    ids=["storage", "library", "threads-zero", "threads-word", "library-for-storage", "endpoint-url"],
)
def test_bad_values_stop_at_start_with_one_line(pytester, args, message):
    pytester.makepyfile("def test_never_runs():\n    raise AssertionError('ran')\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
    assert "ran" not in result.stdout.str()


def test_ini_value_error_names_the_ini_key(pytester):
    pytester.makeini("[pytest]\niobench_storage = local,tape\n")
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --iobench-storage (ini iobench_storage): 'local,tape' is not valid*valid: local, direct, s3"])


def test_missing_library_is_skipped_with_reason(pytester):
    # Python's own import blocking: a None entry in sys.modules makes the module not found.
    pytester.makeconftest("import sys\nsys.modules['s3dlio'] = None\n")
    pytester.makepyfile("def test_io(storage):\n    assert storage.library == 'posix'\n")
    result = pytester.runpytest("-rs", "--iobench-storage=local", "--iobench-libraries=posix,s3dlio")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*the s3dlio library is not installed (pip install s3dlio)*"])
    # Not asked for explicitly: a missing library is simply not parametrized.
    result = pytester.runpytest("-q", "--iobench-storage=local")
    result.assert_outcomes(passed=1)


def test_storage_fixture_is_shared_per_param_and_cleaned_up(pytester, tmp_path):
    root = tmp_path / "under-test"
    root.mkdir()
    (root / "precious.txt").write_text("not ours")
    pytester.makepyfile(
        """
        SEEN = {}
        CRASHED = []  # writers that never commit nor abort, as if their process had died

        def test_a(storage):
            SEEN.setdefault(storage.id, id(storage))
            storage.put("a/b", b"x")
            CRASHED.append(storage.open_writer("a/never-finished"))
            CRASHED[-1].write(b"y" * 8192)

        def test_b(storage):
            assert SEEN[storage.id] == id(storage)
            assert storage.list("a/") == ["a/b"]
        """
    )
    result = pytester.runpytest("-q", f"--iobench-root={root}", "--iobench-storage=local,direct")
    result.assert_outcomes(passed=8)
    leftovers = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    assert leftovers == ["precious.txt"], f"the session left {leftovers}"
