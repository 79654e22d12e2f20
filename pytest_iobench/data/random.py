"""The seeded random source: content is a pure function of (seed, stream index).

Built on dgen-py's ``Generator(size, seed=...)``, which is fast (several GB/s from its own
thread pool) and deterministic for a given seed, but only when it is always asked for blocks
of the same granularity: a fill whose size is not a divisor or a multiple of 1 MiB changes
the bytes that follow. ``RandomStream`` therefore pulls from the generator in fixed
``BLOCK``-multiple pieces into a staging buffer it reuses, and serves any read size from
there, so the bytes are the same whatever the callers' chunk sizes, thread counts or ranks.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import dgen_py
import numpy as np

#: dgen-py's determinism granularity; staging fills are multiples of it
BLOCK = 1 << 20
#: staging buffer size (dgen-py's recommended chunk size is 32 MiB; 8 MiB keeps memory small
#: per stream while keeping its thread pool busy)
STAGING = 8 << 20

#: the default bound of one stream (1 TiB)
MAX_STREAM = 1 << 40

_MASK64 = (1 << 64) - 1


def derive_seed(seed: int, *path: int | str) -> int:
    """A 64-bit seed for one stream, mixed from a base seed and a path (file index, shard...).

    splitmix64 over each component: neighbouring indices give unrelated seeds.
    """
    state = seed & _MASK64
    for part in path:
        if isinstance(part, str):
            part = int.from_bytes(part.encode("utf-8")[:32].ljust(8, b"\0"), "little") ^ len(part)
        state = _splitmix64((state ^ (part & _MASK64)) & _MASK64)
    # dgen-py takes the seed as a signed or unsigned 64-bit int; keep it in 63 bits for both
    return state >> 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


class RandomStream:
    """An endless deterministic byte stream for one seed. Not thread-safe: one per writer.

    ``limit``: the bytes the caller means to read. The generator produces them in whole blocks
    and no more (the last fill stops at the first block boundary past ``limit``; prefetching
    stops there too); reading further still works, up to a staging buffer past it."""

    def __init__(self, seed: int, limit: int = MAX_STREAM, staging: int = STAGING, prefetch: bool = False):
        if staging % BLOCK:
            raise ValueError(f"staging size must be a multiple of {BLOCK}")
        self.seed = seed
        self._wanted = max(limit, 1)
        # a small stream (an image) stages only what it needs, in whole blocks
        staging = min(staging, -(-self._wanted // BLOCK) * BLOCK)
        # The generator's size bounds the stream (the bytes do not depend on it), and dgen-py
        # reserves memory in proportion to it (about size / 128 KiB): ask for what is needed.
        # (+ one staging buffer: room for a caller reading a little past its limit)
        self.limit = -(-self._wanted // staging) * staging + staging
        self._gen = dgen_py.Generator(size=self.limit, seed=seed)
        self._asked = 0  # bytes asked of the generator so far (filled, or being filled)
        self._stage = np.empty(staging, dtype=np.uint8)
        self._view = self._stage.data
        self._pos = self._end = 0  # the staged bytes are _view[_pos:_end]
        self.position = 0
        # Prefetch: the next staging buffer is filled by a helper thread while the caller works
        # on the current one (dgen-py releases the GIL), so generating overlaps writing. Fills
        # still happen one after another, in order, in whole blocks: the bytes are the same.
        self._prefetch = prefetch and self._wanted > staging
        self._next = np.empty(staging, dtype=np.uint8) if self._prefetch else None
        self._next_end = 0
        self._pending: Future[None] | None = None
        #: seconds the caller waited for random bytes (fills in its thread, or a prefetch not done)
        self.waited = 0.0

    def start(self) -> RandomStream:
        """Begin generating the first bytes now, in a helper thread: a writer prepares its next
        file's stream this way while it still encodes and writes the current one, so a file's
        first fill (all of an image's pixels) is not waited for. Same bytes either way."""
        if self._pending is None and self._asked == 0:
            if self._next is None:
                self._next = np.empty(len(self._stage), dtype=np.uint8)
            self._next_end = self._fill_size()
            self._asked += self._next_end
            self._pending = _prefetcher().submit(self._fill, self._next.data[:self._next_end])
        return self

    @property
    def generated(self) -> int:
        """Bytes asked of the generator so far (what the stream has cost, read or not)."""
        return self._asked

    def _fill_size(self) -> int:
        """Bytes of the next staging fill: a whole buffer, or the whole blocks that reach
        ``limit`` when less remains to it."""
        left = self._wanted - self._asked
        return min(len(self._stage), -(-left // BLOCK) * BLOCK) if left > 0 else len(self._stage)

    def _fill(self, view: memoryview) -> None:
        filled = self._gen.fill_chunk(view)
        if filled != len(view):
            raise ValueError(f"random stream read past its limit of {self.limit} bytes")

    def _refill(self) -> None:
        start = time.perf_counter()
        self._refill_now()
        self.waited += time.perf_counter() - start

    def _refill_now(self) -> None:
        if self._pending is not None:
            self._pending.result()
            self._pending = None
            filled = self._next
            assert filled is not None  # a prefetch fills _next
            self._stage, self._next = filled, self._stage
            self._view = self._stage.data
            self._end = self._next_end
        else:
            self._end = self._fill_size()
            self._asked += self._end
            self._fill(self._view[:self._end])
        self._pos = 0
        if self._prefetch and self._asked < self._wanted:  # the caller will read the next bytes too
            assert self._next is not None  # made with the stream when it prefetches
            self._next_end = self._fill_size()
            self._asked += self._next_end
            self._pending = _prefetcher().submit(self._fill, self._next.data[:self._next_end])

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` (any writable bytes-like object) completely; returns its size."""
        out = memoryview(buffer).cast("B")
        done = 0
        total = out.nbytes
        while done < total:
            if self._pos == self._end:
                direct = (total - done) // BLOCK * BLOCK if self._pending is None else 0
                if direct:
                    # Whole blocks go straight into the caller's buffer: no staging copy
                    self._asked += direct
                    start = time.perf_counter()
                    self._fill(out[done:done + direct])
                    self.waited += time.perf_counter() - start
                    done += direct
                    continue
                self._refill()
            take = min(total - done, self._end - self._pos)
            out[done:done + take] = self._view[self._pos:self._pos + take]
            self._pos += take
            done += take
        self.position += total
        return total

    def view(self, size: int) -> memoryview:
        """The next bytes of the stream, at most ``size`` of them (fewer at the end of the
        staging buffer), as a view of the stream's own buffer: no copy. The view is valid
        until the next call on this stream; callers loop until they have what they need."""
        if size <= 0:
            return self._view[:0]
        if self._pos == self._end:
            self._refill()
        take = min(size, self._end - self._pos)
        out = self._view[self._pos:self._pos + take]
        self._pos += take
        self.position += take
        return out

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
        """Advance by ``size`` bytes without returning them."""
        scratch = np.empty(min(size, len(self._stage)) or 1, dtype=np.uint8)
        left = size
        while left:
            n = min(left, len(scratch))
            self.readinto(scratch[:n])
            left -= n


def stream_for(seed: int, *path: int | str, limit: int = MAX_STREAM, prefetch: bool = False) -> RandomStream:
    """The stream of one file, shard or object: ``stream_for(seed, file_index, limit=size)``.
    ``prefetch``: fill the next 8 MiB in a helper thread while the caller uses the current
    ones (for streams read in large amounts by a writer; same bytes either way)."""
    return RandomStream(derive_seed(seed, *path), limit=limit, prefetch=prefetch)


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _prefetcher() -> ThreadPoolExecutor:
    """The helper threads of prefetching streams (one fill at a time per stream)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="iobench-random")
        return _pool
