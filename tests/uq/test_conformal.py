"""Split-conformal intervals: nominal coverage over repeated synthetic trials (±2 %)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pdesurrogates.uq import Prediction, conformalize, metrics

N_CAL, N_TEST, P = 199, 100, 24


def _trial(rng, n):
    # heteroscedastic truth around a smooth mean; the model is biased and over-confident
    x = np.linspace(0, 1, P)
    scale = 0.2 + x
    mean = np.sin(2 * np.pi * x)
    y = mean + scale * rng.standard_t(5, size=(n, P))
    mu = mean + 0.1 + 0.05 * rng.normal(size=(n, P))
    sd = 0.5 * scale * np.ones((n, P))
    return mu, sd, y


@pytest.mark.parametrize("score", ["abs", "normalized", "cqr"])
def test_pointwise_coverage_is_nominal_over_trials(score):
    rng = np.random.default_rng(0)
    level = 0.9
    covs = []
    for _ in range(150):
        mu, sd, y = _trial(rng, N_CAL + N_TEST)
        pred = mu if score == "abs" else Prediction(mu, std=sd)
        if score == "cqr":
            pred = Prediction(mu, quantiles=np.stack([mu - sd, mu + sd]), levels=[0.05, 0.95])
        cal = conformalize(
            pred[:N_CAL] if score != "abs" else mu[:N_CAL], y[:N_CAL], level=level, score=score
        )
        band = cal.apply(pred[N_CAL:] if score != "abs" else mu[N_CAL:])
        covs.append(metrics.coverage(band, y[N_CAL:], level, reduction="sample").mean())
    # expected coverage is exactly ceil(0.9 * 200) / 200 = 0.9
    assert abs(np.mean(covs) - level) < 0.02
    # the raw model intervals were far from nominal
    mu, sd, y = _trial(rng, 2000)
    assert metrics.coverage(Prediction(mu, std=sd), y, level) < 0.8


@pytest.mark.parametrize(("level", "fraction"), [(0.9, 1.0), (0.8, 1.0), (0.9, 0.9)])
def test_field_coverage_is_nominal_over_trials(level, fraction):
    rng = np.random.default_rng(1)
    hits = []
    for _ in range(150):
        mu, sd, y = _trial(rng, N_CAL + N_TEST)
        p = Prediction(mu, std=sd)
        cal = conformalize(p[:N_CAL], y[:N_CAL], level=level, mode="field", field_fraction=fraction)
        band = cal.apply(p[N_CAL:])
        hits.append(metrics.coverage(band, y[N_CAL:], level, kind="field", min_fraction=fraction))
    assert abs(np.mean(hits) - level) < 0.02
    # a field-wise band is wider than the pointwise one at the same level
    cal_pt = conformalize(p[:N_CAL], y[:N_CAL], level=level)
    lo_f, hi_f = cal.interval(p[N_CAL:])
    lo_p, hi_p = cal_pt.interval(p[N_CAL:])
    if fraction == 1.0:
        assert np.mean(hi_f - lo_f) > np.mean(hi_p - lo_p)


def test_ensemble_predictions_and_torch():
    g = torch.Generator().manual_seed(0)
    c = torch.randn(400, 8, generator=g)
    y = c + torch.randn(400, 8, generator=g)
    s = c + 0.3 * torch.randn(6, 400, 8, generator=g)  # under-dispersed ensemble
    p = Prediction(None, samples=s)
    cal = conformalize(p[:300], y[:300], level=0.8)
    assert cal.score == "normalized" and cal.quantile.shape == (8,)
    band = cal.apply(p[300:])
    assert isinstance(band.mean, torch.Tensor)
    cov = float(metrics.coverage(band, y[300:], 0.8))
    assert 0.7 < cov < 0.9


def test_exact_order_statistic():
    # scores 1..19 at one point: level 0.5 -> k = ceil(20 * 0.5) = 10 -> q = 10
    y = np.arange(1.0, 20.0)[:, None]
    cal = conformalize(np.zeros((19, 1)), y, level=0.5)
    assert cal.quantile.tolist() == [10.0]
    lo, hi = cal.interval(np.zeros((3, 1)))
    np.testing.assert_array_equal(hi, 10.0)
    np.testing.assert_array_equal(lo, -10.0)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"level": 0.99}, "y_cal"),  # 19 samples are too few for 0.99
        ({"level": 1.0}, "level"),
        ({"mode": "global"}, "mode"),
        ({"score": "normalized"}, "score"),
        ({"score": "rank"}, "score"),
        ({"field_fraction": 0.0}, "field_fraction"),
    ],
)
def test_bad_input(kwargs, name):
    y = np.arange(1.0, 20.0)[:, None]
    with pytest.raises(ValueError, match=name):
        conformalize(np.zeros((19, 1)), y, **kwargs)


def test_shape_mismatch():
    with pytest.raises(ValueError, match="y_cal"):
        conformalize(np.zeros((19, 2)), np.zeros((19, 3)))
    cal = conformalize(np.zeros((19, 2)), np.ones((19, 2)), level=0.5)
    with pytest.raises(ValueError, match="shape"):
        cal.interval(np.zeros((3, 5)))


# --- a calibrated band is scored at its own level; the channel axis may be left out ------


def _band_case(seed=0, n_cal=199, n_test=300, shape=(5, 4)):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(n_cal + n_test, *shape))
    mean = y + rng.normal(size=y.shape) * 0.5
    return y, Prediction(mean, std=np.full(y.shape, 0.5)), n_cal


def test_evaluate_band_with_default_levels_scores_its_own_level():
    from pdesurrogates.uq import evaluate

    y, pred, n = _band_case()
    band = conformalize(pred[:n], y[:n], level=0.9).apply(pred[n:])
    rep = evaluate(band, y[n:])
    assert rep.levels.tolist() == [0.9]
    explicit = evaluate(band, y[n:], levels=[0.9])
    assert rep.scalars == explicit.scalars
    lo, hi = band.quantiles
    inside = ((y[n:] >= lo) & (y[n:] <= hi)).mean()
    assert rep.by_level["coverage"][0] == pytest.approx(inside, abs=1e-12)
    with pytest.raises(ValueError, match=r"levels=\(0\.9,\)") as err:
        evaluate(band, y[n:], levels=(0.5, 0.95))
    assert "band of level 0.9" in str(err.value)


def test_quantile_prediction_default_levels_are_its_central_pairs():
    from pdesurrogates.uq import evaluate

    rng = np.random.default_rng(1)
    y = rng.normal(size=(30, 4))
    lv = [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95]
    from scipy import stats

    q = np.stack([np.zeros_like(y) + stats.norm.ppf(a) for a in lv])
    rep = evaluate(Prediction(np.zeros_like(y), quantiles=q, levels=lv), y)
    assert rep.levels.tolist() == pytest.approx([0.5, 0.8, 0.9])


def test_conformalize_accepts_fields_without_channel_axis():
    y, pred, n = _band_case(seed=2)
    chan = Prediction(pred.mean[:, None], std=pred.std[:, None])
    flat_cal = conformalize(pred[:n], y[:n], level=0.8)
    chan_cal = conformalize(chan[:n], y[:n], level=0.8)
    np.testing.assert_array_equal(chan_cal.quantile[0], flat_cal.quantile)
    lo_f, hi_f = flat_cal.interval(pred[n:])
    lo_c, hi_c = flat_cal.interval(chan[n:])  # calibrated on (n, X, Y), applied to (N, 1, X, Y)
    np.testing.assert_array_equal(lo_c[:, 0], lo_f)
    np.testing.assert_array_equal(hi_c[:, 0], hi_f)
