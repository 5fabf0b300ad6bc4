"""CoKrigingGP: AR(1) co-kriging against closed forms and SMT's MFK; NARGP; SGPR; bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pdesurrogates.solvers.reference import currin, forrester, highdim, nonlinear_sin
from pdesurrogates.surrogates import CoKrigingGP
from pdesurrogates.testing import SurrogateContract
from pdesurrogates.uq import Prediction


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _forrester(n_lo):
    p = forrester()
    x_lo = np.linspace(0, 1, n_lo)[:, None]
    x_hi = np.array([[0.0], [0.4], [0.6], [1.0]])
    return p, x_lo, x_hi


XT = np.linspace(0, 1, 1000)[:, None]


def test_forrester_21_4_recovers_rho_and_is_near_exact():
    p, x_lo, x_hi = _forrester(21)
    gp = CoKrigingGP().fit(x_lo, p.low(x_lo), x_hi, p.high(x_hi), bounds=p.bounds)
    pred = gp.predict(XT)
    assert isinstance(pred, Prediction)
    # f_L = 0.5 f_H + ... so f_H = 2 f_L + affine: the exact rho is 1/A = 2
    assert gp.rho[0] == pytest.approx(2.0, rel=1e-3)
    # SMT MFK measures 5.3e-6 on this design; the target is within 2x of it
    assert _rel(pred.mean, p.high(XT)) < 1.1e-5
    # interpolation: no uncertainty left at the high-fidelity points
    at_hi = gp.predict(x_hi)
    np.testing.assert_allclose(at_hi.mean, p.high(x_hi), atol=1e-5)
    assert at_hi.std.max() < 1e-3


def test_forrester_11_4_within_twice_smt_mfk():
    smt_mfk = pytest.importorskip("smt.applications.mfk")
    p, x_lo, x_hi = _forrester(11)
    mfk = smt_mfk.MFK(theta0=[1.0], print_global=False)
    mfk.set_training_values(x_lo, p.low(x_lo)[:, None], name=0)
    mfk.set_training_values(x_hi, p.high(x_hi)[:, None])
    mfk.train()
    err_smt = _rel(mfk.predict_values(XT)[:, 0], p.high(XT))
    gp = CoKrigingGP(n_restarts=2).fit(x_lo, p.low(x_lo), x_hi, p.high(x_hi), bounds=p.bounds)
    pred = gp.predict(XT)
    err = _rel(pred.mean, p.high(XT))
    assert err < 2 * err_smt, (err, err_smt)
    # the 2-sigma band covers most of the truth (calibrated, not over-confident)
    z = np.abs(pred.mean - p.high(XT)) / np.maximum(pred.std, 1e-12)
    assert np.mean(z < 2) > 0.8


def test_nargp_beats_ar1_on_nonlinear_pair():
    p = nonlinear_sin()
    x_lo = np.linspace(0, 1, 50)[:, None]
    x_hi = x_lo[::4]
    ar1 = CoKrigingGP(n_restarts=2).fit(x_lo, p.low(x_lo), x_hi, p.high(x_hi))
    nargp = CoKrigingGP(kind="nargp", n_restarts=2, n_mc=100).fit(
        x_lo, p.low(x_lo), x_hi, p.high(x_hi)
    )
    e_ar1 = _rel(ar1.predict(XT).mean, p.high(XT))
    e_nargp = _rel(nargp.predict(XT).mean, p.high(XT))
    assert e_ar1 > 0.4  # an affine link cannot express (x - sqrt2) y^2
    assert e_nargp < 0.15
    assert nargp.predict(XT[:5]).std.shape == (5,)


def test_three_levels_recursive():
    # y0 = sin(6x), y1 = 2 y0 + x, y2 = 1.5 y1 - 1: exactly AR(1) twice
    def f0(x):
        return np.sin(6 * x[:, 0])

    x0 = np.linspace(0, 1, 15)[:, None]
    x1, x2 = x0[::2], x0[::4]
    y = [f0(x0), 2 * f0(x1) + x1[:, 0], 1.5 * (2 * f0(x2) + x2[:, 0]) - 1]
    gp = CoKrigingGP(n_levels=3, n_restarts=2).fit_levels([x0, x1, x2], y)
    truth = 1.5 * (2 * f0(XT) + XT[:, 0]) - 1
    assert _rel(gp.predict(XT).mean, truth) < 2e-3
    assert gp.rho == pytest.approx([2.0, 1.5], rel=2e-2)
    mid = gp.predict(XT, level=1).mean
    assert _rel(mid, 2 * f0(XT) + XT[:, 0]) < 2e-3


def test_sparse_low_fidelity_level_matches_exact():
    p = highdim(4)
    x = p.nested_design([400, 40], seed=0)
    xt = p.sample(500, seed=9)
    kw = {"n_restarts": 1}
    exact = CoKrigingGP(in_dim=4, lf_method="exact", **kw).fit(
        x[0], p.low(x[0]), x[1], p.high(x[1])
    )
    sparse = CoKrigingGP(in_dim=4, lf_method="sgpr", n_inducing=150, **kw).fit(
        x[0], p.low(x[0]), x[1], p.high(x[1])
    )
    e_exact = _rel(exact.predict(xt).mean, p.high(xt))
    e_sparse = _rel(sparse.predict(xt).mean, p.high(xt))
    const = _rel(np.full(len(xt), p.high(x[1]).mean()), p.high(xt))
    assert e_exact < 1e-3
    assert e_sparse < 0.05 and e_sparse < 0.2 * const
    assert sparse.levels[0].covar_module.inducing_points.shape == (150, 4)


def test_bad_input_errors():
    p, x_lo, x_hi = _forrester(11)
    y_lo, y_hi = p.low(x_lo), p.high(x_hi)
    gp = CoKrigingGP()
    with pytest.raises(ValueError, match=r"shape \(11,\)"):
        gp.fit(x_lo, y_lo[:-1], x_hi, y_hi)
    with pytest.raises(ValueError, match="NaN"):
        gp.fit(x_lo, np.where(np.arange(11) == 3, np.nan, y_lo), x_hi, y_hi)
    x_off = 0.9 * x_hi + 0.01
    with pytest.raises(ValueError, match="non-nested"):
        gp.fit(x_lo, y_lo, x_off, p.high(x_off))
    with pytest.raises(ValueError, match="fidelity level 0 are constant"):
        gp.fit(x_lo, np.full(11, 2.5), x_hi, y_hi)
    with pytest.raises(ValueError, match="at least 3"):
        gp.fit(x_lo, y_lo, x_hi[:2], y_hi[:2])
    with pytest.raises(ValueError, match="not fitted"):
        gp.predict(XT)
    with pytest.raises(ValueError, match="kind must be"):
        CoKrigingGP(kind="linear")
    with pytest.raises(ValueError, match="n_levels"):
        CoKrigingGP(n_levels=1)
    for flag in ("centred", "quadratic", "linear_trend", "fixed_mean"):
        with pytest.raises(ValueError, match=rf"{flag} needs one value per level \(2\); got 1"):
            CoKrigingGP(n_levels=2, **{flag: [True]})
    # points outside declared bounds: a warning naming the dimension, then a normal fit
    with pytest.warns(UserWarning, match=r"training input dimension 0 .* outside the declared"):
        CoKrigingGP(n_restarts=1).fit(x_lo, y_lo, x_hi, y_hi, bounds=[[0.0, 0.5]])
    # non-nested designs are accepted when asked for
    ok = CoKrigingGP(require_nested=False, n_restarts=1).fit(x_lo, y_lo, x_off, p.high(x_off))
    assert _rel(ok.predict(XT).mean, p.high(XT)) < 0.2


def test_time_budget_stops_restarts_and_levels_are_logged(caplog, monkeypatch):
    """A spent budget leaves one start per level; the fit still interpolates."""
    p, x_lo, x_hi = _forrester(21)
    calls = []
    import pdesurrogates.surrogates._cokriging_fit as fit_mod

    original = fit_mod.lbfgs

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(fit_mod, "lbfgs", counting)
    with caplog.at_level("INFO", logger="pdesurrogates"):
        gp = CoKrigingGP(n_restarts=6).fit(
            x_lo, p.low(x_lo), x_hi, p.high(x_hi), bounds=p.bounds, max_time=1e-9
        )
    assert len(calls) == 2  # one start per level, none of the other 5 restarts
    np.testing.assert_allclose(gp.predict(x_hi).mean, p.high(x_hi), atol=1e-4)
    lines = [r.getMessage() for r in caplog.records if "co-kriging level" in r.getMessage()]
    assert [line.split(":")[0] for line in lines] == ["co-kriging level 0", "co-kriging level 1"]
    assert "rho=2" in lines[1]
    with pytest.raises(ValueError, match="time budget"):
        CoKrigingGP().fit(x_lo, p.low(x_lo), x_hi, p.high(x_hi), max_time=-1.0)


def test_progress_bar_runs(capsys):
    p, x_lo, x_hi = _forrester(8)
    x_hi = x_lo[[0, 3, 5, 7]]
    gp = CoKrigingGP(n_restarts=2).fit(x_lo, p.low(x_lo), x_hi, p.high(x_hi), progress=True)
    assert gp.is_fitted
    assert capsys.readouterr().out == ""  # progress goes to stderr only


class TestCoKrigingContract(SurrogateContract):
    atol32 = 1e-4
    atol64 = 1e-8

    def make_model(self):
        p, x_lo, x_hi = _forrester(8)
        x_hi = x_lo[[0, 3, 5, 7]]
        return CoKrigingGP(n_restarts=1).fit(x_lo, p.low(x_lo), x_hi, p.high(x_hi))

    def make_inputs(self, batch_size, *, generator, dtype=torch.float32):
        return (torch.rand(batch_size, 1, generator=generator, dtype=dtype),)


def _random_forrester(seed, n_lo=12, n_hi=6, n_test=400):
    """emukit's Forrester design: ``n_lo`` uniform points, the first ``n_hi`` also HF."""
    p = forrester()
    x_lo = np.random.default_rng(seed).random((n_lo, 1))
    xt = np.random.default_rng(seed + 1000).random((n_test, 1))
    return p, x_lo, x_lo[:n_hi], xt


