"""examples/uq_propagation.py runs in --smoke mode and its numbers make sense."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "uq_propagation.py"


def test_uq_propagation_example_smoke(tmp_path):
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    for name in (
        "uq_report.json",
        "propagation.json",
        "sobol_surrogate.json",
        "sobol.png",
        "calibration.png",
        "propagation.png",
    ):
        assert (tmp_path / name).is_file(), name
    prop = json.loads((tmp_path / "propagation.json").read_text())
    ref = prop["reference"]
    # the surrogate's output distribution is close to the simulator's on the same samples
    assert abs(ref["mean_error"]) < 0.1 * ref["mean"]
    assert ref["ks"] < 0.2
    s_sur = json.loads((tmp_path / "sobol_surrogate.json").read_text())
    s_sim = json.loads((tmp_path / "sobol_simulator.json").read_text())
    np.testing.assert_allclose(s_sur["ST"], s_sim["ST"], atol=0.1)


def test_example_simulator_matches_closed_form():
    spec = importlib.util.spec_from_file_location("uq_propagation_example", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    # constant conductivity: u = q x (1 - x) / (2k), mean temperature q / (12 k)
    assert abs(mod.simulator(0.2, 0.0, 1.3) - 1.3 / (12 * np.exp(0.2))) < 1e-3 * 0.1
