"""The PDE-family generators from the command line: darcy multiscale, helmholtz and
navier-stokes write complete, valid files, and bad arguments get one clear message."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pdesurrogates.cli import main
from pdesurrogates.datasets import open_dataset, validate


def test_generate_darcy_multiscale(tmp_path):
    out = tmp_path / "ms.h5"
    args = ["generate", "darcy", "--variant", "multiscale", "-n", "3", "-r", "16", "-q"]
    assert main([*args, "-o", str(out)]) == 0
    ds = open_dataset(out)
    a = np.stack([ds[i]["a"].numpy() for i in range(3)])
    assert a.shape == (3, 1, 16, 16) and a.max() / a.min() > 10  # not the two-valued field
    assert "multiscale" in ds.attrs["dataset_name"]


def test_generate_helmholtz(tmp_path, capsys):
    out = tmp_path / "h.h5"
    args = ["generate", "helmholtz", "-n", "3", "-r", "17", "--omega", "200", "-q"]
    assert main([*args, "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    ds = open_dataset(out)
    assert ds.shape("c") == (1, 17, 17) and ds.fields["c"].role == "input"
    assert ds.coord_attrs["x"]["units"] == "m"
    c = ds[0]["c"].numpy()
    assert 19 < c.min() and c.max() < 21
    assert validate(out).n_samples == 3


def test_generate_navier_stokes_then_resume_does_nothing(tmp_path, capsys):
    out = tmp_path / "ns.h5"
    args = ["generate", "navier-stokes", "-n", "2", "-r", "16", "-T", "1", "--n-times", "5"]
    assert main([*args, "--nu", "1e-4", "-q", "-o", str(out)]) == 0
    ds = open_dataset(out)
    assert ds.shape("w") == (1, 5, 16, 16) and ds.fields["w"].role == "state"
    np.testing.assert_allclose(ds.coords["time"], [0, 0.25, 0.5, 0.75, 1.0])
    assert json.loads(ds.attrs["source"])["nu"] == 1e-4
    capsys.readouterr()
    mtime = out.stat().st_mtime_ns
    assert main([*args, "--nu", "1e-4", "-q", "--resume", "-o", str(out)]) == 0
    assert "wrote" not in capsys.readouterr().out and out.stat().st_mtime_ns == mtime


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["helmholtz", "-r", "2"], "resolution 2 is not supported"),
        (["helmholtz", "--refine", "0"], "--refine"),
        (["navier-stokes", "-r", "15"], "resolution must be even"),
        (["navier-stokes", "--n-times", "1"], "--n-times must be >= 2"),
        (["navier-stokes", "--workers", "0"], "--workers must be >= 1"),
    ],
)
def test_bad_arguments(tmp_path, capsys, args, message):
    code = main(["generate", *args, "-q", "-o", str(tmp_path / "x.h5")])
    captured = capsys.readouterr()
    assert code != 0 and message in captured.err + captured.out
    assert "Traceback" not in captured.err and not (tmp_path / "x.h5").exists()


@pytest.mark.parametrize(
    ("command", "units"),
    [("helmholtz", ["rad/s", "m/s"]), ("navier-stokes", ["time units", "Viscosity"])],
)
def test_help_states_the_units(capsys, command, units):
    assert main(["generate", command, "--help"]) == 0
    text = capsys.readouterr().out
    for unit in units:
        assert unit in text
