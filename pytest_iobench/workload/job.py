"""One rank's part of a run, described by a JSON-ready job so that an MPI rank can rebuild it.

    job = training_job(config, storage.spec, "datasets/abc123", run_seed=...)
    result = run_rank(job, world())          # in-process, or in each rank under mpiexec

A job carries the workload (its file content and overrides, validated again in the rank),
where the storage is (a StorageSpec: no credentials, the rank reads them from its
environment) and what to do. ``run_rank`` returns the rank's figures.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..storage import Storage, StorageSpec
from ..storage.counting import CountingStorage
from ..storage.registry import storage_at
from ..storage.tally import TALLY
from .comm import Comm
from .config import WorkloadConfig, build_config, masked, masked_override
from .dlio_output import host_info
from .loop import DatasetAccess, run_training

JOB_KINDS = ("train", "checkpoint")


def config_payload(config: WorkloadConfig) -> dict[str, Any]:
    """The workload as the ranks get it (a job file): credentials masked (the ranks read the
    storage's from the environment; a workload file's are never used)."""
    return {"raw": masked(config.raw), "name": config.name, "source": config.source,
            "overrides": [masked_override(text) for text in config.overrides]}


def config_from_payload(payload: dict[str, Any]) -> WorkloadConfig:
    return build_config(payload["raw"], payload["name"], payload["source"], list(payload["overrides"]))


def training_job(config: WorkloadConfig, storage: StorageSpec, dataset_prefix: str = "", *,
                 run_seed: int, opener: str | None = None, checkpoint_storage: StorageSpec | None = None,
                 checkpoint_prefix: str = "", scale: float = 1.0, seed: int = 0,
                 settle_seconds: float = 0.0) -> dict[str, Any]:
    """The job of a training run. ``opener`` ("module:function") replaces the data layer's
    format readers: function(storage, key, dataset_spec) -> SampleFile. Checkpoints (when
    workflow.checkpoint is set) go to ``checkpoint_storage`` under ``checkpoint_prefix``.
    ``settle_seconds``: rank 0 waits that long before training, then every rank passes a
    barrier (a dataset just written to an eventually consistent store)."""
    return {
        "kind": "train",
        "workload": config_payload(config),
        "storage": storage.to_dict(),
        "dataset_prefix": dataset_prefix,
        "run_seed": run_seed,
        "opener": opener,
        "checkpoint_storage": checkpoint_storage.to_dict() if checkpoint_storage else None,
        "checkpoint_prefix": checkpoint_prefix,
        "scale": scale,
        "seed": seed,
        "settle_seconds": settle_seconds,
    }


def settle(comm: Comm, seconds: float) -> float:
    """Rank 0 waits ``seconds``, then every rank passes a barrier: no rank reads before the
    store has had that long to settle. Returns the seconds from rank 0's start of the wait to
    this rank passing the barrier, on the wall clock (ranks start at different times, so a
    rank's own wait says less): at least ``seconds`` on every rank. Outside every training
    figure: it runs before the first epoch's clock starts."""
    began: float = comm.bcast(time.time() if comm.rank == 0 else None, root=0)
    if comm.rank == 0:
        time.sleep(seconds)
    comm.barrier()
    return time.time() - began


def checkpoint_job(config: WorkloadConfig, storage: StorageSpec, prefix: str = "", *, scale: float = 1.0,
                   seed: int = 0, layout_processes: int | None = None) -> dict[str, Any]:
    """The job of a checkpoint run: write, drop caches, read back. ``layout_processes``: the
    ranks the layout is computed for when model.parallelism.data is not set."""
    return {
        "kind": "checkpoint",
        "workload": config_payload(config),
        "storage": storage.to_dict(),
        "prefix": prefix,
        "scale": scale,
        "seed": seed,
        "layout_processes": layout_processes,
    }


def resolve_callable(dotted: str) -> Callable[..., Any]:
    module, _, name = dotted.partition(":")
    if not module or not name:
        raise ValueError(f"{dotted!r}: give module:function")
    found: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return found


def format_opener(config: WorkloadConfig, opener: str | None) -> Callable[[Storage, str, Any], Any]:
    if opener:
        return resolve_callable(opener)
    from ..data.formats import get_format

    fmt = get_format(config.dataset.format)
    columns = (config.storage.storage_options or {}).get("columns")
    if columns and config.dataset.format == "parquet":
        # storage.storage_options.columns: the columns the MLCommons fork's parquet readers read
        from ..data.formats.parquet import Parquet

        assert isinstance(fmt, Parquet), "the parquet format opens with columns"
        return lambda storage, key, spec: fmt.open(storage, key, spec, columns=columns)
    return fmt.open


def dataset_access(config: WorkloadConfig, storage: Storage, opener: str | None = None) -> DatasetAccess:
    counting = storage if isinstance(storage, CountingStorage) else CountingStorage(storage)
    spec = config.dataset
    open_with = format_opener(config, opener)
    eval_keys = spec.file_keys("eval") if spec.num_files_eval else []
    return DatasetAccess(
        storage=counting,
        train_keys=spec.file_keys("train"),
        samples_per_file=spec.num_samples_per_file,
        open_file=lambda key: open_with(counting, key, spec),
        eval_keys=eval_keys,
    )


def run_rank(job: dict[str, Any], comm: Comm, progress: Callable[[str], None] | None = None,
             storage: Storage | None = None, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run this rank's part of ``job``. ``storage`` (in-process runs) replaces opening the
    spec; ``environ`` holds the S3 credentials (default: this process's environment)."""
    kind = job.get("kind")
    if kind not in JOB_KINDS:
        raise ValueError(f"job kind {kind!r}; valid: {', '.join(JOB_KINDS)}")
    config = config_from_payload(job["workload"])
    if kind == "train":
        if storage is None:
            storage = storage_at(job["storage"], job.get("dataset_prefix", ""), odirect=config.reader.odirect,
                                 environ=environ)
        data = dataset_access(config, storage, job.get("opener"))
        hook = None
        if config.workflow.checkpoint:
            if not job.get("checkpoint_storage"):
                raise ValueError("workflow.checkpoint is set but the job has no checkpoint storage")
            from .checkpoint_run import checkpoint_hook

            target = storage_at(job["checkpoint_storage"], job.get("checkpoint_prefix", ""), environ=environ)
            hook = checkpoint_hook(config, target, comm, scale=job.get("scale", 1.0), seed=job.get("seed", 0))
        waited = settle(comm, job["settle_seconds"]) if job.get("settle_seconds") else 0.0
        before = TALLY.snapshot()
        result = run_training(config, data, comm, run_seed=job["run_seed"], checkpoint=hook, progress=progress)
        result["settle_seconds"] = waited
        # what each endpoint served this rank (several endpoints; spread.py)
        result["endpoints"] = TALLY.since(before, TALLY.snapshot())
        result["host"] = host_info()
        # what this rank read through (reader.odirect turns local into direct): the page-cache
        # warning follows it, not the key
        result["storage"] = {"kind": storage.kind, "library": storage.library}
        return result
    from .checkpoint_run import run_checkpoint_rank

    return run_checkpoint_rank(job, config, comm, progress=progress, storage=storage, environ=environ)
