"""The process's one glibc malloc policy, for every layer: S3 streaming writers, the data
loader, generation. Applied once per process, by the first storage opened (and by the loader),
before the threads that allocate exist where possible.

    M_ARENA_MAX 1          one heap for every thread
    M_MMAP_THRESHOLD 32 MiB  buffers up to 32 MiB come from that heap (a fixed threshold)
    M_TRIM_THRESHOLD 256 MiB the heap keeps up to 256 MiB of freed memory instead of unmapping it

Why: glibc gives each thread its own heap (arena), and a freed buffer is reused only by the
threads of its heap; with the default dynamic mmap threshold, every uploading or reading thread
keeps its own freed 8 MiB part or 4 MiB sample buffers, and the RSS grows by several times the
parts in flight. One heap removes that retention: a buffer freed by one thread is reused by
any. The fixed threshold keeps samples (and the minio SDK's part copies) in that heap, and the
trim threshold (which a fixed mmap threshold would otherwise set to 128 KiB) keeps freed memory
for reuse instead of faulting fresh pages in, which is far slower than touching memory already
mapped. Python threads take turns on the GIL, so one heap costs no contention worth measuring.
S3 part buffers are memory maps reused explicitly (s3common.PART_BUFFERS), so they do not
depend on this policy (nor fragment the heap); the minio SDK's own copies of each part and the
loader's samples do. The figures, with their date and command: docs/architecture.md
("Memory").

Where the C library is not glibc nothing is changed (``tune`` returns False).
"""

from __future__ import annotations

import ctypes
import os
import threading

#: mallopt's parameter numbers (glibc malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

#: (parameter, value), applied in this order
POLICY = ((M_ARENA_MAX, 1), (M_MMAP_THRESHOLD, 32 << 20), (M_TRIM_THRESHOLD, 256 << 20))

_lock = threading.Lock()
_state = {"decided": False, "applied": False}


def _glibc() -> bool:
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError, AttributeError):
        return False


def tune() -> bool:
    """Apply POLICY once per process; True when it is in force (glibc took every setting)."""
    with _lock:
        if not _state["decided"]:
            _state["decided"] = True
            if _glibc():
                try:
                    mallopt = ctypes.CDLL(None).mallopt
                    _state["applied"] = all(mallopt(p, v) == 1 for p, v in POLICY)
                except (OSError, AttributeError):
                    _state["applied"] = False
        return _state["applied"]


def keep_glibc_defaults() -> None:
    """Never apply POLICY in this process (benchmarks comparing with glibc's defaults); call
    it before the first storage is opened."""
    with _lock:
        _state["decided"] = True
        _state["applied"] = False


def applied() -> bool:
    """Whether POLICY is in force in this process."""
    return _state["applied"]
