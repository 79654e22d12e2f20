"""``python -m pytest_iobench.mpi.generate``: a dataset generated from the command line, as one
process or as the ranks of ``mpiexec`` (each rank writes its share of the files, rank i % ranks;
the bytes are the same for any rank count). The work is data/generate.py's; this module adds
the communicator and the result each rank hands the launcher (mpi/context.py).

    mpiexec -n 4 python -m pytest_iobench.mpi.generate --spec workload.yaml --root /data/unet3d --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ..data.generate import ON_CORRUPT, DatasetMismatch, Progress, generate
from ..data.integrity import MODES
from ..data.spec import DatasetSpec, DatasetSpecError
from ..storage import StorageSpec
from ..storage.errors import StorageError
from ..storage.registry import storage_at
from .context import world, write_rank_result


def _load_mapping(text: str) -> dict[str, Any]:
    data: Any
    if os.path.exists(text):
        with open(text) as f:
            if text.endswith((".yaml", ".yml")):
                import yaml

                data = yaml.safe_load(f)
            else:
                data = json.load(f)
        # a whole DLIO workload file: take its dataset section
        mapping: dict[str, Any] = data.get("dataset", data) if isinstance(data, dict) and "dataset" in data else data
        return mapping
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_iobench.mpi.generate",
        description="Generate a DLIO-layout dataset (run under mpiexec for several ranks).")
    parser.add_argument("--spec", required=True,
                        help="the dataset keys: JSON text, or a .json/.yaml file (a DLIO workload file's "
                             "dataset section is used)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--root", help="a local directory: the dataset's folder")
    where.add_argument("--storage-json", help="a StorageSpec as JSON (credentials from the environment)")
    parser.add_argument("--prefix", default="", help="the dataset's folder under the storage root")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--regenerate", action="store_true",
                        help="replace a dataset of another spec, or files this tool did not write")
    parser.add_argument("--adopt", action="store_true",
                        help="use files another tool wrote (a DLIO dataset) as they are "
                             "when their names are the spec's")
    parser.add_argument("--fsync", action="store_true")
    parser.add_argument("--verify", choices=MODES, default="sample",
                        help="how much of a kept dataset is read back and checked against its manifest's checksums")
    parser.add_argument("--on-corrupt", choices=ON_CORRUPT, default="fail",
                        help="what a kept file whose checksum no longer matches does")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)

    comm = world()
    try:
        spec = DatasetSpec.from_mapping(_load_mapping(args.spec))
    except (DatasetSpecError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.root:
        storage_spec = StorageSpec("local", "posix", root=os.path.abspath(args.root))
    else:
        storage_spec = StorageSpec.from_dict(json.loads(args.storage_json))
    storage = storage_at(storage_spec, args.prefix)

    def show(p: Progress) -> None:
        if comm.rank == 0 and p.elapsed >= 2 and not args.quiet:
            print(p.line(), file=sys.stderr, flush=True)

    try:
        result = generate(spec, storage, threads=args.threads, comm=comm, regenerate=args.regenerate,
                          fsync=args.fsync, progress=show, adopt=args.adopt,
                          verify=args.verify, on_corrupt=args.on_corrupt)
    except (DatasetMismatch, StorageError, RuntimeError) as exc:
        print(f"error (rank {comm.rank}): {exc}", file=sys.stderr)
        write_rank_result(comm.rank, {"error": str(exc)})
        return 1
    summary = result.to_dict()
    summary["sizes"] = len(result.sizes)
    summary["digest_of_sizes"] = sum(result.sizes.values())
    write_rank_result(comm.rank, {"result": summary, "rank": comm.rank})
    if comm.rank == 0 and not args.quiet:
        verb = "adopted" if result.adopted else "reused" if result.reused else "generated"
        print(f"{verb} {result.files} files, {result.bytes / 1e6:,.1f} MB at {storage.uri('')}"
              + ("" if result.reused else f" in {result.seconds:.2f} s ({result.mb_per_s:,.0f} MB/s)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