@pytest.mark.parametrize(("seed", "target"), [(0, 0.05), (1, 0.02), (2, 0.35)])
def test_nargp_forrester_12_6_beats_a_constant(seed, target):
    # before the link mean, NARGP gave 0.70 / 0.57 / 0.27 here (constant: 1.0 / 1.26 / 1.12);
    # seed 2 leaves (0.81, 1] without low-fidelity points, where every model extrapolates.
    # Seed 0 has near-duplicate points (0.813, 0.816): the fitted nugget of 4e-9 gives
    # 6.8e-3; at the noise floor (leave-one-out alone, likelihood 0.18 nats lower): 5.3e-2
    p, x_lo, x_hi, xt = _random_forrester(seed)
    gp = CoKrigingGP(kind="nargp", n_restarts=2, n_mc=64, seed=seed)
    gp.fit(x_lo, p.low(x_lo), x_hi, p.high(x_hi), bounds=p.bounds)
    err = _rel(gp.predict(xt).mean, p.high(xt))
    const = _rel(np.full(len(xt), p.high(x_hi).mean()), p.high(xt))
    assert err < target and err < 0.3 * const, (err, const)


@pytest.mark.parametrize("kind", ["ar1", "nargp"])
def test_shift_and_scale_invariance(kind):
    # x -> 15 x - 5, y -> 1000 + 50 y: the scaled problem is the same, so is the error
    p, x_lo, x_hi = _forrester(11)
    y_lo, y_hi = p.low(x_lo), p.high(x_hi)
    kw = {"kind": kind, "n_restarts": 1, "n_mc": 32}
    gp = CoKrigingGP(**kw).fit(x_lo, y_lo, x_hi, y_hi, bounds=p.bounds)
    gp2 = CoKrigingGP(**kw).fit(
        15 * x_lo - 5, 1000 + 50 * y_lo, 15 * x_hi - 5, 1000 + 50 * y_hi, bounds=[[-5.0, 10.0]]
    )
    pred, pred2 = gp.predict(XT), gp2.predict(15 * XT - 5)
    e1, e2 = _rel(pred.mean, p.high(XT)), _rel(pred2.mean - 1000, 50 * p.high(XT))
    assert e1 < 0.1 and e2 == pytest.approx(e1, rel=0.05)
    np.testing.assert_allclose(pred2.std, 50 * pred.std, rtol=0.05, atol=1e-3 * 50)


