"""Generation on a full file system (a real 64 MiB tmpfs): a failed generation keeps none of
its files (no temporary files either), and when an earlier generation that never finished (its
process killed) holds space, the next one's ENOSPC error says where."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pytest_iobench.data.datasets import DatasetCache
from pytest_iobench.data.generate import MARKER, dataset_prefix
from pytest_iobench.data.spec import DatasetSpec
from pytest_iobench.storage import StorageError, StorageSpec, open_storage

MiB = 1 << 20


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 64 MiB tmpfs mounted for this test (skipped where mounting is not permitted)."""
    where = tmp_path / "tmpfs"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(where)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {(mounted.stderr or mounted.stdout).strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def files_under(path) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), path) for d, _, names in os.walk(path) for f in names)


def used(path) -> int:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def spec_of(files: int, seed: int = 1) -> DatasetSpec:
    return DatasetSpec.from_mapping({"format": "npy", "num_files_train": files, "num_samples_per_file": 1,
                                     "record_length_bytes": 8 * MiB, "seed": seed})


def test_a_generation_that_fills_the_disk_keeps_nothing(small_tmpfs):
    area = open_storage(StorageSpec("local", "posix", root=str(small_tmpfs / "datasets")))
    cache = DatasetCache(lambda a, prefix: open_storage(StorageSpec("local", "posix",
                                                                    root=os.path.join(a.root, prefix))), threads=2)
    with pytest.raises(StorageError, match="No space left on device"):
        cache.get(spec_of(12), area)  # 96 MiB into 64
    assert files_under(small_tmpfs) == []  # no data file, no temporary file, no marker, no lease
    assert used(small_tmpfs) < MiB


KILLED_GENERATION = """
import json, os, signal, sys
from pytest_iobench.data.generate import generate
from pytest_iobench.data.spec import DatasetSpec
from pytest_iobench.storage import StorageSpec, open_storage
from pytest_iobench.storage.wrapping import WrappedStorage

class StopsBeforeFile(WrappedStorage):
    # the process stops itself (SIGSTOP) as it opens data file number argv[3]: what it wrote
    # before is on disk, and the test kills it there, however fast generation runs
    opened = 0
    def open_writer(self, key, *, fsync=False):
        if key.startswith("train/"):
            self.opened += 1
            if self.opened == int(sys.argv[3]):
                os.kill(os.getpid(), signal.SIGSTOP)
        return self.inner.open_writer(key, fsync=fsync)

spec = DatasetSpec.from_mapping(json.loads(sys.argv[1]))
generate(spec, StopsBeforeFile(open_storage(StorageSpec("local", "posix", root=sys.argv[2]))), threads=1)
"""


def stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] == "T"


def test_the_next_enospc_names_an_earlier_generation_that_holds_space(small_tmpfs, tmp_path):
    datasets = small_tmpfs / "datasets"
    earlier = spec_of(7, seed=7)  # 56 MiB: killed once it holds 40
    folder = datasets / dataset_prefix(earlier)
    script = tmp_path / "generate.py"
    script.write_text(KILLED_GENERATION)
    child = subprocess.Popen([sys.executable, str(script), json.dumps(earlier.to_dict()), str(folder), "6"])
    deadline = time.monotonic() + 120
    while not stopped(child.pid) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)  # a real kill: no cleanup runs
    child.wait()
    assert (folder / MARKER).exists() and used(small_tmpfs) >= 40 * MiB

    area = open_storage(StorageSpec("local", "posix", root=str(datasets)))
    cache = DatasetCache(lambda a, prefix: open_storage(StorageSpec("local", "posix",
                                                                    root=os.path.join(a.root, prefix))))
    with pytest.raises(StorageError) as info:
        cache.get(spec_of(4, seed=4), area)  # 32 MiB: fits only without the earlier one
    message = str(info.value)
    assert "No space left on device" in message
    assert f"earlier generations that did not finish hold space in the datasets area: {folder} (" in message
    assert files_under(datasets / dataset_prefix(spec_of(4, seed=4))) == []  # the failed one kept nothing
    # asked for again, the earlier dataset is ours (its marker): replaced, then complete
    assert cache.get(earlier, area).result.action == "regenerated"
