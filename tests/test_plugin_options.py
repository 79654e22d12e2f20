"""The plugin's options: --help, precedence (command line > ini > environment > default),
test ids, the report header with secrets and access keys masked, one-line errors for bad
values (endpoint URLs, libraries, bucket names, roots) and the direct storage's skips."""

from __future__ import annotations

import json
import os
import shutil
import uuid

import pytest

from pytest_iobench.settings import REGISTRY
from pytest_iobench.storage.posix import memory_file_system

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
    result.stdout.fnmatch_lines(
        ["iobench: storage=local,direct (command line)*s3-secret-key=*** (env AWS_SECRET_ACCESS_KEY)*"])


@pytest.mark.parametrize(
    "args,message",
    [
        (["--iobench-storage=nfs"],
         "ERROR: --iobench-storage (command line): 'nfs' is not valid: unknown value 'nfs'; valid: local, direct, s3, "
         "ais"),
        (["--iobench-libraries=curl"],
         "ERROR: --iobench-libraries (command line): 'curl' is not valid: unknown value 'curl'; valid: posix, "
         "s3dlio, minio, boto3, s3torchconnector, aistore"),
        (["--iobench-threads=0"], "ERROR: --iobench-threads (command line): '0' is not valid: 0 is not positive*"),
        (["--iobench-threads=four"],
         "ERROR: --iobench-threads (command line): 'four' is not valid: 'four' is not a whole number*"),
        (["--iobench-storage=local", "--iobench-libraries=minio"],
         "ERROR: --iobench-libraries: minio cannot reach the local storage; valid for local: posix, s3dlio"),
        (["--iobench-s3-endpoint=ftp://x"],
         "ERROR: --iobench-s3-endpoint (command line): 'ftp://x' is not valid: give an http:// or https:// URL*"),
        (["--iobench-s3-endpoint=http://127.0.0.1:abc"],
         "ERROR: --iobench-s3-endpoint (command line): 'http://127.0.0.1:abc' is not valid: the port 'abc' is not a "
         "number from 1 to 65535; give an http:// or https:// URL*"),
        (["--iobench-s3-endpoint=http://[::1"],
         "ERROR: --iobench-s3-endpoint (command line): 'http://[[]::1' is not valid: the IPv6 host has no closing "
         "']'*"),
        (["--iobench-s3-endpoint=https://s3.example.com:9000/s3?a=b"],
         "ERROR: --iobench-s3-endpoint (command line): * is not valid: an endpoint is a scheme, a host, a port and a "
         "path prefix (such as AIStore's /s3), with no query or fragment*"),
        (["--iobench-storage=local", "--iobench-libraries=posix,boto3"],
         "ERROR: --iobench-libraries: boto3 serves none of the chosen storages (local); the libraries for them: "
         "local: posix, s3dlio"),
        (["--iobench-storage=s3", "--iobench-bucket=Team_Bucket"],
         "ERROR: --iobench-bucket: 'Team_Bucket' is not a bucket name the embedded S3 endpoint can create; a bucket "
         "name is 3-63 lowercase letters*"),
        (["--iobench-storage=s3", "--iobench-root=s3://ab/prefix"],
         "ERROR: --iobench-root: 'ab' is not a bucket name the embedded S3 endpoint can create*"),
        (["--iobench-root=/proc/nope"],
         "ERROR: --iobench-root: cannot create the directory /proc/nope: No such file or directory; give a directory "
         "you can write to"),
        (["--iobench-root=/proc"],
         "ERROR: --iobench-root: cannot create files in /proc: *; give a directory you can write to"),
        (["--iobench-storage=ais", "--iobench-ais-endpoint=gateway:8080"],
         "ERROR: --iobench-ais-endpoint (command line): 'gateway:8080' is not valid: give an http:// or https:// URL*"),
        (["--iobench-storage=local", "--iobench-ais-endpoint=http://gateway:8080"],
         "ERROR: --iobench-ais-endpoint (command line): http://gateway:8080 is for the ais storage, and the session "
         "does not run it (--iobench-storage=local); add ais to --iobench-storage, or drop it"),
        (["--iobench-storage=ais", "--iobench-ais-endpoint=http://gateway:8080"],
         "ERROR: --iobench-bucket: the ais storage on http://gateway:8080 needs a bucket there; name one with "
         "--iobench-bucket NAME (an ais:// bucket that exists)"),
    ],
    ids=["storage", "library", "threads-zero", "threads-word", "library-for-storage", "endpoint-url",
         "endpoint-port", "endpoint-ipv6", "endpoint-path", "library-serves-none", "embedded-bucket-name",
         "embedded-root-bucket-name", "root-cannot-create", "root-not-writable", "ais-endpoint-url",
         "ais-endpoint-unused", "ais-no-bucket"],
)
def test_bad_values_stop_at_start_with_one_line(pytester, args, message):
    pytester.makepyfile("def test_never_runs():\n    raise AssertionError('ran')\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
    assert "ran" not in result.stdout.str()


def test_endpoint_url_with_credentials_stops_without_printing_them(pytester):
    pytester.makepyfile("def test_never_runs():\n    raise AssertionError('ran')\n")
    result = pytester.runpytest("--iobench-s3-endpoint=http://AKIAIOSFODNN7EXAMPLE:pa55w0rd-in-url@127.0.0.1:9000")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --iobench-s3-endpoint (command line): 'http://***@127.0.0.1:9000' "
                                 "is not valid: credentials do not belong in the endpoint URL*; "
                                 "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead"])
    out = result.stdout.str() + result.stderr.str()
    assert "pa55w0rd-in-url" not in out and "AKIAIOSFODNN7EXAMPLE" not in out


