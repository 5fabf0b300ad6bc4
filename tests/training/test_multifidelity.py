"""Fitting MF-DNN (fit_mfnet) and its validated ensemble (fit_multifidelity_net): accuracy
on the Forrester pair, chaining, selection, early stopping, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pdesurrogates.solvers.reference import forrester
from pdesurrogates.surrogates import Ensemble, MultiFidelityNet
from pdesurrogates.training import fit_mfnet, fit_multifidelity_net
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
    hist = fit_mfnet(
        net, [x_lo, x_hi], [p.low(x_lo), p.high(x_hi)], bounds=p.bounds, seed=0, adam_steps=500
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
    fit_mfnet(net, [x0, x1, x2], ys, seed=1, adam_steps=300)
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


def test_bad_fit_input():
    p, x_lo, x_hi = _forrester(11)
    net = MultiFidelityNet()
    y_lo, y_hi = p.low(x_lo), p.high(x_hi)
    with pytest.raises(ValueError, match=r"y of level 0 must have shape \(11,\)"):
        fit_mfnet(net, [x_lo, x_hi], [y_lo[:5], y_hi])
    with pytest.raises(ValueError, match="NaN"):
        fit_mfnet(net, [x_lo, x_hi], [y_lo, np.array([1.0, np.nan, 2.0, 3.0])])
    with pytest.raises(ValueError, match="fidelity level 1 are constant"):
        fit_mfnet(net, [x_lo, x_hi], [y_lo, np.zeros(4)])
    with pytest.warns(UserWarning, match="training input dimension 0"):
        fit_mfnet(net, [x_lo, x_hi + 0.5], [y_lo, y_hi], bounds=p.bounds, adam_steps=5)
    with pytest.raises(ValueError, match="at least 2"):
        fit_mfnet(net, [x_lo, x_hi[:1]], [y_lo, y_hi[:1]])
    with pytest.raises(ValueError, match="expected 2 levels"):
        fit_mfnet(net, [x_lo], [y_lo])
    with pytest.raises(ValueError, match="holdout"):
        fit_multifidelity_net([x_lo, x_hi], [y_lo, y_hi], criterion="holdout")
    with pytest.raises(ValueError, match="low_arch"):
        fit_multifidelity_net([x_lo, x_hi], [y_lo, y_hi], low_arch="deep")
    with pytest.raises(ValueError, match="l2_grid"):
        fit_multifidelity_net([x_lo, x_hi], [y_lo, y_hi], l2_grid=[-1.0])
    with pytest.raises(ValueError, match="kfold"):
        fit_multifidelity_net([x_lo, x_hi], [y_lo, y_hi], criterion="kfold")
    with pytest.raises(ValueError, match="folds"):
        fit_multifidelity_net([x_lo, x_hi], [y_lo, y_hi], folds=1)
    with pytest.raises(ValueError, match="linear_l2"):
        fit_mfnet(net, [x_lo, x_hi], [y_lo, y_hi], linear_l2=-1.0)


def _additive_pair(d, n, seed):
    """A 2-level pair in d inputs whose low level is a sum of univariate terms."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, d))

    def lo(x):
        return np.sum(np.sin(2 * x) + x**2, axis=1)

    def hi(x):
        return 1.5 * lo(x) + x[:, 0]

    return x, lo, hi


def test_warm_start_solves_the_output_weights():
    # with no gradient steps at all, NN_L is the least-squares random-feature fit: on an
    # additive function that is already accurate (c = 0 before, the constant after)
    x, lo, hi = _additive_pair(6, 800, 3)
    xt = np.random.default_rng(4).uniform(-1, 1, (500, 6))
    net = MultiFidelityNet(in_dim=6, low_arch="additive").double()
    fit_mfnet(
        net,
        [x, x[:50]],
        [lo(x), hi(x[:50])],
        bounds=np.array([[-1.0, 1.0]] * 6),
        adam_steps=0,
        lbfgs_steps=0,
        lm_steps=0,
        stagewise=False,
    )
    with torch.no_grad():
        y = net(torch.as_tensor(xt), level=0).numpy()
    assert np.std(y - lo(xt)) / np.std(lo(xt)) < 0.06  # measured 0.031 (c = 0: 1.0)


