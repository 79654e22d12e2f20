"""A kept dataset's content: checksums recorded while writing, verified on reuse (a flipped byte
of the same size is found and named), a corrupt dataset failed or regenerated as asked, and a
regeneration that deletes only the names this tool writes."""

from __future__ import annotations

import hashlib

import pytest

from pytest_iobench.data.generate import MANIFEST, DatasetCorrupt, delete_dataset, generate, read_manifest
from pytest_iobench.data.integrity import FULL_UP_TO, SAMPLE_BYTES, checksum_of, checksum_text, choose
from pytest_iobench.data.spec import DatasetSpec
from pytest_iobench.mpi.generate import main
from pytest_iobench.storage import Storage, StorageSpec, open_storage


def local(path) -> Storage:
    return open_storage(StorageSpec("local", "posix", root=str(path)))


def small(fmt: str = "npz", **extra) -> DatasetSpec:
    return DatasetSpec.from_mapping({"format": fmt, "num_files_train": 6, "num_files_eval": 2,
                                     "num_subfolders_train": 2, "num_samples_per_file": 3,
                                     "record_length_bytes": 30000, "record_length_bytes_stdev": 3000, **extra})


def flip_a_byte(path, offset: int = 1000) -> None:
    """Changes one byte in place: the file keeps its size (and, on files, its inode)."""
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))


@pytest.mark.parametrize("fmt", ["npz", "tfrecord", "parquet", "indexed_binary"])
def test_the_manifest_records_each_files_crc32c_as_written(tmp_path, fmt):
    storage = local(tmp_path)
    result = generate(small(fmt), storage, threads=2)
    manifest = read_manifest(storage)
    # every file (companions too), and the checksum is that of the bytes on the storage
    assert set(manifest["checksums"]) == set(manifest["files"]) == set(result.sizes)
    for key, recorded in manifest["checksums"].items():
        assert recorded == checksum_text(checksum_of((tmp_path / key).read_bytes())), key
    assert result.action == "generated" and result.why == "no dataset there" and result.seconds > 0


@pytest.mark.parametrize("mode", ["sample", "full"])
def test_a_flipped_byte_in_a_kept_dataset_is_found_and_named(tmp_path, mode):
    storage = local(tmp_path)
    spec = small()
    generate(spec, storage)
    reused = generate(spec, storage, verify=mode)
    assert reused.action == "reused" and reused.verification["files"] == 8 and not reused.verification["mismatch"]
    victim = spec.file_keys("train")[4]
    size = (tmp_path / victim).stat().st_size
    flip_a_byte(tmp_path / victim)
    assert (tmp_path / victim).stat().st_size == size
    before = (tmp_path / victim).read_bytes()
    with pytest.raises(DatasetCorrupt, match=rf"{victim}: crc32c:[0-9a-f]{{8}} of its bytes, the manifest says "
                                             r"crc32c:[0-9a-f]{8} .*--iobench-on-corrupt=regenerate"):
        generate(spec, storage, verify=mode)
    assert (tmp_path / victim).read_bytes() == before  # failing changes nothing
    # sizes only: not found (what --iobench-verify=none accepts)
    assert generate(spec, storage, verify="none").action == "reused"
    again = generate(spec, storage, verify=mode, on_corrupt="regenerate")
    assert again.action == "regenerated" and victim in again.why and "crc32c mismatch" in again.why
    assert (tmp_path / victim).read_bytes() != before
    assert generate(spec, storage, verify="full").action == "reused"


def test_a_flipped_byte_on_s3_is_found(tmp_path, storage_factory):
    s3 = storage_factory.at(storage_factory.get("s3", "boto3"), f"crc-{tmp_path.name}")
    spec = small("npy")
    generate(spec, s3)
    victim = spec.file_keys("eval")[1]
    data = bytearray(s3.get(victim))
    data[-7] ^= 0x80
    s3.put(victim, bytes(data))  # same size, other content
    with pytest.raises(DatasetCorrupt, match=victim):
        generate(spec, s3)
    assert generate(spec, s3, on_corrupt="regenerate").action == "regenerated"
    delete_dataset(s3, spec)


def test_the_command_line_verifies_too(tmp_path, capsys):
    spec = '{"format": "npy", "num_files_train": 3, "record_length_bytes": 5000}'
    assert main(["--spec", spec, "--root", str(tmp_path), "--quiet"]) == 0
    flip_a_byte(tmp_path / "train/img_1_of_3.npy", 200)
    assert main(["--spec", spec, "--root", str(tmp_path), "--quiet"]) == 1
    assert "train/img_1_of_3.npy: crc32c" in capsys.readouterr().err
    assert main(["--spec", spec, "--root", str(tmp_path), "--quiet", "--verify", "none"]) == 0


def test_sample_mode_reads_a_small_dataset_whole_and_a_large_one_in_part():
    keys = [f"k{i}" for i in range(100)]
    small_sizes = {k: FULL_UP_TO // 100 for k in keys}
    assert choose(keys, small_sizes, "sample") == keys
    big = {k: 64 << 20 for k in keys}
    chosen = choose(keys, big, "sample")
    assert chosen[:2] == ["k0", "k99"] and len(set(chosen)) == len(chosen)
    assert sum(big[k] for k in chosen) <= SAMPLE_BYTES + (64 << 20)
    assert choose(keys, big, "full") == keys and choose(keys, big, "none") == []


def test_regeneration_deletes_only_our_names_and_reports_the_rest(tmp_path):
    storage = local(tmp_path)
    spec = small()
    generate(spec, storage)
    foreign = {"train/notes.txt": b"mine", "valid/README": b"keep me", "index/other.idx": b"x" * 10,
               "train/0/img_0_of_6.npz.bak": b"a user's copy"}
    for key, data in foreign.items():
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_bytes(data)
    (tmp_path / spec.file_keys("train")[0]).unlink()  # incomplete: ours, regenerated without asking
    result = generate(spec, storage)
    assert result.action == "regenerated" and "files are missing" in result.why
    assert "4 files under" in result.why and "that this tool did not write were left as they are" in result.why
    for key, data in foreign.items():
        assert (tmp_path / key).read_bytes() == data, key
    # a regeneration asked for, and a dataset of another spec in the folder: the same
    other = small(num_files_train=3)
    result = generate(other, storage, regenerate=True)
    assert result.action == "regenerated" and "asked for" in result.why
    assert not (tmp_path / spec.file_keys("train")[5]).exists()  # the old spec's file, ours: gone
    for key, data in foreign.items():
        assert (tmp_path / key).read_bytes() == data, key
    # keep_files: false cleanup too
    with pytest.warns(UserWarning, match="did not write were left"):
        deleted = delete_dataset(storage, other)
    assert deleted == len(other.all_files()) and not (tmp_path / MANIFEST).exists()
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == sorted(foreign)


def test_a_file_written_by_another_tool_with_one_of_our_names_is_replaced_only_on_request(tmp_path):
    storage = local(tmp_path)
    spec = small("npy")
    key = spec.file_keys("train")[0]
    (tmp_path / key).parent.mkdir(parents=True)
    (tmp_path / key).write_bytes(b"theirs")
    digest = hashlib.sha256(b"theirs").hexdigest()
    with pytest.raises(Exception, match="files this tool did not write"):
        generate(spec, storage)
    assert hashlib.sha256((tmp_path / key).read_bytes()).hexdigest() == digest
    assert generate(spec, storage, regenerate=True).action == "regenerated"
