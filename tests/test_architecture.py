"""The package's layering and "one of everything" rules, checked on the source itself.

Layers, bottom to top (docs/dev/architecture.md): a module imports only from its own
layer or below, and the import graph between modules has no cycle, counting the
imports a package ``__init__`` makes.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "pdesurrogates"

# bottom to top; names on one line share a layer
LAYERS: list[set[str]] = [
    {"_version", "errors", "_files", "_figures"},
    {"_progress", "io", "_model_checks"},
    {"solvers"},
    {"datasets"},
    {"uq"},
    {"surrogates"},
    {"training"},
    {"runs"},
    {"cli", "__main__"},
]
LIBRARY_EXCLUDED = {"testing"}  # contract mix-ins for tests: may import anything


def _rank(part: str) -> int:
    for i, layer in enumerate(LAYERS):
        if part in layer:
            return i
    raise AssertionError(f"pdesurrogates.{part} is in no layer: add it to LAYERS and the docs")


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of ours that ``name`` imports at any depth of its source (lazy ones too)."""
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from pkg import sub` depends on the submodule; `from pkg import name`
            # on the package itself
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        for t in targets:
            if not t.startswith("pdesurrogates"):
                continue
            # the deepest known module named by the import
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


MODULES = _modules()
KNOWN = set(MODULES)


def _part(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "__root__"


def test_every_import_goes_down_the_layers():
    bad = []
    for name, path in sorted(MODULES.items()):
        part = _part(name)
        if part in LIBRARY_EXCLUDED:
            continue
        for target in sorted(_imports(name, path, KNOWN)):
            tpart = _part(target)
            if tpart == part:
                continue
            if tpart in LIBRARY_EXCLUDED:
                bad.append(f"{name} imports {target} (testing is for tests only)")
            elif part == "__root__":
                if _rank(tpart) > 1:
                    bad.append(f"the package root imports {target} (only layers 0-1 allowed)")
            elif tpart == "__root__":
                if _rank(part) <= 1:
                    bad.append(f"{name} imports the package root, which imports it")
            elif _rank(tpart) > _rank(part):
                bad.append(f"{name} ({part}) imports {target} ({tpart}): an upward import")
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    # every import counts, lazy ones inside functions too: a lazy import that breaks a
    # cycle at run time still ties the two modules together
    graph = {n: {t for t in _imports(n, p, KNOWN) if t in KNOWN} for n, p in MODULES.items()}
    # a module's import also runs every parent package's __init__
    for n in list(graph):
        for t in list(graph[n]):
            parent = t.rpartition(".")[0]
            while parent and parent in KNOWN and parent != n and not n.startswith(parent + "."):
                graph[n].add(parent)
                parent = parent.rpartition(".")[0]
    index, low, stack, on, comps = {}, {}, [], set(), []

    def strong(v, counter=[0]):  # noqa: B006 (Tarjan's counter)
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    assert not comps, "import cycles: " + "; ".join(" <-> ".join(c) for c in comps)


def test_files_are_no_larger_than_their_job():
    big = {
        str(p.relative_to(SRC)): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 600
    }
    assert not big, f"files over 600 lines: {big}"


def _grep(pattern: str) -> dict[str, list[int]]:
    rx = re.compile(pattern)
    hits = defaultdict(list)
    for p in SRC.rglob("*.py"):
        for i, line in enumerate(p.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if rx.search(code) and ">>>" not in line:
                hits[str(p.relative_to(SRC))].append(i)
    return dict(hits)


def test_one_progress_helper():
    hits = _grep(r"rich\.progress|\btqdm\b")
    assert set(hits) <= {"_progress.py"}, f"progress bars outside _progress.py: {hits}"


def test_one_training_loop():
    classes = _grep(r"^class \w*Trainer\b")
    assert set(classes) == {"training/_trainer.py"}, classes
    steps = _grep(r"\.step\(\s*\)|\.step\(closure")
    # Gaussian-process fitting keeps its own marginal-likelihood optimiser (a handful of
    # hyper-parameters, L-BFGS restarts); it shares the progress bar and the time budget
    allowed = {"training/_trainer.py", "surrogates/_cokriging_optim.py"}
    extra = {f: v for f, v in steps.items() if f not in allowed and "optim" in f}
    assert not extra, f"optimiser steps outside the Trainer: {extra}"


@pytest.mark.parametrize("name", ["rel_l2", "rel_h1"])
def test_relative_errors_are_defined_once(name):
    defs = _grep(rf"^def {name}\(")
    home = {f for f in defs if f.startswith("uq/metrics/")}
    assert len(home) == 1 and len(defs[next(iter(home))]) == 1, defs
    # the training loss of the same name only adapts arguments and calls the metric
    # (tests/training/test_losses.py asserts loss == metric)
    for f in set(defs) - home:
        assert f == "training/_losses.py", defs
        body = (SRC / f).read_text().split(f"def {name}(", 1)[1].split("\ndef ", 1)[0]
        assert f"_metrics.{name}(" in body, f"training's {name} must call uq.metrics.{name}"
