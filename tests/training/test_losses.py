"""Relative L2 / H1 losses: neuraloperator (d=2) as oracle, closed-form H1 norms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pdesurrogates.training import RelH1Loss, RelL2Loss, get_loss, grid_gradient, rel_h1, rel_l2
from pdesurrogates.uq import metrics


def _pair(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64), torch.randn(
        *shape, generator=g, dtype=torch.float64
    )


@pytest.mark.parametrize("shape", [(4, 16, 16), (3, 1, 12, 20)])
def test_rel_l2_matches_neuraloperator_lploss_d2(shape):
    from neuralop.losses import LpLoss

    p, t = _pair(shape)
    oracle = LpLoss(d=2, p=2, reduction="mean", eps=0.0)(p, t)
    torch.testing.assert_close(rel_l2(p, t, eps=0.0), oracle, atol=1e-12, rtol=1e-12)
    oracle_sum = LpLoss(d=2, p=2, reduction="sum", eps=0.0)(p, t)
    torch.testing.assert_close(rel_l2(p, t, reduction="sum", eps=0.0), oracle_sum)


def test_neuraloperator_default_d1_is_not_the_2d_norm():
    """The pitfall these losses avoid: LpLoss() defaults to d=1 (row-wise norms)."""
    from neuralop.losses import LpLoss

    p, t = _pair((4, 16, 16))
    assert abs(float(LpLoss()(p, t)) / 4 - float(rel_l2(p, t))) > 1e-3


@pytest.mark.parametrize("shape", [(4, 16, 16), (3, 1, 12, 20)])
def test_rel_h1_matches_neuraloperator_h1loss_d2_periodic(shape):
    from neuralop.losses import H1Loss

    p, t = _pair(shape, seed=1)
    oracle = H1Loss(d=2, reduction="mean", eps=0.0)(p, t)  # periodic differences
    ours = rel_h1(p, t, periodic=True, eps=0.0)
    torch.testing.assert_close(ours, oracle, atol=1e-12, rtol=1e-12)


def test_rel_h1_closed_form_converges_at_second_order():
    """u = sin(πx) sin(πy), pred = u + c: ||c||_H1 / ||u||_H1 = c / sqrt(1/4 + π²/2)."""
    c = 0.1
    exact = c / math.sqrt(0.25 + math.pi**2 / 2)
    errs = []
    for n in (32, 64, 128, 256):
        x = (torch.arange(n, dtype=torch.float64) + 0.5) / n
        u = (torch.sin(math.pi * x)[:, None] * torch.sin(math.pi * x)[None, :])[None]
        errs.append(abs(float(rel_h1(u + c, u, eps=0.0)) - exact))
    orders = [math.log2(errs[i] / errs[i + 1]) for i in range(3)]
    assert errs[-1] < 1e-3 * exact
    assert orders == sorted(orders) and orders[-1] > 1.8, orders


def test_grid_gradient_matches_numpy_gradient_and_exact_derivative():
    n = 40
    x = (np.arange(n) + 0.5) / n
    f = np.exp(x)[:, None] * np.cos(2 * x)[None, :]
    gx, gy = grid_gradient(torch.tensor(f)[None], lengths=1.0)
    ref_x, ref_y = np.gradient(f, 1 / n, edge_order=2)
    np.testing.assert_allclose(gx[0].numpy(), ref_x, atol=1e-12)
    np.testing.assert_allclose(gy[0].numpy(), ref_y, atol=1e-12)
    exact_y = -2 * np.exp(x)[:, None] * np.sin(2 * x)[None, :]
    assert np.abs(gy[0].numpy() - exact_y).max() < 5e-3
    # physical lengths scale the derivative: same samples on [0, 2] -> half the slope
    gx2, _ = grid_gradient(torch.tensor(f)[None], lengths=(2.0, 1.0))
    torch.testing.assert_close(gx2, gx / 2)


def test_relative_errors_of_scaled_targets_are_exact():
    t = torch.rand(3, 1, 16, 16, dtype=torch.float64) + 0.5
    assert float(rel_l2(1.25 * t, t, eps=0.0)) == pytest.approx(0.25, abs=1e-12)
    assert float(rel_h1(0.5 * t, t, eps=0.0)) == pytest.approx(0.5, abs=1e-12)
    per = rel_l2(t * torch.tensor([1.0, 2.0, 3.0])[:, None, None, None], t, reduction="none")
    torch.testing.assert_close(per, torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64))


def test_bad_shapes_and_names():
    with pytest.raises(ValueError, match=r"y has shape .* prediction has shape"):
        rel_l2(torch.zeros(2, 8, 8), torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="spatial axes"):
        rel_h1(torch.zeros(8, 8), torch.zeros(8, 8))
    with pytest.raises(ValueError, match="at least 3 points"):
        rel_h1(torch.zeros(2, 2, 8), torch.ones(2, 2, 8))
    with pytest.raises(ValueError, match="loss must be one of"):
        get_loss("l1")
    with pytest.raises(ValueError, match="reduction"):
        rel_l2(torch.ones(2, 4, 4), torch.ones(2, 4, 4), reduction="max")


@pytest.mark.parametrize("shape", [(3, 20, 24), (2, 2, 12, 16), (2, 10, 8, 9)])
def test_losses_are_the_uq_metrics(shape):
    """One definition: the training loss equals the uq metric on the same field."""
    d = len(shape) - 1 if len(shape) != 4 or shape[1] != 2 else 2
    p, t = _pair(shape, seed=3)
    kw = {"spatial_dims": d}
    torch.testing.assert_close(
        rel_l2(p, t, eps=0.0, reduction="none", **kw),
        metrics.rel_l2(p, t, reduction="none", **kw),
        atol=0,
        rtol=0,
    )
    torch.testing.assert_close(
        rel_h1(p, t, eps=0.0, reduction="none", **kw),
        metrics.rel_h1(p, t, reduction="none", **kw),
        atol=0,
        rtol=0,
    )
    # the module forms, numpy input of the metric, and a physical domain length
    assert float(RelL2Loss(spatial_dims=d)(p, t)) == pytest.approx(
        float(metrics.rel_l2(p.numpy(), t.numpy(), spatial_dims=d)), rel=1e-12
    )
    n = shape[-d:]
    got = RelH1Loss(spatial_dims=d, lengths=2.0)(p, t)
    ref = metrics.rel_h1(p.numpy(), t.numpy(), spacing=[2.0 / k for k in n])
    assert float(got) == pytest.approx(float(ref), rel=1e-9)


def test_loss_gradients_flow_and_match_finite_differences():
    p, t = _pair((2, 1, 8, 8), seed=4)
    p.requires_grad_(True)
    torch.autograd.gradcheck(lambda q: rel_h1(q, t, eps=0.0), (p,))
    torch.autograd.gradcheck(lambda q: rel_l2(q, t, eps=0.0), (p,))
    # a perfect prediction has a zero (not NaN) gradient
    q = t.clone().requires_grad_(True)
    rel_h1(q, t).backward()
    assert torch.isfinite(q.grad).all() and float(q.grad.abs().max()) == 0.0
