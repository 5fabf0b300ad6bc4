"""FNO ``.mat`` (v5 and v7.3) and neuraloperator ``.pt`` import: exact round trips."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.io
import torch

from pdesurrogates.datasets import (
    import_fno_mat,
    import_neuralop_pt,
    open_dataset,
    open_xarray,
    validate,
)
from pdesurrogates.errors import DatasetError, SchemaError

RNG = np.random.default_rng(7)
N, X, Y, T = 6, 9, 7, 4  # X != Y so that a transposition error cannot pass


def write_mat73(path, arrays):
    """A MATLAB v7.3 file: HDF5 behind a 512-byte header, arrays stored column-major.

    h5py sees every MATLAB array with its axes reversed, which is what MATLAB writes.
    """
    with h5py.File(path, "w", userblock_size=512) as f:
        for k, v in arrays.items():
            ds = f.create_dataset(k, data=np.ascontiguousarray(np.transpose(v)))
            ds.attrs["MATLAB_class"] = np.bytes_("single" if v.dtype == np.float32 else "double")
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5"
    with open(path, "r+b") as fh:
        fh.write(header.ljust(116) + b"\x00" * 8 + b"\x00\x02IM")


def _darcy_arrays():
    coeff = RNG.choice([3.0, 12.0], size=(N, X, Y))
    sol = RNG.normal(size=(N, X, Y))
    return {"coeff": coeff, "sol": sol, "Kcoeff": RNG.normal(size=(N, X, Y))}


def _ns_arrays():
    return {
        "a": RNG.normal(size=(N, X, Y)).astype(np.float32),
        "u": RNG.normal(size=(N, X, Y, T)).astype(np.float32),
        "t": np.linspace(0.1, 0.4, T).reshape(1, T),
    }


@pytest.mark.parametrize("version", ["v5", "v7.3"])
def test_fno_darcy_mat_round_trips(tmp_path, version):
    arrays = _darcy_arrays()
    src = tmp_path / "piececonst_r9_N6_smooth1.mat"
    if version == "v5":
        scipy.io.savemat(src, arrays)
    else:
        write_mat73(src, arrays)
    out = import_fno_mat(src, tmp_path / "darcy.h5", progress=False)
    validate(out)
    ds = open_dataset(out)
    assert ds.fields["a"].dims == ("sample", "x", "y") and ds.fields["a"].role == "input"
    # channel-first: (N, 1, X, Y)
    np.testing.assert_array_equal(ds.load("a"), arrays["coeff"].astype(np.float32)[:, None])
    np.testing.assert_array_equal(ds.load("u"), arrays["sol"].astype(np.float32)[:, None])
    np.testing.assert_array_equal(ds.coords["x"], np.linspace(0, 1, X))
    np.testing.assert_array_equal(ds.coords["y"], np.linspace(0, 1, Y))
    xa = open_xarray(out)
    assert xa["u"].dims == ("sample", "x", "y") and xa["u"].shape == (N, X, Y)
    xa.close()
    direct = open_dataset(src)
    assert direct.layout == "fno-mat"
    np.testing.assert_array_equal(direct[4]["u"].numpy(), arrays["sol"][4:5].astype(np.float32))


@pytest.mark.parametrize("version", ["v5", "v7.3"])
def test_fno_ns_trajectories_put_time_second(tmp_path, version):
    arrays = _ns_arrays()
    src = tmp_path / "ns_V1e-3_N6_T4.mat"
    if version == "v5":
        scipy.io.savemat(src, arrays)
    else:
        write_mat73(src, arrays)
    ds = open_dataset(import_fno_mat(src, tmp_path / "ns.h5", progress=False))
    assert ds.fields["u"].dims == ("sample", "time", "x", "y")
    # (N, 1, T, X, Y): channel first, then time, then the grid
    np.testing.assert_array_equal(ds.load("u"), np.moveaxis(arrays["u"], -1, 1)[:, None])
    np.testing.assert_array_equal(ds.load("a"), arrays["a"][:, None])
    np.testing.assert_array_equal(ds.coords["time"], arrays["t"].ravel())
    sub = open_dataset(import_fno_mat(src, tmp_path / "ns2.h5", limit=2, progress=False))
    np.testing.assert_array_equal(sub.load("u"), np.moveaxis(arrays["u"][:2], -1, 1)[:, None])


def test_fno_burgers_mat_is_one_dimensional(tmp_path):
    a = RNG.normal(size=(N, 32))
    u = RNG.normal(size=(N, 32))
    src = tmp_path / "burgers_data_R10.mat"
    scipy.io.savemat(src, {"a": a, "u": u})
    ds = open_dataset(import_fno_mat(src, tmp_path / "b.h5", progress=False))
    assert ds.fields["u"].dims == ("sample", "x")
    np.testing.assert_array_equal(ds.load("u"), u.astype(np.float32)[:, None])


def test_mat_errors(tmp_path):
    src = tmp_path / "other.mat"
    scipy.io.savemat(src, {"velocity": np.zeros((2, 3))})
    with pytest.raises(SchemaError, match=r"found MATLAB variables \[velocity\(2, 3\)\]"):
        import_fno_mat(src, tmp_path / "o.h5", progress=False)
    bad = tmp_path / "truncated.mat"
    scipy.io.savemat(bad, _darcy_arrays())
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(DatasetError, match="truncated"):
        import_fno_mat(bad, tmp_path / "o.h5", progress=False)
    mat73 = tmp_path / "t73.mat"
    write_mat73(mat73, _darcy_arrays())
    data = mat73.read_bytes()
    mat73.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="truncated"):
        import_fno_mat(mat73, tmp_path / "o.h5", progress=False)
    ok = tmp_path / "ok.mat"
    scipy.io.savemat(ok, _darcy_arrays())
    with pytest.raises(DatasetError, match=r"available fields: \['a', 'u'\]"):
        import_fno_mat(ok, tmp_path / "o.h5", fields=["Kcoeff"], progress=False)
    only = open_dataset(import_fno_mat(ok, tmp_path / "o.h5", fields=["sol"], progress=False))
    assert only.field_names == ["u"]


def test_neuralop_darcy_pt_round_trips(tmp_path):
    # bool coefficient stored Fortran-ordered, as in the bundled neuraloperator files
    x = torch.from_numpy(RNG.random((16, 16, N)) > 0.5).permute(2, 1, 0)
    y = torch.from_numpy(RNG.normal(size=(N, 16, 16)).astype(np.float32))
    src = tmp_path / "darcy_train_16.pt"
    torch.save({"x": x, "y": y}, src)
    out = import_neuralop_pt(src, tmp_path / "darcy.h5", progress=False)
    ds = open_dataset(out)
    np.testing.assert_array_equal(ds.load("a"), x.numpy().astype(np.float32)[:, None])
    np.testing.assert_array_equal(ds.load("u"), y.numpy()[:, None])
    assert set(np.unique(ds.load("a"))) == {0.0, 1.0}
    xa = open_xarray(out)
    assert xa["a"].dims == ("sample", "x", "y")
    xa.close()
    direct = open_dataset(src)
    np.testing.assert_array_equal(direct[3]["a"].numpy(), x[3:4].numpy().astype(np.float32))


@pytest.mark.parametrize("zipformat", [True, False])
def test_neuralop_burgers_pt_keeps_time_and_visc(tmp_path, zipformat):
    x = torch.from_numpy(RNG.normal(size=(N, 16)))  # float64 as upstream
    y = torch.from_numpy(RNG.normal(size=(N, 17, 16)))
    src = tmp_path / "burgers_train_16.pt"
    torch.save(
        {"x": x, "y": y, "visc": torch.tensor([[0.01]], dtype=torch.float64)},
        src,
        _use_new_zipfile_serialization=zipformat,
    )
    ds = open_dataset(import_neuralop_pt(src, tmp_path / "b.h5", progress=False))
    assert ds.fields["u"].dims == ("sample", "time", "x")
    np.testing.assert_array_equal(ds.load("u"), y.numpy().astype(np.float32)[:, None])
    np.testing.assert_array_equal(ds.load("a"), x.numpy().astype(np.float32)[:, None])
    np.testing.assert_array_equal(ds.param_values("visc"), np.full(N, 0.01))
    assert len(ds.coords["time"]) == 17


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pt_files_are_never_unpickled(tmp_path, capsys):
    src = tmp_path / "evil.pt"
    torch.save({"x": torch.zeros(2, 4), "y": torch.zeros(2, 4), "hook": _Payload()}, src)
    with pytest.raises(DatasetError, match="never unpickle"):
        import_neuralop_pt(src, tmp_path / "o.h5", progress=False)
    assert "this must never run" not in capsys.readouterr().out
    other = tmp_path / "state.pt"
    torch.save({"weight": torch.zeros(3)}, other)
    with pytest.raises(SchemaError, match=r"found dict with keys \{'weight': \(3,\)\}"):
        import_neuralop_pt(other, tmp_path / "o.h5", progress=False)
    cut = tmp_path / "cut.pt"
    torch.save({"x": torch.zeros(50, 64), "y": torch.zeros(50, 64)}, cut)
    cut.write_bytes(cut.read_bytes()[:3000])
    with pytest.raises(DatasetError, match="truncated"):
        import_neuralop_pt(cut, tmp_path / "o.h5", progress=False)
