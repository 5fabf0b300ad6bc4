"""Prediction files: channel-first in memory, the field's own layout on disk."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from pdesurrogates.uq import Prediction, evaluate, load_prediction, save_prediction

N, NX, NY, C, K = 5, 6, 4, 2, 3
COORDS = {"x": np.arange(NX) / NX, "y": np.arange(NY) / NY, "component": np.arange(C)}


def test_a_vector_field_round_trips_channel_first_and_is_stored_channels_last(tmp_path):
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(K, N, C, NX, NY)).astype(np.float32)  # members, channel-first
    path = save_prediction(
        tmp_path / "v.h5", Prediction(None, samples=samples), field="vel",
        coords=COORDS, dims=("sample", "x", "y", "component"),
    )  # fmt: skip
    back = load_prediction(path)
    assert back.shape == (N, C, NX, NY)
    np.testing.assert_array_equal(back.samples, samples)
    np.testing.assert_allclose(back.mean, samples.mean(0), rtol=1e-6)
    with h5py.File(path) as f:  # on disk: the schema's dims, component last
        np.testing.assert_array_equal(
            f["predictive/vel/samples"][()], samples.transpose(0, 1, 3, 4, 2)
        )
        assert f["vel"].shape == (N, NX, NY, C)


def test_a_scalar_field_may_leave_out_its_channel_axis(tmp_path):
    rng = np.random.default_rng(1)
    mean = rng.normal(size=(N, NX, NY)).astype(np.float32)
    std = np.full_like(mean, 0.5)
    dims = ("sample", "x", "y")
    coords = {d: COORDS[d] for d in dims[1:]}
    a = save_prediction(tmp_path / "a.h5", Prediction(mean, std=std), field="u",
                        coords=coords, dims=dims)  # fmt: skip
    b = save_prediction(tmp_path / "b.h5", Prediction(mean[:, None], std=std[:, None]),
                        field="u", coords=coords, dims=dims)  # fmt: skip
    pa, pb = load_prediction(a), load_prediction(b)
    assert pa.shape == pb.shape == (N, 1, NX, NY)  # read back channel-first either way
    np.testing.assert_array_equal(pa.mean, pb.mean)
    np.testing.assert_array_equal(pa.mean[:, 0], mean)
    y = mean + 0.5
    # the evaluator gives the same numbers with the target in either form
    r1, r2 = evaluate(pa, y[:, None]), evaluate(pa, y)
    assert float(r1.scalars["crps"]) == float(r2.scalars["crps"]) > 0
    with pytest.raises(ValueError, match=r"needs \(1, 6, 4\) \(channel-first\)"):
        save_prediction(tmp_path / "c.h5", Prediction(mean[:, :, :2]), field="u",
                        coords=coords, dims=dims)  # fmt: skip
    with pytest.raises(ValueError, match="needs"):
        save_prediction(tmp_path / "d.h5", Prediction(np.stack([mean, mean], 1)), field="u",
                        coords=coords, dims=dims)  # fmt: skip
