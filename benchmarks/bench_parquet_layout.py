"""Parquet generation speed in each layout (dataset.parquet.layout) against a plain write of the
same bytes to the same place in the same run.

    python benchmarks/bench_parquet_layout.py                          # 256 MiB, 64 KiB rows, 1 thread, 5 repeats
    python benchmarks/bench_parquet_layout.py --size 512MiB --row 1MiB --threads 2 --repeats 7

``dlio`` (the default) is a fixed_size_binary column with dictionary and statistics on, which the
MLCommons fork's readers read; ``list`` is the fork's own column type (fixed_size_list<uint8>,
dictionary and statistics on); ``fast`` is a fixed_size_binary column without dictionary or
statistics, which the fork cannot read. Each repeat runs the plain reference and every layout in
a rotating order, each after an os.sync(); the reference writes
the files the fast layout produced (bench_generate.plain_write). Printed: medians of the repeats
(MB = 10^6 bytes written), the median of the per-repeat ratios to the reference, and each
layout's CPU-only rate (one thread, a writer that drops the bytes).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from bench_generate import MB, cpu_only, plain_write  # noqa: E402

from pytest_iobench.data.generate import generate  # noqa: E402
from pytest_iobench.data.options import byte_size  # noqa: E402
from pytest_iobench.data.sizing import sized_spec  # noqa: E402
from pytest_iobench.storage import StorageSpec, open_storage  # noqa: E402

LAYOUTS = ("dlio", "list", "fast")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=byte_size, default=256 << 20, help="bytes of samples per run")
    parser.add_argument("--row", type=byte_size, default=64 << 10, help="bytes of one row (sample)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--root", help="a directory to write in (default: a temporary one)")
    args = parser.parse_args(argv)

    root = tempfile.mkdtemp(prefix="bench-parquet-layout-", dir=args.root)
    try:
        storage = open_storage(StorageSpec("local", "posix", root=root))
        specs = {layout: sized_spec("parquet", args.size, record_length_bytes=args.row,
                                    parquet={"layout": layout}) for layout in LAYOUTS}
        buffer = memoryview(os.urandom(8 << 20))
        sizes = dict(generate(specs["fast"], storage, threads=args.threads, regenerate=True).sizes)
        storage.delete_prefix("")
        rates: dict[str, list[float]] = {name: [] for name in ("plain", *LAYOUTS)}
        ratios: dict[str, list[float]] = {layout: [] for layout in LAYOUTS}
        order = ["plain", *LAYOUTS]
        for repeat in range(args.repeats):
            turn = order[repeat % len(order):] + order[:repeat % len(order)]  # each goes first in turn
            seconds = {}
            for name in turn:
                os.sync()
                if name == "plain":
                    plain = plain_write(storage, sizes, buffer, False, args.threads)
                    rates["plain"].append(sum(sizes.values()) / plain / MB)
                else:
                    result = generate(specs[name], storage, threads=args.threads, regenerate=True)
                    rates[name].append(result.mb_per_s)
                    seconds[name] = result.seconds
                storage.delete_prefix("")
            for layout in LAYOUTS:
                ratios[layout].append(rates[layout][-1] / rates["plain"][-1])
        spec = specs["fast"]
        print(f"parquet {spec.num_files_train} files x {spec.num_samples_per_file} rows of {args.row:,} bytes, "
              f"{args.threads} thread(s), median of {args.repeats}")
        print(f"  plain write      {statistics.median(rates['plain']):8,.0f} MB/s")
        for layout in LAYOUTS:
            cpu = cpu_only(specs[layout], max(1, args.repeats // 2))
            print(f"  layout {layout:<9} {statistics.median(rates[layout]):8,.0f} MB/s  "
                  f"ratio {statistics.median(ratios[layout]):.2f} (min {min(ratios[layout]):.2f}, "
                  f"max {max(ratios[layout]):.2f})  CPU only {cpu:,.0f} MB/s")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