def test_cv_error_is_leave_one_out():
    # the closed form equals refitting the top level's GP without each point in turn
    p = nonlinear_sin()
    x_lo = np.linspace(0, 1, 21)[:, None]
    x_hi = x_lo[::4]
    gp = CoKrigingGP(n_restarts=1, trend="constant")
    gp.fit(x_lo, p.low(x_lo), x_hi, p.high(x_hi), bounds=p.bounds)
    top = gp.levels[-1]
    z, y = top.z_train.clone(), top.y_train.clone()
    errs = []
    for i in range(len(y)):
        keep = torch.arange(len(y)) != i
        # generalised least squares for the link (rho, beta) without point i
        with torch.no_grad():
            k = top.covar_module(z[keep]).to_dense() + top.likelihood.noise * torch.eye(5)
            h = top.mean_module.basis(z[keep])
            ki = torch.linalg.inv(k)
            coef = torch.linalg.solve(h.T @ ki @ h, h.T @ ki @ y[keep])
            ks = top.covar_module(z[i : i + 1], z[keep]).to_dense()
            pred = top.mean_module.basis(z[i : i + 1]) @ coef + ks @ ki @ (y[keep] - h @ coef)
        errs.append(float(y[i] - pred[0]))
    loo = float(np.sqrt(np.mean(np.square(errs))))
    assert loo > 0.05  # a real test: AR(1) misses this nonlinear link
    assert gp.cv_error() == pytest.approx(loo, rel=1e-6)


