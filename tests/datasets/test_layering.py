"""The dataset layer's imports: no cycles inside it, nothing from the layers above, and
every module imports on its own in a fresh process (without torch where it can)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PKG = SRC / "pdesurrogates" / "datasets"
ABOVE = ("uq", "surrogates", "training", "runs", "cli", "testing")


def _name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _imports(name: str, path: Path) -> set[str]:
    """Our modules ``name`` imports anywhere in its source (lazy imports count)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join([*base, mod] if mod else base)
            targets = [mod, *(f"{mod}.{a.name}" for a in node.names)]
        else:
            continue
        for t in targets:
            if t.startswith("pdesurrogates"):
                found.add(t)
    return found


def _graph() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        edges = set()
        for t in _imports(name, path):
            while t and t not in MODULES:
                t = t.rpartition(".")[0]
            if not t or t == name:
                continue
            edges.add(t)
            parent = t.rpartition(".")[0]  # importing a module runs its packages' __init__
            while parent in MODULES and parent != name and not name.startswith(parent + "."):
                edges.add(parent)
                parent = parent.rpartition(".")[0]
        graph[name] = edges
    return graph


def test_no_import_cycles_in_the_dataset_layer():
    graph = _graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(v, stack):
        state[v] = 1
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                cycles.append(" -> ".join([*stack[stack.index(w) :], w]))
            elif w not in state:
                visit(w, [*stack, w])
        state[v] = 2

    for v in sorted(graph):
        if v not in state:
            visit(v, [v])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_upward_imports():
    bad = [
        f"{name} imports {t}"
        for name, path in MODULES.items()
        for t in _imports(name, path)
        if t.split(".")[1:2] and t.split(".")[1] in ABOVE
    ]
    assert not bad, bad


@pytest.mark.slow  # one interpreter per module: about 5 s each
@pytest.mark.parametrize("module", sorted(MODULES))
def test_each_module_imports_alone(module):
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, cwd=SRC)


def test_the_dataset_layer_loads_torch_only_on_demand():
    code = (
        "import sys, pdesurrogates\n"
        "if 'torch' in sys.modules: print('root'); raise SystemExit\n"
        "import pdesurrogates.datasets as d, pdesurrogates.datasets.backends as b\n"
        "b.list_backends(); d.describe, d.validate, d.generate_darcy\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, cwd=SRC, capture_output=True, text=True
    ).stdout.strip()
    if out == "root":
        pytest.skip("the package root itself imports torch")
    assert out == "False"
