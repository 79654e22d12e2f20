"""The training loop of one rank (one simulated accelerator).

Per epoch: every rank builds its batch plan (sampler), the loader reads ahead, and each step
waits for its batch, spends the simulated compute time, then meets the other ranks at a
barrier (the all-reduce of a real data-parallel step). Every rank takes the same number of
steps. Evaluation runs after the epochs the ``evaluation`` keys name; checkpoints are written
when the ``checkpoint`` keys say (through the ``checkpoint`` callback).

Works on any communicator with ``rank``, ``size`` and ``barrier`` (mpi/context.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..storage.counting import CountingStorage
from .comm import Comm
from .compute import TimeDistribution, simulate
from .config import WorkloadConfig
from .loader import Loader, SampleFile
from .metrics import epoch_metrics, eval_metrics
from .sampler import Sampler, steps_per_epoch

#: seconds between progress notes (a note is a small file write; not one per step)
PROGRESS_EVERY = 0.5


@dataclass
class DatasetAccess:
    """What the loop needs of a dataset: where, which files, and how to open one."""

    #: reads go through here and are counted (bytes actually returned)
    storage: CountingStorage
    train_keys: list[str]
    samples_per_file: int
    #: key -> SampleFile reading through ``storage``
    open_file: Callable[[str], SampleFile]
    eval_keys: list[str] = field(default_factory=list)


#: called as checkpoint(epoch, step) -> this rank's figures {"seconds", "bytes"}; None when off
CheckpointHook = Callable[[int, int], dict[str, Any]]


def epochs_with(first: int, every: int, epochs: int) -> list[int]:
    """Epochs (1-based) from ``first`` on, every ``every`` epochs."""
    return list(range(first, epochs + 1, every)) if first <= epochs else []


def run_training(config: WorkloadConfig, data: DatasetAccess, comm: Comm, *, run_seed: int,
                 checkpoint: CheckpointHook | None = None,
                 progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the training loop on this rank; returns its figures (JSON-ready)."""
    reader, train, ev, metric = config.reader, config.train, config.evaluation, config.output.metric
    rank, ranks = comm.rank, comm.size
    sampler = Sampler(
        num_files=len(data.train_keys), samples_per_file=data.samples_per_file,
        batch_size=reader.batch_size, rank=rank, ranks=ranks,
        file_shuffle=reader.file_shuffle, sample_shuffle=reader.sample_shuffle,
        shuffle_size=reader.shuffle_size, seed=train.seed, seed_change_epoch=train.seed_change_epoch,
        run_seed=run_seed, total_steps=train.total_training_steps, what="train")
    steps = sampler.steps
    loader = Loader(data.open_file, data.train_keys, data.samples_per_file,
                    read_threads=reader.read_threads, prefetch_size=reader.prefetch_size,
                    preprocess=reader.preprocess_time, seed=train.seed + rank,
                    counting=data.storage, keep_samples=False)
    eval_epochs = (set(epochs_with(ev.eval_after_epoch, ev.epochs_between_evals, train.epochs))
                   if config.workflow.evaluation else set())
    eval_sampler = eval_loader = None
    if eval_epochs:
        eval_sampler = Sampler(
            num_files=len(data.eval_keys), samples_per_file=data.samples_per_file,
            batch_size=reader.batch_size_eval, rank=rank, ranks=ranks,
            file_shuffle=reader.file_shuffle, sample_shuffle=reader.sample_shuffle,
            shuffle_size=reader.shuffle_size, seed=train.seed, seed_change_epoch=train.seed_change_epoch,
            run_seed=run_seed, what="eval")
        # an eval set too small for one step is an error before training (the Sampler's)
        eval_loader = Loader(data.open_file, data.eval_keys, data.samples_per_file,
                             read_threads=reader.read_threads, prefetch_size=reader.prefetch_size,
                             preprocess=reader.preprocess_time, seed=train.seed + rank + 7919,
                             keep_samples=False)
    ckpt = config.checkpoint
    ckpt_epochs: set[int] = set()
    ckpt_steps = -1
    if checkpoint is not None:
        if ckpt.steps_between_checkpoints > 0:
            ckpt_steps = ckpt.steps_between_checkpoints
        else:
            ckpt_epochs = set(epochs_with(ckpt.checkpoint_after_epoch, ckpt.epochs_between_checkpoints, train.epochs))

    # checkpoint.num_checkpoints_write, when set, caps the checkpoints a training run writes
    ckpt_limit = ckpt.num_checkpoints_write if ckpt.num_checkpoints_write > 0 else float("inf")
    rng = np.random.default_rng([train.seed, rank, 0xC0])
    notes = _Progress(progress)
    epochs: list[dict[str, Any]] = []
    evals: list[dict[str, Any]] = []
    checkpoints: list[dict[str, Any]] = []
    global_step = 0
    for epoch in range(1, train.epochs + 1):
        plan = sampler.epoch(epoch)
        notes.note(f"epoch {epoch} step 0/{steps} (waiting for the first batch)", force=True)
        comm.barrier()
        data.storage.reset()
        t_start, wall_start = time.perf_counter(), time.time()
        starts, ends, waits, computes, barriers, reads, ckpts, moved = ([] for _ in range(8))
        with loader.epoch(plan, epoch) as batches:
            for step in range(steps):
                t0 = time.perf_counter()
                batch = next(batches)
                t1 = time.perf_counter()
                spent = simulate(train.computation_time.draw(rng))
                t2 = time.perf_counter()
                comm.barrier()
                t3 = time.perf_counter()
                global_step += 1
                ckpt_seconds = 0.0
                if (checkpoint is not None and ckpt_steps > 0 and global_step % ckpt_steps == 0
                        and len(checkpoints) < ckpt_limit):
                    notes.note(f"epoch {epoch} step {step + 1}/{steps} checkpoint", force=True)
                    written = checkpoint(epoch, global_step)
                    ckpt_seconds = time.perf_counter() - t3  # left out of the AU window
                    checkpoints.append({"epoch": epoch, "step": global_step, "seconds": written["seconds"],
                                        "bytes": written["bytes"], "wall_seconds": ckpt_seconds})
                    t3 = time.perf_counter()
                starts.append(t0)
                ends.append(t3)
                waits.append(t1 - t0)
                computes.append(spent)
                barriers.append(t3 - t2 - ckpt_seconds)
                reads.append(batch.read_seconds)
                moved.append(batch.bytes_read)
                ckpts.append(ckpt_seconds)
                del batch
                notes.note(f"epoch {epoch} step {step + 1}/{steps}")
        t_end = time.perf_counter()
        bytes_read, _, requests = data.storage.reset()
        epochs.append({"rank": rank, **epoch_metrics(
            epoch=epoch, batch_size=reader.batch_size, exclude_start=metric.exclude_start_steps,
            exclude_end=metric.exclude_end_steps, step_start=starts, step_end=ends, load_wait=waits,
            compute=computes, barrier=barriers, read=reads, checkpoint=ckpts, batch_bytes=moved,
            bytes_read=bytes_read, requests=requests, duration=t_end - t_start, wall_start=wall_start,
            wall_end=time.time())})
        if epoch in eval_epochs and eval_sampler is not None and eval_loader is not None:
            notes.note(f"epoch {epoch} evaluation", force=True)
            evals.append(_evaluate(config, eval_sampler, eval_loader, data, epoch, comm, rng))
        if checkpoint is not None and epoch in ckpt_epochs and len(checkpoints) < ckpt_limit:
            notes.note(f"epoch {epoch} checkpoint", force=True)
            c0 = time.perf_counter()
            written = checkpoint(epoch, global_step)
            checkpoints.append({"epoch": epoch, "step": global_step, "seconds": written["seconds"],
                                "bytes": written["bytes"], "wall_seconds": time.perf_counter() - c0})
    comm.barrier()
    return {"rank": rank, "ranks": ranks, "steps_per_epoch": steps, "epochs": epochs, "evals": evals,
            "checkpoints": checkpoints}


