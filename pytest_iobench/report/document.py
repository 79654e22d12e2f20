"""The result document of one run: run metadata, machine, software, and one entry per test."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import environment
from .redaction import redacted
from .schema import SCHEMA_NAME, SCHEMA_VERSION


def utc_now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z: 2026-11-25T10:15:02.123456Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def compact_timestamp(moment: datetime) -> str:
    """For file names: 20261125T101502Z."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def settings_entry(described: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """``Settings.describe()`` ({name: "value (source)"}, secrets masked) as {name: {value, source}}."""
    entry = {}
    for name, text in described.items():
        value, sep, source = text.rpartition(" (")
        if sep and source.endswith(")"):
            entry[name] = {"value": value, "source": source[:-1]}
        else:
            entry[name] = {"value": text, "source": "unknown"}
    return entry


def summary(tests: Sequence[dict[str, Any]]) -> dict[str, Any]:
    outcomes = Counter(t["outcome"] for t in tests)
    return {
        "tests": len(tests),
        "outcomes": dict(sorted(outcomes.items())),
        "criteria_failed": sum(1 for t in tests for c in t["criteria"] if not c["passed"]),
        "warnings": sum(len(t["warnings"]) for t in tests),
    }


def build_document(
    tests: Sequence[dict[str, Any]],
    *,
    started: datetime,
    finished: datetime,
    exit_status: int,
    command: Sequence[str],
    rootdir: str | Path,
    settings: Mapping[str, str],
    xdist_workers: int = 0,
    machine: dict[str, Any] | None = None,
    software: dict[str, Any] | None = None,
    comparison: dict[str, Any] | None = None,
    interrupted: str | None = None,
) -> dict[str, Any]:
    """The document (JSON types, every string redacted). ``settings``: ``Settings.describe()``;
    ``command``: the arguments with secret values masked already; ``interrupted``: what ended
    the run early (``SIGINT``, ``SIGTERM``, ``KeyboardInterrupt``), None when it ran to its end."""
    document = {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "run": {
            "id": f"{compact_timestamp(started)}-{secrets.token_hex(3)}",
            "started": timestamp(started),
            "finished": timestamp(finished),
            "duration_s": max(0.0, (finished - started).total_seconds()),
            "exit_status": int(exit_status),
            "interrupted": interrupted,
            "command": list(command),
            "rootdir": str(rootdir),
            "xdist_workers": xdist_workers,
            "plugin_version": environment.plugin_version(),
            "git": environment.git_state(rootdir),
            "settings": settings_entry(settings),
        },
        "machine": machine if machine is not None else environment.machine(),
        "software": software if software is not None else environment.software(),
        "summary": summary(tests),
        "tests": list(tests),
    }
    if comparison is not None:
        document["comparison"] = comparison
    clean: dict[str, Any] = redacted(document)  # the same shape, strings redacted
    return clean
