"""Gallery generators: exact-contrast coefficients and the two sequences."""

import itertools

import numpy as np
import pytest

from pdesurrogates.solvers import gallery


@pytest.mark.parametrize("shape", [(32, 32), (12, 12, 12)])
@pytest.mark.parametrize("contrast", [10.0, 1e4])
def test_random_coefficient_has_the_asked_contrast(shape, contrast):
    p = gallery.random_coefficient(shape, contrast=contrast, seed=3)
    assert p.meta["coeff_max"] / p.meta["coeff_min"] == pytest.approx(contrast, rel=1e-9)
    assert p.shape == shape and p.A.shape == (p.n, p.n)


def test_drifting_coefficients_drift_smoothly_at_fixed_contrast():
    probs = list(gallery.drifting_coefficients((32, 32), 6, contrast=1e4, drift=0.5, seed=1))
    assert [p.meta["step"] for p in probs] == list(range(6))
    assert probs[-1].meta["phi"] == pytest.approx(0.5)
    for p in probs:
        assert p.meta["coeff_max"] / p.meta["coeff_min"] == pytest.approx(1e4, rel=1e-9)
    logd = [np.log(p.A.diagonal()) for p in probs]
    d = [np.abs(a - b).mean() for a, b in itertools.pairwise(logd)]
    far = np.abs(logd[0] - logd[-1]).mean()
    assert max(d) < far / 3  # neighbours are close, the ends are not
    assert min(d) > 0


def test_moving_obstacles_move():
    probs = list(gallery.moving_obstacles((32, 32), 5, radius=0.1))
    centres = [np.argwhere(~p.mask).mean(axis=0) for p in probs]
    xs = [c[0] for c in centres]
    assert np.all(np.diff(xs) > 0)
    assert xs[0] == pytest.approx(0.25 * 32 - 0.5, abs=1.0)
    assert xs[-1] == pytest.approx(0.75 * 32 - 0.5, abs=1.0)
    assert all(c[1] == pytest.approx(0.35 * 32 - 0.5, abs=1.0) for c in centres)


def test_bad_input():
    with pytest.raises(ValueError, match="contrast"):
        gallery.random_coefficient((8, 8), contrast=0.5)
    with pytest.raises(ValueError, match="steps"):
        list(gallery.drifting_coefficients((8, 8), 0))
    with pytest.raises(ValueError, match="steps"):
        list(gallery.moving_obstacles((8, 8), 0))
