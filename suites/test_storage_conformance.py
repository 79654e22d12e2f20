"""Storage conformance: every storage x library behaves as the storage interface promises.

Run for each (storage, library) the session selects, e.g.
    pytest suites/test_storage_conformance.py --iobench-storage=local,direct,s3
Every failure message starts with the storage id (``s3-minio``) and the operation.
"""

from __future__ import annotations

import os
import threading
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from pytest_iobench.data.random import stream_for
from pytest_iobench.storage import StorageError, StorageNotFound, open_storage
from pytest_iobench.storage.posix import TEMP_MARKER, resident_pages
from pytest_iobench.storage.s3common import PART_BUDGET, PART_SIZE

MiB = 1 << 20
SEED = 20261125


@pytest.fixture
def space(storage):
    """A fresh key prefix for one test; whatever the test leaves there is deleted after it."""
    prefix = f"conformance-{uuid.uuid4().hex[:10]}"
    yield prefix
    storage.delete_prefix(prefix + "/")


@pytest.fixture(autouse=True)
def _kind(iobench_record):
    iobench_record.kind = "conformance"


def payload(size: int, salt: int = 0) -> bytes:
    return stream_for(SEED, size, salt, limit=size).read(size)


def where(storage, op: str, key: str) -> str:
    return f"{storage.id}: {op} {key!r}"


@pytest.mark.parametrize("size", [0, 1, 4095, MiB + 3], ids=["0B", "1B", "4095B", "1MiB+3"])
def test_put_get_round_trip(storage, space, size):
    key = f"{space}/object-{size}"
    data = payload(size)
    storage.put(key, data)
    got = bytes(storage.get(key))
    assert len(got) == size, f"{where(storage, 'get', key)} returned {len(got)} bytes, put {size}"
    assert got == data, f"{where(storage, 'get', key)} returned different bytes than were put"
    assert storage.stat(key).size == size, f"{where(storage, 'stat', key)} size differs from {size}"


def test_streaming_writer_64mib(storage, space):
    """64 MiB through the streaming writer (multipart on S3), in uneven pieces."""
    size = 64 * MiB
    key = f"{space}/streamed"
    source = stream_for(SEED, "streamed", limit=size)
    expected_crc = 0
    pieces = [MiB + 3, 7 * MiB, 5, 3 * MiB - 1]
    written = 0
    with storage.open_writer(key) as writer:
        i = 0
        while written < size:
            n = min(pieces[i % len(pieces)], size - written)
            chunk = source.read(n)
            expected_crc = zlib.crc32(chunk, expected_crc)
            writer.write(chunk)
            written += n
            i += 1
    assert storage.stat(key).size == size, f"{where(storage, 'stat', key)} after streaming {size} bytes"
    got = storage.get(key)
    assert len(got) == size, f"{where(storage, 'get', key)} returned {len(got)} of {size} bytes"
    assert zlib.crc32(got) == expected_crc, f"{where(storage, 'get', key)}: content differs from what was streamed"


def test_aborted_writer_leaves_nothing(storage, space):
    key = f"{space}/aborted"
    with pytest.raises(RuntimeError, match="simulated failure"):
        with storage.open_writer(key) as writer:
            writer.write(payload(9 * MiB))  # past one S3 part: a multipart upload is under way
            raise RuntimeError("simulated failure")
    assert storage.list(space + "/") == [], f"{where(storage, 'list', space)}: an aborted write left objects"
    with pytest.raises(StorageNotFound):
        storage.stat(key)


@pytest.mark.parametrize(
    "offset,length,expect",
    [
        (0, 100, slice(0, 100)),
        (5000, 4096, slice(5000, 9096)),
        (10_000 - 10, 10, slice(9990, 10_000)),
        (9_990, 100, slice(9990, 10_000)),
        (10_000, 10, slice(0, 0)),
        (50_000, 10, slice(0, 0)),
        (123, 0, slice(0, 0)),
    ],
    ids=["start", "middle", "end", "across-end", "at-end", "past-end", "zero-length"],
)
def test_get_range(storage, space, offset, length, expect):
    key = f"{space}/ranged"
    data = payload(10_000)
    storage.put(key, data)
    got = bytes(storage.get_range(key, offset, length))
    assert got == data[expect], (
        f"{where(storage, 'get_range', key)} offset {offset} length {length}: "
        f"got {len(got)} bytes, expected {len(data[expect])}"
    )


