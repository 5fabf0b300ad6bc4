"""The 'solve' and 'train dcdm' commands."""

from __future__ import annotations

import json

import pytest

from pdesurrogates.cli import main


@pytest.mark.parametrize("method", ["cg", "jacobi", "ic", "amg", "vcycle"])
def test_solve_classical_methods(tmp_path, capsys, method):
    plot = tmp_path / "res.png"
    code = main(
        ["solve", "--problem", "poisson2d", "--n", "16", "--method", method, "--plot", str(plot)]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "converged" in out and "iterations=" in out and "setup=" in out and "solve=" in out
    assert plot.is_file() and plot.stat().st_size > 1000
    it = int(out.split("iterations=")[1].split(",")[0])
    assert it > 0


def test_train_dcdm_then_solve_smoke(tmp_path, capsys):
    run = tmp_path / "runs" / "d2"
    code = main(
        [
            "train", "dcdm", "--dim", "2", "--grid", "16", "--out", str(run), "--samples", "24",
            "--lanczos", "20", "--epochs", "1", "--width", "2", "--boundary", "smoke",
            "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr()
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["class"] == "ConjugateDirectionNet"
    assert cfg["metadata"]["trained_on"] == {"problem": "smoke_domain", "shape": [16, 16]}
    assert cfg["config"]["boundary"] == ["neumann", "neumann", "neumann", "dirichlet"]
    assert (tmp_path / "runs" / "d2-ritz.h5").is_file()
    capsys.readouterr()
    plot = tmp_path / "p.png"
    code = main(
        ["solve", "--problem", "smoke2d", "--n", "24", "--method", "dcdm", "--model", str(run),
         "--rtol", "1e-6", "--plot", str(plot)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "method=dcdm: converged" in out
    assert plot.is_file()
    # a 2D model on a 3D problem is a clear error
    code = main(["solve", "--problem", "poisson3d", "--n", "8", "--method", "dcdm",
                 "--model", str(run)])  # fmt: skip
    assert code == 1
    assert "2D" in capsys.readouterr().err


def test_solve_errors(capsys, tmp_path):
    assert main(["solve", "--method", "dcdm", "--n", "8"]) == 1
    assert "--model" in capsys.readouterr().err
    assert main(["solve", "--problem", "nope", "--n", "8"]) == 1
    assert "unknown --problem" in capsys.readouterr().err
    plot = str(tmp_path / "x.png")
    assert main(["solve", "--n", "8", "--method", "cg", "--maxiter", "2", "--rtol", "1e-12",
                 "--plot", plot]) == 1  # fmt: skip
    cap = capsys.readouterr()
    assert "NOT converged" in cap.out and "did not converge" in cap.err
