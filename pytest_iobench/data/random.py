"""The seeded random source: a stream's bytes are a pure function of (seed, path, position).

Drawing every byte from a generator costs the CPU about as much as the page cache costs to take
it (dgen-py fills about 2.5 GB/s per core, a page-cache write takes about 3 GB/s per core), so
generation could not go faster than about half a plain writer. The stream is a keyed expansion
of one pool of random bytes instead, one XOR per 8 bytes:

- the pool: ``POOL`` (256 KiB) of dgen-py bytes from a fixed seed, made once per process and
  read by every stream and thread (it stays in the CPU's cache);
- a stream is cut into ``SEGMENT`` (256 KiB) segments; segment ``j`` of the stream with seed
  ``s`` is the pool's bytes from an offset chosen by (s, j), each 8-byte word XORed with a 64-bit
  key chosen by (s, j) (splitmix64).

What a storage sees is what fresh random bytes would give it: every 4 KiB block is distinct (a
segment's key is its own, and within a segment each block comes from another part of the pool),
and two segments differ by a non-zero XOR in every 8-byte word, so no run of more than 7 bytes
repeats between them: deduplication and compression, block, stream or long-range, find nothing
(tests/test_data_random.py checks both). The bytes do not depend on how a stream is read: any
position, any read sizes, any thread.
"""

from __future__ import annotations

import functools
import threading
import time
from typing import Any

import dgen_py
import numpy as np

#: bytes of the shared pool: small enough to stay in a core's L2 cache beside the staging
#: buffer and the page-cache copy (1 MiB measured slower)
POOL = 256 << 10
#: a stream's bytes come from the pool in segments of this size, each with its own key and offset
SEGMENT = 256 << 10
#: the largest view a stream hands out (its staging buffer, one per stream, made on first use)
STAGING = 512 << 10
#: how far past its ``limit`` a stream may still be read
SLACK = 8 << 20
#: the default bound of one stream (1 TiB)
MAX_STREAM = 1 << 40

_POOL_SEED = 0x10BE_7C4
_MASK64 = (1 << 64) - 1
_WORDS_PER_SEGMENT = SEGMENT // 8
_POOL_WORDS = POOL // 8


def derive_seed(seed: int, *path: int | str) -> int:
    """A 64-bit seed for one stream, mixed from a base seed and a path (file index, shard...).

    splitmix64 over each component: neighbouring indices give unrelated seeds.
    """
    state = seed & _MASK64
    for part in path:
        if isinstance(part, str):
            part = int.from_bytes(part.encode("utf-8")[:32].ljust(8, b"\0"), "little") ^ len(part)
        state = _splitmix64((state ^ (part & _MASK64)) & _MASK64)
    return state >> 1  # 63 bits: a valid seed for any generator, signed or not


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


@functools.lru_cache(maxsize=1024)
def _segment(seed: int, segment: int) -> tuple[np.uint64, int]:
    """(key, pool offset in words) of one segment of the stream with ``seed``: a pure function,
    cached because a stream reads each segment in several pieces."""
    mixed = _splitmix64(seed ^ _splitmix64(segment))
    return np.uint64(mixed), _splitmix64(mixed) % _POOL_WORDS


_pool: np.ndarray | None = None
_pool_lock = threading.Lock()


