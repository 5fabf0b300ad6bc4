"""uq.metrics against peer libraries (scoringrules, properscoring, uncertainty-toolbox),
closed forms and scipy."""

from __future__ import annotations

import math

import numpy as np
import properscoring as ps
import pytest
import scoringrules as sr
import torch
import uncertainty_toolbox as uct
from scipy import stats

from pdesurrogates.uq import Prediction, metrics


@pytest.fixture
def gauss():
    rng = np.random.default_rng(42)
    mu = rng.normal(size=(6, 50))
    sd = rng.uniform(0.2, 1.5, size=(6, 50))
    y = mu + sd * rng.normal(size=(6, 50)) * rng.uniform(0.5, 1.8, size=(6, 50))
    return mu, sd, y


@pytest.fixture
def ens():
    rng = np.random.default_rng(7)
    s = rng.normal(size=(9, 5, 40)) + rng.normal(size=(1, 5, 40))
    y = rng.normal(size=(5, 40))
    return s, y


# ------------------------------------------------------------------ CRPS oracles
def test_crps_gaussian_matches_scoringrules_properscoring_and_toolbox(gauss):
    mu, sd, y = gauss
    ours = metrics.crps_gaussian(mu, sd, y, reduction="none")
    assert ours.shape == y.shape
    np.testing.assert_allclose(ours, sr.crps_normal(y, mu, sd), rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours, ps.crps_gaussian(y, mu, sd), rtol=0, atol=1e-10)
    tb = uct.metrics_scoring_rule.crps_gaussian(mu.ravel(), sd.ravel(), y.ravel())
    assert abs(metrics.crps_gaussian(mu, sd, y) - tb) < 1e-10
    np.testing.assert_allclose(
        metrics.crps_gaussian(mu, sd, y, reduction="sample"), ours.mean(1), atol=1e-12
    )


def test_crps_gaussian_zero_std_is_absolute_error():
    assert metrics.crps_gaussian(1.0, 0.0, 3.5) == pytest.approx(2.5, abs=1e-15)


@pytest.mark.parametrize("estimator", ["fair", "pwm", "nrg"])
def test_crps_ensemble_matches_scoringrules(ens, estimator):
    s, y = ens
    ours = metrics.crps_ensemble(s, y, estimator=estimator, reduction="none")
    ref = sr.crps_ensemble(y, np.moveaxis(s, 0, -1), estimator=estimator)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10)


def test_crps_ensemble_nrg_matches_properscoring_and_fair_is_unbiased(ens):
    s, y = ens
    ours = metrics.crps_ensemble(s, y, estimator="nrg", reduction="none")
    np.testing.assert_allclose(ours, ps.crps_ensemble(y, s, axis=0), rtol=0, atol=1e-10)
    # fair = pwm algebraically; fair - nrg = (1/(2M^2(M-1))) sum|xi-xj| >= 0
    fair = metrics.crps_ensemble(s, y, estimator="fair", reduction="none")
    np.testing.assert_allclose(
        fair, metrics.crps_ensemble(s, y, estimator="pwm", reduction="none"), atol=1e-12
    )
    assert np.all(fair <= ours + 1e-15)


def test_fair_crps_is_unbiased_for_the_true_distribution():
    # members ~ N(0,1), y fixed at 0.3: E[fair CRPS] = CRPS(N(0,1), 0.3) even for M = 3
    g = torch.Generator().manual_seed(0)
    s = torch.randn(3, 200_000, generator=g, dtype=torch.float64)
    y = torch.full((200_000,), 0.3, dtype=torch.float64)
    fair = float(metrics.crps_ensemble(s, y, estimator="fair"))
    nrg = float(metrics.crps_ensemble(s, y, estimator="nrg"))
    exact = float(metrics.crps_gaussian(0.0, 1.0, 0.3))
    assert abs(fair - exact) < 0.004
    assert nrg - exact > 0.05  # the plain estimator penalises the 3-member ensemble


def test_crps_dispatch_and_torch(ens, gauss):
    s, y = ens
    p = Prediction(None, samples=torch.as_tensor(s))
    v = metrics.crps(p, torch.as_tensor(y))
    assert isinstance(v, torch.Tensor)
    ref = sr.crps_ensemble(y, np.moveaxis(s, 0, -1), estimator="fair").mean()
    assert abs(float(v) - ref) < 1e-10
    mu, sd, yg = gauss
    assert abs(metrics.crps(Prediction(mu, std=sd), yg) - sr.crps_normal(yg, mu, sd).mean()) < 1e-10


