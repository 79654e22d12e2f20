"""Dataset specs of a given total size, shaped like the workloads that use each format
(used by the generation suite and the benchmarks, so both measure the same shapes). Each
format declares its shape (``FormatInfo.sample_bytes`` and ``single_sample``)."""

from __future__ import annotations

from typing import Any

from .formats.registry import info
from .spec import DatasetSpec


def sized_spec(fmt: str, total_bytes: int, files: int = 8, **extra: Any) -> DatasetSpec:
    """A spec of ``fmt`` whose train files hold about ``total_bytes`` of samples in ``files``
    files (images: one per file, so the file count follows from the size)."""
    declared = info(fmt)
    record, single = declared.sample_bytes, declared.single_sample
    record = max(1, min(record, total_bytes // max(1, files)))
    if single:
        files, samples = max(1, total_bytes // record), 1
    else:
        samples = max(1, total_bytes // (files * record))
    mapping = {"format": fmt, "num_files_train": files, "num_samples_per_file": samples,
               "record_length_bytes": record, "data_folder": f"generate/{fmt}"}
    mapping.update(extra)
    return DatasetSpec.from_mapping(mapping)
