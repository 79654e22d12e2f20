"""Several S3 endpoints in front of one store (scale-out object stores with one gateway per
node): one client per endpoint, each request sent to the endpoint its object's name picks.

The choice is a hash of ``bucket/object name`` (CRC-32) modulo the endpoint count, not a turn
counter: the same object always goes to the same endpoint, whichever storage root or process
names it, so a read goes where its write went. Stores whose gateways share one namespace do not
need that, but it costs nothing and keeps a store that does need it correct; with many objects
the spread is even (the balance is recorded in tally.TALLY). A listing goes to the endpoint its
prefix picks: every gateway of such a store lists the same namespace.

``tally.TALLY`` counts the operations and the bytes (read and written) each endpoint served in
this process (s3dlio, which spreads over several endpoints itself, feeds it from its own
per-endpoint counters: s3dlio_backend.S3dlioSpreadStorage); the plugin puts each test's share
into its record (details.endpoints), and MPI ranks return theirs with their results.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Sequence

from .base import Buffer, ObjectInfo, Storage, StreamWriter
from .s3common import S3Location
from .tally import TALLY
from .wrapping import WrappedWriter


def pick(name: str, count: int) -> int:
    """The endpoint (0..count-1) of an object name: a stable hash, the same in every process."""
    return zlib.crc32(name.encode()) % count


class TalliedWriter(WrappedWriter):
    """Counts the bytes a streaming writer writes as ``url``'s."""

    def __init__(self, storage: Storage, inner: StreamWriter, url: str):
        super().__init__(storage, inner)
        self.url = url

    def _write(self, view: memoryview) -> None:
        self.inner.write(view)
        TALLY.add(self.url, ops=0, written=view.nbytes)


class SpreadStorage(Storage):
    """One S3 storage over several endpoints of the same store: ``storages[i]`` is the same
    library's client for ``urls[i]``; each operation goes to ``pick(bucket/object name)``."""

    def __init__(self, location: S3Location, urls: Sequence[str], open_one: Callable[[str], Storage]):
        super().__init__(location.uri())
        self.location = location
        self.urls = list(urls)
        self.storages = [open_one(url) for url in self.urls]
        first = self.storages[0]
        self.kind, self.library = first.kind, first.library
        self.write_is_direct, self.write_always_syncs = first.write_is_direct, first.write_always_syncs

    def _route(self, key: str) -> tuple[Storage, str]:
        i = pick(f"{self.location.bucket}/{self.location.object_name(key)}", len(self.storages))
        return self.storages[i], self.urls[i]

    def uri(self, key: str) -> str:
        return self.location.uri(key)

    def put(self, key: str, data: Buffer) -> None:
        storage, url = self._route(key)
        storage.put(key, data)
        TALLY.add(url, written=memoryview(data).nbytes)

    def open_writer(self, key: str, *, fsync: bool = False) -> StreamWriter:
        storage, url = self._route(key)
        TALLY.add(url)
        return TalliedWriter(self, storage.open_writer(key, fsync=fsync), url)

    def get(self, key: str) -> Buffer:
        storage, url = self._route(key)
        data = storage.get(key)
        TALLY.add(url, read=memoryview(data).nbytes)
        return data

    def get_range(self, key: str, offset: int, length: int) -> Buffer:
        storage, url = self._route(key)
        data = storage.get_range(key, offset, length)
        TALLY.add(url, read=memoryview(data).nbytes)
        return data

    def list(self, prefix: str = "") -> list[str]:
        storage, url = self._route(prefix)
        TALLY.add(url)
        return storage.list(prefix)

    def stat(self, key: str) -> ObjectInfo:
        storage, url = self._route(key)
        TALLY.add(url)
        return storage.stat(key)

    def delete(self, key: str) -> None:
        storage, url = self._route(key)
        TALLY.add(url)
        storage.delete(key)

    def evict_cache(self, keys: Iterable[str]) -> bool:
        return all(storage.evict_cache(keys) for storage in self.storages)

    def close(self) -> None:
        for storage in self.storages:
            storage.close()
