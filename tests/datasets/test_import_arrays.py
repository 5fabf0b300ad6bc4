"""A user's own arrays: ``import_arrays`` (HDF5, npz, netCDF, zarr), ``from_arrays``,
``from_xarray``, the one layout inference behind them, and every refusal.

The reproducer is the file a new user brings: ``coeff`` and ``solution``, each
(64, 32, 32) float64, no attributes. Values are compared with the source bit for bit
(the dtype is kept unless another is asked for); the splits with the seeded
permutation they must equal.
"""

from __future__ import annotations

import sys

import h5py
import numpy as np
import pytest
import xarray as xr

from pdesurrogates.datasets import (
    from_arrays,
    from_xarray,
    import_arrays,
    import_fno_mat,
    import_pdebench,
    open_dataset,
    open_xarray,
    validate,
)
from pdesurrogates.datasets.backends._arrays import seeded_splits
from pdesurrogates.errors import DatasetError, OutputError, SchemaError

RNG = np.random.default_rng(16)
N, X, Y = 10, 7, 5
ROLES = {"coeff": "input", "solution": "target"}


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """The reproducer: plain (64, 32, 32) float64 arrays with no attributes."""
    path = tmp_path_factory.mktemp("plain") / "mine.h5"
    coeff, solution = RNG.normal(size=(2, 64, 32, 32))
    with h5py.File(path, "w") as f:
        f["coeff"], f["solution"] = coeff, solution
    return path, coeff, solution


def _values(path):
    with open_xarray(path, load=True) as ds:
        return {k: ds[k] for k in ds.data_vars}, ds


def _same(got, want):
    want = np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.dtype, want.dtype)
    np.testing.assert_array_equal(got, want)


# --- the reproducer -----------------------------------------------------------------
def test_plain_hdf5_becomes_a_valid_dataset(plain, tmp_path):
    src, coeff, solution = plain
    out = import_arrays(src, tmp_path / "ours.h5", ROLES, progress=False)
    report = validate(out)
    assert report.fields == {"coeff": ("sample", "x", "y"), "solution": ("sample", "x", "y")}
    assert report.splits == {"train": 51, "valid": 6, "test": 7}
    with open_xarray(out, load=True) as ds:
        _same(ds["coeff"].values, coeff)
        _same(ds["solution"].values, solution)
        np.testing.assert_allclose(ds["x"].values, np.linspace(0, 1, 32))
    with h5py.File(out) as f:
        assert f["coeff"].attrs["role"] == "input"
        assert f["solution"].attrs["role"] == "output"
        train = f["splits/train"][()]
        mean = float(f["stats/solution/mean"][()])
    # a seeded random split (not the first 51 samples), the same for the same seed
    np.testing.assert_array_equal(train, seeded_splits(64, (0.8, 0.1, 0.1), 0)["train"])
    assert not np.array_equal(train, np.arange(51))
    # the statistics are those of the train split
    assert mean == pytest.approx(solution[train].mean(), rel=1e-12)
    ds = open_dataset(out, split="train")
    assert len(ds) == 51 and tuple(ds[0]["coeff"].shape) == (1, 32, 32)
    ds.close()


def test_seeded_splits_partition_and_depend_on_the_seed():
    a, b, c = (seeded_splits(20, (0.5, 0.25, 0.25), s) for s in (0, 0, 1))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["train"], c["train"])
    assert sorted(np.concatenate(list(a.values())).tolist()) == list(range(20))
    assert [len(a[k]) for k in ("train", "valid", "test")] == [10, 5, 5]


def test_dry_run_infers_and_writes_nothing(plain, tmp_path):
    src, *_ = plain
    plan = import_arrays(src, None, ROLES, dry_run=True)
    assert plan.n_samples == 64 and plan.layout == "spatial"
    assert {fp.sample_axis for fp in plan.fields.values()} == {0}
    assert plan.fields["coeff"].spatial_axes == (1, 2)
    assert plan.coord_notes["x"] == "x: linspace(0, 1, 32) assumed"
    # float64 is kept; float32 on request is a downcast, reported per field
    rows = {r["field"]: r for r in plan.rows()}
    assert rows["coeff"]["dtype"] == "float64" and plan.notes == []
    down = import_arrays(src, None, ROLES, dry_run=True, dtype="float32")
    assert sum("float64 is stored as float32 (downcast" in n for n in down.notes) == 2
    assert {r["field"]: r for r in down.rows()}["coeff"]["dtype"] == "float64 -> float32"
    assert rows["solution"]["role"] == "output" and rows["solution"]["sample axis"] == "0"
    assert not list(tmp_path.iterdir())


