"""The pdesurrogates-h5 writer, reader, xarray view, validation and normalisers."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest
import torch
import xarray as xr

from pdesurrogates.datasets import (
    DatasetWriter,
    FieldSpec,
    ParamSpec,
    open_dataset,
    open_xarray,
    validate,
)
from pdesurrogates.errors import DatasetError, SchemaError

N, NT, NX, NY = 10, 3, 6, 5


def _values(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "a": rng.normal(size=(N, NX, NY)).astype(np.float32),
        "traj": rng.normal(size=(N, NT, NX)).astype(np.float32),
        "vel": rng.normal(loc=[1.0, -2.0], size=(N, NX, NY, 2)).astype(np.float32),
        "mask": (rng.random((NX, NY)) > 0.5).astype(np.float32),
        "nu": rng.uniform(0.1, 0.5, size=N),
        "z": rng.normal(1.0, 2.0, size=N),
    }


def _write(path, values, *, order=None, finalize=True, **kw):
    coords = {
        "time": np.linspace(0, 1, NT),
        "x": np.linspace(0, 1, NX),
        "y": np.linspace(0, 2, NY),
        "component": np.arange(2),
    }
    fields = {
        "a": FieldSpec(dims=("sample", "x", "y"), role="input", units="m2"),
        "traj": FieldSpec(dims=("sample", "time", "x"), role="state"),
        "vel": FieldSpec(dims=("sample", "x", "y", "component"), role="output", units="m/s"),
        "mask": FieldSpec(dims=("x", "y"), role="coefficient"),
    }
    params = {
        "nu": ParamSpec(dist="uniform", bounds=(0.1, 0.5), units="m2/s"),
        "z": ParamSpec(dist="normal", loc=1.0, scale=2.0),
    }
    w = DatasetWriter(
        path,
        n_samples=N,
        coords=coords,
        fields=fields,
        params=params,
        dataset_name="toy",
        pde="none",
        source={"generator": "test"},
        units={"x": "m"},
        periodic={"x": True},
        **kw,
    )
    with w:
        w.write_static("mask", values["mask"])
        for i in order if order is not None else range(N):
            w.write(
                i,
                {k: values[k][i] for k in ("a", "traj", "vel")},
                params={"nu": values["nu"][i], "z": values["z"][i]},
            )
        if finalize:
            w.finalize(splits={"train": np.arange(6), "valid": [6, 7], "test": [8, 9]})
    return path


@pytest.fixture
def toy(tmp_path):
    values = _values()
    return _write(
        tmp_path / "toy.h5", values, order=np.random.default_rng(1).permutation(N)
    ), values


def test_round_trip_values_and_metadata(toy):
    path, v = toy
    ds = open_dataset(path)
    assert len(ds) == N
    assert ds.field_names == ["a", "traj", "vel", "mask"]
    # channel-first: a scalar field gets a channel axis of 1, a 'component' dim is C
    assert ds.shape("vel") == (2, NX, NY) and ds.shape("mask") == (1, NX, NY)
    for i in (0, 4, 9):
        s = ds[i]
        np.testing.assert_array_equal(s["a"].numpy(), v["a"][i][None])
        np.testing.assert_array_equal(s["traj"].numpy(), v["traj"][i][None])
        np.testing.assert_array_equal(s["vel"].numpy(), np.moveaxis(v["vel"][i], -1, 0))
        np.testing.assert_array_equal(s["mask"].numpy(), v["mask"][None])
        assert s["params"]["nu"].item() == v["nu"][i]
        assert s["a"].dtype == torch.float32 and s["params"]["nu"].dtype == torch.float64
    assert ds[-1]["a"].numpy().tolist() == [v["a"][-1].tolist()]
    assert ds.params["nu"].bounds == (0.1, 0.5) and ds.params["z"].scale == 2.0
    np.testing.assert_array_equal(ds.param_values("nu"), v["nu"])
    assert ds.attrs["schema"] == "pdesurrogates-h5" and ds.attrs["complete"]
    assert ds.spatial_dims == ["x", "y"]
    with h5py.File(path) as f:
        assert f["x"].attrs["periodic"] and not f["y"].attrs["periodic"]
        assert f["a"].chunks == (1, NX, NY)  # one sample per chunk
        assert f["a"].compression is None
    with pytest.raises(IndexError):
        ds[N]


def test_stats_use_train_split_only(toy):
    path, v = toy
    ds = open_dataset(path)
    mean, std = ds.stats("a")
    np.testing.assert_allclose(mean, v["a"][:6].astype(np.float64).mean(), rtol=1e-7)
    np.testing.assert_allclose(std, v["a"][:6].astype(np.float64).std(), rtol=1e-7)
    mean, std = ds.stats("vel")  # per component
    flat = v["vel"][:6].astype(np.float64).reshape(-1, 2)
    np.testing.assert_allclose(mean, flat.mean(0), rtol=1e-7)
    np.testing.assert_allclose(std, flat.std(0), rtol=1e-7)


def test_splits_and_subsets(toy):
    path, v = toy
    ds = open_dataset(path)
    assert {k: len(x) for k, x in ds.splits.items()} == {"train": 6, "valid": 2, "test": 2}
    test = open_dataset(path, split="test")
    np.testing.assert_array_equal(test[1]["a"].numpy(), v["a"][9][None])
    np.testing.assert_array_equal(test.coords["sample"], [8, 9])
    only_a = ds.select(["a"])
    assert set(only_a[0]) == {"a", "params"}
    sub = ds.subset([3, 1])
    np.testing.assert_array_equal(sub[0]["a"].numpy(), v["a"][3][None])
    with pytest.raises(DatasetError, match="no field"):
        open_dataset(path, fields=["nope"])


def test_missing_split_names_the_available_ones(tmp_path):
    path = _write(tmp_path / "t.h5", _values(), finalize=False)
    with h5py.File(str(path) + ".partial") as f:
        assert not f.attrs["complete"]
    w = _write(tmp_path / "u.h5", _values())
    with h5py.File(w, "r+") as f:
        del f["splits/valid"]
    with pytest.raises(
        DatasetError, match=r"no split 'valid'; available splits: \['test', 'train'\]"
    ):
        open_dataset(w).split("valid")


def test_batched_fetch_equals_single_fetch(toy):
    path, _ = toy
    ds = open_dataset(path)
    positions = [7, 2, 2, 5]
    batch = ds.__getitems__(positions)
    for p, b in zip(positions, batch, strict=True):
        single = ds[p]
        for k in ("a", "traj", "vel", "mask"):
            torch.testing.assert_close(b[k], single[k], rtol=0, atol=0)
        assert b["params"]["z"] == single["params"]["z"]


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_with_workers(toy, workers):
    path, v = toy
    ds = open_dataset(path, fields=["a", "vel"])
    ds[0]  # open a handle in this process first: it must not leak into the workers
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=workers, shuffle=False)
    got = torch.cat([b["a"] for b in loader]).numpy()
    np.testing.assert_array_equal(got, v["a"][:, None])  # (N, 1, X, Y)
    ds.close()


def test_pickle_drops_the_handle(toy):
    path, v = toy
    ds = open_dataset(path)
    ds[0]
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._h5 is None
    np.testing.assert_array_equal(clone[3]["a"].numpy(), v["a"][3][None])


def test_xarray_named_dims_and_values(toy):
    path, v = toy
    with xr.open_dataset(path, engine="h5netcdf") as root:
        assert set(root.dims) >= {"sample", "x", "y", "time"}
    with xr.open_dataset(path, engine="h5netcdf") as raw:  # plain xarray sees the data
        assert raw["a"].dims == ("sample", "x", "y")
        assert raw["a"].attrs["units"] == "m2" and raw["a"].attrs["long_name"] == "a"
        np.testing.assert_array_equal(raw["vel"].values, v["vel"])
        np.testing.assert_array_equal(raw["nu"].values, v["nu"])
        assert raw["nu"].dims == ("sample",) and raw["nu"].attrs["units"] == "m2/s"
        np.testing.assert_allclose(raw["y"].values, np.linspace(0, 2, NY))
    x = open_xarray(path)
    try:
        assert x["vel"].dims == ("sample", "x", "y", "component")
        assert x["traj"].dims == ("sample", "time", "x")
        assert x["mask"].dims == ("x", "y")
        np.testing.assert_array_equal(x["a"].values, v["a"])
        np.testing.assert_array_equal(x["param_nu"].values, v["nu"])
        np.testing.assert_allclose(x["y"].values, np.linspace(0, 2, NY))
        assert x.attrs["dataset_name"] == "toy"
    finally:
        x.close()


def test_validate_accepts_a_good_file(toy):
    path, _ = toy
    rep = validate(path)
    assert rep.n_samples == N and rep.checked_values
    assert rep.fields["vel"] == ("sample", "x", "y", "component")
    assert rep.splits == {"test": 2, "train": 6, "valid": 2}


def _damage(path, how):
    if how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif how == "text":
        path.write_text("not hdf5 at all\n")
    elif how == "empty":
        path.write_bytes(b"")
    else:
        with h5py.File(path, "r+") as f:
            if how == "foreign":
                del f.attrs["schema"]
            elif how == "other-schema":
                f.attrs["schema"] = "netcdf-thing"
            elif how == "version":
                f.attrs["schema_version"] = 99
            elif how == "incomplete":
                f.attrs["complete"] = False
            elif how == "nan":
                f["vel"][4, 2, 1, 1] = np.nan
            elif how == "inf":
                f["a"][7, 0, 0] = np.inf
            elif how == "shape":
                del f["a"]
                f.create_dataset("a", data=np.zeros((N, NX + 1, NY), np.float32))
                f["a"].attrs["dims"] = ["sample", "x", "y"]
                f["a"].attrs["kind"] = "field"
            elif how == "no-attr":
                del f.attrs["n_spatial_dims"]


@pytest.mark.parametrize(
    "how, error, match",
    [
        ("truncated", DatasetError, "truncated, corrupt or not HDF5"),
        ("text", DatasetError, "cannot open as HDF5"),
        ("empty", DatasetError, "cannot open as HDF5"),
        ("foreign", SchemaError, "not a pdesurrogates-h5 file"),
        ("other-schema", SchemaError, "schema is 'netcdf-thing'"),
        ("version", SchemaError, "schema_version is 99"),
        ("incomplete", SchemaError, "incomplete.*--resume"),
        ("nan", SchemaError, r"/vel holds NaN at index \(4, 2, 1, 1\)"),
        ("inf", SchemaError, r"/a holds Inf at index \(7, 0, 0\)"),
        ("shape", SchemaError, "/a has shape .*mismatched shapes"),
        ("no-attr", SchemaError, r"missing root attributes \['n_spatial_dims'\]"),
    ],
)
def test_bad_files_get_clear_errors(toy, how, error, match):
    path, _ = toy
    _damage(path, how)
    with pytest.raises(error, match=match) as info:
        validate(path)
    assert str(path) in str(info.value)


def test_nan_is_caught_when_reading(toy):
    path, _ = toy
    _damage(path, "nan")
    ds = open_dataset(path)  # structure is fine
    ds[3]
    with pytest.raises(DatasetError, match="NaN or Inf in sample 4"):
        ds[4]


def test_missing_file_mentions_partial(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        validate(tmp_path / "nope.h5")
    _write(tmp_path / "p.h5", _values(), finalize=False)
    with pytest.raises(DatasetError, match=r"p\.h5\.partial exists.*--resume"):
        open_dataset(tmp_path / "p.h5")


def test_writer_rejects_bad_samples(tmp_path):
    v = _values()
    w = DatasetWriter(
        tmp_path / "w.h5",
        n_samples=2,
        coords={"x": np.arange(3.0)},
        fields={"u": FieldSpec(dims=("sample", "x"))},
    )
    with w:
        with pytest.raises(ValueError, match=r"field 'u' has shape \(4,\), expected \(3,\)"):
            w.write(0, {"u": np.zeros(4)})
        with pytest.raises(DatasetError, match="NaN or Inf"):
            w.write(0, {"u": [0.0, np.nan, 1.0]})
        with pytest.raises(ValueError, match="expected \\['u'\\]"):
            w.write(0, {"v": np.zeros(3)})
        w.write(0, {"u": np.zeros(3)})
        with pytest.raises(DatasetError, match="1 of 2 samples are not written"):
            w.finalize()
    assert not (tmp_path / "w.h5").exists()
    with pytest.raises(ValueError, match="unknown dims"):
        FieldSpec(dims=("sample", "q"))
    with pytest.raises(ValueError, match="ordered"):
        FieldSpec(dims=("x", "sample"))
    with pytest.raises(ValueError, match="needs bounds"):
        ParamSpec(dist="uniform")
    del v


def test_writer_refuses_to_clobber(toy):
    path, v = toy
    with pytest.raises(DatasetError, match=r"already exists.*overwrite"):
        _write(path, v)
    _write(path, _values(5), overwrite=True)
    np.testing.assert_array_equal(open_dataset(path)[0]["a"].numpy(), _values(5)["a"][:1])


def test_resume_rejects_other_arguments(tmp_path):
    _write(tmp_path / "r.h5", _values(), finalize=False)
    with pytest.raises(DatasetError, match="different arguments"):
        DatasetWriter(
            tmp_path / "r.h5",
            n_samples=N + 1,
            coords={"x": np.arange(3.0)},
            fields={"u": FieldSpec(dims=("sample", "x"))},
            resume=True,
        )


def test_lzf_compression_round_trips(tmp_path):
    v = _values()
    path = _write(tmp_path / "c.h5", v, compression="lzf")
    with h5py.File(path) as f:
        assert f["a"].compression == "lzf" and f["a"].chunks == (1, NX, NY)
    np.testing.assert_array_equal(
        open_dataset(path)[2]["vel"].numpy(), np.moveaxis(v["vel"][2], -1, 0)
    )


def test_open_xarray_load_refuses_nan_naming_variable_and_sample(tmp_path):
    import h5py

    path = tmp_path / "n.h5"
    x = np.linspace(0, 1, 4)
    with DatasetWriter(path, n_samples=3, coords={"x": x, "y": x},
                       fields={"u": FieldSpec(dims=("sample", "x", "y"))}) as w:  # fmt: skip
        for i in range(3):
            w.write(i, {"u": np.full((4, 4), float(i))})
        w.finalize(split=(1.0, 0.0, 0.0))
    with open_xarray(path, load=True) as ds:  # sound: loads
        assert float(ds["u"].sel(sample=2).mean()) == 2.0
    with h5py.File(path, "r+") as f:  # damage sample 1 behind the writer's back
        f["u"][1, 2, 2] = np.nan
    with pytest.raises(DatasetError, match=r"n\.h5: u holds NaN or Inf at sample 1"):
        open_xarray(path, load=True)
