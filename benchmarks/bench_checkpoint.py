"""What checkpointing costs beyond the storage: the checkpoint writer and reader (seeded
content, CRC32C, manifest) against plain writes and reads of the same bytes, in the same run.

    python benchmarks/bench_checkpoint.py                       # llama3-8b at 1/500, local files
    python benchmarks/bench_checkpoint.py --storage direct --scale 1/200
    python benchmarks/bench_checkpoint.py --storage s3 --scale 1/2000   # each S3 library, embedded endpoint

Plain write: the same shard sizes written through the same storage's streaming writer from
one reused buffer of constant bytes (no generation, no checksum), with the workload's
checkpoint.fsync (llama3 files: True; --set checkpoint.fsync=False to leave it out). Plain read:
storage.get of the same keys. Also the cost of the verified cache drop between write and read
(``drop_cache``: evict_cache, then mincore over every shard) against evict_cache alone: it is
not in the read figures, but it is in the run's wall time. Each figure is the median of
--repeats, the libraries (--libraries) taking turns; compare the ratios, not the absolutes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from fractions import Fraction

from places import storages

from pytest_iobench.mpi.context import SingleRank
from pytest_iobench.storage.base import join_key
from pytest_iobench.workload.checkpoint_io import WRITE_BUFFER
from pytest_iobench.workload.checkpoint_layout import layout_for
from pytest_iobench.workload.checkpoint_run import RankCheckpointer
from pytest_iobench.workload.config import load_workload
from pytest_iobench.workload.page_cache import drop_cache


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", default="llama3-8b")
    parser.add_argument("--scale", default="1/500")
    parser.add_argument("--storage", choices=("local", "direct", "s3"), default="local")
    parser.add_argument("--libraries", help="comma list (default: posix on files; s3dlio,minio,boto3 on s3)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--set", action="append", default=[], help="workload override, e.g. checkpoint.fsync=False")
    args = parser.parse_args(argv)
    libraries = (args.libraries or ("s3dlio,minio,boto3" if args.storage == "s3" else "posix")).split(",")
    scale = float(Fraction(args.scale))
    config = load_workload(args.workload, args.set)
    layout = layout_for(config, scale=scale)
    buffer = bytearray(WRITE_BUFFER)
    with storages(args.storage, libraries) as found:
        benches = {lib: Bench(storage, RankCheckpointer(config, storage, SingleRank(), layout=layout, seed=1),
                              layout, config.checkpoint.fsync, buffer) for lib, storage in found.items()}
        for n in range(args.repeats + 1):  # the first round warms up; the libraries take turns
            for bench in (benches.values() if n % 2 else reversed(benches.values())):
                bench.round(n, counted=n > 0)
    print(f"{layout.describe()} on {args.storage}, fsync {config.checkpoint.fsync} (median of {args.repeats})")
    for lib, bench in benches.items():
        for phase, (plain, ours) in bench.rows.items():
            ratio = statistics.median(o / p for o, p in zip(ours, plain))
            print(f"{args.storage}-{lib} checkpoint {phase}: {statistics.median(ours) / 1e9:.2f} GB/s, plain {phase} "
                  f"of the same bytes {statistics.median(plain) / 1e9:.2f} GB/s, ratio {ratio:.2f}")
        verified, alone = statistics.median(bench.drops[1]) * 1e3, statistics.median(bench.drops[0]) * 1e3
        if args.storage != "local":  # O_DIRECT reads or S3: nothing to drop
            print(f"{args.storage}-{lib} cache drop before the reads: {verified:.1f} ms (nothing to drop)")
        else:
            ratio = statistics.median(v / e for v, e in zip(bench.drops[1], bench.drops[0]) if e > 0)
            print(f"{args.storage}-{lib} cache drop before the reads: verified {verified:.1f} ms, evict_cache alone "
                  f"{alone:.1f} ms, ratio {ratio:.2f}")
    return 0


class Bench:
    """The four timings of one storage: plain write, checkpoint write, plain read, checkpoint read."""

    def __init__(self, storage, ckpt, layout, fsync: bool, buffer: bytearray):
        self.storage, self.ckpt, self.layout, self.fsync, self.buffer = storage, ckpt, layout, fsync, buffer
        self.rows: dict[str, tuple[list[float], list[float]]] = {"write": ([], []), "read": ([], [])}
        self.drops: tuple[list[float], list[float]] = ([], [])  # (evict_cache alone, verified drop)

    def round(self, n: int, counted: bool) -> None:
        pw, cw = self.plain_write(n), self.ckpt_write(n)
        pr, cr = self.plain_read(n), self.ckpt_read(n)
        self.storage.delete_prefix(f"plain{n}/")
        self.storage.delete_prefix(self.ckpt.written[-1] + "/")
        if counted:
            self.rows["write"][0].append(pw), self.rows["write"][1].append(cw)
            self.rows["read"][0].append(pr), self.rows["read"][1].append(cr)
        else:
            self.drops[0].pop(), self.drops[1].pop()

    def plain_write(self, n: int) -> float:
        start = time.perf_counter()
        for shard in self.layout.shards:
            with self.storage.open_writer(f"plain{n}/{shard.name}", fsync=self.fsync) as writer:
                left = shard.size
                while left:
                    piece = memoryview(self.buffer)[:min(left, len(self.buffer))]
                    writer.write(piece)
                    left -= len(piece)
        return self.layout.size / (time.perf_counter() - start)

    def plain_read(self, n: int) -> float:
        keys = [f"plain{n}/{s.name}" for s in self.layout.shards]
        start = time.perf_counter()
        self.storage.evict_cache(keys)
        self.drops[0].append(time.perf_counter() - start)
        start = time.perf_counter()
        for key in keys:
            self.storage.get(key)
        return self.layout.size / (time.perf_counter() - start)

    def ckpt_write(self, n: int) -> float:
        start = time.perf_counter()
        self.ckpt.write(n, epoch=1, step=n + 1)
        return self.layout.size / (time.perf_counter() - start)

    def ckpt_read(self, n: int) -> float:
        folder = self.ckpt.written[-1]
        keys = [join_key(folder, s.name) for s in self.layout.shards]
        start = time.perf_counter()
        state = drop_cache(self.storage, keys)
        self.drops[1].append(time.perf_counter() - start)
        assert state.state in ("evicted", "odirect", "no-client-cache"), f"the cache was not dropped: {state.note}"
        start = time.perf_counter()
        self.ckpt.read(folder)
        return self.layout.size / (time.perf_counter() - start)


if __name__ == "__main__":
    sys.exit(main())
