"""What the per-operation deadline costs on S3 (storage/deadline.py): the same 4 KiB gets and puts
through a library's storage with its deadline (what every session uses) and without it (the
library's storage as constructed), taking turns, on the embedded endpoint (moto on loopback,
where a request is fastest, so the cost shows most).

    python benchmarks/bench_deadline.py                    # boto3, 200 calls per run
    python benchmarks/bench_deadline.py --library minio --calls 500

Each figure is the median of --repeats per-repeat ratios (with deadline / without, in time per
call), the two taking turns at going first. What the deadline adds per call is a handoff to a
worker thread and back.
"""

from __future__ import annotations

import argparse
import statistics
import time

from pytest_iobench.storage import StorageSpec, open_storage
from pytest_iobench.storage.endpoint import EmbeddedS3


def per_call(fn, calls: int) -> float:
    started = time.perf_counter()
    for i in range(calls):
        fn(i)
    return (time.perf_counter() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", default="boto3", choices=["boto3", "minio", "s3dlio"])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with EmbeddedS3(bucket="bench-deadline") as endpoint:
        spec = StorageSpec("s3", args.library, bucket="bench-deadline", prefix="bench", endpoint_url=endpoint.url)
        bounded = open_storage(spec, endpoint)
        bare = bounded.inner
        payload = b"x" * 4096
        for i in range(args.calls):
            bare.put(f"k{i}", payload)
        for op in ("get", "put"):
            ratios, with_us, without_us = [], [], []
            for r in range(args.repeats + 1):  # the first pair warms up
                def run(storage, op=op):
                    if op == "get":
                        return per_call(lambda i: storage.get(f"k{i}"), args.calls)
                    return per_call(lambda i: storage.put(f"k{i}", payload), args.calls)
                if r % 2:
                    a = run(bounded)
                    b = run(bare)
                else:
                    b = run(bare)
                    a = run(bounded)
                if r:
                    ratios.append(a / b)
                    with_us.append(a * 1e6)
                    without_us.append(b * 1e6)
            print(f"{args.library} {op} 4 KiB: with deadline {statistics.median(with_us):.0f} us/call, "
                  f"without {statistics.median(without_us):.0f} us/call, ratio {statistics.median(ratios):.3f} "
                  f"(median of {args.repeats})")
        bare.delete_prefix("")


if __name__ == "__main__":
    main()
