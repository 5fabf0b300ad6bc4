"""Every importer backend passes :class:`pdesurrogates.testing.ImporterContract`.

Each fixture is a tiny file of its format with X != Y (and T != X), so a transposed or
reordered axis cannot pass; the contract checks the values, the dims, detection against
the other formats' fixtures and the errors for truncated and garbage files.
"""

from __future__ import annotations

import h5py
import numpy as np
import torch

from pdesurrogates.datasets.backends import list_backends
from pdesurrogates.testing import ImporterContract

RNG = np.random.default_rng(3)
N, T, X, Y = 4, 3, 7, 5


class TestPDEBenchContract(ImporterContract):
    backend_name = "pdebench"

    def write_fixture(self, directory):
        path = directory / "2D_DarcyFlow_beta1.0_Train.hdf5"
        nu = RNG.choice([0.1, 1.0], size=(N, X, Y)).astype(np.float32)
        u = RNG.normal(size=(N, 1, X, Y)).astype(np.float32)
        with h5py.File(path, "w") as f:
            f["nu"], f["tensor"] = nu, u
            f["x-coordinate"] = ((np.arange(X) + 0.5) / X).astype(np.float32)
            f["y-coordinate"] = ((np.arange(Y) + 0.5) / Y).astype(np.float32)
            f.attrs["beta"] = 1.0
        return path, {"a": (("sample", "x", "y"), nu), "u": (("sample", "x", "y"), u[:, 0])}


class TestTheWellContract(ImporterContract):
    backend_name = "the-well"

    def write_fixture(self, directory):
        path = directory / "toy_well.hdf5"
        rho = RNG.normal(size=(N, T, X, Y)).astype(np.float32)
        vel = RNG.normal(size=(N, T, X, Y, 2)).astype(np.float32)
        text = h5py.string_dtype()
        with h5py.File(path, "w") as f:
            f.attrs.update({"dataset_name": "toy", "n_spatial_dims": 2, "n_trajectories": N})
            dims = f.create_group("dimensions")
            dims.attrs["spatial_dims"] = np.array(["x", "y"], dtype=text)
            for name, n in (("time", T), ("x", X), ("y", Y)):
                ds = dims.create_dataset(name, data=np.linspace(0, 1, n))
                ds.attrs.update({"sample_varying": False, "time_varying": name == "time"})
            for group, name, data in (("t0_fields", "rho", rho), ("t1_fields", "vel", vel)):
                g = f.create_group(group)
                g.attrs["field_names"] = np.array([name], dtype=text)
                ds = g.create_dataset(name, data=data)
                ds.attrs.update({"sample_varying": True, "time_varying": True})
                ds.attrs["dim_varying"] = np.array([True, True])
        return path, {
            "rho": (("sample", "time", "x", "y"), rho),
            "vel": (("sample", "time", "x", "y", "component"), vel),
        }


class TestFnoMatContract(ImporterContract):
    backend_name = "fno-mat"

    def write_fixture(self, directory):
        """A MATLAB v7.3 file: HDF5 behind a 512-byte header, axes reversed on disk."""
        path = directory / "ns_V1e-3_N4_T3.mat"
        a = RNG.normal(size=(N, X, Y))
        u = RNG.normal(size=(N, X, Y, T))
        with h5py.File(path, "w", userblock_size=512) as f:
            for name, v in (("a", a), ("u", u)):
                f.create_dataset(name, data=np.ascontiguousarray(np.transpose(v)))
        with open(path, "r+b") as fh:
            fh.write(b"MATLAB 7.3 MAT-file, HDF5".ljust(116) + b"\x00" * 8 + b"\x00\x02IM")
        return path, {
            "a": (("sample", "x", "y"), a),
            "u": (("sample", "time", "x", "y"), np.moveaxis(u, -1, 1)),
        }


class TestNeuralopPtContract(ImporterContract):
    backend_name = "neuralop-pt"

    def write_fixture(self, directory):
        path = directory / "darcy_train_7.pt"
        x = torch.from_numpy(RNG.normal(size=(N, X, Y)).astype(np.float32))
        y = torch.from_numpy(RNG.normal(size=(N, X, Y)).astype(np.float32))
        torch.save({"x": x, "y": y}, path)
        return path, {
            "a": (("sample", "x", "y"), x.numpy()),
            "u": (("sample", "x", "y"), y.numpy()),
        }


def test_every_backend_has_a_contract_test():
    tested = {c.backend_name for c in ImporterContract.__subclasses__()}
    assert {b.name for b in list_backends()} <= tested
