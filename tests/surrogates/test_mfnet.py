"""MultiFidelityNet (MF-DNN): accuracy on the Forrester pair, chaining, selection, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pdesurrogates.solvers.reference import forrester
from pdesurrogates.surrogates import (
    Ensemble,
    MultiFidelityNet,
    fit_multifidelity_net,
)
from pdesurrogates.testing import SurrogateContract
from pdesurrogates.uq import Prediction

XT = np.linspace(0, 1, 1000)[:, None]


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _forrester(n_lo=21):
    p = forrester()
    x_lo = np.linspace(0, 1, n_lo)[:, None]
    x_hi = np.array([[0.0], [0.4], [0.6], [1.0]])
    return p, x_lo, x_hi


def test_forrester_21_4_single_net_reaches_1e_3():
    p, x_lo, x_hi = _forrester()
    net = MultiFidelityNet().double()
    hist = net.fit(
        [x_lo, x_hi], [p.low(x_lo), p.high(x_hi)], bounds=p.bounds, seed=0, adam_steps=500
    )
    with torch.no_grad():
        y_hi = net(torch.as_tensor(XT)).numpy()
        y_lo = net(torch.as_tensor(XT), level=0).numpy()
    assert _rel(y_lo, p.low(XT)) < 5e-4
    assert _rel(y_hi, p.high(XT)) < 1e-3
    assert hist["level_mse"][0] < 1e-8
    # the correction learnt the exact linear relation y_H = 2 y_L - 20 (x - 0.5) + 10
    levels = net.forward_levels(torch.as_tensor(XT[:3]))
    assert len(levels) == 2


def test_validated_ensemble_and_prediction():
    p, x_lo, x_hi = _forrester()
    fit = fit_multifidelity_net(
        [x_lo, x_hi],
        [p.low(x_lo), p.high(x_hi)],
        bounds=p.bounds,
        n_members=3,
        keep=2,
        fit_kwargs={"adam_steps": 300},
    )
    assert fit.criterion == "consensus"  # only 4 high-fidelity points
    assert len(fit.scores) == 3 and len(fit.kept) == 2
    assert fit.scores[fit.kept[0]] == min(fit.scores)
    assert isinstance(fit.model, Ensemble)
    pred = fit.predict(XT)
    assert isinstance(pred, Prediction) and pred.samples.shape == (2, 1000)
    assert _rel(pred.mean, p.high(XT)) < 1e-3
    with torch.no_grad():
        ens = fit.model(torch.as_tensor(XT)).numpy()
    np.testing.assert_allclose(ens, pred.mean, rtol=1e-10, atol=1e-10)


def test_three_levels_chain():
    def f0(x):
        return np.sin(6 * x[:, 0])

    x0 = np.linspace(0, 1, 25)[:, None]
    x1, x2 = x0[::3], x0[::6]
    ys = [f0(x0), 2 * f0(x1) + x1[:, 0], 1.5 * (2 * f0(x2) + x2[:, 0]) - 1]
    net = MultiFidelityNet(n_levels=3).double()
    net.fit([x0, x1, x2], ys, seed=1, adam_steps=300)
    with torch.no_grad():
        top = net(torch.as_tensor(XT)).numpy()
    assert _rel(top, 1.5 * (2 * f0(XT) + XT[:, 0]) - 1) < 1e-2


def test_holdout_criterion_on_larger_design():
    rng = np.random.default_rng(0)
    x_lo = rng.random((60, 2))
    x_hi = x_lo[:24]

    def lo(x):
        return np.sin(3 * x[:, 0]) + x[:, 1] ** 2

    def hi(x):
        return 1.5 * lo(x) + 0.3 * x[:, 0]

    fit = fit_multifidelity_net(
        [x_lo, x_hi],
        [lo(x_lo), hi(x_hi)],
        n_members=2,
        keep=1,
        fit_kwargs={"adam_steps": 200, "lbfgs_steps": 50, "lm_steps": 20},
    )
    assert fit.criterion == "holdout"
    assert all(np.isfinite(fit.scores))
    xt = rng.random((300, 2))
    assert _rel(fit.predict(xt).mean, hi(xt)) < 0.05


def test_bad_input():
    p, x_lo, x_hi = _forrester(11)
    net = MultiFidelityNet()
    y_lo, y_hi = p.low(x_lo), p.high(x_hi)
    with pytest.raises(ValueError, match=r"ys\[0\] must have shape \(11,\)"):
        net.fit([x_lo, x_hi], [y_lo[:5], y_hi])
    with pytest.raises(ValueError, match="NaN"):
        net.fit([x_lo, x_hi], [y_lo, np.array([1.0, np.nan, 2.0, 3.0])])
    with pytest.raises(ValueError, match="outside the declared bounds"):
        net.fit([x_lo, x_hi + 0.5], [y_lo, y_hi], bounds=p.bounds)
    with pytest.raises(ValueError, match="at least 2"):
        net.fit([x_lo, x_hi[:1]], [y_lo, y_hi[:1]])
    with pytest.raises(ValueError, match="expected 2 levels"):
        net.fit([x_lo], [y_lo])
    with pytest.raises(ValueError, match="holdout"):
        fit_multifidelity_net([x_lo, x_hi], [y_lo, y_hi], criterion="holdout")
    with pytest.raises(ValueError, match="activation"):
        MultiFidelityNet(activation="relu6")
    with pytest.raises(ValueError, match="n_levels"):
        MultiFidelityNet(n_levels=1)


class TestMultiFidelityNetContract(SurrogateContract):
    def make_model(self):
        return MultiFidelityNet(in_dim=3, n_levels=3, low_width=8, corr_width=4)

    def make_inputs(self, batch_size, *, generator, dtype=torch.float32):
        return (torch.rand(batch_size, 3, generator=generator, dtype=dtype),)