def test_root_that_is_a_file_stops_at_start(pytester, tmp_path):
    (tmp_path / "a-file").write_text("x")
    pytester.makepyfile("def test_never_runs(storage):\n    raise AssertionError('ran')\n")
    for root, message in [
            (tmp_path / "a-file", f"ERROR: --iobench-root: {tmp_path / 'a-file'} exists and is not a directory"),
            (tmp_path / "a-file" / "sub",
             f"ERROR: --iobench-root: cannot create the directory {tmp_path / 'a-file' / 'sub'}: Not a directory*")]:
        result = pytester.runpytest(f"--iobench-root={root}", "--iobench-storage=direct")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([message])
        assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_a_usable_root_is_created_and_left_clean(pytester, tmp_path):
    root = tmp_path / "new" / "root"
    pytester.makepyfile("def test_io(storage):\n    storage.put('k', b'v')\n")
    pytester.runpytest(f"--iobench-root={root}", "--iobench-libraries=posix").assert_outcomes(passed=1)
    assert root.is_dir() and list(root.iterdir()) == [], "the write probe or the scratch area was left behind"


def test_header_and_document_mask_access_keys(pytester, monkeypatch):
    pytester.makepyfile("def test_cfg(iobench_config):\n    pass\n")
    cases = [("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "****MPLE"),
             ("minioadmin", "not-the-same-secret", "****dmin"),
             ("minioadmin", "minioadmin", "****")]  # its last characters would be the secret's
    for n, (key_id, secret, shown) in enumerate(cases):
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
        result = pytester.runpytest(f"--iobench-json=out/{n}.json", "--iobench-report=none")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines([f"iobench: *s3-access-key={shown} (env AWS_ACCESS_KEY_ID)*"])
        assert key_id not in result.stdout.str() + result.stderr.str()
        document = json.loads((pytester.path / "out" / f"{n}.json").read_text())
        assert document["run"]["settings"]["s3-access-key"] == {"value": shown, "source": "env AWS_ACCESS_KEY_ID"}
        assert key_id not in json.dumps(document)


def test_tmpfs_root_skips_the_direct_storage(pytester):
    shm = "/dev/shm"
    if not os.path.isdir(shm) or memory_file_system(shm) != "tmpfs":
        pytest.skip(f"{shm} is not a tmpfs here")
    root = os.path.join(shm, f"iobench-test-{uuid.uuid4().hex[:8]}")
    pytester.makepyfile("def test_io(storage):\n    storage.put('k', b'v' * 8192)\n")
    try:
        result = pytester.runpytest("-rs", f"--iobench-root={root}", "--iobench-storage=direct")
        result.assert_outcomes(skipped=2)
        result.stdout.fnmatch_lines([f"*SKIPPED*{root}* is on tmpfs: O_DIRECT on a memory file system measures memory, "
                                     "not a device; choose another --iobench-root for the direct storage"] * 2)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_ini_value_error_names_the_ini_key(pytester):
    pytester.makeini("[pytest]\niobench_storage = local,tape\n")
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --iobench-storage (ini iobench_storage): 'local,tape' is not valid*valid: local, direct, s3, ais"])


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


def test_a_storage_no_installed_library_reaches_is_one_clear_error(pytester):
    pytester.makeconftest("import sys\nfor name in ('s3dlio', 'minio', 'boto3'):\n    sys.modules[name] = None\n")
    pytester.makepyfile("def test_io(storage):\n    pass\n")
    result = pytester.runpytest("--iobench-storage=s3")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --iobench-storage: no installed library reaches the s3 storage: "
                                 "the s3dlio library is not installed (pip install s3dlio); *boto3*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


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
