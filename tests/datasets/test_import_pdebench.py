"""PDEBench import: tiny files in each published layout, converted and read back exactly."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from pdesurrogates.datasets import (
    DatasetWriter,
    FieldSpec,
    ParamSpec,
    import_pdebench,
    open_dataset,
    open_xarray,
    to_channel_first,
    validate,
)
from pdesurrogates.errors import DatasetError, SchemaError

RNG = np.random.default_rng(1234)


def _f4(*shape):
    return RNG.normal(size=shape).astype(np.float32)


# --- fixture writers (one per layout) ----------------------------------------------------
def write_tensor_1d(path, n=20, nt=5, nx=8, t_extra=1):
    data = {"tensor": _f4(n, nt, nx)}
    with h5py.File(path, "w") as f:
        f["tensor"] = data["tensor"]
        f["x-coordinate"] = ((np.arange(nx) + 0.5) / nx * 2 - 1).astype(np.float32)
        f["t-coordinate"] = (np.arange(nt + t_extra) * 0.01).astype(np.float32)
        f.attrs["Nu"] = 0.001
        f.attrs["rho"] = 2.0
    return data


def write_darcy(path, n=20, nx=16, ny=16, beta=1.0):
    nu = RNG.choice([0.1, 1.0], size=(n, nx, ny)).astype(np.float32)
    u = _f4(n, 1, nx, ny)
    with h5py.File(path, "w") as f:
        f["nu"] = nu
        f["tensor"] = u
        f["x-coordinate"] = ((np.arange(nx) + 0.5) / nx).astype(np.float32)
        f["y-coordinate"] = ((np.arange(ny) + 0.5) / ny).astype(np.float32)
        f.attrs["beta"] = beta
    return {"nu": nu, "tensor": u}


def write_cfd(path, n=10, nt=3, spatial=(6, 5)):
    keys = ["density", "pressure", "Vx", "Vy", "Vz"][: 2 + len(spatial)]
    data = {k: _f4(n, nt, *spatial) for k in keys}
    with h5py.File(path, "w") as f:
        for k, v in data.items():
            f[k] = v
        for d, m in zip("xyz", spatial, strict=False):
            f[f"{d}-coordinate"] = np.linspace(0, 1, m, dtype=np.float32)
        f["t-coordinate"] = np.linspace(0, 1, nt + 1, dtype=np.float32)
        f.attrs["eta"] = 0.1
        f.attrs["zeta"] = 0.01
        f.attrs["M"] = 1.0
    return data


def write_groups(path, n=12, nt=4, spatial=(6, 5), nc=2, bad_grid_at=None):
    data = []
    with h5py.File(path, "w") as f:
        for i in range(n):
            g = f.create_group(f"{i:04d}")
            g.attrs["config"] = f"sim:\n  seed: {i}\n"
            arr = _f4(nt, *spatial, nc)
            data.append(arr)
            g.create_dataset("data", data=arr, compression="lzf")
            for d, m in zip(("x", "y"), spatial, strict=False):
                grid = np.linspace(-2.5, 2.5, m, dtype=np.float32)
                if bad_grid_at == i and d == "x":
                    grid = grid * 1.5
                g[f"grid/{d}"] = grid
            g["grid/t"] = np.linspace(0, 5, nt, dtype=np.float32)
    return np.stack(data)


def write_ns(path, b=3, nt=4, nx=6, ny=5):
    data = {
        "velocity": _f4(b, nt, nx, ny, 2),
        "particles": _f4(b, nt, nx, ny, 1),
        "force": _f4(b, nx, ny, 2),
    }
    with h5py.File(path, "w") as f:
        for k, v in data.items():
            f.create_dataset(k, data=v, chunks=(1, *v.shape[1:-1], v.shape[-1])[: v.ndim])
        f["t"] = np.tile(np.linspace(0, 1, nt, dtype=np.float32), (b, 1))
        f.attrs["config"] = "sim: {seed: 0}"
        f.attrs["latestIndex"] = 3
    return data


def _assert_all_samples(ds, name, expected):
    """Every sample of ``name`` equals ``expected`` (given in the file's layout), read
    channel-first."""
    expected = to_channel_first(np.asarray(expected), ds.fields[name].dims)
    got = np.stack([ds[i][name].numpy() for i in range(len(ds))])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    batch = ds.__getitems__(list(range(len(ds))))  # batched read path
    np.testing.assert_array_equal(np.stack([b[name].numpy() for b in batch]), expected)


# --- layouts -----------------------------------------------------------------------------
def test_single_tensor_file_round_trips(tmp_path):
    src = tmp_path / "ReacDiff_Nu0.001_Rho2.0.hdf5"
    data = write_tensor_1d(src)
    out = import_pdebench(src, tmp_path / "out.h5", progress=False)
    report = validate(out)
    assert report.fields == {"u": ("sample", "time", "x")}
    ds = open_dataset(out)
    _assert_all_samples(ds, "u", data["tensor"])
    with h5py.File(src) as f:
        t = f["t-coordinate"][()]
        x = f["x-coordinate"][()]
    # t-coordinate has T+1 entries upstream: the first T are the time axis
    np.testing.assert_array_equal(ds.coords["time"], t[:5].astype(np.float64))
    np.testing.assert_array_equal(ds.coords["x"], x.astype(np.float64))
    np.testing.assert_array_equal(ds.param_values("Nu"), np.full(20, 0.001))
    np.testing.assert_array_equal(ds.param_values("rho"), np.full(20, 2.0))
    # PDEBench single-file convention: the first 10 % are the test set
    np.testing.assert_array_equal(ds.splits["test"], [0, 1])
    np.testing.assert_array_equal(ds.splits["train"], np.arange(2, 20))
    mean, std = ds.stats("u")
    np.testing.assert_allclose(mean, data["tensor"][2:].astype(np.float64).mean(), rtol=1e-7)
    np.testing.assert_allclose(std, data["tensor"][2:].astype(np.float64).std(), rtol=1e-10)
    xa = open_xarray(out)
    assert xa["u"].dims == ("sample", "time", "x")
    assert xa["param_Nu"].dims == ("sample",)
    np.testing.assert_array_equal(xa["u"].values, data["tensor"])
    xa.close()


def test_t_coordinate_of_length_t_is_also_accepted(tmp_path):
    src = tmp_path / "adv.hdf5"
    write_tensor_1d(src, t_extra=0)
    ds = open_dataset(import_pdebench(src, tmp_path / "o.h5", progress=False))
    assert len(ds.coords["time"]) == 5


def test_bad_t_coordinate_length_is_named(tmp_path):
    src = tmp_path / "adv.hdf5"
    write_tensor_1d(src, t_extra=3)
    with pytest.raises(SchemaError, match="'t-coordinate' has 8 entries but the data have 5"):
        import_pdebench(src, tmp_path / "o.h5", progress=False)


def test_darcy_round_trips_and_reads_in_place(tmp_path):
    src = tmp_path / "2D_DarcyFlow_beta1.0_Train.hdf5"
    data = write_darcy(src, nx=16, ny=12)
    out = import_pdebench(src, tmp_path / "darcy.h5", progress=False)
    ds = open_dataset(out)
    assert ds.fields["a"].role == "input" and ds.fields["u"].role == "output"
    assert ds.fields["a"].dims == ("sample", "x", "y")
    _assert_all_samples(ds, "a", data["nu"])
    _assert_all_samples(ds, "u", data["tensor"][:, 0])
    assert len(ds.coords["x"]) == 16 and len(ds.coords["y"]) == 12
    np.testing.assert_array_equal(ds.param_values("beta"), np.ones(20))
    xa = open_xarray(out)
    assert xa["a"].dims == ("sample", "x", "y") and xa["u"].dims == ("sample", "x", "y")
    xa.close()
    # the PDEBench file itself opens without conversion and yields the same samples
    direct = open_dataset(src)
    assert direct.layout == "pdebench-darcy"
    _assert_all_samples(direct, "a", data["nu"])
    _assert_all_samples(direct, "u", data["tensor"][:, 0])
    np.testing.assert_array_equal(direct.splits["test"], ds.splits["test"])
    test = open_dataset(src, split="test")
    assert len(test) == 2
    np.testing.assert_array_equal(test[1]["u"].numpy(), data["tensor"][1])  # (1, X, Y)


@pytest.mark.parametrize("spatial", [(7,), (6, 5), (4, 3, 5)])
def test_cfd_files_round_trip(tmp_path, spatial):
    src = tmp_path / f"{len(spatial)}D_CFD_Rand_Eta0.1_Zeta0.01_periodic_Train.hdf5"
    data = write_cfd(src, spatial=spatial)
    ds = open_dataset(import_pdebench(src, tmp_path / "cfd.h5", progress=False))
    dims = ("sample", "time", *"xyz"[: len(spatial)])
    assert ds.fields["density"].dims == dims
    _assert_all_samples(ds, "density", data["density"])
    _assert_all_samples(ds, "pressure", data["pressure"])
    vkeys = ["Vx", "Vy", "Vz"][: len(spatial)]
    if len(spatial) == 1:
        assert ds.fields["velocity"].dims == dims
        _assert_all_samples(ds, "velocity", data["Vx"])
    else:
        assert ds.fields["velocity"].dims == (*dims, "component")
        _assert_all_samples(ds, "velocity", np.stack([data[k] for k in vkeys], axis=-1))
    assert sorted(ds.params) == ["M", "eta", "zeta"]
    np.testing.assert_array_equal(ds.param_values("eta"), np.full(10, 0.1))
    assert len(ds.coords["time"]) == 3


def test_group_per_sample_file_round_trips(tmp_path):
    src = tmp_path / "2D_diff-react_NA_NA.h5"
    data = write_groups(src, n=12)
    out = import_pdebench(src, tmp_path / "dr.h5", progress=False)
    ds = open_dataset(out)
    assert set(ds.field_names) == {"u", "v"}
    assert ds.fields["u"].dims == ("sample", "time", "x", "y")
    _assert_all_samples(ds, "u", data[..., 0])
    _assert_all_samples(ds, "v", data[..., 1])
    np.testing.assert_array_equal(ds.coords["sample"], np.arange(12))
    np.testing.assert_array_equal(
        ds.coords["x"], np.linspace(-2.5, 2.5, 6, dtype=np.float32).astype(np.float64)
    )
    # PDEBench per-sample-group convention: the last 10 % of sorted keys are the test set
    np.testing.assert_array_equal(ds.splits["test"], [10, 11])
    with h5py.File(out) as f:
        assert f["import/config"][3].decode() == "sim:\n  seed: 3\n"
    xa = open_xarray(out)
    assert xa["v"].dims == ("sample", "time", "x", "y")
    xa.close()
    direct = open_dataset(src)
    _assert_all_samples(direct, "v", data[..., 1])


def test_shallow_water_channel_is_named_h(tmp_path):
    src = tmp_path / "2D_rdb_NA_NA.h5"
    data = write_groups(src, n=3, nc=1)
    ds = open_dataset(import_pdebench(src, tmp_path / "rdb.h5", progress=False))
    assert ds.field_names == ["h"]
    _assert_all_samples(ds, "h", data[..., 0])


def test_incompressible_ns_round_trips(tmp_path):
    src = tmp_path / "ns_incom_inhom_2d_512-0.h5"
    data = write_ns(src)
    out = import_pdebench(src, tmp_path / "ns.h5", progress=False)
    ds = open_dataset(out)
    assert ds.fields["velocity"].dims == ("sample", "time", "x", "y", "component")
    assert ds.fields["particles"].dims == ("sample", "time", "x", "y")
    assert ds.fields["force"].dims == ("sample", "x", "y", "component")
    _assert_all_samples(ds, "velocity", data["velocity"])
    _assert_all_samples(ds, "particles", data["particles"][..., 0])
    _assert_all_samples(ds, "force", data["force"])
    np.testing.assert_array_equal(
        ds.coords["time"], np.linspace(0, 1, 4, dtype=np.float32).astype(np.float64)
    )
    assert ds.params == {}  # latestIndex is bookkeeping, not a parameter
    xa = open_xarray(out)
    assert xa["force"].dims == ("sample", "x", "y", "component")
    xa.close()


def test_fields_and_limit_select_what_is_imported(tmp_path):
    src = tmp_path / "cfd.hdf5"
    data = write_cfd(src, n=10)
    out = import_pdebench(src, tmp_path / "o.h5", fields=["pressure"], limit=4, progress=False)
    ds = open_dataset(out)
    assert ds.field_names == ["pressure"] and len(ds) == 4
    _assert_all_samples(ds, "pressure", data["pressure"][:4])


def test_streaming_blocks_give_identical_files(tmp_path):
    """Tiny blocks (one sample per read) give the same file as one big block."""
    from pdesurrogates.datasets.backends import convert
    from pdesurrogates.datasets.backends._pdebench import open_pdebench

    src = tmp_path / "groups.h5"
    data = write_groups(src, n=7)
    with open_pdebench(src) as s:
        a = convert(s, tmp_path / "a.h5", progress=False, block_bytes=1)
    with open_pdebench(src) as s:
        b = convert(s, tmp_path / "b.h5", progress=False)
    for name, j in (("u", 0), ("v", 1)):
        np.testing.assert_array_equal(open_dataset(a).load(name), data[:, None, ..., j])
        np.testing.assert_array_equal(open_dataset(b).load(name), data[:, None, ..., j])


# --- bad input ---------------------------------------------------------------------------
def test_unknown_layout_lists_recognised_layouts_and_what_was_found(tmp_path):
    src = tmp_path / "mystery.h5"
    with h5py.File(src, "w") as f:
        f["solution"] = np.zeros((3, 4), np.float32)
        f.attrs["nu"] = 1.0
    with pytest.raises(SchemaError) as err:
        import_pdebench(src, tmp_path / "o.h5", progress=False)
    msg = str(err.value)
    assert "solution(3, 4)" in msg and "['nu']" in msg
    for layout in ("pdebench-tensor", "pdebench-darcy", "pdebench-cfd", "pdebench-groups"):
        assert layout in msg
    assert not (tmp_path / "o.h5").exists() and not (tmp_path / "o.h5.partial").exists()


def test_truncated_file_gives_a_clear_error(tmp_path):
    src = tmp_path / "adv.hdf5"
    write_tensor_1d(src, n=50, nt=20, nx=64)
    size = src.stat().st_size
    with open(src, "r+b") as fh:
        fh.truncate(size // 2)
    with pytest.raises(DatasetError, match="truncated"):
        import_pdebench(src, tmp_path / "o.h5", progress=False)
    assert not (tmp_path / "o.h5.partial").exists()


def test_data_extending_past_the_end_of_the_file_is_called_truncated(tmp_path):
    """The contiguous-storage check compares a dataset's byte range with the file size."""
    from pdesurrogates.datasets.backends import check_storage

    src = tmp_path / "adv.hdf5"
    write_tensor_1d(src, n=50, nt=20, nx=64)
    short = tmp_path / "short.bin"
    short.write_bytes(b"x" * 1000)
    with h5py.File(src) as f:
        check_storage(src, f["tensor"])  # the real file holds the whole dataset
        with pytest.raises(DatasetError, match=r"/tensor ends at byte \d+ but the file has 1000"):
            check_storage(short, f["tensor"])


def test_grids_differing_across_samples_name_the_first_offender(tmp_path):
    src = tmp_path / "2D_diff-react_NA_NA.h5"
    write_groups(src, n=6, bad_grid_at=3)
    with pytest.raises(SchemaError, match=r"grid/x of sample 3 \('0003'\) differs"):
        import_pdebench(src, tmp_path / "o.h5", progress=False)


def test_ns_time_differing_across_samples_is_named(tmp_path):
    src = tmp_path / "ns.h5"
    write_ns(src)
    with h5py.File(src, "r+") as f:
        t = f["t"][()]
        t[2, 1] += 0.5
        f["t"][...] = t
    with pytest.raises(SchemaError, match="sample 2 differs"):
        import_pdebench(src, tmp_path / "o.h5", progress=False)


def test_missing_requested_field_lists_available_fields(tmp_path):
    src = tmp_path / "darcy.hdf5"
    data = write_darcy(src, n=4)
    with pytest.raises(
        DatasetError,
        match=r"no field\(s\) \['pressure'\].*available fields: \['a', 'u'\] "
        r"\(source names accepted: nu -> a, tensor -> u\)",
    ):
        import_pdebench(src, tmp_path / "o.h5", fields=["pressure"], progress=False)
    # the source's own name selects the mapped field
    ds = open_dataset(import_pdebench(src, tmp_path / "o.h5", fields=["nu"], progress=False))
    assert ds.field_names == ["a"]
    np.testing.assert_array_equal(ds.load("a"), data["nu"][:, None])  # (N, 1, X, Y)


def test_existing_output_is_not_overwritten(tmp_path):
    src = tmp_path / "darcy.hdf5"
    write_darcy(src, n=4)
    import_pdebench(src, tmp_path / "o.h5", progress=False)
    with pytest.raises(DatasetError, match="already exists"):
        import_pdebench(src, tmp_path / "o.h5", progress=False)
    import_pdebench(src, tmp_path / "o.h5", progress=False, overwrite=True, limit=2)
    assert len(open_dataset(tmp_path / "o.h5")) == 2


# --- DatasetWriter.write_batch -----------------------------------------------------------
def _writer(path, n=6):
    return DatasetWriter(
        path,
        n_samples=n,
        coords={"x": np.linspace(0, 1, 4), "time": np.arange(3.0)},
        fields={"u": FieldSpec(dims=("sample", "time", "x")), "a": FieldSpec(("sample", "x"))},
        params={"nu": ParamSpec(dist="uniform", bounds=(0, 1))},
    )


def test_write_batch_matches_per_sample_writes(tmp_path):
    u, a, nu = _f4(6, 3, 4), _f4(6, 4), RNG.uniform(size=6)
    with _writer(tmp_path / "one.h5") as w:
        for i in range(6):
            w.write(i, {"u": u[i], "a": a[i]}, {"nu": nu[i]})
        w.finalize(split=(0.5, 0.5, 0.0))
    with _writer(tmp_path / "batch.h5") as w:
        w.write_batch(4, {"u": u[4:], "a": a[4:]}, {"nu": nu[4:]})
        w.write_batch(0, {"u": u[:4], "a": a[:4]}, {"nu": nu[:4]})
        assert len(w.missing()) == 0
        w.finalize(split=(0.5, 0.5, 0.0))
    one, batch = open_dataset(tmp_path / "one.h5"), open_dataset(tmp_path / "batch.h5")
    for name in ("u", "a"):
        np.testing.assert_array_equal(one.load(name), batch.load(name))
        np.testing.assert_array_equal(one.stats(name)[0], batch.stats(name)[0])
    np.testing.assert_array_equal(batch.param_values("nu"), nu)


def test_write_batch_checks_like_write(tmp_path):
    w = _writer(tmp_path / "w.h5")
    u, a, nu = _f4(2, 3, 4), _f4(2, 4), np.array([0.1, 0.2])
    with pytest.raises(ValueError, match=r"field 'u' has shape \(2, 3, 5\)"):
        w.write_batch(0, {"u": _f4(2, 3, 5), "a": a}, {"nu": nu})
    with pytest.raises(ValueError, match="expected \\['a', 'u'\\]"):
        w.write_batch(0, {"u": u}, {"nu": nu})
    with pytest.raises(ValueError, match="expected \\['nu'\\]"):
        w.write_batch(0, {"u": u, "a": a})
    with pytest.raises(ValueError, match="one leading sample axis"):
        w.write_batch(0, {"u": u, "a": a[:1]}, {"nu": nu})
    with pytest.raises(IndexError, match=r"samples 5\.\.6 outside \[0, 6\)"):
        w.write_batch(5, {"u": u, "a": a}, {"nu": nu})
    bad = u.copy()
    bad[1, 2, 0] = np.nan
    with pytest.raises(DatasetError, match="sample 4: field 'u' holds NaN"):
        w.write_batch(3, {"u": bad, "a": a}, {"nu": nu})
    assert len(w.missing()) == 6  # nothing was written by the failed calls
    w.close()


def test_imported_darcy_feeds_a_dataloader_and_mgno_learns(tmp_path):
    """The Trainer-independent path: open_dataset(...).split('train') -> DataLoader -> MgNO."""
    from pdesurrogates.surrogates import MgNO

    src = tmp_path / "2D_DarcyFlow_beta1.0_Train.hdf5"
    nx = 16
    x = (np.arange(nx) + 0.5) / nx
    n = 40
    nu = RNG.choice([3.0, 12.0], size=(n, nx, nx)).astype(np.float32)
    # a smooth, learnable input -> output map: u = sin(pi x) sin(pi y) / nu, smoothed
    bump = np.outer(np.sin(np.pi * x), np.sin(np.pi * x)).astype(np.float32)
    u = (bump / nu)[:, None]
    with h5py.File(src, "w") as f:
        f["nu"], f["tensor"] = nu, u
        f["x-coordinate"] = f["y-coordinate"] = x.astype(np.float32)
        f.attrs["beta"] = 1.0
    out = import_pdebench(src, tmp_path / "darcy.h5", progress=False)
    train = open_dataset(out).split("train")
    assert len(train) == 36
    loader = torch.utils.data.DataLoader(train, batch_size=12, shuffle=False)
    torch.manual_seed(0)
    model = MgNO(channels=8, levels=2, layers=2, base_resolution=nx)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def epoch_loss(step: bool) -> float:
        total = 0.0
        for batch in loader:
            pred = model(batch["a"] / 12.0)  # batches are channel-first, as MgNO takes them
            loss = torch.mean((pred - batch["u"]) ** 2) / torch.mean(batch["u"] ** 2)
            if step:
                opt.zero_grad()
                loss.backward()
                opt.step()
            total += float(loss.detach())
        return total / len(loader)

    first = epoch_loss(False)
    for _ in range(15):
        epoch_loss(True)
    assert epoch_loss(False) < 0.5 * first


def test_in_place_view_pickles_and_works_with_worker_processes(tmp_path):
    import pickle

    src = tmp_path / "2D_DarcyFlow_beta1.0_Train.hdf5"
    data = write_darcy(src, n=12, nx=8, ny=8)
    ds = open_dataset(src, split="train")
    assert ds[0]["u"].shape == (1, 8, 8)  # opens the source in this process
    clone = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(clone[3]["a"].numpy(), data["nu"][ds.indices[3]][None])
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2)
    got = torch.cat([b["u"] for b in loader]).numpy()
    np.testing.assert_array_equal(got, data["tensor"][ds.indices, :1])
    # statistics are computed on first use, over the train split, as in a converted file
    converted = open_dataset(import_pdebench(src, tmp_path / "c.h5", progress=False))
    for name in ("a", "u"):
        for got, want in zip(ds.stats(name), converted.stats(name), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-7)


def test_write_batch_of_zero_samples_is_a_no_op(tmp_path):
    w = _writer(tmp_path / "w.h5")
    w.write_batch(6, {"u": _f4(0, 3, 4), "a": _f4(0, 4)}, {"nu": np.zeros(0)})
    assert len(w.missing()) == 6
    w.close()
