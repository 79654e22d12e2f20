"""What each S3 endpoint served in this process: operations and bytes read and written.

The storages spread over several endpoints (spread.py, s3dlio_backend.S3dlioSpreadStorage)
count into ``TALLY``; the plugin takes each test's share around every test, so this module
imports nothing to keep that cheap in sessions that never touch a storage.
"""

from __future__ import annotations

import threading


class EndpointTally:
    """Per endpoint URL: operations and bytes, in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, dict[str, int]] = {}

    def add(self, url: str, ops: int = 1, read: int = 0, written: int = 0) -> None:
        with self._lock:
            entry = self._counts.setdefault(url, {"operations": 0, "bytes_read": 0, "bytes_written": 0})
            entry["operations"] += ops
            entry["bytes_read"] += read
            entry["bytes_written"] += written

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {url: dict(entry) for url, entry in self._counts.items()}

    @staticmethod
    def since(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        """What each endpoint served between two snapshots (endpoints that served nothing left out)."""
        out = {}
        for url, entry in after.items():
            old = before.get(url, {})
            delta = {name: value - old.get(name, 0) for name, value in entry.items()}
            if any(delta.values()):
                out[url] = delta
        return out


#: every endpoint's share of this process's requests
TALLY = EndpointTally()
