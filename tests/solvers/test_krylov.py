"""cg / fcg: iterate-for-iterate agreement with scipy, flexibility, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from pdesurrogates.errors import SolverError
from pdesurrogates.solvers import fcg, gallery, jacobi
from pdesurrogates.solvers import krylov as K


def _scipy_iterates(A, b, **kw):
    xs = []
    x, info = sla.cg(A, b, callback=lambda xk: xs.append(xk.copy()), **kw)
    return x, info, xs


@pytest.mark.parametrize("precond", [None, "jacobi"])
@pytest.mark.parametrize("x0", [None, "random"])
def test_cg_matches_scipy_iterate_for_iterate(precond, x0):
    p = gallery.variable_coefficient(np.exp(np.random.default_rng(0).normal(size=(20, 20))))
    A = p.A
    b = gallery.random_rhs(p, seed=1)
    x0v = None if x0 is None else np.random.default_rng(2).normal(size=A.shape[0])
    M = None if precond is None else jacobi(A)
    x_ref, info, xs_ref = _scipy_iterates(A, b, x0=x0v, rtol=1e-8, M=M)
    xs = []
    res = K.cg(A, b, x0v, rtol=1e-8, M=M, callback=lambda xk: xs.append(xk.copy()))
    assert info == 0 and res.converged
    assert res.n_iter == len(xs_ref) == len(xs)
    for a, c in zip(xs, xs_ref, strict=True):
        np.testing.assert_allclose(a, c, rtol=0, atol=1e-12 * np.abs(c).max())
    np.testing.assert_allclose(res.x, x_ref, rtol=0, atol=1e-12)
    # history holds true residuals: last one meets the tolerance
    assert res.residuals.shape == (res.n_iter + 1,)
    assert res.residuals[-1] == pytest.approx(np.linalg.norm(b - A @ res.x), rel=1e-12)
    assert res.residuals[-1] <= 1e-8 * np.linalg.norm(b) * 1.0001


def test_cg_accepts_dense_sparse_and_linear_operator():
    A = gallery.poisson2d(8)
    b = np.ones(64)
    ref = sla.spsolve(A.tocsc(), b)
    for op in (A, A.toarray(), sla.aslinearoperator(A), sp.csr_array(A)):
        res = K.cg(op, b, rtol=1e-12)
        np.testing.assert_allclose(res.x, ref, atol=1e-9)


def test_cg_maxiter_returns_not_converged():
    A = gallery.poisson2d(16)
    res = K.cg(A, np.ones(256), rtol=1e-10, maxiter=5)
    assert not res.converged and res.n_iter == 5
    assert "maxiter=5" in res.message


def test_cg_zero_rhs():
    res = K.cg(gallery.poisson2d(4), np.zeros(16))
    assert res.converged and res.n_iter == 0 and not res.x.any()


def test_cg_bad_input():
    A = gallery.poisson2d(4)
    with pytest.raises(SolverError, match="square"):
        K.cg(sp.random(4, 5, density=0.5, random_state=0), np.ones(4))
    with pytest.raises(SolverError, match="shape"):
        K.cg(A, np.ones(15))
    b = np.ones(16)
    b[3] = np.nan
    with pytest.raises(SolverError, match=r"b holds NaN or Inf: b\[3\] = nan"):
        K.cg(A, b)
    assert issubclass(SolverError, ValueError)  # old `except ValueError` code keeps working


def test_cg_not_spd_gives_a_status_before_iterating():
    # a non-symmetric matrix and a non-positive diagonal are numerical facts, not errors
    N = sp.csr_matrix(np.triu(np.ones((4, 4))))
    res = K.cg(N, np.ones(4))
    assert res.status is K.SolveStatus.NONSYMMETRIC and not res.converged and res.n_iter == 0
    assert "A[0, 1] = 1 but A[1, 0] = 0" in res.message and "gmres" in res.message
    res = K.cg(-A_POISSON, np.ones(16))
    assert res.status is K.SolveStatus.INDEFINITE and "A[0, 0] = -4 <= 0" in res.message
    assert np.array_equal(res.x, np.zeros(16)) and res.residuals.shape == (1,)


A_POISSON = gallery.poisson2d(4)


def test_cg_detects_indefinite_operator_in_iteration():
    # positive diagonal, but indefinite: p = r = (1, -1), p^T A p = -2 <= 0
    A = np.array([[1.0, 2.0], [2.0, 1.0]])
    res = K.cg(A, np.array([1.0, -1.0]))
    assert res.status is K.SolveStatus.INDEFINITE and not res.converged
    assert res.n_iter == 0 and "p^T A p = -2 <= 0" in res.message
    assert "not positive definite" in res.message


def test_status_converged_and_maxiter():
    A = gallery.poisson2d(16)
    b = np.ones(256)
    res = K.cg(A, b, rtol=1e-10)
    assert res.status is K.SolveStatus.CONVERGED and res.status == "converged"
    assert res.converged
    res = fcg(A, b, rtol=1e-10, maxiter=3)
    assert res.status is K.SolveStatus.MAXITER and not res.converged and res.n_iter == 3
    assert K.cg(A, np.zeros(256)).status is K.SolveStatus.CONVERGED


def test_status_indefinite_preconditioner_and_nonfinite():
    A = gallery.poisson2d(8)
    b = np.ones(64)
    res = K.cg(A, b, M=-np.eye(64))  # r^T M r < 0
    assert res.status is K.SolveStatus.INDEFINITE and "preconditioner" in res.message
    res = K.cg(A, b, M=lambda r: np.full_like(r, np.nan))
    assert res.status is K.SolveStatus.NONFINITE and not res.converged
    # fcg on an indefinite matrix: the first residual direction has p^T A p < 0
    E = np.array([[1.0, 2.0], [2.0, 1.0]])
    res = fcg(E, np.array([1.0, -1.0]))
    assert res.status is K.SolveStatus.INDEFINITE and res.n_iter == 0


def test_solve_result_status_is_consistent():
    x = np.zeros(2)
    r = K.SolveResult(x, True, 0, np.zeros(1), "ok")
    assert r.status is K.SolveStatus.CONVERGED
    assert K.SolveResult(x, False, 3, np.zeros(4), "cap").status is K.SolveStatus.MAXITER
    with pytest.raises(ValueError, match="contradicts"):
        K.SolveResult(x, True, 0, np.zeros(1), "x", status=K.SolveStatus.BREAKDOWN)


def test_fcg_equals_cg_with_linear_preconditioner():
    A = gallery.poisson2d(24)
    b = gallery.random_rhs(gallery.dirichlet_box((24, 24)))
    M = jacobi(A)
    r1 = K.cg(A, b, rtol=1e-8, M=M)
    r2 = fcg(A, b, rtol=1e-8, M=M, m=2)
    assert abs(r1.n_iter - r2.n_iter) <= 1
    np.testing.assert_allclose(r2.x, r1.x, atol=1e-6 * np.abs(r1.x).max())


def test_fcg_converges_with_nonlinear_preconditioner_where_cg_fails():
    # Jacobi times a random multiplicative perturbation per call: nonlinear, non-symmetric
    A = gallery.poisson2d(32)
    b = np.ones(A.shape[0])
    rng = np.random.default_rng(0)
    d = A.diagonal()

    def noisy(r):
        return r / d * (1 + 0.5 * rng.uniform(-1, 1, size=r.shape))

    res = fcg(A, b, rtol=1e-8, M=noisy, m=2, maxiter=2000)
    assert res.converged
    assert np.linalg.norm(b - A @ res.x) <= 1e-8 * np.linalg.norm(b)
    rng = np.random.default_rng(0)
    _, info = sla.cg(A, b, rtol=1e-8, maxiter=res.n_iter, M=sla.LinearOperator(A.shape, noisy))
    assert info > 0  # plain CG did not make it in the same number of steps


def test_fcg_falls_back_on_nan_and_non_descent():
    A = gallery.poisson2d(10)
    b = np.ones(100)
    calls = {"n": 0}

    def bad(r):
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            return np.full_like(r, np.nan)
        if calls["n"] % 3 == 1:
            return -r  # ascent direction
        return r

    res = fcg(A, b, rtol=1e-8, M=bad)
    assert res.converged
    assert res.info["fallbacks"] > 0
    assert "fell back" in res.message
    with pytest.raises(ValueError, match="m "):
        fcg(A, b, m=0)
