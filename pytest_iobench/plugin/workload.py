"""Fixtures and hooks of the workload layer (filled in by its issue)."""
