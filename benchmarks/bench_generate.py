"""Generation speed per format against a plain write of the same bytes to the same place in
the same run, with the same number of threads, and the peak memory of generating one big file.

    python benchmarks/bench_generate.py                        # every format, 512 MiB each, local files
    python benchmarks/bench_generate.py --formats parquet,npy --size 1GiB --threads 1,2 --repeats 7
    python benchmarks/bench_generate.py --modes cache --threads 1,2 --speed-only   # the page-cache table only
    python benchmarks/bench_generate.py --rss-only --rss-size 2GiB --rss-formats hdf5-gzip --rss-threads 4
    python benchmarks/bench_generate.py --size 64MiB --repeats 3 --rss-size 256MiB   # a quick look

Speed: each repeat writes the plain reference and the generated dataset to the same directory,
in alternating order (plain first on even repeats), after an os.sync(). The reference writes
exactly the files the generation produced (same names' sizes, same storage, same streaming
writer) from one reused 8 MiB buffer, with as many threads as the generation (each takes the
next file, as generation's threads do), no random data, no encoding: what the storage absorbs.
Both are deleted before the next repeat. Printed: medians of --repeats (MB = 10^6 bytes), the
median of the per-repeat ratios generation / reference, and where the generation's writer
threads spent their time (``GenerateResult.stages``, the last repeat's, as shares of their
summed time): making the random bytes, the format's own work (layout, checksums,
compression, copies), image encoding, the storage's write calls, commits (rename, fsync),
companion files. Two tables: "cache" first (no fsync on either side: what generation does by
default, DLIO too, so the page cache takes the bytes and the CPU is the limit), then "durable"
(every file fsynced on both sides: the device is the limit). Targets (issue 17, both tables):
npz, npy, hdf5, tfrecord, indexed_binary >= 0.8; parquet >= 0.7; jpeg and png report their
encode time apart (benchmarks/bench_images.py compares them with a plain Pillow loop).

A CPU-only line per format (one thread writing into a writer that drops the bytes) shows what
the format costs the CPU: in the "cache" mode the page cache takes bytes at memory-copy speed,
so a format whose CPU-only rate is near or below that cannot keep up on one core.

Peak memory: a child process generates --rss-size (default 2 GiB) of parquet, npy and
gzip-compressed hdf5 (256 MiB samples), as one file with one thread and as 4 files with 4
threads, and reports its peak RSS (VmHWM) and the RSS it had before generating (Python + numpy
+ pyarrow + h5py loaded). Target: < 256 MiB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from pytest_iobench.data.formats import get_format  # noqa: E402
from pytest_iobench.data.generate import generate  # noqa: E402
from pytest_iobench.data.options import byte_size  # noqa: E402
from pytest_iobench.data.random import stream_for  # noqa: E402
from pytest_iobench.data.sizing import sized_spec  # noqa: E402
from pytest_iobench.data.spec import DatasetSpec  # noqa: E402
from pytest_iobench.storage import StorageSpec, StreamWriter, open_storage  # noqa: E402

MB = 1e6
#: text and image encoding run at tens of MB/s: these formats get 1/8 of --size
SLOW_FORMATS = ("csv", "jpeg", "png")
TARGETS = {"parquet": 0.7, "npy": 0.8, "tfrecord": 0.8, "indexed_binary": 0.8, "npz": 0.8, "hdf5": 0.8}
ALL = ("parquet", "npy", "tfrecord", "indexed_binary", "npz", "hdf5", "csv", "jpeg", "png")


def plain_write(storage, sizes: dict[str, int], buffer: memoryview, fsync: bool, threads: int) -> float:
    """Seconds to write files of ``sizes`` from one reused (read-only) buffer, ``threads`` files
    at a time: a reference with the generation's parallelism, so ratios compare like with like."""

    def write_one(item: tuple[str, int]) -> None:
        key, size = item
        with storage.open_writer(f"plain/{key}", fsync=fsync) as writer:
            left = size
            while left:
                piece = buffer[:min(left, len(buffer))]
                writer.write(piece)
                left -= len(piece)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="plain") as pool:
        list(pool.map(write_one, sizes.items()))
    return time.perf_counter() - start


class _NullWriter(StreamWriter):
    """Takes the bytes and drops them: generation with no storage at all."""

    def __init__(self, key: str):
        super().__init__(None, key)

    def _write(self, view) -> None:
        pass

    def _commit(self) -> None:
        pass

    def _abort(self) -> None:
        pass


