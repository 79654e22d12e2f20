"""DatasetSpec: DLIO's keys and defaults, DLIO's file names, seeded sizes, and every bad spec
rejected with a message that names the key, what is wrong and what is valid."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_iobench.data.spec import DatasetSpec, DatasetSpecError


def test_defaults_are_dlios():
    spec = DatasetSpec.from_mapping({})
    d = DatasetSpec.defaults()
    assert (spec.format, spec.num_files_train, spec.num_files_eval, spec.num_samples_per_file) == ("tfrecord", 8, 0, 1)
    assert (spec.record_length_bytes, spec.record_element_type, spec.file_prefix, spec.compression) == (
        65536, "uint8", "img", "none")
    assert (d["compression_level"], d["keep_files"], d["data_folder"], d["hdf5"]["num_dset_per_record"]) == (
        4, True, "./data/", 1)
    assert d["generation_buffer_size"] == 2 << 30 and d["parquet"]["row_group_size"] == 1024
    for key in ("record_length_bytes_stdev", "record_dims", "num_subfolders_eval", "hdf5.chunk_dims",
                "parquet.columns", "seed", "enable_chunking", "chunk_size"):
        assert key in DatasetSpec.known_keys()


def test_round_trip_through_to_dict():
    spec = DatasetSpec.from_mapping({
        "format": "parquet", "num_files_train": 3, "record_length_bytes": 4104,
        "parquet": {"columns": [{"name": "label", "dtype": "int64"}, {"name": "data", "dtype": "binary"}],
                    "row_group_size": 7,
                    "compression": "zstd", "compression_level": 3}})
    again = DatasetSpec.from_mapping(spec.to_dict())
    assert again == spec and again.digest() == spec.digest()
    assert spec.parquet_columns(4104) == [("label", "int64", 1), ("data", "binary", 4096)]


def test_dlio_file_names_with_padding_and_subfolders():
    spec = DatasetSpec.from_mapping({"format": "npz", "num_files_train": 12, "num_files_eval": 3,
                                     "num_subfolders_train": 4, "file_prefix": "unet"})
    train = spec.file_keys("train")
    assert train[0] == "train/0/unet_00_of_12.npz" and train[5] == "train/1/unet_05_of_12.npz"
    assert train[11] == "train/3/unet_11_of_12.npz"
    assert spec.file_keys("eval") == ["valid/unet_0_of_3.npz", "valid/unet_1_of_3.npz", "valid/unet_2_of_3.npz"]
    one_folder = DatasetSpec.from_mapping({"format": "npy", "num_files_train": 2, "num_subfolders_train": 1})
    assert one_folder.file_keys() == ["train/img_0_of_2.npy", "train/img_1_of_2.npy"]  # DLIO: subfolders when > 1
    csv = DatasetSpec.from_mapping({"format": "csv", "num_files_train": 1, "compression": "gzip"})
    assert csv.file_keys() == ["train/img_0_of_1.csv.gz"]


def test_one_file_name_without_listing_the_split():
    spec = DatasetSpec.from_mapping({"format": "npz", "num_files_train": 1000, "num_subfolders_train": 12,
                                     "num_files_eval": 2})
    assert spec.file_key("train", 7) == "train/07/img_0007_of_1000.npz"
    assert spec.file_key("eval", 1) == "valid/img_1_of_2.npz"
    with pytest.raises(IndexError, match=r"file 2 of split 'eval' does not exist \(valid: 0 to 1\)"):
        spec.file_key("eval", 2)
    with pytest.raises(IndexError, match="valid: none, it has no files"):
        spec.with_changes(num_files_eval=0).file_key("eval", 0)


def test_sizes_are_seeded_per_file_and_spread_around_the_mean():
    mapping = {"format": "npz", "num_files_train": 400, "record_length_bytes": 1_000_000,
               "record_length_bytes_stdev": 100_000}
    sizes = DatasetSpec.from_mapping(mapping).record_sizes("train")
    assert np.array_equal(sizes, DatasetSpec.from_mapping(mapping).record_sizes("train"))
    assert 950_000 < sizes.mean() < 1_050_000 and 80_000 < sizes.std() < 120_000
    other_seed = DatasetSpec.from_mapping({**mapping, "seed": 11}).record_sizes("train")
    assert not np.array_equal(sizes, other_seed)
    fixed = DatasetSpec.from_mapping({"format": "npy", "num_files_train": 3, "record_length_bytes": 114660.07})
    assert fixed.record_sizes("train").tolist() == [114660] * 3  # DLIO files give floats


def test_record_dims_and_element_type_make_the_sample():
    spec = DatasetSpec.from_mapping({"format": "npy", "record_dims": [3, 4, 5], "record_element_type": "float32"})
    assert spec.record_length_bytes == 240 and spec.sample_shape("train", 0) == (3, 4, 5)
    flat = DatasetSpec.from_mapping({"format": "npy", "record_length_bytes": 4000, "record_element_type": "float64"})
    assert flat.sample_shape("train", 0) == (500,)
    image = DatasetSpec.from_mapping({"format": "jpeg", "record_length_bytes": 322957})
    assert image.sample_shape("train", 0) == (568, 568)


def test_keys_without_effect_are_reported():
    spec = DatasetSpec.from_mapping({"format": "npz", "record_length_bytes_resize": 2097152, "chunk_size": 10,
                                     "data_gen_method": "numpy"})
    assert set(spec.not_emulated) == {"record_length_bytes_resize", "chunk_size", "data_gen_method"}
    big_rows = DatasetSpec.from_mapping({"format": "parquet", "num_samples_per_file": 4096,
                                         "record_length_bytes": 1 << 20})
    assert big_rows.row_group_rows == 16 and "row groups of 16 rows" in big_rows.notes[0]


def test_record_dims_and_parquet_columns_take_priority_as_in_dlio_and_say_so():
    # DLIO: record_dims are "prioritized over record_length"; a given record_length_bytes that
    # disagrees is replaced, and reported (it was refused with a wrong message)
    spec = DatasetSpec.from_mapping({"format": "npz", "record_dims": [10, 10], "record_length_bytes": 65536})
    assert spec.record_length_bytes == 100 and spec.sample_shape("train", 0) == (10, 10)
    assert spec.not_emulated["record_length_bytes"] == ("65536 is replaced by the 100 bytes of record_dims [10, 10] of "
                                                        "uint8 (record_dims take priority, as in DLIO)")
    agreeing = DatasetSpec.from_mapping({"format": "npz", "record_dims": [10, 10], "record_length_bytes": 100})
    assert "record_length_bytes" not in agreeing.not_emulated
    # parquet columns as in DLIO: dtype float32 and size 1 when left out; the columns make the row
    columns = DatasetSpec.from_mapping({"format": "parquet", "record_length_bytes": 4096,
                                        "parquet": {"columns": [{"name": "f"},
                                                                {"name": "g", "dtype": "int64", "size": 2}]}})
    assert columns.parquet_columns(columns.record_length_bytes) == [("f", "float32", 1), ("g", "int64", 2)]
    assert columns.record_length_bytes == 20
    assert "4096 is replaced by the 20 bytes" in columns.not_emulated["record_length_bytes"]
    silent = DatasetSpec.from_mapping({"format": "parquet",
                                       "parquet": {"columns": [{"name": "f", "dtype": "float32"}]}})
    assert silent.record_length_bytes == 4 and "a row is 4 bytes, the columns' sizes" in silent.notes[0]


def test_hdf5_chunk_size_without_effect_is_reported():
    hdf5 = {"format": "hdf5", "record_dims": [8, 8]}
    chunk_size_alone = DatasetSpec.from_mapping({**hdf5, "chunk_size": 64}).not_emulated
    assert "enable_chunking: true only" in chunk_size_alone["chunk_size"]
    with_dims = DatasetSpec.from_mapping({**hdf5, "enable_chunking": True, "chunk_size": 64,
                                          "hdf5": {"chunk_dims": [1, 4, 4]}}).not_emulated
    assert with_dims["chunk_size"] == with_dims["enable_chunking"] == "hdf5.chunk_dims [1, 4, 4] decide the chunks"
    chunking = DatasetSpec.from_mapping({**hdf5, "enable_chunking": True, "chunk_size": 64}).not_emulated
    assert "chunk_size" not in chunking


@pytest.mark.parametrize("mapping, expected", [
    ({"formt": "npz"}, "dataset.formt: unknown key; did you mean dataset.format?"),
    ({"format": "npzz"}, "dataset.format: 'npzz' is not a known format; did you mean npz? (valid: npz, npy,"),
    ({"format": "synthetic"}, "dataset.format: 'synthetic' is not supported"),
    ({"num_files_train": -1}, "dataset.num_files_train: -1 is not valid; give a whole number >= 0"),
    ({"record_length_bytes": -5}, "dataset.record_length_bytes: -5 is not valid; give a number of bytes >= 1"),
    ({"record_length_bytes_stdev": -1}, "dataset.record_length_bytes_stdev: -1 is not valid"),
    ({"num_samples_per_file": 0}, "dataset.num_samples_per_file: 0 is not valid; give a whole number >= 1"),
    ({"num_files_train": "8"}, "dataset.num_files_train: '8' is not valid; give a whole number"),
    ({"format": "hdf5", "record_dims": [4, 4], "hdf5": {"max_shape": [4]}},
     "dataset.hdf5.max_shape: [4] has 1 dimensions; give the record's 2 (as DLIO), or 3 with the samples' axis first"),
    ({"record_element_type": "float32", "record_length_bytes": 6},
     "dataset.record_length_bytes: 6 bytes cannot be divided into whole float32 elements (4 bytes each)"),
    ({"record_dims": [8, 8], "record_length_bytes_stdev": 5},
     "dataset.record_length_bytes_stdev: cannot be used with record_dims"),
    ({"record_element_type": "str"}, "dataset.record_element_type: 'str' is not a numeric element type"),
    ({"record_element_type": "bool"}, "dataset.record_element_type: 'bool' is not a numeric element type (valid: "
     "numpy integer and float types such as uint8"),
    ({"record_element_type": "longdouble"}, "is not a numeric element type (valid: numpy integer and float types"),
    ({"compression": "gzp"}, "dataset.compression: 'gzp' is not a known compression; did you mean gzip?"),
    ({"format": "npy", "compression": "gzip"},
     "dataset.compression: 'gzip' is not available for npy (valid for npy: none)"),
    ({"format": "hdf5", "compression": "gzip", "compression_level": 12},
     "dataset.compression_level: 12 is not valid for gzip; give 0 to 9"),
    ({"format": "jpeg", "num_samples_per_file": 2}, "dataset.num_samples_per_file: 2 is not valid for jpeg"),
    ({"format": "png", "record_element_type": "float32"}, "dataset.record_element_type: float32 is not valid for png"),
    ({"format": "hdf5", "record_length_bytes": 100, "hdf5": {"num_dset_per_record": 3}},
     "dataset.hdf5.num_dset_per_record: 3 does not divide the elements of a record (100)"),
    ({"hdf5": {"chunk_dim": [1]}}, "dataset.hdf5.chunk_dim: unknown key; did you mean dataset.hdf5.chunk_dims?"),
    ({"format": "hdf5", "record_dims": [4, 4], "hdf5": {"chunk_dims": [1, 4]}},
     "dataset.hdf5.chunk_dims: [1, 4] has 2 dimensions; a dataset here has 3"),
    ({"format": "parquet", "parquet": {"columns": [{"name": "a", "dtype": "int32"}, {"name": "a"}]}},
     "dataset.parquet.columns[1].name: 'a' is used by two columns"),
    ({"format": "parquet", "parquet": {"columns": [{"name": "a", "dtype": "complex"}]}},
     "dataset.parquet.columns[0].dtype: 'complex' is not a known parquet column type"),
    ({"format": "parquet", "parquet": {"partition_by": "day"}},
     "dataset.parquet.partition_by: 'day': Hive partitioning is not supported"),
    ({"format": "parquet", "compression": "zstd", "compression_level": 40},
     "dataset.compression_level: 40 is not valid for zstd; give 1 to 22"),
    ({"record_element_bytes": 4}, "dataset.record_element_bytes: 4 does not match record_element_type uint8 (1 bytes)"),
    ({"file_prefix": "a/b"}, "dataset.file_prefix: 'a/b' is not valid; a file name prefix has no '/'"),
])
def test_bad_specs_name_key_problem_and_valid_values(mapping, expected):
    with pytest.raises(DatasetSpecError) as info:
        DatasetSpec.from_mapping(mapping)
    assert expected in str(info.value)


def test_every_problem_is_reported_at_once_under_the_callers_name():
    with pytest.raises(DatasetSpecError) as info:
        DatasetSpec.from_mapping({"format": "npzz", "num_files_train": -2, "bogus": 1}, where="workload.dataset")
    lines = str(info.value).splitlines()
    assert len(lines) == 3 and all(line.startswith("workload.dataset.") for line in lines)


#: the dataset keys older DLIO workload files give (as DLIO's cosmoflow_a100, resnet50_v100,
#: llama_8b_zero3 and dlrm files spell them; written here: the interop tier loads DLIO's own)
OLDER_NAMES = {
    "cosmoflow": {"format": "tfrecord", "num_files_train": 524288, "record_length": 2828486,
                  "record_length_stdev": 71311},
    "resnet50": {"format": "tfrecord", "num_files_train": 1024, "record_length": 114660.07,
                 "record_length_std": 136075.82, "record_length_resize": 150528},
    "llama": {"format": "mmap_indexed_binary", "num_samples_per_file": 1048576, "record_length": 2048},
    "dlrm": {"format": "indexed_binary", "num_samples_per_file": 4195198976, "record_length": 327680,
             "eval_num_samples_per_file": 91681240},
}


def _dlio_dataset(name: str) -> DatasetSpec:
    return DatasetSpec.from_mapping(OLDER_NAMES[name])


def test_older_dlio_record_names_are_read_as_the_current_ones():
    # DLIO's LoadConfig read record_length, record_length_stdev, record_length_resize before the
    # _bytes names; its resnet50_v100.yaml gives record_length_std, which no DLIO read
    cosmoflow = _dlio_dataset("cosmoflow")
    assert (cosmoflow.record_length_bytes, cosmoflow.record_length_bytes_stdev) == (2828486, 71311)
    resnet = _dlio_dataset("resnet50")
    assert (resnet.record_length_bytes, resnet.record_length_bytes_stdev, resnet.record_length_bytes_resize) == (
        114660, 136076, 150528)
    assert "record_length_resize" in resnet.not_emulated  # named as the file names it
    assert any("record_length_std is read as record_length_bytes_stdev" in n and "no DLIO read" in n
               for n in resnet.notes)
    assert any("record_length is older DLIO's name of record_length_bytes" in n for n in resnet.notes)
    assert _dlio_dataset("llama").record_length_bytes == 2048
    same = DatasetSpec.from_mapping({"record_length": 4096, "record_length_bytes": 4096})
    assert same == DatasetSpec.from_mapping({"record_length_bytes": 4096})
    with pytest.raises(DatasetSpecError, match=r"dataset\.record_length: 4096 and record_length_bytes 8192 are both "
                                               r"given .*; give one"):
        DatasetSpec.from_mapping({"record_length": 4096, "record_length_bytes": 8192})


def test_keys_no_dlio_reads_or_the_fork_reads_for_what_is_not_emulated_are_reported_by_name():
    dlrm = _dlio_dataset("dlrm")
    assert dlrm.num_samples_per_file == 4195198976 and "eval_num_samples_per_file" in dlrm.not_emulated
    spec = DatasetSpec.from_mapping({"format": "parquet", "skip_listing": True, "listing_validation_interval": 500,
                                     "parquet": {"use_s3dlio_gen": True},
                                     "arrow": {"columns": [{"name": "x"}], "generation_batch_size": 64}})
    for key in ("skip_listing", "listing_validation_interval", "parquet.use_s3dlio_gen", "arrow"):
        assert key in spec.not_emulated, key
    assert spec == DatasetSpec.from_mapping({"format": "parquet"})  # none of them changes the files
    with pytest.raises(DatasetSpecError) as bad:
        DatasetSpec.from_mapping({"format": "arrow", "skip_listing": "yes", "arrow": {"colums": []},
                                  "eval_num_samples_per_file": 0})
    lines = str(bad.value).splitlines()
    assert any(line.startswith("dataset.format: 'arrow' (the MLCommons fork's Arrow IPC files) is not supported")
               for line in lines)
    assert "dataset.skip_listing: 'yes' is not valid; give true or false" in lines
    assert any(line.startswith("dataset.arrow.colums: unknown key; did you mean dataset.arrow.columns?")
               for line in lines)
    assert any(line.startswith("dataset.eval_num_samples_per_file: 0 is not valid") for line in lines)


def test_num_files_generated_names_the_files_of_the_larger_set_the_first_of_which_are_read():
    # the MLCommons fork: read the first num_files_train of a dataset generated with more files
    spec = DatasetSpec.from_mapping({"format": "npz", "num_files_train": 3, "num_files_generated": 12})
    assert spec.file_keys("train") == ["train/img_00_of_12.npz", "train/img_01_of_12.npz", "train/img_02_of_12.npz"]
    assert spec.unread_keys()[0] == "train/img_03_of_12.npz" and len(spec.unread_keys()) == 9
    assert spec.digest() != DatasetSpec.from_mapping({"format": "npz", "num_files_train": 3}).digest()
    assert DatasetSpec.from_mapping({"format": "npz", "num_files_generated": 0}).digest() == DatasetSpec.from_mapping(
        {"format": "npz"}).digest()  # 0: as before
    with pytest.raises(DatasetSpecError, match=r"dataset\.num_files_generated: 2 is fewer than num_files_train 3"):
        DatasetSpec.from_mapping({"num_files_train": 3, "num_files_generated": 2})
