"""`uq.evaluate` on trajectories: per-step relative L2 and the time to 10 % error, in the
report object, its JSON (round trip), xarray and text forms, against closed forms."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pdesurrogates.uq import Prediction, UQReport, evaluate
from pdesurrogates.uq.metrics import rollout_rel_l2, time_to_threshold

T = 6
GROWTH = 0.04 * np.arange(1, T + 1)  # relative error of state t: 0.04 t


def _trajectories(n=3, c=1, seed=0):
    rng = np.random.default_rng(seed)
    y = 1.0 + rng.random((n, c, T, 5, 4))
    pred = y * (1.0 + GROWTH)[None, None, :, None, None]
    return pred, y


def test_per_step_errors_are_the_closed_form_and_the_metric_functions():
    pred, y = _trajectories()
    times = 0.5 + 0.25 * np.arange(T)
    r = evaluate(pred, y, time_axis=2, times=times)
    np.testing.assert_allclose(r.by_step["rel_l2"], GROWTH, rtol=1e-12)
    np.testing.assert_allclose(r.per_sample["rel_l2_by_step"], np.tile(GROWTH, (3, 1)), rtol=1e-12)
    np.testing.assert_allclose(
        r.by_step["rel_l2"], rollout_rel_l2(pred, y, reduction="mean"), rtol=1e-12
    )
    np.testing.assert_array_equal(r.step_times, times)
    # 0.04 t > 0.1 first at t = 3, whose time is 0.5 + 2 * 0.25 = 1.0
    assert r.scalars["steps_to_10pct"] == 3.0
    assert r.scalars["time_to_10pct"] == 1.0 == time_to_threshold(GROWTH, 0.1, times=times)
    # the pooled rel L2 scores each whole trajectory as one field
    assert r.scalars["rel_l2"] == pytest.approx(
        float(np.mean(np.sqrt(((pred - y) ** 2).sum((1, 2, 3, 4)) / (y**2).sum((1, 2, 3, 4)))))
    )


def test_several_channels_and_an_ensemble():
    pred, y = _trajectories(n=2, c=3, seed=1)
    members = np.stack([pred * 0.999, pred * 1.001])
    r = evaluate(Prediction(members.mean(0), samples=members), y, time_axis=2)
    np.testing.assert_allclose(r.by_step["rel_l2"], GROWTH, rtol=1e-9)
    np.testing.assert_array_equal(r.step_times, np.arange(1, T + 1))
    assert r.kind == "samples" and "crps" in r.scalars
    assert r.scalars["time_to_10pct"] == r.scalars["steps_to_10pct"] == 3.0


def test_an_error_that_never_crosses_is_inf_and_survives_json():
    y = np.ones((2, 1, T, 3, 3))
    pred = y * 1.01
    r = evaluate(pred, y, time_axis=2, times=np.arange(T) * 0.1)
    assert math.isinf(r.scalars["time_to_10pct"]) and math.isinf(r.scalars["steps_to_10pct"])
    d = json.loads(r.to_json())
    assert d["scalars"]["time_to_10pct"] is None  # JSON has no inf: null = never crossed
    np.testing.assert_allclose(d["by_step"]["rel_l2"], [0.01] * T, rtol=1e-9)
    np.testing.assert_allclose(d["by_step"]["time"], np.arange(T) * 0.1)
    back = UQReport.from_json(r.to_json())
    assert math.isinf(back.scalars["time_to_10pct"])
    np.testing.assert_allclose(back.by_step["rel_l2"], r.by_step["rel_l2"])
    np.testing.assert_allclose(back.step_times, r.step_times)
    assert "at no step of the rollout" in r.summary() and "| step | time | rel_l2 |" in (
        r.to_markdown()
    )


def test_xarray_and_rows():
    pred, y = _trajectories()
    r = evaluate(pred, y, time_axis=2, times=np.arange(T) * 2.0)
    xr_ds = r.to_xarray()
    assert xr_ds["rel_l2_by_step"].dims == ("time",)
    assert xr_ds["rel_l2_by_step_per_sample"].dims == ("sample", "time")
    np.testing.assert_allclose(xr_ds["time"].values, np.arange(T) * 2.0)
    cols, rows = r.step_rows()
    assert cols == ["step", "time", "rel_l2"] and len(rows) == T
    assert rows[2] == ("3", "4", "0.12")
    assert "at step 3 (time 4)" in r.step_caption()


def test_long_rollouts_show_evenly_spaced_steps_with_the_last():
    n_t = 100
    y = np.ones((1, 1, n_t, 2))
    pred = y * (1 + 0.001 * np.arange(1, n_t + 1))[None, None, :, None]
    r = evaluate(pred, y, time_axis=2)
    _, rows = r.step_rows()
    assert len(rows) == 25 and rows[0][0] == "1" and rows[-1][0] == "100"
    assert "25 of 100 states shown" in r.step_caption()
    assert len(r.by_step["rel_l2"]) == n_t


def test_fields_without_a_time_axis_have_no_steps():
    pred, y = _trajectories()
    r = evaluate(pred, y)
    assert r.by_step == {} and r.step_times is None and "time_to_10pct" not in r.scalars
    assert r.step_rows() == ([], [])
    assert json.loads(r.to_json())["by_step"] == {"time": None}


def test_bad_time_arguments():
    pred, y = _trajectories()
    with pytest.raises(ValueError, match="times holds 2 values but axis 2 holds 6 states"):
        evaluate(pred, y, time_axis=2, times=[0.0, 1.0])
    with pytest.raises(ValueError, match="time_axis=7 is not an axis"):
        evaluate(pred, y, time_axis=7)
    with pytest.raises(ValueError, match="times= needs time_axis="):
        evaluate(pred, y, times=np.arange(T))