def test_get_range_missing_key(storage, space):
    key = f"{space}/missing"
    with pytest.raises(StorageNotFound):
        storage.get_range(key, 0, 10)


def test_list_nested_prefixes(storage, space):
    keys = [
        f"{space}/train/a/0.bin", f"{space}/train/a/1.bin", f"{space}/train/ab/2.bin",
        f"{space}/train/b/3.bin", f"{space}/valid/4.bin", f"{space}/top.bin",
    ]
    for i, key in enumerate(keys):
        storage.put(key, payload(10, i))
    cases = {
        f"{space}/": sorted(keys),
        f"{space}/train/": sorted(keys[:4]),
        f"{space}/train/a": sorted(keys[:3]),  # a string prefix: also train/ab/
        f"{space}/train/a/": sorted(keys[:2]),
        f"{space}/valid/4.bin": [keys[4]],
        f"{space}/nothing-here/": [],
        f"{space}/trainz": [],
    }
    for prefix, expected in cases.items():
        got = storage.list(prefix)
        assert got == expected, f"{where(storage, 'list', prefix)}: got {got}, expected {expected}"


def test_stat_size(storage, space):
    for size in (0, 17, 70_000):
        key = f"{space}/sized-{size}"
        storage.put(key, payload(size))
        info = storage.stat(key)
        assert info.size == size, f"{where(storage, 'stat', key)}: size {info.size}, expected {size}"
        assert info.key == key, f"{where(storage, 'stat', key)}: key {info.key!r}"


def test_overwrite(storage, space):
    key = f"{space}/overwritten"
    storage.put(key, payload(5000, 1))
    second = payload(300, 2)
    storage.put(key, second)
    assert bytes(storage.get(key)) == second, f"{where(storage, 'get', key)}: still the first content after overwrite"
    third = payload(2 * MiB + 1, 3)
    with storage.open_writer(key) as writer:
        writer.write(third)
    assert bytes(storage.get(key)) == third, f"{where(storage, 'get', key)}: streaming overwrite not visible"
    assert storage.list(space + "/") == [key], f"{where(storage, 'list', space)}: overwrite left extra objects"


def test_overwrite_with_another_size(storage, space):
    """A get returns what the last put wrote, whatever size an earlier get saw: objects of 32 MiB
    and more, the size from which s3dlio by default splits a get into ranges of a size it
    cached at its first get (it then returned the first 33 MiB of the 34 MiB object, and an
    InvalidRange error for the 32 MiB one)."""
    key = f"{space}/resized"
    for n, size in enumerate((33 * MiB, 34 * MiB, 32 * MiB)):
        data = payload(size, 10 + n)
        storage.put(key, data)
        got = storage.get(key)
        assert memoryview(got).nbytes == size, (
            f"{where(storage, 'get', key)}: {memoryview(got).nbytes} bytes after a put of {size}")
        assert bytes(got) == data, f"{where(storage, 'get', key)}: other bytes than the last put of {size}"


def test_delete_and_not_found(storage, space):
    key = f"{space}/doomed"
    storage.put(key, b"bye")
    storage.delete(key)
    assert storage.list(space + "/") == [], f"{where(storage, 'list', space)}: deleted key still listed"
    for op in ("get", "stat"):
        with pytest.raises(StorageNotFound) as info:
            getattr(storage, op)(key)
        err = info.value
        assert (err.op, err.key, err.library) == (op, key, storage.library), (
            f"{where(storage, op, key)}: error names {err.op!r}, {err.key!r}, {err.library!r}")
        assert storage.library in str(err) and key in str(err), f"{where(storage, op, key)}: message {err}"
        assert err.__cause__ is not None, f"{where(storage, op, key)}: the client's own error is not chained"
    storage.delete(key)  # deleting a missing key is not an error, as on S3


def test_delete_prefix(storage, space):
    for i in range(5):
        storage.put(f"{space}/gone/{i}", b"x")
    storage.put(f"{space}/kept", b"y")
    removed = storage.delete_prefix(f"{space}/gone/")
    assert removed == 5, f"{where(storage, 'delete_prefix', space + '/gone/')}: removed {removed}, expected 5"
    assert storage.list(space + "/") == [f"{space}/kept"], f"{where(storage, 'list', space)} after delete_prefix"


