"""Dataset generation: every format written through every storage and library, with 1 and N
writer threads, and read back through the format's reader.

    pytest suites/test_generate.py --iobench-storage=local,s3 --iobench-threads=1,4
    pytest suites/test_generate.py --iobench-formats=parquet,npz --iobench-generate-size=1GiB

Each case generates about --iobench-generate-size (default 32 MiB; csv, jpeg and png an eighth
of it: text and image encoding run at tens of MB/s) into the session's scratch space, shaped
like the workloads that use the format (pytest_iobench/data/sizing.py), and records MB/s
(bytes written / seconds), files/s and the peak RSS of the process while generating; image
formats also record the time spent encoding. The test fails when a file is missing, has another
size than generation reported, or cannot be read back.
"""

from __future__ import annotations

import uuid

import pytest

from pytest_iobench.data.formats import get_format
from pytest_iobench.data.generate import generate
from pytest_iobench.data.memory import PeakRSS
from pytest_iobench.data.sizing import sized_spec
from pytest_iobench.plugin.options import get_settings

#: these formats generate an eighth of --iobench-generate-size
SLOW_FORMATS = ("csv", "jpeg", "png")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "fmt" in metafunc.fixturenames:
        formats = get_settings(metafunc.config).formats
        metafunc.parametrize("fmt", formats, ids=formats)


@pytest.fixture
def space(storage, storage_factory):
    """A fresh folder in the session's scratch space, emptied after the test."""
    prefix = f"generate-{uuid.uuid4().hex[:10]}"
    yield storage_factory.at(storage, prefix)
    storage.delete_prefix(prefix + "/")


def test_generate(fmt, storage, threads, space, iobench_config, iobench_record, generation_progress):
    size = iobench_config.generate_size // (8 if fmt in SLOW_FORMATS else 1)
    spec = sized_spec(fmt, size)
    iobench_record.kind = "generate"
    iobench_record.params.update(format=fmt, bytes_asked=size, files=spec.num_files_train,
                                 samples_per_file=spec.num_samples_per_file)
    where = space.uri("")
    report = (lambda p: generation_progress(where, p)) if generation_progress else None

    with PeakRSS() as rss:
        result = generate(spec, space, threads=threads, progress=report)

    assert not result.reused
    keys = spec.file_keys("train")
    listed = set(space.list("train/"))
    assert set(result.sizes) <= listed, f"files missing after generation: {sorted(set(result.sizes) - listed)[:3]}"
    for key in keys:
        assert space.stat(key).size == result.sizes[key], f"{key}: size differs from what generation wrote"
    with get_format(fmt).open(space, keys[-1], spec) as sample_file:
        assert sample_file.num_samples == spec.num_samples_per_file
        assert sample_file.read_sample(sample_file.num_samples - 1) is not None

    iobench_record.metric("write_throughput", result.mb_per_s, "MB/s")
    iobench_record.metric("files_per_second", result.files_per_s, "files/s")
    iobench_record.metric("bytes_written", result.bytes, "B", "none")
    iobench_record.metric("peak_rss", rss.peak / 2**20, "MiB", "lower")
    iobench_record.metric("rss_growth", rss.growth / 2**20, "MiB", "lower")
    if fmt in ("jpeg", "png"):
        iobench_record.metric("encode_seconds", result.encode_seconds, "s", "lower")
    iobench_record.details["seconds"] = result.seconds
    iobench_record.details["spec"] = spec.to_dict()