# --- other file formats -------------------------------------------------------------
def _xr_dataset(a, u, x, y):
    return xr.Dataset(
        {
            "a": (("sample", "x", "y"), a, {"units": "m2", "long_name": "permeability"}),
            "u": (("sample", "x", "y"), u, {"units": "Pa", "long_name": "pressure"}),
        },
        coords={"x": ("x", x, {"units": "m"}), "y": ("y", y)},
    )


@pytest.mark.parametrize("fmt", ["npz", "netcdf4", "netcdf3", "zarr"])
def test_every_format_gives_the_same_dataset(fmt, tmp_path):
    a, u = RNG.normal(size=(2, N, X, Y))
    x, y = np.sort(RNG.uniform(size=X)), np.linspace(0, 2, Y)
    if fmt == "npz":
        src = tmp_path / "mine.npz"
        np.savez(src, a=a, u=u, x=x, y=y)
    elif fmt == "zarr":
        pytest.importorskip("zarr")
        src = tmp_path / "mine.zarr"
        _xr_dataset(a, u, x, y).to_zarr(src, zarr_format=2, consolidated=True)
    else:
        src = tmp_path / "mine.nc"
        engine = "h5netcdf" if fmt == "netcdf4" else "scipy"
        _xr_dataset(a, u, x, y).to_netcdf(src, engine=engine)
    out = import_arrays(src, tmp_path / "o.h5", {"a": "input", "u": "target"}, progress=False)
    with open_xarray(out, load=True) as ds:
        _same(ds["a"].values, a)
        _same(ds["u"].values, u)
        # the grid is taken from the file (coordinate variables or arrays x, y)
        np.testing.assert_allclose(ds["x"].values, x)
        np.testing.assert_allclose(ds["y"].values, y)
    if fmt != "npz":  # named formats keep units and long names
        with h5py.File(out) as f:
            assert f["u"].attrs["units"] == "Pa"
            assert f["a"].attrs["long_name"] == "permeability"
            assert f["x"].attrs["units"] == "m"


def test_zarr_without_the_package_says_how_to_install(tmp_path, monkeypatch):
    src = tmp_path / "mine.zarr"
    src.mkdir()
    (src / ".zgroup").write_text('{"zarr_format": 2}')
    monkeypatch.setitem(sys.modules, "zarr", None)
    with pytest.raises(DatasetError, match="pip install zarr") as info:
        import_arrays(src, tmp_path / "o.h5", {"a": "input"})
    assert str(src) in str(info.value)


def test_arrays_in_groups_and_auto_params(tmp_path):
    src = tmp_path / "grouped.h5"
    a, u = RNG.normal(size=(2, N, X))
    nu = RNG.uniform(1, 2, size=N)
    with h5py.File(src, "w") as f:
        f["data/a"], f["data/u"], f["nu"] = a, u, nu
        f["label"] = np.arange(3)  # not of length N: not a param, not imported
        f["u"] = u
    out = import_arrays(src, tmp_path / "o.h5", {"data/a": "input", "data/u": "target"})
    assert validate(out).fields == {"a": ("sample", "x"), "u": ("sample", "x")}
    with h5py.File(out) as f:
        np.testing.assert_array_equal(f["u"][()], u)
        np.testing.assert_array_equal(f["nu"][()], nu)
        assert [k for k in f if f[k].attrs.get("kind") == "param"] == ["nu"]
    plan = import_arrays(src, None, {"data/u": "input", "u": "target"}, dry_run=True)
    assert sorted(plan.fields) == ["data_u", "u"]  # short names clash: keep the group


# --- from_arrays / from_xarray: the inference ---------------------------------------
def test_from_arrays_channels_last_and_first(tmp_path):
    a = RNG.normal(size=(N, X, Y))
    v = RNG.normal(size=(N, X, Y, 2))
    out = from_arrays({"a": a, "v": v}, {"a": "input", "v": "target"}, path=tmp_path / "l.h5")
    with open_xarray(out, load=True) as ds:
        assert ds["v"].dims == ("sample", "x", "y", "component")
        _same(ds["v"].values, v)
    vf = np.moveaxis(v, -1, 1)  # (N, 2, X, Y)
    plan = from_arrays({"a": a, "v": vf}, {"a": "input", "v": "target"}, dry_run=True)
    assert plan.layout == "channels-first" and plan.fields["v"].channel_axis == 1
    out = from_arrays({"a": a, "v": vf}, {"a": "input", "v": "target"}, path=tmp_path / "f.h5")
    with open_xarray(out, load=True) as ds:
        _same(ds["v"].values, v)