@pytest.mark.parametrize("name", ["with space.bin", "ünïcødé-ключ-键.bin", "mixed dir/naïve file (1).bin"])
def test_unusual_keys(storage, space, name):
    key = f"{space}/{name}"
    data = payload(1000, len(name))
    storage.put(key, data)
    assert bytes(storage.get(key)) == data, f"{where(storage, 'get', key)}: content differs"
    assert storage.list(space + "/") == [key], f"{where(storage, 'list', space)}: key not listed as written"
    assert storage.stat(key).size == 1000, f"{where(storage, 'stat', key)}"
    storage.delete(key)
    assert storage.list(space + "/") == [], f"{where(storage, 'delete', key)}: still listed"


@pytest.mark.parametrize("key", ["/leading", "trailing/", "a//b", "../escape", "a/./b", ""])
def test_invalid_keys_rejected(storage, key):
    with pytest.raises(StorageError) as info:
        storage.put(key, b"x")
    assert storage.library in str(info.value), f"{storage.id}: put {key!r}: error does not name the library"


def test_get_many_keeps_order(storage, space):
    keys = [f"{space}/many/{i:02d}" for i in range(12)]
    blobs = [payload(1000 + 37 * i, i) for i in range(12)]
    for key, blob in zip(keys, blobs):
        storage.put(key, blob)
    order = keys[::-1]
    got = storage.get_many(order, max_in_flight=4)
    assert [bytes(g) for g in got] == blobs[::-1], f"{where(storage, 'get_many', order[0])}: wrong content or order"


def test_sixteen_threads_put_and_get(storage, space):
    """16 threads put and get at once; every byte of every object is verified."""
    threads, rounds = 16, 4
    barrier = threading.Barrier(threads)
    failures = []

    def worker(t: int) -> int:
        barrier.wait()  # start together: the operations really overlap
        checked = 0
        for r in range(rounds):
            key = f"{space}/t{t:02d}/r{r}"
            data = payload(64 * 1024 + t * 997 + r, t * 100 + r)
            storage.put(key, data)
            got = bytes(storage.get(key))
            if got != data:
                failures.append(f"{where(storage, 'get', key)}: {len(got)} bytes, content differs from put")
            checked += len(got)
        return checked

    with ThreadPoolExecutor(threads) as pool:
        checked = sum(pool.map(worker, range(threads)))
    assert not failures, "\n".join(failures)
    assert len(storage.list(space + "/")) == threads * rounds, f"{where(storage, 'list', space)}: objects missing"
    assert checked == sum(64 * 1024 + t * 997 + r for t in range(threads) for r in range(rounds))


def test_list_of_a_missing_bucket_raises(storage, storage_factory):
    if storage.kind != "s3":
        pytest.skip("buckets are S3's; a directory not made yet lists as []")
    missing = replace(storage.spec, bucket=f"iobench-missing-{uuid.uuid4().hex[:12]}")
    other = open_storage(missing, storage_factory.endpoint())
    try:
        with pytest.raises(StorageNotFound) as info:
            other.list("")
    finally:
        other.close()
    err = info.value
    assert (err.op, err.library) == ("list", storage.library), f"{storage.id}: list of a missing bucket: {err}"
    assert err.__cause__ is not None, f"{storage.id}: list: the client's own error is not chained"


def test_put_is_one_request(storage, storage_factory, space):
    """``put`` of an object S3 takes in one PUT sends it so with every library (the libraries'
    put figures compare the same requests): its ETag is an MD5, not a multipart upload's
    ``<md5>-<parts>`` (the minio SDK makes anything over 5 MiB a multipart upload by itself)."""
    if storage.kind != "s3":
        pytest.skip("requests are S3's")
    if storage.library == "s3torchconnector":
        pytest.skip("s3torchconnector has no single PUT: its S3Writer is always a multipart upload (docs/s3.md)")
    import boto3

    key = f"{space}/whole"
    storage.put(key, payload(12 * MiB, 4))
    endpoint = storage_factory.endpoint()
    client = boto3.session.Session().client(
        "s3", endpoint_url=endpoint.urls[0], aws_access_key_id=endpoint.access_key,
        aws_secret_access_key=endpoint.secret_key, region_name=endpoint.region)
    etag = client.head_object(Bucket=storage.spec.bucket, Key=storage.location.object_name(key))["ETag"]
    assert "-" not in etag.strip('"'), f"{where(storage, 'put', key)}: a multipart upload (ETag {etag}), not one PUT"


# -- O_DIRECT: what the storage claims about its writes is what the kernel sees -----------------
O_DIRECT = getattr(os, "O_DIRECT", 0o40000)


