"""What a killed session left behind, found and removed by the next one: only names this tool
writes, and only when their owner is known to be gone.

- a scratch area ``iobench-run-<run id>/`` has an owner record beside it,
  ``iobench-run-<run id>.iobench-owner.json`` (beside, not in it: what is under the area is
  the tests'), with the host, the process id and its start time, and an expiry its session
  renews while it runs: the
  area is stale when its owner ran on this host and is no longer running, or when the expiry
  has passed (an owner on another host); without a record (an older version's area, or one
  killed before it wrote it), when its run id's time stamp is older than ``UNOWNED_AFTER``;
- a temporary file ``.<name>.iobench-tmp.<host>-<pid>-<random>`` is stale when its writer ran
  on this host and is gone, or, written on another host, when it has not changed for
  ``UNOWNED_AFTER``;
- an S3 multipart upload under a stale scratch area is aborted with it.

Nothing else is touched: a name that is not one of these is never removed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from .base import Buffer, Storage

#: marks a file that is still being written; never listed, never read as a dataset file (the
#: writer's host and process follow it: temp_path in posix.py)
TEMP_MARKER = ".iobench-tmp."

RUN_PREFIX = "iobench-run-"
#: the owner record of area X is X + OWNER_SUFFIX, beside it
OWNER_SUFFIX = ".iobench-owner.json"


def owner_name(run_dir: str) -> str:
    return run_dir + OWNER_SUFFIX
#: how long an owner record stays valid unless its session renews it
LEASE = 600.0
#: seconds between renewals
RENEW_EVERY = 120.0
#: an area or temporary file whose owner cannot be checked is left this long (a session on
#: another host may still be writing it)
UNOWNED_AFTER = 24 * 3600.0


@functools.cache
def host_id() -> str:
    """8 hex digits naming this host in temporary names (host names may hold '-' or '.')."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot, from /proc), to tell a process
    from a later one that got the same id; None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def pid_alive(pid: int, start: str | None = None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return start is None or process_start(pid) in (None, start)


@dataclass(frozen=True)
class Owner:
    """The session owning a scratch area, as its record says."""

    host: str
    pid: int
    start: str | None
    expires: float

    @classmethod
    def me(cls) -> Owner:
        pid = os.getpid()
        return cls(host_id(), pid, process_start(pid), time.time() + LEASE)

    def to_bytes(self) -> bytes:
        return json.dumps({"kind": "iobench-owner", "host": self.host, "pid": self.pid, "start": self.start,
                           "expires": self.expires}).encode()

    @classmethod
    def from_bytes(cls, data: Buffer) -> Owner | None:
        try:
            record = json.loads(bytes(data))
            if record.get("kind") != "iobench-owner":
                return None
            return cls(str(record["host"]), int(record["pid"]), record.get("start"), float(record["expires"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def gone(self) -> bool:
        """Whether the session that wrote this record has ended."""
        if self.host == host_id():
            return not pid_alive(self.pid, self.start)
        return time.time() > self.expires


def area_gone(run_dir: str, owner: Owner | None) -> bool:
    """Whether the scratch area ``run_dir`` with the owner record ``owner`` (None: none) is stale."""
    if owner is not None:
        return owner.gone()
    started = run_started(run_dir)
    return started is not None and time.time() - started > UNOWNED_AFTER


def run_started(run_dir: str) -> float | None:
    """The UTC time stamp at the start of a run id (``iobench-run-20261202T055300Z-...``)."""
    stamp = run_dir[len(RUN_PREFIX):].split("-", 1)[0]
    try:
        return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def temp_owner_gone(name: str, mtime: float) -> bool:
    """Whether the temporary file ``name`` (``.x.iobench-tmp.<host>-<pid>-<random>``) is stale."""
    tail = name.rsplit(TEMP_MARKER, 1)[-1]
    parts = tail.split("-")
    if len(parts) == 3 and parts[0] == host_id() and parts[1].isdigit():
        return not pid_alive(int(parts[1]))
    return time.time() - mtime > UNOWNED_AFTER


#: directories this process has made temporary files in (a set of directories, not of files:
#: it stays small however many files a session writes)
_temp_dirs: set[str] = set()


def note_temp_dir(directory: str) -> None:
    _temp_dirs.add(directory)


def remove_own_temps() -> list[str]:
    """Remove the temporary files of this process's writers that are still there: writers an
    interrupt left open. For the end of a session, when no writer of it is running."""
    mine = f"{TEMP_MARKER}{host_id()}-{os.getpid()}-"
    removed = []
    for directory in list(_temp_dirs):
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            if mine in name:
                try:
                    os.unlink(os.path.join(directory, name))
                    removed.append(os.path.join(directory, name))
                except OSError:
                    pass
    return removed


# -- local roots ----------------------------------------------------------------------------------
def sweep_local(root: str, keep: str) -> list[str]:
    """Remove the stale scratch areas under the directory ``root`` (never ``keep``, this
    session's) and the stale temporary files anywhere under it; returns what was removed."""
    removed: list[str] = []
    try:
        entries = os.listdir(root)
    except OSError:
        return removed
    areas = {name.removesuffix(OWNER_SUFFIX) for name in entries if name.startswith(RUN_PREFIX)}
    for name in sorted(areas - {keep}):
        path, record_path = os.path.join(root, name), os.path.join(root, owner_name(name))
        try:
            with open(record_path, "rb") as record:
                owner = Owner.from_bytes(record.read())
        except OSError:
            owner = None
        if (owner is None and not os.path.isdir(path)) or not area_gone(name, owner):
            continue  # a file of that name is not an area of ours
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        if owner is not None:
            try:
                os.unlink(record_path)  # last: an area half removed is still known by its record
            except OSError:
                pass
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not (d.startswith(RUN_PREFIX) and directory == root)]
        for name in files:
            if TEMP_MARKER not in name:
                continue
            path = os.path.join(directory, name)
            try:
                if temp_owner_gone(name, os.stat(path).st_mtime):
                    os.unlink(path)
                    removed.append(path)
            except OSError:
                pass
    return removed


def claim_local(root: str, run_dir: str) -> None:
    """Write (or renew) this session's owner record beside its scratch directory."""
    path = os.path.join(root, owner_name(run_dir))
    tmp = f"{path}.{os.getpid()}.new"
    with open(tmp, "wb") as record:
        record.write(Owner.me().to_bytes())
    os.replace(tmp, path)  # a reader never sees half a record


# -- S3 roots ---------------------------------------------------------------------------------------
def sweep_s3(root: Storage, keep: str, upload_keys: Callable[[str], Iterable[str]],
             abort_uploads: Callable[[str], object]) -> list[str]:
    """Remove the stale scratch areas under an S3 ``root`` storage (never ``keep``) and abort
    their multipart uploads; ``upload_keys(prefix)`` lists the keys of the uploads open under a
    prefix of the root and ``abort_uploads(prefix)`` aborts them (the caller knows the endpoint).
    Returns the areas removed."""
    runs: dict[str, list[str]] = {}
    for key in root.list(RUN_PREFIX):
        runs.setdefault(key.split("/", 1)[0].removesuffix(OWNER_SUFFIX), []).append(key)
    for key in upload_keys(RUN_PREFIX):  # an area may hold nothing but an upload under way
        runs.setdefault(key.split("/", 1)[0], [])
    removed: list[str] = []
    for run_dir, run_keys in runs.items():
        if run_dir == keep:
            continue
        owner_key = owner_name(run_dir)
        owner = Owner.from_bytes(root.get(owner_key)) if owner_key in run_keys else None
        if not area_gone(run_dir, owner):
            continue
        abort_uploads(run_dir + "/")
        for key in run_keys:
            if key != owner_key:
                root.delete(key)
        if owner_key in run_keys:
            root.delete(owner_key)  # last: an area half removed is still known by its record
        removed.append(root.uri(run_dir))
    return removed
