"""NeuralAMG: untrained = our smoothed aggregation, SPD for any weights, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla
import torch

import pdesurrogates
from pdesurrogates.errors import SolverError
from pdesurrogates.solvers import SmoothedAggregation, gallery, solve_with
from pdesurrogates.solvers.reference import fem_family
from pdesurrogates.surrogates import NeuralAMG, NeuralIncompleteCholesky
from pdesurrogates.surrogates._learned_amg import cycle_estimate


def _perturb(model, seed=0, scale=0.5):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


def test_untrained_network_is_plain_smoothed_aggregation():
    A = fem_family("lognormal", 20, seed=3).A
    r = np.random.default_rng(0).normal(size=A.shape[0])
    ours = NeuralAMG(seed=0).precondition(A)
    plain = SmoothedAggregation(A)
    assert [lev.A.shape for lev in ours.levels] == [lev.A.shape for lev in plain.levels]
    assert np.allclose(ours.matvec(r), plain.matvec(r), rtol=1e-6, atol=1e-9)


def test_perturbed_network_gives_an_spd_vcycle_that_cg_accepts():
    A = fem_family("anisotropic", 18, domain="lshape", seed=1).A
    model = _perturb(NeuralAMG(latent=8, rounds=2, seed=1), scale=0.3)
    P = model.precondition(A)
    w = np.concatenate([lev.w for lev in P.levels[:-1]])
    s = np.concatenate([lev.s for lev in P.levels[:-1]])
    assert w.std() > 0.01 and s.std() > 0.01  # the weights really vary per node
    assert 0 < s.min() and s.max() < 2
    rng = np.random.default_rng(2)
    X = rng.normal(size=(A.shape[0], 5))
    G = X.T @ np.column_stack([P.matvec(x) for x in X.T])
    assert np.abs(G - G.T).max() <= 1e-9 * np.abs(G).max()
    assert np.linalg.eigvalsh(0.5 * (G + G.T)).min() > 0
    b = rng.normal(size=A.shape[0])
    x, info = sla.cg(A, b, rtol=1e-8, M=P.aspreconditioner(), maxiter=300)
    assert info == 0 and np.linalg.norm(b - A @ x) <= 1.01e-8 * np.linalg.norm(b)


def test_levels_option_limits_the_learned_levels():
    A = gallery.poisson2d(40)
    model = _perturb(NeuralAMG(latent=4, rounds=1, seed=0, levels=1))
    P = model.precondition(A)
    assert len(P.levels) >= 3
    assert not np.allclose(P.levels[0].s, 1.0)
    assert np.allclose(P.levels[1].s, 1.0) and np.allclose(P.levels[1].w, 4 / 3)


def test_save_load_round_trip_gives_the_same_preconditioner(tmp_path):
    A = fem_family("poisson", 16, seed=8).A
    model = _perturb(NeuralAMG(latent=4, rounds=2, seed=0))
    pdesurrogates.save(model, tmp_path / "m")
    back = pdesurrogates.load(tmp_path / "m")
    assert isinstance(back, NeuralAMG) and back.get_config() == model.get_config()
    r = np.random.default_rng(0).normal(size=A.shape[0])
    assert np.allclose(model.precondition(A).matvec(r), back.precondition(A).matvec(r))


def test_refusals_name_the_problem():
    A = gallery.poisson2d(8)
    with pytest.raises(SolverError, match="NeuralAMG needs a symmetric"):
        NeuralAMG().precondition(sp.csr_matrix(A + sp.diags(np.ones(63), 1)))
    b = np.ones(64)
    with pytest.raises(SolverError, match="use method 'neural_amg'"):
        solve_with(A, b, "neural_ic", model=NeuralAMG())
    with pytest.raises(SolverError, match="use method 'neural_ic'"):
        solve_with(A, b, "neural_amg", model=NeuralIncompleteCholesky())
    with pytest.raises(SolverError, match="needs a model"):
        solve_with(A, b, "neural_amg")
    with pytest.raises(ValueError, match="levels must be an integer >= 0"):
        NeuralAMG(levels=-1)
    P = NeuralAMG().precondition(A)
    with pytest.raises(SolverError, match="same sparsity pattern"):
        P.update(gallery.poisson2d(9))


def test_solve_with_neural_amg_on_an_unstructured_matrix():
    A = fem_family("elasticity", 12, domain="lshape", seed=4).A
    b = np.random.default_rng(1).normal(size=A.shape[0])
    res = solve_with(A, b, "neural_amg", model=NeuralAMG(seed=0), rtol=1e-8)
    assert res.converged and res.info["model_class"] == "NeuralAMG"
    assert np.linalg.norm(b - A @ res.x) <= 1.01e-8 * np.linalg.norm(b)
    assert res.n_iter == solve_with(A, b, "sa", rtol=1e-8).n_iter  # untrained = plain SA


@pytest.mark.parametrize("A", [fem_family("anisotropic", 16, seed=4).A, gallery.poisson2d(20)])
def test_cycle_estimate_approaches_the_dense_convergence_factor(A):
    P = SmoothedAggregation(A)
    B = np.column_stack([P.matvec(c) for c in np.eye(A.shape[0])])
    lam = np.linalg.eigvals(B @ A.toarray()).real  # B A: eigenvalues in (0, 1]
    assert lam.min() > 0 and lam.max() <= 1 + 1e-9
    exact = np.log(1 - lam.min())  # log rho(I - B A)
    est8, est12 = cycle_estimate(P), cycle_estimate(P, steps=12)
    assert est8 == pytest.approx(exact, abs=0.2)  # a power iteration: from below
    assert abs(est12 - exact) < abs(est8 - exact)


def _iterations(A, P):
    count = [0]
    b = np.random.default_rng(1).normal(size=A.shape[0])
    M = P.aspreconditioner()
    sla.cg(A, b, rtol=1e-8, M=M, callback=lambda _x: count.__setitem__(0, count[0] + 1))
    return count[0]


def test_guard_keeps_plain_sa_when_the_learned_weights_are_worse():
    A = fem_family("lognormal", 20, seed=3).A
    model = NeuralAMG(latent=4, rounds=1, seed=0, levels=10)
    with torch.no_grad():
        model.head[-1].bias[1] = -6.0  # SOR weights s < 0.2: a weak smoother
    raw = model.precondition(A)
    assert raw.learned and raw.levels[0].s.max() < 0.2
    model.guard = True
    guarded = model.precondition(A)
    plain = SmoothedAggregation(A)
    assert not guarded.learned
    assert _iterations(A, raw) >= 2 * _iterations(A, plain)  # 27 against 9
    assert _iterations(A, guarded) == _iterations(A, plain)
    r = np.random.default_rng(0).normal(size=A.shape[0])
    assert np.allclose(guarded.matvec(r), plain.matvec(r), rtol=1e-6, atol=1e-9)
    with pytest.raises(ValueError, match="guard must be True or False"):
        NeuralAMG(guard=1)
