"""Checkpoint write and read: shards verified on 1 and 2 ranks, fsync that takes effect (and
the results saying where it cannot be turned off), reads not served from the page cache (the
drop verified; tmpfs, a drop that does not work and an O_DIRECT fallback that cannot open told
apart), corrupted / missing shards named with the write figures kept, a failed write that
leaves no complete-looking checkpoint, and the keys that shape the run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from pytest_iobench.mpi.checkpointing import (
    CheckpointReadFailed,
    checkpoint_warnings,
    measure_checkpoints,
    record_checkpoint,
    run_checkpoint_session,
)
from pytest_iobench.mpi.session import MPISession
from pytest_iobench.report.record import TestRecord as Record
from pytest_iobench.storage import StorageError, StorageSpec, open_storage
from pytest_iobench.storage.base import Storage
from pytest_iobench.storage.posix import memory_file_system, resident_pages
from pytest_iobench.storage.wrapping import WrappedStorage, WrappedWriter
from pytest_iobench.workload.checkpoint_io import (
    MANIFEST,
    CheckpointError,
    CheckpointIncomplete,
    CheckpointIO,
)
from pytest_iobench.workload.config import load_workload
from pytest_iobench.workload.page_cache import DROP_ATTEMPTS, drop_cache

SMALL = ["checkpoint.num_checkpoints_write=2", "checkpoint.num_checkpoints_read=2",
         "checkpoint.time_between_checkpoints=0"]
SCALE = 1 / 2000  # llama3-8b: ~56 MB per checkpoint


def llama(*overrides):
    return load_workload("llama3-8b", [*SMALL, *overrides])


@pytest.fixture
def local(tmp_path):
    return open_storage(StorageSpec("local", "posix", root=str(tmp_path / "ckpt")))


def manifests(storage, folder="checkpoints/llama_8b"):
    keys = [k for k in storage.list(folder + "/") if k.endswith("/" + MANIFEST)]
    return [json.loads(bytes(storage.get(k))) for k in keys]


class Faulty(WrappedStorage):
    """A real storage with one fault injected on one shard: ``corrupt`` rewrites it with a
    flipped byte before it is first read, ``lose`` deletes it, ``fail_write`` breaks its writer
    half-way, ``keep_cache`` refuses to drop the page cache, ``fake_evict`` says it dropped it
    and did nothing (as posix_fadvise does on tmpfs), ``late_evict`` does that the first time
    only (as a drop that finds pages locked or under writeback does). Records whether each read found the file's
    pages already in the page cache."""

    def __init__(self, inner: Storage, target: str = "", fault: str = "", hide_spec: bool = False):
        super().__init__(inner)
        self.target, self.fault = target, fault
        if hide_spec:
            self.spec = None
        self.cached_reads: list[bool] = []
        self.fired = False
        self.evictions = 0

    def _hit(self, key):
        if self.target and key.endswith(self.target) and not self.fired:
            self.fired = True
            return True
        return False

    def _probe(self, key):
        """Whether any page of the file is in memory as its read begins (mincore, which reads
        nothing: a read with RWF_NOWAIT starts readahead itself, and a fast device could have
        the page in before the call returned)."""
        path = getattr(self.inner, "path", None)
        if path is None or key.endswith(MANIFEST) or not os.path.exists(path(key)):
            return
        self.cached_reads.append(resident_pages(path(key))[0] > 0)

    def get(self, key):
        if self._hit(key):
            if self.fault == "corrupt":
                data = bytearray(self.inner.get(key))
                data[len(data) // 2] ^= 0xFF
                self.inner.put(key, data)
            elif self.fault == "lose":
                self.inner.delete(key)
        if key.endswith(".pt") and self.inner.kind == "local":
            self._probe(key)
        return self.inner.get(key)

    def open_writer(self, key, *, fsync=False):
        writer = self.inner.open_writer(key, fsync=fsync)
        if self.fault == "fail_write" and self._hit(key):
            return _Breaking(self, writer)
        return writer

    def evict_cache(self, keys):
        self.evictions += 1
        if self.fault == "fake_evict" or (self.fault == "late_evict" and self.evictions == 1):
            return True
        return False if self.fault == "keep_cache" else self.inner.evict_cache(keys)


class _Breaking(WrappedWriter):
    def _write(self, view):
        # the device fills up after the first MiB
        self.inner.write(view[: max(0, (1 << 20) - self.bytes_written)])
        if self.bytes_written + view.nbytes > 1 << 20:
            raise StorageError("write", self.key, "posix", "No space left on device")


@pytest.mark.parametrize("ranks", [1, 2], ids=["r1", "r2"])
def test_write_then_read_back_verified(local, ranks):
    outcome = run_checkpoint_session(MPISession(timeout=120), llama(), local, ranks=ranks, scale=SCALE)
    size = outcome.size_bytes
    assert outcome.write_bytes == [size, size] and outcome.read_bytes == [size, size]
    assert len(outcome.write_seconds) == 2 and all(s > 0 for s in outcome.read_seconds)
    assert outcome.cache == "evicted"
    found = manifests(local)
    assert len(found) == 2 and all(len(m["shards"]) == 16 for m in found)
    for m in found:
        for entry in m["shards"]:
            key = f"checkpoints/llama_8b/global_epoch1_step{m['step']}/{entry['name']}"
            assert local.stat(key).size == entry["size"]
    shards_per_process = [len(r["shards"]) for r in outcome.results]
    assert shards_per_process == [16 // ranks] * ranks
    record = Record("t")
    record_checkpoint(record, outcome)
    rates = [b / s / 1e9 for b, s in zip(outcome.write_bytes, outcome.write_seconds)]
    # a run's figure is the mean over its checkpoints (DLIO's mean GB/s)
    assert record.metrics["checkpoint_write_GB_per_second"].value == pytest.approx(sum(rates) / 2)
    assert record.metrics["checkpoint_read_GiB_per_second"].unit == "GiB/s"
    assert record.metrics["checkpoint_size_GiB"].value == pytest.approx(size / 2**30)
    assert any("layout is computed for the model's 8 ranks" in w for w in record.warnings)
    run = record.details["checkpoint"]["runs"][0]
    assert len(run["per_rank"]) == ranks and run["write_seconds"] == outcome.write_seconds


def test_measure_repeats_whole_runs_and_records_warmups(local):
    record = Record("t", repeat=2, warmups=1)
    sessions = []

    def run():
        sessions.append(run_checkpoint_session(MPISession(), llama(), local, ranks=1, scale=SCALE))
        return sessions[-1]

    outcomes = measure_checkpoints(record, run, llama())
    assert outcomes == sessions and len(sessions) == 3, "one warm-up and two counted runs, each a whole session"
    means = [o.figures()["checkpoint_read_GB_per_second"] for o in sessions]
    metric = record.metrics["checkpoint_read_GB_per_second"]
    assert metric.warmup == pytest.approx(means[:1]) and metric.repeats == pytest.approx(means[1:])
    assert metric.value == pytest.approx(sum(means[1:]) / 2)
    runs = record.details["checkpoint"]["runs"]
    assert [r["warmup"] for r in runs] == [True, False, False]
    assert all(len(r["write_seconds"]) == 2 and len(r["read_seconds"]) == 2 for r in runs), "per checkpoint"


def test_reads_do_not_come_from_the_page_cache(local):
    probe = Faulty(local)
    outcome = run_checkpoint_session(MPISession(), llama(), probe, ranks=1, scale=SCALE)
    assert outcome.cache == "evicted"
    detail = outcome.results[0]["cache_detail"]
    assert detail["resident_pages"] == 0 and detail["pages"] > 0, "the drop is verified page by page"
    assert probe.cached_reads and not any(probe.cached_reads), "a shard was still in the page cache"


def test_resident_pages_sees_what_is_in_memory(local):
    local.put("f", os.urandom(1 << 20))
    path = os.path.join(local.root, "f")
    assert resident_pages(path) == (256, 256), "just written: every page is in memory"
    assert local.evict_cache(["f"])
    assert resident_pages(path) == (0, 256)
    bytes(local.get_range("f", 0, 4096))
    assert 0 < resident_pages(path)[0] < 256, "reading a page brings it (and its readahead) back"


def test_a_drop_that_leaves_pages_is_tried_again(local):
    keys = [f"shard{i}" for i in range(3)]
    for key in keys:
        local.put(key, os.urandom(1 << 20))
    probe = Faulty(local, fault="late_evict")
    state = drop_cache(probe, keys)
    assert probe.evictions == 2 and state.state == "evicted" and state.resident == 0 and state.pages == 768


def test_a_drop_that_does_not_work_is_found_and_o_direct_used(local):
    probe = Faulty(local, fault="fake_evict")
    outcome = run_checkpoint_session(MPISession(), llama(), probe, ranks=1, scale=SCALE)
    assert outcome.cache == "odirect", "the drop said done, the pages stayed: read through O_DIRECT"
    assert probe.evictions == DROP_ATTEMPTS, "tried again before giving up"
    detail = outcome.results[0]["cache_detail"]
    # pages stayed (all of them, unless the kernel reclaimed some meanwhile: a busy machine does)
    assert 0 < detail["resident_pages"] <= detail["pages"]
    assert any("dropping the page cache did not work; the shards were read through O_DIRECT" in w
               and "pages stayed in memory" in w for w in outcome.warnings)


@pytest.fixture
def shm_root():
    if not os.path.isdir("/dev/shm") or memory_file_system("/dev/shm") is None:
        pytest.skip("no tmpfs at /dev/shm")
    root = f"/dev/shm/iobench-test-{os.getpid()}-{os.urandom(3).hex()}"
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_memory_file_system_is_told_by_statfs(shm_root):
    assert memory_file_system(shm_root) == "tmpfs", "a root not made yet: the directory above it says"
    assert memory_file_system("/proc") is None, "proc is not a memory file system of files"


def test_a_root_on_tmpfs_is_memory_not_evicted(shm_root):
    storage = open_storage(StorageSpec("local", "posix", root=shm_root))
    # posix_fadvise succeeds there and drops nothing: the storage says it evicted
    outcome = run_checkpoint_session(MPISession(), llama(), storage, ranks=1, scale=SCALE)
    assert outcome.cache == "memory"
    assert outcome.results[0]["cache_detail"]["filesystem"] == "tmpfs"
    assert any(w.startswith("the checkpoint is on a file system in memory: every read came from memory")
               and "tmpfs" in w for w in outcome.warnings)
    record = Record("t")
    record_checkpoint(record, outcome)
    assert record.details["checkpoint"]["cache_between_write_and_read"] == "memory"


def test_an_o_direct_fallback_that_cannot_open_says_reads_may_be_from_memory(local, tmp_path):
    # the cache is kept and the O_DIRECT storage cannot be opened (its root is not a directory;
    # a file system refusing O_DIRECT fails at the same place): the run goes on, and says so
    (tmp_path / "not-a-dir").write_bytes(b"")
    faulty = Faulty(local, fault="keep_cache")
    faulty.spec = StorageSpec("local", "posix", root=str(tmp_path / "not-a-dir"))
    from pytest_iobench.mpi.context import SingleRank
    from pytest_iobench.workload.checkpoint_run import run_checkpoint_rank
    from pytest_iobench.workload.job import checkpoint_job

    config = llama()
    result = run_checkpoint_rank(checkpoint_job(config, local.spec, scale=SCALE, seed=1), config, SingleRank(),
                                 storage=faulty)
    assert result["cache"] == "none" and len(result["reads"]) == 2
    assert "O_DIRECT is not possible either" in result["cache_detail"]["note"]


def test_when_the_cache_cannot_be_dropped_the_results_say_so(local):
    # hide_spec: no O_DIRECT fallback either; a session needs a spec, so run the rank directly
    probe = Faulty(local, fault="keep_cache", hide_spec=True)
    from pytest_iobench.mpi.context import SingleRank
    from pytest_iobench.workload.checkpoint_run import run_checkpoint_rank
    from pytest_iobench.workload.job import checkpoint_job

    config = llama()
    job = checkpoint_job(config, local.spec, scale=SCALE, seed=1)
    result = run_checkpoint_rank(job, config, SingleRank(), storage=probe)
    assert result["cache"] == "none"
    assert any(probe.cached_reads), "without the drop, reads find the shards in memory"
    from pytest_iobench.mpi.checkpointing import CheckpointOutcome

    outcome = CheckpointOutcome(config, 1, "local-posix", SCALE, result["layout"], [result], None,
                                read_seconds=[r["seconds"] for r in result["reads"]], cache=result["cache"])
    assert any("could not be dropped and O_DIRECT was not possible" in w and "pages still in memory" in w
               for w in checkpoint_warnings(config, outcome, 8))


def test_page_cache_kept_falls_back_to_o_direct(local):
    outcome = run_checkpoint_session(MPISession(), llama(), Faulty(local, fault="keep_cache"), ranks=1, scale=SCALE)
    assert outcome.cache == "odirect"
    assert outcome.read_bytes == [outcome.size_bytes] * 2


@pytest.mark.parametrize("fault,message", [
    ("corrupt", r"shard checkpoints/llama_8b/global_epoch1_step2/zero_pp_rank_3_mp_rank_00_optim_states.pt "
                r"is corrupted: CRC32C"),
    ("lose", r"shard checkpoints/llama_8b/global_epoch1_step2/zero_pp_rank_3_mp_rank_00_optim_states.pt is missing"),
])
def test_a_bad_shard_at_read_time_fails_naming_it(local, fault, message):
    faulty = Faulty(local, target="step2/zero_pp_rank_3_mp_rank_00_optim_states.pt", fault=fault)
    with pytest.raises(CheckpointError, match=message):
        run_checkpoint_session(MPISession(), llama(), faulty, ranks=1, scale=SCALE)


def test_a_failed_read_keeps_the_write_figures(local):
    # the suite's path: measure the runs; the second checkpoint read back finds a corrupted shard
    faulty = Faulty(local, target="step2/zero_pp_rank_3_mp_rank_00_optim_states.pt", fault="corrupt")
    record = Record("t")
    corrupted = re.escape("zero_pp_rank_3_mp_rank_00_optim_states.pt is corrupted")
    with pytest.raises(CheckpointReadFailed, match=corrupted) as caught:
        measure_checkpoints(record, lambda: run_checkpoint_session(MPISession(), llama(), faulty, ranks=1,
                                                                   scale=SCALE), llama())
    written = caught.value.outcome
    assert len(written.write_seconds) == 2 and written.write_bytes == [written.size_bytes] * 2
    assert record.metrics["checkpoint_write_GB_per_second"].value == pytest.approx(
        written.figures()["checkpoint_write_GB_per_second"])
    # checkpoint step1 was read (num_checkpoints_read=2: step1, then step2, which fails)
    assert record.metrics["checkpoint_read_seconds"].value == pytest.approx(written.read_seconds[0])
    assert len(written.read_seconds) == 1
    errors = record.details["checkpoint"]["runs"][0]["read_errors"]
    assert [e["rank"] for e in errors] == [0] and "zero_pp_rank_3_mp_rank_00_optim_states.pt" in errors[0]["message"]


def test_a_failed_write_leaves_no_complete_looking_checkpoint(local):
    faulty = Faulty(local, target="zero_pp_rank_5_mp_rank_00_optim_states.pt", fault="fail_write")
    with pytest.raises(StorageError, match=r"zero_pp_rank_5_mp_rank_00_optim_states\.pt.*No space left"):
        run_checkpoint_session(MPISession(), llama(), faulty, ranks=1, scale=SCALE)
    folder = "checkpoints/llama_8b/global_epoch1_step1"
    keys = local.list(folder + "/")
    assert keys and f"{folder}/{MANIFEST}" not in keys
    assert not any("zero_pp_rank_5_mp_rank_00_optim" in k for k in keys)
    with pytest.raises(CheckpointIncomplete, match=re.escape("has no manifest.json: its write did not complete")):
        CheckpointIO(local, seed=0, fsync=False).read_manifest(folder)


def test_a_failed_rewrite_over_a_complete_checkpoint_leaves_no_manifest(local):
    # the folder name is the same every run: the old manifest must not survive over new shards
    folder = "checkpoints/llama_8b/global_epoch1_step1"
    run_checkpoint_session(MPISession(), llama(), local, ranks=1, scale=SCALE)
    assert f"{folder}/{MANIFEST}" in local.list(folder + "/")
    faulty = Faulty(local, target="zero_pp_rank_5_mp_rank_00_optim_states.pt", fault="fail_write")
    with pytest.raises(StorageError, match="No space left"):
        run_checkpoint_session(MPISession(), llama(), faulty, ranks=1, scale=SCALE)
    assert f"{folder}/{MANIFEST}" not in local.list(folder + "/")
    with pytest.raises(CheckpointIncomplete):
        CheckpointIO(local, seed=0, fsync=False).read_manifest(folder)


def test_a_failed_rank_write_under_mpi_leaves_no_manifest(local, tmp_path):
    # rank 1 cannot create its shards: a file where its directory should be
    os.makedirs(tmp_path / "ckpt" / "checkpoints" / "llama_8b" / "global_epoch1_step1", exist_ok=True)
    from pytest_iobench.mpi.session import RankFailed

    step = tmp_path / "ckpt" / "checkpoints" / "llama_8b" / "global_epoch1_step1"
    blocker = step / "zero_pp_rank_1_mp_rank_00_model_states.pt"
    blocker.mkdir()
    with pytest.raises(RankFailed, match=r"rank 1 of 2 failed: .*zero_pp_rank_1_mp_rank_00_model_states\.pt"):
        run_checkpoint_session(MPISession(timeout=60), llama(), local, ranks=2, scale=SCALE)
    assert f"checkpoints/llama_8b/global_epoch1_step1/{MANIFEST}" not in local.list("checkpoints/")


def test_randomize_tensor_and_time_between_checkpoints_take_effect(local, tmp_path):
    varied = run_checkpoint_session(MPISession(), llama("checkpoint.time_between_checkpoints=0.3"), local,
                                    ranks=1, scale=SCALE, prefix="varied")
    first_write, second_write = varied.results[0]["writes"]
    assert first_write["paused_before"] == 0 and second_write["paused_before"] >= 0.3
    assert second_write["started"] - first_write["ended"] >= 0.3, "the pause lies between the two writes"
    same = run_checkpoint_session(MPISession(), llama("checkpoint.randomize_tensor=False"), local, ranks=1,
                                  scale=SCALE, prefix="same")
    assert [w["paused_before"] for w in same.results[0]["writes"]] == [0, 0], "no pause: none slept"
    def crcs(prefix: str) -> list[dict[str, int]]:
        storage = open_storage(StorageSpec("local", "posix", root=os.path.join(local.root, prefix)))
        return [{e["name"]: e["crc32c"] for e in m["shards"]} for m in manifests(storage)]

    first, second = crcs("varied")
    assert all(first[n] != second[n] for n in first), "new random content for every checkpoint"
    first, second = crcs("same")
    assert first == second, "randomize_tensor: False writes the same bytes every time"


STRACE_SCRIPT = textwrap.dedent("""
    import sys
    from pytest_iobench.mpi.checkpointing import run_checkpoint_session
    from pytest_iobench.mpi.session import MPISession
    from pytest_iobench.storage import StorageSpec, open_storage
    from pytest_iobench.workload.config import load_workload
    root, library, fsync = sys.argv[1], sys.argv[2], sys.argv[3]
    config = load_workload("llama3-8b", ["checkpoint.num_checkpoints_write=1", "checkpoint.num_checkpoints_read=0",
                                         "checkpoint.fsync=" + fsync])
    storage = open_storage(StorageSpec("local", library, root=root))
    run_checkpoint_session(MPISession(), config, storage, ranks=1, scale=1 / 20000)
