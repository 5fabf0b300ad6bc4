"""The Helmholtz and Navier–Stokes recipes through the one dataset writer: the time axis
in the schema, worker-count independence and --resume of a trajectory file."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import pdesurrogates.solvers.reference as reference
from pdesurrogates.datasets import (
    generate_helmholtz,
    generate_navier_stokes,
    open_xarray,
    validate,
)

NS = {"n_samples": 4, "resolution": 16, "duration": 0.5, "n_times": 3, "seed": 5}


def test_navier_stokes_file_declares_a_uniform_periodic_time_series(tmp_path):
    out = generate_navier_stokes(tmp_path / "ns.h5", progress=False, **NS)
    validate(out)
    with h5py.File(out) as f:
        assert f["w"].shape == (4, 3, 16, 16) and f["w"].attrs["role"] == "state"
        np.testing.assert_allclose(f["time"][()], [0.0, 0.25, 0.5])
        assert int(f["x"].attrs["periodic"]) == 1
    ds = open_xarray(out)
    assert ds["w"].dims == ("sample", "time", "x", "y")
    w0 = reference.ns_initial_vorticity(16, rng=np.random.default_rng([5, 2]))
    np.testing.assert_allclose(ds["w"].values[2, 0], w0, atol=1e-6)  # float32 storage
    assert abs(float(ds["w"].values[:, -1].mean(axis=(-2, -1)).max())) < 1e-6


@pytest.mark.slow  # dask workers importing torch: about 20 s on 2 busy cores
def test_navier_stokes_with_two_workers_matches_one(tmp_path):
    one = generate_navier_stokes(tmp_path / "one.h5", progress=False, **NS)
    two = generate_navier_stokes(tmp_path / "two.h5", progress=False, workers=2, **NS)
    with h5py.File(one) as a, h5py.File(two) as b:
        np.testing.assert_array_equal(a["w"][()], b["w"][()])


def test_interrupted_navier_stokes_run_resumes(tmp_path, monkeypatch):
    target = tmp_path / "ns.h5"
    real = reference.ns_sample

    def failing(index, seed, **kw):
        if index == 2:
            raise KeyboardInterrupt
        return real(index, seed, **kw)

    monkeypatch.setattr(reference, "ns_sample", failing)
    with pytest.raises(KeyboardInterrupt):
        generate_navier_stokes(target, progress=False, **NS)
    assert not target.exists()
    calls = []

    def counting(index, seed, **kw):
        calls.append(index)
        return real(index, seed, **kw)

    monkeypatch.setattr(reference, "ns_sample", counting)
    generate_navier_stokes(target, progress=False, resume=True, **NS)
    assert sorted(calls) == [2, 3]
    ref = generate_navier_stokes(tmp_path / "ref.h5", progress=False, **NS)
    with h5py.File(target) as a, h5py.File(ref) as b:
        np.testing.assert_array_equal(a["w"][()], b["w"][()])


def test_helmholtz_file_holds_the_wavespeed_and_the_solution(tmp_path):
    out = generate_helmholtz(
        tmp_path / "h.h5", n_samples=2, resolution=9, omega=50.0, seed=1, progress=False
    )
    validate(out)
    with h5py.File(out) as f:
        c, u = f["c"][()], f["u"][()]
        assert f["c"].attrs["units"] == "m/s" and f["u"].attrs["role"] == "output"
    fields, _ = reference.helmholtz_sample(1, 1, resolution=9, omega=50.0)
    np.testing.assert_array_equal(c[1], fields["c"])
    np.testing.assert_array_equal(u[1], fields["u"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: generate_helmholtz(p, refine=0), "refine"),
        (lambda p: generate_navier_stokes(p, nu=0.0), "must be > 0"),
        (lambda p: generate_navier_stokes(p, n_times=1), "n_times must be >= 2"),
        (lambda p: generate_navier_stokes(p, device="gpu0"), "not a torch device"),
    ],
)
def test_bad_arguments_write_nothing(tmp_path, call, message):
    with pytest.raises(ValueError, match=message):
        call(tmp_path / "x.h5")
    assert list(tmp_path.iterdir()) == []
