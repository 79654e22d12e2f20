"""pytest-iobench: storage benchmarks for AI training (DLIO / MLPerf Storage compatible)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pytest-iobench")
except PackageNotFoundError:  # a checkout that is not installed
    __version__ = "0.0.0+checkout"