def test_crps_from_many_quantiles_approaches_closed_form():
    levels = np.linspace(0.0005, 0.9995, 1000)
    mu, sd, y = 0.2, 1.3, np.array([0.9, -1.0, 3.0])
    q = stats.norm.ppf(levels, mu, sd)[:, None] * np.ones((1, 3))
    p = Prediction(np.full(3, mu), quantiles=q, levels=levels)
    np.testing.assert_allclose(
        metrics.crps(p, y, reduction="none"),
        metrics.crps_gaussian(mu, 1.3, y, reduction="none"),
        rtol=2e-3,
    )


def test_energy_score_matches_scoringrules(ens):
    s, y = ens
    ref_nrg = sr.es_ensemble(y, np.moveaxis(s, 0, 1), estimator="nrg")
    ref_fair = sr.es_ensemble(y, np.moveaxis(s, 0, 1), estimator="fair")
    np.testing.assert_allclose(
        metrics.energy_score(s, y, estimator="nrg", reduction="sample"), ref_nrg, atol=1e-10
    )
    np.testing.assert_allclose(metrics.energy_score(s, y, reduction="sample"), ref_fair, atol=1e-10)


# ------------------------------------------------------------------ other scores
def test_nll_matches_toolbox_and_scipy(gauss):
    mu, sd, y = gauss
    ours = metrics.nll_gaussian(mu, sd, y, reduction="none")
    np.testing.assert_allclose(ours, -stats.norm.logpdf(y, mu, sd), atol=1e-12)
    tb = uct.metrics_scoring_rule.nll_gaussian(mu.ravel(), sd.ravel(), y.ravel())
    assert abs(metrics.nll_gaussian(mu, sd, y) - tb) < 1e-10


def test_interval_score_matches_scoringrules_and_toolbox(gauss):
    mu, sd, y = gauss
    for level in (0.5, 0.9):
        lo, hi = stats.norm.ppf((1 - level) / 2, mu, sd), stats.norm.ppf((1 + level) / 2, mu, sd)
        ours = metrics.interval_score(lo, hi, y, level=level, reduction="none")
        np.testing.assert_allclose(ours, sr.interval_score(y, lo, hi, 1 - level), atol=1e-10)
    # uncertainty-toolbox averages over 99 central levels 0.01..0.99
    p = Prediction(mu, std=sd)
    vals = []
    for level in np.linspace(0.01, 0.99, 99):
        lo, hi = p.interval(level)
        vals.append(metrics.interval_score(lo, hi, y, level=level))
    tb = uct.metrics_scoring_rule.interval_score(mu.ravel(), sd.ravel(), y.ravel())
    assert abs(np.mean(vals) - tb) < 1e-10


# ------------------------------------------------------------------ calibration
def test_calibration_metrics_match_toolbox(gauss):
    mu, sd, y = gauss
    p = Prediction(mu, std=sd)
    exp, obs = metrics.calibration_curve(p, y)
    e_tb, o_tb = uct.metrics_calibration.get_proportion_lists_vectorized(
        mu.ravel(), sd.ravel(), y.ravel()
    )
    np.testing.assert_allclose(exp, e_tb, atol=1e-15)
    np.testing.assert_allclose(obs, o_tb, atol=1e-15)
    args = (mu.ravel(), sd.ravel(), y.ravel())
    assert abs(metrics.miscalibration_area(p, y) - uct.miscalibration_area(*args)) < 1e-10
    assert abs(metrics.rmsce(p, y) - uct.root_mean_squared_calibration_error(*args)) < 1e-10
    assert abs(metrics.mace(p, y) - uct.mean_absolute_calibration_error(*args)) < 1e-10
    assert abs(metrics.sharpness(p) - uct.sharpness(sd.ravel())) < 1e-12
    # per-sample curves equal the toolbox on each field
    per = metrics.miscalibration_area(p, y, reduction="sample")
    for i in range(y.shape[0]):
        assert abs(per[i] - uct.miscalibration_area(mu[i], sd[i], y[i])) < 1e-10


def test_calibration_of_well_specified_ensemble_is_small():
    g = torch.Generator().manual_seed(1)
    n, m = 20_000, 50
    s = torch.randn(m, n, generator=g, dtype=torch.float64)
    y = torch.randn(n, generator=g, dtype=torch.float64)
    p = Prediction(None, samples=s)
    _exp, obs = metrics.calibration_curve(p, y, n_bins=21)
    # the central interval between linear empirical quantiles of M members holds y with
    # probability close to the level (exact at p = 1: (M-1)/(M+1))
    assert abs(float(obs[-1]) - (m - 1) / (m + 1)) < 0.01
    # so obs(p) ~ p (M-1)/(M+1) and the miscalibration area ~ 1/(M+1)
    assert abs(float(metrics.miscalibration_area(p, y)) - 1 / (m + 1)) < 0.005
    # an over-confident ensemble (std halved) is far off
    p_bad = Prediction(None, samples=0.5 * s)
    assert float(metrics.miscalibration_area(p_bad, y)) > 0.1
    # coverage at 0.9 pooled close to 0.9 (M-1)/(M+1)
    assert abs(float(metrics.coverage(p, y, 0.9)) - 0.9 * (m - 1) / (m + 1)) < 0.01


