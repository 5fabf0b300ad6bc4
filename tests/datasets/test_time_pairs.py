"""Time-pair views: shapes and values against the raw file, splits, the uniform-time check
and linear resampling (exact on trajectories linear in time)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
import xarray as xr

from pdesurrogates.datasets import (
    TimePairs,
    from_xarray,
    generate_navier_stokes,
    open_dataset,
    stack_time,
    unstack_time,
)
from pdesurrogates.errors import DatasetError


@pytest.fixture(scope="module")
def ns_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("ns") / "ns.h5"
    return generate_navier_stokes(
        out, n_samples=4, resolution=16, duration=1.0, n_times=6, seed=3, progress=False
    )


@pytest.mark.parametrize("in_memory", [True, False])
def test_pairs_of_a_navier_stokes_file_hold_the_files_states(ns_file, in_memory):
    ds = open_dataset(ns_file)
    pairs = TimePairs(ds, "w", history=2, steps=1, in_memory=in_memory)
    assert pairs.windows == 4 and len(pairs) == 16  # 6 times, windows of 3
    assert pairs.horizon == 4 and pairs.channels == 1 and pairs.dt == pytest.approx(0.2)
    with h5py.File(ns_file) as f:
        raw = f["w"][()]  # (sample, time, x, y)
    for i in (0, 7, 15):
        item = pairs[i]
        s, t0 = divmod(i, 4)
        assert item["sample"] == s and item["start"] == t0
        assert tuple(item["a"].shape) == (2, 16, 16) and tuple(item["u"].shape) == (1, 16, 16)
        np.testing.assert_array_equal(item["a"].numpy(), raw[s, t0 : t0 + 2])
        np.testing.assert_array_equal(item["u"][0].numpy(), raw[s, t0 + 2])
    longer = pairs.with_unroll(2)
    assert longer.windows == 3 and tuple(longer[0]["u"].shape) == (2, 16, 16)
    np.testing.assert_array_equal(pairs.trajectories()[:, 0], raw)


def test_pairs_keep_the_splits(ns_file):
    ds = open_dataset(ns_file)
    pairs = TimePairs(ds, "w", history=1, steps=2, stride=2)
    train = pairs.split("train")
    assert len(train) == len(ds.split("train")) * pairs.windows
    assert pairs.windows == 2  # starts 0 and 2 in 6 times with windows of 3
    with h5py.File(ns_file) as f:
        raw = f["w"][()]
    first = int(ds.split("train").indices[0])
    np.testing.assert_array_equal(train[1]["u"].numpy(), raw[first, 3:5])
    with pytest.raises(DatasetError, match="no split 'nope'"):
        pairs.split("nope")


def test_a_window_longer_than_the_time_axis_is_refused(ns_file):
    with pytest.raises(DatasetError, match=r"6 states, fewer than .* = 7"):
        TimePairs(open_dataset(ns_file), "w", history=3, steps=2, unroll=2)
    with pytest.raises(DatasetError, match="no field 'p'"):
        TimePairs(open_dataset(ns_file), "p")
    with pytest.raises(ValueError, match="history must be an integer >= 1"):
        TimePairs(open_dataset(ns_file), "w", history=0)


def _nonuniform(tmp_path):
    t = np.array([0.0, 0.1, 0.3, 0.4, 0.8])
    x = np.linspace(0, 1, 8)
    slope = np.arange(1, 5)[:, None, None]
    u = slope * t[None, :, None] + np.sin(np.pi * x)[None, None, :]  # linear in time
    data = xr.Dataset({"u": (("sample", "time", "x"), u)}, coords={"time": t, "x": x})
    path = from_xarray(data, {"u": "state"}, path=tmp_path / "nonuniform.h5", split=(1, 0, 0))
    return path, u, slope, x


def test_non_uniform_time_is_refused_naming_file_and_coordinate(tmp_path):
    path, *_ = _nonuniform(tmp_path)
    with pytest.raises(DatasetError) as err:
        TimePairs(open_dataset(path), "u")
    msg = str(err.value)
    assert f"{path}, field 'u'" in msg and "'time' is not uniform" in msg
    assert "resample=True" in msg and "--resample" in msg


def test_resampling_on_request_interpolates_linearly(tmp_path):
    path, _, slope, x = _nonuniform(tmp_path)
    ds = open_dataset(path, dtype=None)
    pairs = TimePairs(ds, "u", history=1, resample=True)
    np.testing.assert_allclose(pairs.times, [0.0, 0.2, 0.4, 0.6, 0.8])
    assert pairs.dt == pytest.approx(0.2)
    expected = slope * pairs.times[None, :, None] + np.sin(np.pi * x)  # exact for linear data
    order = ds.indices
    np.testing.assert_allclose(pairs.trajectories()[:, 0], expected[order], atol=1e-12)
    lazy = TimePairs(ds, "u", history=1, resample=True, in_memory=False)
    np.testing.assert_allclose(lazy[2]["u"][0].numpy(), expected[order[0], 3], atol=1e-12)


def test_stack_and_unstack_time_are_inverse_and_time_major():
    u = torch.arange(2 * 3 * 4 * 5, dtype=torch.float64).reshape(2, 3, 4, 5)  # (N, C, T, X)
    x = stack_time(u)
    assert x.shape == (2, 12, 5)
    torch.testing.assert_close(x[:, 3:6], u[:, :, 1])  # state 1 = channels 3..5
    torch.testing.assert_close(unstack_time(x, 3), u)
    with pytest.raises(ValueError, match="not a whole number of states of 5"):
        unstack_time(x, 5)
