"""The loader: batches in order from read_threads workers, a bounded prefetch, preprocess
time, files closed at the end of the epoch, and read errors naming the file and sample."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from pytest_iobench.workload.compute import TimeDistribution
from pytest_iobench.workload.loader import Loader, LoaderError


class Recorder:
    """SampleFiles that return (file, sample) and record what was read, when, and by whom."""

    def __init__(self, num_files: int, samples: int, delay: float = 0.0, fail_at: tuple[int, int] | None = None):
        self.keys = [f"train/f{i}" for i in range(num_files)]
        self.samples = samples
        self.delay = delay
        self.fail_at = fail_at
        self.lock = threading.Lock()
        self.reads: list[tuple[int, int]] = []
        self.threads: set[str] = set()
        self.open_files = 0
        self.opened = 0
        self.in_flight = 0
        self.most_in_flight = 0  # reads under way at the same moment, at most

    def open(self, key: str):
        recorder = self
        index = self.keys.index(key)
        with self.lock:
            self.open_files += 1
            self.opened += 1

        class File:
            num_samples = recorder.samples

            def read_sample(self, i):
                if recorder.fail_at == (index, i):
                    raise OSError("device on fire")
                with recorder.lock:
                    recorder.in_flight += 1
                    recorder.most_in_flight = max(recorder.most_in_flight, recorder.in_flight)
                if recorder.delay:
                    time.sleep(recorder.delay)
                with recorder.lock:
                    recorder.in_flight -= 1
                    recorder.reads.append((index, i))
                    recorder.threads.add(threading.current_thread().name)
                return (index, i)

            def close(self):
                with recorder.lock:
                    recorder.open_files -= 1

        return File()


def plan(num_files: int, samples: int, batch: int) -> np.ndarray:
    ids = np.arange(num_files * samples)
    np.random.default_rng(3).shuffle(ids)
    return ids[: len(ids) // batch * batch].reshape(-1, batch)


@pytest.mark.parametrize("threads", [0, 1, 4])
def test_batches_arrive_in_order_with_every_sample(threads):
    rec = Recorder(8, 5)
    batches = plan(8, 5, 4)
    loader = Loader(rec.open, rec.keys, 5, read_threads=threads, prefetch_size=2)
    with loader.epoch(batches) as reader:
        got = list(reader)
    assert [b.index for b in got] == list(range(len(batches)))
    for batch, ids in zip(got, batches):
        assert batch.samples == [divmod(int(i), 5) for i in ids]
        assert batch.read_seconds >= 0
    assert rec.open_files == 0, "every file is closed at the end of the epoch"
    if threads:
        assert 1 <= len(rec.threads) <= threads and "MainThread" not in rec.threads
    else:
        assert rec.threads == {"MainThread"}


def test_prefetch_is_bounded_by_prefetch_size():
    rec = Recorder(64, 1)
    batches = plan(64, 1, 2)
    loader = Loader(rec.open, rec.keys, 1, read_threads=2, prefetch_size=4)
    ahead = []
    with loader.epoch(batches) as reader:
        for taken, _ in enumerate(reader, start=1):
            time.sleep(0.01)  # a slow training step: the readers run ahead as far as they may
            with rec.lock:
                ahead.append(len(rec.reads) // 2 - taken)
    # 2 workers x ceil(4 / 2) batches each may be read and not yet taken
    assert max(ahead) == 4
    assert min(ahead) >= 0


@pytest.mark.parametrize("threads", [1, 4])
def test_read_threads_overlap_slow_reads(threads):
    # a device that takes 20 ms per request: with 4 readers and room to prefetch 4 batches
    # ahead, 4 requests are under way at once; with 1 reader, never more than one
    rec = Recorder(16, 1, delay=0.02)
    loader = Loader(rec.open, rec.keys, 1, read_threads=threads, prefetch_size=4)
    with loader.epoch(plan(16, 1, 1)) as reader:
        assert len(list(reader)) == 16
    assert rec.most_in_flight == threads, f"{threads} read threads had at most {rec.most_in_flight} reads in flight"


def test_preprocess_time_is_spent_per_sample():
    rec = Recorder(4, 2)
    loader = Loader(rec.open, rec.keys, 2, read_threads=1, prefetch_size=1,
                    preprocess=TimeDistribution("fixed", {"value": 0.01}))
    with loader.epoch(plan(4, 2, 4)) as reader:
        got = list(reader)
    for batch in got:
        assert batch.preprocess_seconds == pytest.approx(0.04)
        assert batch.read_seconds >= 0.04


def test_a_failed_read_names_file_and_sample_and_stops_the_workers():
    rec = Recorder(8, 2, fail_at=(5, 1))
    batches = np.arange(16).reshape(8, 2)
    loader = Loader(rec.open, rec.keys, 2, read_threads=3, prefetch_size=3)
    with pytest.raises(LoaderError, match=r"reading sample 1 of train/f5: OSError: device on fire"):
        with loader.epoch(batches) as reader:
            for _ in reader:
                pass
    assert not [t for t in threading.enumerate() if t.name.startswith("iobench-reader")]
    assert rec.open_files == 0


def test_stopping_early_releases_the_workers():
    rec = Recorder(32, 1)
    loader = Loader(rec.open, rec.keys, 1, read_threads=4, prefetch_size=2)
    with loader.epoch(plan(32, 1, 1)) as reader:
        next(reader)
    assert not [t for t in threading.enumerate() if t.name.startswith("iobench-reader")]
    assert len(rec.reads) < 32


def test_open_files_are_reused_within_a_worker():
    rec = Recorder(2, 50)
    batches = np.arange(100).reshape(10, 10)
    loader = Loader(rec.open, rec.keys, 50, read_threads=1, prefetch_size=2)
    with loader.epoch(batches) as reader:
        list(reader)
    assert rec.opened == 2


@pytest.mark.parametrize("threads", [0, 3])
def test_each_batch_counts_the_bytes_its_reads_moved(tmp_path, threads):
    """Batch.bytes_read: what the batch's reads moved, opening its files included, and reads a
    library makes in threads of its own for it (as pyarrow's I/O threads do); every byte of
    the epoch counts for one batch."""
    from concurrent.futures import ThreadPoolExecutor

    from pytest_iobench.storage.counting import CountingStorage
    from pytest_iobench.storage.posix import PosixStorage

    storage = CountingStorage(PosixStorage(str(tmp_path)))
    keys = [f"train/f{i}" for i in range(12)]
    for i, key in enumerate(keys):
        storage.put(key, bytes(1000 * (i + 1)))
    library = ThreadPoolExecutor(2, thread_name_prefix="library-io")

    class File:
        """Reads its header when opened, and its data in the library's own threads."""

        num_samples = 1

        def __init__(self, key):
            self.key = key
            self.header = storage.get_range(key, 0, 10)

        def read_sample(self, index):
            size = storage.stat(self.key).size
            return library.submit(storage.get_range, self.key, 10, size - 10).result()

        def close(self):
            pass

    batches = np.random.default_rng(5).permutation(12).reshape(6, 2)
    loader = Loader(File, keys, 1, read_threads=threads, prefetch_size=4, counting=storage)
    with loader.epoch(batches) as reader:
        got = list(reader)
    library.shutdown()
    assert [b.bytes_read for b in got] == [sum(1000 * (int(i) + 1) for i in row) for row in batches]
    assert sum(b.bytes_read for b in got) == storage.bytes_read


@pytest.mark.parametrize("threads", [0, 2])
def test_a_loader_that_keeps_no_samples_lets_each_go_before_the_next_read(threads):
    """keep_samples=False (the training loop's loaders): a sample is freed as soon as it is read,
    so the batches waiting in the prefetch queue hold no data."""
    import weakref

    class Sample:
        pass

    alive: list[weakref.ref] = []
    live_at_read: list[int] = []
    lock = threading.Lock()

    class File:
        num_samples = 4

        def __init__(self, key):
            pass

        def read_sample(self, index):
            sample = Sample()
            with lock:
                # what this thread read before is gone; only the other threads' reads in flight remain
                live_at_read.append(sum(ref() is not None for ref in alive))
                alive.append(weakref.ref(sample))
            return sample

        def close(self):
            pass

    keys = [f"train/f{i}" for i in range(6)]
    batches = plan(6, 4, 4)
    kept = Loader(File, keys, 4, read_threads=threads, prefetch_size=4)
    with kept.epoch(batches) as reader:
        held = list(reader)
    assert all(len(b.samples) == 4 and all(isinstance(s, Sample) for s in b.samples) for b in held)
    assert sum(ref() is not None for ref in alive) == len(alive), "a keeping loader holds every sample"
    del held
    alive.clear(), live_at_read.clear()

    loader = Loader(File, keys, 4, read_threads=threads, prefetch_size=4, keep_samples=False)
    with loader.epoch(batches) as reader:
        got = list(reader)
    assert [b.index for b in got] == list(range(len(batches))) and all(b.samples == [] for b in got)
    assert len(alive) == batches.size and not any(ref() is not None for ref in alive)
    assert max(live_at_read) <= max(threads - 1, 0), live_at_read
