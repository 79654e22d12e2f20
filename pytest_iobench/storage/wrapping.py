"""A storage that passes every operation to another one: the base of wrappers that add one
behaviour (counting bytes, injecting faults, throttling) and leave the rest untouched.

A subclass overrides only the operations it changes; everything else reaches the inner
storage as is. get_many and delete_prefix keep the shared defaults built on the wrapper's own
get and delete, so a wrapper that changes get also changes get_many; one that only observes
(CountingStorage) passes get_many through to keep the inner library's concurrent fetch.
close() does not reach the inner storage: whoever opened it closes it.
"""

from __future__ import annotations

from collections.abc import Iterable

from .base import Buffer, ObjectInfo, Storage, StreamWriter


class WrappedStorage(Storage):
    def __init__(self, inner: Storage):
        super().__init__(inner.root)
        self.inner = inner
        self.kind, self.library, self.spec = inner.kind, inner.library, inner.spec
        self.write_is_direct = inner.write_is_direct
        self.write_always_syncs = inner.write_always_syncs

    def uri(self, key: str) -> str:
        return self.inner.uri(key)

    def put(self, key: str, data: Buffer) -> None:
        self.inner.put(key, data)

    def open_writer(self, key: str, *, fsync: bool = False) -> StreamWriter:
        return self.inner.open_writer(key, fsync=fsync)

    def put_if_absent(self, key: str, data: Buffer) -> bool:
        return self.inner.put_if_absent(key, data)

    def get(self, key: str) -> Buffer:
        return self.inner.get(key)

    def get_range(self, key: str, offset: int, length: int) -> Buffer:
        return self.inner.get_range(key, offset, length)

    def list(self, prefix: str = "") -> list[str]:
        return self.inner.list(prefix)

    def stat(self, key: str) -> ObjectInfo:
        return self.inner.stat(key)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def make_folder(self, prefix: str) -> None:
        self.inner.make_folder(prefix)

    def evict_cache(self, keys: Iterable[str]) -> bool:
        return self.inner.evict_cache(keys)


class WrappedWriter(StreamWriter):
    """A streaming writer that passes to another one; ``storage`` is the wrapper."""

    def __init__(self, storage: Storage, inner: StreamWriter):
        super().__init__(storage, inner.key)
        self.inner = inner

    def _write(self, view: memoryview) -> None:
        self.inner.write(view)

    def _commit(self) -> None:
        self.inner.commit()

    def _abort(self) -> None:
        self.inner.abort()
