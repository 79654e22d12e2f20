"""What the package ships besides its code: the suites and the named workloads.

The suites live at the top of a checkout (``suites/``, where ``pytest suites/`` runs them) and
install as ``pytest_iobench.suites``; an installed wheel copies them out with ``iobench suites
DIR`` so that ``pytest DIR/`` runs them with the same test ids as a checkout's ``suites/``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def suite_files() -> list[Path]:
    """The shipped suite modules (test_*.py), from the installed package or the checkout."""
    return sorted(Path(str(p)) for p in files("pytest_iobench.suites").iterdir()
                  if p.name.startswith("test_") and p.name.endswith(".py"))


def copy_suites(dest: Path) -> list[Path]:
    """Copy the shipped suites into ``dest`` (created if missing); refuses to overwrite a file
    that differs, so a user's edited suite is never replaced silently."""
    sources = suite_files()
    targets = [dest / src.name for src in sources]
    clashes = [t for s, t in zip(sources, targets) if t.exists() and t.read_bytes() != s.read_bytes()]
    if clashes:
        raise FileExistsError(f"{len(clashes)} suite file(s) in {dest} differ from the shipped ones "
                              f"({', '.join(t.name for t in clashes)}); remove them or copy into another folder")
    dest.mkdir(parents=True, exist_ok=True)
    for src, target in zip(sources, targets):
        target.write_bytes(src.read_bytes())
    return targets