def test_coverage_pointwise_and_field(gauss):
    mu, sd, y = gauss
    p = Prediction(mu, std=sd)
    cov = metrics.coverage(p, y, [0.5, 0.9])
    for k, a in enumerate([0.5, 0.9]):
        z = np.abs(y - mu) / sd
        assert cov[k] == pytest.approx(np.mean(z <= stats.norm.ppf(0.5 + a / 2)), abs=1e-15)
    per = metrics.coverage(p, y, 0.9, reduction="sample")
    z = np.abs(y - mu) / sd
    np.testing.assert_allclose(per, np.mean(z <= stats.norm.ppf(0.95), axis=1))
    fld = metrics.coverage(p, y, 0.9, kind="field", reduction="sample")
    np.testing.assert_array_equal(fld, np.all(z <= stats.norm.ppf(0.95), axis=1))
    frac = metrics.coverage(p, y, 0.9, kind="field", min_fraction=0.7)
    assert frac == pytest.approx(np.mean(np.mean(z <= stats.norm.ppf(0.95), axis=1) >= 0.7))
    hits = metrics.coverage(p, y, [0.5, 0.9], reduction="none")
    assert hits.shape == (2, *y.shape)


def test_pit_gaussian_and_rank_histogram():
    mu = np.zeros(4)
    sd = np.ones(4)
    y = np.array([-1.0, 0.0, 0.5, 2.0])
    np.testing.assert_allclose(metrics.pit(Prediction(mu, std=sd), y), stats.norm.cdf(y))
    s = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])  # 3 members, 2 points
    u = metrics.pit(Prediction(None, samples=s), np.array([2.5, 9.0]))
    np.testing.assert_allclose(u, [2.5 / 4, 3.5 / 4])
    # KS statistic matches scipy
    rng = np.random.default_rng(0)
    yy = rng.normal(size=(3, 300))
    pg = Prediction(np.zeros((3, 300)), std=np.ones((3, 300)))
    ks = metrics.pit(pg, yy, reduction="mean")
    assert ks == pytest.approx(stats.kstest(stats.norm.cdf(yy.ravel()), "uniform").statistic)
    ks_s = metrics.pit(pg, yy, reduction="sample")
    for i in range(3):
        assert ks_s[i] == pytest.approx(stats.kstest(stats.norm.cdf(yy[i]), "uniform").statistic)


def test_spread_skill_of_reliable_ensemble_is_one():
    g = torch.Generator().manual_seed(3)
    m, n = 5, 400_000
    truth_and_members = torch.randn(m + 1, n, generator=g, dtype=torch.float64)
    p = Prediction(None, samples=truth_and_members[1:])
    ssr = float(metrics.spread_skill_ratio(p, truth_and_members[0]))
    assert abs(ssr - 1.0) < 0.01
    pg = Prediction(
        torch.zeros(n, dtype=torch.float64), std=torch.full((n,), 2.0, dtype=torch.float64)
    )
    assert abs(float(metrics.spread_skill_ratio(pg, truth_and_members[0])) - 2.0) < 0.01


# ------------------------------------------------------------------ accuracy
def test_rel_l2_rmse_nrmse():
    rng = np.random.default_rng(5)
    y = rng.normal(size=(4, 8, 8))
    p = y + 0.1 * rng.normal(size=y.shape)
    per = metrics.rel_l2(p, y, reduction="none")
    ref = np.linalg.norm((p - y).reshape(4, -1), axis=1) / np.linalg.norm(y.reshape(4, -1), axis=1)
    np.testing.assert_allclose(per, ref, rtol=1e-13)
    assert metrics.rel_l2(p, y) == pytest.approx(ref.mean())
    assert metrics.rmse(p, y) == pytest.approx(np.sqrt(np.mean((p - y) ** 2)))
    np.testing.assert_allclose(
        metrics.rmse(p, y, reduction="sample"), np.sqrt(np.mean((p - y) ** 2, axis=(1, 2)))
    )
    assert metrics.mae(p, y) == pytest.approx(np.mean(np.abs(p - y)))
    np.testing.assert_allclose(metrics.nrmse(p, y, norm="rms", reduction="none"), ref, rtol=1e-12)
    vr = np.sqrt(np.mean((p - y) ** 2, axis=(1, 2)) / np.var(y, axis=(1, 2)))
    np.testing.assert_allclose(metrics.nrmse(p, y, reduction="none"), vr, rtol=1e-12)
    # per time step: fold axis 1 into the sample axis
    per_t = metrics.rel_l2(p.reshape(32, 8), y.reshape(32, 8), reduction="none")
    ref_t = np.linalg.norm(p - y, axis=2) / np.linalg.norm(y, axis=2)
    np.testing.assert_allclose(per_t.reshape(4, 8), ref_t, rtol=1e-13)
    # torch in, torch out with gradients
    pt = torch.tensor(p, requires_grad=True)
    loss = metrics.rel_l2(pt, torch.tensor(y))
    loss.backward()
    assert pt.grad is not None and pt.grad.shape == p.shape


