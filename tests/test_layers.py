"""The layers of docs/architecture.md hold in the code: a module imports only modules of its own
layer or of the layers below it, and no modules import each other in a circle (imports inside
functions count too: they only defer the same dependency)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_iobench"

#: the layers from the ground up; a module not under a layer's package is named alone
LAYERS = [
    {"pytest_iobench", "pytest_iobench.settings", "pytest_iobench.sampling", "pytest_iobench.shipped"},
    {"pytest_iobench.storage"},
    {"pytest_iobench.data"},
    {"pytest_iobench.workload"},
    {"pytest_iobench.mpi"},
    {"pytest_iobench.qualify"},
    {"pytest_iobench.report"},
    {"pytest_iobench.plugin", "pytest_iobench.__main__"},
]


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int:
    for level, names in reversed(list(enumerate(LAYERS))):
        if any(module == name or module.startswith(name + ".") for name in names - {"pytest_iobench"}):
            return level
    if module == "pytest_iobench":
        return 0
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS (and to docs/architecture.md)")


def imports(path: Path, modules: set[str], package_dir: Path = PACKAGE) -> set[str]:
    """The package's modules ``path`` imports, at module level or inside functions."""
    me = module_name(path, package_dir)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # "from . import x" names a module x, "from .m import f" the module m
            targets = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules] or [base]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # a name inside a module: the module
                target = target.rpartition(".")[0]
            if target and target != me:
                found.add(target)
    return found


def graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    files = sorted(package.rglob("*.py"))
    modules = {module_name(p, package) for p in files}
    return {module_name(p, package): imports(p, modules, package) for p in files}


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    return [f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
            for module, targets in edges.items() for target in sorted(targets)
            if layer_of(target) > layer_of(module)]


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every circle a depth-first walk meets (the package's own __init__ left out: every module
    names it, and it imports nothing of theirs)."""
    edges = {m: {t for t in targets if t != "pytest_iobench"} for m, targets in edges.items()}
    found: list[list[str]] = []
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def test_no_module_imports_a_layer_above_its_own():
    edges = graph()
    assert "pytest_iobench.storage.registry" in edges["pytest_iobench.workload.job"]  # the walk reads real imports
    assert upward_imports(edges) == []


def test_no_modules_import_each_other_in_a_circle():
    assert circles(graph()) == []


def test_the_checks_find_an_upward_import_and_a_circle(tmp_path):
    """The checks can fail: an upward import and a circle through an import inside a function,
    written here, are both found."""
    pkg = tmp_path / "pytest_iobench"
    for folder, files in {"storage": {"a.py": "from . import b\nfrom ..data import spec\n",
                                      "b.py": "def f():\n    from .a import x\n"},
                          "data": {"spec.py": ""}}.items():
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("")
        for name, text in files.items():
            (pkg / folder / name).write_text(text)
    (pkg / "__init__.py").write_text("")
    edges = graph(pkg)
    assert upward_imports(edges) == ["pytest_iobench.storage.a (layer 1) imports pytest_iobench.data.spec (layer 2)"]
    assert circles(edges) == [["pytest_iobench.storage.a", "pytest_iobench.storage.b", "pytest_iobench.storage.a"]]
