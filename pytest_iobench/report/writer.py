"""Writing a run's files: whole or not at all (a temporary file renamed into place), so a crashed
run never leaves half a document under a name that looks complete."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .document import compact_timestamp

LATEST = "latest.json"


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def dumps(document: dict[str, Any]) -> str:
    # allow_nan=False: a NaN that slipped in is an error here, not an invalid JSON file later
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


@dataclass
class WrittenRun:
    document: Path
    latest: Path | None = None
    human: list[Path] = field(default_factory=list)


def document_path(reports_dir: str | Path, started: datetime) -> Path:
    """``reports/iobench-<UTC timestamp>.json``; a second run in the same second gets ``-2``, ..."""
    reports_dir = Path(reports_dir)
    stem = f"iobench-{compact_timestamp(started)}"
    path, n = reports_dir / f"{stem}.json", 1
    while path.exists():
        n += 1
        path = reports_dir / f"{stem}-{n}.json"
    return path


def write_document(document: dict[str, Any], path: str | Path, latest: str | Path | None = None) -> WrittenRun:
    """The document at ``path``, and the same bytes at ``latest`` when given."""
    text = dumps(document)
    written = WrittenRun(write_atomic(path, text))
    if latest is not None:
        written.latest = write_atomic(latest, text)
    return written
