"""The data loader: ``read_threads`` workers reading whole batches ahead of the training loop.

Each of ``T = read_threads`` workers reads whole batches, taking the next one due, and the
loop takes batches in order. At most ``T * ceil(prefetch_size / T)`` batches are read or being
read and not yet taken (DLIO maps ``prefetch_size`` to PyTorch's per-worker
``prefetch_factor`` the same way), so memory is bounded and a slow loop stalls the readers.
``read_threads: 0`` reads each batch in the loop's own thread when it is asked for.

A sample is read through its file's ``SampleFile`` (``read_sample(i)`` moves the real bytes
through the storage and parses what the format needs). A worker keeps the files it opened in
a small LRU (a file is used by one thread at a time) and closes them at the end of the epoch.

With ``counting`` (the CountingStorage the files are read through) each batch says the bytes
its reads moved (``Batch.bytes_read``): a batch is read by one thread, whose reads of each file
(opening it included: footers, directories) are counted for it (``CountingStorage.tally``),
so a row group shared by several samples (parquet) counts for the batch whose read fetched it.

The training loop builds its loaders with ``keep_samples=False``: a simulated accelerator
consumes nothing, so a sample is let go as soon as it is read (DLIO's readers likewise hand the
loop a preallocated array, not the bytes read). The prefetched batches then hold no data, memory
stays at about one sample per read thread whatever ``prefetch_size`` and the sample size, and
each thread's next read reuses the buffer just freed, still in the CPU's caches; held batches
would push every copy out to memory, and page-cache reads would fall well behind a plain
sequential loop (docs/workloads.md, "What the harness costs", has the figures).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..storage import allocator
from ..storage.counting import CountingStorage
from .compute import TimeDistribution

#: files a worker keeps open at once (parquet holds a file's row groups while a handle of it is open)
OPEN_FILES_PER_THREAD = 16


class SampleFile(Protocol):
    num_samples: int

    def read_sample(self, index: int) -> Any: ...

    def close(self) -> None: ...


#: opens the file under a key for reading samples
OpenFile = Callable[[str], SampleFile]


class LoaderError(RuntimeError):
    """Reading a sample failed; the message names the file and the sample."""


@dataclass
class Batch:
    index: int
    #: what read_sample returned, in order (empty when the loader does not keep samples)
    samples: list[Any]
    #: seconds the worker spent reading the batch (storage + parsing + preprocess)
    read_seconds: float
    #: seconds of simulated preprocessing in read_seconds
    preprocess_seconds: float = 0.0
    #: bytes the storage returned for this batch's reads (0 without ``counting``)
    bytes_read: int = 0


@dataclass
class _Worker:
    files: OrderedDict[int, SampleFile] = field(default_factory=OrderedDict)
    rng: np.random.Generator | None = None


class Loader:
    """Reads the batches of an epoch plan through ``open_file``."""

    def __init__(self, open_file: OpenFile, keys: Sequence[str], samples_per_file: int, *,
                 read_threads: int = 1, prefetch_size: int = 2, preprocess: TimeDistribution | None = None,
                 seed: int = 0, open_files_per_thread: int = OPEN_FILES_PER_THREAD,
                 counting: CountingStorage | None = None, keep_samples: bool = True):
        if read_threads < 0:
            raise ValueError(f"read_threads must be >= 0, not {read_threads}")
        self.open_file = open_file
        self.keys = list(keys)
        self.samples_per_file = samples_per_file
        self.read_threads = read_threads
        self.prefetch_per_worker = max(1, math.ceil(prefetch_size / read_threads)) if read_threads else 0
        self.preprocess = None if preprocess is None or preprocess.is_zero else preprocess
        self.seed = seed
        self.open_files_per_thread = max(1, open_files_per_thread)
        self.counting = counting
        self.keep_samples = keep_samples
        allocator.tune()  # freed batch buffers reused by every worker (storage/allocator.py)

    def epoch(self, batches: np.ndarray, epoch: int = 0) -> EpochReader:
        """An iterator over the batches of ``batches`` (rows of global sample ids), in order."""
        return EpochReader(self, batches, epoch)

    # -- reading (in a worker thread, or the loop's thread with read_threads 0) ----------------
    def _file(self, state: _Worker, file_index: int) -> SampleFile:
        handle = state.files.get(file_index)
        if handle is not None:
            state.files.move_to_end(file_index)
            return handle
        if len(state.files) >= self.open_files_per_thread:
            _, oldest = state.files.popitem(last=False)
            oldest.close()
        handle = self.open_file(self.keys[file_index])
        state.files[file_index] = handle
        return handle

    def read_batch(self, state: _Worker, index: int, ids: np.ndarray) -> Batch:
        start = time.perf_counter()
        tally = self.counting.tally() if self.counting is not None else None
        moved = tally.bytes if tally is not None else 0
        samples: list[Any] = []
        keep = self.keep_samples
        spent = 0.0
        s = self.samples_per_file
        for sample_id in ids.tolist():
            file_index, sample = divmod(sample_id, s)
            if tally is not None:  # what a library reads of this file in its own threads is ours
                tally.key = self.keys[file_index]
            try:
                got = self._file(state, file_index).read_sample(sample)
                if keep:
                    samples.append(got)
                del got  # freed before the next read, which reuses its buffer
            except Exception as exc:
                raise LoaderError(f"reading sample {sample} of {self.keys[file_index]}: "
                                  f"{type(exc).__name__}: {exc}") from exc
            finally:
                if tally is not None:
                    tally.key = None
            if self.preprocess is not None:
                assert state.rng is not None, "a worker gets its generator with the preprocess time"
                pause = self.preprocess.draw(state.rng)
                time.sleep(pause)
                spent += pause
        if tally is not None:
            moved = tally.bytes - moved
        return Batch(index, samples, time.perf_counter() - start, spent, moved)

    def _new_state(self, epoch: int, worker: int) -> _Worker:
        rng = np.random.default_rng([self.seed, epoch, worker, 0x9E]) if self.preprocess else None
        return _Worker(rng=rng)


class EpochReader:
    """Iterates the batches of one epoch; use as a context manager (stops the workers).

    Workers take the next batch to read from a shared counter (a free worker never waits for
    a slow one's turn); at most ``capacity`` batches are read or being read and not yet taken
    (a slot is taken before reading and given back when the loop takes the batch); the loop
    takes batches in order."""

    def __init__(self, loader: Loader, batches: np.ndarray, epoch: int):
        self.loader = loader
        self.batches = batches
        self.count = len(batches)
        self.next_index = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        t = loader.read_threads
        if t == 0:
            self._sync_state = loader._new_state(epoch, 0)
            return
        self.capacity = t * loader.prefetch_per_worker
        self._slots = threading.Semaphore(self.capacity)
        self._dispense = iter(range(self.count)).__next__
        self._dispense_lock = threading.Lock()
        self._ready: dict[int, Batch | BaseException] = {}
        self._ready_cond = threading.Condition()
        for w in range(min(t, self.count)):
            thread = threading.Thread(target=self._work, args=(loader._new_state(epoch, w),),
                                      name=f"iobench-reader-{w}", daemon=True)
            self._threads.append(thread)
        for thread in self._threads:
            thread.start()

    def _work(self, state: _Worker) -> None:
        loader = self.loader
        try:
            while True:
                self._slots.acquire()
                if self._stop.is_set():
                    return
                with self._dispense_lock:
                    try:
                        index = self._dispense()
                    except StopIteration:
                        return
                try:
                    item: Batch | BaseException = loader.read_batch(state, index, self.batches[index])
                except BaseException as exc:  # handed to the loop, which raises it
                    item = exc
                with self._ready_cond:
                    self._ready[index] = item
                    self._ready_cond.notify_all()
                if isinstance(item, BaseException):
                    return
        finally:
            _close_all(state)

    def __iter__(self) -> EpochReader:
        return self

    def __next__(self) -> Batch:
        index = self.next_index
        if index >= self.count:
            raise StopIteration
        self.next_index += 1
        if self.loader.read_threads == 0:
            return self.loader.read_batch(self._sync_state, index, self.batches[index])
        with self._ready_cond:
            while index not in self._ready:
                self._ready_cond.wait()
            item = self._ready.pop(index)
        self._slots.release()
        if isinstance(item, BaseException):
            self.close()
            if isinstance(item, LoaderError):
                raise LoaderError(str(item)) from item.__cause__
            raise item
        return item

    def close(self) -> None:
        """Stop the workers (they finish the batch they are reading) and close files."""
        self._stop.set()
        if self.loader.read_threads == 0:
            _close_all(self._sync_state)
            return
        for _ in range(len(self._threads) + self.capacity):
            self._slots.release()
        for thread in self._threads:
            thread.join()

    def __enter__(self) -> EpochReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _close_all(state: _Worker) -> None:
    while state.files:
        _, handle = state.files.popitem()
        try:
            handle.close()
        except Exception:  # closing after a failed read must not hide the read's error
            pass
