"""Dataset generation: every format written through every storage and library, with 1 and N
writer threads, and read back through the format's reader.

    pytest suites/test_generate.py --iobench-storage=local,s3 --iobench-threads=1,4
    pytest suites/test_generate.py --iobench-formats=parquet,npz --iobench-generate-size=1GiB

Each case generates about --iobench-generate-size (default ``auto``: enough for the rate to settle
on the case's storage, pytest_iobench/workload/case_size.py; 32 MiB with --iobench-quick; csv, jpeg
and png an eighth of it: text and image encoding run at tens of MB/s), shaped like the workloads
that use the format (pytest_iobench/data/sizing.py), into a fresh folder of the session's scratch
space, deleted after. With --iobench-warmup and --iobench-repeat it generates afresh each time
(every run in a new folder) and records the median of the repeats with every value: MB/s (bytes
written / seconds), files/s and the peak RSS of the process while generating; image formats also
record the time spent encoding. The test fails when a file of any run is missing, has another size
than generation reported, or cannot be read back. When the storage's writes are not what its name
says (``storage.write_caveat``: direct-s3dlio writes through the page cache), the record carries
that warning."""

from __future__ import annotations

import uuid

import pytest

from pytest_iobench.data.formats import FormatsWith, get_format
from pytest_iobench.data.generate import generate
from pytest_iobench.data.memory import PeakRSS
from pytest_iobench.data.sizing import sized_spec
from pytest_iobench.plugin.options import get_settings
from pytest_iobench.workload import steady
from pytest_iobench.workload.case_size import case_size

#: the untimed warm-up of each case generates this much of the same format first
WARMUP_BYTES = 1 << 20

#: these formats generate an eighth of --iobench-generate-size (each format declares it)
SLOW_FORMATS = FormatsWith("slow")
IMAGE_FORMATS = FormatsWith("image")


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
    chosen = case_size("generate", storage.kind, iobench_config.generate_size, iobench_config.quick)
    size = chosen.bytes // (8 if fmt in SLOW_FORMATS else 1)
    spec = sized_spec(fmt, size)
    iobench_record.kind = "generate"
    # e.g. direct-s3dlio's streaming writer is not O_DIRECT, s3dlio's file writers fsync anyway
    for note in storage.write_notes(fsync=False, setting="fsync"):
        iobench_record.warn(note)
    iobench_record.params.update(format=fmt, bytes_asked=size, files=spec.num_files_train,
                                 samples_per_file=spec.num_samples_per_file)
    runs: list[dict] = []
    steadies: list[steady.Steady] = []

    def fresh(what: str, generated, **kw):
        """Generate ``generated`` into a fresh folder (a kept dataset would be reused), deleted after."""
        prefix = f"generate-{what}-{uuid.uuid4().hex[:10]}"
        space = storage_factory.at(storage, prefix)
        try:
            result = generate(generated, space, threads=threads, **kw)
            check_files(generated, space, result)
            return result, space.uri("")
        finally:
            storage.delete_prefix(prefix + "/")

    # untimed warm-up: the format's libraries imported and initialised, the storage's client and
    # threads up, the generator's buffers touched, before any clock starts
    fresh("warm-up", sized_spec(fmt, WARMUP_BYTES))

    def run() -> dict[str, float]:
        samples: list[tuple[float, int]] = [(0.0, 0)]
        shown = [0.0]

        def sample(p) -> None:  # every 20 ms: time-sliced bytes written; the terminal every 2 s
            samples.append((p.elapsed, p.bytes_done))
            if generation_progress and p.elapsed - shown[0] >= 2.0:
                shown[0] = p.elapsed
                generation_progress(f"{storage.id} ({fmt})", p)

        with PeakRSS() as rss:
            result, where = fresh("run", spec, progress=sample, interval=steady.SAMPLE_SECONDS)
        steadies.append(steady.steady_state(samples))
        runs.append({"folder": where, "seconds": result.seconds, "bytes": result.bytes, "peak_rss_method": rss.method})
        values = {"steady_write_throughput": steadies[-1].rate / 1e6,
                  "write_throughput": result.mb_per_s, "files_per_second": result.files_per_s,
                  "bytes_written": result.bytes, "peak_rss": rss.peak / 2**20, "rss_growth": rss.growth / 2**20}
        if fmt in IMAGE_FORMATS:
            values["encode_seconds"] = result.encode_seconds
        return values

    units = {"steady_write_throughput": ("MB/s", "higher"), "write_throughput": ("MB/s", "higher"),
             "files_per_second": ("files/s", "higher"),
             "bytes_written": ("B", "none"), "peak_rss": ("MiB", "lower"), "rss_growth": ("MiB", "lower")}
    if fmt in IMAGE_FORMATS:
        units["encode_seconds"] = ("s", "lower")
    iobench_record.measure(run, units)
    counted = steady.summary(steadies[iobench_record.warmups:])
    iobench_record.metrics["steady_write_throughput"].steady = counted
    if counted["flag"]:
        for name in ("steady_write_throughput", "write_throughput", "files_per_second"):
            iobench_record.unfit(name, counted["flag"])
    iobench_record.details["runs"] = runs  # warm-ups first
    iobench_record.details["warmup_excluded"] = (
        f"before the runs, {WARMUP_BYTES >> 20} MiB of {fmt} generated untimed into its own folder: the "
        "format's libraries loaded, the storage's client and threads up, the generator's buffers touched")
    iobench_record.details["spec"] = spec.to_dict()
    iobench_record.details["size_chosen_by"] = chosen.chosen_by
