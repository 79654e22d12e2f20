"""How fast the seeded random source produces bytes (the issue's floor: 5 GB/s on 2 cores).

    python benchmarks/bench_random.py                  # 2 GiB per repeat, 5 repeats
    python benchmarks/bench_random.py --size 4GiB --repeats 7

Figures (GB = 10^9 bytes), each the median of --repeats:
- readinto, 8 MiB buffer: a word-aligned buffer gets the stream's words directly (one XOR pass)
- view: zero-copy views of the stream's own staging buffer (what the format writers use)
- readinto, 114660 B buffer: pieces that are not whole words go through staging (a copy more)
- 2 streams at once: two threads, one stream each (what a 2-thread generation does), summed
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, ".")
from together import run_together

from pytest_iobench.data.options import byte_size
from pytest_iobench.data.random import stream_for

GB = 1e9


def fill(size: int, chunk: int, seed: int) -> float:
    """Seconds to pull ``size`` bytes through readinto(chunk-sized buffer)."""
    stream = stream_for(seed, 0, limit=size + chunk)
    buf = np.empty(chunk, dtype=np.uint8)
    stream.readinto(buf)  # first touch of the buffer and of the generator's pages is not counted
    start = time.perf_counter()
    for _ in range(size // chunk):
        stream.readinto(buf)
    return time.perf_counter() - start


def views(size: int, seed: int) -> float:
    stream = stream_for(seed, 1, limit=2 * size)
    stream.view(1)
    start = time.perf_counter()
    left = size
    while left:
        left -= stream.view(left).nbytes
    return time.perf_counter() - start


def concurrent(size: int, threads: int, seed: int) -> float:
    times = [0.0] * threads

    def run(i: int) -> None:
        times[i] = fill(size, 8 << 20, seed + i)

    return run_together(lambda i=i: run(i) for i in range(threads))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=byte_size, default="2GiB", help="bytes per repeat (default 2GiB)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    size = args.size // (8 << 20) * (8 << 20)
    cases = {
        "readinto, 8 MiB buffer": lambda r: size / fill(size, 8 << 20, r),
        "view (zero copy)": lambda r: size / views(size, r),
        "readinto, 114660 B buffer": lambda r: (size // 114660 * 114660) / fill(size // 114660 * 114660, 114660, r),
        "2 streams at once (sum)": lambda r: 2 * size / concurrent(size, 2, r),
    }
    print(f"random source, {size / GB:.2f} GB per repeat, median of {args.repeats}:")
    for name, case in cases.items():
        rates = [case(r) / GB for r in range(args.repeats)]
        print(f"  {name:28s} {statistics.median(rates):6.2f} GB/s  (min {min(rates):.2f}, max {max(rates):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
