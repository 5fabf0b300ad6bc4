"""Training the learned incomplete Cholesky: it must beat no preconditioner and IC(0)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg as sla
import torch

from pdesurrogates.solvers import IncompleteCholesky
from pdesurrogates.solvers.reference import fem_family
from pdesurrogates.surrogates import NeuralIncompleteCholesky
from pdesurrogates.training import fem_training_matrices, pcg_proxy_loss, train_neural_ic
from pdesurrogates.training._neural_ic import ic0_targets


def _iterations(A, M):
    b = np.random.default_rng(0).normal(size=A.shape[0])
    count = [0]
    _, info = sla.cg(
        A, b, rtol=1e-6, maxiter=2000, M=M, callback=lambda xk: count.__setitem__(0, count[0] + 1)
    )
    assert info == 0
    return count[0]


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    mats = fem_training_matrices(8, sizes=(8, 12), families=("poisson", "lognormal"), seed=0)
    model = NeuralIncompleteCholesky(latent=8, rounds=2, seed=0)
    hist = train_neural_ic(model, mats, init_steps=40, steps=40, lr=5e-3, progress=False)
    return model, hist


def test_ic0_targets_reproduce_ic0_exactly():
    A = fem_family("lognormal", 8, seed=0).A
    from pdesurrogates.surrogates._neural_if import matrix_graph

    g = matrix_graph(A)
    diag, off = ic0_targets(A, g)
    S = A.multiply(1 / np.outer(g.sqrt_d, g.sqrt_d)).tocsr()
    L0 = IncompleteCholesky(S).L.toarray()
    assert np.allclose(np.diag(L0), diag.numpy())
    assert np.allclose(L0[g.row[g.lower], g.col[g.lower]], off.numpy())


def test_tiny_trained_model_beats_cg_on_an_unseen_matrix(trained):
    model, hist = trained
    assert hist["init_loss"][-1] < 0.5 * hist["init_loss"][0]  # fitted to IC(0)
    assert np.mean(hist["loss"][-10:]) < hist["loss"][0]  # the PCG proxy decreased
    A = fem_family("lognormal", 40, domain="lshape", seed=99).A  # 10x the training size
    plain = _iterations(A, None)
    ours = _iterations(A, model.precondition(A).aspreconditioner())
    assert ours < 0.4 * plain, (ours, plain)


@pytest.mark.slow
def test_trained_model_beats_its_ic0_initialisation_on_unseen_matrices():
    mats = fem_training_matrices(24, sizes=(10, 18), seed=0)
    model = NeuralIncompleteCholesky(latent=16, rounds=3, seed=0)
    train_neural_ic(model, mats, init_steps=150, progress=False, steps=0)
    init = [
        _iterations(A, model.precondition(A).aspreconditioner())
        for A in (fem_family(k, 40, seed=90 + i).A for i, k in enumerate(("poisson", "lognormal")))
    ]
    train_neural_ic(model, mats, init_steps=0, steps=150, progress=False)
    for i, kind in enumerate(("poisson", "lognormal")):
        A = fem_family(kind, 40, seed=90 + i).A
        ic0 = _iterations(A, IncompleteCholesky(A).aspreconditioner())
        ours = _iterations(A, model.precondition(A).aspreconditioner())
        assert ours <= ic0, (kind, ours, ic0)
        assert ours < init[i], (kind, ours, init[i])


def test_pcg_proxy_loss_measures_the_energy_error_left_by_pcg():
    A = fem_family("poisson", 10, seed=1).A
    from pdesurrogates.surrogates._neural_if import matrix_graph

    g = matrix_graph(A)
    S = torch.from_numpy(A.multiply(1 / np.outer(g.sqrt_d, g.sqrt_d)).toarray())
    Z = torch.randn(A.shape[0], 4, generator=torch.Generator().manual_seed(0), dtype=S.dtype)
    sgs = NeuralIncompleteCholesky(latent=4, rounds=1, seed=0).double()
    with torch.no_grad():
        loss_sgs = float(pcg_proxy_loss(sgs, g, S, Z, 4))
        full = pcg_proxy_loss(sgs, g, S, Z, A.shape[0])  # CG is exact after n steps
    assert loss_sgs < 0  # 4 PCG steps reduce the energy error
    assert float(full) < -20


def test_empty_training_set_is_refused():
    with pytest.raises(ValueError, match="matrices is empty"):
        train_neural_ic(NeuralIncompleteCholesky(), [], progress=False)