""")


@pytest.mark.parametrize("library", ["posix", "s3dlio"])
def test_checkpoint_fsync_takes_effect(tmp_path, library):
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed: cannot observe fsync calls")
    if library == "s3dlio":
        pytest.importorskip("s3dlio")
    counts = {}
    for fsync in ("True", "False"):
        log = tmp_path / f"strace-{fsync}.txt"
        root = tmp_path / f"root-{fsync}"
        done = subprocess.run([strace, "-f", "-y", "-e", "trace=fsync", "-o", str(log), sys.executable, "-c",
                               STRACE_SCRIPT, str(root), library, fsync], capture_output=True, text=True, timeout=120)
        if done.returncode and "ptrace" in done.stderr:
            pytest.skip(f"strace cannot trace here: {done.stderr.strip()[:200]}")
        assert done.returncode == 0, done.stderr[-2000:]
        lines = log.read_text().splitlines()
        # distinct shard files fsynced (the temporary name before the rename)
        counts[fsync] = len({line.split("/")[-1].split(".iobench-tmp")[0] for line in lines
                             if "fsync(" in line and "_states.pt" in line and line.rstrip().endswith("= 0")})
    # all 16 shards are fsynced with checkpoint.fsync: True
    assert counts["True"] == 16
    if library == "posix":
        assert counts["False"] == 0, "without checkpoint.fsync, no shard is fsynced"
    else:  # s3dlio's file writer fsyncs on finalize whatever it is asked: the results say so
        assert counts["False"] == 16
    # the storage's claim is what strace saw, and the results follow the claim
    storage = open_storage(StorageSpec("local", library, root=str(tmp_path / "root-False")))
    assert storage.write_always_syncs is (counts["False"] == 16), f"{library}: write_always_syncs is wrong"
    config = llama("checkpoint.fsync=False")
    warned = any(w.startswith(f"checkpoint.fsync: False does not take effect on local-{library}")
                 for w in checkpoint_warnings(config, CheckpointOutcomeFor(config, storage), 8, storage))
    assert warned is storage.write_always_syncs


def CheckpointOutcomeFor(config, storage):
    from pytest_iobench.mpi.checkpointing import CheckpointOutcome
    from pytest_iobench.workload.checkpoint_layout import layout_for

    return CheckpointOutcome(config, 8, storage.id, 1.0, layout_for(config, processes=8).to_dict(), [], None)


def test_subset_mode_writes_only_the_running_ranks_shards(local):
    outcome = run_checkpoint_session(MPISession(), llama("checkpoint.mode=subset"), local, ranks=1, scale=SCALE)
    assert outcome.results[0]["shards"] == ["zero_pp_rank_0_mp_rank_00_model_states.pt",
                                            "zero_pp_rank_0_mp_rank_00_optim_states.pt"]
    assert outcome.size_bytes < outcome.layout["size_bytes"] / 7
    assert outcome.read_bytes == [outcome.size_bytes] * 2
    assert any("checkpoint.mode: subset" in w for w in outcome.warnings)


def test_checkpoints_during_training(tmp_path):
    from test_workload_support import HERE, RAW_OPENER, write_raw_dataset

    from pytest_iobench.mpi.training import run_training_session
    from pytest_iobench.workload.config import load_mapping

    data = open_storage(StorageSpec("local", "posix", root=str(tmp_path / "data")))
    scratch = open_storage(StorageSpec("local", "posix", root=str(tmp_path / "scratch")))
    config = load_mapping({
        "model": {"name": "unet3d", "model_size": 4 << 20},
        "workflow": {"checkpoint": True},
        "dataset": {"num_files_train": 16, "record_length_bytes": 4096},
        "reader": {"batch_size": 1, "read_threads": 2},
        "train": {"epochs": 2, "computation_time": 0.01},
        "checkpoint": {"checkpoint_folder": "checkpoints/unet3d", "steps_between_checkpoints": 6, "fsync": True},
    }, "ckpt-train")
    write_raw_dataset(data, config)
    outcome = run_training_session(MPISession(env={"PYTHONPATH": HERE}, timeout=60), config, data, ranks=2,
                                   opener=RAW_OPENER, checkpoint_storage=scratch, scale=1.0)
    ckpts = outcome.results[0]["checkpoints"]
    assert [(c["epoch"], c["step"]) for c in ckpts] == [(1, 6), (2, 12)]  # 8 steps per epoch on 2 ranks
    found = sorted(k for k in scratch.list("checkpoints/unet3d/") if k.endswith(MANIFEST))
    assert found == [f"checkpoints/unet3d/global_epoch1_step6/{MANIFEST}",
                     f"checkpoints/unet3d/global_epoch2_step12/{MANIFEST}"]
    assert scratch.stat("checkpoints/unet3d/global_epoch1_step6/model_states-0.pt").size == 4 << 20
    capped = run_training_session(MPISession(), config.with_overrides(["checkpoint.num_checkpoints_write=1"]), data,
                                  ranks=1, opener=RAW_OPENER, checkpoint_storage=scratch,
                                  checkpoint_prefix="capped", scale=1.0, run_seed=1)
    assert len(capped.results[0]["checkpoints"]) == 1, "num_checkpoints_write caps a training run's checkpoints"
    assert not any("fsync" in w or "O_DIRECT" in w for w in outcome.warnings + capped.warnings)
    # checkpoints on a storage whose write figures carry caveats: the training results carry them
    direct = open_storage(StorageSpec("direct", "s3dlio", root=str(tmp_path / "direct")))
    caveats = run_training_session(MPISession(), config.with_overrides(["checkpoint.num_checkpoints_write=1",
                                                                        "checkpoint.fsync=False"]), data,
                                   ranks=1, opener=RAW_OPENER, checkpoint_storage=direct, scale=1.0, run_seed=1)
    assert direct.write_caveat in caveats.warnings
    assert any(w.startswith("checkpoint.fsync: False does not take effect on direct-s3dlio") for w in caveats.warnings)
    # the checkpoint written during epoch 1 is not reading time: read throughput leaves it out
    for rank in outcome.results:
        ep = rank["epochs"][0]
        assert ep["checkpoint_seconds"] == rank["checkpoints"][0]["wall_seconds"] > 0
        assert ep["read_duration"] == pytest.approx(ep["duration"] - ep["checkpoint_seconds"])
        assert ep["whole_epoch_bytes_per_second"] == pytest.approx(ep["bytes_read"] / ep["read_duration"])
        assert ep["bytes_per_second"] == pytest.approx(ep["window_bytes"] / ep["window_seconds"])
    longest = max(r["epochs"][0]["read_duration"] for r in outcome.results)
    assert outcome.summary["whole_epoch_bytes_per_second"][0] == pytest.approx(
        sum(r["epochs"][0]["bytes_read"] for r in outcome.results) / longest)


def test_checkpoint_time_is_left_out_of_the_au_window_and_the_read_time():
    from pytest_iobench.workload.metrics import epoch_metrics

    # 4 steps of 1 s (0.5 s compute); step 2 also writes a 10 s checkpoint and ends at 12 s
    starts = [0.0, 1.0, 12.0, 13.0]
    ends = [1.0, 12.0, 13.0, 14.0]
    ep = epoch_metrics(epoch=1, batch_size=2, exclude_start=1, exclude_end=0, step_start=starts, step_end=ends,
                       load_wait=[0.5] * 4, compute=[0.5] * 4, barrier=[0.0] * 4, read=[0.1] * 4,
                       checkpoint=[0.0, 10.0, 0.0, 0.0], batch_bytes=[1600, 800, 800, 800], bytes_read=4000,
                       requests=4, duration=14.0, wall_start=0.0, wall_end=14.0)
    assert ep["window_seconds"] == 3.0 and ep["au_percent"] == pytest.approx(50.0)
    assert ep["checkpoint_seconds"] == 10.0
    # bytes/s over the window (the excluded first step's 1600 bytes are not in it), as samples/s
    assert ep["window_bytes"] == 2400 and ep["bytes_per_second"] == 800.0 and ep["samples_per_second"] == 2.0
    assert ep["read_duration"] == 4.0 and ep["whole_epoch_bytes_per_second"] == 1000.0
