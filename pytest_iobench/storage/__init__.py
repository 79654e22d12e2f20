"""Layer 1, storage: one interface over every client library, and the S3 endpoints.

The names below load on first use (PEP 562): the plugin imports ``storage.options`` in every
pytest run, which must not pull in the registry and the S3 code with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import Buffer, ObjectInfo, Storage, StreamWriter, join_key
    from .errors import StorageError, StorageNotFound, StoragePermissionDenied, StorageUnsupported
    from .registry import ALL_LIBRARIES, LIBRARIES, STORAGE_KINDS, StorageSpec, open_storage

#: each exported name and the module that holds it
_HOME = {
    **dict.fromkeys(("Buffer", "ObjectInfo", "Storage", "StreamWriter", "join_key"), "base"),
    **dict.fromkeys(("StorageError", "StorageNotFound", "StoragePermissionDenied", "StorageUnsupported"), "errors"),
    **dict.fromkeys(("ALL_LIBRARIES", "LIBRARIES", "STORAGE_KINDS", "StorageSpec", "open_storage"), "registry"),
}

__all__ = [  # the names of _HOME (tests/test_plugin_import.py), literal for the linters
    "ALL_LIBRARIES",
    "LIBRARIES",
    "STORAGE_KINDS",
    "Buffer",
    "ObjectInfo",
    "Storage",
    "StorageError",
    "StorageNotFound",
    "StoragePermissionDenied",
    "StorageSpec",
    "StorageUnsupported",
    "StreamWriter",
    "join_key",
    "open_storage",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{home}", __name__), name)
