"""The importer registry, import_dataset, and the library side of generate darcy / info."""

from __future__ import annotations

from typing import ClassVar

import h5py
import numpy as np
import pytest

from pdesurrogates.datasets import (
    describe,
    file_metadata,
    generate_darcy,
    guess_backend,
    import_dataset,
    open_dataset,
)
from pdesurrogates.datasets.backends import (
    ImporterBackend,
    _registry,
    get_backend,
    list_backends,
    register_backend,
)
from pdesurrogates.errors import SchemaError


def _tensor_file(path, n=5):
    u = np.arange(n * 3 * 4, dtype=np.float32).reshape(n, 3, 4)
    with h5py.File(path, "w") as f:
        f["tensor"] = u
        f["x-coordinate"] = np.linspace(0, 1, 4, dtype=np.float32)
    return u


def test_import_dataset_picks_the_backend_by_asking_each(tmp_path):
    u = _tensor_file(tmp_path / "1D_Burgers.hdf5")
    assert guess_backend(tmp_path / "1D_Burgers.hdf5").name == "pdebench"
    out = import_dataset(tmp_path / "1D_Burgers.hdf5", tmp_path / "o.h5", progress=False)
    ds = open_dataset(out)
    np.testing.assert_array_equal(np.stack([ds[i]["u"].numpy() for i in range(5)]), u[:, None])
    assert guess_backend(out) is None  # our own files belong to no backend


def test_import_dataset_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.h5"):
        import_dataset(tmp_path / "nope.h5", tmp_path / "o.h5")
    text = tmp_path / "a.txt"
    text.write_text("hello")
    with pytest.raises(SchemaError, match=r"a\.txt: unknown layout.*pdebench-tensor"):
        import_dataset(text, tmp_path / "o.h5")
    with pytest.raises(ValueError, match=r"unknown importer backend 'csv'; known: \['fno-mat'"):
        import_dataset(text, tmp_path / "o.h5", backend="csv")


def test_a_registered_backend_is_used_everywhere(tmp_path, monkeypatch):
    """One new backend class is all an importer needs."""
    from pdesurrogates.datasets.backends import Source, fill_input_output

    class NpzSource(Source):
        layout = "npz"

        def __init__(self, path):
            super().__init__(path)
            self.data = dict(np.load(path))
            fill_input_output(
                self, self.data["a"].shape, self.data["u"].shape, time_last=False, where="a/u"
            )

        def read(self, start, stop, names):
            return {k: self.data[k][start:stop].astype(np.float32) for k in names}

    class NpzBackend(ImporterBackend):
        """Convert an .npz file with arrays a and u."""

        name = "npz"
        layouts: ClassVar[dict[str, str]] = {"npz": "numpy .npz with 'a' and 'u'"}

        def guess_can_open(self, path):
            return str(path).endswith(".npz")

        def open_source(self, path, layout=None, *, reopen=False):
            return NpzSource(path)

    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))
    register_backend(NpzBackend)
    a, u = np.ones((3, 4)), np.arange(12.0).reshape(3, 4)
    np.savez(tmp_path / "d.npz", a=a, u=u)
    assert get_backend("npz").name == "npz" and "npz" in [b.name for b in list_backends()]
    out = import_dataset(tmp_path / "d.npz", tmp_path / "d.h5", progress=False)
    assert file_metadata(out)["shapes"] == {"a": (3, 4), "u": (3, 4)}
    in_place = open_dataset(tmp_path / "d.npz")
    np.testing.assert_array_equal(in_place[2]["u"].numpy(), u[2:3])  # (1, X): channel-first


def test_generate_darcy_and_describe(tmp_path):
    out = generate_darcy(tmp_path / "d.h5", n_samples=3, resolution=8, seed=4, progress=False)
    ds = open_dataset(out)
    a = ds[0]["a"].numpy()
    assert a.shape == (1, 8, 8)  # channel-first and set(np.unique(a)) <= {3.0, 12.0}
    assert float(ds[0]["u"].min()) >= 0.0  # -div(a grad u) = 1 > 0 with u = 0 on the walls
    text = describe(out, check=True)
    assert "float32 a(sample, x, y)  shape (3, 8, 8)  role=input" in text
    assert '"seed": 4' in text and "NaN/Inf: none (every value was scanned)" in text
    with pytest.raises(ValueError, match="variant must be one of"):
        generate_darcy(tmp_path / "e.h5", n_samples=1, resolution=8, variant="bumpy")


def test_describe_a_foreign_file_in_place(tmp_path):
    _tensor_file(tmp_path / "1D_Advection_Sols_beta0.4.hdf5")
    text = describe(tmp_path / "1D_Advection_Sols_beta0.4.hdf5")
    assert "pdebench-tensor layout read in place" in text
    assert "float32 u(sample, time, x)  shape (5, 3, 4)" in text
