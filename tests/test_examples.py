"""Every example runs in its --smoke mode."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script", ["demo.py"])
def test_example_smoke(script, tmp_path):
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
