"""S3 gets and puts per client library on the embedded endpoint: the library's own calls in a
plain loop, our backend's calls in a plain loop and the throughput suite's engine
(storage/throughput.transfer), over the same objects, taking turns.

    python benchmarks/bench_s3.py                          # 8 x 16 MiB, 1 and 8 threads
    python benchmarks/bench_s3.py --ops get --threads 8 --repeats 9
    python benchmarks/bench_s3.py --objects 64 --size-kib 256
    S3DLIO_ENABLE_RANGE_OPTIMIZATION=1 python benchmarks/bench_s3.py   # s3dlio's own default

For every library (s3dlio, minio, boto3), operation and thread count, three ways move the same
objects (--objects of --size-kib, put once by that library for the gets, as the suite does):

  raw      the library's own call that our backend makes, in a plain loop, on the backend's
           own client: ``s3dlio.get`` / ``put_bytes``, minio ``get_object(...).read()`` /
           ``put_object``, boto3 ``get_object(...)["Body"].read()`` / ``put_object``;
  backend  ``Storage.get`` / ``Storage.put`` of our backend in a plain loop;
  engine   ``transfer(storage, op, keys, threads)``, the throughput suite's engine.

A plain loop of N threads gives each thread its own slice of the objects beforehand. For s3dlio
the gets are also run through its own concurrency (``get_many(uris, max_in_flight=N)``, one
call, no Python threads). Each round runs every case of an (operation, threads) group, in an
order that turns round by round; the first round warms up. Printed: the median MB/s of each
case (MB = 10^6 B), the client's and the moto server's CPU seconds per GB moved (what a case
costs, which the shared machine's load changes far less than it changes the speed), and the
medians of the per-round ratios: backend / raw and engine / raw (target >= 0.9), and each
library's engine against the fastest library's engine in the same round.

moto is the bottleneck here (a Python server in one process): the figures rank the client
libraries against each other on this endpoint, nothing more.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from collections.abc import Callable

from together import run_together

from pytest_iobench.data.random import stream_for
from pytest_iobench.storage import StorageSpec, open_storage
from pytest_iobench.storage.endpoint import EmbeddedS3
from pytest_iobench.storage.minio_backend import put_part_size
from pytest_iobench.storage.throughput import transfer

LIBRARIES = ("s3dlio", "minio", "boto3")
MiB = 1 << 20
TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, every thread) of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class RawClient:
    """The library's own calls our backend makes, on the backend's own client, without our code
    around them (key checks, error translation, views): what a plain program would call."""

    def __init__(self, storage):
        self.library, self.bucket = storage.library, storage.location.bucket
        if self.library == "s3dlio":
            import s3dlio  # configured for this endpoint when the backend was opened

            self.s3dlio = s3dlio
        else:
            self.client = storage.client

    def get(self, name: str) -> int:
        if self.library == "s3dlio":
            return memoryview(self.s3dlio.get(f"s3://{self.bucket}/{name}")).nbytes
        if self.library == "minio":
            response = self.client.get_object(self.bucket, name)
            try:
                return len(response.read())
            finally:
                response.close()
                response.release_conn()
        return len(self.client.get_object(Bucket=self.bucket, Key=name)["Body"].read())

    def put(self, name: str, data: bytes) -> None:
        if self.library == "s3dlio":
            self.s3dlio.put_bytes(f"s3://{self.bucket}/{name}", data)
        elif self.library == "minio":
            self.client.put_object(self.bucket, name, io.BytesIO(data), len(data), part_size=put_part_size(len(data)))
        else:
            self.client.put_object(Bucket=self.bucket, Key=name, Body=data)


def plain(call: Callable[[int], object], count: int, threads: int) -> float:
    """Seconds of ``call(i)`` for every i, ``threads`` threads each with its own slice; what a
    call returns is let go at once, as the engine does (kept, every get faults in fresh memory)."""
    def work(mine: range) -> None:
        for i in mine:
            call(i)

    slices = [range(w, count, threads) for w in range(threads)]
    return run_together(lambda s=s: work(s) for s in slices)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=8)
    parser.add_argument("--size-kib", type=int, default=16 * 1024)
    parser.add_argument("--threads", default="1,8", help="comma list of thread counts")
    parser.add_argument("--ops", default="get,put", help="get, put or both")
    parser.add_argument("--libraries", default=",".join(LIBRARIES))
    parser.add_argument("--repeats", type=int, default=5, help="counted rounds (one more warms up)")
    args = parser.parse_args(argv)
    size = args.size_kib * 1024
    libraries = args.libraries.split(",")
    threads_list = [int(t) for t in args.threads.split(",")]
    payloads = [stream_for(7, "bench-s3", i, limit=size).read(size) for i in range(args.objects)]
    total = size * args.objects
    embedded = EmbeddedS3()
    endpoint = embedded.start()
    try:
        server = embedded.process.pid  # moto's server, a child process
        storages = {lib: open_storage(StorageSpec("s3", lib, bucket="iobench", prefix=f"bench-{lib}",
                                                  endpoint_url=endpoint.url), endpoint=endpoint)
                    for lib in libraries}
        raws = {lib: RawClient(storages[lib]) for lib in libraries}
        keys = [f"objects/{i:04d}" for i in range(args.objects)]
        for lib in libraries:
            for key, payload in zip(keys, payloads):
                storages[lib].put(key, payload)
        print(f"{args.objects} x {args.size_kib} KiB objects on the embedded endpoint (moto), median of "
              f"{args.repeats} rounds taking turns; MB = 10^6 B; cpu = CPU seconds per GB moved "
              f"(client process, moto server); S3DLIO_ENABLE_RANGE_OPTIMIZATION="
              f"{os.environ.get('S3DLIO_ENABLE_RANGE_OPTIMIZATION', '(unset)')}", flush=True)
        for op in args.ops.split(","):
            for threads in threads_list:
                run_group(op, threads, libraries, storages, raws, keys, payloads, total, server, args.repeats)
    finally:
        embedded.stop()
    return 0


def run_group(op, threads, libraries, storages, raws, keys, payloads, total, server, repeats) -> None:
    count = len(keys)
    cases: dict[tuple[str, str], Callable[[], float]] = {}
    for lib in libraries:
        storage, raw = storages[lib], raws[lib]
        names = [storage.location.object_name(k) for k in keys]
        if op == "get":
            cases[lib, "raw"] = lambda raw=raw, names=names: plain(lambda i: raw.get(names[i]), count, threads)
            cases[lib, "backend"] = lambda s=storage: plain(lambda i: s.get(keys[i]), count, threads)
            cases[lib, "engine"] = lambda s=storage: transfer(s, "get", keys, threads).seconds
            if lib == "s3dlio" and threads > 1:
                uris = [storage.uri(k) for k in keys]
                cases[lib, "get_many"] = lambda uris=uris, raw=raw: _timed(lambda: raw.s3dlio.get_many(uris, threads))
        else:
            put_keys = [f"put/{k}" for k in keys]
            put_names = [storage.location.object_name(k) for k in put_keys]
            cases[lib, "raw"] = lambda raw=raw, n=put_names: plain(lambda i: raw.put(n[i], payloads[i]), count, threads)
            cases[lib, "backend"] = lambda s=storage, k=put_keys: plain(
                lambda i: s.put(k[i], payloads[i]), count, threads)
            cases[lib, "engine"] = lambda s=storage, k=put_keys: transfer(s, "put", k, threads, payloads).seconds
    speed: dict = {c: [] for c in cases}
    client_cpu: dict = {c: [] for c in cases}
    server_cpu: dict = {c: [] for c in cases}
    ratios: dict = {}
    order = list(cases)
    for r in range(repeats + 1):
        turn = order[r % len(order):] + order[:r % len(order)]
        if r % 2:
            turn.reverse()
        got = {}
        for case in turn:
            c0, s0 = _own_cpu(), process_cpu(server)
            seconds = cases[case]()
            c1, s1 = _own_cpu(), process_cpu(server)
            got[case] = total / seconds
            if r:
                speed[case].append(total / seconds / 1e6)
                client_cpu[case].append((c1 - c0) / (total / 1e9))
                server_cpu[case].append((s1 - s0) / (total / 1e9))
        if not r:
            continue
        fastest = max(got[lib, "engine"] for lib in libraries)
        for lib in libraries:
            for how in ("backend", "engine", "get_many"):
                if (lib, how) in got:
                    ratios.setdefault((lib, f"{how}/raw"), []).append(got[lib, how] / got[lib, "raw"])
            ratios.setdefault((lib, "engine/fastest"), []).append(got[lib, "engine"] / fastest)
    med = statistics.median
    print(f"\n{op}, {threads} thread(s)")
    print(f"  {'library':8s} {'how':9s} {'MB/s':>7s} {'cpu client':>10s} {'cpu moto':>9s}")
    for (lib, how) in cases:
        c = (lib, how)
        print(f"  {lib:8s} {how:9s} {med(speed[c]):7.0f} {med(client_cpu[c]):10.2f} {med(server_cpu[c]):9.2f}")
    for lib in libraries:
        parts = []
        for name in ("backend/raw", "engine/raw", "get_many/raw", "engine/fastest"):
            if (lib, name) in ratios:
                value = med(ratios[lib, name])
                flag = " UNDER 0.9" if name in ("backend/raw", "engine/raw") and value < 0.9 else ""
                parts.append(f"{name} {value:.2f}{flag}")
        print(f"  {lib:8s} " + ", ".join(parts), flush=True)


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def _timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


if __name__ == "__main__":
    sys.exit(main())
