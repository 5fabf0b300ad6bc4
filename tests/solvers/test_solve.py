"""solve_with (method by name, model objects only) and gallery.named_problem."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from pdesurrogates.errors import SolverError
from pdesurrogates.solvers import SOLVE_METHODS, SolveStatus, cg, gallery, solve_with
from pdesurrogates.solvers.reference import fem_family
from pdesurrogates.surrogates import (
    ConjugateDirectionNet,
    LearnedVCycle,
    MgNO,
    NeuralAMG,
    NeuralIncompleteCholesky,
)


@pytest.mark.parametrize("name", gallery.PROBLEM_NAMES)
def test_named_problem(name):
    p = gallery.named_problem(name, 6)
    assert p.dim == (3 if name.endswith("3d") else 2) and p.shape == (6,) * p.dim
    assert abs(p.A - p.A.T).max() == 0 and p.A.diagonal().min() > 0
    with pytest.raises(ValueError, match="n must be >= 4"):
        gallery.named_problem(name, 3)


def test_named_problem_bad_name():
    with pytest.raises(ValueError, match="unknown problem 'nope'; choose one of poisson2d"):
        gallery.named_problem("nope", 8)


@pytest.mark.parametrize("method", SOLVE_METHODS)
def test_solve_with_every_method_reaches_the_direct_solution(method):
    p = gallery.named_problem("smoke2d", 16)
    b = gallery.random_rhs(p, seed=3)
    model = {
        "dcdm": ConjugateDirectionNet(dim=2, width=0),
        "vcycle": LearnedVCycle(dim=2),
        "neural_ic": NeuralIncompleteCholesky(seed=0),
        "neural_amg": NeuralAMG(seed=0),
    }
    res = solve_with(p, b, method, model=model.get(method), rtol=1e-9)
    assert res.status is SolveStatus.CONVERGED and res.info["solve_method"] == method
    ref = sla.spsolve(p.A.tocsc(), b)
    np.testing.assert_allclose(res.x, ref, rtol=0, atol=1e-7 * np.abs(ref).max())
    assert res.info["setup_seconds"] >= 0 and res.info["solve_seconds"] > 0


def test_vcycle_runs_pcg_never_dcdm():
    p = gallery.named_problem("poisson2d", 32)
    res = solve_with(p, gallery.random_rhs(p), "vcycle", model=LearnedVCycle(dim=2))
    assert res.info["method"] == "cg" and res.info["model_class"] == "LearnedVCycle"
    assert "fallbacks" not in res.info and res.n_iter <= 8


def test_model_checks():
    p = gallery.named_problem("poisson2d", 8)
    b = np.ones(p.n)
    net, vc = ConjugateDirectionNet(dim=2, width=0), LearnedVCycle(dim=2)
    with pytest.raises(ValueError, match=r"takes no model.*dcdm, vcycle"):
        solve_with(p, b, "ic", model=vc)
    with pytest.raises(ValueError, match=r"needs a LearnedVCycle.*ConjugateDirectionNet"):
        solve_with(p, b, "vcycle", model=net)
    with pytest.raises(ValueError, match=r"ConjugateDirectionNet.*model is a LearnedVCycle"):
        solve_with(p, b, "dcdm", model=vc)
    with pytest.raises(ValueError, match="needs a model"):
        solve_with(p, b, "vcycle")
    with pytest.raises(ValueError, match="3D but the problem"):
        solve_with(p, b, "vcycle", model=LearnedVCycle(dim=3))
    with pytest.raises(ValueError, match="unknown method 'gmres'"):
        solve_with(p, b, "gmres")
    nic = NeuralIncompleteCholesky(seed=0)
    with pytest.raises(
        ValueError, match=r"'neural_ic' needs a learned factorisation.*use method 'vcycle'"
    ):
        solve_with(p, b, "neural_ic", model=vc)
    with pytest.raises(ValueError, match=r"'neural_ic' needs a learned.*use method 'dcdm'"):
        solve_with(p, b, "neural_ic", model=net)
    for method in ("vcycle", "dcdm"):
        with pytest.raises(
            ValueError, match="use method 'neural_ic' for a NeuralIncompleteCholesky"
        ):
            solve_with(p, b, method, model=nic)
    with pytest.raises(ValueError, match=r"needs a model \(a NeuralIncompleteCholesky\)"):
        solve_with(p, b, "neural_ic")
    # a network that is no preconditioner (an operator surrogate) is refused by every
    # method, and no message recommends another method for it
    mgno = MgNO(channels=4)
    for method in ("dcdm", "vcycle", "neural_ic"):
        with pytest.raises(ValueError, match=r"a MgNO is not a preconditioner model; train"):
            solve_with(p, b, method, model=mgno)


def test_2d_model_on_3d_problem_and_the_reverse_are_refused():
    p3 = gallery.named_problem("poisson3d", 6)
    p2 = gallery.named_problem("poisson2d", 8)
    for p, wrong in ((p3, 2), (p2, 3)):
        b = np.ones(p.n)
        for method, model in (
            ("vcycle", LearnedVCycle(dim=wrong)),
            ("dcdm", ConjugateDirectionNet(dim=wrong, width=0)),
        ):
            with pytest.raises(SolverError, match=f"is {wrong}D but the problem .* is {p.dim}D"):
                solve_with(p, b, method, model=model)
    # a bare gallery matrix carries its grid: the same check
    with pytest.raises(SolverError, match=r"is 2D but the matrix \(grid \(6, 6, 6\)\) is 3D"):
        solve_with(gallery.poisson3d(6), np.ones(216), "vcycle", model=LearnedVCycle(dim=2))


def test_neural_ic_on_a_bare_fem_matrix_matches_the_python_api():
    A = fem_family("lognormal", 24, seed=5).A  # an unstructured P1 matrix, no grid
    b = np.random.default_rng(1).normal(size=A.shape[0])
    model = NeuralIncompleteCholesky(seed=0)
    res = solve_with(A, b, "neural_ic", model=model, rtol=1e-8)
    ref = model.precondition(A).solve(b, rtol=1e-8)
    plain = solve_with(A, b, "cg", rtol=1e-8)
    assert res.converged and res.info["model_class"] == "NeuralIncompleteCholesky"
    assert res.n_iter == ref.n_iter and res.n_iter < plain.n_iter / 4
    np.testing.assert_allclose(
        res.x, sla.spsolve(A.tocsc(), b), rtol=0, atol=1e-6 * abs(res.x).max()
    )
    assert res.n_iter == cg(A, b, rtol=1e-8, M=model.precondition(A)).n_iter


@pytest.mark.parametrize("method", ["vcycle", "dcdm"])
def test_grid_methods_refuse_a_permuted_matrix_naming_the_algebraic_ones(method):
    A = gallery.poisson2d(16)
    perm = np.random.default_rng(0).permutation(A.shape[0])
    P = sp.csr_matrix(A[perm][:, perm])
    model = LearnedVCycle(dim=2) if method == "vcycle" else ConjugateDirectionNet(dim=2, width=0)
    with pytest.raises(SolverError, match="not neighbours") as err:
        solve_with(P, np.ones(256), method, model=model)
    for name in ("NeuralIncompleteCholesky", "'neural_ic'", "IncompleteCholesky (IC(0))", "AMG"):
        assert name in str(err.value)
    # the same matrix unpermuted is a stencil on its grid and is solved
    assert solve_with(A, np.ones(256), method, model=model, rtol=1e-6).converged


def test_maxiter_status():
    p = gallery.named_problem("poisson2d", 16)
    res = solve_with(p, np.ones(p.n), "jacobi", rtol=1e-12, maxiter=3)
    assert res.status is SolveStatus.MAXITER and res.n_iter == 3
