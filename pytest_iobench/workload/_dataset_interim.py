"""Stand-in for ``pytest_iobench.data.spec.DatasetSpec`` until the data layer lands.

Used only when that module cannot be imported. It knows DLIO's dataset keys and defaults and
DLIO's file naming, nothing more; the data layer's spec replaces it entirely.
"""

from __future__ import annotations

import difflib
from typing import Any

_DEFAULTS: dict[str, Any] = {
    "data_folder": "./data/", "format": "npz", "num_files_train": 8, "num_files_eval": 0,
    "num_samples_per_file": 1, "record_length_bytes": 65536, "record_length_bytes_stdev": 0,
    "record_length_bytes_resize": 0, "record_dims": [], "record_element_type": "uint8",
    "num_subfolders_train": 0, "num_subfolders_eval": 0, "file_prefix": "img", "compression": "none",
    "compression_level": 4, "enable_chunking": False, "chunk_size": 0, "keep_files": True,
    "hdf5": {}, "generation_buffer_size": 2 << 30, "record_element_bytes": 4,
}
_INTS = ("num_files_train", "num_files_eval", "num_samples_per_file", "num_subfolders_train",
         "num_subfolders_eval", "compression_level", "chunk_size")


class DatasetSpec:
    notes: list[str] = []
    not_emulated: dict[str, str] = {}

    def __init__(self, values: dict[str, Any]):
        self.__dict__.update(values)

    @classmethod
    def known_keys(cls) -> list[str]:
        return list(_DEFAULTS)

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any], where: str = "dataset") -> "DatasetSpec":
        problems = []
        values = dict(_DEFAULTS)
        for key, value in mapping.items():
            if key not in _DEFAULTS:
                near = difflib.get_close_matches(key, list(_DEFAULTS), n=1)
                problems.append(f"{where}.{key}: unknown key" + (f"; did you mean {where}.{near[0]}?" if near else ""))
                continue
            if key in _INTS and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                problems.append(f"{where}.{key}: {value!r} is not valid; give a whole number >= 0")
                continue
            values[key] = value
        if values["num_samples_per_file"] < 1:
            problems.append(f"{where}.num_samples_per_file: give a whole number >= 1")
        if problems:
            raise ValueError("\n".join(problems))
        return cls(values)

    def file_keys(self, split: str = "train") -> list[str]:
        n = self.num_files_train if split == "train" else self.num_files_eval
        sub = self.num_subfolders_train if split == "train" else self.num_subfolders_eval
        folder = "train" if split == "train" else "valid"
        keys = []
        for i in range(n):
            name = f"{self.file_prefix}_{i}_of_{n}.{self.format}"
            keys.append(f"{folder}/{i % sub}/{name}" if sub else f"{folder}/{name}")
        return keys

    def to_dict(self) -> dict[str, Any]:
        return {k: self.__dict__[k] for k in _DEFAULTS}
