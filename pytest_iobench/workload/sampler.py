"""Which samples each rank reads in which order, epoch by epoch.

Samples are numbered globally: sample ``g`` is sample ``g % S`` of file ``g // S`` (S samples
per file). For each epoch:

1. files are put in order, shuffled when ``file_shuffle`` is on;
2. the samples, file by file in that order, are cut into one contiguous block per rank (a
   file is split between two neighbouring ranks when a rank's share is not whole files;
   otherwise its samples stay on one rank); every rank gets exactly ``steps * batch``
   samples, so every rank takes the same number of steps and the per-step barrier cannot
   deadlock (13 files over 4 ranks: 3 steps each, one file left out - which one changes with
   the file shuffle);
3. a rank's block is shuffled when ``sample_shuffle`` is on, through a shuffle buffer of
   ``shuffle_size`` samples (as tf.data's shuffle does: a buffer as large as the block is a
   full shuffle);
4. the block is cut into batches; the last partial batch is dropped.

Shuffle seeds: ``seed`` uses ``train.seed`` (+ the epoch when ``seed_change_epoch``), so the
order changes every epoch; ``random`` uses a seed drawn once per run (shared by all ranks,
see ``run_seed``) + the epoch. File order is the same on every rank; sample order is per rank.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import numpy as np

SHUFFLES = ("off", "seed", "random")


class PlanError(ValueError):
    """The dataset, batch size and rank count do not make a run; the message says why."""


def new_run_seed() -> int:
    """A fresh seed for 'random' shuffles (drawn on rank 0 and broadcast)."""
    return secrets.randbits(31)


def steps_per_epoch(num_files: int, samples_per_file: int, batch_size: int, ranks: int,
                    total_training_steps: int = -1, what: str = "train") -> int:
    """DLIO's floor(samples / batch / ranks), or total_training_steps when that is set."""
    samples = num_files * samples_per_file
    available = samples // (batch_size * ranks)
    if available < 1:
        raise PlanError(
            f"{what}: {num_files} files x {samples_per_file} samples = {samples} samples cannot make one batch "
            f"of {batch_size} on each of {ranks} ranks; give more files (dataset.num_files_{what}) "
            f"or a smaller batch size")
    if total_training_steps > 0:
        if total_training_steps > available:
            raise PlanError(
                f"train.total_training_steps: {total_training_steps} steps need "
                f"{total_training_steps * batch_size * ranks} samples; the dataset has {samples} "
                f"({available} steps of {batch_size} on {ranks} ranks)")
        return total_training_steps
    return available


@dataclass(frozen=True)
class Sampler:
    num_files: int
    samples_per_file: int
    batch_size: int
    rank: int
    ranks: int
    file_shuffle: str = "off"
    sample_shuffle: str = "off"
    shuffle_size: int = 1024
    seed: int = 123
    seed_change_epoch: bool = True
    #: the shared seed of 'random' shuffles (the same on every rank)
    run_seed: int = 0
    total_steps: int = -1
    what: str = "train"

    def __post_init__(self) -> None:
        for name in ("file_shuffle", "sample_shuffle"):
            if getattr(self, name) not in SHUFFLES:
                raise ValueError(f"{name} must be one of {SHUFFLES}, not {getattr(self, name)!r}")
        if not 0 <= self.rank < self.ranks:
            raise ValueError(f"rank {self.rank} is not in 0..{self.ranks - 1}")

    @property
    def steps(self) -> int:
        return steps_per_epoch(self.num_files, self.samples_per_file, self.batch_size, self.ranks,
                               self.total_steps, self.what)

    def _epoch_seed(self, mode: str, epoch: int) -> int:
        if mode == "random":
            return self.run_seed + epoch
        return self.seed + epoch if self.seed_change_epoch else self.seed

    def file_order(self, epoch: int) -> np.ndarray:
        files = np.arange(self.num_files, dtype=np.int64)
        if self.file_shuffle != "off":
            rng = np.random.default_rng([self._epoch_seed(self.file_shuffle, epoch), 0x5F11E])
            rng.shuffle(files)
        return files

    def epoch(self, epoch: int) -> np.ndarray:
        """This rank's batches of one epoch: an array (steps, batch_size) of global sample ids."""
        steps = self.steps
        per_rank = steps * self.batch_size
        s = self.samples_per_file
        files = self.file_order(epoch)
        # Only the files this rank's block touches are expanded into sample ids.
        first, last = self.rank * per_rank, (self.rank + 1) * per_rank  # [first, last)
        f0, f1 = first // s, -(-last // s)
        ids = (files[f0:f1, None] * s + np.arange(s, dtype=np.int64)).ravel()
        block = ids[first - f0 * s: last - f0 * s]
        if self.sample_shuffle != "off":
            rng = np.random.default_rng([self._epoch_seed(self.sample_shuffle, epoch), 0x5A3B1E, self.rank])
            block = buffer_shuffle(block, self.shuffle_size, rng)
        return block.reshape(steps, self.batch_size)

    def locate(self, sample_id: int) -> tuple[int, int]:
        """(file index, sample index in the file) of a global sample id."""
        return int(sample_id) // self.samples_per_file, int(sample_id) % self.samples_per_file


def buffer_shuffle(items: np.ndarray, buffer_size: int, rng: np.random.Generator) -> np.ndarray:
    """Shuffle as a streaming loader does with a buffer of ``buffer_size`` items: fill the
    buffer, then repeatedly emit a random buffered item and put the next input in its place."""
    n = len(items)
    if buffer_size >= n:
        return rng.permutation(items)
    if buffer_size <= 1:
        return items.copy()
    out = np.empty_like(items)
    buffer = items[:buffer_size].copy()
    picks = rng.integers(0, buffer_size, size=n)
    nxt = buffer_size
    for i in range(n - buffer_size):
        j = picks[i]
        out[i] = buffer[j]
        buffer[j] = items[nxt]
        nxt += 1
    # Input exhausted: drain what is left in random order.
    out[n - buffer_size:] = rng.permutation(buffer)
    return out
