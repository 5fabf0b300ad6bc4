"""Schema version 2: plain xarray, netCDF4 and h5py read a written file; version-1 files
keep opening; ``migrate`` upgrades them in place, atomically; the writer keeps dtypes."""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

from pdesurrogates._files import WriteLock
from pdesurrogates.datasets import (
    SCHEMA_VERSION,
    DatasetWriter,
    FieldSpec,
    describe,
    generate_darcy,
    migrate,
    open_dataset,
    open_xarray,
    validate,
)
from pdesurrogates.errors import DatasetError, OutputError

V1 = Path(__file__).parent / "data" / "v1_small.h5"


@pytest.fixture(scope="module")
def darcy(tmp_path_factory):
    path = tmp_path_factory.mktemp("darcy") / "d.h5"
    return generate_darcy(path, n_samples=4, resolution=8, seed=3, progress=False)


def test_plain_xarray_opens_a_generated_file_with_data_and_coordinates(darcy):
    assert SCHEMA_VERSION == 2
    ours = open_dataset(darcy, dtype=None)
    with xr.open_dataset(darcy, engine="h5netcdf") as ds:
        assert set(ds.data_vars) == {"a", "u"}
        for name in ("a", "u"):
            var = ds[name]
            assert var.dims == ("sample", "x", "y")
            assert var.attrs["long_name"] and var.attrs["units"]
            np.testing.assert_array_equal(var.values[:, None], ours.load(name))  # (N, 1, X, Y)
        # the Darcy grid: 8 cell centres of the unit interval per axis
        np.testing.assert_allclose(ds["x"].values, (np.arange(8) + 0.5) / 8)
        assert ds["x"].attrs["axis"] == "X" and ds["y"].attrs["axis"] == "Y"
        np.testing.assert_array_equal(ds["sample"].values, np.arange(4))
        assert ds.attrs["schema_version"] == 2 and ds.attrs["Conventions"] == "CF-1.8"
    assert ours.fields["a"].long_name == xr.open_dataset(darcy, engine="h5netcdf")["a"].long_name


def test_the_reader_gives_coordinate_units_and_names_of_both_versions(darcy):
    """What xarray shows as the coordinates' attributes is what the reader exposes."""
    with xr.open_dataset(darcy, engine="h5netcdf") as ds:
        want = {d: {k: ds[d].attrs[k] for k in ("units", "long_name")} for d in ("x", "y")}
    got = open_dataset(darcy).coord_attrs
    assert {d: got[d] for d in ("x", "y")} == want and want["x"]["long_name"] == "x"
    assert open_dataset(V1).coord_attrs["x"] == {"units": "m"}


def test_params_are_variables_along_sample(tmp_path):
    path = tmp_path / "p.h5"
    from pdesurrogates.datasets import ParamSpec

    nu = np.array([0.2, 0.3, 0.4])
    spec = ParamSpec("uniform", units="m2/s", bounds=(0.1, 0.5))
    with DatasetWriter(path, n_samples=3, coords={"x": 4},
                       fields={"u": FieldSpec(("sample", "x"), units="m", long_name="height")},
                       params={"nu": spec}) as w:  # fmt: skip
        w.write_batch(0, {"u": np.ones((3, 4))}, {"nu": nu})
        w.finalize()
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert ds["nu"].dims == ("sample",) and ds["nu"].attrs["units"] == "m2/s"
        np.testing.assert_array_equal(ds["nu"].values, nu)
        np.testing.assert_array_equal(ds["nu"].attrs["dist_bounds"], [0.1, 0.5])
        assert ds["u"].attrs == {"kind": "field", "dims": ["sample", "x"], "role": "output",
                                 "long_name": "height", "units": "m"}  # fmt: skip


