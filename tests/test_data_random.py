"""The random source: a stream's bytes depend on its seed, path and position only (not on how
it is read), and what a storage gets from it neither deduplicates nor compresses."""

from __future__ import annotations

import hashlib
import lzma
import zlib

import numpy as np
import pytest

from pytest_iobench.data.random import POOL, SEGMENT, SLACK, STAGING, derive_seed, stream_for

MiB = 1 << 20
#: bytes per pattern: several segments and staging buffers, not a whole number of words
SIZE = 24 * STAGING + 5 * SEGMENT + 12345
#: sha256 of the first MiB of one stream (test_bytes_are_pinned_across_versions)
PINNED = "ac9e7ba98e57ae27d7da473d8d3a873148e5e834ef100dedbacf1726514d02fa"


def read_in_views(stream, size: int, piece: int) -> bytes:
    out, left = [], size
    while left:
        view = stream.view(min(left, piece))
        assert 0 < len(view) <= STAGING
        out.append(bytes(view))  # a view is valid until the next call
        left -= len(view)
    return b"".join(out)


def read_into(stream, size: int, piece: int, offset: int = 0) -> bytes:
    """readinto pieces of a buffer that starts ``offset`` bytes into an array (unaligned)."""
    backing = np.empty(size + offset, dtype=np.uint8)
    out = memoryview(backing)[offset:]
    for at in range(0, size, piece):
        stream.readinto(out[at:at + piece])
    return out.tobytes()


def mixed(stream, size: int) -> tuple[bytes, bytes]:
    """Every way of reading, one after another (odd and whole-word readinto, views, read,
    array), then a skip to the last 7 bytes: (what was read, the last 7 bytes)."""
    parts, at = [], 0
    for step in (1, 4095, 3 * MiB, 777_777, 2 * MiB + 5, 10, 9 * SEGMENT, 1 << 16, MiB):
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


def the_stream(limit: int = SIZE):
    return stream_for(10, "train", 3, limit=limit)


@pytest.fixture(scope="module")
def reference() -> bytes:
    return the_stream().read(SIZE)


@pytest.mark.parametrize("how", [
    "read", "readinto-114661", "readinto-1MiB+1", "readinto-unaligned", "views-7MiB", "views-333", "array-f64"])
def test_the_same_bytes_whatever_the_read_sizes(reference, how):
    stream = the_stream()
    if how == "read":
        got = stream.read(SIZE)
    elif how == "readinto-unaligned":
        got = read_into(stream, SIZE, 65_536, offset=3)
    elif how.startswith("readinto"):
        got = read_into(stream, SIZE, 114_661 if how.endswith("114661") else MiB + 1)
    elif how.startswith("views"):
        got = read_in_views(stream, SIZE, 7 * MiB if how.endswith("7MiB") else 333)
    else:
        whole = SIZE // 8 * 8
        got = stream.array(whole // 8, np.float64).tobytes() + stream.read(SIZE - whole)
    assert stream.position == SIZE
    assert got == reference


def test_the_same_bytes_when_read_sizes_and_ways_change_within_a_stream(reference):
    head, tail = mixed(the_stream(), SIZE)
    assert head == reference[:len(head)] and tail == reference[-7:]


@pytest.mark.parametrize("at", [0, 7, SEGMENT - 3, SEGMENT, 2 * SEGMENT + 8, SIZE - 100])
def test_any_position_can_be_read_first(reference, at):
    # a skip costs nothing and gives what reading up to there would have
    stream = the_stream()
    stream.skip(at)
    assert stream.read(100) == reference[at:at + 100]


def test_the_time_spent_making_bytes_is_counted():
    stream = the_stream()
    assert stream.waited == 0
    stream.read(3 * MiB)
    assert stream.waited > 0


def test_the_same_bytes_whatever_the_limit(reference):
    # the limit bounds how far a stream may be read, never its bytes
    for limit in (SIZE, SIZE + 1, 64 * MiB, 1 << 40):
        assert stream_for(10, "train", 3, limit=limit).read(MiB + 1) == reference[:MiB + 1]
    assert stream_for(10, "train", 3, limit=1000).read(1000) == reference[:1000]


def test_reading_far_past_the_limit_is_refused_and_says_where():
    stream = stream_for(3, "train", 1, limit=MiB)
    stream.read(MiB + SLACK)  # a little past it is allowed
    with pytest.raises(ValueError, match=f"read past its limit of {MiB} bytes"):
        stream.read(1)


def test_seeds_and_paths_give_different_bytes(reference):
    head = reference[:4096]
    others = [stream_for(*where, limit=4096).read(4096) for where in [
        (11, "train", 3), (10, "train", 4), (10, "valid", 3), (10, "train", 3, 0), (10, 3, "train"), (10,)]]
    assert len({head, *others}) == 1 + len(others)
    # and seeds are spread: no two of many neighbouring paths collide
    assert len({derive_seed(10, "train", i) for i in range(10000)}) == 10000


def test_bytes_are_pinned_across_versions():
    # a dataset's bytes must not change under it (reuse checks only its spec's digest): if this
    # changes on purpose (dgen-py, derive_seed, the pool or segment layout), bump spec.DATA_VERSION
    data = stream_for(10, "train", 0, limit=1 << 20).read(1 << 20)
    assert hashlib.sha256(data).hexdigest() == PINNED



def test_no_block_repeats_within_or_across_streams():
    # a deduplicating storage finds nothing: every 4 KiB block of four streams is distinct, and
    # so is every aligned 8-byte word (their pool windows differ by a non-zero key in each word)
    data = b"".join(stream_for(5, "train", i, limit=4 * POOL).read(4 * POOL) for i in range(4))
    blocks = {data[at:at + 4096] for at in range(0, len(data), 4096)}
    assert len(blocks) == len(data) // 4096
    words = np.frombuffer(data, dtype=np.uint64)
    assert len(np.unique(words)) == len(words)


def test_streams_do_not_compress():
    # nor does a compressing one: each segment of two streams against all the others, within
    # one compressor window (lzma's dictionary holds all of them), and zlib's quick look
    data = stream_for(6, "train", 0).read(2 * SEGMENT) + stream_for(6, "train", 1).read(2 * SEGMENT)
    assert len(lzma.compress(data, preset=6)) >= len(data)
    assert len(zlib.compress(data, 6)) >= len(data)
