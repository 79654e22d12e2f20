"""Memory of concurrent streaming writes to S3: the peak RSS growth of a process whose N
threads each stream one object through the storage's writer, per S3 client library, as the
storage layer runs them (the process-wide part budget, reused part buffers, the allocator
policy of storage/allocator.py), with glibc's malloc defaults instead of that policy, with no
budget (one too large to ever bind), and with neither; and what they cost in throughput. Then
the peak RSS of generating a dataset to S3 with 4 threads.

    python benchmarks/bench_storage_memory.py                          # 1/4/8 writers x 64 MiB
    python benchmarks/bench_storage_memory.py --writers 8 --repeats 3 --generate 1GiB

Every case runs in a fresh child process (so its high-water mark is its own) against one
embedded endpoint (moto in its own process) started here. A child opens the storage, records
its RSS, then starts N threads that each write --size in 1 MiB pieces from a reused buffer
(the way generation hands pieces over) and commit; it reports its peak RSS (VmHWM) minus that
starting RSS, and the MB/s of all the writers together (MB = 10^6 bytes). Printed: the median
of --repeats for each, and the throughput ratio now / neither. Target: 8 concurrent writers
well under 256 MiB of growth. moto is the bottleneck for speed here: compare the ratio, not
the absolutes.

--generate SIZE: a child generates SIZE of npy (1 MiB samples) as 4 files with 4 threads to
S3 through each library (data.generate.generate, as the suites do) and reports its peak RSS
(VmHWM) with the libraries loaded before. Target: peak RSS < 256 MiB.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from together import run_together  # noqa: E402

from pytest_iobench.storage.endpoint import EmbeddedS3  # noqa: E402

MiB = 1 << 20
MB = 1e6
LIBRARIES = ("boto3", "s3dlio", "minio")
#: parts allowed in flight when "unbounded": more than any case here can use
UNBOUNDED = 1 << 16


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


#: now: as the storage layer runs; glibc: malloc's defaults, not storage/allocator.py's policy;
#: no budget: parts in flight unbounded; neither: both
MODES = ("now", "glibc", "no budget", "neither")


def child(library: str, writers: int, size: int, mode: str) -> dict:
    """One case, in this (fresh) process: returns its figures."""
    from pytest_iobench.storage import StorageSpec, allocator, open_storage, s3common

    if mode in ("no budget", "neither"):
        s3common.PART_BUDGET.resize(UNBOUNDED)
    if mode in ("glibc", "neither"):
        allocator.keep_glibc_defaults()
    spec = StorageSpec("s3", library, bucket=os.environ["BENCH_BUCKET"], prefix=os.environ["BENCH_PREFIX"],
                       endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    storage = open_storage(spec)
    storage.put("warm-up", b"x")  # connections and lazy imports happen before the baseline
    piece = memoryview(bytearray(os.urandom(MiB)))
    barrier = threading.Barrier(writers)
    start_rss = _status_kib("VmRSS")

    def write(n: int) -> None:
        barrier.wait()
        with storage.open_writer(f"w{n}") as writer:
            left = size
            while left:
                chunk = piece[:min(MiB, left)]
                writer.write(chunk)
                left -= chunk.nbytes

    elapsed = run_together(lambda n=n: write(n) for n in range(writers))
    peak = _status_kib("VmHWM")
    sizes = [storage.stat(f"w{n}").size for n in range(writers)]
    storage.delete_prefix("")
    storage.close()
    if sizes != [size] * writers:
        raise SystemExit(f"{library}: objects of {sizes} bytes, expected {size} each")
    return {"growth_mib": (peak - start_rss) / 1024, "mb_s": writers * size / elapsed / MB,
            "peak_parts": s3common.PART_BUDGET.peak, "buffers_made": s3common.PART_BUFFERS.made}


def generate_child(library: str, size: int) -> dict:
    """Generate ``size`` bytes of npy as 4 files with 4 threads to S3: peak RSS in MiB."""
    import numpy  # noqa: F401  (what generation loads, loaded before the baseline is taken)

    from pytest_iobench.data.formats import get_format
    from pytest_iobench.data.generate import generate
    from pytest_iobench.data.spec import DatasetSpec
    from pytest_iobench.storage import StorageSpec, open_storage

    get_format("npy")
    spec = StorageSpec("s3", library, bucket=os.environ["BENCH_BUCKET"], prefix=os.environ["BENCH_PREFIX"],
                       endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    storage = open_storage(spec)
    storage.put("warm-up", b"x")
    before = _status_kib("VmHWM")
    record = 1 << 20
    dataset = DatasetSpec.from_mapping({"format": "npy", "num_files_train": 4, "record_length_bytes": record,
                                        "num_samples_per_file": max(1, size // 4 // record)})
    started = time.perf_counter()
    result = generate(dataset, storage, threads=4, regenerate=True)
    elapsed = time.perf_counter() - started
    peak = _status_kib("VmHWM")
    storage.delete_prefix("")
    storage.close()
    return {"peak_mib": peak / 1024, "before_mib": before / 1024, "mb_s": result.bytes / elapsed / MB}


def run_case(endpoint, library: str, writers: int, size: int, mode: str, case: int) -> dict:
    env = {**os.environ, **endpoint.environ(), "BENCH_BUCKET": "iobench", "BENCH_PREFIX": f"case-{case}"}
    args = [sys.executable, __file__, "--child", library, str(writers), str(size), mode]
    out = subprocess.run(args, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{library} {mode} x{writers}: the child failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def parse_size(text: str) -> int:
    units = {"KiB": 1 << 10, "MiB": MiB, "GiB": 1 << 30}
    for unit, factor in units.items():
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        library, writers, size, mode = argv[1], int(argv[2]), int(argv[3]), argv[4]
        figures = generate_child(library, size) if writers == 0 else child(library, writers, size, mode)
        print(json.dumps(figures))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--libraries", default=",".join(LIBRARIES))
    parser.add_argument("--writers", default="1,4,8")
    parser.add_argument("--size", default="64MiB", help="bytes each writer streams")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--generate", metavar="SIZE", help="also generate SIZE of npy to S3 with 4 threads "
                                                            "per library and show the peak RSS (e.g. 1GiB)")
    args = parser.parse_args(argv)
    size = parse_size(args.size)
    from pytest_iobench.storage.s3common import PART_BUDGET, PART_SIZE

    try:  # minio's parts are S3's minimum (its SDK holds each part two or three times)
        from pytest_iobench.storage.minio_backend import PART_SIZE as MINIO_PART_SIZE
        minio_parts = f" (minio {MINIO_PART_SIZE // MiB} MiB)"
    except ImportError:
        minio_parts = ""
    print(f"{size / MiB:.0f} MiB per writer, {PART_SIZE // MiB} MiB parts{minio_parts}, budget {PART_BUDGET.parts} "
          f"parts per process; median of {args.repeats}; growth = peak RSS (VmHWM) - RSS before the writes")
    print(f"{'library':8} {'writers':>7} | {'growth MiB: now':>15} {'glibc':>6} {'no budget':>9} {'neither':>7} | "
          f"{'MB/s: now':>9} {'glibc':>6} {'neither':>7} {'ratio':>6} | {'peak parts':>10} {'buffers':>7}")
    case = 0
    with EmbeddedS3() as endpoint:
        for library in args.libraries.split(","):
            for writers in (int(w) for w in args.writers.split(",")):
                runs = {mode: [] for mode in MODES}
                for repeat in range(args.repeats):
                    order = MODES[repeat % len(MODES):] + MODES[:repeat % len(MODES)]  # rotate the order
                    for mode in order:
                        case += 1
                        runs[mode].append(run_case(endpoint, library, writers, size, mode, case))
                med = {mode: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for mode, rs in runs.items()}
                now, glibc, nob, old = med["now"], med["glibc"], med["no budget"], med["neither"]
                print(f"{library:8} {writers:>7} | {now['growth_mib']:>15.0f} {glibc['growth_mib']:>6.0f} "
                      f"{nob['growth_mib']:>9.0f} {old['growth_mib']:>7.0f} | {now['mb_s']:>9.0f} "
                      f"{glibc['mb_s']:>6.0f} {old['mb_s']:>7.0f} {now['mb_s'] / old['mb_s']:>6.2f} | "
                      f"{now['peak_parts']:>10.0f} {now['buffers_made']:>7.0f}", flush=True)
        if args.generate:
            size = parse_size(args.generate)
            print(f"peak RSS generating {size / MiB:.0f} MiB of npy (1 MiB samples, 4 files, 4 threads) to S3 "
                  f"(child process, VmHWM; median of {args.repeats}; target < 256 MiB):")
            for library in args.libraries.split(","):
                runs = []
                for _ in range(args.repeats):
                    case += 1
                    runs.append(run_case(endpoint, library, 0, size, "now", case))
                med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                verdict = "ok" if med["peak_mib"] < 256 else "OVER 256 MiB"
                print(f"  {library:8} peak RSS {med['peak_mib']:.0f} MiB "
                      f"(before generating {med['before_mib']:.0f} MiB; {med['mb_s']:.0f} MB/s) {verdict} "
                      f"(max {max(r['peak_mib'] for r in runs):.0f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