def test_netcdf4_and_h5py_views(darcy):
    netCDF4 = pytest.importorskip("netCDF4")
    ours = open_dataset(darcy, dtype=None)
    with netCDF4.Dataset(darcy) as nc:
        assert nc.data_model == "NETCDF4"
        assert set(nc.dimensions) == {"sample", "x", "y"}
        var = nc.variables["u"]
        assert var.dimensions == ("sample", "x", "y") and var.units == ours.fields["u"].units
        np.testing.assert_array_equal(np.asarray(var[:])[:, None], ours.load("u"))
        assert set(nc.groups) == {"splits", "stats"}
        np.testing.assert_array_equal(nc["splits"]["train"][:], ours.splits["train"])
    with h5py.File(darcy, "r") as f:
        assert f["u"].dims[1][0].name == "/x" and f["u"].attrs["kind"] == "field"
        np.testing.assert_array_equal(f["a"][()][:, None], ours.load("a"))
        assert "fields" not in f and "params" not in f


def test_a_version_1_file_keeps_opening():
    ds = open_dataset(V1, dtype=None)
    assert ds._meta["version"] == 1 and len(ds) == 6
    assert ds.fields["a"].long_name == "permeability a" and ds.params["nu"].bounds == (0.1, 0.5)
    report = validate(V1, deep=True)
    assert report.shapes["vel"] == (6, 5, 4, 2)
    with open_xarray(V1, load=True) as x:
        np.testing.assert_array_equal(x["a"].values[:, None], ds.load("a"))
        np.testing.assert_array_equal(x["param_nu"].values, ds.param_values("nu"))
    assert "v1; `pdesurrogates migrate` upgrades it" in describe(V1)


def _content(path):
    ds = open_dataset(path, dtype=None)
    out = {f"field {k}": ds.load(k) for k in ds.field_names}
    out.update({f"param {k}": ds.param_values(k) for k in ds.params})
    out.update({f"split {k}": v for k, v in ds.splits.items()})
    out.update({f"stats {k}": np.array(ds.stats(k)) for k in ds.field_names})
    out.update({f"coord {k}": v for k, v in ds.coords.items()})
    # an empty long_name reads as the name in both versions (stored so from version 2 on)
    params = {k: replace(v, long_name=v.long_name or k) for k, v in ds.params.items()}
    specs = (ds.fields, params, {k: ds.load(k).dtype for k in ds.field_names})
    attrs = {k: v for k, v in ds.attrs.items() if k not in ("schema_version", "complete")}
    ds.close()
    return out, specs, attrs


def test_migrate_round_trip_keeps_every_value(tmp_path):
    path = tmp_path / "old.h5"
    shutil.copyfile(V1, path)
    before, specs, attrs = _content(path)
    plan = migrate(path, dry_run=True)
    assert not plan.changed and plan.from_version == 1 and path.read_bytes() == V1.read_bytes()
    done = migrate(path)
    assert done.changed and "migrated" in str(done)
    after, specs2, attrs2 = _content(path)
    assert after.keys() == before.keys() and specs2 == specs
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)
    assert {k: attrs2[k] for k in attrs} == attrs  # provenance kept (note, source, ...)
    with xr.open_dataset(path, engine="h5netcdf") as x:
        assert set(x.data_vars) == {"a", "traj", "vel", "mask", "nu", "k"}
    again = migrate(path)
    assert not again.changed and "already at schema version 2" in str(again)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.h5"]


@pytest.mark.parametrize("where", ["validate", "atomic_replace"])
def test_migrate_keeps_the_original_on_a_failure(tmp_path, monkeypatch, where):
    import pdesurrogates.datasets._migrate as m

    path = tmp_path / "old.h5"
    shutil.copyfile(V1, path)

    def boom(*a, **k):
        raise DatasetError(f"{path}: injected failure in {where}")

    monkeypatch.setattr(m, where, boom)
    with pytest.raises(DatasetError, match="injected failure"):
        migrate(path)
    assert path.read_bytes() == V1.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.h5"]  # no partial, no lock


def test_migrate_refuses_a_file_another_writer_holds(tmp_path):
    path = tmp_path / "old.h5"
    shutil.copyfile(V1, path)
    with WriteLock(path, command="another writer"):
        with pytest.raises(OutputError, match="another writer"):
            migrate(path)
    assert path.read_bytes() == V1.read_bytes()


