"""Our smoothed-aggregation AMG: pyamg as the oracle, SPD checks, mesh independence."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from pdesurrogates.errors import SolverError
from pdesurrogates.solvers import SmoothedAggregation, gallery, solve_with
from pdesurrogates.solvers._aggregation import standard_aggregation, strength
from pdesurrogates.solvers.reference import fem_family


def _pcg_iters(A, M, seed=0):
    b = np.random.default_rng(seed).normal(size=A.shape[0])
    count = [0]
    x, info = sla.cg(A, b, rtol=1e-6, maxiter=1000, M=M, callback=lambda xk: count.append(1))
    assert info == 0 and np.linalg.norm(b - A @ x) <= 1e-6 * np.linalg.norm(b) * 1.01
    return len(count) - 1


def _matrices():
    out = [("poisson2d", gallery.poisson2d(48))]
    for kind in ("poisson", "lognormal", "anisotropic"):
        out.append((kind, fem_family(kind, 24, domain="lshape", seed=11).A))
    return out


@pytest.mark.parametrize("name, A", _matrices(), ids=[n for n, _ in _matrices()])
def test_untrained_hierarchy_matches_pyamg_sa(name, A):
    pyamg = pytest.importorskip("pyamg")
    ours = SmoothedAggregation(A)
    ml = pyamg.smoothed_aggregation_solver(A)
    # the same aggregation: identical level sizes above the coarsest
    assert [lev.A.shape[0] for lev in ours.levels[:3]] == [lev.A.shape[0] for lev in ml.levels[:3]]
    it_ours = _pcg_iters(A, ours.aspreconditioner())
    it_pyamg = _pcg_iters(A, ml.aspreconditioner())
    assert abs(it_ours - it_pyamg) <= 1, (it_ours, it_pyamg)


@pytest.mark.parametrize("example", ["airfoil", "knot", "bar"])
def test_pyamg_examples_within_one_iteration(example):
    pyamg = pytest.importorskip("pyamg")
    A = sp.csr_matrix(pyamg.gallery.load_example(example)["A"], dtype=float)
    A = sp.csr_matrix((A + A.T) * 0.5)
    it_ours = _pcg_iters(A, SmoothedAggregation(A).aspreconditioner())
    it_pyamg = _pcg_iters(A, pyamg.smoothed_aggregation_solver(A).aspreconditioner())
    assert abs(it_ours - it_pyamg) <= 1, (it_ours, it_pyamg)


def _random_weights(seed):
    rng = np.random.default_rng(seed)

    def weights(A):
        n = A.shape[0]
        F = sp.csr_matrix(A, copy=True)
        F.data *= rng.uniform(0.5, 1.5, F.nnz)
        return rng.uniform(0.5, 2.5, n), rng.uniform(0.05, 1.95, n), F

    return weights


@pytest.mark.parametrize("weights", [None, _random_weights(3)], ids=["default", "random"])
def test_vcycle_is_symmetric_positive_definite(weights):
    A = fem_family("lognormal", 16, seed=2).A
    P = SmoothedAggregation(A, weights=weights)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(A.shape[0], 6))
    MX = np.column_stack([P.matvec(x) for x in X.T])
    G = X.T @ MX  # <x_i, M x_j>
    assert np.abs(G - G.T).max() <= 1e-10 * np.abs(G).max()
    assert np.linalg.eigvalsh(0.5 * (G + G.T)).min() > 0
    assert P.is_spd and _pcg_iters(A, P.aspreconditioner()) < 40


def test_vcycle_convergence_rate_is_mesh_independent():
    rates = []
    for n in (16, 32, 64, 128):
        A = gallery.poisson2d(n)
        P = SmoothedAggregation(A)
        e = np.random.default_rng(1).normal(size=A.shape[0])
        e0 = np.sqrt(e @ (A @ e))
        for _ in range(6):  # stationary iteration on A x = 0: e <- e - M A e
            e = e - P.matvec(A @ e)
        rates.append((np.sqrt(e @ (A @ e)) / e0) ** (1 / 6))
    assert max(rates) < 0.35, rates
    assert max(rates) - min(rates) < 0.15, rates
    assert len(SmoothedAggregation(gallery.poisson2d(128)).levels) >= 4


def test_aggregation_covers_every_node_with_connected_aggregates():
    A = fem_family("poisson", 12, domain="lshape", seed=5).A
    C = strength(A)
    agg = standard_aggregation(C)
    assert agg.min() == 0 and set(np.unique(agg)) == set(range(agg.max() + 1))
    for k in range(agg.max() + 1):
        nodes = np.flatnonzero(agg == k)
        sub = C[nodes][:, nodes]
        ncomp, _ = sp.csgraph.connected_components(sub, directed=False)
        assert ncomp == 1
    assert 3 <= A.shape[0] / (agg.max() + 1) <= 12  # coarsening factor of aggregation


def test_update_reuses_aggregates_and_matches_a_fresh_build():
    mesh_a = fem_family("lognormal", 16, seed=4).A
    A2 = sp.csr_matrix(mesh_a.copy())
    A2.data = A2.data * (1 + 0.1 * np.sin(np.arange(A2.nnz)))
    A2 = sp.csr_matrix(0.5 * (A2 + A2.T))
    assert np.array_equal(A2.indices, mesh_a.indices)
    P = SmoothedAggregation(mesh_a).update(A2)
    fresh = SmoothedAggregation(A2, _aggregates=SmoothedAggregation(mesh_a).aggregates)
    r = np.random.default_rng(0).normal(size=A2.shape[0])
    assert np.allclose(P.matvec(r), fresh.matvec(r), rtol=1e-12, atol=1e-12)
    assert _pcg_iters(A2, P.aspreconditioner()) <= _pcg_iters(A2, SmoothedAggregation(A2)) + 2
    with pytest.raises(SolverError, match="same sparsity pattern"):
        P.update(gallery.poisson2d(8))


def test_refuses_non_spd_matrices():
    A = gallery.poisson2d(8)
    N = sp.csr_matrix(A + sp.diags(np.ones(63), 1))
    with pytest.raises(SolverError, match="symmetric"):
        SmoothedAggregation(N)
    indefinite = sp.csr_matrix(A - 3.9 * sp.eye(64))  # positive diagonal, negative eigenvalues
    with pytest.raises(SolverError, match=r"not (symmetric )?positive definite"):
        SmoothedAggregation(indefinite)
    res = solve_with(indefinite, np.ones(64), "sa")
    assert res.status.value == "indefinite" and not res.converged
    with pytest.raises(SolverError, match="SOR weights in"):
        SmoothedAggregation(A, weights=lambda M: (np.ones(M.shape[0]), 2 * np.ones(M.shape[0])))


def test_solve_with_sa_on_a_bare_fem_matrix():
    A = fem_family("anisotropic", 20, domain="lshape", seed=9).A
    b = np.random.default_rng(0).normal(size=A.shape[0])
    res = solve_with(A, b, "sa", rtol=1e-8)
    assert res.converged and res.info["solve_method"] == "sa"
    assert np.linalg.norm(b - A @ res.x) <= 1e-8 * np.linalg.norm(b) * 1.01
    assert res.n_iter < solve_with(A, b, "ic", rtol=1e-8).n_iter
