"""What the throughput suite's engine (storage/throughput.transfer) costs: the same objects got
or put by ``transfer`` and by a plain loop of storage calls, alternately in the same run.

    python benchmarks/bench_throughput.py                     # 256 x 1 MiB local files
    python benchmarks/bench_throughput.py --objects 1024 --size-kib 64

1. One worker: ``transfer(storage, op, keys, 1)`` against ``for key in keys: storage.get(key)``
   (or put), on local files: gets from the page cache (the engine's cost is largest there, as
   nothing else is slow) and from the device (the cache dropped before each run), puts into the
   page cache. Target: the engine at >= 0.9x the plain loop; what it adds is a thread, a lock
   and two clock reads per object.
2. N workers (--threads, default 4) against N plain threads splitting the keys between them
   beforehand (no shared counter, no per-call timing): the cost of taking the next object.

Each figure is the median of --repeats runs of the per-repeat ratio, the two taking turns at
going first (this machine's absolute speed varies from run to run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

from together import run_together

from pytest_iobench.data.random import stream_for
from pytest_iobench.storage import StorageSpec, open_storage
from pytest_iobench.storage.throughput import transfer


def plain(storage, op: str, keys: list[str], payloads: list[bytes], threads: int) -> float:
    """Seconds of the plain loop: ``threads`` threads, each with its own slice of the keys."""
    def work(mine: list[int]) -> None:
        if op == "get":
            for i in mine:
                storage.get(keys[i])
        else:
            for i in mine:
                storage.put(keys[i], payloads[i])

    slices = [list(range(w, len(keys), threads)) for w in range(threads)]
    return run_together(lambda s=s: work(s) for s in slices)


def ratio(storage, op: str, keys: list[str], payloads: list[bytes], threads: int, repeats: int,
          cold: bool) -> tuple[float, float, float]:
    """(engine MB/s, plain MB/s, median of engine/plain speed ratios)."""
    total = sum(map(len, payloads))

    def drop() -> None:
        if cold and not storage.evict_cache(keys):
            raise SystemExit("cannot drop the page cache here")

    engine, loop, ratios = [], [], []
    for r in range(repeats + 1):  # the first pair warms up
        def run_engine() -> float:
            drop()
            return transfer(storage, op, keys, threads, payloads if op == "put" else None).seconds

        def run_plain() -> float:
            drop()
            return plain(storage, op, keys, payloads, threads)

        if r % 2:  # alternate which goes first: the host's own caches favour the second
            a, b = run_engine(), run_plain()
        else:
            b, a = run_plain(), run_engine()
        if r:
            engine.append(total / a)
            loop.append(total / b)
            ratios.append(b / a)
    return statistics.median(engine) / 1e6, statistics.median(loop) / 1e6, statistics.median(ratios)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=256)
    parser.add_argument("--size-kib", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    size = args.size_kib * 1024
    payloads = [stream_for(1, "bench", i, limit=size).read(size) for i in range(args.objects)]
    with tempfile.TemporaryDirectory(dir=os.environ.get("IOBENCH_BENCH_DIR")) as root:
        storage = open_storage(StorageSpec("local", "posix", root=root))
        keys = [f"objects/{i:06d}" for i in range(args.objects)]
        for key, payload in zip(keys, payloads):
            storage.put(key, payload)
        cases = [("get", 1, False, "from the page cache"), ("get", 1, True, "from the device (cache dropped)"),
                 ("put", 1, False, "into the page cache"),
                 ("get", args.threads, False, "from the page cache"),
                 ("put", args.threads, False, "into the page cache")]
        print(f"transfer() against a plain loop, {args.objects} x {args.size_kib} KiB local files, median of "
              f"{args.repeats} (MB = 10^6 B); target >= 0.9")
        for op, threads, cold, what in cases:
            engine, loop, r = ratio(storage, op, keys, payloads, threads, args.repeats, cold)
            verdict = "ok" if r >= 0.9 else "UNDER TARGET"
            print(f"  {op} {what}, {threads} thread(s): engine {engine:,.0f} MB/s, plain {loop:,.0f} MB/s, "
                  f"ratio {r:.2f} {verdict}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
