"""Where a benchmark reads and writes: a temporary directory, or a prefix on the embedded S3
endpoint (moto in its own process, started here and stopped after)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from pytest_iobench.storage import Storage, StorageSpec, open_storage
from pytest_iobench.storage.endpoint import EMBEDDED_BUCKET, EmbeddedS3


@contextmanager
def storages(kind: str, libraries: Sequence[str]) -> Iterator[dict[str, Storage]]:
    """One fresh storage of ``kind`` per library, by library. On S3 they share one embedded
    endpoint (s3dlio serves one endpoint per process), each under its own prefix."""
    if kind == "s3":
        with EmbeddedS3() as endpoint:
            yield {lib: open_storage(StorageSpec("s3", lib, bucket=EMBEDDED_BUCKET, prefix=f"bench-{lib}",
                                                 endpoint_url=endpoint.url), endpoint=endpoint)
                   for lib in libraries}
        return
    with tempfile.TemporaryDirectory(dir=os.environ.get("IOBENCH_BENCH_DIR")) as root:
        yield {lib: open_storage(StorageSpec(kind, lib, root=os.path.join(root, lib))) for lib in libraries}