def test_forrester_12_6_length_scales_by_leave_one_out():
    # the peer benchmark's design (bench_mf_peers.py, seed 0). The likelihood alone picks
    # ℓ = 0.185 for the low fidelity and gives 1.43e-2 (emukit's linear model: 1.5e-3);
    # with the leave-one-out check of the length scales (ℓ × 1.3 or more), 4.5e-3
    p = forrester(c=5.0)
    x_lo = p.sample(12, seed=0, method="lhs")
    x_hi = x_lo[np.sort(np.random.default_rng(0).choice(12, 6, replace=False))]
    gp = CoKrigingGP(n_restarts=4).fit(x_lo, p.low(x_lo), x_hi, p.high(x_hi), bounds=p.bounds)
    xt = p.sample(2000, seed=10_000, method="uniform")
    # and with the noise lowered to the floor (the likelihood stalled at 6e-8): 1.2e-3
    assert _rel(gp.predict(xt).mean, p.high(xt)) < 1.5e-3
    assert float(gp.levels[0].covar_module.base_kernel.lengthscale.detach()) > 0.22  # lengthened


def test_affine_pair_recovers_rho_and_interpolates():
    # Forrester's high fidelity is exactly 2 f_L - 20 (x - 0.5) - 10: AR(1) with a linear
    # trend recovers rho = 2, and the error is that of the low-fidelity emulator alone
    # (twice it, in relative terms of f_H). emukit's linear model: 1.5e-3 on this design
    p = forrester(c=5.0)
    x_lo = p.sample(12, seed=0, method="lhs")
    x_hi = x_lo[np.sort(np.random.default_rng(0).choice(12, 6, replace=False))]
    gp = CoKrigingGP(n_restarts=4).fit(x_lo, p.low(x_lo), x_hi, p.high(x_hi), bounds=p.bounds)
    assert gp.rho[0] == pytest.approx(2.0, abs=1e-6)
    assert gp.centred == [False, False]  # the link needs its trend: no centred link
    xt = p.sample(2000, seed=10_000, method="uniform")
    e_lo = _rel(gp.predict(xt, level=0).mean, p.low(xt))
    e_hi = _rel(gp.predict(xt).mean, p.high(xt))
    assert e_lo < 6e-4
    diff = gp.predict(xt).mean - 2 * gp.predict(xt, level=0).mean  # the affine part, exact
    np.testing.assert_allclose(diff, p.high(xt) - 2 * p.low(xt), atol=1e-5)
    assert e_hi < 1.5e-3
    # the noise of the low level went to the floor (interpolation of noise-free data)
    assert float(gp.levels[0].likelihood.noise.detach()) < 1e-12


