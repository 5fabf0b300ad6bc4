"""The one tensor convention: every field read from a dataset is channel-first."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pdesurrogates.datasets import (
    DatasetWriter,
    FieldSpec,
    channel_first_shape,
    from_channel_first,
    open_dataset,
    to_channel_first,
)

N, NT, NX, NY, C = 7, 3, 6, 5, 2


@pytest.fixture(scope="module")
def fields(tmp_path_factory):
    rng = np.random.default_rng(0)
    values = {
        "a": rng.normal(size=(N, NX, NY)).astype(np.float32),  # scalar 2-D field
        "vel": rng.normal(size=(N, NX, NY, C)).astype(np.float32),  # components
        "traj": rng.normal(size=(N, NT, NX)).astype(np.float32),  # time, then x
        "q": rng.normal(size=(N,)).astype(np.float32),  # one number per sample
        "mask": (rng.random((NX, NY)) > 0.5).astype(np.float32),  # no sample axis
    }
    specs = {
        "a": FieldSpec(dims=("sample", "x", "y"), role="input"),
        "vel": FieldSpec(dims=("sample", "x", "y", "component"), role="output"),
        "traj": FieldSpec(dims=("sample", "time", "x")),
        "q": FieldSpec(dims=("sample",)),
        "mask": FieldSpec(dims=("x", "y"), role="coefficient"),
    }
    coords = {"x": np.arange(NX) / NX, "y": np.arange(NY) / NY, "time": np.arange(NT) * 0.1,
              "component": np.arange(C)}  # fmt: skip
    path = tmp_path_factory.mktemp("chan") / "f.h5"
    with DatasetWriter(path, n_samples=N, coords=coords, fields=specs) as w:
        w.write_static("mask", values["mask"])
        w.write_batch(0, {k: v for k, v in values.items() if k != "mask"})
        w.finalize(split=(0.6, 0.2, 0.2))
    return path, values


# what each field is, channel-first, over all samples, built by hand from the written arrays
def _expected(values):
    return {
        "a": values["a"][:, None],
        "vel": np.transpose(values["vel"], (0, 3, 1, 2)),
        "traj": values["traj"][:, None],
        "q": values["q"][:, None],
        "mask": np.broadcast_to(values["mask"], (N, NX, NY))[:, None],
    }


def test_load_items_batches_and_shape_are_channel_first(fields):
    path, values = fields
    ds = open_dataset(path)
    want = _expected(values)
    shapes = {"a": (1, NX, NY), "vel": (C, NX, NY), "traj": (1, NT, NX), "q": (1,),
              "mask": (1, NX, NY)}  # fmt: skip
    for name, w in want.items():
        assert ds.shape(name) == shapes[name], name
        got = ds.load(name)
        assert got.shape == (N, *shapes[name]) and got.flags["C_CONTIGUOUS"], name
        np.testing.assert_array_equal(got, w)
        for i in (0, 3, N - 1):
            np.testing.assert_array_equal(ds[i][name].numpy(), w[i])
    # batches: loader (copy-free collate), the default DataLoader collate, __getitems__
    for batches in (
        list(ds.loader(batch_size=3)),
        list(torch.utils.data.DataLoader(ds, batch_size=3)),
    ):
        for name, w in want.items():
            np.testing.assert_array_equal(torch.cat([b[name] for b in batches]).numpy(), w)
        assert batches[0]["params"] == {}
    # a split reads its own rows, channel-first as well
    test = ds.split("test")
    np.testing.assert_array_equal(test.load("vel"), want["vel"][test.indices])


def test_conversions_round_trip_and_accept_a_missing_channel_axis():
    rng = np.random.default_rng(1)
    for dims, shape in (
        (("sample", "x", "y"), (4, 6, 5)),
        (("sample", "x", "y", "component"), (4, 6, 5, 3)),
        (("sample", "time", "x"), (4, 3, 6)),
        (("sample",), (4,)),
    ):
        arr = rng.normal(size=shape)
        cf = to_channel_first(arr, dims)
        assert cf.shape == (shape[0], *channel_first_shape(shape[1:], dims))
        np.testing.assert_array_equal(from_channel_first(cf, dims), arr)
        # members in front (lead=1), torch as well as numpy
        t = torch.from_numpy(np.stack([arr, 2 * arr]))
        cft = to_channel_first(t, dims, lead=1)
        torch.testing.assert_close(cft[1], torch.from_numpy(2 * cf))
        torch.testing.assert_close(from_channel_first(cft, dims, lead=1), t)
    # a scalar field given without its channel axis of 1 is taken as it is
    arr = rng.normal(size=(4, 6, 5))
    assert from_channel_first(arr, ("sample", "x", "y")) is arr
    with pytest.raises(ValueError, match="has 2 channels"):
        from_channel_first(np.zeros((4, 2, 6, 5)), ("sample", "x", "y"))
    with pytest.raises(ValueError, match=r"shape \(4, 6\) cannot hold a field with dims"):
        to_channel_first(np.zeros((4, 6)), ("sample", "x", "y"))
