"""The benchmark functions used in the docs are importable from the public packages."""

from __future__ import annotations

import math

import numpy as np
import pytest


def test_g_function_is_public_with_its_closed_form():
    from pdesurrogates.uq import g_function, g_function_indices

    # at x = 0 every factor is (2 + a_i) / (1 + a_i): 2 * 3/2 = 3 for a = (0, 1)
    assert g_function(np.zeros((1, 2)), a=(0.0, 1.0))[0] == pytest.approx(3.0)
    ex = g_function_indices(a=(0.0,))
    # one input: V_1 = 1/3 is all the variance, so S1 = ST = 1
    assert float(ex["variance"]) == pytest.approx(1 / 3)
    assert ex["S1"][0] == pytest.approx(1.0) and ex["ST"][0] == pytest.approx(1.0)


def test_nonlinear_sin_wide_is_public_and_is_the_pair_on_emukits_domain():
    from pdesurrogates.solvers import reference

    assert "nonlinear_sin_wide" in reference.__all__
    p = reference.nonlinear_sin_wide()
    assert p.bounds.tolist() == [[-5.0, 10.0]]
    x = np.array([[-4.3], [7.1]])
    expected = (x[:, 0] - math.sqrt(2.0)) * np.sin(8 * math.pi * x[:, 0]) ** 2
    np.testing.assert_allclose(p.high(x), expected, rtol=1e-12)
    np.testing.assert_allclose(p.low(x), np.sin(8 * math.pi * x[:, 0]), rtol=1e-12)
