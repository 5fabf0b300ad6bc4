"""``pdesurrogates import ...``: every format through the command line, and its errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import torch

from pdesurrogates.cli import main
from pdesurrogates.datasets import open_dataset, to_channel_first, validate

RNG = np.random.default_rng(3)


def _darcy(path, n=10, nx=8):
    nu = RNG.choice([3.0, 12.0], size=(n, nx, nx)).astype(np.float32)
    u = RNG.normal(size=(n, 1, nx, nx)).astype(np.float32)
    with h5py.File(path, "w") as f:
        f["nu"], f["tensor"] = nu, u
        f["x-coordinate"] = f["y-coordinate"] = ((np.arange(nx) + 0.5) / nx).astype(np.float32)
        f.attrs["beta"] = 0.1
    return nu, u


def _well(path, b=3, t=4, w=5):
    s = h5py.string_dtype()
    u = RNG.normal(size=(b, t, w)).astype(np.float32)
    with h5py.File(path, "w") as f:
        f.attrs.update({"dataset_name": "toy", "grid_type": "cartesian", "n_spatial_dims": 1})
        f.attrs["n_trajectories"] = b
        d = f.create_group("dimensions")
        d.attrs["spatial_dims"] = np.array(["x"], dtype=s)
        for name, v, tv in (
            ("time", np.arange(t, dtype=float), True),
            ("x", np.arange(w, dtype=float), False),
        ):
            ds = d.create_dataset(name, data=v)
            ds.attrs["sample_varying"], ds.attrs["time_varying"] = False, tv
        g = f.create_group("t0_fields")
        g.attrs["field_names"] = np.array(["u"], dtype=s)
        ds = g.create_dataset("u", data=u)
        ds.attrs["sample_varying"], ds.attrs["time_varying"] = True, True
        ds.attrs["dim_varying"] = np.array([True])
    return u


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_import_pdebench_command(tmp_path, capsys):
    src = tmp_path / "2D_DarcyFlow_beta0.1_Train.hdf5"
    nu, u = _darcy(src)
    out = tmp_path / "darcy.h5"
    code, text = _run(["import", "pdebench", src, "-o", out, "-q"], capsys)
    assert code == 0, text
    assert f"wrote {out} (10 samples; a(10, 8, 8), u(10, 8, 8); splits test: 1, train: 9)" in text
    ds = open_dataset(out)
    np.testing.assert_array_equal(ds.load("a"), nu[:, None])  # channel-first (N, 1, X, Y)
    np.testing.assert_array_equal(ds.load("u"), u)
    out2 = tmp_path / "u_only.h5"
    code, text = _run(
        ["import", "pdebench", src, "-o", out2, "--fields", "u", "--limit", "4", "-q"], capsys
    )
    assert code == 0, text
    assert validate(out2).shapes == {"u": (4, 8, 8)}


def test_import_other_formats_command(tmp_path, capsys):
    well = tmp_path / "toy.hdf5"
    u = _well(well)
    code, text = _run(["import", "the-well", well, "-o", tmp_path / "w.h5", "-q"], capsys)
    assert code == 0, text
    w = open_dataset(tmp_path / "w.h5")
    np.testing.assert_array_equal(w.load("u"), to_channel_first(u, w.fields["u"].dims))

    mat = tmp_path / "darcy.mat"
    coeff, sol = RNG.normal(size=(5, 6, 4)), RNG.normal(size=(5, 6, 4))
    scipy.io.savemat(mat, {"coeff": coeff, "sol": sol})
    code, text = _run(["import", "fno-mat", mat, "-o", tmp_path / "m.h5", "-q"], capsys)
    assert code == 0, text
    np.testing.assert_array_equal(
        open_dataset(tmp_path / "m.h5").load("u"), sol.astype("f4")[:, None]
    )

    pt = tmp_path / "darcy_train_4.pt"
    x, y = torch.rand(5, 4, 4) > 0.5, torch.randn(5, 4, 4)
    torch.save({"x": x, "y": y}, pt)
    code, text = _run(
        ["import", "neuralop-pt", pt, "-o", tmp_path / "p.h5", "-f", "a,u", "-q"], capsys
    )
    assert code == 0, text
    ds = open_dataset(tmp_path / "p.h5")
    np.testing.assert_array_equal(ds.load("a"), x.numpy().astype("f4")[:, None])
    np.testing.assert_array_equal(ds.load("u"), y.numpy()[:, None])


def test_import_errors_are_one_line(tmp_path, capsys):
    src = tmp_path / "darcy.hdf5"
    _darcy(src)
    code, text = _run(["import", "pdebench", src, "-o", tmp_path / "o.h5", "-f", "p"], capsys)
    assert code == 1
    assert "available fields: ['a', 'u']" in text and "Traceback" not in text
    code, text = _run(["import", "the-well", src, "-o", tmp_path / "o.h5"], capsys)
    assert code == 1 and "unknown layout" in text and "the-well" in text
    assert "use `pdesurrogates import pdebench`" in text
    junk = tmp_path / "junk.hdf5"
    junk.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    code, text = _run(["import", "pdebench", junk, "-o", tmp_path / "o.h5"], capsys)
    assert code == 1 and "truncated" in text
    code, text = _run(["import", "pdebench", tmp_path / "nope.h5", "-o", tmp_path / "o.h5"], capsys)
    assert code == 1 and "no such file" in text
    assert not list(tmp_path.glob("o.h5*"))


@pytest.mark.parametrize("alias", ["same", "symlink", "hardlink", "relative"])
def test_import_never_writes_over_its_source(tmp_path, capsys, monkeypatch, alias):
    src = tmp_path / "x.pt"
    torch.save({"x": torch.zeros(4, 8, 8), "y": torch.ones(4, 8, 8)}, src)
    before = src.read_bytes()
    out = {"same": src, "symlink": tmp_path / "l.pt", "hardlink": tmp_path / "h.pt"}.get(alias)
    if alias == "symlink":
        out.symlink_to(src)
    elif alias == "hardlink":
        out.hardlink_to(src)
    elif alias == "relative":
        monkeypatch.chdir(tmp_path)
        out = "./sub/../x.pt"
        (tmp_path / "sub").mkdir()
    code, text = _run(["import", "neuralop-pt", src, "-o", out, "--overwrite"], capsys)
    assert code == 1 and "Traceback" not in text
    assert f"-o {Path(out)} is the input {src}" in text.replace("\n", "") and "destroy" in text
    assert src.read_bytes() == before
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob("*.lock"))


@pytest.mark.parametrize("fmt", ["pdebench", "the-well", "fno-mat", "neuralop-pt"])
def test_help_of_each_import_command(fmt, capsys):
    code, text = _run(["import", fmt, "--help"], capsys)
    assert code == 0
    assert "--output" in text and "--limit" in text and "--fields" in text


def test_console_script_lists_the_import_commands():
    res = subprocess.run(
        [sys.executable, "-m", "pdesurrogates", "import", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    for fmt in ("pdebench", "the-well", "fno-mat", "neuralop-pt"):
        assert fmt in res.stdout


def test_import_commands_are_the_registered_backends(capsys):
    from pdesurrogates.cli._app import import_app
    from pdesurrogates.datasets.backends import list_backends

    names = {c.name for c in import_app.registered_commands}
    assert names == {b.name for b in list_backends()} | {"arrays"}
    code, text = _run(["import", "the-well", "--help"], capsys)
    assert code == 0 and "At most N samples per split" in text
    assert "Convert a Well file or dataset folder" in text


# --- import arrays: a user's own file -----------------------------------------------
TRAIN_CONFIG = """
[model]
channels = 4
layers = 1
projection_channels = 4

