"""The generation lease kept in the storage: one holder at a time on every library (a conditional
put where the endpoint has one, write-then-verify otherwise), a dead owner's lease taken over
once expired, and two real pytest processes on one local root and on one bucket generating a
dataset once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from pytest_iobench.storage.endpoint import EmbeddedS3
from pytest_iobench.storage.lease import LEASE_KIND, Lease

LIBRARIES = [("local", "posix"), ("s3", "boto3"), ("s3", "minio"), ("s3", "s3dlio")]


@pytest.fixture
def area(request, storage_factory, tmp_path):
    kind, library = request.param
    base = storage_factory.get(kind, library)
    return storage_factory.at(base, f"lease-{library}-{tmp_path.name}")


@pytest.mark.parametrize("area", LIBRARIES, indirect=True, ids=lambda p: "-".join(p))
def test_one_holder_at_a_time(area):
    inside, most, log = [0], [0], []
    lock = threading.Lock()

    def contend(n: int) -> None:
        with Lease(area, "iobench-lease.json", ttl=10, poll=0.05) as lease:
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            log.append(lease.owner)
            time.sleep(0.2)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1 and len(set(log)) == 4
    assert "iobench-lease.json" not in area.list("")  # given back


@pytest.mark.parametrize("area", [("local", "posix"), ("s3", "boto3"), ("s3", "minio")], indirect=True,
                         ids=lambda p: "-".join(p))
def test_the_atomic_create_refuses_a_second_owner(area):
    assert area.put_if_absent("l.json", b"first") is True
    assert area.put_if_absent("l.json", b"second") is False  # moto honours If-None-Match: *
    assert bytes(area.get("l.json")) == b"first"


@pytest.mark.parametrize("area", [("local", "posix"), ("s3", "s3dlio")], indirect=True, ids=lambda p: "-".join(p))
def test_a_dead_owners_lease_is_taken_over_once_expired_not_before(area):
    dead = {"kind": LEASE_KIND, "owner": "elsewhere:4242:dead", "host": "elsewhere", "pid": 4242,
            "what": "generating", "ttl": 3.0, "expires": time.time() + 3.0}
    area.put("iobench-lease.json", json.dumps(dead).encode())
    with pytest.raises(TimeoutError, match=r"held by elsewhere:4242:dead .generating."):
        Lease(area, "iobench-lease.json", poll=0.05).acquire(timeout=0.3)
    lease = Lease(area, "iobench-lease.json", poll=0.05).acquire(timeout=30)
    try:
        # taken over, and not before the dead owner's lease expired
        assert lease.took_over == "elsewhere:4242:dead" and time.time() >= dead["expires"]
    finally:
        lease.release()


def test_a_held_lease_is_renewed_past_its_ttl(tmp_path, storage_factory):
    area = storage_factory.at(storage_factory.get("local", "posix"), f"renew-{tmp_path.name}")
    with Lease(area, "l.json", ttl=2.0):
        time.sleep(4.5)  # past two lifetimes: renewed meanwhile, so nobody may take it
        with pytest.raises(TimeoutError):
            Lease(area, "l.json", poll=0.05).acquire(timeout=0.5)


# -- two sessions -------------------------------------------------------------------------------
SESSION_TEST = """
import json, os, time

SPEC = {"format": "npy", "num_files_train": 24, "record_length_bytes": 1 << 20}


def test_dataset(dataset_factory, storage):
    # both sessions ask at the same moment: each waits until the other is here
    meet = os.environ["MEET"]
    open(os.path.join(meet, os.environ["WHO"]), "w").close()
    deadline = time.monotonic() + 120
    while len(os.listdir(meet)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    ds = dataset_factory(SPEC, storage)
    with open(os.environ["OUT"], "a") as out:
        out.write(json.dumps(ds.describe()) + "\\n")
    assert len(ds.storage.list("train/")) == 24
"""


def run_two_sessions(tmp_path, args: list[str], env: dict[str, str]) -> list[dict]:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "test_two.py").write_text(SESSION_TEST)
    (tmp_path / "meet").mkdir()
    out = tmp_path / "out.jsonl"
    procs = []
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "IOBENCH_", "PYTEST_"))}
    for who in ("a", "b"):
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "pytest_iobench.plugin",
             "--iobench-json", str(tmp_path / f"{who}.json"), *args, "test_two.py"],
            cwd=tmp_path / "t", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env={**base, **env, "MEET": str(tmp_path / "meet"), "WHO": who, "OUT": str(out)}))
    outputs = [p.communicate(timeout=300)[0].decode() for p in procs]
    for p, text in zip(procs, outputs):
        assert p.returncode == 0, text
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_two_sessions_on_one_local_root_generate_once(tmp_path):
    root = tmp_path / "root"
    done = run_two_sessions(tmp_path, ["--iobench-storage=local", "--iobench-libraries=posix",
                                       f"--iobench-root={root}"], {})
    assert sorted(d["action"] for d in done) == ["generated", "reused"], done
    assert len({d["where"] for d in done}) == 1
    reused = next(d for d in done if d["action"] == "reused")
    assert reused["waited_seconds"] > 0 and reused["verification"]["files"] == 24  # waited, then checked


@pytest.mark.parametrize("library", ["boto3", "s3dlio"])
def test_two_sessions_on_one_bucket_generate_once(tmp_path, library):
    with EmbeddedS3(bucket="shared") as endpoint:
        env = {"AWS_ACCESS_KEY_ID": endpoint.access_key, "AWS_SECRET_ACCESS_KEY": endpoint.secret_key}
        done = run_two_sessions(tmp_path, ["--iobench-storage=s3", f"--iobench-libraries={library}",
                                           f"--iobench-s3-endpoint={endpoint.url}", "--iobench-bucket=shared/ci"],
                                env)
    assert sorted(d["action"] for d in done) == ["generated", "reused"], done
    assert len({d["where"] for d in done}) == 1 and done[0]["where"].startswith("s3://shared/ci/")
