"""The sampler: sharding across ranks with equal steps, file and sample shuffles that change
the order every epoch when they should, and DLIO's step count."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_iobench.workload.sampler import PlanError, Sampler, buffer_shuffle, steps_per_epoch


def sampler(**kw) -> Sampler:
    base = dict(num_files=16, samples_per_file=4, batch_size=4, rank=0, ranks=1)
    base.update(kw)
    return Sampler(**base)


def files_read(s: Sampler, epoch: int) -> list[int]:
    """Files in the order this rank first touches them in an epoch."""
    return list(dict.fromkeys(int(i) // s.samples_per_file for i in s.epoch(epoch).ravel()))


def test_steps_per_epoch_is_dlio_floor():
    assert steps_per_epoch(168, 1, 7, 1) == 24
    assert steps_per_epoch(13, 1, 1, 4) == 3
    assert steps_per_epoch(1024, 1251, 400, 8) == 400
    assert steps_per_epoch(13, 1, 1, 4, total_training_steps=2) == 2
    with pytest.raises(PlanError, match="total_training_steps: 4 steps need 16 samples; the dataset has 13"):
        steps_per_epoch(13, 1, 1, 4, total_training_steps=4)
    with pytest.raises(PlanError, match="cannot make one batch of 7 on each of 2 ranks"):
        steps_per_epoch(13, 1, 7, 2)


@pytest.mark.parametrize("files,spf,batch,ranks", [(13, 1, 1, 4), (13, 3, 2, 2), (7, 5, 3, 3), (16, 4, 4, 2)])
@pytest.mark.parametrize("shuffle", ["off", "seed"])
def test_uneven_shards_give_equal_steps_and_disjoint_samples(files, spf, batch, ranks, shuffle):
    shards = [Sampler(files, spf, batch, r, ranks, file_shuffle=shuffle, sample_shuffle=shuffle).epoch(1)
              for r in range(ranks)]
    steps = (files * spf) // (batch * ranks)
    assert all(s.shape == (steps, batch) for s in shards), "every rank takes the same number of steps"
    every = np.concatenate([s.ravel() for s in shards])
    assert len(set(every.tolist())) == len(every), "no sample is read by two ranks"
    assert every.min() >= 0 and every.max() < files * spf


def test_a_file_is_split_between_neighbouring_ranks_only_when_shares_are_not_whole_files():
    def files_of(files, spf, batch, ranks):
        return [sorted({int(i) // spf for i in Sampler(files, spf, batch, r, ranks).epoch(1).ravel()})
                for r in range(ranks)]

    # 8 samples per rank over files of 4: whole files
    assert files_of(4, 4, 4, 2) == [[0, 1], [2, 3]]
    # 6 samples per rank over files of 4: file 1 is read by both ranks
    assert files_of(3, 4, 3, 2) == [[0, 1], [1, 2]]


def test_thirteen_files_over_four_ranks_leave_out_a_file_that_changes_with_the_shuffle():
    left_out = set()
    for epoch in range(1, 9):
        read = set()
        for r in range(4):
            read.update(files_read(Sampler(13, 1, 1, r, 4, file_shuffle="seed"), epoch))
        assert len(read) == 12
        left_out |= set(range(13)) - read
    assert len(left_out) > 1, "the file left out should not always be the same one"


def test_no_shuffle_reads_files_in_order_every_epoch():
    s = sampler()
    assert files_read(s, 1) == list(range(16)) == files_read(s, 2)
    assert s.epoch(1).ravel().tolist() == list(range(64))


def test_file_shuffle_seed_changes_every_epoch_and_is_reproducible():
    s = sampler(file_shuffle="seed")
    orders = [files_read(s, e) for e in range(1, 5)]
    assert all(sorted(o) == list(range(16)) for o in orders)
    assert len({tuple(o) for o in orders}) == 4, "a new file order every epoch"
    assert files_read(sampler(file_shuffle="seed"), 3) == orders[2], "same seed, same order"
    assert files_read(sampler(file_shuffle="seed", seed=9), 1) != orders[0], "another seed, another order"
    # samples of a file stay together when only files are shuffled
    first = s.epoch(1).ravel()
    assert all(first[i] // 4 == first[i + 1] // 4 for i in range(0, 64, 4) for i in [i, i + 1, i + 2])


def test_seed_change_epoch_false_keeps_the_order():
    s = sampler(file_shuffle="seed", sample_shuffle="seed", seed_change_epoch=False)
    assert np.array_equal(s.epoch(1), s.epoch(2))
    assert not np.array_equal(s.epoch(1), sampler().epoch(1))


def test_sample_shuffle_changes_the_order_within_the_shard():
    s = sampler(sample_shuffle="seed")
    e1, e2 = s.epoch(1).ravel(), s.epoch(2).ravel()
    assert sorted(e1.tolist()) == list(range(64)) == sorted(e2.tolist())
    assert not np.array_equal(e1, e2)
    assert not np.array_equal(e1, np.arange(64))


def test_random_shuffle_differs_between_runs_but_agrees_across_ranks():
    a0 = Sampler(16, 1, 1, 0, 2, file_shuffle="random", run_seed=111)
    a1 = Sampler(16, 1, 1, 1, 2, file_shuffle="random", run_seed=111)
    b0 = Sampler(16, 1, 1, 0, 2, file_shuffle="random", run_seed=222)
    assert np.array_equal(a0.file_order(1), a1.file_order(1)), "ranks share the file order"
    assert not np.array_equal(a0.file_order(1), b0.file_order(1))
    assert not np.array_equal(a0.file_order(1), a0.file_order(2))
    # ranks split the shuffled order without overlap
    assert not set(a0.epoch(1).ravel().tolist()) & set(a1.epoch(1).ravel().tolist())


def test_buffer_shuffle_is_a_permutation_bounded_by_the_buffer():
    rng = np.random.default_rng(1)
    items = np.arange(1000)
    for size in (2, 16, 100):
        out = buffer_shuffle(items, size, rng)
        assert sorted(out.tolist()) == items.tolist()
        # output position i holds an input from before position i + size
        assert all(out[i] < i + size for i in range(len(out) - size))
        assert not np.array_equal(out, items)
    assert np.array_equal(buffer_shuffle(items, 1, rng), items)
    full = buffer_shuffle(items, 5000, rng)
    assert sorted(full.tolist()) == items.tolist() and not np.array_equal(full, items)


def test_shuffle_size_takes_effect():
    small = sampler(num_files=1, samples_per_file=256, batch_size=1, sample_shuffle="seed", shuffle_size=2).epoch(1)
    large = sampler(num_files=1, samples_per_file=256, batch_size=1, sample_shuffle="seed", shuffle_size=1024).epoch(1)
    displacement = lambda order: float(np.mean(np.abs(order.ravel() - np.arange(256))))  # noqa: E731
    assert displacement(small) < 5 < displacement(large)