[training]
batch_size = 64
"""


@pytest.fixture
def plain(tmp_path):
    """The reproducer: plain (64, 32, 32) float64 arrays without attributes."""
    path = tmp_path / "mine.h5"
    coeff, solution = RNG.normal(size=(2, 64, 32, 32))
    with h5py.File(path, "w") as f:
        f["coeff"], f["solution"] = coeff, solution
    return path, coeff, solution


def test_import_arrays_shows_the_plan_then_writes(plain, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # the table on one line per field
    src, _, solution = plain
    out = tmp_path / "ours.h5"
    argv = ["import", "arrays", src, "-o", out, "--input", "coeff", "--target", "solution"]
    code, text = _run([*argv, "--dry-run", "--dtype", "float32"], capsys)
    assert code == 0, text
    for word in ("sample axis", "spatial axes", "coeff", "(64, 32, 32)", "float64 -> float32"):
        assert word in text, word
    assert "x: linspace(0, 1, 32) assumed" in text and "downcast" in text
    assert "nothing written" in text and not out.exists()
    code, text = _run([*argv, "-q", "--coords", "x=0:2", "--seed", "3"], capsys)
    assert code == 0, text
    assert f"wrote {out} (64 samples" in text
    report = validate(out)
    assert report.splits == {"train": 51, "valid": 6, "test": 7}
    ds = open_dataset(out)
    np.testing.assert_array_equal(ds[5]["solution"].numpy(), solution[5:6].astype(np.float32))
    ds.close()
    with h5py.File(out) as f:
        np.testing.assert_allclose(f["x"][()], np.linspace(0, 2, 32))
        assert f["coeff"].attrs["role"] == "input"
        np.testing.assert_array_equal(f["solution"][()], solution)  # float64 kept


def test_import_arrays_flags(tmp_path, capsys):
    src = tmp_path / "mine.npz"
    a = RNG.normal(size=(5, 6, 8))  # (X, Y, N)
    u = RNG.normal(size=(8, 5, 6, 2))  # (N, X, Y, C)
    np.savez(src, a=a, u=u, nu=RNG.uniform(size=8), ygrid=np.linspace(0, 3, 6))
    out = tmp_path / "o.h5"
    argv = ["import", "arrays", src, "-o", out, "--input", "a", "--target", "u", "-q"]
    code, text = _run([*argv, "--dry-run"], capsys)  # lengths 5, 6 and 8 are all shared
    assert code == 1 and "ambiguous sample axis" in text and "--sample-axis" in text
    extra = ["--sample-axis", "a=2", "--sample-axis", "u=0", "--layout", "channels-last"]
    extra += ["--coords", "y=ygrid", "--split", "0.5,0.25,0.25", "--param", "nu"]
    code, text = _run([*argv, *extra], capsys)
    assert code == 0, text
    with h5py.File(out) as f:
        assert list(f["u"].attrs["dims"]) == ["sample", "x", "y", "component"]
        np.testing.assert_array_equal(f["u"][()], u)
        np.testing.assert_array_equal(f["a"][()], np.moveaxis(a, 2, 0))
        np.testing.assert_allclose(f["y"][()], np.linspace(0, 3, 6))
        assert f["nu"].attrs["kind"] == "param" and len(f["splits/train"]) == 4


def test_import_arrays_errors_are_one_line(plain, tmp_path, capsys):
    src, *_ = plain
    code, text = _run(["import", "arrays", src, "-o", tmp_path / "o.h5", "--input", "a"], capsys)
    assert code == 1 and "no array 'a'" in text and "coeff (64, 32, 32) float64" in text
    assert "Traceback" not in text
    code, text = _run(["import", "arrays", src, "-o", tmp_path / "o.h5"], capsys)
    assert code != 0 and "--input" in text
    code, text = _run(["import", "arrays", src, "--input", "coeff"], capsys)
    assert code != 0 and "-o/--output" in text
    code, text = _run(
        ["import", "arrays", src, "--input", "coeff", "--dry-run", "--split", "0.5,0.5"], capsys
    )
    assert code != 0 and "--split" in text


@pytest.mark.parametrize(
    "argv",
    [
        ["info", "{src}"],
        ["import", "pdebench", "{src}", "-o", "{out}"],
        ["import", "fno-mat", "{src}", "-o", "{out}"],
    ],
)
def test_refusals_of_a_plain_file_point_to_import_arrays(plain, tmp_path, capsys, argv):
    src, *_ = plain
    code, text = _run([a.format(src=src, out=tmp_path / "o.h5") for a in argv], capsys)
    assert code == 1
    assert "looks like plain arrays" in text and f"pdesurrogates import arrays {src}" in text
    assert "MATLAB variables" not in text


def test_plain_file_to_trained_model_in_two_commands(plain, tmp_path, capsys):
    """The user's file becomes a trainable dataset with one command; train mgno trains."""
    src, *_ = plain
    data, run = tmp_path / "ours.h5", tmp_path / "runs" / "mine"
    code, text = _run(
        ["import", "arrays", src, "-o", data, "--input", "coeff", "--target", "solution", "-q"],
        capsys,
    )
    assert code == 0, text
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(TRAIN_CONFIG)
    torch.set_num_threads(1)
    code, text = _run(
        ["train", "mgno", "-d", data, "-c", cfg, "-o", run, "--epochs", "1", "-q"], capsys
    )
    assert code == 0, text
    import json

    record = json.loads((run / "run.json").read_text())
    assert record["input"] == ["coeff"] and record["target"] == "solution"
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 1 and np.isfinite(metrics[0]["train_loss"])
