"""Per-step relative L2 along a trajectory and the time it crosses a threshold, on
constructed error sequences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pdesurrogates.uq.metrics import rel_l2, rollout_rel_l2, time_to_threshold


def _scaled(errors, shape=(3, 2, 5, 8, 6), seed=0):
    """Truth ``y`` and a prediction whose state ``t`` is ``(1 + e_t) y_t``."""
    y = np.random.default_rng(seed).normal(size=shape) + 2.0
    e = np.asarray(errors, dtype=np.float64)
    return y * (1 + e)[None, None, :, None, None], y


def test_per_step_error_is_the_constructed_sequence():
    e = [0.0, 0.01, 0.04, 0.09, 0.16]
    pred, y = _scaled(e)
    np.testing.assert_allclose(rollout_rel_l2(pred, y), e, atol=1e-14)
    per = rollout_rel_l2(pred, y, reduction="none")
    assert per.shape == (3, 5)
    np.testing.assert_allclose(per, np.tile(e, (3, 1)), atol=1e-14)


def test_per_step_error_is_rel_l2_of_each_state_over_channels_and_grid():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(4, 2, 3, 5, 5))
    pred = y + 0.1 * rng.normal(size=y.shape)
    got = rollout_rel_l2(pred, y, reduction="none")
    for t in range(3):
        d = (pred[:, :, t] - y[:, :, t]).reshape(4, -1)
        want = np.linalg.norm(d, axis=1) / np.linalg.norm(y[:, :, t].reshape(4, -1), axis=1)
        np.testing.assert_allclose(got[:, t], want, rtol=1e-12)
        np.testing.assert_allclose(got[:, t], rel_l2(pred[:, :, t], y[:, :, t], reduction="none"))


def test_torch_in_torch_out_with_gradients():
    pred, y = _scaled([0.02, 0.2], shape=(2, 1, 2, 4, 4))
    p = torch.tensor(pred, requires_grad=True)
    out = rollout_rel_l2(p, torch.tensor(y))
    assert torch.is_tensor(out)
    out.sum().backward()
    assert p.grad is not None and torch.isfinite(p.grad).all()


def test_time_axis_option_and_shape_errors():
    pred, y = _scaled([0.05, 0.1, 0.3], shape=(2, 1, 3, 4, 4))
    moved = rollout_rel_l2(pred[:, 0], y[:, 0], time_axis=1)  # (N, T, X, Y)
    np.testing.assert_allclose(moved, [0.05, 0.1, 0.3], atol=1e-14)
    with pytest.raises(ValueError, match="must match"):
        rollout_rel_l2(pred, y[:, :, :2])
    with pytest.raises(ValueError, match="time_axis=0"):
        rollout_rel_l2(pred, y, time_axis=0)


def test_time_to_ten_percent():
    e = [0.01, 0.03, 0.06, 0.1, 0.12, 0.05]  # exactly 0.1 is not above; the first above is 5
    assert time_to_threshold(e) == 5.0
    assert time_to_threshold(e, times=np.arange(6) * 0.25 + 0.25) == 1.25
    assert time_to_threshold(e, threshold=0.02) == 2.0
    assert math.isinf(time_to_threshold([0.01, 0.02]))
    per = time_to_threshold(np.array([e, [0.2] * 6, [0.0] * 6]))
    np.testing.assert_array_equal(per, [5.0, 1.0, np.inf])
    assert time_to_threshold(torch.tensor(e)) == 5.0


def test_time_to_threshold_from_a_rollout_error_curve():
    pred, y = _scaled([0.02, 0.05, 0.08, 0.11, 0.2])  # float64: 0.1 is 0.1
    assert time_to_threshold(rollout_rel_l2(pred, y), times=[0.5, 1, 1.5, 2, 2.5]) == 2.0


def test_time_to_threshold_bad_input():
    with pytest.raises(ValueError, match="threshold must be a positive"):
        time_to_threshold([0.1], threshold=0)
    with pytest.raises(ValueError, match="NaN"):
        time_to_threshold([0.1, float("nan")])
    with pytest.raises(ValueError, match="times has shape"):
        time_to_threshold([0.1, 0.2], times=[1.0])
