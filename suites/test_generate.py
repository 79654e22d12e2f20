"""Dataset generation: every format written through every storage and library, with 1 and N
writer threads, and read back through the format's reader.

    pytest suites/test_generate.py --iobench-storage=local,s3 --iobench-threads=1,4
    pytest suites/test_generate.py --iobench-formats=parquet,npz --iobench-generate-size=1GiB

Each case generates about --iobench-generate-size (default 32 MiB; csv, jpeg and png an eighth
of it: text and image encoding run at tens of MB/s), shaped like the workloads that use the
format (pytest_iobench/data/sizing.py), into a fresh folder of the session's scratch space,
deleted after. With --iobench-warmup and --iobench-repeat it generates afresh each time (every
run in a new folder) and records the median of the repeats with every value: MB/s (bytes
written / seconds), files/s and the peak RSS of the process while generating; image formats
also record the time spent encoding. The test fails when a file of any run is missing, has
another size than generation reported, or cannot be read back. When the storage's writes are
not what its name says (``storage.write_caveat``: direct-s3dlio writes through the page cache),
the record carries that warning.
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
IMAGE_FORMATS = ("jpeg", "png")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "fmt" in metafunc.fixturenames:
        formats = get_settings(metafunc.config).formats
        metafunc.parametrize("fmt", formats, ids=formats)


def check_files(spec, space, result) -> None:
    """Every file is there at the size generation reported, and the last one reads back."""
    assert not result.reused
    keys = spec.file_keys("train")
    listed = set(space.list(""))  # data files and their companions (indexes), wherever they go
    assert set(result.sizes) <= listed, f"files missing after generation: {sorted(set(result.sizes) - listed)[:3]}"
    for key in keys:
        assert space.stat(key).size == result.sizes[key], f"{key}: size differs from what generation wrote"
    with get_format(spec.format).open(space, keys[-1], spec) as sample_file:
        assert sample_file.num_samples == spec.num_samples_per_file
        assert sample_file.read_sample(sample_file.num_samples - 1) is not None


def test_generate(fmt, storage, threads, storage_factory, iobench_config, iobench_record, generation_progress):
    size = iobench_config.generate_size // (8 if fmt in SLOW_FORMATS else 1)
    spec = sized_spec(fmt, size)
    iobench_record.kind = "generate"
    # e.g. direct-s3dlio's streaming writer is not O_DIRECT, s3dlio's file writers fsync anyway
    for note in storage.write_notes(fsync=False, setting="fsync"):
        iobench_record.warn(note)
    iobench_record.params.update(format=fmt, bytes_asked=size, files=spec.num_files_train,
                                 samples_per_file=spec.num_samples_per_file)
    runs: list[dict] = []

    def run() -> dict[str, float]:
        # a fresh folder per run: a kept dataset would be reused, not generated
        prefix = f"generate-{uuid.uuid4().hex[:10]}"
        space = storage_factory.at(storage, prefix)
        where = space.uri("")
        report = (lambda p: generation_progress(where, p)) if generation_progress else None
        try:
            with PeakRSS() as rss:
                result = generate(spec, space, threads=threads, progress=report)
            check_files(spec, space, result)
        finally:
            storage.delete_prefix(prefix + "/")
        runs.append({"folder": where, "seconds": result.seconds, "bytes": result.bytes, "peak_rss_method": rss.method})
        values = {"write_throughput": result.mb_per_s, "files_per_second": result.files_per_s,
                  "bytes_written": result.bytes, "peak_rss": rss.peak / 2**20, "rss_growth": rss.growth / 2**20}
        if fmt in IMAGE_FORMATS:
            values["encode_seconds"] = result.encode_seconds
        return values

    units = {"write_throughput": ("MB/s", "higher"), "files_per_second": ("files/s", "higher"),
             "bytes_written": ("B", "none"), "peak_rss": ("MiB", "lower"), "rss_growth": ("MiB", "lower")}
    if fmt in IMAGE_FORMATS:
        units["encode_seconds"] = ("s", "lower")
    iobench_record.measure(run, units)
    iobench_record.details["runs"] = runs  # warm-ups first
    iobench_record.details["spec"] = spec.to_dict()
