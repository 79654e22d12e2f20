"""JPEG and PNG generation against a plain Pillow loop writing the same images, and against
DLIO upstream's image generator loop, in the same run, taking turns.

    python benchmarks/bench_images.py     # jpeg and png, 256 images of 64 KiB, 1 and 2 threads
    python benchmarks/bench_images.py --formats jpeg --size 262144 --count 128 --threads 1 --repeats 7

Per repeat, in rotating order, each into a fresh folder of local files, no fsync:
  pillow   the same images (pixels made before the clock starts, from the same random streams)
           encoded and written by ``Image.fromarray(pixels).save(path, format, **settings)`` at
           our settings (JPEG quality 75, PNG zlib level 0): encoding and writing only, the
           least any generator can do. With N threads, N such loops over shares of the images.
  ours     ``generate(spec, storage, threads=N)`` timed whole (the existing-dataset check, the
           marker, the random pixels, encoding, writing, the manifest): target <= 1.05x pillow.
  dlio     DLIO upstream's JPEGGenerator / PNGGenerator loop (dlio_benchmark 2.0.0,
           data_generator/{jpeg,png}_generator.py): ``np.random.randint(255, size=(d, d),
           dtype=uint8)``, ``PIL.Image.fromarray``, ``save(path, format=..., bits=8)``, one
           process (DLIO runs one loop per rank); its PNG uses Pillow's default zlib level 6.
           Ours must not be slower.

Printed: milliseconds per image (median of --repeats), and ours / pillow and ours / dlio
(medians of the per-repeat ratios).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from pytest_iobench.data.formats.image import SAVE_OPTIONS, image_shape  # noqa: E402
from pytest_iobench.data.generate import generate  # noqa: E402
from pytest_iobench.data.random import stream_for  # noqa: E402
from pytest_iobench.data.spec import SPLITS, DatasetSpec  # noqa: E402
from pytest_iobench.storage import StorageSpec, open_storage  # noqa: E402

PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG"}


def images(spec: DatasetSpec) -> list[np.ndarray]:
    """The spec's images as generation makes them (the same random streams)."""
    out = []
    for split, index, _ in spec.all_files():
        h, w, c = image_shape(spec, split, index)
        pixels = stream_for(spec.seed, SPLITS[split], index, limit=h * w * c).array((h, w, c), np.uint8)
        out.append(pixels[:, :, 0] if c == 1 else pixels)
    return out


def in_threads(threads: int, count: int, one) -> None:
    """``one(i)`` for i in range(count), ``threads`` loops over interleaved shares."""
    if threads == 1:
        for i in range(count):
            one(i)
        return
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda t: [one(i) for i in range(t, count, threads)], range(threads)))


def pillow_loop(fmt: str, pixels: list[np.ndarray], folder: str, threads: int) -> float:
    os.makedirs(folder)
    start = time.perf_counter()
    in_threads(threads, len(pixels), lambda i: Image.fromarray(pixels[i]).save(
        os.path.join(folder, f"img_{i}.{fmt}"), format=PIL_FORMAT[fmt], **SAVE_OPTIONS[fmt]))
    return time.perf_counter() - start


def dlio_loop(fmt: str, side: int, count: int, folder: str) -> float:
    """DLIO upstream's generator loop (one rank), as its source has it."""
    os.makedirs(folder)
    start = time.perf_counter()
    np.random.seed(10)
    for i in range(count):
        records = np.random.randint(255, size=(side, side), dtype=np.uint8)
        img = Image.fromarray(records)
        img.save(os.path.join(folder, f"img_{i}.{fmt}"), format=PIL_FORMAT[fmt], bits=8)
    np.random.seed()
    return time.perf_counter() - start


def ours(spec: DatasetSpec, folder: str, threads: int) -> float:
    storage = open_storage(StorageSpec("local", "posix", root=folder))
    start = time.perf_counter()
    generate(spec, storage, threads=threads)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--formats", default="jpeg,png")
    parser.add_argument("--count", type=int, default=256, help="images per run (default 256)")
    parser.add_argument("--size", type=int, default=65536, help="record_length_bytes: pixels of a square "
                        "grayscale image, as DLIO sizes them (default 65536: 256 x 256)")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--root", default=None, help="directory to work in (default: the temp dir)")
    args = parser.parse_args(argv)
    threads_list = [int(t) for t in args.threads.split(",")]
    root = tempfile.mkdtemp(prefix="iobench-images-", dir=args.root)
    print(f"{args.count} images of {args.size} pixels (record_length_bytes), local files in {root}, no fsync; "
          f"ms per image, median of {args.repeats}, taking turns; ratios: medians of per-repeat ratios")
    print(f"  {'format':6s} {'thr':>3s} {'pillow':>7s} {'ours':>7s} {'dlio':>7s} {'ours/pillow':>11s} "
          f"{'ours/dlio':>9s}  target ours/pillow <= 1.05, ours/dlio <= 1")
    try:
        for fmt in [f for f in args.formats.split(",") if f]:
            spec = DatasetSpec.from_mapping({"format": fmt, "num_files_train": args.count,
                                             "record_length_bytes": args.size})
            pixels = images(spec)
            side = pixels[0].shape[0]
            for threads in threads_list:
                runs = {"pillow": [], "ours": [], "dlio": []}
                names = list(runs) if threads == 1 else ["pillow", "ours"]
                for repeat in range(args.repeats):
                    order = names[repeat % len(names):] + names[:repeat % len(names)]
                    for name in order:
                        folder = os.path.join(root, f"{fmt}-{name}-{threads}-{repeat}")
                        os.sync()  # each run starts with no dirty pages of the previous one
                        if name == "pillow":
                            runs[name].append(pillow_loop(fmt, pixels, folder, threads))
                        elif name == "ours":
                            runs[name].append(ours(spec, folder, threads))
                        else:
                            runs[name].append(dlio_loop(fmt, side, args.count, folder))
                        shutil.rmtree(folder)
                ms = {k: statistics.median(v) / args.count * 1e3 if v else float("nan") for k, v in runs.items()}
                vs_pillow = statistics.median(o / p for o, p in zip(runs["ours"], runs["pillow"]))
                vs_dlio = (statistics.median(o / d for o, d in zip(runs["ours"], runs["dlio"]))
                           if runs["dlio"] else float("nan"))
                verdict = "ok" if vs_pillow <= 1.05 and not vs_dlio > 1 else "BELOW"
                print(f"  {fmt:6s} {threads:3d} {ms['pillow']:7.3f} {ms['ours']:7.3f} {ms['dlio']:7.3f} "
                      f"{vs_pillow:11.3f} {vs_dlio:9.3f}  {verdict}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
