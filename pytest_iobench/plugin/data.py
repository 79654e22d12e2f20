"""Fixtures and hooks of the data layer (filled in by its issue)."""
