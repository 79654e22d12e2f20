"""What the manifest's per-file CRC-32C costs generation: the same dataset generated with and
without the checksumming writer in the path (data/integrity.py), taking turns, in the same
directory, page cache only (no fsync: the CPU-bound case, where a checksum could show).

    python benchmarks/bench_checksum.py                    # npy and parquet, 256 MiB, 1 thread, 7 repeats
    python benchmarks/bench_checksum.py --formats npy --size 1GiB --threads 2 --repeats 9

Printed per format: the medians of both (MB/s, MB = 10^6 bytes) and the median of the
per-repeat ratios with / without (1.0: free).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

from pytest_iobench.data.generate import write_files
from pytest_iobench.data.integrity import ChecksummingStorage
from pytest_iobench.data.options import byte_size
from pytest_iobench.data.sizing import sized_spec
from pytest_iobench.storage import StorageSpec, open_storage


def once(spec, root: str, threads: int, checked: bool) -> float:
    storage = open_storage(StorageSpec("local", "posix", root=root))
    files = [(split, index) for split, index, _ in spec.all_files()]
    target = ChecksummingStorage(storage) if checked else storage
    start = time.perf_counter()
    sizes, _ = write_files(spec, target, files, threads=threads)
    seconds = time.perf_counter() - start
    shutil.rmtree(root)
    return sum(sizes.values()) / seconds / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--formats", default="npy,parquet")
    parser.add_argument("--size", default="256MiB", type=byte_size)
    parser.add_argument("--threads", default=1, type=int)
    parser.add_argument("--repeats", default=7, type=int)
    parser.add_argument("--dir", default=None, help="where to write (default: a temporary directory)")
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="bench-checksum-", dir=args.dir)
    try:
        for fmt in args.formats.split(","):
            spec = sized_spec(fmt, args.size)
            plain, checked, ratios = [], [], []
            for repeat in range(args.repeats):
                order = (False, True) if repeat % 2 == 0 else (True, False)
                got = {c: once(spec, os.path.join(base, f"{fmt}-{repeat}-{c}"), args.threads, c) for c in order}
                plain.append(got[False])
                checked.append(got[True])
                ratios.append(got[True] / got[False])
            print(f"{fmt}: without {statistics.median(plain):,.0f} MB/s, with crc32c "
                  f"{statistics.median(checked):,.0f} MB/s, ratio {statistics.median(ratios):.2f} "
                  f"(per repeat {min(ratios):.2f}-{max(ratios):.2f}; {args.size / 1e6:,.0f} MB, "
                  f"{args.threads} thread(s), median of {args.repeats})")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
