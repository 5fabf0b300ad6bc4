"""Tests of uq.Prediction: forms, conversions against scipy/numpy, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from pdesurrogates.uq import Prediction


def test_gaussian_quantiles_match_scipy():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(4, 5))
    sd = rng.uniform(0.1, 2.0, size=(4, 5))
    p = Prediction(mu, std=sd)
    assert p.kind == "gaussian" and p.shape == (4, 5) and p.is_numpy
    q = p.quantile([0.05, 0.5, 0.975])
    assert isinstance(q, np.ndarray) and q.shape == (3, 4, 5)
    for k, lv in enumerate([0.05, 0.5, 0.975]):
        np.testing.assert_allclose(q[k], stats.norm.ppf(lv, mu, sd), rtol=1e-12, atol=1e-12)
    lo, hi = p.interval(0.9)
    np.testing.assert_allclose(lo, stats.norm.ppf(0.05, mu, sd), rtol=1e-12)
    np.testing.assert_allclose(hi, stats.norm.ppf(0.95, mu, sd), rtol=1e-12)
    np.testing.assert_allclose(p.variance, sd**2)
    assert p.quantile(0.3).shape == (4, 5)


def test_samples_conversions_match_numpy():
    rng = np.random.default_rng(1)
    s = rng.normal(size=(7, 3, 6))
    p = Prediction(None, samples=s)
    assert p.kind == "samples" and p.n_samples == 7
    np.testing.assert_allclose(p.mean, s.mean(0), rtol=1e-14)
    np.testing.assert_allclose(p.std, s.std(0, ddof=1), rtol=1e-13)
    levels = [0.1, 0.25, 0.5, 0.9]
    np.testing.assert_allclose(p.quantile(levels), np.quantile(s, levels, axis=0), rtol=1e-12)
    lo, hi = p.interval(0.5)
    np.testing.assert_allclose(lo, np.quantile(s, 0.25, axis=0), rtol=1e-12)
    np.testing.assert_allclose(hi, np.quantile(s, 0.75, axis=0), rtol=1e-12)
    # an explicit mean is kept as given
    p2 = Prediction(np.zeros((3, 6)), samples=s)
    np.testing.assert_array_equal(p2.mean, 0.0)
    assert p.sample(7) is not None


def test_torch_in_torch_out_and_member_axis_first():
    s = torch.randn(5, 2, 8, 8, dtype=torch.float32, generator=torch.Generator().manual_seed(0))
    p = Prediction(s.mean(0), samples=s)
    assert not p.is_numpy
    assert isinstance(p.mean, torch.Tensor) and isinstance(p.std, torch.Tensor)
    assert p.std.dtype == torch.float32 and p.std.shape == (2, 8, 8)
    torch.testing.assert_close(p.std, s.std(0))
    lo, hi = p.interval(0.8)
    assert isinstance(lo, torch.Tensor) and bool((lo <= hi).all())
    pn = p.numpy()
    assert pn.is_numpy and isinstance(pn.samples, np.ndarray)
    # a member axis in the wrong place is rejected
    with pytest.raises(ValueError, match="samples"):
        Prediction(s.mean(0), samples=s.permute(1, 0, 2, 3))


def test_quantile_form_interpolates_and_fits_std():
    mu, sd = 1.5, 0.7
    levels = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
    qs = stats.norm.ppf(levels, mu, sd)[:, None] * np.ones((1, 3))
    p = Prediction(np.full(3, mu), quantiles=qs, levels=levels)
    assert p.kind == "quantiles"
    np.testing.assert_allclose(p.std, sd, rtol=1e-12)
    np.testing.assert_allclose(p.quantile(0.25), qs[1], rtol=1e-14)
    # linear interpolation between stored levels
    w = (0.4 - 0.25) / 0.25
    np.testing.assert_allclose(p.quantile(0.4), qs[1] + w * (qs[2] - qs[1]), rtol=1e-14)
    lo, hi = p.interval(0.9)
    np.testing.assert_allclose(lo, qs[0])
    np.testing.assert_allclose(hi, qs[-1])
    with pytest.raises(ValueError, match="q="):
        p.quantile(0.99)


def test_gaussian_sampling_is_reproducible():
    p = Prediction(torch.zeros(1000), std=torch.full((1000,), 2.0))
    a = p.sample(50, generator=torch.Generator().manual_seed(3))
    b = p.sample(50, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
    assert a.shape == (50, 1000)
    assert abs(float(a.std()) - 2.0) < 0.05


def test_indexing_batch_axis():
    s = np.arange(2 * 4 * 3, dtype=float).reshape(2, 4, 3)
    p = Prediction(None, samples=s)
    sub = p[1:3]
    assert sub.shape == (2, 3) and sub.n_samples == 2
    np.testing.assert_array_equal(sub.samples, s[:, 1:3])
    sub2 = p[np.array([0, 3])]
    np.testing.assert_array_equal(sub2.mean, s.mean(0)[[0, 3]])
    g = Prediction(np.zeros((4, 3)), std=np.ones((4, 3)))[2]
    assert g.shape == (3,) and g.kind == "gaussian"


def test_point_prediction_has_no_spread():
    p = Prediction(np.ones(3))
    assert p.kind == "point" and p.std is None
    with pytest.raises(ValueError, match="point prediction"):
        p.interval(0.9)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"mean": np.zeros(3), "std": np.ones(4)}, "std"),
        ({"mean": np.zeros(3), "std": -np.ones(3)}, "std"),
        ({"mean": np.array([0.0, np.nan, 1.0]), "std": np.ones(3)}, "mean"),
        ({"mean": np.zeros(3), "samples": np.zeros((1, 3))}, "samples"),
        ({"mean": np.zeros(3), "samples": np.full((3, 3), np.inf)}, "samples"),
        ({"mean": np.zeros(3), "quantiles": np.zeros((2, 3))}, "levels"),
        ({"mean": np.zeros(3), "quantiles": np.zeros((2, 3)), "levels": [0.2, 1.0]}, "levels"),
        ({"mean": np.zeros(3), "quantiles": np.zeros((2, 3)), "levels": [0.5, 0.2]}, "levels"),
        (
            {
                "mean": np.zeros(3),
                "quantiles": np.array([[1.0] * 3, [0.0] * 3]),
                "levels": [0.2, 0.8],
            },
            "quantiles",
        ),
        ({"mean": np.zeros(3), "std": np.ones(3), "samples": np.zeros((2, 3))}, "std"),
        ({"mean": None}, "mean"),
    ],
)
def test_bad_input_names_the_argument(kwargs, name):
    mean = kwargs.pop("mean")
    with pytest.raises(ValueError, match=name):
        Prediction(mean, **kwargs)


@pytest.mark.parametrize("level", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_interval_level_outside_unit_interval(level):
    p = Prediction(np.zeros(2), std=np.ones(2))
    with pytest.raises(ValueError, match="level"):
        p.interval(level)
