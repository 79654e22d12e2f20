"""Fixtures and hooks of the results layer (filled in by its issue)."""
