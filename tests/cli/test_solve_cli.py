"""The 'solve', 'train dcdm', 'train vcycle' and 'train neural-ic' commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pdesurrogates.cli import _solve, main


def test_cli_name_lists_match_the_library():
    from pdesurrogates.solvers import MODEL_METHODS, SOLVE_METHODS, gallery

    assert _solve._PROBLEMS == gallery.PROBLEM_NAMES
    assert _solve._METHODS == SOLVE_METHODS and _solve._MODEL_METHODS == MODEL_METHODS


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
    if method == "vcycle":  # the untrained geometric V-cycle, as PCG
        assert "untrained (geometric) V-cycle" in out and "model=LearnedVCycle" in out
        assert it <= 8


def test_train_dcdm_then_solve_smoke(tmp_path, capsys):
    run = tmp_path / "runs" / "d2"
    code = main(
        [
            "train", "dcdm", "--dim", "2", "--grid", "16", "-o", str(run), "--samples", "24",
            "--lanczos", "20", "--epochs", "1", "--width", "2", "--boundary", "smoke", "-q",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr()
    cfg = json.loads((run / "model" / "config.json").read_text())
    assert cfg["class"] == "ConjugateDirectionNet"
    assert cfg["metadata"]["trained_on"] == {"problem": "smoke_domain", "shape": [16, 16]}
    assert cfg["config"]["boundary"] == ["neumann", "neumann", "neumann", "dirichlet"]
    # the training vectors are a side file of the run: inside its directory, nowhere else
    assert (run / "ritz.h5").is_file()
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["d2"]
    capsys.readouterr()
    plot = tmp_path / "p.png"
    code = main(
        ["solve", "--problem", "smoke2d", "--n", "24", "--method", "dcdm", "--model", str(run),
         "--rtol", "1e-6", "--plot", str(plot)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "method=dcdm model=ConjugateDirectionNet: converged" in out
    assert plot.is_file()
    # a 2D model on a 3D problem is a clear error
    code = main(["solve", "--problem", "poisson3d", "--n", "8", "--method", "dcdm",
                 "--model", str(run)])  # fmt: skip
    assert code == 1
    assert "2D" in capsys.readouterr().err
    # a DCDM network is not a V-cycle: never run DCDM under --method vcycle
    code = main(["solve", "--n", "16", "--method", "vcycle", "--model", str(run),
                 "--plot", str(plot)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "LearnedVCycle" in err and "ConjugateDirectionNet" in err


def test_train_vcycle_then_solve(tmp_path, capsys):
    run = tmp_path / "runs" / "vc"
    code = main(["train", "vcycle", "--grid", "16", "--steps", "30", "--coarse-cells", "16",
                 "-o", str(run), "-q"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["class"] == "LearnedVCycle" and cfg["config"]["coarse_cells"] == 16
    meta = cfg["metadata"]
    assert meta["trained_on"] == {"problem": "dirichlet_box", "shape": [16, 16]}
    assert meta["history"][-1]["rho"] < meta["history"][0]["rho"]
    plot = tmp_path / "p.png"
    code = main(["solve", "--n", "32", "--method", "vcycle", "--model", str(run),
                 "--rtol", "1e-8", "--plot", str(plot)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "method=vcycle model=LearnedVCycle: converged" in out and "untrained" not in out
    assert int(out.split("iterations=")[1].split(",")[0]) <= 12
    # a V-cycle is not a DCDM direction network
    code = main(["solve", "--n", "16", "--method", "dcdm", "--model", str(run),
                 "--plot", str(plot)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "LearnedVCycle" in err and "ConjugateDirectionNet" in err


@pytest.mark.parametrize("method", ["cg", "jacobi", "ic", "amg"])
def test_model_with_a_method_that_takes_none_is_an_error(tmp_path, capsys, method):
    code = main(["solve", "--n", "8", "--method", method, "--model", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"--method {method}" in err and "dcdm, vcycle" in err


def test_solve_errors(capsys, tmp_path):
    assert main(["solve", "--method", "dcdm", "--n", "8"]) == 1
    assert "--model" in capsys.readouterr().err
    assert main(["solve", "--problem", "nope", "--n", "8"]) == 2
    assert "unknown problem 'nope'" in capsys.readouterr().err
    plot = str(tmp_path / "x.png")
    assert main(["solve", "--n", "8", "--method", "cg", "--maxiter", "2", "--rtol", "1e-12",
                 "--plot", plot]) == 1  # fmt: skip
    cap = capsys.readouterr()
    assert "NOT converged (maxiter)" in cap.out and "did not converge" in cap.err


def test_solve_tolerances(capsys, tmp_path):
    plot = str(tmp_path / "x.png")
    assert main(["solve", "--n", "8", "--rtol", "-1", "--plot", plot]) == 2
    err = capsys.readouterr().err
    assert "'--rtol'" in err and "rtol must be a finite number >= 0" in err
    assert "Traceback" not in err
    assert main(["solve", "--n", "8", "--maxiter", "-2", "--plot", plot]) == 2
    err = capsys.readouterr().err
    assert "'--maxiter'" in err and "maxiter must be >= 0" in err
    assert not Path(plot).exists()
    # rtol 0 is allowed: CG stops at the floating-point floor with a status, quickly
    assert main(["solve", "--n", "16", "--rtol", "0", "--plot", plot]) == 1
    cap = capsys.readouterr()
    assert "NOT converged (stagnated)" in cap.out and "floating-point floor" in cap.err


GRAPH_PRECONDITIONERS = {
    # CLI command, training options, saved class, unseen FEM matrix, least speed-up over CG
    "neural_ic": (
        "neural-ic",
        ["--matrices", "6", "--steps", "3", "--init-steps", "15"],
        "NeuralIncompleteCholesky",
        ("anisotropic", 20, 123),
        3,
    ),
    "neural_amg": (
        "neural-amg",
        ["--matrices", "4", "--steps", "3"],
        "NeuralAMG",
        ("lognormal", 24, 321),
        5,
    ),
}


@pytest.mark.parametrize("method", sorted(GRAPH_PRECONDITIONERS))
def test_train_a_graph_preconditioner_then_solve_an_unseen_fem_matrix_in_a_fresh_process(
    method, tmp_path, capsys
):
    import os
    import subprocess
    import sys

    import scipy.sparse as sp

    import pdesurrogates
    from pdesurrogates.solvers import SmoothedAggregation, cg
    from pdesurrogates.solvers.reference import fem_family

    command, options, cls, (family, cells, seed), speedup = GRAPH_PRECONDITIONERS[method]
    run = tmp_path / method
    code = main(
        ["train", command, "-o", str(run), *options, "--sizes", "6,10", "--latent", "8",
         "--rounds", "2", "-q"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr()
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["class"] == cls
    A = fem_family(family, cells, domain="lshape", seed=seed).A  # a mesh never seen
    path = tmp_path / "A.npz"
    sp.save_npz(path, A)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    src = str(Path(pdesurrogates.__file__).resolve().parents[1])
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(
        [sys.executable, "-m", "pdesurrogates", "solve", "--matrix", str(path), "--method",
         method, "--rtol", "1e-8", "--seed", "4", "--plot", str(tmp_path / f"{method}.png"),
         "--model", str(run)],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"A.npz ({A.shape[0]} unknowns) method={method}" in done.stdout
    it = int(done.stdout.split("iterations=")[1].split(",")[0])
    b = np.random.default_rng(4).standard_normal(A.shape[0])  # the CLI's --rhs random
    model = pdesurrogates.load(run)
    ref = cg(A, b, rtol=1e-8, M=model.precondition(A))
    assert ref.converged and it == ref.n_iter
    assert it < cg(A, b, rtol=1e-8).n_iter / speedup
    if method != "neural_amg":
        return
    png = str(tmp_path / "plain.png")  # no --model: the untrained one, plain SA (in-process)
    args = ["solve", "--matrix", str(path), "--method", "neural_amg", "--rtol", "1e-8"]
    assert main([*args, "--seed", "4", "--plot", png]) == 0
    out = capsys.readouterr().out
    it_plain = int(out.split("iterations=")[1].split(",")[0])
    assert "untrained NeuralAMG" in out
    assert it_plain == cg(A, b, rtol=1e-8, M=SmoothedAggregation(A)).n_iter


def test_solve_matrix_file_errors(tmp_path, capsys):
    import scipy.sparse as sp

    from pdesurrogates.solvers import gallery

    assert main(["solve", "--matrix", str(tmp_path / "none.npz")]) == 1
    assert "none.npz: no such file" in capsys.readouterr().err
    bad = tmp_path / "A.txt"
    bad.write_text("1 2 3")
    assert main(["solve", "--matrix", str(bad)]) == 1
    assert "unknown format '.txt'" in capsys.readouterr().err
    A = gallery.poisson2d(8)
    perm = np.random.default_rng(0).permutation(64)
    path = tmp_path / "perm.npz"
    sp.save_npz(path, sp.csr_matrix(A[perm][:, perm]))
    code = main(
        ["solve", "--matrix", str(path), "--method", "vcycle", "--plot", str(tmp_path / "p.png")]
    )
    err = capsys.readouterr().err
    assert code == 1 and "not neighbours" in err and "neural_ic" in err
    assert main(["solve", "--matrix", str(path), "--method", "neural_ic"]) == 1
    assert "--method neural_ic needs --model" in capsys.readouterr().err
    assert main(["solve", "--matrix", str(path), "--rhs", "smooth"]) == 1
    assert "--rhs smooth needs a grid" in capsys.readouterr().err


def test_neural_amg_refusals_on_the_cli(tmp_path, capsys):
    import scipy.sparse as sp

    from pdesurrogates.solvers import gallery

    A = gallery.poisson2d(8)
    path = tmp_path / "ns.npz"
    sp.save_npz(path, sp.csr_matrix(A + sp.diags(np.ones(63), 1)))
    png = str(tmp_path / "p.png")
    assert main(["solve", "--matrix", str(path), "--method", "neural_amg", "--plot", png]) == 1
    cap = capsys.readouterr()  # a non-symmetric A is reported, never preconditioned
    assert "NOT converged (nonsymmetric)" in cap.out and "A is not symmetric" in cap.err
    assert main(["solve", "--matrix", str(path), "--method", "sa", "--model", str(tmp_path)]) == 1
    assert "--model is not used by --method sa" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "option", "words"),
    [
        (["--method", "foo"], "--method", ["'foo'", "cg, jacobi", "neural_amg"]),
        (["--problem", "foo"], "--problem", ["'foo'", "poisson2d, poisson3d"]),
        (["--n", "2"], "--n", [">= 4; got 2"]),
        (["--threads", "0"], "--threads", [">= 1; got 0"]),
        (["--maxiter", "-1"], "--maxiter", [">= 0", "got -1"]),
        (["--rtol", "-1"], "--rtol", [">= 0", "got -1.0"]),
        (["--rtol", "nan"], "--rtol", ["finite"]),
        (["--rhs", "bumpy"], "--rhs", ["'random' or 'smooth'"]),
    ],
)
def test_solve_bad_option_values_are_usage_errors(tmp_path, capsys, args, option, words):
    plot = tmp_path / "p.png"
    assert main(["solve", "--n", "8", *args, "--plot", str(plot)]) == 2
    cap = capsys.readouterr()
    assert f"Invalid value for '{option}'" in cap.err, cap.err
    assert all(w in cap.err for w in words), cap.err
    assert "iterations=" not in cap.out and not plot.exists()  # refused before the solve


def test_solve_plot_suffix_is_checked_before_the_solve(tmp_path, capsys):
    plot = tmp_path / "out.xyz"
    assert main(["solve", "--n", "8", "--plot", str(plot)]) == 2
    cap = capsys.readouterr()
    assert "Invalid value for '--plot'" in cap.err and "'.xyz'" in cap.err
    assert ".png" in cap.err and ".pdf" in cap.err and ".svg" in cap.err
    assert "iterations=" not in cap.out and list(tmp_path.iterdir()) == []
    # a supported suffix other than .png is written in its own format
    svg = tmp_path / "out.svg"
    assert main(["solve", "--n", "8", "--plot", str(svg)]) == 0
    assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()


def test_solve_refuses_a_complex_matrix(tmp_path, capsys):
    import warnings

    import scipy.sparse as sp

    from pdesurrogates.solvers import gallery

    A = sp.csr_matrix(gallery.poisson2d(8), dtype=complex) * (1 + 1j)
    path = tmp_path / "C.npz"
    sp.save_npz(path, A)
    before = path.read_bytes()
    plot = tmp_path / "p.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning: refused before any cast
        code = main(["solve", "--matrix", str(path), "--plot", str(plot)])
    cap = capsys.readouterr()
    assert code == 1 and f"--matrix {path}" in cap.err
    assert "complex" in cap.err and "real symmetric positive definite" in cap.err
    assert "iterations=" not in cap.out and not plot.exists()
    assert path.read_bytes() == before


def test_solve_refuses_a_malformed_npz_naming_the_file(tmp_path, capsys):
    import zipfile

    path = tmp_path / "obj.npz"
    with zipfile.ZipFile(path, "w") as zf:  # a zip whose format.npy is empty
        zf.writestr("format.npy", b"")
    before = path.read_bytes()
    assert main(["solve", "--matrix", str(path), "--plot", str(tmp_path / "p.png")]) == 1
    err = capsys.readouterr().err
    assert f"--matrix {path}: cannot read a sparse matrix" in err
    assert "scipy.sparse.save_npz" in err and "unexpected" not in err and "bug" not in err
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("args", "option"),
    [(["--dim", "4"], "--dim"), (["--grid", "4"], "--grid"), (["--boundary", "x"], "--boundary")],
)
def test_train_dcdm_bad_option_values_are_usage_errors(tmp_path, capsys, args, option):
    run = tmp_path / "run"
    assert main(["train", "dcdm", "-o", str(run), *args, "-q"]) == 2
    assert f"Invalid value for '{option}'" in capsys.readouterr().err
    assert not run.exists()
