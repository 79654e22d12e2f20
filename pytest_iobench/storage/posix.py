"""Plain files through the operating system's POSIX calls (the ``posix`` library)."""

from __future__ import annotations

import ctypes
import functools
import mmap
import os
import time
from collections.abc import Iterable

import numpy as np

from .base import Buffer, ObjectInfo, Storage, StreamWriter, check_key
from .errors import StorageError, StorageNotFound, os_error
from .stale import TEMP_MARKER, host_id, note_temp_dir


def temp_path(path: str) -> str:
    """``.<name>.iobench-tmp.<host>-<pid>-<random>``: the writer's host and process in the name,
    so that a later session can tell a file a killed writer left (storage/stale.py)."""
    head, tail = os.path.split(path)
    note_temp_dir(head)
    return os.path.join(head, f".{tail}{TEMP_MARKER}{host_id()}-{os.getpid()}-{os.urandom(4).hex()}")


def link_if_absent(path: str, data: Buffer) -> bool:
    """Write ``data`` to a temporary file and hard-link it as ``path`` unless ``path`` exists:
    atomic like O_EXCL, and the file never appears half written."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = temp_path(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def pread_full(fd: int, length: int, offset: int) -> bytes:
    """pread until ``length`` bytes or end of file (one pread may return fewer)."""
    chunks = []
    while length > 0:
        chunk = os.pread(fd, min(length, 1 << 30), offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
        length -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def list_files(root: str, prefix: str) -> list[str]:
    """Keys under ``root`` that start with ``prefix`` (string prefix, as on S3), sorted."""
    # Walk only the deepest directory the prefix names; filter the rest by string prefix.
    base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
    start = os.path.join(root, base) if base else root
    keys = []
    for dirpath, dirnames, filenames in os.walk(start):
        rel = os.path.relpath(dirpath, root)
        rel = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        dirnames[:] = [d for d in dirnames if (rel + d + "/").startswith(prefix) or prefix.startswith(rel + d + "/")]
        for name in filenames:
            key = rel + name
            if TEMP_MARKER not in name and key.startswith(prefix):
                keys.append(key)
    keys.sort()
    return keys


#: statfs f_type of the file systems that keep their files in memory (linux/magic.h; devtmpfs
#: reports tmpfs's)
MEMORY_FILE_SYSTEMS = {0x01021994: "tmpfs", 0x858458F6: "ramfs"}


@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library the interpreter links, with the signatures of the calls made here."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]
    return libc


def file_system_type(path: str) -> int | None:
    """statfs's f_type of the file system holding ``path``; None where it cannot be asked."""
    libc = _libc()
    # struct statfs starts with f_type, a C long (__fsword_t) on every Linux ABI; the buffer
    # is larger than the whole struct on any of them.
    buf = ctypes.create_string_buffer(256)
    if not hasattr(libc, "statfs") or libc.statfs(os.fsencode(path), buf) != 0:
        return None
    return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF


def memory_file_system(path: str) -> str | None:
    """'tmpfs' or 'ramfs' when ``path`` (or, not made yet, the nearest directory above it that
    is) is on a file system that keeps its files in memory: no device behind it, no page cache
    to drop, O_DIRECT there measures memory. None otherwise, or where it cannot be told."""
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    kind = file_system_type(path)
    return MEMORY_FILE_SYSTEMS.get(kind) if kind is not None else None


#: mincore over windows of at most this many bytes (the mapping of a huge file stays small)
_MINCORE_WINDOW = 1 << 30


def resident_pages(path: str) -> tuple[int, int]:
    """(pages of ``path`` in the page cache, pages in all), by mincore on a read-only mapping of
    the file, which reads nothing and so changes nothing. Raises OSError where that fails."""
    libc = _libc()
    page = mmap.PAGESIZE
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        resident = total = 0
        for offset in range(0, size, _MINCORE_WINDOW):
            length = min(_MINCORE_WINDOW, size - offset)
            pages = -(-length // page)
            addr = libc.mmap(None, length, mmap.PROT_READ, mmap.MAP_SHARED, fd, offset)
            if addr in (None, ctypes.c_void_p(-1).value):
                err = ctypes.get_errno()
                raise OSError(err, f"mmap of {path} for mincore: {os.strerror(err)}")
            try:
                vec = (ctypes.c_ubyte * pages)()
                if libc.mincore(addr, length, vec) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"mincore of {path}: {os.strerror(err)}")
                resident += int((np.frombuffer(memoryview(vec), dtype=np.uint8) & 1).sum())
                total += pages
            finally:
                libc.munmap(addr, length)
        return resident, total
    finally:
        os.close(fd)


def write_back_all() -> float:
    """Write back every dirty page of the machine (``sync``, which waits for it); the seconds it
    took. What earlier work left to write (the previous session's files, a dataset a build just
    wrote) is otherwise written while the first measurements run, slowing their reads and
    writes by a share that differs from one session to the next."""
    started = time.monotonic()
    os.sync()
    return time.monotonic() - started


