"""The workload options, declared once for command line, ini and environment (see settings.py)."""

from __future__ import annotations

from ..settings import declare  # noqa: F401  (options of this layer are declared here)
