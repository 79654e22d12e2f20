"""The data options, declared once for command line, ini and environment (see settings.py)."""

from __future__ import annotations

import re

from ..settings import Option, boolean, comma_list, declare, one_of, positive_int
from ..storage import options as _storage_options  # the storage options come first in --help
from .names import FORMATS, MODES, ON_CORRUPT

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}


def byte_size(text: str) -> int:
    """Parse ``64MiB``, ``1.5GB``, ``4096``: MB = 10^6 bytes, MiB = 2^20 bytes."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", text)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _UNITS:
        raise ValueError("give a size such as 64MiB, 1.5GB or 4096 (MB = 10^6 bytes, MiB = 2^20 bytes)")
    value = int(float(match.group(1)) * _UNITS[unit])
    if value < 1:
        raise ValueError("give a size of at least 1 byte")
    return value


def byte_size_or_auto(text: str) -> int | None:
    """``auto`` (None: the suite picks the size for the storage, workload/case_size.py) or a size."""
    if text.strip().lower() == "auto":
        return None
    try:
        return byte_size(text)
    except ValueError as exc:
        raise ValueError(f"give auto or {str(exc).removeprefix('give ')}") from None


def _one_thread_count(text: str) -> int:
    value = positive_int(text)
    _storage_options.thread_counts(str(value))  # the same maximum as --iobench-threads
    return value


declare(
    Option("formats", "dataset formats the generation suite runs (comma list)",
           default=",".join(f for f in FORMATS if f != "mmap_indexed_binary"), parse=comma_list(FORMATS),
           metavar="FORMATS"),
    Option("generate-size", "bytes each case of the generation suite generates (e.g. 64MiB, 2GB); auto: "
           "enough for the rate to settle on the case's storage (1 GiB on local and direct, 256 MiB on s3), "
           "32 MiB with --iobench-quick", default="auto", parse=byte_size_or_auto, metavar="SIZE"),
    Option("quick", "small cases for a CI job: the generation and throughput suites move 32 MiB and 64 MiB "
           "per case whatever the storage (their rates are then flagged too short to gate on)",
           default="false", parse=boolean, metavar="BOOL"),
    Option("generate-threads", "writer threads used when a test's dataset is generated "
           f"(at most {_storage_options.MAX_THREADS})", default="2", parse=_one_thread_count, metavar="N"),
    Option("regenerate", "regenerate datasets even when a complete one with the same spec is kept "
           "(and replace one of another spec)", default="false", parse=boolean, metavar="BOOL"),
    Option("adopt", "read DLIO's datasets where DLIO writes them (<root>/<data_folder>/) as they are, "
           "when their files are the spec's; nothing is generated", default="false", parse=boolean,
           metavar="BOOL"),
    Option("verify", "how much of a kept dataset is read back and checked against the CRC-32C its manifest "
           "recorded before it is reused: sample (every file of a dataset up to 256 MiB, else the first, the "
           "last and others drawn each run, about 128 MiB), full, none (sizes only)", default="sample",
           parse=one_of(MODES), metavar="MODE"),
    Option("on-corrupt", "what a kept dataset whose file no longer has its recorded checksum does: fail "
           "(the test fails naming the file) or regenerate", default="fail", parse=one_of(ON_CORRUPT),
           metavar="ACTION"),
)