def drop_page_cache(path: str) -> bool:
    """Write back and drop the page cache of one file; False where the OS would not."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        os.fdatasync(fd)  # dirty pages are not dropped, so write them back first
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


class FileWriter(StreamWriter):
    """Buffered writes to a temporary file, renamed to the key on commit."""

    def __init__(self, storage: PosixStorage, key: str, fsync: bool):
        super().__init__(storage, key)
        self.path = storage.path(key)
        self.fsync = fsync
        self.tmp = temp_path(self.path)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        try:
            self.fd = os.open(self.tmp, flags, 0o644)
        except FileNotFoundError:  # the folder is made when first needed, not tried for every file
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self.fd = os.open(self.tmp, flags, 0o644)

    def _write(self, view: memoryview) -> None:
        while view.nbytes:
            n = os.write(self.fd, view)
            view = view[n:]

    def _commit(self) -> None:
        try:
            if self.fsync:
                os.fsync(self.fd)
        finally:
            os.close(self.fd)
            self.fd = -1
        os.replace(self.tmp, self.path)
        if self.fsync:
            fsync_dir(os.path.dirname(self.path))

    def _abort(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass


def fsync_dir(path: str) -> None:
    """Make a rename durable: fsync the directory that holds the entry."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PosixStorage(Storage):
    kind = "local"
    library = "posix"

    def __init__(self, root: str):
        super().__init__(os.path.abspath(root))
        os.makedirs(self.root, exist_ok=True)

    def path(self, key: str) -> str:
        return os.path.join(self.root, *key.split("/"))

    def uri(self, key: str) -> str:
        return self.path(key) if key else self.root

    def _fail(self, op: str, key: str, exc: OSError) -> StorageError:
        return os_error(op, key, self.library, exc)

    def put(self, key: str, data: Buffer) -> None:
        check_key(key, self.library, "put")
        try:
            with self.open_writer(key) as writer:
                writer.write(data)
        except OSError as exc:
            raise self._fail("put", key, exc) from exc

    def put_if_absent(self, key: str, data: Buffer) -> bool:
        check_key(key, self.library, "put_if_absent")
        try:
            return link_if_absent(self.path(key), data)
        except OSError as exc:
            raise self._fail("put_if_absent", key, exc) from exc

    def open_writer(self, key: str, *, fsync: bool = False) -> StreamWriter:
        check_key(key, self.library, "open_writer")
        try:
            return FileWriter(self, key, fsync)
        except OSError as exc:
            raise self._fail("open_writer", key, exc) from exc

    def get(self, key: str) -> Buffer:
        check_key(key, self.library, "get")
        try:
            with open(self.path(key), "rb", buffering=0) as f:
                return f.readall()
        except OSError as exc:
            raise self._fail("get", key, exc) from exc

    def get_range(self, key: str, offset: int, length: int) -> Buffer:
        check_key(key, self.library, "get_range")
        if offset < 0 or length < 0:
            raise StorageError("get_range", key, self.library, f"offset {offset} and length {length} must be >= 0")
        try:
            fd = os.open(self.path(key), os.O_RDONLY)
        except OSError as exc:
            raise self._fail("get_range", key, exc) from exc
        try:
            return pread_full(fd, length, offset) if length else b""
        except OSError as exc:
            raise self._fail("get_range", key, exc) from exc
        finally:
            os.close(fd)

    def list(self, prefix: str = "") -> list[str]:
        try:
            return list_files(self.root, prefix)
        except OSError as exc:
            raise self._fail("list", prefix, exc) from exc

    def stat(self, key: str) -> ObjectInfo:
        check_key(key, self.library, "stat")
        try:
            st = os.stat(self.path(key))
        except OSError as exc:
            raise self._fail("stat", key, exc) from exc
        if not os.path.isfile(self.path(key)):
            raise StorageNotFound("stat", key, self.library, "is a directory, not an object")
        return ObjectInfo(key, st.st_size)

    def delete(self, key: str) -> None:
        check_key(key, self.library, "delete")
        try:
            os.unlink(self.path(key))
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._fail("delete", key, exc) from exc
        self._prune_empty_dirs(key)

    def make_folder(self, prefix: str) -> None:
        try:
            os.makedirs(self.path(prefix.strip("/")), exist_ok=True)
        except OSError as exc:
            raise self._fail("make_folder", prefix, exc) from exc

    def _prune_empty_dirs(self, key: str) -> None:
        # Object stores have no directories; leaving empty ones behind would make a deleted
        # prefix still "exist" on files.
        parts = key.split("/")[:-1]
        while parts:
            try:
                os.rmdir(os.path.join(self.root, *parts))
            except OSError:
                return
            parts.pop()

    def evict_cache(self, keys: Iterable[str]) -> bool:
        return all([drop_page_cache(self.path(k)) for k in keys])
