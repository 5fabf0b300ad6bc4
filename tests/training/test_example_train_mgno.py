"""examples/train_mgno_darcy.py runs in --smoke mode and reports consistent numbers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_train_mgno_darcy_smoke(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "train_mgno_darcy.py"),
            "--smoke",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert any(line.startswith("test (3 samples): rel L2 ") for line in lines), run.stdout
    assert any(line.startswith("zero-shot at 32²: rel L2 ") for line in lines), run.stdout
    assert (tmp_path / "run" / "model" / "config.json").is_file()
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 2