def test_sample_axis_from_a_param_or_given(tmp_path):
    a = RNG.normal(size=(N, X, Y))
    u_last = np.moveaxis(RNG.normal(size=(N, X, Y)), 0, -1)  # (X, Y, N)
    p = RNG.uniform(size=N)
    arrays = {"a": a, "u": u_last, "p": p}
    roles = {"a": "input", "u": "target", "p": "param"}
    plan = from_arrays(arrays, roles, dry_run=True)  # only length N is shared with p
    assert plan.fields["a"].sample_axis == 0 and plan.fields["u"].sample_axis == 2
    out = from_arrays(arrays, roles, path=tmp_path / "o.h5")
    with open_xarray(out, load=True) as ds:
        _same(ds["u"].values, np.moveaxis(u_last, -1, 0))
        np.testing.assert_array_equal(ds["param_p"].values, p)
    given = from_arrays(
        {"a": a, "u": u_last}, ROLES_AU, sample_axis={"a": 0, "u": -1}, dry_run=True
    )
    assert given.fields["u"].sample_axis == 2 and given.fields["u"].spatial_axes == (0, 1)


ROLES_AU = {"a": "input", "u": "target"}


def test_coords_given_four_ways(tmp_path):
    a, u = RNG.normal(size=(2, N, X, Y))
    xs = np.linspace(-1, 1, X)
    for spec, want in (
        ({"x": "0:2"}, np.linspace(0, 2, X)),
        ({"x": (3, 4)}, np.linspace(3, 4, X)),
        ({"x": xs}, xs),
        ({"x": "grid"}, xs),
    ):
        plan = from_arrays({"a": a, "u": u, "grid": xs}, ROLES_AU, coords=spec, dry_run=True)
        np.testing.assert_allclose(plan.coords["x"], want)
        np.testing.assert_allclose(plan.coords["y"], np.linspace(0, 1, Y))
        assert "grid" not in plan.params  # an array used as a grid is not a param


def test_from_xarray_finds_the_sample_dim_by_name(tmp_path):
    a, u = RNG.normal(size=(2, X, Y, N))  # samples last, named "member"
    ds = xr.Dataset(
        {"a": (("x", "y", "member"), a), "u": (("x", "y", "member"), u)},
        coords={"x": np.arange(X) * 0.5},
    )
    out = from_xarray(ds, ROLES_AU, path=tmp_path / "o.h5")
    with open_xarray(out, load=True) as got:
        _same(got["u"].values, np.moveaxis(u, -1, 0))
        np.testing.assert_allclose(got["x"].values, np.arange(X) * 0.5)


def test_dtype_kept_or_cast_as_asked(tmp_path):
    a, u = RNG.normal(size=(2, N, X)).astype(np.float32)
    k = RNG.integers(0, 5, size=(N, X))
    plan = from_arrays({"a": a, "u": u, "k": k}, {**ROLES_AU, "k": "input"}, dry_run=True)
    assert plan.stored_dtype == {"a": "float32", "u": "float32", "k": "float64"}
    # integers above 2**53 lose digits in float64: said so
    assert plan.notes == [
        "k: int64 is stored as float64 (downcast, the widest float stored; relative "
        "rounding 2.2e-16)"
    ]
    up = from_arrays({"a": a, "u": u}, ROLES_AU, dtype="float64", path=tmp_path / "up.h5")
    with h5py.File(up) as f:
        assert f["u"].dtype == np.float64
        np.testing.assert_array_equal(f["u"][()], u.astype(np.float64))
    plan = from_arrays({"a": a, "u": u}, ROLES_AU, dtype="float16", dry_run=True)
    assert [n.split(":")[0] for n in plan.notes] == ["a", "u"]
    assert "float32 is stored as float16 (downcast" in plan.notes[0]
    with pytest.raises(ValueError, match="int8 is not one of"):
        from_arrays({"a": a, "u": u}, ROLES_AU, dtype="int8", dry_run=True)


