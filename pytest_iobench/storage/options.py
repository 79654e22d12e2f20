"""The storage options (``--iobench-storage`` and friends), declared once for CLI, ini and env."""

from __future__ import annotations

import re

from ..settings import Option, comma_list, declare, positive_int_list, positive_seconds, url, urls
from .names import ALL_LIBRARIES, DEFAULT_BACKOFF, DEFAULT_OP_TIMEOUT, DEFAULT_RETRIES, STORAGE_KINDS

#: more retries than this only hide a dead endpoint behind minutes of backoff
MOST_RETRIES = 20


def retry_count(text: str) -> int:
    """A whole number of retries, 0 to MOST_RETRIES."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number; give 0 to {MOST_RETRIES}, such as 5") from None
    if not 0 <= value <= MOST_RETRIES:
        raise ValueError(f"{value} is out of range; give 0 to {MOST_RETRIES}, such as 5")
    return value


#: the most threads a test may be parametrized with: each holds buffers and connections, and
#: far beyond the cores and the storage's queue depth they measure nothing but contention
#: (and a typo such as 100000 would grow the memory until the kernel ends the run)
MAX_THREADS = 1024


def thread_counts(text: str) -> list[int]:
    counts = positive_int_list(text)
    too_many = [n for n in counts if n > MAX_THREADS]
    if too_many:
        raise ValueError(f"{too_many[0]} threads is more than the maximum, {MAX_THREADS}")
    return counts


def region(text: str) -> str:
    """An S3 region name as the client libraries take it: letters, digits and '-' (us-east-1)."""
    if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?", text):
        raise ValueError("a region is letters, digits and '-', such as us-east-1")
    return text

declare(
    Option("storage", "storage under test; a comma list runs each: local, direct (O_DIRECT), s3, ais "
           "(AIStore's native API: needs --iobench-ais-endpoint)",
           default="local", parse=comma_list(STORAGE_KINDS), metavar="KINDS"),
    Option("libraries", "client libraries to run; default: every installed library for the chosen "
           f"storage ({', '.join(ALL_LIBRARIES)})", parse=comma_list(ALL_LIBRARIES), metavar="LIBS"),
    Option("threads", f"thread counts to parametrize (comma list, each at most {MAX_THREADS})", default="1,4",
           parse=thread_counts, metavar="N,N"),
    Option("root", "the directory under test, or s3://bucket/prefix for the s3 storage; "
           "default: a fresh temporary directory and the embedded endpoint's bucket", metavar="PATH"),
    Option("s3-endpoint", "S3 endpoint URL, or several gateways of one store comma-separated (requests "
           "are spread over them by object name); default: an embedded S3 server (moto) on 127.0.0.1",
           env=("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"), parse=urls, metavar="URL[,URL]"),
    Option("ais-endpoint", "AIStore gateway URL for the ais storage (its native API through the aistore "
           "SDK), such as http://gateway:8080; without it the ais cases skip", env=("AIS_ENDPOINT",),
           parse=url, metavar="URL"),
    Option("bucket", "bucket (optionally bucket/prefix) on the S3 endpoint, or on AIStore for the ais "
           "storage (an ais:// bucket that exists)", metavar="NAME"),
    Option("s3-region", "S3 region", default="us-east-1", env=("AWS_REGION", "AWS_DEFAULT_REGION"),
           parse=region, metavar="REGION"),
    Option("s3-access-key", "S3 access key id (prefer the AWS_ACCESS_KEY_ID environment variable)",
           env=("AWS_ACCESS_KEY_ID",), masked=True, metavar="ID"),
    Option("s3-secret-key", "S3 secret key (prefer the AWS_SECRET_ACCESS_KEY environment variable)",
           env=("AWS_SECRET_ACCESS_KEY",), secret=True, metavar="KEY"),
    Option("op-timeout", "seconds any one storage operation may take before it fails naming the operation, "
           "key, library and endpoint; each S3 library's connect and read timeouts and retries are set "
           "from it", default=f"{DEFAULT_OP_TIMEOUT:g}", parse=positive_seconds, metavar="SECONDS"),
    Option("retries", "retries of an S3 request that met throttling (503 SlowDown), a 500/502/504, a "
           "connection reset or a timeout, the same for every library (0: no retry)",
           default=str(DEFAULT_RETRIES), parse=retry_count, metavar="N"),
    Option("backoff", "seconds the first retry waits at most; each next one up to twice as long "
           "(exponential backoff, full jitter, at most 5 s)", default=f"{DEFAULT_BACKOFF:g}",
           parse=positive_seconds, metavar="SECONDS"),
)
