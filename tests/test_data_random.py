"""The random source: a stream's bytes depend on its seed and path only (not on how it is
read, nor on prefetching), and it generates what its caller asked for, in whole blocks, and no
more."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from pytest_iobench.data.random import BLOCK, STAGING, RandomStream, derive_seed, stream_for

MiB = 1 << 20
#: bytes per pattern: past two staging buffers, not a whole number of blocks
SIZE = 2 * STAGING + 3 * MiB + 12345


def read_in_views(stream, size: int, piece: int) -> bytes:
    out, left = [], size
    while left:
        view = stream.view(min(left, piece))
        out.append(bytes(view))  # a view is valid until the next call
        left -= len(view)
    return b"".join(out)


def read_into(stream, size: int, piece: int) -> bytes:
    out = bytearray(size)
    for at in range(0, size, piece):
        stream.readinto(memoryview(out)[at:at + piece])
    return bytes(out)


def mixed(stream, size: int) -> bytes:
    """Every way of reading, one after another (odd and whole-block readinto, views, read,
    array), then a skip to the last 7 bytes: (what was read, the last 7 bytes)."""
    parts, at = [], 0
    for step in (1, 4095, 3 * MiB, 777_777, 2 * MiB + 5, 10, 9 * MiB, 1 << 16, MiB):
        kind = len(parts) % 4
        if kind == 0:
            parts.append(read_into(stream, step, step))
        elif kind == 1:
            parts.append(read_in_views(stream, step, 100_003))
        elif kind == 2:
            parts.append(stream.read(step))
        else:
            parts.append(stream.array(step, np.uint8).tobytes())
        at += step
    stream.skip(size - at - 7)
    tail = stream.read(7)
    return b"".join(parts), tail


def the_stream(prefetch: bool = False, **kw) -> RandomStream:
    return stream_for(10, "train", 3, limit=SIZE, prefetch=prefetch, **kw)


@pytest.fixture(scope="module")
def reference() -> bytes:
    return the_stream().read(SIZE)


@pytest.mark.parametrize("prefetch", [False, True], ids=["plain", "prefetch"])
@pytest.mark.parametrize("how", [
    "read", "readinto-114661", "readinto-1MiB+1", "views-7MiB", "views-333", "array-f64"])
def test_the_same_bytes_whatever_the_read_sizes(reference, how, prefetch):
    stream = the_stream(prefetch)
    if how == "read":
        got = stream.read(SIZE)
    elif how.startswith("readinto"):
        got = read_into(stream, SIZE, 114_661 if how.endswith("114661") else MiB + 1)
    elif how.startswith("views"):
        got = read_in_views(stream, SIZE, 7 * MiB if how.endswith("7MiB") else 333)
    else:
        whole = SIZE // 8 * 8
        got = stream.array(whole // 8, np.float64).tobytes() + stream.read(SIZE - whole)
    assert stream.position == SIZE
    assert got == reference


@pytest.mark.parametrize("prefetch", [False, True], ids=["plain", "prefetch"])
def test_the_same_bytes_when_read_sizes_and_ways_change_within_a_stream(reference, prefetch):
    head, tail = mixed(the_stream(prefetch), SIZE)
    assert head == reference[:len(head)] and tail == reference[-7:]


@pytest.mark.parametrize("prefetch", [False, True], ids=["plain", "prefetch"])
@pytest.mark.parametrize("size", [65536, 114244, SIZE], ids=["64KiB", "image", "large"])
def test_a_stream_started_ahead_gives_the_same_bytes(reference, size, prefetch):
    # generation starts the next files' streams while it writes the current one
    stream = stream_for(10, "train", 3, limit=size, prefetch=prefetch).start()
    assert stream.start() is stream  # a second start does nothing
    got = stream.array(size, np.uint8).tobytes() if size < SIZE else mixed(stream, size)[0]
    assert got == reference[:len(got)] and stream.position >= len(got)
    assert stream.waited >= 0 and stream.generated - size < BLOCK


def test_the_time_a_reader_waits_for_fills_is_counted():
    stream = the_stream()
    assert stream.waited == 0
    stream.read(3 * MiB)
    assert stream.waited > 0


@pytest.mark.parametrize("staging", [BLOCK, 2 * BLOCK, 3 * BLOCK, 32 * BLOCK])
def test_the_same_bytes_whatever_the_staging_size(reference, staging):
    stream = RandomStream(derive_seed(10, "train", 3), limit=SIZE, staging=staging)
    assert read_in_views(stream, SIZE, MiB + 17) == reference


def test_the_same_bytes_whatever_the_limit(reference):
    # the limit sizes the generator and the fills, never the bytes
    for limit in (SIZE, SIZE + 1, 64 * MiB, 1 << 40):
        assert stream_for(10, "train", 3, limit=limit).read(MiB + 1) == reference[:MiB + 1]
    assert stream_for(10, "train", 3, limit=1000).read(1000) == reference[:1000]


def test_seeds_and_paths_give_different_bytes(reference):
    head = reference[:4096]
    others = [stream_for(*where, limit=4096).read(4096) for where in [
        (11, "train", 3), (10, "train", 4), (10, "valid", 3), (10, "train", 3, 0), (10, 3, "train"), (10,)]]
    assert len({head, *others}) == 1 + len(others)
    # and seeds are spread: no two of many neighbouring paths collide
    assert len({derive_seed(10, "train", i) for i in range(10000)}) == 10000


def test_bytes_are_pinned_across_versions():
    # a dataset's bytes must not change under it (reuse checks only its spec's digest): if this
    # changes on purpose (dgen-py, derive_seed), bump spec.DATA_VERSION
    data = stream_for(10, "train", 0, limit=1 << 16).read(1 << 16)
    assert hashlib.sha256(data).hexdigest() == "b3b4c88bf2871bf8e5d8c18d745a7359f6be8ff28bda45916277a5689b7c91c4"


def test_a_stream_refuses_a_staging_size_that_is_not_whole_blocks():
    with pytest.raises(ValueError, match=f"staging size must be a multiple of {BLOCK}"):
        RandomStream(1, staging=BLOCK + 1)


@pytest.mark.parametrize("prefetch", [False, True], ids=["plain", "prefetch"])
@pytest.mark.parametrize("size, generated", [
    (256 << 10, MiB),                 # one block: the least the generator can give
    (MiB + 1, 2 * MiB),               # into a second block
    (STAGING, STAGING),               # exactly one staging buffer
    (STAGING + 3 * MiB, STAGING + 3 * MiB),  # the last fill stops at the blocks that reach the limit
    (2 * STAGING + 5, 2 * STAGING + MiB),    # prefetching stops once the limit is covered
])
def test_a_stream_generates_the_blocks_its_limit_needs_and_no_more(size, generated, prefetch):
    stream = stream_for(3, "train", 1, limit=size, prefetch=prefetch)
    read_in_views(stream, size, MiB)
    assert stream.position == size and stream.generated == generated
    assert generated % BLOCK == 0 and generated - size < BLOCK


def test_reading_a_little_past_the_limit_still_gives_the_same_bytes():
    size = STAGING + MiB
    exact = stream_for(3, "train", 1, limit=size + 3 * MiB).read(size + 3 * MiB)
    assert stream_for(3, "train", 1, limit=size).read(size + 3 * MiB) == exact