def cpu_only(spec, repeats: int) -> float:
    """Median MB/s of one thread writing every file of ``spec`` into a null writer: the
    format's CPU cost (random source, encoding, checksums) with no storage."""
    fmt = get_format(spec.format)
    rates = []
    for _ in range(repeats):
        total, start = 0, time.perf_counter()
        for split, index, key in spec.all_files():
            stream = stream_for(spec.seed, "train", index, limit=fmt.stream_bytes(spec, split, index))
            total += fmt.write(_NullWriter(key), spec, split, index, stream).bytes
        rates.append(total / (time.perf_counter() - start) / MB)
    return statistics.median(rates)


def measure(storage, spec, threads: int, repeats: int, fsync: bool, buffer: memoryview) -> dict:
    """Alternate plain writes and generations of the same files; medians and pair ratios."""
    # a warm-up generation tells the sizes of the files the reference writes
    sizes = dict(generate(spec, storage, threads=threads, regenerate=True, fsync=fsync).sizes)
    storage.delete_prefix("train/")
    plain, gen, ratios, encode = [], [], [], []
    stages: dict[str, float] = {}
    for repeat in range(repeats):
        # which goes first alternates: the second of a pair may find the device in another state
        for step in ((0, 1) if repeat % 2 == 0 else (1, 0)):
            os.sync()  # each run starts with no dirty pages of the previous one
            if step == 0:
                t_plain = plain_write(storage, sizes, buffer, fsync, threads)
                storage.delete_prefix("plain/")
            else:
                result = generate(spec, storage, threads=threads, regenerate=True, fsync=fsync)
                storage.delete_prefix("train/")
        plain.append(result.bytes / t_plain / MB)
        gen.append(result.mb_per_s)
        ratios.append(gen[-1] / plain[-1])
        encode.append(result.encode_seconds)
        stages = result.stages
    return {"stages": stages, "plain": statistics.median(plain), "gen": statistics.median(gen),
            "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
            "encode": statistics.median(encode),
            "files": result.files, "seconds": statistics.median([result.bytes / g / MB for g in gen])}


def stage_shares(stages: dict[str, float]) -> str:
    """``random 12% format 5% write 70% ...``: each stage's share of the writer threads' time."""
    total = sum(stages.values())
    if total <= 0:
        return ""
    return " ".join(f"{name} {seconds / total:.0%}" for name, seconds in stages.items() if seconds / total >= 0.005)


MODES = {"cache": "no fsync (writes land in the page cache: memory-copy speed, CPU is the limit)",
         "durable": "every file fsynced on commit, both sides (the device is the limit)"}