# --- bad input: the error class, and the message names the field/axis/flag ----------
def test_ambiguous_sample_axis_lists_the_candidates():
    a = RNG.normal(size=(N, X, Y))
    u = np.moveaxis(RNG.normal(size=(N, X, Y)), 0, -1)  # (X, Y, N): 3 shared lengths
    with pytest.raises(SchemaError, match="ambiguous sample axis") as info:
        from_arrays({"a": a, "u": u}, ROLES_AU, dry_run=True)
    msg = str(info.value)
    assert f"length {N}: arrays['a'] axis 0, arrays['u'] axis 2" in msg
    assert f"length {X}: arrays['a'] axis 1, arrays['u'] axis 0" in msg
    assert "--sample-axis" in msg and "sample_axis=" in msg


def test_ambiguous_named_sample_dim_lists_the_dims():
    ds = xr.Dataset({"a": (("p", "q"), np.ones((3, 4))), "u": (("q", "p"), np.ones((4, 3)))})
    with pytest.raises(SchemaError, match=r"candidate dims shared by every field: \['p', 'q'\]"):
        from_xarray(ds, ROLES_AU, dry_run=True)


def test_short_trailing_axis_is_ambiguous():
    a, u = RNG.normal(size=(2, N, 16, 16, 3))
    with pytest.raises(SchemaError, match="ambiguous layout") as info:
        from_arrays({"a": a, "u": u}, ROLES_AU, dry_run=True)
    msg = str(info.value)
    assert "length 3" in msg and "--layout channels-last" in msg and "--layout spatial" in msg
    for layout, dims in (("spatial", 3), ("channels-last", 2)):
        plan = from_arrays({"a": a, "u": u}, ROLES_AU, layout=layout, dry_run=True)
        assert len(plan.fields["u"].spatial_axes) == dims


def test_extra_axis_at_either_end_is_ambiguous():
    a, u = RNG.normal(size=(N, 4, 4)), RNG.normal(size=(N, 4, 4, 4))
    with pytest.raises(SchemaError, match="at either end") as info:
        from_arrays({"a": a, "u": u}, ROLES_AU, dry_run=True)
    assert "arrays['u']" in str(info.value) and "--layout channels-last" in str(info.value)


@pytest.mark.parametrize(
    ("u_shape", "words"),
    [
        ((N - 1, X, Y), ["disagree on axis 0", "arrays['a'] (10, 7, 5)", "arrays['u'] (9, 7, 5)"]),
        (
            (N, X, Y + 1),
            ["disagree on the y axis", "arrays['a'] axis 2 has length 5", "axis 2 has 6"],
        ),
        ((N, X + 1, Y, 2), ["neither end", "arrays['u']"]),
    ],
)
def test_shapes_that_disagree_name_the_fields_and_axis(u_shape, words):
    a, u = RNG.normal(size=(N, X, Y)), RNG.normal(size=u_shape)
    with pytest.raises(SchemaError) as info:
        from_arrays({"a": a, "u": u}, ROLES_AU, dry_run=True)
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def test_given_sample_axis_with_different_lengths_names_the_axes():
    a, u = RNG.normal(size=(N, X, Y)), RNG.normal(size=(X, N, Y))
    with pytest.raises(SchemaError, match=r"arrays\['a'\] axis 1: 7, arrays\['u'\] axis 1: 10"):
        from_arrays({"a": a, "u": u}, ROLES_AU, sample_axis=1, dry_run=True)


def test_nan_names_the_field_and_the_sample(tmp_path):
    a, u = RNG.normal(size=(2, N, X, Y))
    u[6, 2, 1] = np.nan
    with pytest.raises(DatasetError, match=r"field arrays\['u'\] holds NaN or Inf at sample 6"):
        from_arrays({"a": a, "u": u}, ROLES_AU, path=tmp_path / "o.h5")
    assert not list(tmp_path.iterdir())  # nothing left behind
    # the sample index is the source's, whichever axis holds the samples
    with pytest.raises(DatasetError, match="at sample 6"):
        from_arrays(
            {"a": a, "u": np.moveaxis(u, 0, -1)},
            ROLES_AU,
            sample_axis={"a": 0, "u": 2},
            path=tmp_path / "o.h5",
        )


