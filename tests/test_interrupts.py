"""Interrupts always win, with real signals sent to real pytest sessions (subprocesses):
SIGINT and SIGTERM end a session promptly whatever its storage is doing, the result document is
written and says what interrupted it, and the session's scratch area, temporary files and open
multipart uploads are cleaned up; what a SIGKILLed session left, the next session removes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from pytest_iobench.storage.endpoint import EmbeddedS3
from pytest_iobench.storage.faultproxy import BLACKHOLE, FaultProxy
from pytest_iobench.storage.posix import TEMP_MARKER

#: from the signal to the session's end (a bound proving no hang, not a speed figure)
PROMPT = 10.0

# Each test tells the parent it reached the point to interrupt (READY), then waits for GO (the
# parent has set up the fault) before the step that hangs.
SUITE = '''
import os, time
import pytest

def wait_for_go():
    open(os.environ["IOBENCH_TEST_READY"], "w").close()
    while not os.path.exists(os.environ["IOBENCH_TEST_GO"]):
        time.sleep(0.05)

def test_before(storage):
    storage.put("before", b"done")

def test_hangs(storage, storage_factory):
    storage.put("scratch-object", b"x" * 1000)
    writer = storage.open_writer("stream")           # a temporary file, or a multipart upload
    writer.write(b"y" * (20 << 20))                   # S3: parts uploaded, the upload open
    kept = storage_factory.get(storage.kind, storage.library, area="datasets")
    kept_writer = kept.open_writer("train/partial")  # outside the scratch area
    kept_writer.write(b"z" * 1000)
    wait_for_go()
    if os.environ.get("IOBENCH_TEST_HANG") == "storage":
        storage.get("scratch-object")                # the endpoint is blackholed by now
    else:
        time.sleep(300)

def test_after(storage):
    storage.put("after", b"never")
'''


def s3_client(endpoint):
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint.url, aws_access_key_id=endpoint.access_key,
        aws_secret_access_key=endpoint.secret_key, region_name=endpoint.region,
        config=Config(retries={"total_max_attempts": 1}, s3={"addressing_style": "path"}))


@pytest.fixture(scope="module")
def moto():
    with EmbeddedS3(bucket="interrupts") as endpoint:
        yield endpoint


def _interruptible() -> None:
    """In the child before exec: SIGINT back to its default, as a terminal's foreground job has
    it. A test run started in the background (``&``, nohup, some CI runners) inherits SIGINT
    ignored, and a Python started so rightly ignores Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Session:
    """A pytest session of SUITE in a subprocess, in its own process group as a terminal's
    foreground job is (a Ctrl-C goes to the whole group)."""

    def __init__(self, tmp_path: Path, args: list[str], env: dict[str, str] | None = None, hang: str = "sleep",
                 suite: str = SUITE):
        self.dir = tmp_path
        (tmp_path / "test_suite.py").write_text(suite)
        self.ready, self.go = tmp_path / "ready", tmp_path / "go"
        self.document = tmp_path / "out.json"
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "IOBENCH_"))}
        environ.update(env or {}, IOBENCH_TEST_READY=str(self.ready), IOBENCH_TEST_GO=str(self.go),
                       IOBENCH_TEST_HANG=hang)
        self.output = open(tmp_path / "output.txt", "w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "-v", "test_suite.py",
             f"--iobench-json={self.document}", *args],
            cwd=tmp_path, env=environ, stdout=self.output, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_interruptible)

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready.exists():
            assert self.process.poll() is None, self.text()
            assert time.monotonic() < deadline, self.text()
            time.sleep(0.05)

    def signal_group(self, sig: int) -> float:
        """Send ``sig`` to the session's process group; returns how long it took to end."""
        started = time.monotonic()
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            pytest.fail(f"the session did not end within 120 s of {signal.Signals(sig).name}:\n{self.text()}")
        return time.monotonic() - started

    def text(self) -> str:
        self.output.flush()
        return (self.dir / "output.txt").read_text()

    def result(self) -> dict:
        assert self.document.exists(), self.text()
        return json.loads(self.document.read_text())


def outcomes(document: dict) -> dict[str, str]:
    return {t["id"].split("::")[-1].split("[")[0]: t["outcome"] for t in document["tests"]}


