"""The random source: a stream's bytes depend on its seed and path only (not on how it is
read, nor on prefetching), and it generates what its caller asked for, in whole blocks, and no
more."""

from __future__ import annotations

import pytest

from pytest_iobench.data.random import BLOCK, STAGING, stream_for

MiB = 1 << 20


def read_in_views(stream, size: int, piece: int) -> None:
    left = size
    while left:
        left -= len(stream.view(min(left, piece)))


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
    read_in_views(stream, size, 1 << 20)
    assert stream.position == size and stream.generated == generated
    assert generated % BLOCK == 0 and generated - size < BLOCK


def test_reading_a_little_past_the_limit_still_gives_the_same_bytes():
    size = STAGING + MiB
    exact = stream_for(3, "train", 1, limit=size + 3 * MiB).read(size + 3 * MiB)
    assert stream_for(3, "train", 1, limit=size).read(size + 3 * MiB) == exact
