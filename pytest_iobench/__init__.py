"""pytest-iobench: storage benchmarks for AI training (DLIO / MLPerf Storage compatible)."""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    """``__version__`` read from the installed distribution on first use: importlib.metadata
    (and the email parser it loads) is not worth loading in every pytest run the plugin joins."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-iobench")
    except PackageNotFoundError:  # a checkout that is not installed
        return "0.0.0+checkout"