def speed(args) -> None:
    buffer = memoryview(os.urandom(8 << 20))
    root = tempfile.mkdtemp(prefix="iobench-bench-", dir=args.root)
    try:
        storage = open_storage(StorageSpec("local", "posix", root=root))
        print(f"generation vs plain write of the same files with the same number of threads (thr), local files "
              f"in {root}, median of {args.repeats} (MB/s = 10^6 B/s; ratio = median of per-repeat "
              "generation/plain; stages: where the generation's writer threads spent their time)")
        if args.cpu:
            print("cpu: one thread, no storage (bytes dropped): each format's own CPU cost, for comparison")
            for fmt in args.formats:
                size = args.size // 8 if fmt in SLOW_FORMATS else args.size
                spec = sized_spec(fmt, size, files=args.files)
                print(f"  {fmt:15s} {size / MB:6,.0f} MB {cpu_only(spec, args.repeats):9,.0f} MB/s", flush=True)
        for mode in args.modes:
            print(f"{mode}: {MODES[mode]}")
            print(f"  {'format':15s} {'MB':>6s} {'thr':>3s} {'plain MB/s':>10s} {'gen MB/s':>9s} "
                  f"{'ratio':>6s} {'(min-max)':>11s} {'target':>6s}       stages")
            for fmt in args.formats:
                size = args.size // 8 if fmt in SLOW_FORMATS else args.size
                spec = sized_spec(fmt, size, files=args.files)
                for threads in args.threads:
                    m = measure(storage, spec, threads, args.repeats, mode == "durable", buffer)
                    target = TARGETS.get(fmt)
                    verdict = "" if target is None else ("ok" if m["ratio"] >= target else "BELOW")
                    note = ""
                    if fmt in ("jpeg", "png"):
                        note = (f" encode {m['encode']:.2f} s in {m['seconds']:.2f} s ({m['files']} images, "
                                f"{m['encode'] / m['files'] * 1e3:.1f} ms each, summed over threads)")
                    print(f"  {fmt:15s} {size / MB:6,.0f} {threads:3d} {m['plain']:10,.0f} {m['gen']:9,.0f} "
                          f"{m['ratio']:6.2f} {m['ratio_min']:5.2f}-{m['ratio_max']:<5.2f} "
                          f"{target if target else '-':>6} {verdict:5s} {stage_shares(m['stages'])}{note}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def vm_hwm() -> int:
    """This process's peak RSS (VmHWM). Not getrusage's ru_maxrss: after fork + exec that still
    counts the parent's pages the child had before exec."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


#: the memory cases: name -> (format, record bytes, extra spec keys); hdf5-gzip has samples far
#: larger than a chunk (DLIO-like 256 MiB records), which compressed hdf5 used to hold whole
RSS_CASES = {
    "parquet": ("parquet", 64 << 10, {}),
    "npy": ("npy", 1 << 20, {}),
    "hdf5-gzip": ("hdf5", 256 << 20, {"compression": "gzip", "compression_level": 1}),
}


def rss_child(case: str, size: int, root: str, threads: int) -> None:
    """In a child process: generate ``size`` bytes in ``threads`` files with as many threads;
    print peak RSS as JSON."""
    import numpy  # noqa: F401  (what generation loads, loaded before the baseline is taken)
    import pyarrow.parquet  # noqa: F401

    from pytest_iobench.data.formats import get_format

    fmt, record, extra = RSS_CASES[case]
    get_format(fmt)
    before = vm_hwm()
    record = max(1, min(record, size // threads))
    spec = DatasetSpec.from_mapping({"format": fmt, "num_files_train": threads, "record_length_bytes": record,
                                     "num_samples_per_file": max(1, size // threads // record), **extra})
    storage = open_storage(StorageSpec("local", "posix", root=root))
    result = generate(spec, storage, threads=threads, regenerate=True)
    peak = vm_hwm()
    print(json.dumps({"format": case, "bytes": result.bytes, "before": before, "peak": peak,
                      "mb_per_s": result.mb_per_s, "files": result.files}))


def rss(args) -> None:
    print(f"peak RSS generating {args.rss_size / (1 << 30):.2f} GiB (child process, VmHWM; with N threads, N files "
          "of 1/N each; target < 256 MiB):")
    for case in args.rss_formats:
        for threads in args.rss_threads:
            root = tempfile.mkdtemp(prefix="iobench-rss-", dir=args.root)
            try:
                out = subprocess.run([sys.executable, __file__, "--rss-child", case, "--rss-size", str(args.rss_size),
                                      "--root", root, "--rss-threads", str(threads)],
                                     capture_output=True, text=True, check=True)
                data = json.loads(out.stdout.strip().splitlines()[-1])
            finally:
                shutil.rmtree(root, ignore_errors=True)
            mib = 1 << 20
            record = RSS_CASES[case][1]
            print(f"  {case:10s} {threads} thr, {data['files']} x {data['bytes'] / data['files'] / mib:,.0f} MiB "
                  f"({record / mib:g} MiB samples): peak RSS {data['peak'] / mib:,.0f} MiB (before generating "
                  f"{data['before'] / mib:,.0f} MiB; {data['mb_per_s']:,.0f} MB/s) "
                  + ("ok" if data["peak"] < 256 * mib else "OVER 256 MiB"), flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--formats", default=",".join(ALL))
    parser.add_argument("--size", type=byte_size, default="512MiB", help="bytes per format (default 512MiB)")
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--threads", default="1,2,4")
    parser.add_argument("--modes", default="cache,durable",
                        help="cache (no fsync, as generation runs by default), durable (fsync), or both (default)")
    parser.add_argument("--no-cpu", dest="cpu", action="store_false", help="leave out the CPU-only line")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--root", default=None, help="directory to work in (default: the temp dir)")
    parser.add_argument("--rss-size", type=byte_size, default="2GiB", help="bytes of the memory cases (default 2GiB)")
    parser.add_argument("--rss-formats", default=",".join(RSS_CASES), help=f"memory cases ({', '.join(RSS_CASES)})")
    parser.add_argument("--rss-threads", default="1,4", help="thread counts of the memory cases (default 1,4)")
    parser.add_argument("--rss-only", action="store_true")
    parser.add_argument("--speed-only", action="store_true")
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        rss_child(args.rss_child, args.rss_size, args.root, int(args.rss_threads))
        return 0
    args.formats = [f for f in args.formats.split(",") if f]
    args.threads = [int(t) for t in args.threads.split(",")]
    args.modes = [m for m in args.modes.split(",") if m]
    if any(m not in MODES for m in args.modes):
        parser.error(f"--modes: {args.modes} has an unknown mode; valid: {', '.join(MODES)}")
    args.rss_formats = [f for f in args.rss_formats.split(",") if f]
    unknown = [f for f in args.rss_formats if f not in RSS_CASES]
    if unknown:
        parser.error(f"--rss-formats: {', '.join(unknown)} unknown; valid: {', '.join(RSS_CASES)}")
    args.rss_threads = [int(t) for t in args.rss_threads.split(",")]
    if not args.rss_only:
        speed(args)
    if not args.speed_only:
        rss(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
