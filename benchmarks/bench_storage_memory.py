"""Memory of concurrent streaming writes to S3: the peak RSS growth of a process whose N
threads each stream one object through the storage's writer, per S3 client library, as the
storage layer runs them (the process-wide part budget, glibc's mmap threshold fixed), with no
budget (one too large to ever bind), and as before both (no budget, glibc's dynamic
threshold), and what they cost in throughput.

    python benchmarks/bench_storage_memory.py                          # 1/4/8 writers x 64 MiB
    python benchmarks/bench_storage_memory.py --writers 1,8 --size 128MiB --repeats 3

Every case runs in a fresh child process (so its high-water mark is its own) against one
embedded endpoint (moto in its own process) started here. A child opens the storage, records
its RSS, then starts N threads that each write --size in 1 MiB pieces from a reused buffer
(the way generation hands pieces over) and commit; it reports its peak RSS (VmHWM) minus that
starting RSS, and the MB/s of all the writers together (MB = 10^6 bytes). Printed: the median
of --repeats for each, and the throughput ratio now/before. Target: 8 concurrent writers well
under 256 MiB of growth. moto is the bottleneck for speed here: compare the ratio, not the
absolutes.
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


MODES = ("now", "no budget", "before")


def child(library: str, writers: int, size: int, mode: str) -> dict:
    """One case, in this (fresh) process: returns its figures."""
    from pytest_iobench.storage import StorageSpec, open_storage
    from pytest_iobench.storage import s3common

    if mode != "now":
        s3common.PART_BUDGET.resize(UNBOUNDED)
    if mode == "before":  # as if the threshold had been tuned already: glibc's default stays
        s3common._allocator.update(tuned=True, ok=False)
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

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    peak = _status_kib("VmHWM")
    sizes = [storage.stat(f"w{n}").size for n in range(writers)]
    storage.delete_prefix("")
    storage.close()
    if sizes != [size] * writers:
        raise SystemExit(f"{library}: objects of {sizes} bytes, expected {size} each")
    return {"growth_mib": (peak - start_rss) / 1024, "mb_s": writers * size / elapsed / MB,
            "peak_parts": s3common.PART_BUDGET.peak}


def run_case(endpoint, library: str, writers: int, size: int, mode: str, case: int) -> dict:
    env = {**os.environ, **endpoint.environ(), "BENCH_BUCKET": "iobench", "BENCH_PREFIX": f"case-{case}"}
    args = [sys.executable, __file__, "--child", library, str(writers), str(size), mode]
    out = subprocess.run(args, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{library} x{writers}: the child failed:\n{out.stderr[-2000:]}")
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
        print(json.dumps(child(library, writers, size, mode)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--libraries", default=",".join(LIBRARIES))
    parser.add_argument("--writers", default="1,4,8")
    parser.add_argument("--size", default="64MiB", help="bytes each writer streams")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    size = parse_size(args.size)
    from pytest_iobench.storage.s3common import PART_BUDGET, PART_SIZE

    print(f"{size / MiB:.0f} MiB per writer, {PART_SIZE // MiB} MiB parts, budget {PART_BUDGET.parts} parts "
          f"per process; median of {args.repeats}; growth = peak RSS (VmHWM) - RSS before the writes")
    print(f"{'library':8} {'writers':>7} | {'growth MiB: now':>15} {'no budget':>9} {'before':>7} | "
          f"{'MB/s: now':>9} {'before':>7} {'ratio':>6} | {'peak parts':>10}")
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
                now, nob, old = med["now"], med["no budget"], med["before"]
                print(f"{library:8} {writers:>7} | {now['growth_mib']:>15.0f} {nob['growth_mib']:>9.0f} "
                      f"{old['growth_mib']:>7.0f} | {now['mb_s']:>9.0f} {old['mb_s']:>7.0f} "
                      f"{now['mb_s'] / old['mb_s']:>6.2f} | {now['peak_parts']:>10.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