@pytest.mark.parametrize("library", ["s3dlio", "minio", "boto3"])
def test_sigint_ends_a_blackholed_session_promptly(moto, tmp_path, library):
    """The endpoint stops answering mid-test (the fault proxy's blackhole), with a 300 s op timeout
    so that only the signal can end the wait: the session ends within 10 s of Ctrl-C, the
    document is written and marked interrupted, and the later test is not run (no cascade of
    failures)."""
    with FaultProxy(moto.url) as proxy:
        session = Session(tmp_path, [
            "--iobench-storage=s3", f"--iobench-libraries={library}", f"--iobench-s3-endpoint={proxy.url}",
            "--iobench-bucket=interrupts", "--iobench-op-timeout=300"],
            env={"AWS_ACCESS_KEY_ID": moto.access_key, "AWS_SECRET_ACCESS_KEY": moto.secret_key}, hang="storage")
        session.wait_ready()
        proxy.set_profile(BLACKHOLE)
        session.go.touch()
        time.sleep(1.0)  # the get is waiting for an answer
        took = session.signal_group(signal.SIGINT)
    assert took < PROMPT, session.text()
    document = session.result()
    assert document["run"]["interrupted"] == "SIGINT"
    assert document["run"]["exit_status"] == 2 == session.process.returncode
    assert outcomes(document) == {"test_before": "passed", "test_hangs": "incomplete"}, session.text()
    assert session.text().count("\n") < 400, "an interrupt is a short report, not pages of tracebacks"


def test_sigint_on_the_embedded_endpoint_is_one_interrupt_not_a_cascade(tmp_path):
    """Ctrl-C reaches the whole process group: the embedded moto server (in a session of its own)
    must stay up for the cleanup, and the session must end as interrupted, not go on failing."""
    session = Session(tmp_path, ["--iobench-storage=s3", "--iobench-libraries=boto3"])
    session.wait_ready()
    session.go.touch()
    took = session.signal_group(signal.SIGINT)
    assert took < PROMPT, session.text()
    document = session.result()
    assert document["run"]["interrupted"] == "SIGINT"
    assert outcomes(document) == {"test_before": "passed", "test_hangs": "incomplete"}, session.text()
    text = session.text()
    assert "failed" not in text.splitlines()[-1] and "cleanup failed" not in text, text


def test_sigterm_cleans_the_scratch_area_and_temporary_files(tmp_path):
    """SIGTERM (what CI sends to cancel a job): the document is written, marked SIGTERM; the
    scratch area and every temporary file of the session's writers are gone."""
    root = tmp_path / "root"
    session = Session(tmp_path, ["--iobench-storage=local", "--iobench-libraries=posix", f"--iobench-root={root}"])
    session.wait_ready()
    assert list(root.glob("iobench-run-*")) and list(root.rglob(f"*{TEMP_MARKER}*"))
    session.go.touch()
    took = session.signal_group(signal.SIGTERM)
    assert took < PROMPT, session.text()
    document = session.result()
    assert document["run"]["interrupted"] == "SIGTERM" and session.process.returncode == 2
    assert outcomes(document) == {"test_before": "passed", "test_hangs": "incomplete"}
    assert list(root.glob("iobench-run-*")) == [], session.text()
    assert list(root.rglob(f"*{TEMP_MARKER}*")) == [], session.text()


def test_sigterm_aborts_our_multipart_uploads(moto, tmp_path):
    session = Session(tmp_path, [
        "--iobench-storage=s3", "--iobench-libraries=boto3", f"--iobench-s3-endpoint={moto.url}",
        "--iobench-bucket=interrupts/sigterm"],
        env={"AWS_ACCESS_KEY_ID": moto.access_key, "AWS_SECRET_ACCESS_KEY": moto.secret_key})
    session.wait_ready()
    s3 = s3_client(moto)
    assert s3.list_multipart_uploads(Bucket="interrupts", Prefix="sigterm/").get("Uploads")
    session.go.touch()
    took = session.signal_group(signal.SIGTERM)
    assert took < PROMPT, session.text()
    assert session.result()["run"]["interrupted"] == "SIGTERM"
    assert not s3.list_multipart_uploads(Bucket="interrupts", Prefix="sigterm/iobench-run-").get("Uploads"), \
        session.text()
    scratch = s3.list_objects_v2(Bucket="interrupts", Prefix="sigterm/iobench-run-").get("Contents", [])
    assert scratch == [], session.text()


NEXT_SUITE = '''
def test_next(storage):
    storage.put("next", b"ok")
'''