def _open_flags(path: str) -> list[int]:
    """The file status flags of this process's descriptors open on ``path`` (/proc fdinfo)."""
    flags = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") != path:
                continue
            with open(f"/proc/self/fdinfo/{fd}") as info:
                flags += [int(line.split()[1], 8) for line in info if line.startswith("flags:")]
        except OSError:  # closed meanwhile
            continue
    return flags


def test_writes_are_direct_where_the_storage_says_so(storage, space):
    """An open streaming writer's file has O_DIRECT exactly when ``write_is_direct`` says so,
    and what a write leaves in the page cache agrees; a direct storage's put bypasses it."""
    if storage.kind == "s3":
        pytest.skip("O_DIRECT is about files")
    assert storage.write_is_direct is (storage.write_caveat is None if storage.kind == "direct" else False), (
        f"{storage.id}: write_is_direct {storage.write_is_direct} but write_caveat {storage.write_caveat!r}")
    data = payload(PART_SIZE, 7)  # whole 4 KiB blocks: nothing goes through a buffered tail
    directory = os.path.join(storage.root, space)
    with storage.open_writer(f"{space}/streamed") as writer:
        writer.write(data[:1 << 20])
        temps = [name for name in os.listdir(directory) if TEMP_MARKER in name]
        assert len(temps) == 1, f"{storage.id}: open_writer: temporary files {temps}"
        flags = _open_flags(os.path.join(directory, temps[0]))
        assert flags, f"{storage.id}: open_writer: no descriptor of this process is open on {temps[0]}"
        direct = [bool(f & O_DIRECT) for f in flags]
        assert all(d == storage.write_is_direct for d in direct), (
            f"{storage.id}: write_is_direct is {storage.write_is_direct}, the writer's file is opened "
            f"{'with' if direct[0] else 'without'} O_DIRECT")
        writer.write(data[1 << 20:])
    cached, _ = resident_pages(os.path.join(directory, "streamed"))
    assert (cached == 0) is storage.write_is_direct, (
        f"{storage.id}: after a streamed write of {len(data)} bytes, {cached} of its pages are in the page "
        f"cache, and write_is_direct is {storage.write_is_direct}")
    storage.put(f"{space}/put", data)
    cached, _ = resident_pages(os.path.join(directory, "put"))
    assert (cached == 0) is (storage.kind == "direct"), (
        f"{storage.id}: after a put of {len(data)} bytes, {cached} of its pages are in the page cache")


def test_parts_in_flight_stay_within_the_process_budget(storage, space):
    """Writers in several threads, two at once in each, with a budget of 2 parts: the parts in
    flight across all of them never exceed it (counted), every token comes back, nobody waits
    forever, and every object is whole."""
    if storage.kind != "s3":
        pytest.skip("the part budget is the S3 streaming writers'")
    if storage.library == "s3torchconnector":
        pytest.skip("s3torchconnector's CRT client keeps its own parts in flight; the budget cannot reach them")
    size = 2 * PART_SIZE + 1000
    threads, per_thread = 3, 2
    previous = PART_BUDGET.resize(2)
    PART_BUDGET.reset_peak()

    def write_two(t: int) -> list[int]:
        keys = [f"{space}/budget-{t}-{n}" for n in range(per_thread)]
        sources = [stream_for(SEED, "budget", t, n, limit=size) for n in range(per_thread)]
        crcs = [0] * per_thread
        writers = [storage.open_writer(key) for key in keys]
        try:
            for _ in range(size // MiB + 1):  # interleaved: one thread holds both writers
                for n, writer in enumerate(writers):
                    chunk = sources[n].read(min(MiB, size - writer.bytes_written))
                    if chunk:
                        crcs[n] = zlib.crc32(chunk, crcs[n])
                        writer.write(chunk)
            for writer in writers:
                writer.commit()
        except BaseException:
            for writer in writers:
                writer.abort()
            raise
        return crcs

    try:
        with ThreadPoolExecutor(threads) as pool:
            crcs = list(pool.map(write_two, range(threads)))
    finally:
        PART_BUDGET.resize(previous)
    assert 1 <= PART_BUDGET.peak <= 2, f"{storage.id}: {PART_BUDGET.peak} parts in flight at once, budget 2"
    assert PART_BUDGET.in_use == 0, f"{storage.id}: {PART_BUDGET.in_use} budget tokens not given back"
    for t in range(threads):
        for n in range(per_thread):
            key = f"{space}/budget-{t}-{n}"
            got = storage.get(key)
            assert len(got) == size and zlib.crc32(got) == crcs[t][n], (
                f"{where(storage, 'get', key)}: not what was streamed")