def _interacting_pair(d, n, seed):
    """A 2-level pair whose low level has two two-input interactions."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, d))

    def lo(x):
        inter = 2 * x[:, 1] * x[:, 4] ** 2 + np.sin(3 * x[:, 0] * x[:, 6])
        return np.sum(np.sin(2 * x), axis=1) + inter

    def hi(x):
        return 1.5 * lo(x) + x[:, 0]

    return x, lo, hi


def test_auto_low_arch_screens_pairs_and_beats_the_additive_form():
    d = 8
    x, lo, hi = _interacting_pair(d, 1000, 5)
    xh = x[:80]
    xt = np.random.default_rng(6).uniform(-1, 1, (1000, d))
    fk = {"adam_steps": 200, "lbfgs_steps": 30, "lm_steps": 0, "joint": False, "lr": 3e-3}
    common = dict(
        bounds=np.array([[-1.0, 1.0]] * d),
        n_members=1,
        keep=1,
        net_kwargs={"low_width": 32, "activation": "silu", "pair_units": 12},
        fit_kwargs=dict(fk, low_holdout=0.1),
    )
    auto = fit_multifidelity_net([x, xh], [lo(x), hi(xh)], **common)
    assert sorted(auto.pairs) == [(0, 6), (1, 4)]
    assert auto.low_arch == "additive+pairs"
    assert set(auto.low_arch_scores) == {"mlp", "additive", "additive+mlp", "additive+pairs"}
    add = fit_multifidelity_net([x, xh], [lo(x), hi(xh)], low_arch="additive", **common)
    err_auto = _rel(auto.predict(xt).mean, hi(xt))
    err_add = _rel(add.predict(xt).mean, hi(xt))
    assert err_auto < 0.05  # measured 0.031 (additive: 0.26)
    assert err_auto < 0.25 * err_add


def test_early_stopping_restores_the_best_validation_state():
    from pdesurrogates.training._mf_optim import minimise_residuals

    class One(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))

    m = One()
    seen = []

    def val():  # minimal at p = 0.3, while training drives p to 1
        seen.append(m.p.item())
        return abs(seen[-1] - 0.3)

    minimise_residuals(
        m,
        lambda params=None: (m.p - 1.0)[None],
        ["p"],
        adam_steps=300,
        lbfgs_steps=20,
        lm_steps=0,
        lr=0.05,
        val_fn=val,
    )
    assert len(seen) == 102  # the start, 100 checks during Adam, one after L-BFGS
    assert abs(seen[-1] - 1.0) < 1e-8  # L-BFGS reached the training optimum ...
    best = min(seen, key=lambda v: abs(v - 0.3))
    assert m.p.item() == best and abs(best - 0.3) < 0.05  # ... but the best check is kept


def test_low_holdout_in_fit():
    x, lo, hi = _additive_pair(6, 400, 0)
    xh = x[:40]
    kw = {"adam_steps": 200, "lbfgs_steps": 0, "lm_steps": 0, "joint": False, "lr": 1e-2}
    net = MultiFidelityNet(in_dim=6, low_width=32, activation="silu").double()
    hist = fit_mfnet(net, [x, xh], [lo(x), hi(xh)], seed=0, low_holdout=0.2, **kw)
    assert 0 < hist["low_val_rmse"] < 0.1
    hist2 = fit_mfnet(net, [x, xh], [lo(x), hi(xh)], seed=0, **kw)
    assert np.isnan(hist2["low_val_rmse"])
    with pytest.raises(ValueError, match="low_holdout"):
        fit_mfnet(net, [x, xh], [lo(x), hi(xh)], low_holdout=0.7)


def test_auto_low_arch_picks_additive_on_additive_data_and_beats_mlp():
    x, lo, hi = _additive_pair(12, 600, 1)
    xh = x[:60]
    xt = np.random.default_rng(9).uniform(-1, 1, (1000, 12))
    fk = {"adam_steps": 600, "lbfgs_steps": 50, "lm_steps": 0, "joint": False, "lr": 1e-2}
    common = dict(
        bounds=np.array([[-1.0, 1.0]] * 12),
        n_members=1,
        keep=1,
        net_kwargs={"low_width": 32, "activation": "silu"},
        fit_kwargs=dict(fk, low_holdout=0.1),
    )
    auto = fit_multifidelity_net([x, xh], [lo(x), hi(xh)], **common)
    assert auto.pairs == []  # nothing interacts: the pairs form is not tried
    with pytest.raises(ValueError, match="found no interacting input pairs"):
        fit_multifidelity_net([x, xh], [lo(x), hi(xh)], low_arch="additive+pairs")
    assert set(auto.low_arch_scores) == {"mlp", "additive", "additive+mlp"}
    assert auto.low_arch in ("additive", "additive+mlp")
    assert auto.low_arch_scores["additive"] < 0.1 * auto.low_arch_scores["mlp"]
    mlp = fit_multifidelity_net([x, xh], [lo(x), hi(xh)], low_arch="mlp", **common)
    err_auto = _rel(auto.predict(xt).mean, hi(xt))
    err_mlp = _rel(mlp.predict(xt).mean, hi(xt))
    assert err_auto < 0.01  # measured 2.8e-3 (mlp: 0.13)
    assert err_auto < 0.1 * err_mlp


def test_l2_grid_selection_by_holdout():
    # many inputs and few high-fidelity points: the weakly penalised nonlinear correction
    # overfits and the hold-out picks a larger penalty, which then predicts better
    x, lo, hi = _additive_pair(12, 600, 2)
    xh = x[:40]
    xt = np.random.default_rng(3).uniform(-1, 1, (1000, 12))
    fk = {"adam_steps": 600, "lbfgs_steps": 50, "lm_steps": 0, "joint": False, "lr": 1e-2}
    kw = dict(n_members=1, keep=1, criterion="holdout", low_arch="additive", fit_kwargs=fk)
    fixed = fit_multifidelity_net([x, xh], [lo(x), hi(xh)], l2_grid=None, **kw)
    grid = fit_multifidelity_net([x, xh], [lo(x), hi(xh)], l2_grid=(1e-5, 1e-1), **kw)
    h = grid.histories[0]
    assert set(h["l2_scores"]) == {(1e-5, 0.0), (1e-1, 0.0), (1e-5, 1e-5), (1e-1, 1e-1)}
    best = (h["l2"], h["linear_l2"])
    assert best == min(h["l2_scores"], key=h["l2_scores"].get)
    assert grid.scores[0] == h["l2_scores"][best]
    assert h["l2"] == 1e-1
    err_fixed = _rel(fixed.predict(xt).mean, hi(xt))
    err_grid = _rel(grid.predict(xt).mean, hi(xt))
    assert err_grid < 0.7 * err_fixed


def test_linear_x_weights_share_the_penalty():
    # y_H = 1.5 y_L + 2 in 30 inputs from 25 high-fidelity points: unpenalised, the linear
    # part's 30 x-weights absorb the data; with the L2 weight on them it uses y_L
    d = 30
    x, lo, _ = _additive_pair(d, 800, 7)

    def hi(x):
        return 1.5 * lo(x) + 2.0

    xh = x[:25]
    xt = np.random.default_rng(8).uniform(-1, 1, (1000, d))
    fk = {"adam_steps": 300, "lbfgs_steps": 50, "lm_steps": 0, "joint": False, "lr": 1e-2}
    out = {}
    for l2 in (0.0, 1e-1):
        net = MultiFidelityNet(in_dim=d, low_arch="additive").double()
        box = np.array([[-1.0, 1.0]] * d)
        fit_mfnet(net, [x, xh], [lo(x), hi(xh)], bounds=box, l2=l2, linear_l2=l2, **fk)
        w = net.corrections[0].linear.weight.detach()[0]
        with torch.no_grad():
            err = _rel(net(torch.as_tensor(xt)).numpy(), hi(xt))
        out[l2] = (float(w[:d].norm()), err)
    assert out[1e-1][0] < 0.1 * out[0.0][0]  # measured 0.046 against 1.17
    assert out[1e-1][1] < 0.1  # measured 0.044 (unpenalised: 0.48)
    assert out[1e-1][1] < 0.2 * out[0.0][1]


def test_kfold_scores_every_member():
    p, x_lo, _ = _forrester()
    x_hi = x_lo[::3]  # 7 points
    fit = fit_multifidelity_net(
        [x_lo, x_hi],
        [p.low(x_lo), p.high(x_hi)],
        bounds=p.bounds,
        n_members=2,
        keep=1,
        criterion="kfold",
        l2_grid=(1e-5,),
        fit_kwargs={"adam_steps": 200, "lbfgs_steps": 50, "lm_steps": 20},
    )
    assert fit.criterion == "kfold"
    assert all(np.isfinite(fit.scores)) and fit.scores[fit.kept[0]] == min(fit.scores)
    # a linear link: the cross-validated correction error is small
    assert min(fit.scores) < 0.05
    assert _rel(fit.predict(XT).mean, p.high(XT)) < 1e-2
