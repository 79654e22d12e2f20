"""The fault-injecting proxy on its own: real sockets, the embedded moto server behind it, boto3
(with no retries, so every fault reaches the test) in front."""

from __future__ import annotations

import socket
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

from pytest_iobench.storage.endpoint import EmbeddedS3
from pytest_iobench.storage.faultproxy import BLOCK, FaultProxy, Profile, parse_profile


@pytest.fixture(scope="module")
def moto():
    with EmbeddedS3(bucket="proxied") as endpoint:
        yield endpoint


def client(endpoint, url: str, read_timeout: float = 5.0):
    return boto3.session.Session().client(
        "s3", endpoint_url=url, aws_access_key_id=endpoint.access_key, aws_secret_access_key=endpoint.secret_key,
        region_name=endpoint.region,
        config=Config(connect_timeout=2, read_timeout=read_timeout, retries={"total_max_attempts": 1},
                      s3={"addressing_style": "path"}))


def outcome(call) -> str:
    try:
        call()
        return "pass"
    except ClientError as exc:
        return exc.response["Error"]["Code"]
    except (ConnectionClosedError, EndpointConnectionError) as exc:
        return "reset" if "reset" in str(exc).lower() or isinstance(exc, ConnectionClosedError) else str(exc)
    except ReadTimeoutError:
        return "timeout"


def test_profiles_parse_as_resilience_suites_name_them():
    assert parse_profile("throttle-10%,reset-5%,slow-20ms,seed-7") == Profile(throttle=0.1, reset=0.05, delay_ms=20,
                                                                               seed=7)
    assert parse_profile("blackout-3s") == Profile(blackout_s=3)
    assert parse_profile("blackhole,after-2") == Profile(blackhole=1.0, after=2)
    assert parse_profile("pass") == Profile()
    with pytest.raises(ValueError, match="'throttle-x' is not a fault; valid: throttle-N%"):
        parse_profile("throttle-x")
    with pytest.raises(ValueError, match="add up to more than 100 %"):
        parse_profile("throttle-60%,reset-50%")


def test_the_upstream_must_be_on_loopback():
    with pytest.raises(ValueError, match="not on loopback"):
        FaultProxy("http://192.0.2.1:9000")


def test_requests_pass_through_unchanged(moto):
    with FaultProxy(moto.url) as proxy:
        s3 = client(moto, proxy.url)
        s3.put_object(Bucket="proxied", Key="k", Body=b"x" * 100_000)
        assert s3.get_object(Bucket="proxied", Key="k")["Body"].read() == b"x" * 100_000
        assert s3.head_object(Bucket="proxied", Key="k")["ContentLength"] == 100_000
    assert proxy.stats["requests"] == proxy.stats["pass"] == 3


def test_rates_are_exact_and_reproducible(moto):
    """In a block of BLOCK requests exactly the rate's share is faulted; the same seed faults
    the same requests."""
    client(moto, moto.url).put_object(Bucket="proxied", Key="small", Body=b"abc")
    runs = []
    for seed in (1, 1, 2):
        with FaultProxy(moto.url, Profile(throttle=0.1, reset=0.05, seed=seed)) as proxy:
            s3 = client(moto, proxy.url)
            runs.append([outcome(lambda s3=s3: s3.head_object(Bucket="proxied", Key="small")) for _ in range(BLOCK)])
        assert proxy.stats["throttle"] == 10 and proxy.stats["reset"] == 5 and proxy.stats["pass"] == 85
    first, again, other = runs
    assert first.count("503") == 10 and first.count("reset") == 5 and first.count("pass") == 85, first
    assert first == again
    assert first != other


def test_throttled_uploads_get_slow_down_and_the_body_is_read(moto):
    """A throttled PUT with a body (boto3 sends large ones with Expect: 100-continue) reads 503
    SlowDown, not a reset."""
    with FaultProxy(moto.url, parse_profile("throttle-100%")) as proxy:
        s3 = client(moto, proxy.url)
        for size in (10, 4 << 20):
            with pytest.raises(ClientError) as info:
                s3.put_object(Bucket="proxied", Key="t", Body=b"y" * size)
            assert info.value.response["Error"]["Code"] == "SlowDown"
            assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503