def test_noisy_data_keep_their_noise():
    # interpolating noisy outputs raises the leave-one-out error: the fitted noise stays
    rng = np.random.default_rng(3)
    x = np.sort(rng.random(40))[:, None]
    y_lo = np.sin(6 * x[:, 0]) + 0.1 * rng.standard_normal(40)
    y_hi = 2 * np.sin(6 * x[::2, 0]) + 0.1 * rng.standard_normal(20)
    gp = CoKrigingGP(n_restarts=2).fit(x, y_lo, x[::2], y_hi)
    # noise std 0.1 of outputs with std ~0.7: variance ~0.02 in standardised units
    assert 3e-3 < float(gp.levels[0].likelihood.noise.detach()) < 0.1


def test_all_levels_cross_validation_is_refit_free_hold_out():
    # cv_residuals(all_levels=True) equals conditioning every level on the data without
    # the fold (hyperparameters fixed) and predicting the fold as new inputs
    p = nonlinear_sin()
    x_lo = np.linspace(0, 1, 21)[:, None]
    x_hi = x_lo[::4]
    gp = CoKrigingGP(n_restarts=1, trend="constant")
    gp.fit(x_lo, p.low(x_lo), x_hi, p.high(x_hi), bounds=p.bounds)
    lo, top = gp.levels
    folds = [np.array([0, 3]), np.array([1, 4]), np.array([2, 5])]

    def gls_mean(gp_k, z, y, zq):
        with torch.no_grad():
            k = gp_k.covar_module(z).to_dense() + gp_k.likelihood.noise * torch.eye(len(y))
            ki = torch.linalg.inv(k)
            basis = getattr(gp_k.mean_module, "basis", lambda v: torch.ones(len(v), 1).double())
            h = basis(z)
            coef = torch.linalg.solve(h.T @ ki @ h, h.T @ ki @ y)
            ks = gp_k.covar_module(zq, z).to_dense()
            return basis(zq) @ coef + ks @ ki @ (y - h @ coef)

    e = torch.empty(6, dtype=torch.float64)
    for f in folds:
        rows_lo = 4 * f  # x_hi = x_lo[::4]
        keep_lo = np.setdiff1d(np.arange(21), rows_lo)
        keep_hi = np.setdiff1d(np.arange(6), f)
        m_lo = gls_mean(lo, lo.z_train[keep_lo], lo.y_train[keep_lo], lo.z_train[rows_lo])
        zq = torch.cat([top.z_train[f, :1], m_lo[:, None]], 1)
        e[f] = top.y_train[f] - gls_mean(top, top.z_train[keep_hi], top.y_train[keep_hi], zq)
    got = gp.cv_residuals(folds, all_levels=True)
    np.testing.assert_allclose(got.numpy(), e.numpy(), rtol=1e-4, atol=1e-9)
    # the low-fidelity emulation error at held-out inputs makes it larger than the top's
    assert gp.cv_error(folds, all_levels=True) > gp.cv_error(folds)


def test_variance_factor_is_conformal_leave_one_out_quantile():
    # the factor on a level's variance is the larger of the mean of e_i²/s_i² and the
    # squared split-conformal 90 % quantile of |e_i|/s_i over z_0.95 = 1.645, where e_i
    # and s_i² are the leave-one-out residual and universal-kriging variance of point i,
    # computed here by removing each point in turn
    from pdesurrogates.surrogates._cokriging_gp import loo_variance_ratio

    p = nonlinear_sin()
    x_lo = np.linspace(0, 1, 21)[:, None]
    x_hi = x_lo[::4]
    gp = CoKrigingGP(n_restarts=1, trend="constant", kind="ar1")
    gp.fit(x_lo, p.low(x_lo), x_hi, p.high(x_hi), bounds=p.bounds)
    top = gp.levels[-1]
    z, y, n = top.z_train, top.y_train, len(top.y_train)
    r = []
    with torch.no_grad():
        for i in range(n):
            keep = torch.arange(n) != i
            a = top.covar_module(z[keep]).to_dense() + top.likelihood.noise * torch.eye(n - 1)
            ai = torch.linalg.inv(a)
            h, hi = top.mean_module.basis(z[keep]), top.mean_module.basis(z[i : i + 1])[0]
            m = torch.linalg.inv(h.T @ ai @ h)
            coef = m @ h.T @ ai @ y[keep]
            k = top.covar_module(z[i : i + 1], z[keep]).to_dense()[0]
            kii = top.covar_module(z[i : i + 1]).to_dense()[0, 0] + top.likelihood.noise[0]
            u = hi - h.T @ ai @ k
            var = kii - k @ ai @ k + u @ m @ u
            e = y[i] - hi @ coef - k @ ai @ (y[keep] - h @ coef)
            r.append(float(e**2 / var))
    r = np.sort(r)
    rank = min(n, int(np.ceil(0.9 * (n + 1)))) - 1  # the largest below 9 points
    conformal = r[rank] / 1.6448536269514722**2
    want = float(np.clip(max(r.mean(), conformal), 1.0, 100.0))
    assert want > 1.5  # a real test: AR(1) misses this nonlinear link, the fit is overconfident
    assert r.mean() != pytest.approx(conformal, rel=0.01)  # the two estimates differ
    assert loo_variance_ratio(top) == pytest.approx(want, rel=1e-5)