def pool() -> np.ndarray:
    """The shared pool as 64-bit words, followed by a copy of its first segment, so that a
    segment starting anywhere in the pool reads contiguous words (made on first use)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            words = np.empty(_POOL_WORDS + _WORDS_PER_SEGMENT, dtype=np.uint64)
            dgen_py.Generator(size=POOL, seed=_POOL_SEED).fill_chunk(words[:_POOL_WORDS].view(np.uint8).data)
            words[_POOL_WORDS:] = words[:_WORDS_PER_SEGMENT]
            words.flags.writeable = False
            _pool = words
        return _pool


class RandomStream:
    """An endless deterministic byte stream for one seed. Not thread-safe: one per writer.

    ``limit``: the bytes the caller means to read; reading more than ``SLACK`` past it raises
    (a format that pulls more than its ``stream_bytes`` says is a bug to catch)."""

    def __init__(self, seed: int, limit: int = MAX_STREAM):
        self.seed = seed
        self.limit = max(limit, 0)
        self.position = 0
        #: seconds the caller spent making random bytes
        self.waited = 0.0
        self._pool = pool()
        self._stage: np.ndarray | None = None  # only views and unaligned reads need it (not images)

    def _advance(self, size: int) -> int:
        if size < 0:
            raise ValueError(f"a random stream cannot go back ({size} bytes asked)")
        start = self.position
        if start + size > self.limit + SLACK:
            raise ValueError(f"random stream read past its limit of {self.limit} bytes (asked up to byte "
                             f"{start + size}; {SLACK} past the limit are allowed)")
        self.position = start + size
        return start

    def _words(self, first: int, out: np.ndarray) -> None:
        """Words ``first`` .. ``first + len(out)`` of the stream into ``out`` (uint64)."""
        began = time.perf_counter()
        done, total = 0, len(out)
        while done < total:
            word = first + done
            segment, within = divmod(word, _WORDS_PER_SEGMENT)
            key, offset = _segment(self.seed, segment)
            take = min(total - done, _WORDS_PER_SEGMENT - within)
            at = offset + within
            np.bitwise_xor(self._pool[at:at + take], key, out=out[done:done + take])
            done += take
        self.waited += time.perf_counter() - began

    def _staged(self, start: int, size: int) -> memoryview:
        """Bytes ``start`` .. ``start + size`` (size <= STAGING) as a view of the staging buffer."""
        if self._stage is None:
            self._stage = np.empty(STAGING // 8 + 1, dtype=np.uint64)  # a word more: a view may start mid-word
        shift = start % 8
        words = -(-(shift + size) // 8)
        self._words(start // 8, self._stage[:words])
        return self._stage.view(np.uint8).data[shift:shift + size]

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` (any writable bytes-like object) completely; returns its size."""
        out = np.frombuffer(memoryview(buffer).cast("B"), dtype=np.uint8)
        total = len(out)
        start = self._advance(total)
        done = 0
        body = total // 8 * 8
        if start % 8 == 0 and body:
            words = out[:body].view(np.uint64)
            if words.flags.aligned:  # word-aligned on both sides: straight into the caller's buffer
                self._words(start // 8, words)
                done = body
        while done < total:
            take = min(total - done, STAGING)
            out[done:done + take] = np.frombuffer(self._staged(start + done, take), dtype=np.uint8)
            done += take
        return total

    def view(self, size: int) -> memoryview:
        """The next bytes of the stream, at most ``size`` of them (at most ``STAGING``), as a
        view of the stream's own buffer: no copy. The view is valid until the next call on this
        stream; callers loop until they have what they need."""
        take = min(max(size, 0), STAGING)
        return self._staged(self._advance(take), take)

    def read(self, size: int) -> bytes:
        """``size`` fresh bytes (a copy; prefer ``readinto`` with a reused buffer)."""
        buf = bytearray(size)
        self.readinto(buf)
        return bytes(buf)

    def array(self, shape: int | tuple[int, ...], dtype: Any) -> np.ndarray:
        """A new array of ``shape`` and ``dtype`` filled with the next bytes of the stream."""
        arr = np.empty(shape, dtype=dtype)
        self.readinto(arr.reshape(-1).view(np.uint8))
        return arr

    def skip(self, size: int) -> None:
        """Advance by ``size`` bytes without making them."""
        self._advance(size)


def stream_for(seed: int, *path: int | str, limit: int = MAX_STREAM) -> RandomStream:
    """The stream of one file, shard or object: ``stream_for(seed, file_index, limit=size)``."""
    return RandomStream(derive_seed(seed, *path), limit=limit)
