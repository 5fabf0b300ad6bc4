"""Interaction screening: recovers the true pairs, controls false positives, rejects bad input."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.polynomial import legendre

from pdesurrogates.solvers.reference import highdim
from pdesurrogates.surrogates import screen_interactions
from pdesurrogates.surrogates._interactions import _legendre


def test_legendre_recurrence_matches_numpy():
    t = np.linspace(-1, 1, 11)
    ours = _legendre(t, 5)
    for k in range(1, 6):
        np.testing.assert_allclose(ours[k - 1], legendre.legval(t, [0] * k + [1]), atol=1e-14)


@pytest.mark.parametrize("dim", [8, 20])
def test_recovers_the_chain_of_the_quartic_pair(dim):
    # f_L = 0.8 f_H - 0.4 sum x_i x_{i+1} - 50 with f_H = x1^2 + sum (2 x_i^2 - x_{i-1})^2:
    # exactly the neighbouring pairs interact
    p = highdim(dim)
    x = p.sample(3000, seed=0, method="uniform")
    pairs = screen_interactions(x, p.low(x), bounds=p.bounds)
    assert sorted(pairs) == [(i, i + 1) for i in range(dim - 1)]


def test_false_positives_stay_at_the_family_wise_level():
    # 40 additive functions with a kink the degree-4 fit cannot follow: at the nominal
    # family-wise level 1e-3 about 0.04 of them should show a spurious pair (measured: 0;
    # at 1e-2, 3 did: the chi-square law of the scores is asymptotic)
    rng = np.random.default_rng(1)
    flagged = 0
    for _ in range(40):
        x = rng.uniform(-1, 1, (1500, 10))
        w = rng.normal(size=(3, 10))
        y = (w[0] * np.sin(3 * x) + w[1] * np.exp(x) + w[2] * np.abs(x)).sum(1)
        flagged += bool(screen_interactions(x, y))
    assert flagged <= 1


def test_finds_a_non_polynomial_interaction_among_noise():
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 2, (2000, 7))
    y = np.cos(2 * x).sum(1) + 0.5 * np.exp(-x[:, 2]) * np.sin(2 * x[:, 5])
    y += 0.01 * rng.normal(size=len(y))
    assert screen_interactions(x, y, bounds=np.array([[0.0, 2.0]] * 7)) == [(2, 5)]


def test_max_pairs_and_too_few_points():
    p = highdim(8)
    x = p.sample(3000, seed=0, method="uniform")
    assert len(screen_interactions(x, p.low(x), max_pairs=3)) == 3
    # 5 (4·8 + 1) = 165 points are needed for the additive fit not to interpolate
    x = p.sample(100, seed=0, method="uniform")
    assert screen_interactions(x, p.low(x)) == []


def test_bad_input():
    x = np.zeros((50, 3))
    with pytest.raises(ValueError, match="shape"):
        screen_interactions(x[:, :1], np.zeros(50))
    with pytest.raises(ValueError, match=r"y must have shape \(50,\)"):
        screen_interactions(x, np.zeros(49))
    with pytest.raises(ValueError, match="finite"):
        screen_interactions(x, np.full(50, np.nan))
    with pytest.raises(ValueError, match="alpha"):
        screen_interactions(x, np.zeros(50), alpha=2.0)
    with pytest.raises(ValueError, match="bounds"):
        screen_interactions(x, np.zeros(50), bounds=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="degree"):
        screen_interactions(x, np.zeros(50), degree=0)
