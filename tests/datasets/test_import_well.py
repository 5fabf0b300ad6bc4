"""The Well import: tiny files written to the documented format, converted and read back."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from pdesurrogates.datasets import (
    import_the_well,
    open_dataset,
    open_xarray,
    to_channel_first,
    validate,
)
from pdesurrogates.errors import DatasetError, SchemaError

B, T, W, H = 2, 5, 8, 6
STR = h5py.string_dtype()


def _flags(ds, sample, time, dims=None):
    ds.attrs["sample_varying"] = sample
    ds.attrs["time_varying"] = time
    if dims is not None:
        ds.attrs["dim_varying"] = np.array(dims)


def write_well(path, seed=0, *, x_shift=0.0, tcool=0.1):
    """A 2-D Well file with t0, t1, t2 fields, a constant field, scalars and BCs."""
    rng = np.random.default_rng(seed)
    data = {
        "density": rng.normal(size=(B, T, W, H)).astype(np.float32),
        "velocity": rng.normal(size=(B, T, W, H, 2)).astype(np.float32),
        "stress": rng.normal(size=(B, T, W, H, 2, 2)).astype(np.float32),
        "obstacle": rng.normal(size=(B, W, H)).astype(np.float32),  # time-invariant
        "mask": (np.random.default_rng(99).random((W, H)) > 0.5).astype(np.float32),  # shared
        "profile": rng.normal(size=(B, T, W)).astype(np.float32),  # not varying along y
        "energy": rng.normal(size=(B, T)),  # time-varying scalar
    }
    with h5py.File(path, "w") as f:
        f.attrs["dataset_name"] = "toy_well"
        f.attrs["grid_type"] = "cartesian"
        f.attrs["n_spatial_dims"] = 2
        f.attrs["n_trajectories"] = B
        f.attrs["simulation_parameters"] = np.array(["tcool"], dtype=STR)
        f.attrs["tcool"] = tcool
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = np.array(["x", "y"], dtype=STR)
        _flags(dims.create_dataset("time", data=np.linspace(0, 1, T)), False, True)
        _flags(dims.create_dataset("x", data=np.linspace(0, 1, W) + x_shift), False, False)
        _flags(dims.create_dataset("y", data=np.linspace(0, 3, H)), False, False)
        bcs = f.create_group("boundary_conditions")
        for name, dim, kind in (("x_periodic", "x", "PERIODIC"), ("y_wall", "y", "WALL")):
            g = bcs.create_group(name)
            g.attrs["associated_dims"] = np.array([dim], dtype=STR)
            g.attrs["associated_fields"] = np.array([], dtype=STR)
            g.attrs["bc_type"] = kind
            g.attrs["sample_varying"] = False
            g.attrs["time_varying"] = False
            n = W if dim == "x" else H
            g["mask"] = np.r_[True, np.zeros(n - 2, bool), True]
        t0 = f.create_group("t0_fields")
        t0.attrs["field_names"] = np.array(["density", "obstacle", "mask", "profile"], STR)
        _flags(t0.create_dataset("density", data=data["density"]), True, True, [True, True])
        _flags(t0.create_dataset("obstacle", data=data["obstacle"]), True, False, [True, True])
        _flags(t0.create_dataset("mask", data=data["mask"]), False, False, [True, True])
        _flags(t0.create_dataset("profile", data=data["profile"]), True, True, [True, False])
        t1 = f.create_group("t1_fields")
        t1.attrs["field_names"] = np.array(["velocity"], STR)
        _flags(t1.create_dataset("velocity", data=data["velocity"]), True, True, [True, True])
        t2 = f.create_group("t2_fields")
        t2.attrs["field_names"] = np.array(["stress"], STR)
        ds = t2.create_dataset("stress", data=data["stress"])
        _flags(ds, True, True, [True, True])
        ds.attrs["symmetric"] = False
        ds.attrs["antisymmetric"] = False
        sc = f.create_group("scalars")
        sc.attrs["field_names"] = np.array(["tcool", "energy"], STR)
        _flags(sc.create_dataset("tcool", data=tcool), False, False)
        _flags(sc.create_dataset("energy", data=data["energy"]), True, True)
    return data


def write_dataset_folder(root):
    parts = {}
    for split, seeds in (("train", (0, 1)), ("valid", (2,)), ("test", (3,))):
        d = root / "toy_well" / "data" / split
        d.mkdir(parents=True)
        for s in seeds:
            parts[(split, s)] = write_well(d / f"toy_{s:02d}.hdf5", seed=s, tcool=0.1 * (s + 1))
    return parts


def test_single_well_file_round_trips(tmp_path):
    src = tmp_path / "toy.hdf5"
    data = write_well(src)
    out = import_the_well(src, tmp_path / "out.h5", progress=False)
    report = validate(out)
    assert report.n_samples == B
    ds = open_dataset(out)
    assert ds.fields["density"].dims == ("sample", "time", "x", "y")
    assert ds.fields["velocity"].dims == ("sample", "time", "x", "y", "component")
    assert ds.fields["stress_x"].dims == ("sample", "time", "x", "y", "component")
    assert ds.fields["obstacle"].dims == ("sample", "x", "y")
    assert ds.fields["mask"].dims == ("x", "y")
    assert ds.fields["profile"].dims == ("sample", "time", "x")
    assert ds.fields["energy"].dims == ("sample", "time")
    for i in range(B):
        s = ds[i]  # channel-first: scalar fields (1, ...), vectors (C, ...)
        for name in ("density", "obstacle", "profile"):
            np.testing.assert_array_equal(s[name].numpy(), data[name][i][None])
        np.testing.assert_array_equal(
            s["velocity"].numpy(), np.moveaxis(data["velocity"][i], -1, 0)
        )
        # rank-2 tensors: one field per row, columns along the component dim
        for name, row in (("stress_x", 0), ("stress_y", 1)):
            want = np.moveaxis(data["stress"][i, ..., row, :], -1, 0)
            np.testing.assert_array_equal(s[name].numpy(), want)
        np.testing.assert_array_equal(s["mask"].numpy(), data["mask"][None])
        energy = data["energy"][i].astype(np.float32)[None]
        np.testing.assert_array_equal(s["energy"].numpy(), energy)
    np.testing.assert_array_equal(ds.param_values("tcool"), [0.1, 0.1])
    np.testing.assert_array_equal(ds.coords["y"], np.linspace(0, 3, H))
    np.testing.assert_array_equal(ds.coords["component"], [0, 1])
    with h5py.File(out) as f:
        assert f["x"].attrs["periodic"] and not f["y"].attrs["periodic"]
        bc = f["boundary_conditions/x_periodic"]
        assert bc.attrs["bc_type"] == "PERIODIC"
        np.testing.assert_array_equal(bc["mask"][()], np.r_[True, np.zeros(W - 2, bool), True])
        assert f["stress_y"].attrs["tensor_order"] == 2
        assert f["stress_y"].attrs["tensor_row"] == 1
        assert f["velocity"].attrs["tensor_order"] == 1
        assert f.attrs["grid_type"] == "cartesian"
    xa = open_xarray(out)
    assert xa["velocity"].dims == ("sample", "time", "x", "y", "component")
    assert xa["mask"].dims == ("x", "y")
    assert xa["energy"].dims == ("sample", "time")
    np.testing.assert_array_equal(xa["stress_y"].values, data["stress"][..., 1, :])
    xa.close()


def test_dataset_folder_maps_train_valid_test_to_splits(tmp_path):
    parts = write_dataset_folder(tmp_path)
    out = import_the_well(tmp_path / "toy_well", tmp_path / "out.h5", progress=False)
    ds = open_dataset(out)
    assert len(ds) == 4 * B
    np.testing.assert_array_equal(ds.splits["train"], [0, 1, 2, 3])
    np.testing.assert_array_equal(ds.splits["valid"], [4, 5])
    np.testing.assert_array_equal(ds.splits["test"], [6, 7])
    order = [("train", 0), ("train", 1), ("valid", 2), ("test", 3)]
    expected = np.concatenate([parts[k]["velocity"] for k in order])
    velocity = ds.fields["velocity"].dims
    np.testing.assert_array_equal(ds.load("velocity"), to_channel_first(expected, velocity))
    np.testing.assert_array_equal(
        ds.param_values("tcool"), np.repeat([0.1 * (s + 1) for s in range(4)], B)
    )
    # statistics are of the train folder only
    train = np.concatenate([parts[("train", s)]["density"] for s in (0, 1)]).astype(np.float64)
    np.testing.assert_allclose(ds.stats("density")[0], train.mean(), rtol=1e-10)
    # --limit caps each split
    small = open_dataset(
        import_the_well(tmp_path / "toy_well", tmp_path / "small.h5", limit=1, progress=False)
    )
    assert {k: len(v) for k, v in small.splits.items()} == {"train": 1, "valid": 1, "test": 1}
    # the folder and a file also open without conversion
    direct = open_dataset(tmp_path / "toy_well")
    np.testing.assert_array_equal(
        direct.split("valid").load("velocity"), to_channel_first(expected[4:6], velocity)
    )
    for name in ("velocity", "density", "mask"):  # per component; static field too
        for got, want in zip(direct.stats(name), ds.stats(name), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-7)
    one = open_dataset(tmp_path / "toy_well" / "data" / "test" / "toy_03.hdf5")
    stress_x = parts[("test", 3)]["stress"][..., 0, :]
    np.testing.assert_array_equal(
        one.load("stress_x"), to_channel_first(stress_x, one.fields["stress_x"].dims)
    )


def test_grids_differing_across_files_name_the_first_offending_sample(tmp_path):
    write_dataset_folder(tmp_path)
    bad = tmp_path / "toy_well" / "data" / "valid" / "toy_02.hdf5"
    bad.unlink()
    write_well(bad, seed=2, x_shift=0.5)
    with pytest.raises(SchemaError, match="dimensions/x of sample 4 differs"):
        import_the_well(tmp_path / "toy_well", tmp_path / "out.h5", progress=False)


def test_shape_not_matching_flags_is_named(tmp_path):
    src = tmp_path / "toy.hdf5"
    write_well(src)
    with h5py.File(src, "r+") as f:
        f["t0_fields/obstacle"].attrs["time_varying"] = True
    with pytest.raises(SchemaError, match=r"/t0_fields/obstacle has shape \(2, 8, 6\)"):
        import_the_well(src, tmp_path / "out.h5", progress=False)


def test_missing_field_and_non_well_file(tmp_path):
    src = tmp_path / "toy.hdf5"
    write_well(src)
    with pytest.raises(DatasetError, match=r"available fields: \['density', 'obstacle'"):
        import_the_well(src, tmp_path / "o.h5", fields=["pressure"], progress=False)
    rows = import_the_well(src, tmp_path / "rows.h5", fields=["stress"], progress=False)
    assert open_dataset(rows).field_names == ["stress_x", "stress_y"]
    other = tmp_path / "other.hdf5"
    with h5py.File(other, "w") as f:
        f["tensor"] = np.zeros((2, 3, 4), np.float32)
    with pytest.raises(SchemaError, match=r"found top-level objects \['tensor'\].*the-well") as e:
        import_the_well(other, tmp_path / "o.h5", progress=False)
    assert "looks like a pdebench-tensor file: use `pdesurrogates import pdebench`" in str(e.value)
    from pdesurrogates.datasets import import_pdebench

    with pytest.raises(SchemaError, match="use `pdesurrogates import the-well`"):
        import_pdebench(src, tmp_path / "o.h5", progress=False)
    with pytest.raises(DatasetError, match="no such file or directory"):
        import_the_well(tmp_path / "does_not_exist", tmp_path / "o.h5")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"no \.hdf5/\.h5 files found"):
        import_the_well(tmp_path / "empty", tmp_path / "o.h5")
