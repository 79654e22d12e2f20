"""Reads that come from the storage, not from memory: dropping the page cache of the files about
to be read, verifying the drop page by page, and O_DIRECT where it did not work.

``drop_cache(storage, keys)`` says what stands between files just written and their reads (a
``CacheState``): the drop verified (``evicted``: ``resident_pages`` counts the pages still in
memory, through mincore), O_DIRECT (the direct storage, or the fallback on local files, with
an O_DIRECT storage to read through), ``memory`` (a root on tmpfs or ramfs: its files are
memory, nothing to drop), ``none`` (neither worked: reads may come from memory) or
``no-client-cache`` (S3: the client keeps none; the server's is not ours to drop). Used before
the checkpoint reads and the throughput suite's gets.
"""

from __future__ import annotations

import os
from typing import Any

from ..storage import Storage, StorageError, StorageUnsupported
from ..storage.posix import memory_file_system, resident_pages
from ..storage.registry import storage_at

#: cache states from the weakest (reads certainly or possibly from memory) to the strongest
CACHE_STATES = ("memory", "none", "odirect", "evicted", "no-client-cache")


class CacheState:
    """What stands between the files just written and their reads: ``state`` is one of
    CACHE_STATES; ``reader`` an O_DIRECT storage to read through instead (or None)."""

    def __init__(self, state: str, note: str = "", *, filesystem: str | None = None,
                 resident: int | None = None, pages: int | None = None, reader: Storage | None = None):
        self.state, self.note, self.filesystem = state, note, filesystem
        self.resident, self.pages, self.reader = resident, pages, reader

    def detail(self) -> dict[str, Any]:
        return {"state": self.state, "note": self.note, "filesystem": self.filesystem,
                "resident_pages": self.resident, "pages": self.pages}


def _file_path(storage: Storage, key: str) -> str:
    return os.path.join(storage.root, *key.split("/"))


def count_resident(storage: Storage, keys: list[str]) -> tuple[int, int]:
    """(pages in the page cache, pages) over the files of ``keys`` on a file storage."""
    resident = total = 0
    for key in keys:
        r, t = resident_pages(_file_path(storage, key))
        resident, total = resident + r, total + t
    return resident, total


#: drops tried before a drop that leaves pages in memory is taken as not working: a page that is
#: locked or under writeback (by another process) when the drop passes it stays; a second pass
#: costs nothing when the first worked
DROP_ATTEMPTS = 3


def drop_cache(storage: Storage, keys: list[str]) -> CacheState:
    """Make the reads of ``keys`` come from the storage, not from memory, and say how far that
    worked: the drop is verified on files, and O_DIRECT is the fallback on local files."""
    if storage.kind == "s3":
        return CacheState("no-client-cache", "the S3 client keeps no cache of its own; the server's cache "
                                             "(if it has one) is not ours to drop")
    filesystem = memory_file_system(storage.root)
    if filesystem is not None:
        return CacheState("memory", f"the storage root {storage.root} is on {filesystem}: its files are memory, "
                                    "there is no page cache to drop and no device behind it", filesystem=filesystem)
    if storage.kind == "direct":
        return CacheState("odirect", "reads open the files with O_DIRECT: the page cache is not used")
    resident: int | None
    pages: int | None
    for _ in range(DROP_ATTEMPTS):
        dropped = storage.evict_cache(keys)
        try:
            resident, pages = count_resident(storage, keys)
        except OSError as exc:
            resident = pages = None
            why = f"the drop could not be verified ({exc})"
            break
        why = (f"the page cache could not be dropped ({resident} of {pages} pages still in memory)" if not dropped
               else f"the drop was reported done but {resident} of {pages} pages stayed in memory "
                    f"(tried {DROP_ATTEMPTS} times)")
        if not dropped or resident == 0:
            break
    if dropped and resident == 0:
        return CacheState("evicted", f"dropped and verified: none of the {pages} pages of the files is in memory",
                          resident=resident, pages=pages)
    if not dropped and resident is None:
        why = "the page cache could not be dropped"
    reader = None
    if storage.kind == "local" and storage.spec is not None:
        try:
            reader = storage_at(storage.spec, odirect=True)
        except (StorageUnsupported, StorageError, OSError) as exc:
            why += f"; O_DIRECT is not possible either: {exc}"
        else:
            return CacheState("odirect", why + "; the files are read through O_DIRECT instead",
                              resident=resident, pages=pages, reader=reader)
    return CacheState("none", why, resident=resident, pages=pages)
