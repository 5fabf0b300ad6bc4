"""Every example runs in its --smoke mode and writes only under its -o/--output directory."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))


def _output_options(path: Path) -> dict[str, ast.Call]:
    """The add_argument calls of an example, by their first option string."""
    calls = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
            flags = [a.value for a in node.args if isinstance(a, ast.Constant)]
            if flags:
                calls[flags[0]] = node
    return calls


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_takes_o_output_with_default_runs_name(path):
    calls = _output_options(path)
    assert "-o" in calls, f"{path.name} has no -o/--output option"
    flags = [a.value for a in calls["-o"].args]
    assert flags == ["-o", "--output"], flags
    default = {k.arg: k.value for k in calls["-o"].keywords}["default"]
    assert ast.unparse(default) == f"Path('runs/{path.stem}')"
    assert "--out" not in calls or "SUPPRESS" in ast.unparse(calls["--out"])  # hidden alias


def test_demo_smoke_writes_only_under_output(tmp_path):
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py"), "--smoke", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert (out / "summary.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing in the cwd