def test_half_sample_mode_closed_form_and_equivariance():
    from pdesurrogates.surrogates._cokriging_fit import half_sample_mode

    y = np.array([9.0, 0.25, 0.0, 5.0, 0.1, 0.2])
    # halves of the sorted values: [0.1, 0.2, 0.25] is the shortest of the four windows
    assert half_sample_mode(y) == pytest.approx((0.1 + 0.2 + 0.25) / 3, rel=1e-14)
    assert half_sample_mode(3 - 7 * y) == pytest.approx(3 - 7 * half_sample_mode(y), rel=1e-12)
    assert half_sample_mode(np.array([1.0, 4.0])) == 2.5


def _wells(x):
    # flat at 0 away from two wells: the mean of the data sits far below the flat part
    t = x[:, 0]
    return -np.exp(-(((t - 0.3) / 0.06) ** 2)) - 0.6 * np.exp(-(((t - 0.75) / 0.05) ** 2))


def test_constant_mean_fixed_at_the_mode_where_leave_one_out_prefers_it():
    x = np.linspace(0, 1, 25)[:, None]
    xh = x[::3]
    gp = CoKrigingGP(n_restarts=2).fit(x, _wells(x), xh, 2 * _wells(xh) + 0.1, bounds=[[0, 1]])
    assert gp.fixed_mean == [True, False]
    lo = gp.levels[0]
    y = lo.y_train.numpy()
    from pdesurrogates.surrogates._cokriging_fit import half_sample_mode

    c = float(lo.mean_module.constant.detach())
    assert c == pytest.approx(half_sample_mode(y), rel=1e-12) and c > np.median(y)
    # closed-form leave-one-out with the mean fixed: y_i - (c + k_i K_{-i}^{-1} (y_{-i} - c))
    z, yt = lo.z_train, lo.y_train
    errs = []
    with torch.no_grad():
        for i in range(len(yt)):
            keep = torch.arange(len(yt)) != i
            k = lo.covar_module(z[keep]).to_dense() + lo.likelihood.noise * torch.eye(len(yt) - 1)
            ks = lo.covar_module(z[i : i + 1], z[keep]).to_dense()
            pred = c + ks @ torch.linalg.solve(k, yt[keep] - c)
            errs.append(float(yt[i] - pred[0]))
    from pdesurrogates.surrogates._cokriging_gp import loo_residuals

    np.testing.assert_allclose(loo_residuals(lo).numpy(), errs, rtol=1e-5, atol=1e-8)
    # the saved structure rebuilds the same model; the mode predicts the level better
    twin = CoKrigingGP(**gp.get_config())
    twin.load_state_dict(gp.state_dict())
    np.testing.assert_allclose(twin.predict(XT).mean, gp.predict(XT).mean, rtol=1e-10)
    assert twin.cv_error(all_levels=True) == pytest.approx(gp.cv_error(all_levels=True))
    e_mode = _rel(gp.predict(XT, level=0).mean, _wells(XT))
    with torch.no_grad():
        lo.mean_module.constant.fill_(float(np.mean(y)))  # back to a mean-like constant
    lo.train()
    lo.eval()
    assert e_mode < 0.99 * _rel(gp.predict(XT, level=0).mean, _wells(XT))  # 0.0088, 0.0089


