"""Memory of the storage layer: S3 part buffers are reused (never refilled while an upload still
reads them), minio's pipe holds a bounded number of bytes whatever the write size, and the
process's one malloc policy (storage/allocator.py) is in force once a storage is opened: threads
share one heap."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import pytest

from pytest_iobench.storage import allocator, minio_backend, s3common
from pytest_iobench.storage.errors import StorageError
from pytest_iobench.storage.s3common import MAX_PARTS_IN_FLIGHT, PART_BUDGET, PART_BUFFERS, PART_SIZE


@pytest.mark.parametrize("library", ["boto3", "s3dlio"])
def test_part_buffers_are_reused_and_never_refilled_in_flight(storage_factory, library, tmp_path):
    # the session's embedded endpoint (s3dlio binds a process to one endpoint)
    storage = storage_factory.at(storage_factory.get("s3", library), f"reuse-{library}-{tmp_path.name}")
    made = PART_BUFFERS.made
    objects = {f"o{n}": os.urandom(3 * PART_SIZE + 4096 * (n + 1)) for n in range(3)}  # 3 parts + a tail each
    try:
        for key, data in objects.items():
            with storage.open_writer(key) as writer:
                view = memoryview(data)
                for offset in range(0, len(data), 1 << 20):
                    writer.write(view[offset:offset + (1 << 20)])
        for key, data in objects.items():
            # a buffer filled again while its upload still read it would show here
            assert bytes(storage.get(key)) == data, f"{library}: {key} differs from what was written"
    finally:
        storage.delete_prefix("")
    # one writer at a time: its parts in flight and the one it fills, made once and reused
    assert PART_BUFFERS.made - made <= MAX_PARTS_IN_FLIGHT + 1, (
        f"{library}: {PART_BUFFERS.made - made} part buffers made for 9 parts and 3 tails written one object at a time")
    assert PART_BUFFERS.free <= PART_BUFFERS.keep and PART_BUDGET.in_use == 0


def test_minio_pipe_holds_at_most_its_bound_whatever_the_write_size():
    """An 8 MiB write goes into the pipe a piece at a time, each waiting for room: the pipe
    never holds more than its bound and a piece, and a reader taking odd sizes gets every byte
    in order (the rest of a piece it cut stays a view, not a copy)."""
    MiB = 1 << 20
    pipe = minio_backend._Pipe(max_bytes=2 * MiB, piece=MiB)
    data = os.urandom(8 * MiB + 12345)
    most, got = [0], []

    def consume():
        while True:
            chunk = pipe.read(1_500_000)  # not a multiple of a piece: reads cut pieces
            with pipe.cond:
                most[0] = max(most[0], pipe.buffered + len(chunk))
            if not chunk:
                return
            assert isinstance(chunk, bytes)
            got.append(chunk)

    reader = threading.Thread(target=consume)
    reader.start()
    pipe.push(memoryview(data)[:8 * MiB])  # one write larger than the whole pipe
    pipe.push(memoryview(data)[8 * MiB:])
    pipe.finish()
    reader.join(timeout=30)
    assert not reader.is_alive() and b"".join(got) == data
    assert most[0] <= 3 * MiB, f"the pipe held {most[0]:,} bytes at once with a bound of 2 MiB and 1 MiB pieces"


@pytest.mark.parametrize("library, part_mib", [("minio", 5), ("boto3", 8), ("s3dlio", 8)])
def test_a_streamed_object_past_s3s_parts_is_refused(storage_factory, monkeypatch, tmp_path, library, part_mib):
    # S3's 10,000 parts (48.8 GiB of minio's 5 MiB parts, 78.1 GiB of 8 MiB) made 1: the write
    # that passes it fails before it is sent, naming the limit, and the aborted upload leaves
    # nothing under the key
    storage = storage_factory.at(storage_factory.get("s3", library), f"limit-{tmp_path.name}")
    monkeypatch.setattr(s3common, "MAX_PARTS", 1)
    piece = memoryview(os.urandom(1 << 20))
    limit = part_mib << 20
    try:
        with pytest.raises(StorageError, match=(
                rf"{library} holds at most {limit:,} bytes \(0.0 GiB: 1 parts of {part_mib} MiB\); "
                rf"this write would make it {limit + (1 << 20):,}")):
            with storage.open_writer("big") as writer:
                for _ in range(part_mib + 1):
                    writer.write(piece)
        assert storage.list("") == []
    finally:
        storage.delete_prefix("")


HEAPS = textwrap.dedent("""
    import ctypes, os, sys, tempfile, threading
    from pytest_iobench.storage import StorageSpec, allocator, open_storage
    if sys.argv[1] == "defaults":
        allocator.keep_glibc_defaults()
    open_storage(StorageSpec("local", "posix", root=tempfile.mkdtemp()))
    def work():
        for _ in range(50):
            bytearray(1 << 20)
    threads = [threading.Thread(target=work) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    path = tempfile.mktemp()
    fp = libc.fopen(path.encode(), b"w")
    libc.malloc_info(0, fp)  # one <heap nr=...> element per arena
    libc.fclose(fp)
    print(allocator.applied(), open(path).read().count("<heap nr="))
    os.unlink(path)
""")


def test_one_heap_for_every_thread_once_a_storage_is_opened():
    if not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"):
        pytest.skip("the policy is glibc's mallopt")
    heaps = {}
    for case in ("policy", "defaults"):
        out = subprocess.run([sys.executable, "-c", HEAPS, case], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr[-2000:]
        applied, count = out.stdout.split()
        heaps[case] = (applied, int(count))
    assert heaps["policy"] == ("True", 1), "with the policy every thread allocates from the one heap"
    assert heaps["defaults"][0] == "False" and heaps["defaults"][1] > 1, (
        "glibc's defaults give threads heaps of their own (what the policy is there to prevent)")
    assert allocator.applied() == (os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"))
