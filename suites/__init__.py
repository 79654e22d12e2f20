"""The shipped suites (installed as pytest_iobench.suites; see pytest_iobench/shipped.py)."""
