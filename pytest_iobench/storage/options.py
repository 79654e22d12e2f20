"""The storage options (``--iobench-storage`` and friends), declared once for CLI, ini and env."""

from __future__ import annotations

from ..settings import Option, comma_list, declare, positive_int_list, url
from .registry import ALL_LIBRARIES, STORAGE_KINDS

declare(
    Option("storage", "storage under test; a comma list runs each: local, direct (O_DIRECT), s3",
           default="local", parse=comma_list(STORAGE_KINDS), metavar="KINDS"),
    Option("libraries", "client libraries to run; default: every installed library for the chosen "
           f"storage ({', '.join(ALL_LIBRARIES)})", parse=comma_list(ALL_LIBRARIES), metavar="LIBS"),
    Option("threads", "thread counts to parametrize (comma list)", default="1,4",
           parse=positive_int_list, metavar="N,N"),
    Option("root", "the directory under test, or s3://bucket/prefix for the s3 storage; "
           "default: a fresh temporary directory and the embedded endpoint's bucket", metavar="PATH"),
    Option("s3-endpoint", "S3 endpoint URL; default: an embedded S3 server (moto) on 127.0.0.1",
           env=("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"), parse=url, metavar="URL"),
    Option("bucket", "bucket (optionally bucket/prefix) on the S3 endpoint", metavar="NAME"),
    Option("s3-region", "S3 region", default="us-east-1", env=("AWS_REGION", "AWS_DEFAULT_REGION"),
           metavar="REGION"),
    Option("s3-access-key", "S3 access key id (prefer the AWS_ACCESS_KEY_ID environment variable)",
           env=("AWS_ACCESS_KEY_ID",), masked=True, metavar="ID"),
    Option("s3-secret-key", "S3 secret key (prefer the AWS_SECRET_ACCESS_KEY environment variable)",
           env=("AWS_SECRET_ACCESS_KEY",), secret=True, metavar="KEY"),
)
