"""The documentation covers what the code declares: every option, with its ini key and
environment variables, is in docs/options.md, and every doc the README points to exists."""

import re
from pathlib import Path

import pytest

import pytest_iobench.plugin.options  # noqa: F401  (declares every layer's options)
from pytest_iobench.settings import REGISTRY

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_option_is_documented_with_its_twins(name):
    text = (ROOT / "docs" / "options.md").read_text()
    option = REGISTRY[name]
    rows = [line for line in text.splitlines()
            if line.startswith(f"| `{option.flag} ") or line.startswith(f"| `{option.flag}`")]
    assert len(rows) == 1, f"docs/options.md has {len(rows)} table rows for {option.flag}; expected 1"
    for twin in (option.ini, *option.env_names):
        assert f"`{twin}`" in rows[0], f"docs/options.md: the row of {option.flag} does not name {twin}"
    if option.default is not None:
        assert f"`{option.default}`" in rows[0], (
            f"docs/options.md: the row of {option.flag} does not give its default {option.default}")


def test_documented_options_exist():
    text = (ROOT / "docs" / "options.md").read_text()
    flags = {REGISTRY[name].flag for name in REGISTRY}
    documented = set(re.findall(r"^\| `(--iobench-[a-z0-9-]+)", text, flags=re.M))
    assert documented - flags == set(), (
        f"docs/options.md documents options that do not exist: {sorted(documented - flags)}")


def test_readme_links_resolve():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(((?:docs|suites|benchmarks)/[^)#]+)\)", readme)
    assert links, "README.md links no docs"
    missing = [link for link in links if not (ROOT / link).exists()]
    assert not missing, f"README.md links to missing files: {missing}"
