"""The workload steps of the resilience suite, each run through a faulty endpoint and verified
through a clean one.

A step gets two storages on the same bucket and prefix: ``faulty`` (the library under test,
through the fault proxy) and ``clean`` (another library, straight to the endpoint). ``prepare``
writes through the clean one what the step reads, the step runs through the faulty one (timed),
and ``verify`` checks through the clean one that every byte the step wrote is what it should be;
a step that reads checks what it read as it goes. Steps:

- ``generation``: a small npz dataset generated (data/generate.py), compared file by file
  with the same spec generated through the clean endpoint;
- ``training-read``: every file of such a dataset read whole by 4 threads, each compared with
  its bytes read through the clean endpoint;
- ``checkpoint-write``: checkpoint shards streamed (workload/checkpoint_io.py, in parts:
  multipart uploads) and their manifest, then read back through the clean endpoint, CRC-32C
  checked;
- ``checkpoint-read``: such a checkpoint, written through the clean endpoint, read back
  (whole and by ranges), CRC-32C checked.

s3dlio binds one endpoint per process, so the suite runs its steps in a child,
``python -m pytest_iobench.workload.resilience`` (``main``: JSON lines in and out).
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..data.datasets import as_spec
from ..data.generate import generate
from ..storage.base import Storage
from ..storage.registry import StorageSpec, open_storage
from ..storage.s3common import S3Endpoint
from .checkpoint_io import CheckpointIO
from .checkpoint_layout import Shard

STEPS = ("generation", "training-read", "checkpoint-write", "checkpoint-read")
#: small enough that the suite stays a minute or two on the embedded endpoint
DATASET = {"format": "npz", "num_files_train": 8, "num_samples_per_file": 2, "record_length_bytes": 64 << 10}
#: two shards of more than one 8 MiB part (multipart uploads) and a small one (one PUT)
SHARDS = [Shard("model_states.pt", (9 << 20) + 4321, 0, "model"),
          Shard("optim_states.pt", (9 << 20) + 77, 0, "optimizer"),
          Shard("layer_00.pt", 3000, 0, "model")]
SEED = 1234


class NotVerified(AssertionError):
    """A byte read back differs from what was written (or an object is missing)."""


def _sub(storage_spec: StorageSpec, endpoint: S3Endpoint, *parts: str) -> Storage:
    prefix = "/".join(p for p in (storage_spec.prefix, *parts) if p)
    return open_storage(StorageSpec(**{**storage_spec.to_dict(), "prefix": prefix}), endpoint)


def _dataset_files(storage: Storage) -> list[str]:
    """The data files (the manifest holds times and the library: not compared)."""
    return [k for k in storage.list("") if not k.rsplit("/", 1)[-1].startswith(("iobench-", "."))]


def _checkpoint_io(storage: Storage) -> CheckpointIO:
    return CheckpointIO(storage, seed=SEED, fsync=False)


def _write_checkpoint(storage: Storage) -> None:
    io = _checkpoint_io(storage)
    written = [io.write_shard("ckpt", i, shard).to_dict() for i, shard in enumerate(SHARDS)]
    io.write_manifest("ckpt", written, {"seed": SEED})


def _read_checkpoint(storage: Storage) -> int:
    io = _checkpoint_io(storage)
    manifest = io.read_manifest("ckpt")
    try:
        return sum(io.read_shard("ckpt", entry)[0] for entry in manifest["shards"])
    except Exception as exc:  # a wrong byte, a missing shard: one line, not a storage error
        if type(exc).__name__ == "CheckpointError":
            raise NotVerified(str(exc)) from None
        raise


def _compare(expected: Storage, actual: Storage, keys: list[str]) -> int:
    total = 0
    for key in keys:
        want, got = bytes(expected.get(key)), bytes(actual.get(key))
        if want != got:
            raise NotVerified(f"{key}: {len(got)} bytes differ from the {len(want)} written")
        total += len(want)
    return total


def run_step(step: str, spec: StorageSpec, faulty: S3Endpoint, clean: S3Endpoint, area: str,
             prepared: bool = False) -> dict[str, Any]:
    """Run ``step`` through ``faulty`` under the prefix ``area``; returns its seconds, bytes and
    verified bytes. Raises NotVerified on a wrong byte, a StorageError when the step failed."""
    if step not in STEPS:
        raise ValueError(f"step {step!r}; valid: {', '.join(STEPS)}")
    # another library on the clean side: it checks the first, its requests are counted apart,
    # and s3dlio, bound to one endpoint per process, stays free for the faulty side
    checker = "minio" if spec.library == "boto3" else "boto3"
    clean_spec = StorageSpec(**{**spec.to_dict(), "endpoint_url": clean.url, "library": checker})
    faulty_spec = StorageSpec(**{**spec.to_dict(), "endpoint_url": faulty.url})
    dataset = as_spec(DATASET)
    through_clean = _sub(clean_spec, clean, area)
    through_faults = _sub(faulty_spec, faulty, area)
    try:
        if step == "generation":
            reference = _sub(clean_spec, clean, area, "reference")
            if not prepared:
                generate(dataset, reference)
            start = time.monotonic()
            generate(dataset, _sub(faulty_spec, faulty, area, "dataset"), regenerate=True)
            seconds = time.monotonic() - start
            keys = _dataset_files(reference)
            verified = _compare(reference, _sub(clean_spec, clean, area, "dataset"), keys)
            moved = verified
        elif step == "training-read":
            if not prepared:
                generate(dataset, _sub(clean_spec, clean, area, "dataset"))
            keys = _dataset_files(_sub(clean_spec, clean, area, "dataset"))
            reader = _sub(faulty_spec, faulty, area, "dataset")
            start = time.monotonic()
            with ThreadPoolExecutor(4) as pool:
                got = list(pool.map(lambda k: bytes(reader.get(k)), keys))
            seconds = time.monotonic() - start
            truth = _sub(clean_spec, clean, area, "dataset")
            for key, data in zip(keys, got):
                if data != bytes(truth.get(key)):
                    raise NotVerified(f"{key}: the bytes read differ from those written")
            moved = verified = sum(map(len, got))
        elif step == "checkpoint-write":
            start = time.monotonic()
            _write_checkpoint(through_faults)
            seconds = time.monotonic() - start
            moved = verified = _read_checkpoint(through_clean)
        else:
            if not prepared:
                _write_checkpoint(through_clean)
            start = time.monotonic()
            moved = verified = _read_checkpoint(through_faults)
            seconds = time.monotonic() - start
    finally:
        for storage in (through_clean, through_faults):
            storage.close()
    return {"seconds": seconds, "bytes": moved, "verified_bytes": verified}


def _serve_one(args: dict[str, Any]) -> dict[str, Any]:
    from ..storage.retry import COUNTS

    spec = StorageSpec(**args["spec"])
    faulty, clean = (S3Endpoint(url, args["access_key"], args["secret_key"], spec.region)
                     for url in (args["faulty"], args["clean"]))
    before = COUNTS.snapshot()
    try:
        out = {"ok": True, **run_step(args["step"], spec, faulty, clean, args["area"], args.get("prepared", False))}
    except Exception as exc:
        out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    out["storage_ops"] = COUNTS.since(before)
    return out


def main() -> int:
    """The s3dlio side of the suite: one JSON request a line on stdin, one JSON outcome a line on
    stdout, until stdin ends. One process serves every case (its endpoint, the proxy, is the
    same for all of them), so the cases do not each pay for starting Python and the libraries."""
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(_serve_one(json.loads(line))), flush=True)
    # not waiting for the libraries' finalizers: a call abandoned at its deadline may still be
    # on its way, and s3dlio's runtime aborts a process that exits under it
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