def test_small_likelihood_margin_interpolates_when_both_leave_one_out_errors_agree():
    # Currin 40/10 (LHS, seed 0): the lowest level's likelihood prefers a nugget of 3e-6
    # (standardised) to interpolation by 1.98 nats; interpolating lowers the RMS (0.038 ->
    # 0.034) and the median (0.0073 -> 0.0066) absolute leave-one-out error, so the level
    # interpolates: test error 0.0122 -> 0.0105 (emukit's zero-noise model: 0.0106)
    p = currin()
    x_lo = p.sample(40, seed=0)
    x_hi = x_lo[np.sort(np.random.default_rng(0).choice(40, 10, replace=False))]
    gp = CoKrigingGP(in_dim=2, seed=0).fit(x_lo, p.low(x_lo), x_hi, p.high(x_hi), bounds=p.bounds)
    assert float(gp.levels[0].likelihood.noise.detach()) < 1e-12
    xt = p.sample(2000, seed=10_000, method="uniform")
    assert _rel(gp.predict(xt, level=0).mean, p.low(xt)) < 0.0112


def test_nargp_upper_levels_get_more_starts():
    from pdesurrogates.surrogates._cokriging_fit import NARGP_STARTS, _n_starts

    for kind, top in (("ar1", 3), ("nargp", 3 * NARGP_STARTS)):
        gp = CoKrigingGP(kind=kind, n_restarts=3, n_train=[8, 4], n_levels=2)
        assert [_n_starts(gp, lv) for lv in gp.levels] == [3, top]


def test_centred_link_kept_where_its_evidence_is_higher():
    # Currin 40/10 (the peer benchmark's seed-0 design): the centred link m + rho (y - m)
    # with a zero-mean discrepancy has the higher evidence (1.43 against 0.66 per point)
    # and a discrepancy variance in line with its targets (ratio 1.3): kept; top-level
    # error 0.0203 -> 0.0179, below emukit's linear model (0.0191)
    from scipy.stats import multivariate_normal

    from pdesurrogates.surrogates._cokriging_centre import (
        MAX_AMPLITUDE,
        amplitude_ratio,
        link_evidence,
    )

    p = currin()
    x_lo = p.sample(40, seed=0)
    x_hi = x_lo[np.sort(np.random.default_rng(0).choice(40, 10, replace=False))]
    gp = CoKrigingGP(in_dim=2, seed=0).fit(x_lo, p.low(x_lo), x_hi, p.high(x_hi), bounds=p.bounds)
    assert gp.centred == [False, True] and gp.linear_trend == [False, False]
    xt = p.sample(2000, seed=10_000, method="uniform")
    assert _rel(gp.predict(xt).mean, p.high(xt)) < 0.0191
    top = gp.levels[1]
    assert amplitude_ratio(top) <= MAX_AMPLITUDE
    # the centre is the lowest level's constant mean, the same value in user units
    m = float(gp.y_mean[0] + gp.y_std[0] * gp.levels[0].mean_module.constant.detach())
    c_lo, c_hi = top.mean_module.centre.tolist()
    assert float(gp.y_mean[0] + gp.y_std[0] * c_lo) == pytest.approx(m, rel=1e-12)
    assert float(gp.y_mean[1] + gp.y_std[1] * c_hi) == pytest.approx(m, rel=1e-12)
    z = torch.tensor([[0.3, 0.6, -0.4], [0.9, 0.1, 1.2]], dtype=torch.float64)
    rho = float(top.mean_module.rho.detach())
    with torch.no_grad():
        np.testing.assert_allclose(top.mean_module(z), c_hi + rho * (z[:, -1] - c_lo), rtol=1e-12)
    # evidence: the coefficient rho integrated under N(0, 1), against scipy
    zt, yt = top.z_train, top.y_train.numpy()
    with torch.no_grad():
        cov = top.covar_module(zt).to_dense().numpy() + float(top.likelihood.noise) * np.eye(10)
    h = zt[:, -1].numpy() - c_lo
    ref = multivariate_normal(np.zeros(10), cov + np.outer(h, h)).logpdf(yt - c_hi) / 10
    assert link_evidence(top) == pytest.approx(ref, rel=1e-6)
    # the saved structure rebuilds the same model
    twin = CoKrigingGP(**gp.get_config())
    twin.load_state_dict(gp.state_dict())
    np.testing.assert_allclose(twin.predict(xt).mean, gp.predict(xt).mean, rtol=1e-10)
    assert twin.cv_error(all_levels=True) == pytest.approx(gp.cv_error(all_levels=True))
