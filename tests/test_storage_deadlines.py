"""Deadlines: a silent endpoint (the fault proxy's blackhole in front of moto) fails every S3
library's operations within --iobench-op-timeout, with one line naming the operation, the key,
the library and the endpoint; an interrupt releases every waiting operation at once."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from pytest_iobench.storage import interrupts
from pytest_iobench.storage.deadline import Timeouts, run
from pytest_iobench.storage.endpoint import EmbeddedS3
from pytest_iobench.storage.errors import StorageInterrupted, StorageTimeout
from pytest_iobench.storage.faultproxy import FaultProxy, Profile

OP_TIMEOUT = 2.0
#: what the issue allows past the op timeout (a bound proving no hang, not a speed figure)
SLACK = 10.0


@pytest.fixture(scope="module")
def moto():
    with EmbeddedS3(bucket="deadlines") as endpoint:
        yield endpoint


@pytest.fixture
def no_interrupt():
    interrupts.reset()
    yield
    interrupts.reset()


def test_timeouts_are_sized_from_the_op_timeout():
    t = Timeouts(120)
    assert (t.connect, t.read, t.attempts) == (10, 40, 3)
    assert Timeouts(2).connect == 0.5 and Timeouts(2).read == pytest.approx(2 / 3)


def test_a_call_past_its_deadline_is_abandoned(no_interrupt):
    release = threading.Event()
    started = time.monotonic()
    with pytest.raises(StorageTimeout) as info:
        run(release.wait, 30, op="get", key="a/b", library="boto3", where="http://127.0.0.1:1", timeout=0.5)
    assert time.monotonic() - started < 0.5 + SLACK
    assert str(info.value) == ("boto3: get 'a/b' failed: no answer from http://127.0.0.1:1 within 0.5 s "
                               "(--iobench-op-timeout); the call is abandoned")
    release.set()
    assert run(lambda: 7, op="get", key="k", library="x", where="w", timeout=5) == 7
    with pytest.raises(ZeroDivisionError):
        run(lambda: 1 / 0, op="get", key="k", library="x", where="w", timeout=5)


def test_an_interrupt_releases_every_waiting_operation(no_interrupt):
    """Threads waiting for calls that never end are released at once by interrupt(); later
    operations get GRACE seconds."""
    release = threading.Event()
    errors = []

    def waiter():
        try:
            run(release.wait, 60, op="put", key="k", library="minio", where="http://e", timeout=60)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=waiter) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    interrupts.interrupt("SIGINT")
    for thread in threads:
        thread.join(timeout=SLACK)
    assert time.monotonic() - started < SLACK and len(errors) == 4
    assert all(isinstance(e, StorageInterrupted) and "interrupted (SIGINT)" in str(e) for e in errors)
    with pytest.raises(StorageTimeout, match=f"within {interrupts.GRACE:g} s"):
        run(release.wait, 60, op="delete", key="k", library="minio", where="http://e", timeout=60)
    release.set()


BLACKHOLED_SUITE = '''
import pytest

@pytest.mark.parametrize("op", ["get", "put", "list", "write"])
def test_op(storage, iobench_record, op):
    iobench_record.kind = "conformance"
    if op == "get":
        storage.get("some/key")
    elif op == "put":
        storage.put("some/key", b"x" * 1000)
    elif op == "list":
        storage.list("some/")
    else:
        with storage.open_writer("some/stream") as writer:
            for _ in range(3):
                writer.write(b"y" * (8 << 20))
'''


def test_a_blackholed_endpoint_fails_every_library_within_the_op_timeout(moto, tmp_path):
    """A real session on every S3 library against an endpoint that accepts connections and never
    answers (after the start-up check): each operation fails within the op timeout plus 10 s,
    naming the operation, key, library and endpoint."""
    (tmp_path / "test_blackholed.py").write_text(BLACKHOLED_SUITE)
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("AWS_", "IOBENCH_"))}
    env.update(AWS_ACCESS_KEY_ID=moto.access_key, AWS_SECRET_ACCESS_KEY=moto.secret_key)
    with FaultProxy(moto.url, Profile(blackhole=1.0, after=1)) as proxy:  # the head_bucket check passes
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_blackholed.py",
             "--iobench-storage=s3", f"--iobench-s3-endpoint={proxy.url}", "--iobench-bucket=deadlines",
             f"--iobench-op-timeout={OP_TIMEOUT:g}", "--iobench-json=out.json"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        elapsed = time.monotonic() - started
    document = json.loads((tmp_path / "out.json").read_text())
    tests = document["tests"]
    assert len(tests) == 12, result.stdout[-3000:]
    for test in tests:
        library, _op = test["params"]["library"], test["params"]["op"]
        assert test["outcome"] == "failed", test
        assert test["duration_s"] < OP_TIMEOUT + SLACK, test
        message = test["message"]
        assert f"{library}: " in message and proxy.url in message and "--iobench-op-timeout" in message, test
        assert "some/" in message, test
    assert elapsed < 12 * (OP_TIMEOUT + SLACK) + 60, elapsed
    assert result.returncode == 1


@pytest.mark.parametrize("given, shown", [("0", "'0'"), ("-3", "'-3'"), ("soon", "'soon'"), ("inf", "'inf'")])
def test_a_bad_op_timeout_is_one_line_at_start(given, shown):
    import pytest_iobench.plugin.options  # noqa: F401  (declares every option)
    from pytest_iobench.settings import SettingsError, resolve

    assert resolve({}, {}, {}).op_timeout == 120
    assert resolve({}, {}, {"IOBENCH_OP_TIMEOUT": "7.5"}).op_timeout == 7.5
    with pytest.raises(SettingsError) as info:
        resolve({"op-timeout": given}, {}, {})
    assert str(info.value).startswith(f"--iobench-op-timeout (command line): {shown} is not valid: give a ")
