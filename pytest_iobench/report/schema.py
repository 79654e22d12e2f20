"""The versioned JSON Schema of the result document, validation, and reading stored documents."""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_NAME = "iobench-result"
SCHEMA_VERSION = 1


class DocumentError(ValueError):
    """A result document cannot be used; the message says which file and what is wrong."""


@functools.cache
def schema(version: int = SCHEMA_VERSION) -> dict[str, Any]:
    """The JSON Schema of result documents of ``version`` (shipped in report/schema/)."""
    text = resources.files(__package__).joinpath("schema", f"{SCHEMA_NAME}-{version}.json").read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def problems(document: Any, limit: int = 10) -> list[str]:
    """What makes ``document`` invalid against the schema, as ``where: what`` lines (empty: valid)."""
    validator = jsonschema.Draft202012Validator(schema())
    found = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(part) for part in error.absolute_path) or "(top level)"
        found.append(f"{where}: {error.message}")
        if len(found) >= limit:
            break
    return found


def load_document(path: str | Path) -> dict[str, Any]:
    """Read and validate a stored result document; DocumentError says what is wrong with it."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise DocumentError(f"{path}: no such file; give a result document written by pytest-iobench "
                            "(reports/latest.json, reports/iobench-<timestamp>.json)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DocumentError(f"{path}: cannot be read: {exc}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DocumentError(f"{path}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                            "give a result document written by pytest-iobench") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA_NAME:
        raise DocumentError(f"{path}: not a pytest-iobench result document (no \"schema\": \"{SCHEMA_NAME}\" "
                            "at the top level)")
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise DocumentError(f"{path}: schema_version {version!r}; this pytest-iobench reads version {SCHEMA_VERSION}")
    found = problems(document)
    if found:
        raise DocumentError(f"{path}: does not match the {SCHEMA_NAME} schema version {SCHEMA_VERSION}: "
                            + "; ".join(found))
    return document
