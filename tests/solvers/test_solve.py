"""solve_with (method by name, model objects only) and gallery.named_problem."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg as sla

from pdesurrogates.solvers import SOLVE_METHODS, SolveStatus, gallery, solve_with
from pdesurrogates.surrogates import ConjugateDirectionNet, LearnedVCycle


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
    model = {"dcdm": ConjugateDirectionNet(dim=2, width=0), "vcycle": LearnedVCycle(dim=2)}
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


def test_maxiter_status():
    p = gallery.named_problem("poisson2d", 16)
    res = solve_with(p, np.ones(p.n), "jacobi", rtol=1e-12, maxiter=3)
    assert res.status is SolveStatus.MAXITER and res.n_iter == 3