def _one_field(path, data, **kw):
    with DatasetWriter(path, n_samples=len(data), coords={"x": data.shape[1]},
                       fields={"u": FieldSpec(("sample", "x"))}, **kw) as w:  # fmt: skip
        w.write_batch(0, {"u": data})
        w.finalize()
    with h5py.File(path, "r") as f:
        return f["u"][()]


def test_dtype_is_kept_and_a_downcast_is_reported(tmp_path, caplog):
    data = np.random.default_rng(0).normal(size=(3, 5))  # float64
    stored = _one_field(tmp_path / "keep.h5", data)
    assert stored.dtype == np.float64 and np.array_equal(stored, data)
    assert open_dataset(tmp_path / "keep.h5", dtype=None)[0]["u"].dtype.itemsize == 8
    stored = _one_field(tmp_path / "f32.h5", data.astype(np.float32))
    assert stored.dtype == np.float32
    with caplog.at_level(logging.WARNING, logger="pdesurrogates"):
        stored = _one_field(tmp_path / "down.h5", data, dtype="float32")
    assert stored.dtype == np.float32 and np.array_equal(stored, data.astype(np.float32))
    assert any(
        "'u'" in r.message and "float64" in r.message and "float32" in r.message
        for r in caplog.records
    )
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pdesurrogates"):
        stored = _one_field(tmp_path / "up.h5", data.astype(np.float32), dtype=np.float64)
    assert stored.dtype == np.float64 and not caplog.records  # a widening cast is silent


def test_missing_coords_says_what_to_pass_and_integers_mean_cell_centres(tmp_path):
    with pytest.raises(ValueError, match=r"coords=\{'x': n_x, 'y': n_y\}.*cell centres"):
        DatasetWriter(tmp_path / "c.h5", n_samples=2, fields={"u": FieldSpec(("sample", "x", "y"))})
    with DatasetWriter(tmp_path / "c.h5", n_samples=1, coords={"x": 4, "y": 2},
                       fields={"u": FieldSpec(("sample", "x", "y"))}) as w:  # fmt: skip
        w.write(0, {"u": np.zeros((4, 2))})
        w.finalize()
    ds = open_dataset(tmp_path / "c.h5")
    np.testing.assert_allclose(ds.coords["x"], [0.125, 0.375, 0.625, 0.875])  # h = 1/4
    np.testing.assert_allclose(ds.coords["y"], [0.25, 0.75])


def test_nan_and_bad_shapes_name_the_field_and_the_sample(tmp_path):
    data = np.zeros((4, 3))
    data[2, 1] = np.nan
    with DatasetWriter(tmp_path / "n.h5", n_samples=4, coords={"x": 3},
                       fields={"u": FieldSpec(("sample", "x"))}) as w:  # fmt: skip
        with pytest.raises(DatasetError, match=r"sample 2: field 'u' holds NaN"):
            w.write_batch(0, {"u": data})
        with pytest.raises(ValueError, match=r"samples 0\.\.3: field 'u' has shape \(4, 2\)"):
            w.write_batch(0, {"u": np.zeros((4, 2))})
        with pytest.raises(ValueError, match=r"sample 1: field 'u' has shape"):
            w.write(1, {"u": np.zeros(5)})


def test_names_that_cannot_share_the_root_are_refused(tmp_path):
    from pdesurrogates.datasets import ParamSpec

    with pytest.raises(ValueError, match="'u' names both a field and a parameter"):
        DatasetWriter(tmp_path / "x.h5", n_samples=1, coords={"x": 2},
                      fields={"u": FieldSpec(("sample", "x"))},
                      params={"u": ParamSpec()})  # fmt: skip
    with pytest.raises(ValueError, match="field name 'x' is taken"):
        DatasetWriter(tmp_path / "x.h5", n_samples=1, coords={"x": 2},
                      fields={"x": FieldSpec(("sample", "x"))})  # fmt: skip