@pytest.mark.parametrize(
    "bad", [np.array([[1, "x"]] * N, dtype=object), np.full((N, X), "s"), np.ones((N, X)) * 1j]
)
def test_from_arrays_refuses_non_numeric_arrays(bad):
    with pytest.raises(ValueError, match=r"arrays\['u'\] has dtype") as info:
        from_arrays({"a": np.ones((N, X)), "u": bad}, ROLES_AU, dry_run=True)
    assert str(bad.dtype) in str(info.value)


def test_bad_roles_params_and_coords_are_named():
    a, u = RNG.normal(size=(2, N, X))
    with pytest.raises(ValueError, match=r"roles\['u'\] = 'answer'"):
        from_arrays({"a": a, "u": u}, {"a": "input", "u": "answer"}, dry_run=True)
    with pytest.raises(ValueError, match=r"arrays \['w'\] have no role"):
        from_arrays({"a": a, "u": u, "w": u}, ROLES_AU, dry_run=True)
    with pytest.raises(SchemaError, match=r"param arrays\['p'\] has shape \(3,\)"):
        from_arrays({"a": a, "u": u, "p": np.ones(3)}, {**ROLES_AU, "p": "param"}, dry_run=True)
    with pytest.raises(SchemaError, match=r"field arrays\['s'\] has shape \(10,\)"):
        from_arrays({"s": np.ones(N), "u": u}, {"s": "input", "u": "target"}, dry_run=True)
    with pytest.raises(ValueError, match=r"coords\['x'\].*the x axis needs 7 numbers"):
        from_arrays({"a": a, "u": u}, ROLES_AU, coords={"x": np.ones(3)}, dry_run=True)
    with pytest.raises(ValueError, match=r"coords\['x'\]: the values must be finite and strictly"):
        from_arrays({"a": a, "u": u}, ROLES_AU, coords={"x": np.ones(X)}, dry_run=True)
    with pytest.raises(ValueError, match=r"coords: no axis \['z'\]"):
        from_arrays({"a": a, "u": u}, ROLES_AU, coords={"z": "0:1"}, dry_run=True)
    with pytest.raises(ValueError, match="layout 'rows'"):
        from_arrays({"a": a, "u": u}, ROLES_AU, layout="rows", dry_run=True)


def test_missing_name_lists_the_variables(plain, tmp_path):
    src, *_ = plain
    with pytest.raises(DatasetError, match="no array 'sol'") as info:
        import_arrays(src, tmp_path / "o.h5", {"coeff": "input", "sol": "target"})
    assert "coeff (64, 32, 32) float64, solution (64, 32, 32) float64" in str(info.value)


def test_damaged_files_and_own_output_are_refused(plain, tmp_path):
    src, *_ = plain
    truncated = tmp_path / "cut.h5"
    truncated.write_bytes(src.read_bytes()[:5000])
    with pytest.raises(DatasetError, match=r"cut\.h5"):
        import_arrays(truncated, tmp_path / "o.h5", ROLES)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(RNG.bytes(3000))
    with pytest.raises(DatasetError, match=r"is not an HDF5, netCDF, \.npz or zarr file"):
        import_arrays(junk, tmp_path / "o.h5", ROLES)
    with pytest.raises(OutputError):
        import_arrays(src, src, ROLES, overwrite=True)
    out = import_arrays(src, tmp_path / "ours.h5", ROLES, progress=False)
    with pytest.raises(DatasetError, match="already a pdesurrogates-h5 file"):
        import_arrays(out, tmp_path / "again.h5", ROLES)
    assert not (tmp_path / "o.h5").exists()


# --- the other entry points point to import arrays ----------------------------------
def test_refusals_of_a_plain_file_point_to_import_arrays(plain, tmp_path):
    src, *_ = plain
    mat = tmp_path / "mine.mat"
    mat.write_bytes(src.read_bytes())
    calls = [
        lambda: open_dataset(src),
        lambda: validate(src),
        lambda: import_pdebench(src, tmp_path / "o.h5"),
        lambda: import_fno_mat(src, tmp_path / "o.h5"),
        lambda: import_fno_mat(mat, tmp_path / "o.h5"),
    ]
    for call in calls:
        with pytest.raises(SchemaError) as info:
            call()
        msg = str(info.value)
        assert "looks like plain arrays" in msg and "pdesurrogates import arrays" in msg, msg
        assert "coeff (64, 32, 32) float64" in msg
        assert "MATLAB variables" not in msg and "(32, 32, 64)" not in msg
