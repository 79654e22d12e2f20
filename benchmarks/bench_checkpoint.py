"""What checkpointing costs beyond the storage: the checkpoint writer and reader (seeded
content, CRC32C, manifest) against plain writes and reads of the same bytes, in the same run.

    python benchmarks/bench_checkpoint.py                       # llama3-8b at 1/500, local files
    python benchmarks/bench_checkpoint.py --storage direct --scale 1/200

Plain write: the same shard sizes written through the same storage's streaming writer from
one reused buffer of constant bytes (no generation, no checksum), with the workload's
checkpoint.fsync (llama3 files: True; --set checkpoint.fsync=False to leave it out). Plain read:
storage.get of the same keys. Also the cost of the verified cache drop between write and read
(``drop_cache``: evict_cache, then mincore over every shard) against evict_cache alone: it is
not in the read figures, but it is in the run's wall time. Each figure is the median of
--repeats; compare the ratios, not the absolutes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from fractions import Fraction

from pytest_iobench.mpi.context import SingleRank
from pytest_iobench.storage import StorageSpec, open_storage
from pytest_iobench.storage.base import join_key
from pytest_iobench.workload.checkpoint_io import WRITE_BUFFER
from pytest_iobench.workload.checkpoint_run import RankCheckpointer
from pytest_iobench.workload.page_cache import drop_cache
from pytest_iobench.workload.checkpoint_layout import layout_for
from pytest_iobench.workload.config import load_workload


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", default="llama3-8b")
    parser.add_argument("--scale", default="1/500")
    parser.add_argument("--storage", choices=("local", "direct"), default="local")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--set", action="append", default=[], help="workload override, e.g. checkpoint.fsync=False")
    args = parser.parse_args(argv)
    scale = float(Fraction(args.scale))
    config = load_workload(args.workload, args.set)
    layout = layout_for(config, scale=scale)
    with tempfile.TemporaryDirectory() as root:
        storage = open_storage(StorageSpec(args.storage, "posix", root=root))
        ckpt = RankCheckpointer(config, storage, SingleRank(), layout=layout, seed=1)
        buffer = bytearray(WRITE_BUFFER)
        total = layout.size

        def plain_write(n: int) -> float:
            start = time.perf_counter()
            for shard in layout.shards:
                with storage.open_writer(f"plain{n}/{shard.name}", fsync=config.checkpoint.fsync) as writer:
                    left = shard.size
                    while left:
                        piece = memoryview(buffer)[:min(left, len(buffer))]
                        writer.write(piece)
                        left -= len(piece)
            return total / (time.perf_counter() - start)

        drops: tuple[list[float], list[float]] = ([], [])  # (evict_cache alone, verified drop)

        def plain_read(n: int) -> float:
            keys = [f"plain{n}/{s.name}" for s in layout.shards]
            start = time.perf_counter()
            storage.evict_cache(keys)
            drops[0].append(time.perf_counter() - start)
            start = time.perf_counter()
            for key in keys:
                storage.get(key)
            return total / (time.perf_counter() - start)

        def ckpt_write(n: int) -> float:
            start = time.perf_counter()
            ckpt.write(n, epoch=1, step=n + 1)
            return total / (time.perf_counter() - start)

        def ckpt_read(n: int) -> float:
            folder = ckpt.written[-1]
            keys = [join_key(folder, s.name) for s in layout.shards]
            start = time.perf_counter()
            state = drop_cache(storage, keys)
            drops[1].append(time.perf_counter() - start)
            assert state.state in ("evicted", "odirect"), f"the cache was not dropped: {state.note}"
            start = time.perf_counter()
            ckpt.read(folder)
            return total / (time.perf_counter() - start)

        rows = {"write": ([], []), "read": ([], [])}
        for n in range(args.repeats + 1):
            pw, cw = plain_write(n), ckpt_write(n)
            pr, cr = plain_read(n), ckpt_read(n)
            storage.delete_prefix(f"plain{n}/")
            storage.delete_prefix(ckpt.written[-1] + "/")
            if n:  # the first round warms up
                rows["write"][0].append(pw), rows["write"][1].append(cw)
                rows["read"][0].append(pr), rows["read"][1].append(cr)
            else:
                drops[0].pop(), drops[1].pop()
    print(f"{layout.describe()} on {args.storage} files, fsync {config.checkpoint.fsync}")
    for phase, (plain, ours) in rows.items():
        ratio = statistics.median(o / p for o, p in zip(ours, plain))
        print(f"checkpoint {phase}: {statistics.median(ours) / 1e9:.2f} GB/s, plain {phase} of the same bytes "
              f"{statistics.median(plain) / 1e9:.2f} GB/s, ratio {ratio:.2f} (median of {args.repeats})")
    verified, alone = statistics.median(drops[1]) * 1e3, statistics.median(drops[0]) * 1e3
    if args.storage == "direct":  # O_DIRECT reads: nothing to drop, the check is the file system's type
        print(f"cache drop before the reads: {verified:.1f} ms (direct: nothing to drop)")
    else:
        ratio = statistics.median(v / e for v, e in zip(drops[1], drops[0]) if e > 0)
        print(f"cache drop before the reads: verified {verified:.1f} ms, evict_cache alone {alone:.1f} ms, "
              f"ratio {ratio:.2f} (median of {args.repeats})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
