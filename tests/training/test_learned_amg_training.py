"""train_neural_amg: the two-grid loss against our numpy hierarchy, and a loss decrease."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from pdesurrogates.solvers import SmoothedAggregation
from pdesurrogates.solvers.reference import fem_family
from pdesurrogates.surrogates import NeuralAMG
from pdesurrogates.training import amg_cycle_loss, fem_training_matrices, train_neural_amg
from pdesurrogates.training._learned_amg import amg_cycle_problem, mean_amg_cycle_loss


@pytest.mark.parametrize(
    "perturb, levels, shared", [(0.0, 2, False), (0.5, 2, False), (0.5, 3, False), (0.5, 3, True)]
)
def test_cycle_loss_matches_the_numpy_hierarchy(perturb, levels, shared):
    A = fem_family("lognormal", 14, seed=2).A
    # shared: the network's weights on levels 0 and 1 in the loss and in the hierarchy
    model = NeuralAMG(latent=4, rounds=2, seed=0, levels=2 if shared else 1).double()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(perturb * torch.randn(p.shape, generator=g, dtype=p.dtype))
    prob = amg_cycle_problem(A, levels=levels)
    assert (prob.T1 is not None) == (levels == 3)
    Z = torch.randn(A.shape[0], 3, generator=g, dtype=torch.float64)
    loss = float(amg_cycle_loss(model, prob, Z, cycles=2, pcg=False, shared=shared).detach())
    P = SmoothedAggregation(A, weights=model.weights_fn(), max_levels=levels)  # exact coarsest
    ratios = []
    for z in Z.numpy().T:
        e = z.copy()
        for _ in range(2):
            e = e - P.matvec(A @ e)
        ratios.append((e @ (A @ e)) / (z @ (A @ z)))
    assert loss == pytest.approx(float(np.mean(np.log(ratios))), rel=1e-6)
    assert loss < np.log(0.1**2)  # two cycles reduce the energy error at least tenfold


def test_training_lowers_the_amg_cycle_loss_on_held_out_matrices():
    torch.manual_seed(0)
    mats = fem_training_matrices(8, sizes=(6, 10), seed=0)
    held = fem_training_matrices(4, sizes=(6, 10), seed=5)
    model = NeuralAMG(latent=8, rounds=2, seed=0)
    before = mean_amg_cycle_loss(copy.deepcopy(model), held)
    hist = train_neural_amg(model, mats, steps=40, lr=1e-2, progress=False)
    assert len(hist["loss"]) == 40 and next(model.parameters()).dtype == torch.float32
    after = mean_amg_cycle_loss(model, held)
    assert after < before - 0.05, (before, after)


def test_bad_arguments():
    with pytest.raises(ValueError, match="matrices is empty"):
        train_neural_amg(NeuralAMG(), [], steps=1)
    with pytest.raises(ValueError, match="batch"):
        train_neural_amg(NeuralAMG(), fem_training_matrices(1, sizes=(4, 4)), batch=0)