def test_blackhole_accepts_and_never_answers(moto):
    with FaultProxy(moto.url, Profile(blackhole=1.0, after=1)) as proxy:
        s3 = client(moto, proxy.url, read_timeout=1)
        assert outcome(lambda: s3.list_buckets()) == "pass"  # after-1: the first passes
        started = time.monotonic()
        assert outcome(lambda: s3.list_buckets()) == "timeout"
        assert time.monotonic() - started >= 1
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5):
            pass  # still accepting
    assert proxy.stats["blackhole"] == 1


def test_blackout_ends(moto):
    """Requests in the blackout get no answer; once its seconds have passed, they pass. The
    clients exist before the blackout starts, and the request after it waits as long as the
    endpoint takes, so a slow machine cannot move a request to the other side of the window."""
    with FaultProxy(moto.url) as proxy:
        silent = client(moto, proxy.url, read_timeout=0.3)  # a blackholed request never answers
        patient = client(moto, proxy.url, read_timeout=30)
        started = time.monotonic()
        proxy.set_profile(parse_profile("blackout-5s"))
        assert outcome(lambda: silent.list_buckets()) == "timeout"
        assert proxy.stats["blackhole"] == 1  # a blackout holds its requests as a blackhole does
        time.sleep(max(0.0, started + 5.5 - time.monotonic()))  # the blackout's clock began after `started`
        assert outcome(lambda: patient.list_buckets()) == "pass"


def test_slow_delays_each_request(moto):
    with FaultProxy(moto.url, parse_profile("slow-300ms")) as proxy:
        s3 = client(moto, proxy.url)
        started = time.monotonic()
        s3.list_buckets()
        assert time.monotonic() - started >= 0.3
    assert proxy.stats["pass"] == 1


def test_stop_closes_held_connections_and_the_lifetime_stops_it(moto):
    proxy = FaultProxy(moto.url, Profile(blackhole=1.0), lifetime=0.5).start()
    held = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    held.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert held.recv(10) == b""  # closed when its lifetime ran out, without anyone calling stop()
    held.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2).close()


# -- a reply lost on the way back: the write took effect, the client saw a reset ------------------
def _storage_through(moto, proxy: FaultProxy, library: str, prefix: str):
    from pytest_iobench.storage.registry import StorageSpec, open_storage
    from pytest_iobench.storage.s3common import S3Endpoint

    pytest.importorskip(library)
    spec = StorageSpec("s3", library, bucket="proxied", prefix=prefix, endpoint_url=proxy.url, op_timeout=30.0)
    return open_storage(spec, S3Endpoint(proxy.url, moto.access_key, moto.secret_key, moto.region))


def test_lost_parses_and_takes_its_share():
    assert parse_profile("lost-5%").counts()["lost"] == 5
    assert parse_profile("lost").lost == 1.0
    with pytest.raises(ValueError, match="add up to more than 100"):
        parse_profile("lost-60%,throttle-50%")


@pytest.mark.parametrize("library", ["boto3", "minio"])
def test_a_put_whose_reply_was_lost_is_retried_and_stored_once(moto, library):
    from pytest_iobench.storage.endpoint import open_uploads

    data = bytes(range(256)) * 40
    with FaultProxy(moto.url) as proxy:
        storage = _storage_through(moto, proxy, library, f"lost-put-{library}")
        proxy.lose_next("PUT", "/small")
        storage.put("small", data)
        assert proxy.stats["lost"] == 1  # the fault really happened: the PUT arrived, its reply did not
        assert bytes(storage.get("small")) == data
        assert open_uploads(moto, "proxied", f"lost-put-{library}/") == []
        storage.close()


@pytest.mark.parametrize("library", ["boto3", "minio"])
def test_a_complete_whose_reply_was_lost_leaves_the_object_and_no_upload(moto, library):
    from pytest_iobench.storage.endpoint import open_uploads

    data = (bytes(range(251)) * ((9 << 20) // 251 + 1))[:(9 << 20) + 123]  # two parts with every library
    with FaultProxy(moto.url) as proxy:
        storage = _storage_through(moto, proxy, library, f"lost-complete-{library}")
        proxy.lose_next("POST", "uploadId=")
        with storage.open_writer("big") as writer:
            writer.write(data)
        assert proxy.stats["lost"] == 1
        assert storage.stat("big").size == len(data)
        assert bytes(storage.get("big")) == data
        assert open_uploads(moto, "proxied", f"lost-complete-{library}/") == []
        storage.close()