def next_session(tmp_path: Path, args: list[str], env: dict[str, str] | None = None) -> str:
    directory = tmp_path / "next"
    directory.mkdir()
    (directory / "test_next.py").write_text(NEXT_SUITE)
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "IOBENCH_"))}
    environ.update(env or {})
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_next.py", *args],
                            cwd=directory, env=environ, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_what_a_sigkill_left_on_local_files_the_next_session_removes(tmp_path):
    root = tmp_path / "root"
    session = Session(tmp_path, ["--iobench-storage=local", "--iobench-libraries=posix", f"--iobench-root={root}"])
    session.wait_ready()
    session.signal_group(signal.SIGKILL)
    (root / "iobench-run-foreign-name").mkdir()  # not an area of ours by its record: kept
    (root / "iobench-datasets" / "train" / "mine.npz").write_bytes(b"another tool's file")
    left = sorted(p.name for p in root.glob("iobench-run-*"))
    temps = list(root.rglob(f"*{TEMP_MARKER}*"))
    assert len(left) == 3 and len(temps) == 2, left  # its area and the area's owner record, and ours
    out = next_session(tmp_path, ["--iobench-storage=local", "--iobench-libraries=posix", f"--iobench-root={root}"])
    assert "iobench: removed 2 leftovers of sessions that were killed" in out, out
    assert sorted(p.name for p in root.glob("iobench-run-*")) == ["iobench-run-foreign-name"]
    assert list(root.rglob(f"*{TEMP_MARKER}*")) == []
    assert (root / "iobench-datasets" / "train" / "mine.npz").read_bytes() == b"another tool's file"


def test_what_a_sigkill_left_on_s3_the_next_session_removes(moto, tmp_path):
    args = ["--iobench-storage=s3", "--iobench-libraries=boto3", f"--iobench-s3-endpoint={moto.url}",
            "--iobench-bucket=interrupts/sigkill"]
    env = {"AWS_ACCESS_KEY_ID": moto.access_key, "AWS_SECRET_ACCESS_KEY": moto.secret_key}
    session = Session(tmp_path, args, env=env)
    session.wait_ready()
    session.signal_group(signal.SIGKILL)
    s3 = s3_client(moto)
    s3.put_object(Bucket="interrupts", Key="sigkill/unrelated/object", Body=b"not ours")
    assert s3.list_multipart_uploads(Bucket="interrupts", Prefix="sigkill/iobench-run-").get("Uploads")
    assert s3.list_objects_v2(Bucket="interrupts", Prefix="sigkill/iobench-run-").get("Contents")
    next_session(tmp_path, args, env)
    assert not s3.list_multipart_uploads(Bucket="interrupts", Prefix="sigkill/iobench-run-").get("Uploads")
    assert not s3.list_objects_v2(Bucket="interrupts", Prefix="sigkill/iobench-run-").get("Contents")
    assert s3.get_object(Bucket="interrupts", Key="sigkill/unrelated/object")["Body"].read() == b"not ours"


MPI_SUITE = '''
import os
from pytest_iobench.mpi.launch import launch

def test_ranks(iobench_record):
    open(os.environ["IOBENCH_TEST_READY"], "w").close()
    launch("sleeper", [], 2, timeout=600)
'''

SLEEPER = '''
import os, time
with open(f"rank-pid-{os.getpid()}", "w"):
    pass
time.sleep(600)
'''


def test_sigint_during_a_multi_rank_run_ends_its_ranks(tmp_path):
    """mpiexec and its ranks run in a session of their own (a hung run is ended as a group);
    an interrupted session ends that group too instead of leaving the ranks running."""
    (tmp_path / "sleeper.py").write_text(SLEEPER)
    session = Session(tmp_path, [], suite=MPI_SUITE)
    session.wait_ready()
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("rank-pid-*"))) < 2:
        assert time.monotonic() < deadline and session.process.poll() is None, session.text()
        time.sleep(0.1)
    took = session.signal_group(signal.SIGINT)
    assert took < PROMPT, session.text()
    assert session.result()["run"]["interrupted"] == "SIGINT"
    pids = [int(p.name.rsplit("-", 1)[1]) for p in tmp_path.glob("rank-pid-*")]
    time.sleep(0.5)
    alive = [pid for pid in pids if os.path.exists(f"/proc/{pid}") and
             Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"]
    for pid in alive:  # ours: started by this test's session
        os.kill(pid, signal.SIGKILL)
    assert alive == [], f"ranks still running after the session ended: {alive}"
