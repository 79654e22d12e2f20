"""A data format is one module plus one registry line: a toy format defined in this module and
registered from it (no package file edited) is validated, sized, generated, reused and read
back through the same path as the package's formats."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from pytest_iobench.data.checks import Rule
from pytest_iobench.data.formats import FORMATS, FormatsWith, get_format, info, register, unregister
from pytest_iobench.data.formats.base import FileInfo, Format, SampleFile, WriterSink, copy_random
from pytest_iobench.data.formats.registry import FormatInfo
from pytest_iobench.data.generate import generate
from pytest_iobench.data.random import RandomStream
from pytest_iobench.data.sizing import sized_spec
from pytest_iobench.data.spec import DatasetSpec, DatasetSpecError
from pytest_iobench.storage import Storage, StorageSpec, StreamWriter, open_storage

_HEADER = struct.Struct("<II")  # samples, bytes per sample


class ToyFile(SampleFile):
    def __init__(self, storage: Storage, key: str):
        self.storage, self.key = storage, key
        self.num_samples, self.sample_bytes = _HEADER.unpack(bytes(storage.get_range(key, 0, _HEADER.size)))

    def read_sample(self, index: int):
        self.check_index(index)
        return self.storage.get_range(self.key, _HEADER.size + index * self.sample_bytes, self.sample_bytes)


class Toy(Format):
    """Samples back to back after a header giving their count and size."""

    info = FormatInfo("toy", sample_bytes=4 << 10, extension="toy", compressions=("none", "zip"),
                      rules=(Rule("num_samples_per_file", lambda v: v.num_samples_per_file > 64,
                                  "{num_samples_per_file} is too many for a toy file; give at most 64"),))

    def write(self, writer: StreamWriter, spec: DatasetSpec, split: str, index: int,
              stream: RandomStream) -> FileInfo:
        n, size = spec.num_samples_per_file, spec.record_bytes(split, index)
        sink = WriterSink(writer)
        sink.write(_HEADER.pack(n, size))
        copy_random(stream, sink, n * size, spec.write_chunk_bytes)
        sink.finish()
        return FileInfo(_HEADER.size + n * size, n)

    def open(self, storage: Storage, key: str, spec: DatasetSpec) -> SampleFile:
        return ToyFile(storage, key)


FORMAT = Toy()


@pytest.fixture
def toy():
    register("toy", __name__)
    yield
    unregister("toy")


def test_a_format_registered_from_outside_the_package_is_generated_and_read_back(tmp_path, toy):
    assert "toy" not in FORMATS  # the package's own list is untouched
    spec = DatasetSpec.from_mapping({"format": "toy", "num_files_train": 3, "num_samples_per_file": 4,
                                     "record_length_bytes": 1000, "record_length_bytes_stdev": 100})
    assert spec.file_keys() == ["train/img_0_of_3.toy", "train/img_1_of_3.toy", "train/img_2_of_3.toy"]
    storage = open_storage(StorageSpec("local", "posix", root=str(tmp_path)))
    result = generate(spec, storage, threads=2)
    assert set(result.sizes) == set(spec.file_keys())
    for index, key in enumerate(spec.file_keys()):
        size = spec.record_bytes("train", index)
        assert storage.stat(key).size == _HEADER.size + 4 * size == result.sizes[key]
        with get_format("toy").open(storage, key, spec) as f:
            samples = [bytes(f.read_sample(i)) for i in range(f.num_samples)]
        assert len(samples) == 4 and all(len(s) == size for s in samples)
        assert len(set(samples)) == 4 and np.frombuffer(samples[0], np.uint8).std() > 0  # random, not zeros
    again = generate(spec, storage, threads=1)
    assert again.reused  # the manifest and the files of the same spec are found again


def test_a_registered_format_declares_its_keys_sizes_and_rules(toy):
    assert info("toy").compressions == ("none", "zip") and not info("toy").slow
    sized = sized_spec("toy", 1 << 20)
    assert sized.record_length_bytes == 4 << 10 and sized.num_files_train == 8
    with pytest.raises(DatasetSpecError) as bad:
        DatasetSpec.from_mapping({"format": "toy", "num_samples_per_file": 65, "compression": "gzip"})
    assert str(bad.value).splitlines() == [
        "dataset.compression: 'gzip' is not available for toy (valid for toy: none, zip)",
        "dataset.num_samples_per_file: 65 is too many for a toy file; give at most 64",
    ]


def test_an_unregistered_format_is_an_unknown_one(toy):
    unregister("toy")
    with pytest.raises(DatasetSpecError, match=r"dataset\.format: 'toy' is not a known format"):
        DatasetSpec.from_mapping({"format": "toy"})
    with pytest.raises(ValueError, match="unknown format 'toy'; valid: npz, npy"):
        get_format("toy")


def test_formats_are_found_by_what_they_declare(toy):
    slow, images = FormatsWith("slow"), FormatsWith("image")
    assert [f for f in FORMATS if f in slow] == ["csv", "jpeg", "png"]
    assert [f for f in FORMATS if f in images] == ["jpeg", "png"]
    assert "toy" not in slow and "toy" not in images


def test_every_format_of_the_package_declares_itself():
    for name in FORMATS:
        declared = info(name)
        assert declared.name == name and get_format(name).name == name
        assert declared.sample_bytes > 0 and "none" in declared.compressions
