"""Layer 1, storage: one interface over every client library, and the S3 endpoints."""

from .base import Buffer, ObjectInfo, Storage, StreamWriter, join_key
from .errors import StorageError, StorageNotFound, StoragePermissionDenied, StorageUnsupported
from .registry import ALL_LIBRARIES, LIBRARIES, STORAGE_KINDS, StorageSpec, open_storage

__all__ = [
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
