"""Property tests of the metrics (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from pdesurrogates.uq import Prediction, metrics

_SETTINGS = settings(max_examples=25, deadline=None)


def _fields(seed, n=3, shape=(6, 5)):
    rng = np.random.default_rng(seed)
    y = 1.0 + rng.normal(size=(n, *shape))
    return rng, y, y + 0.3 * rng.normal(size=y.shape)


@_SETTINGS
@given(seed=st.integers(0, 10_000), c=st.floats(1e-3, 1e3))
def test_relative_errors_are_scale_invariant(seed, c):
    _, y, p = _fields(seed)
    for f in (metrics.rel_l2, metrics.rel_h1):
        np.testing.assert_allclose(f(c * p, c * y), f(p, y), rtol=1e-10)
        np.testing.assert_allclose(f(-c * p, -c * y), f(p, y), rtol=1e-10)


@_SETTINGS
@given(mu=st.floats(-5, 5), sd=st.floats(0.05, 5), y=st.floats(-10, 10))
def test_gaussian_crps_is_the_integral_of_the_squared_cdf_difference(mu, sd, y):
    f = stats.norm(mu, sd).cdf
    lo, hi = min(mu - 12 * sd, y), max(mu + 12 * sd, y)
    below = integrate.quad(lambda x: f(x) ** 2, lo, y, limit=200)[0]
    above = integrate.quad(lambda x: (1 - f(x)) ** 2, y, hi, limit=200)[0]
    assert float(metrics.crps_gaussian(mu, sd, y)) == np.float64(below + above).round(12) or (
        abs(float(metrics.crps_gaussian(mu, sd, y)) - (below + above)) < 1e-7 * (1 + sd)
    )


@_SETTINGS
@given(seed=st.integers(0, 10_000), mu=st.floats(-3, 3), sd=st.floats(0.1, 3))
def test_ensemble_crps_of_many_draws_approaches_the_gaussian_closed_form(seed, mu, sd):
    rng = np.random.default_rng(seed)
    y = rng.normal(mu, 2 * sd, size=8)
    draws = rng.normal(mu, sd, size=(4000, 8))
    exact = metrics.crps_gaussian(mu, sd, y, reduction="none")
    fair = metrics.crps_ensemble(draws, y, reduction="none")
    # the fair estimator is unbiased; its Monte Carlo error is about sd / sqrt(M)
    assert np.abs(fair - exact).max() < 6 * sd / np.sqrt(4000) + 1e-12


@_SETTINGS
@given(
    seed=st.integers(0, 10_000),
    levels=st.lists(st.floats(0.01, 0.99), min_size=2, max_size=6, unique=True),
    form=st.sampled_from(["gaussian", "samples", "quantiles"]),
)
def test_coverage_is_monotone_in_the_level(seed, levels, form):
    rng, y, m = _fields(seed)
    lv = np.sort(levels)
    sd = rng.uniform(0.1, 0.5, size=y.shape)
    if form == "gaussian":
        pred = Prediction(m, std=sd)
    elif form == "samples":
        pred = Prediction(None, samples=m + sd * rng.normal(size=(9, *y.shape)))
    else:
        q_lv = np.linspace(0.005, 0.995, 15)
        q = m[None] + sd[None] * stats.norm.ppf(q_lv)[:, None, None, None]
        pred = Prediction(m, quantiles=q, levels=q_lv)
    for kind in ("pointwise", "field"):
        cov = metrics.coverage(pred, y, lv, kind=kind)
        assert np.all(np.diff(cov) >= -1e-15), (lv, cov)
        per = metrics.coverage(pred, y, lv, kind=kind, reduction="sample")
        assert np.all(np.diff(per, axis=0) >= -1e-15)


@_SETTINGS
@given(seed=st.integers(0, 10_000))
def test_scores_are_non_negative_and_zero_only_when_perfect(seed):
    rng, y, m = _fields(seed)
    s = m[None] + 0.2 * rng.normal(size=(6, *y.shape))
    assert float(metrics.crps_ensemble(s, y, estimator="nrg")) > 0
    assert float(metrics.crps_ensemble(np.repeat(y[None], 4, 0), y)) == 0.0
    assert float(metrics.crps_gaussian(m, 0.3, y)) > 0
