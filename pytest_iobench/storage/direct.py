"""Files through O_DIRECT (the ``direct`` storage with the ``posix`` library).

O_DIRECT bypasses the page cache: the buffer address, the file offset and the length of every
transfer must be multiples of the device's logical block size. Buffers come from anonymous
mmap (page-aligned); lengths are rounded up to ``ALIGN`` and the result is cut back to size.
A file's last partial block is written after switching O_DIRECT off on the descriptor.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
from collections.abc import Iterable

from .base import Buffer, StreamWriter, check_key
from .errors import StorageError, StorageUnsupported
from .posix import PosixStorage, fsync_dir, memory_file_system, temp_path

ALIGN = 4096
WRITE_BUFFER = 8 << 20


def align_down(n: int) -> int:
    return n - n % ALIGN


def align_up(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def probe_odirect(directory: str) -> None:
    """Raise StorageUnsupported when O_DIRECT under ``directory`` would not measure a device:
    the file system refuses it, or keeps its files in memory (tmpfs accepts O_DIRECT on
    recent kernels, and its "device" is memory)."""
    os.makedirs(directory, exist_ok=True)
    memory_fs = memory_file_system(directory)
    if memory_fs is not None:
        raise StorageUnsupported(
            f"{directory} is on {memory_fs}: O_DIRECT on a memory file system measures memory, not a "
            "device; choose another --iobench-root for the direct storage"
        )
    probe = temp_path(os.path.join(directory, "odirect-probe"))
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            raise StorageUnsupported(
                f"the file system under {directory} refuses O_DIRECT (some network and FUSE "
                "file systems do); choose another --iobench-root for the direct storage"
            ) from exc
        raise
    try:
        buf = mmap.mmap(-1, ALIGN)
        os.write(fd, buf)
    except OSError as exc:
        raise StorageUnsupported(f"O_DIRECT writes fail under {directory}: {exc.strerror}") from exc
    finally:
        os.close(fd)
        os.unlink(probe)


def direct_read(fd: int, offset: int, length: int) -> memoryview:
    """Read ``length`` bytes at ``offset`` (fewer at end of file) through O_DIRECT."""
    start = align_down(offset)
    span = align_up(offset + length) - start
    buf = mmap.mmap(-1, max(span, ALIGN))
    view = memoryview(buf)
    got = 0
    while got < span:
        n = os.preadv(fd, [view[got:span]], start + got)
        if n == 0:
            break
        got += n
    lead = offset - start
    end = min(got, lead + length)
    return view[lead:end] if end > lead else view[0:0]


class DirectWriter(StreamWriter):
    def __init__(self, storage: DirectStorage, key: str, fsync: bool):
        super().__init__(storage, key)
        self.path = storage.path(key)
        self.fsync = fsync
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.tmp = temp_path(self.path)
        self.fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o644)
        self.buf: mmap.mmap | None = mmap.mmap(-1, WRITE_BUFFER)
        self.view: memoryview | None = memoryview(self.buf)
        self.fill = 0

    def _buffer(self) -> memoryview:
        """The aligned write buffer; gone once the file is closed."""
        if self.view is None:
            raise ValueError(f"{self.path}: the writer is closed")
        return self.view

    def _write(self, view: memoryview) -> None:
        while view.nbytes:
            n = min(view.nbytes, WRITE_BUFFER - self.fill)
            self._buffer()[self.fill:self.fill + n] = view[:n]
            self.fill += n
            view = view[n:]
            if self.fill == WRITE_BUFFER:
                self._flush(WRITE_BUFFER)

    def _flush(self, n: int) -> None:
        done = 0
        while done < n:
            done += os.write(self.fd, self._buffer()[done:n])
        self.fill = 0

    def _commit(self) -> None:
        try:
            whole = align_down(self.fill)
            tail = self.fill - whole
            if whole:
                self._flush(whole)
            if tail:
                # The last partial block cannot go through O_DIRECT: switch it off for it.
                flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
                fcntl.fcntl(self.fd, fcntl.F_SETFL, flags & ~os.O_DIRECT)
                rest = self._buffer()[whole:whole + tail]
                while rest.nbytes:
                    rest = rest[os.write(self.fd, rest):]
            if self.fsync or tail:
                os.fsync(self.fd)
        finally:
            self._release()
        os.replace(self.tmp, self.path)
        if self.fsync:
            fsync_dir(os.path.dirname(self.path))

    def _release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        # Dropped, not closed: slices of the view may still be alive in a caller's frame.
        self.view = self.buf = None

    def _abort(self) -> None:
        self._release()
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass


class DirectStorage(PosixStorage):
    kind = "direct"
    library = "posix"
    write_is_direct = True

    def __init__(self, root: str):
        super().__init__(root)
        probe_odirect(self.root)

    def open_writer(self, key: str, *, fsync: bool = False) -> StreamWriter:
        check_key(key, self.library, "open_writer")
        try:
            return DirectWriter(self, key, fsync)
        except OSError as exc:
            raise self._fail("open_writer", key, exc) from exc

    def _read(self, op: str, key: str, offset: int, length: int | None) -> Buffer:
        check_key(key, self.library, op)
        try:
            fd = os.open(self.path(key), os.O_RDONLY | os.O_DIRECT)
        except OSError as exc:
            raise self._fail(op, key, exc) from exc
        try:
            if length is None:
                length = os.fstat(fd).st_size
            return direct_read(fd, offset, length) if length else b""
        except OSError as exc:
            raise self._fail(op, key, exc) from exc
        finally:
            os.close(fd)

    def get(self, key: str) -> Buffer:
        return self._read("get", key, 0, None)

    def get_range(self, key: str, offset: int, length: int) -> Buffer:
        if offset < 0 or length < 0:
            raise StorageError("get_range", key, self.library, f"offset {offset} and length {length} must be >= 0")
        return self._read("get_range", key, offset, length)

    def evict_cache(self, keys: Iterable[str]) -> bool:
        return True  # O_DIRECT reads do not go through the page cache
