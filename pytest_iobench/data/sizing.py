"""Dataset specs of a given total size, shaped like the workloads that use each format
(used by the generation suite and the benchmarks, so both measure the same shapes)."""

from __future__ import annotations

from typing import Any

from .spec import DatasetSpec

KiB, MiB = 1 << 10, 1 << 20

#: per format: bytes of one sample, and whether a file holds one sample only
SHAPES: dict[str, tuple[int, bool]] = {
    "npz": (1 * MiB, False),            # unet3d-like arrays
    "npy": (1 * MiB, False),
    "hdf5": (1 * MiB, False),
    "parquet": (64 * KiB, False),       # rows of a few KiB to 64 KiB
    "tfrecord": (112 * KiB, False),     # resnet50's ~112 KiB images
    "indexed_binary": (64 * KiB, False),
    "mmap_indexed_binary": (64 * KiB, False),
    "csv": (16 * KiB, False),           # text is ~3.6x the binary size
    "jpeg": (256 * KiB, True),          # 512 x 512 pixels
    "png": (256 * KiB, True),
}


def sized_spec(fmt: str, total_bytes: int, files: int = 8, **extra: Any) -> DatasetSpec:
    """A spec of ``fmt`` whose train files hold about ``total_bytes`` of samples in ``files``
    files (images: one per file, so the file count follows from the size)."""
    record, single = SHAPES[fmt]
    record = max(1, min(record, total_bytes // max(1, files)))
    if single:
        files, samples = max(1, total_bytes // record), 1
    else:
        samples = max(1, total_bytes // (files * record))
    mapping = {"format": fmt, "num_files_train": files, "num_samples_per_file": samples,
               "record_length_bytes": record, "data_folder": f"generate/{fmt}"}
    mapping.update(extra)
    return DatasetSpec.from_mapping(mapping)
