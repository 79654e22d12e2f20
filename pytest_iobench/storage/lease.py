"""A lease kept in the storage itself: one holder at a time across processes, sessions and
hosts that share a root or a bucket (a dataset's generation: one generates, the others wait and
reuse).

    with Lease(storage, "iobench-lease.json", what="generating data/3f2a...") as lease:
        ...                        # only one process at a time gets here

The lease is a small JSON object (owner id, host, pid, expiry) created atomically where the
storage can: ``Storage.put_if_absent`` (a hard link of a complete temporary file on a file
system, a conditional put, ``If-None-Match: *``, on S3). Where it cannot (s3dlio's S3 client has
no conditional put) it is written and read back after a pause: the last writer wins and each
contender sees who won. The holder renews the expiry from a thread every ``ttl / 3``; a lease
whose expiry has passed belongs to an owner that died (or hung) and is taken over. Expiry is
wall-clock time: hosts sharing a bucket need clocks within a fraction of ``ttl``.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from typing import Any

from .base import Storage
from .errors import StorageError, StorageNotFound

LEASE_KIND = "pytest-iobench lease"
#: seconds a lease lives without renewal: a dead holder's lease is taken over this long after
#: its last renewal
DEFAULT_TTL = 30.0
#: how long a write-then-verify contender waits before reading back who won
SETTLE = 0.5


class LeaseLost(RuntimeError):
    """Another owner took the lease while we held it (our renewals stopped for longer than its
    time to live)."""


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    def __init__(self, storage: Storage, key: str, *, owner: str | None = None, ttl: float = DEFAULT_TTL,
                 what: str = "", poll: float = 0.25):
        self.storage = storage
        self.key = key
        self.owner = owner or new_owner()
        self.ttl = ttl
        self.what = what
        self.poll = poll
        #: the owner whose lease was taken over when we acquired it (a dead or hung one), if any
        self.took_over: str | None = None
        #: seconds spent waiting for other holders
        self.waited = 0.0
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self.lost: str | None = None

    # -- the lease object ------------------------------------------------------------------
    def _body(self) -> bytes:
        return json.dumps({"kind": LEASE_KIND, "owner": self.owner, "host": socket.gethostname(),
                           "pid": os.getpid(), "what": self.what, "ttl": self.ttl,
                           "expires": time.time() + self.ttl}).encode()

    def read(self) -> tuple[dict[str, Any] | None, bytes | None]:
        """The lease there (None when there is none; an unreadable one counts as expired)."""
        try:
            raw = bytes(self.storage.get(self.key))
        except StorageNotFound:
            return None, None
        try:
            lease = json.loads(raw)
            if not isinstance(lease, dict) or lease.get("kind") != LEASE_KIND:
                raise ValueError
        except ValueError:
            lease = {"owner": "?", "expires": 0}  # torn or foreign: nobody renews it
        return lease, raw

    def _create(self) -> bool:
        try:
            return self.storage.put_if_absent(self.key, self._body())
        except NotImplementedError:
            pass
        # write, then read back after a pause: of contenders writing at once the last one wins
        self.storage.put(self.key, self._body())
        time.sleep(SETTLE)
        lease, _ = self.read()
        return lease is not None and lease.get("owner") == self.owner

    # -- taking and giving back ---------------------------------------------------------------
    def acquire(self, timeout: float | None = None) -> Lease:
        """Wait until the lease is ours: while another live owner holds it, poll; take it over
        once its expiry has passed. ``timeout``: give up (TimeoutError naming the holder)."""
        start = time.monotonic()
        while True:
            lease, raw = self.read()
            if lease is None:
                if self._create():
                    break
                continue  # someone else created it meanwhile: read who
            if lease.get("expires", 0) < time.time():
                # a dead (or hung) owner's: delete it only while it is still that same stale
                # object, then contend for it like anyone else
                _, raw_again = self.read()
                if raw_again == raw:
                    self.storage.delete(self.key)
                    if self._create():
                        self.took_over = str(lease.get("owner"))
                        break
                continue
            if timeout is not None and time.monotonic() - start > timeout:
                raise TimeoutError(f"{self.storage.uri(self.key)}: held by {lease.get('owner')} "
                                   f"({lease.get('what') or 'no reason given'}) for longer than {timeout:.0f} s")
            time.sleep(self.poll)
        self.waited = time.monotonic() - start
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew, name="iobench-lease", daemon=True)
        self._renewer.start()
        return self

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                lease, _ = self.read()
                if lease is None or lease.get("owner") != self.owner:
                    self.lost = str(lease.get("owner")) if lease else "nobody (it was deleted)"
                    return
                self.storage.put(self.key, self._body())
            except StorageError:
                continue  # a failed renewal is tried again; the expiry leaves room for two more

    def release(self) -> None:
        """Give the lease back (delete it, when it is still ours)."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None
        lease, _ = self.read()
        if lease is not None and lease.get("owner") == self.owner:
            self.storage.delete(self.key)

    def __enter__(self) -> Lease:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