def _evaluate(config: WorkloadConfig, sampler: Sampler, loader: Loader, data: DatasetAccess, epoch: int,
              comm: Comm, rng: np.random.Generator) -> dict[str, Any]:
    eval_time: TimeDistribution = config.evaluation.eval_time
    metric = config.output.metric
    plan = sampler.epoch(epoch)
    comm.barrier()
    data.storage.reset()
    start = time.perf_counter()
    waits, computes, reads, step_seconds = [], [], [], []
    with loader.epoch(plan, epoch) as batches:
        for _ in range(len(plan)):
            t0 = time.perf_counter()
            batch = next(batches)
            t1 = time.perf_counter()
            computes.append(simulate(eval_time.draw(rng)))
            waits.append(t1 - t0)
            reads.append(batch.read_seconds)
            step_seconds.append(time.perf_counter() - t0)
            del batch
    duration = time.perf_counter() - start
    comm.barrier()
    bytes_read, _, _ = data.storage.reset()
    return {"rank": comm.rank, **eval_metrics(
        epoch=epoch, batch_size=config.reader.batch_size_eval, exclude_start=metric.exclude_start_steps,
        exclude_end=metric.exclude_end_steps, load_wait=waits, compute=computes, read=reads,
        bytes_read=bytes_read, duration=duration, step_seconds=step_seconds)}


class _Progress:
    def __init__(self, sink: Callable[[str], None] | None):
        self.sink = sink
        self.last = 0.0

    def note(self, text: str, force: bool = False) -> None:
        if self.sink is None:
            return
        now = time.monotonic()
        if force or now - self.last >= PROGRESS_EVERY:
            self.last = now
            self.sink(text)


def window_note(config: WorkloadConfig, steps: int, what: str = "train") -> str | None:
    """What to say when the excluded steps leave nothing of an epoch (a 1-step epoch): DLIO runs
    it (its AU is then 0 and its throughput negative); here the window keeps every step
    (metrics.window_bounds) and the run says so. None when the window is not empty."""
    m = config.output.metric
    if steps > m.exclude_start_steps + m.exclude_end_steps:
        return None
    phase = "steps per epoch" if what == "train" else "evaluation steps"
    batch = "reader.batch_size" if what == "train" else "reader.batch_size_eval"
    return (f"{steps} {phase} leave nothing to measure after excluding output.metric.exclude_start_steps="
            f"{m.exclude_start_steps} and exclude_end_steps={m.exclude_end_steps}: every step is measured, "
            f"the first one's start-up included; for a window without it give more files "
            f"(dataset.num_files_{what}), a smaller {batch} or fewer ranks")


def plan_steps(config: WorkloadConfig, num_files: int, samples_per_file: int, ranks: int) -> int:
    """Steps per epoch on ``ranks`` ranks, checked (PlanError says what to change)."""
    return steps_per_epoch(num_files, samples_per_file, config.reader.batch_size, ranks,
                           config.train.total_training_steps)


def plan_eval_steps(config: WorkloadConfig, ranks: int) -> int:
    """Steps of one evaluation on ``ranks`` ranks, checked; 0 when the workload does not evaluate."""
    ds = config.dataset
    if not config.workflow.evaluation:
        return 0
    return steps_per_epoch(ds.num_files_eval, ds.num_samples_per_file, config.reader.batch_size_eval, ranks,
                           what="eval")


__all__: Sequence[str] = ["DatasetAccess", "plan_eval_steps", "plan_steps", "run_training", "window_note"]
