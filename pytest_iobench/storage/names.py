"""The storage layer's names and defaults that its options need at import time, in a module
that imports nothing.

``storage/options.py`` declares its options when the pytest plugin loads, in every pytest run
of a project where the package is installed; taking these from the registry, the deadline or
the retry module would load the S3 code into every run. Those modules take them from here.
"""

from __future__ import annotations

#: ais: AIStore through its native API (ais_backend.py), only when an endpoint is given
STORAGE_KINDS = ("local", "direct", "s3", "ais")
#: the storages reached over the network by bucket and prefix
BUCKET_KINDS = ("s3", "ais")

#: the libraries that can reach each storage, in the order they are parametrized
LIBRARIES: dict[str, tuple[str, ...]] = {
    "local": ("posix", "s3dlio"),
    "direct": ("posix", "s3dlio"),
    "s3": ("s3dlio", "minio", "boto3", "s3torchconnector"),
    "ais": ("aistore",),
}
ALL_LIBRARIES = tuple(dict.fromkeys(lib for libs in LIBRARIES.values() for lib in libs))

#: --iobench-op-timeout's default: long enough for any single request of a healthy endpoint
#: (a 1 GiB get at 10 MB/s, a listing of 100,000 keys), short enough that a dead one is noticed
DEFAULT_OP_TIMEOUT = 120.0

#: --iobench-retries's default: 6 attempts make a request fail at 10 % throttling once in a
#: million, where 3 failed training runs (the issue's trial)
DEFAULT_RETRIES = 5
#: --iobench-backoff's default, seconds: the first retry waits up to this, each next one twice
#: as long at most (full jitter), never more than retry.MAX_BACKOFF
DEFAULT_BACKOFF = 0.05
