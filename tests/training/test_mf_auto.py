"""fit_multifidelity: method selection by cross-validated error, scaling, bad input."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from pdesurrogates.solvers.reference import forrester, hartmann3, nonlinear_sin
from pdesurrogates.surrogates import MultiFidelityNet
from pdesurrogates.training import MultiFidelityModel, fit_mfnet, fit_multifidelity
from pdesurrogates.training._mf_auto import fit_multifidelity_levels


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_auto_picks_ar1_on_a_linear_pair(caplog):
    p = forrester()
    x_lo = np.linspace(0, 1, 11)[:, None]
    x_hi = x_lo[[0, 2, 4, 6, 8, 10]]
    with caplog.at_level(logging.INFO, logger="pdesurrogates"):
        m = fit_multifidelity(
            x_lo, p.low(x_lo), x_hi, p.high(x_hi), bounds=p.bounds, methods=("ar1", "nargp")
        )
    assert isinstance(m, MultiFidelityModel)
    assert set(m.scores) == {"ar1", "nargp"}
    assert m.method == "ar1", m.scores
    assert "fit_multifidelity: ar1" in caplog.text
    xt = np.linspace(0, 1, 300)[:, None]
    assert _rel(m.predict(xt).mean, p.high(xt)) < 0.05


def test_auto_picks_nargp_on_the_nonlinear_pair():
    p = nonlinear_sin()
    x_lo = np.linspace(0, 1, 50)[:, None]
    x_hi = x_lo[::4]
    m = fit_multifidelity(
        x_lo, p.low(x_lo), x_hi, p.high(x_hi), bounds=p.bounds, methods=("ar1", "nargp")
    )
    assert m.method == "nargp", m.scores
    assert m.scores["nargp"] < 0.1 * m.scores["ar1"]
    xt = np.linspace(0, 1, 400)[:, None]
    # AR(1) is at 0.66 here; the earlier NARGP at 6.1e-2; the target was about 1e-2
    assert _rel(m.predict(xt).mean, p.high(xt)) < 1e-2


def test_mfnet_shift_and_scale_invariance():
    # x -> 15 x - 5, y -> 1000 + 50 y gives the same scaled problem and the same error
    p = forrester()
    x_lo = np.linspace(0, 1, 11)[:, None]
    x_hi = x_lo[[0, 4, 6, 10]]
    y_lo, y_hi = p.low(x_lo), p.high(x_hi)
    kw = {"seed": 0, "adam_steps": 300, "lbfgs_steps": 100, "lm_steps": 20}
    net, net2 = MultiFidelityNet(), MultiFidelityNet()
    fit_mfnet(net.double(), [x_lo, x_hi], [y_lo, y_hi], bounds=p.bounds, **kw)
    fit_mfnet(
        net2.double(),
        [15 * x_lo - 5, 15 * x_hi - 5],
        [1000 + 50 * y_lo, 1000 + 50 * y_hi],
        bounds=[[-5.0, 10.0]],
        **kw,
    )
    xt = np.linspace(0, 1, 300)[:, None]
    import torch

    with torch.no_grad():
        e1 = _rel(net(torch.as_tensor(xt)).numpy(), p.high(xt))
        e2 = _rel(net2(torch.as_tensor(15 * xt - 5)).numpy() - 1000, 50 * p.high(xt))
    assert e1 < 0.2 and e2 == pytest.approx(e1, rel=0.05)


def test_bad_input():
    p = forrester()
    x_lo = np.linspace(0, 1, 11)[:, None]
    x_hi = x_lo[[0, 4, 6, 10]]
    y_lo, y_hi = p.low(x_lo), p.high(x_hi)
    with pytest.raises(ValueError, match="method must be one of"):
        fit_multifidelity(x_lo, y_lo, x_hi, y_hi, method="kriging")
    with pytest.raises(ValueError, match="fidelity level 0 are constant"):
        fit_multifidelity(x_lo, np.ones(11), x_hi, y_hi, method="ar1")
    # high-fidelity points that are not low-fidelity points: the LF posterior mean is used
    x_off = np.array([[0.05], [0.33], [0.52], [0.71], [0.95]])
    m = fit_multifidelity(x_lo, y_lo, x_off, p.high(x_off), method="nargp", bounds=p.bounds)
    xt = np.linspace(0, 1, 200)[:, None]
    assert _rel(m.predict(xt).mean, p.high(xt)) < 0.3
    with pytest.warns(UserWarning, match="prediction input dimension 0"):
        m.predict(xt + 0.5)


@pytest.mark.slow
def test_three_levels_and_every_candidate():
    # fit_multifidelity for any number of levels; every fitted candidate is kept
    p = hartmann3()
    x0 = p.sample(60, seed=0)
    x1, x2 = x0[:30], x0[:15]
    m = fit_multifidelity_levels(
        [x0, x1, x2], [p(x0, 0), p(x1, 1), p(x2, 2)], bounds=p.bounds, methods=("ar1", "nargp")
    )
    assert set(m.candidates) == set(m.scores) == {"ar1", "nargp"}
    assert m.candidates[m.method] is m
    xt = p.sample(500, seed=1, method="uniform")
    const = _rel(np.full(len(xt), p(x2, 2).mean()), p.high(xt))
    for c in m.candidates.values():
        assert c.model.n_levels == 3
        assert _rel(c.predict(xt).mean, p.high(xt)) < 0.3 * const


def test_select_method_breaks_near_ties_towards_the_simpler_model():
    from pdesurrogates.training._mf_auto import TIE_REL, select_method

    # within 10 %: the simpler method (AR(1) < NARGP < MF-DNN) wins
    assert select_method({"ar1": 1.0, "nargp": 0.95, "mfdnn": 0.92}) == "ar1"
    assert select_method({"ar1": 2.0, "nargp": 1.0, "mfdnn": 0.95}) == "nargp"
    # clearly lower wins
    assert select_method({"ar1": 1.0, "nargp": 0.5, "mfdnn": 0.2}) == "mfdnn"
    # scores at round-off (an exactly linear link) all tie: AR(1)
    assert select_method({"ar1": 1.6e-14, "nargp": 2.5e-15, "mfdnn": 2.8e-4}) == "ar1"
    low = 0.3
    assert select_method({"ar1": TIE_REL * low, "nargp": low}) == "ar1"
    assert select_method({"ar1": TIE_REL * low + 2e-6, "nargp": low}) == "nargp"


def test_mfdnn_score_adds_the_low_fidelity_part():
    from pdesurrogates.surrogates import CoKrigingGP
    from pdesurrogates.training._mf_auto import cv_folds, low_fidelity_part, mfdnn_score

    assert mfdnn_score(3e-4, 4e-2) == pytest.approx(np.hypot(3e-4, 4e-2), rel=1e-12)
    # Forrester's link is exactly affine: the top link's held-out error is round-off, so
    # all of AR(1)'s held-out error at new inputs is the low-fidelity emulator's
    p = forrester()
    x_lo = np.linspace(0, 1, 11)[:, None]
    x_hi = x_lo[[0, 2, 4, 6, 8, 10]]
    gp = CoKrigingGP(n_restarts=2).fit(x_lo, p.low(x_lo), x_hi, p.high(x_hi), bounds=p.bounds)
    folds = cv_folds(6, 0)
    top = gp.cv_error(folds)
    full = gp.cv_error(folds, all_levels=True)
    low = low_fidelity_part(gp, folds)
    assert top < 1e-6 < low
    assert low == pytest.approx(full, rel=1e-3)


def test_gp_scores_are_all_level_leave_one_out(monkeypatch):
    # the GPs are scored by leave-one-out with each point removed from every level; above
    # LOO_MAX high-fidelity points by the (at most 5) folds of cv_folds
    from pdesurrogates.training import _mf_auto

    p = nonlinear_sin()
    x_lo = np.linspace(0, 1, 21)[:, None]
    x_hi = x_lo[::2]
    y_lo, y_hi = p.low(x_lo), p.high(x_hi)
    m = fit_multifidelity(x_lo, y_lo, x_hi, y_hi, bounds=p.bounds, methods=("ar1",))
    gp = m.model
    loo = gp.cv_error(None, all_levels=True)
    five = gp.cv_error(_mf_auto.cv_folds(11, 0), all_levels=True)
    assert m.scores["ar1"] == pytest.approx(loo, rel=1e-6)
    assert abs(loo - five) > 0.01 * loo  # the two estimates differ: the test can fail
    monkeypatch.setattr(_mf_auto, "LOO_MAX", 5)
    assert _mf_auto.gp_score(gp, _mf_auto.cv_folds(11, 0)) == pytest.approx(five, rel=1e-9)
