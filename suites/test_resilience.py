"""Resilience: each workload step through a fault-injecting proxy in front of the S3 endpoint
under test, per fault profile and library; what completes, what it costs, what was retried.

    pytest suites/test_resilience.py --iobench-storage=s3
    pytest suites/test_resilience.py --iobench-storage=s3 --iobench-s3-endpoint=http://127.0.0.1:9000 --iobench-bucket=b

The proxy (storage/faultproxy.py) runs on 127.0.0.1 in front of the endpoint (the embedded one,
or one given on loopback). A case runs one step (workload/resilience.py) through it, the same
step having run without faults first in the same session: its record holds whether it completed,
the wall-time slowdown against that clean run, the faults the proxy injected, the retries the
library counted, and the bytes verified. At 10 % throttling and 5 % resets every step must
complete with every byte verified; under the harder profiles a step may instead fail, with one
clear line, within CASE_DEADLINE. A hang or a wrong byte fails the case. docs/resilience.md
says how to read the figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from pytest_iobench.storage import retry
from pytest_iobench.storage.faultproxy import FaultProxy, parse_profile
from pytest_iobench.storage.registry import StorageSpec
from pytest_iobench.storage.s3common import S3Endpoint
from pytest_iobench.workload.resilience import STEPS, NotVerified, run_step

#: profile id -> the proxy's profile (seeded: a run injects the same faults at the same requests)
PROFILES = {
    "throttle-10": "throttle-10%,seed-1",
    "throttle-30": "throttle-30%,seed-2",
    "reset-5": "reset-5%,seed-3",
    "slow-200ms": "slow-200ms",
    "blackout-5s": "blackout-5s",
}
#: profiles at which every step of every library must complete
MUST_COMPLETE = ("throttle-10", "reset-5")
#: the steps a profile runs, where not every one: a delay and a blackout act on time, not on
#: which request comes, so one read step and one write step (a multipart upload) show what they
#: do; per-request faults (throttling, resets) run every step, each of its requests a target
TIME_PROFILE_STEPS = {"slow-200ms": ("training-read", "checkpoint-write"),
                      "blackout-5s": ("training-read", "checkpoint-write")}
#: s3torchconnector is optional (extra s3torch): its cases skip with the reason when it is not installed
LIBRARIES = ("s3dlio", "minio", "boto3", "s3torchconnector")
#: the steps' own deadline per operation: a silent request is retried after OP_TIMEOUT / 3
OP_TIMEOUT = 9.0
#: the longest a case may take, completed or failed: more is a hang (a bound, not a speed figure)
CASE_DEADLINE = 120.0


@pytest.fixture(scope="module")
def endpoint(pytestconfig, storage_factory):
    """The S3 endpoint under test and the bucket and prefix the suite works in."""
    from pytest_iobench.plugin.options import get_settings

    settings = get_settings(pytestconfig)
    if "s3" not in settings.storage:
        pytest.skip("the resilience suite runs on S3: --iobench-storage=s3")
    storage_factory.get("s3", "boto3")  # claims the session's scratch area: cleaned at its end
    spec = storage_factory.spec("s3", "boto3")
    return storage_factory.endpoint(), spec


@pytest.fixture(scope="module")
def proxies(endpoint):
    """One fault proxy per library, passing everything until a case sets its profile."""
    upstream, _ = endpoint
    started: dict[str, FaultProxy] = {}
    yield lambda library: started.setdefault(library, FaultProxy(upstream.url).start())
    for proxy in started.values():
        proxy.stop()


def _run(library: str, step: str, proxy: FaultProxy, endpoint, area: str, prepared: bool) -> dict:
    upstream, scratch = endpoint
    spec = StorageSpec("s3", library, bucket=scratch.bucket, prefix=scratch.prefix + "/resilience",
                       endpoint_url=proxy.url, region=scratch.region, op_timeout=OP_TIMEOUT,
                       retries=scratch.retries, backoff=scratch.backoff)
    faulty = S3Endpoint(proxy.url, upstream.access_key, upstream.secret_key, upstream.region)
    if library != "s3dlio":
        before = retry.COUNTS.snapshot()
        try:
            out = {"ok": True, **run_step(step, spec, faulty, upstream, area, prepared)}
        except NotVerified:
            raise
        except Exception as exc:
            out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        out["storage_ops"] = retry.COUNTS.since(before)
        return out
    # s3dlio binds one endpoint per process: its steps run in a child (one for every case)
    request = {"spec": spec.to_dict(), "step": step, "area": area, "prepared": prepared,
               "faulty": proxy.url, "clean": upstream.url, "access_key": upstream.access_key,
               "secret_key": upstream.secret_key}
    out = s3dlio_child(request)
    if not out["ok"] and out["error"].startswith("NotVerified"):
        raise NotVerified(out["error"])
    return out


class _Child:
    """The s3dlio child: a request a line in, an outcome a line out; killed past CASE_DEADLINE
    (a hang fails the case, it does not hang the suite)."""

    def __init__(self):
        self.proc: subprocess.Popen | None = None

    def __call__(self, request: dict) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, "-m", "pytest_iobench.workload.resilience"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        timer = threading.Timer(CASE_DEADLINE, self.proc.kill)
        timer.start()
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        finally:
            timer.cancel()
        if not line:
            raise AssertionError(f"the s3dlio child ended (status {self.proc.wait()}) without an answer")
        return json.loads(line)

    def close(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


s3dlio_child = _Child()


@pytest.fixture(scope="module", autouse=True)
def _end_the_child():
    yield
    s3dlio_child.close()


@pytest.fixture(scope="module")
def clean_runs(endpoint, proxies):
    """Each (library, step) without faults, once per session, before its faulty cases: it also
    writes what the step reads."""
    done: dict[tuple[str, str], dict] = {}

    def clean(library: str, step: str) -> dict:
        if (library, step) not in done:
            proxy = proxies(library)
            proxy.set_profile(parse_profile("pass"))
            out = _run(library, step, proxy, endpoint, f"{library}-{step}", prepared=False)
            assert out["ok"], f"{library} {step} without faults failed: {out['error']}"
            done[library, step] = out
        return done[library, step]

    return clean


CASES = [pytest.param(profile, library, step, id=f"{profile}-{library}-{step}")
         for profile in PROFILES for library in LIBRARIES
         for step in TIME_PROFILE_STEPS.get(profile, STEPS)]


@pytest.mark.parametrize(("profile", "library", "step"), CASES)
def test_resilience(profile, library, step, endpoint, proxies, clean_runs, iobench_record):
    iobench_record.kind = "read" if step.endswith("read") else "checkpoint" if "checkpoint" in step else "generate"
    pytest.importorskip(library)
    clean = clean_runs(library, step)
    proxy = proxies(library)
    proxy.set_profile(parse_profile(PROFILES[profile]))
    before = dict(proxy.stats)
    started = time.monotonic()
    try:
        out = _run(library, step, proxy, endpoint, f"{library}-{step}", prepared=True)
    finally:
        proxy.set_profile(parse_profile("pass"))
    wall = time.monotonic() - started
    injected = {k: proxy.stats.get(k, 0) - before.get(k, 0) for k in ("requests", "throttle", "reset", "blackhole")}
    iobench_record.details["resilience"] = {
        "profile": PROFILES[profile], "completed": out["ok"], "error": out.get("error", ""),
        "injected": injected, "clean_seconds": clean["seconds"], "wall_seconds": wall,
    }
    if library == "s3dlio":  # the child's counts: s3dlio's requests and failures, its checking library's
        ops = out["storage_ops"]
        if "s3dlio" in ops:  # its attempts, as its proxy (carrying its requests only) saw them
            ops["s3dlio"] = retry.seen_on_the_wire(
                ops["s3dlio"], attempts=injected["requests"], throttles=injected["throttle"],
                resets=injected["reset"] + injected.get("lost", 0), timeouts=injected["blackhole"],
                completed=out["ok"])
        iobench_record.storage_ops = ops
    assert wall < CASE_DEADLINE, f"{step} through {profile} took {wall:.0f} s: past the case's deadline"
    if not out["ok"]:
        if profile in MUST_COMPLETE:
            pytest.fail(f"{library} {step} did not complete through {profile}: {out['error']}", pytrace=False)
        assert "\n" not in out["error"].strip(), "a failure is one line"
        iobench_record.warn(f"did not complete through {profile}: {out['error']}")
        return
    iobench_record.metric("slowdown", out["seconds"] / clean["seconds"], "x", "lower")
    iobench_record.metric("verified_bytes", out["verified_bytes"], "B", "none")
    iobench_record.metric("faults_injected", injected["throttle"] + injected["reset"] + injected["blackhole"],
                          "requests", "none")
    assert out["verified_bytes"] == clean["verified_bytes"] > 0