@pytest.mark.parametrize("n", [64, 256])
def test_rel_h1_converges_to_the_continuous_norm(n):
    # y = sin(2 pi x) sin(pi y), e = 0.1 sin(4 pi x) sin(pi y) on [0, 1]^2
    x = np.linspace(0, 1, n)
    xx, yy = np.meshgrid(x, x, indexing="ij")
    y = np.sin(2 * np.pi * xx) * np.sin(np.pi * yy)
    e = 0.1 * np.sin(4 * np.pi * xx) * np.sin(np.pi * yy)
    # ||sin(a pi x) sin(pi y)||_H1^2 = 1/4 (1 + a^2 pi^2 + pi^2)
    exact = math.sqrt(0.01 * (1 + 16 * np.pi**2 + np.pi**2) / (1 + 4 * np.pi**2 + np.pi**2))
    got = metrics.rel_h1((y + e)[None], y[None], coords=[x, x])
    assert abs(got - exact) < (2e-2 if n == 64 else 2e-3)
    # physical spacing scales the derivative terms: same fields on [0, 2]^2 differ
    got2 = metrics.rel_h1((y + e)[None], y[None], coords=[2 * x, 2 * x])
    exact2 = math.sqrt(
        0.01 * (1 + (16 * np.pi**2 + np.pi**2) / 4) / (1 + (4 * np.pi**2 + np.pi**2) / 4)
    )
    assert abs(got2 - exact2) < (2e-2 if n == 64 else 2e-3)


def test_rel_h1_nonuniform_coords_and_periodic():
    n = 400
    xu = np.linspace(0, 1, n)
    xn = xu**1.5  # non-uniform grid on [0, 1]
    y = np.sin(2 * np.pi * xn)
    e = 0.1 * np.sin(4 * np.pi * xn)
    exact = math.sqrt(0.01 * (1 + 16 * np.pi**2) / (1 + 4 * np.pi**2))
    got = metrics.rel_h1((y + e)[None], y[None], coords=[xn])
    assert abs(got - exact) < 5e-3
    xp = np.arange(128) / 128
    yp = np.sin(2 * np.pi * xp)[None]
    ep = 0.1 * np.sin(4 * np.pi * xp)[None]
    assert abs(metrics.rel_h1(yp + ep, yp, periodic=True) - exact) < 5e-3


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: metrics.crps_gaussian(np.zeros(3), np.ones(4), np.zeros(3)), "std"),
        (lambda: metrics.crps_gaussian(np.zeros(3), -np.ones(3), np.zeros(3)), "std"),
        (lambda: metrics.crps_gaussian(np.zeros(3), np.ones(3), np.zeros(4)), "y"),
        (lambda: metrics.crps_gaussian(np.zeros(3), np.ones(3), np.array([0, np.nan, 0])), "y"),
        (lambda: metrics.nll_gaussian(np.zeros(3), np.zeros(3), np.zeros(3)), "std"),
        (lambda: metrics.crps_ensemble(np.zeros((1, 3)), np.zeros(3)), "samples"),
        (lambda: metrics.crps_ensemble(np.zeros((2, 3)), np.zeros(3), estimator="x"), "estimator"),
        (lambda: metrics.rel_l2(np.ones((2, 3)), np.ones((2, 3)), reduction="sum"), "reduction"),
        (lambda: metrics.rel_l2(np.ones((2, 3)), np.zeros((2, 3))), "y"),
        (
            lambda: metrics.coverage(Prediction(np.zeros(2), std=np.ones(2)), np.zeros(2), 1.2),
            "levels",
        ),
        (lambda: metrics.coverage(np.zeros(2), np.zeros(2), 0.5), "pred"),
        (lambda: metrics.interval_score(np.ones(2), np.zeros(2), np.zeros(2), level=0.9), "upper"),
        (lambda: metrics.interval_score(np.zeros(2), np.ones(2), np.zeros(2), level=0.0), "level"),
        (lambda: metrics.rel_h1(np.ones((1, 4)), np.ones((1, 4)), spacing=-1.0), "spacing"),
        (
            lambda: metrics.calibration_curve(
                Prediction(np.zeros(2), std=np.ones(2)), np.zeros(2), reduction="none"
            ),
            "reduction",
        ),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
