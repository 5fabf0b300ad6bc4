"""The solver contract: statuses for numerical trouble, SolverError for malformed arguments.

Each reproducer of a solver edge case found by fuzzing has a test here, plus the fuzz
driver itself on a small (default suite) and a large (slow) budget.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from pdesurrogates.errors import PdeSurrogatesError, SolverError
from pdesurrogates.solvers import SolveStatus, cg, dcdm, fcg, gallery, solve_with
from pdesurrogates.surrogates import ConjugateDirectionNet
from pdesurrogates.testing import fuzz_solvers

A8 = gallery.poisson2d(8)
N8 = A8.shape[0]


def _relres(A, b, x):
    return np.linalg.norm(b - A @ x) / np.linalg.norm(b)


@pytest.mark.parametrize("solver", [cg, fcg])
def test_rtol_zero_stops_at_maxiter(solver):
    res = solver(A8, np.ones(N8), rtol=0, maxiter=5)
    assert res.status is SolveStatus.MAXITER and res.n_iter == 5 and not res.converged


@pytest.mark.parametrize("solver", [cg, fcg])
def test_rtol_zero_stagnates_quickly_at_the_floor(solver):
    A = gallery.poisson2d(128)
    b = np.ones(A.shape[0])
    t0 = time.perf_counter()
    res = solver(A, b, rtol=0)
    assert time.perf_counter() - t0 < 20  # was over 60 s (10 n iterations)
    assert res.status is SolveStatus.STAGNATED and not res.converged
    assert res.n_iter < 600 and "floating-point floor" in res.message
    assert _relres(A, b, res.x) < 1e-10  # it did get to the floor


def test_exact_solution_with_rtol_zero_is_converged():
    res = cg(sp.identity(5, format="csr"), np.arange(1.0, 6.0), rtol=0)
    assert res.status is SolveStatus.CONVERGED and np.array_equal(res.x, np.arange(1.0, 6.0))


@pytest.mark.parametrize("solver", [cg, fcg])
@pytest.mark.parametrize("factor", [1e300, 1e-300, 1e-310, 2.0**-1060])
def test_right_hand_side_scaling(solver, factor):
    b = gallery.random_rhs(gallery.dirichlet_box((8, 8)), seed=2)
    ref = solver(A8, b, rtol=1e-10)
    res = solver(A8, b * factor, rtol=1e-10)
    assert res.n_iter == ref.n_iter
    if factor < 1e-307:  # subnormal b: only its own ~digits are left
        digits = 1e-3 if factor < 1e-316 else 1e-8
        np.testing.assert_allclose(res.x / factor, ref.x, rtol=0, atol=digits * abs(ref.x).max())
        return
    assert res.status is SolveStatus.CONVERGED
    np.testing.assert_allclose(res.x / factor, ref.x, rtol=1e-12, atol=0)
    assert res.relative_residual <= 1e-10


def test_right_hand_side_of_1e308():
    # fcg(A, full(n, 1e308)) used to say converged with x = 0
    A = sp.identity(N8, format="csr") * 4.0
    res = fcg(A, np.full(N8, 1e308))
    assert res.status is SolveStatus.CONVERGED and np.allclose(res.x, 0.25e308)
    res = fcg(A8, np.full(N8, 1e308))  # the true solution exceeds float64
    assert res.status is SolveStatus.NONFINITE and not res.converged
    assert "overflows float64" in res.message and "index" in res.message


def test_subnormal_b_is_not_zero():
    res = cg(sp.identity(3, format="csr"), np.array([5e-324, 0.0, 1e-310]))
    assert res.status is SolveStatus.CONVERGED and res.x[0] == 5e-324 and res.x[2] == 1e-310


@pytest.mark.parametrize("form", ["csr", "dense", "lil"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nonfinite_matrix_is_rejected_with_its_index(form, value):
    A = A8.tolil()
    A[3, 3] = value
    A = {"csr": A.tocsr(), "dense": A.toarray(), "lil": A}[form]
    for solver in (cg, fcg):
        with pytest.raises(SolverError, match=r"A holds NaN or Inf: A\[3, 3\] = (nan|inf)"):
            solver(A, np.ones(N8))


def test_nonfinite_operator_gives_a_status_with_index():
    A = A8.toarray()
    A[5, 6] = np.nan
    res = cg(sla.aslinearoperator(A), np.ones(N8))
    assert res.status is SolveStatus.NONFINITE and "A @ p holds nan at index 5" in res.message


@pytest.mark.parametrize("name", ["b", "x0"])
def test_nonfinite_vectors_are_rejected_with_their_index(name):
    v = np.ones(N8)
    v[17] = -np.inf
    args = {"b": (v, None), "x0": (np.ones(N8), v)}[name]
    with pytest.raises(SolverError, match=rf"{name} holds NaN or Inf: {name}\[17\] = -inf"):
        fcg(A8, *args)


def test_preconditioner_nan_is_reported_with_index():
    def bad(r):
        z = r.copy()
        z[9] = np.nan
        return z

    res = cg(A8, np.ones(N8), M=bad)
    assert res.status is SolveStatus.NONFINITE
    assert "the preconditioner M returned nan at index 9" in res.message
    res = fcg(A8, np.ones(N8), M=bad, rtol=1e-8)  # falls back to the residual: converges
    assert res.converged and res.info["nonfinite_preconditioner"] == (1, 9)
    assert "first at index 9 in iteration 1" in res.message


@pytest.mark.parametrize("solver", [cg, fcg])
def test_not_spd_systems_return_a_status(solver):
    b = np.ones(N8)
    indefinite = A8 - 2.0 * sp.identity(N8)  # positive diagonal, indefinite
    res = solver(indefinite, b)
    assert res.status is SolveStatus.INDEFINITE and "p^T A p" in res.message
    nonsym = A8.tolil()
    nonsym[0, 5] = 1.0
    res = solver(nonsym.tocsr(), b)
    assert res.status is SolveStatus.NONSYMMETRIC and "A[0, 5] = 1 but A[5, 0] = 0" in res.message
    singular = sp.diags([1.0, 0.0, 2.0]).tocsr()  # and inconsistent
    res = solver(singular, np.ones(3))
    assert res.status is SolveStatus.INDEFINITE and "A[1, 1] = 0 <= 0" in res.message
    # the same singular system behind an operator: no up-front check, no convergence
    res = solver(sla.aslinearoperator(singular), np.ones(3))
    assert not res.converged and res.status in (SolveStatus.INDEFINITE, SolveStatus.STAGNATED)


def test_singular_inconsistent_semidefinite_stagnates():
    # Neumann Laplacian (constants in the kernel) with a mean-carrying b: no solution
    n = 16
    L = sp.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1]).tolil()
    L[0, 0] = L[n - 1, n - 1] = 1.0
    res = cg(L.tocsr(), np.ones(n), rtol=1e-8)
    assert not res.converged and res.status in (SolveStatus.STAGNATED, SolveStatus.INDEFINITE)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rtol": -1e-6}, "rtol must be a finite number >= 0"),
        ({"rtol": float("nan")}, "rtol must be"),
        ({"atol": float("inf")}, "atol must be"),
        ({"maxiter": -1}, "maxiter must be >= 0"),
        ({"maxiter": 2.5}, "maxiter must be an integer"),
        ({"M": np.eye(3)}, r"preconditioner M has shape \(3, 3\), expected \(64, 64\)"),
        ({"M": lambda r: r[:3]}, "preconditioner M returned 3 values, expected 64"),
    ],
)
def test_bad_arguments_raise_solver_error(kwargs, match):
    for solver in (cg, fcg):
        with pytest.raises(SolverError, match=match):
            solver(A8, np.ones(N8), **kwargs)


@pytest.mark.parametrize(
    ("A", "b", "match"),
    [
        (None, np.ones(3), "A is None"),
        ([[1.0, 0.0], [0.0, 1.0]], np.ones(2), "A must be a 2-D numpy array.*got list"),
        (np.ones((2, 3)), np.ones(2), "square"),
        (np.ones((2, 2, 2)), np.ones(2), "2-D"),
        (np.eye(2) * 1j, np.ones(2), "A is complex"),
        (np.eye(2), np.ones(2) * 1j, "b is complex"),
        (np.eye(2), np.array(["a", "b"]), "b must hold real numbers"),
        (np.eye(2), np.ones((2, 2)), r"b has shape \(2, 2\)"),
    ],
)
def test_malformed_systems_raise_solver_error(A, b, match):
    with pytest.raises(SolverError, match=match) as info:
        cg(A, b)
    assert isinstance(info.value, PdeSurrogatesError) and isinstance(info.value, ValueError)


def test_maxiter_zero_returns_x0():
    x0 = np.full(N8, 0.5)
    res = fcg(A8, np.ones(N8), x0, maxiter=0)
    assert res.status is SolveStatus.MAXITER and np.array_equal(res.x, x0) and res.n_iter == 0


def test_dcdm_contract_with_a_callable_model():
    p = gallery.named_problem("poisson2d", 8)
    res = dcdm(p, np.ones(p.n), lambda t: t, shape=p.shape, rtol=1e-8)
    assert res.converged and _relres(p.A, np.ones(p.n), res.x) <= 1e-8
    with pytest.raises(SolverError, match="the model returned 3 values"):
        dcdm(p, np.ones(p.n), lambda t: t.reshape(-1)[:3], shape=p.shape)
    with pytest.raises(SolverError, match="n_orth"):
        dcdm(p, np.ones(p.n), ConjugateDirectionNet(dim=2, width=0), n_orth=0)
    res = dcdm(p, np.full(p.n, 1e-310), ConjugateDirectionNet(dim=2, width=0), rtol=1e-6)
    assert res.converged and res.x.max() > 0


def test_solve_with_contract():
    p = gallery.named_problem("poisson2d", 8)
    b = np.ones(p.n)
    bad = p.A.tolil()
    bad[2, 2] = -1.0
    import dataclasses

    q = dataclasses.replace(p, A=bad.tocsr())
    for method in ("cg", "jacobi", "ic", "amg"):
        res = solve_with(q, b, method)  # Jacobi/IC would refuse the diagonal: a status
        assert res.status is SolveStatus.INDEFINITE and "A[2, 2] = -1" in res.message
        assert res.info["solve_method"] == method
    with pytest.raises(SolverError, match=r"problem must be a gallery Problem .* or a sparse"):
        solve_with(p.A.toarray(), b, "cg")  # a dense array: neither
    assert solve_with(p.A, b, "cg").n_iter == solve_with(p, b, "cg").n_iter  # a bare matrix
    with pytest.raises(SolverError, match="rtol"):
        solve_with(p, b, "ic", rtol=-1)
    with pytest.raises(SolverError, match=r"b holds NaN or Inf: b\[0\]"):
        solve_with(p, np.r_[np.nan, b[1:]], "amg")
    res = solve_with(p, b * 1e300, "ic", rtol=1e-8)
    assert res.converged and res.relative_residual <= 1e-8


def test_fuzz_solvers_small_budget(tmp_path):
    out = fuzz_solvers(60, seed=0, workdir=tmp_path)
    bad = {k: out[k] for k in ("traceback", "crash", "hang", "silent_acceptance")}
    assert bad == dict.fromkeys(bad, 0), out["examples"]
    assert out["cases"] == 60 and out["rejected_clearly"] > 10 and out["accepted_correct"] > 10
    assert (tmp_path / "fuzz_solvers.json").is_file()


@pytest.mark.slow
def test_fuzz_solvers_big_budget():
    out = fuzz_solvers(300, seed=1)
    bad = {k: out[k] for k in ("traceback", "crash", "hang", "silent_acceptance")}
    assert bad == dict.fromkeys(bad, 0), out["examples"]
    assert out["cases"] == 300
