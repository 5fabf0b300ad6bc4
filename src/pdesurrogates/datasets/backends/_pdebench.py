"""PDEBench files (all five layouts) as importer sources.

Implemented from the published file layouts (dataset names, shapes, attributes): the
single-array ``tensor`` files, 2D Darcy, the compressible-flow files, the files with one
group per sample and the 2D incompressible Navier-Stokes files. The split conventions are
PDEBench's: the first 10 % of samples are the test set for the single-file layouts, the
last 10 % of the sorted group keys for the per-sample-group layout.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from pdesurrogates.datasets._schema import SPATIAL_DIMS, FieldSpec, ParamSpec
from pdesurrogates.datasets.backends._base import (
    ImporterBackend,
    Source,
    check_same_grid,
    check_storage,
    h5_read,
    numeric_attrs,
    open_source_h5,
)
from pdesurrogates.datasets.backends._registry import unknown_layout
from pdesurrogates.errors import SchemaError

__all__ = ["BACKEND", "PDEBenchBackend", "detect_pdebench", "import_pdebench", "open_pdebench"]

#: The PDEBench layouts, with a one-line description each.
PDEBENCH_LAYOUTS: dict[str, str] = {
    "pdebench-tensor": "PDEBench single-array file: 'tensor' (N, T, X[, Y, Z]) + "
    "'x-coordinate', 't-coordinate'",
    "pdebench-darcy": "PDEBench 2D Darcy: 'nu' (N, X, Y), 'tensor' (N, 1, X, Y), attr 'beta'",
    "pdebench-cfd": "PDEBench compressible flow: 'density', 'pressure', 'Vx'[, 'Vy', 'Vz']",
    "pdebench-groups": "PDEBench one group per sample: '0000/data' (T, X[, Y], C), "
    "'0000/grid/{x,y,t}'",
    "pdebench-ns": "PDEBench 2D incompressible NS: 'velocity', 'particles', 'force', 't'",
}
_COORD_KEYS = {"x": "x-coordinate", "y": "y-coordinate", "z": "z-coordinate"}
_NOT_PARAMS = ("latestIndex",)


def _describe(f: h5py.File) -> str:
    items = []
    for k in sorted(f.keys())[:12]:
        obj = f[k]
        items.append(f"{k}{obj.shape}" if isinstance(obj, h5py.Dataset) else f"{k}/")
    more = "" if len(f) <= 12 else f" (+{len(f) - 12} more)"
    attrs = sorted(f.attrs.keys())[:8]
    return f"top-level objects [{', '.join(items)}]{more}, attributes {attrs}"


def detect_pdebench(f: h5py.File) -> str | None:
    """The PDEBench layout of an open file, or None."""
    keys = set(f.keys())
    if "tensor" in keys and "nu" in keys:
        return "pdebench-darcy"
    if "tensor" in keys:
        return "pdebench-tensor"
    if "density" in keys and "Vx" in keys:
        return "pdebench-cfd"
    if {"velocity", "particles"} <= keys:
        return "pdebench-ns"
    if keys and all(k.isdigit() for k in keys):
        first = f[min(keys)]
        if isinstance(first, h5py.Group) and "data" in first:
            return "pdebench-groups"
    return None


def _coordinate(path, f: h5py.File, key: str, n: int, *, allow_extra: bool = False):
    if key not in f:
        return None
    values = np.asarray(h5_read(path, f[key], ()), dtype=np.float64).reshape(-1)
    if len(values) == n or (allow_extra and len(values) == n + 1):
        return values[:n]
    raise SchemaError(
        f"{path}: '{key}' has {len(values)} entries but the data have {n} along that axis"
        + (" (or n + 1 for the time axis)" if allow_extra else "")
        + "; the file does not follow the PDEBench layout"
    )


def _uniform(n: int) -> np.ndarray:
    return (np.arange(n, dtype=np.float64) + 0.5) / n


class _PDEBenchFile(Source):
    """Common part: the open file, root-attribute parameters, PDEBench's test-first split."""

    def __init__(self, path, f: h5py.File) -> None:
        super().__init__(path)
        self.f = f
        self.attrs_params = numeric_attrs(f.attrs, skip=_NOT_PARAMS)
        self.info = {"format": "pdebench"}
        texts = {k: v for k, v in f.attrs.items() if isinstance(v, str | bytes)}
        if texts:
            self.info["attrs"] = {
                k: v.decode() if isinstance(v, bytes) else v for k, v in texts.items()
            }

    def _set_params(self) -> None:
        for name, value in self.attrs_params.items():
            self.params[name] = ParamSpec(dist="discrete", long_name=f"file attribute {name}")
            self.param_values[name] = np.full(self.n_samples, value)

    def splits(self, n: int):
        n_test = int(0.1 * n)
        idx = np.arange(n, dtype=np.int64)
        return {"train": idx[n_test:], "test": idx[:n_test]}

    def close(self) -> None:
        if self.f:
            self.f.close()

    def _dataset(self, key: str) -> h5py.Dataset:
        ds = self.f[key]
        check_storage(self.path, ds)
        return ds


class TensorFile(_PDEBenchFile):
    """``tensor`` (N, T, X[, Y, Z]) -> field ``u`` (sample, time, x[, y, z])."""

    layout = "pdebench-tensor"

    def __init__(self, path, f: h5py.File) -> None:
        super().__init__(path, f)
        self.split_note = "PDEBench single-file convention: first 10% of samples are test"
        ds = self._dataset("tensor")
        if ds.ndim < 3 or ds.ndim > 5:
            raise SchemaError(f"{path}: 'tensor' has shape {ds.shape}; expected (N, T, X[, Y, Z])")
        self.n_samples, nt, *spatial = ds.shape
        dims = SPATIAL_DIMS[: len(spatial)]
        t = _coordinate(path, f, "t-coordinate", nt, allow_extra=True)
        self.coords["time"] = t if t is not None else np.arange(nt, dtype=np.float64)
        for d, n in zip(dims, spatial, strict=True):
            c = _coordinate(path, f, _COORD_KEYS[d], n)
            self.coords[d] = c if c is not None else _uniform(n)
        self.fields["u"] = FieldSpec(
            dims=("sample", "time", *dims), role="state", long_name="solution u (PDEBench tensor)"
        )
        self.aliases = {"tensor": ["u"]}
        self._set_params()
        self.pde = "PDEBench " + self.path.stem

    def read(self, start, stop, names):
        return {"u": h5_read(self.path, self.f["tensor"], np.s_[start:stop])} if names else {}


class DarcyFile(_PDEBenchFile):
    """``nu`` (N, X, Y) -> ``a`` (input); ``tensor[:, 0]`` (N, X, Y) -> ``u`` (output)."""

    layout = "pdebench-darcy"

    def __init__(self, path, f: h5py.File) -> None:
        super().__init__(path, f)
        self.split_note = "PDEBench single-file convention: first 10% of samples are test"
        nu, u = self._dataset("nu"), self._dataset("tensor")
        if nu.ndim != 3 or u.ndim != 4 or u.shape[1] != 1 or u.shape[2:] != nu.shape[1:]:
            raise SchemaError(
                f"{path}: Darcy layout expects 'nu' (N, X, Y) and 'tensor' (N, 1, X, Y); got "
                f"nu{nu.shape} and tensor{u.shape}"
            )
        if u.shape[0] != nu.shape[0]:
            raise SchemaError(f"{path}: 'nu' holds {nu.shape[0]} samples but 'tensor' {u.shape[0]}")
        self.n_samples, nx, ny = nu.shape
        for d, n in (("x", nx), ("y", ny)):
            c = _coordinate(path, f, _COORD_KEYS[d], n)
            self.coords[d] = c if c is not None else _uniform(n)
        self.fields["a"] = FieldSpec(
            dims=("sample", "x", "y"), role="input", long_name="coefficient a(x) (PDEBench 'nu')"
        )
        self.fields["u"] = FieldSpec(
            dims=("sample", "x", "y"), role="output", long_name="solution u (PDEBench 'tensor')"
        )
        self.aliases = {"nu": ["a"], "tensor": ["u"]}
        self._set_params()
        self.pde = "-div(a grad u) = beta on (0,1)^2, u = 0 on the boundary (PDEBench Darcy)"

    def read(self, start, stop, names):
        out = {}
        if "a" in names:
            out["a"] = h5_read(self.path, self.f["nu"], np.s_[start:stop])
        if "u" in names:
            out["u"] = h5_read(self.path, self.f["tensor"], np.s_[start:stop, 0])
        return out


class CFDFile(_PDEBenchFile):
    """``density``, ``pressure`` -> scalar fields; ``Vx``/``Vy``/``Vz`` -> ``velocity``."""

    layout = "pdebench-cfd"

    def __init__(self, path, f: h5py.File) -> None:
        super().__init__(path, f)
        self.split_note = "PDEBench single-file convention: first 10% of samples are test"
        ref = self._dataset("density")
        if ref.ndim < 3:
            raise SchemaError(f"{path}: 'density' has shape {ref.shape}; expected (N, T, X...)")
        self.n_samples, nt, *spatial = ref.shape
        dims = SPATIAL_DIMS[: len(spatial)]
        self.vkeys = [k for k in ("Vx", "Vy", "Vz")[: len(spatial)]]
        missing = [k for k in ("pressure", *self.vkeys) if k not in f]
        if missing:
            raise SchemaError(
                f"{path}: compressible-flow file with {len(spatial)} spatial dims lacks "
                f"{missing}; found {sorted(f.keys())}"
            )
        for key in ("pressure", *self.vkeys):
            if self._dataset(key).shape != ref.shape:
                raise SchemaError(
                    f"{path}: '{key}' has shape {f[key].shape}, 'density' {ref.shape}"
                )
        t = _coordinate(path, f, "t-coordinate", nt, allow_extra=True)
        self.coords["time"] = t if t is not None else np.arange(nt, dtype=np.float64)
        for d, n in zip(dims, spatial, strict=True):
            c = _coordinate(path, f, _COORD_KEYS[d], n)
            self.coords[d] = c if c is not None else _uniform(n)
        base = ("sample", "time", *dims)
        self.fields["density"] = FieldSpec(dims=base, role="state", long_name="density")
        self.fields["pressure"] = FieldSpec(dims=base, role="state", long_name="pressure")
        if len(self.vkeys) == 1:
            self.fields["velocity"] = FieldSpec(dims=base, role="state", long_name="velocity Vx")
        else:
            self.coords["component"] = np.arange(len(self.vkeys), dtype=np.int64)
            self.fields["velocity"] = FieldSpec(
                dims=(*base, "component"),
                role="state",
                long_name="velocity (" + ", ".join(self.vkeys) + ")",
            )
        for k in self.fields:
            self.field_attrs[k] = {"tensor_order": 1 if k == "velocity" else 0}
        self.aliases = {k: ["velocity"] for k in self.vkeys}
        self._set_params()
        self.pde = "compressible Navier-Stokes (PDEBench CFD)"

    def read(self, start, stop, names):
        sel = np.s_[start:stop]
        out = {k: h5_read(self.path, self.f[k], sel) for k in ("density", "pressure") if k in names}
        if "velocity" in names:
            parts = [h5_read(self.path, self.f[k], sel) for k in self.vkeys]
            out["velocity"] = parts[0] if len(parts) == 1 else np.stack(parts, axis=-1)
        return out


class GroupsFile(Source):
    """One group per sample: ``/{key}/data`` (T, X[, Y], C) and ``/{key}/grid/{x,y,t}``."""

    layout = "pdebench-groups"

    def __init__(self, path, f: h5py.File, *, verify: bool = True) -> None:
        super().__init__(path)
        self.f = f
        self.keys = sorted(k for k in f.keys() if k.isdigit())
        self.split_note = "PDEBench per-sample-group convention: last 10% of sorted keys are test"
        self.info = {"format": "pdebench"}
        first = f[self.keys[0]]
        data = first["data"]
        if data.ndim < 3 or data.ndim > 5:
            raise SchemaError(
                f"{path}: /{self.keys[0]}/data has shape {data.shape}; expected (T, X[, Y], C)"
            )
        self.shape = data.shape
        nt, *spatial, nc = data.shape
        self.dims = SPATIAL_DIMS[: len(spatial)]
        grid = first["grid"] if "grid" in first else {}
        self.grid_keys = {d: d for d in self.dims if d in grid}
        for d, n in zip(self.dims, spatial, strict=True):
            if d in grid:
                self.coords[d] = self._grid(first, d, n)
            else:
                self.coords[d] = _uniform(n)
        self.coords = {"time": None, **self.coords}
        if "t" in grid:
            self.coords["time"] = self._grid(first, "t", nt, allow_extra=True)
            self.grid_keys["time"] = "t"
        else:
            self.coords["time"] = np.arange(nt, dtype=np.float64)
        self.n_samples = len(self.keys)
        for i, key in enumerate(self.keys[1:] if verify else [], start=1):
            g = f[key]
            if "data" not in g or g["data"].shape != self.shape:
                got = g["data"].shape if "data" in g else "no 'data'"
                raise SchemaError(
                    f"{path}: sample {i} (group '{key}') has data {got}, the first sample "
                    f"{self.shape}; all samples must share one grid"
                )
            for d, gk in self.grid_keys.items():
                if "grid" not in g or gk not in g["grid"]:
                    raise SchemaError(f"{path}: sample {i} (group '{key}') lacks grid/{gk}")
                values = np.asarray(h5_read(path, g["grid"][gk], ()), np.float64)[
                    : len(self.coords[d])
                ]
                check_same_grid(path, f"grid/{gk}", self.coords[d], values, f"{i} ('{key}')")
        stem = self.path.stem.lower()
        if nc == 1:
            self.channels = ["h"] if "rdb" in stem else ["u"]
        elif nc == 2:
            self.channels = ["u", "v"]
        else:
            self.channels = [f"c{j}" for j in range(nc)]
        for name in self.channels:
            self.fields[name] = FieldSpec(
                dims=("sample", "time", *self.dims), role="state", long_name=f"channel {name}"
            )
        self.sample_ids = np.array([int(k) for k in self.keys], dtype=np.int64)
        self.pde = "PDEBench " + self.path.stem

    def _grid(self, g, key, n, allow_extra=False):
        values = np.asarray(h5_read(self.path, g["grid"][key], ()), np.float64).reshape(-1)
        if len(values) == n or (allow_extra and len(values) == n + 1):
            return values[:n]
        raise SchemaError(
            f"{self.path}: /{g.name.strip('/')}/grid/{key} has {len(values)} entries but data "
            f"have {n} along that axis"
        )

    def read(self, start, stop, names):
        cols = [(j, c) for j, c in enumerate(self.channels) if c in names]
        out = {c: np.empty((stop - start, *self.shape[:-1]), np.float32) for _, c in cols}
        for i in range(start, stop):
            data = h5_read(self.path, self.f[self.keys[i]]["data"], ())
            for j, c in cols:
                out[c][i - start] = data[..., j]
        return out

    def splits(self, n: int):
        n_train = int(0.9 * n)
        idx = np.arange(n, dtype=np.int64)
        return {"train": idx[:n_train], "test": idx[n_train:]}

    def write_extras(self, f: h5py.File, n: int) -> None:
        configs = []
        for key in self.keys[:n]:
            c = self.f[key].attrs.get("config")
            configs.append("" if c is None else c.decode() if isinstance(c, bytes) else str(c))
        if any(configs):
            g = f.require_group("import")
            g.create_dataset("config", data=np.array(configs, dtype=h5py.string_dtype()))
            g.attrs["description"] = "per-sample 'config' attribute of each source group"

    def close(self) -> None:
        self.f.close()


class NSFile(_PDEBenchFile):
    """``velocity`` (B, T, X, Y, 2), ``particles`` (B, T, X, Y, 1), ``force`` (B, X, Y, 2)."""

    layout = "pdebench-ns"

    def __init__(self, path, f: h5py.File) -> None:
        super().__init__(path, f)
        self.split_note = "no upstream convention: contiguous 80/10/10 blocks"
        vel = self._dataset("velocity")
        if vel.ndim != 5:
            raise SchemaError(f"{path}: 'velocity' has shape {vel.shape}; expected (B, T, X, Y, 2)")
        self.n_samples, nt, nx, ny, nv = vel.shape
        self.coords["time"] = np.arange(nt, dtype=np.float64)
        if "t" in f:
            t = np.asarray(h5_read(path, f["t"], ()), np.float64)
            t = t.reshape(self.n_samples, -1) if t.ndim == 2 else np.broadcast_to(t, (1, nt))
            if t.shape[1] != nt:
                raise SchemaError(f"{path}: 't' has shape {f['t'].shape}, velocity {vel.shape}")
            for i in range(1, t.shape[0]):
                check_same_grid(path, "time 't'", t[0], t[i], str(i))
            self.coords["time"] = t[0].copy()
        self.coords["x"], self.coords["y"] = _uniform(nx), _uniform(ny)
        self.coords["component"] = np.arange(nv, dtype=np.int64)
        self.fields["velocity"] = FieldSpec(
            dims=("sample", "time", "x", "y", "component"), role="state", long_name="velocity"
        )
        self.field_attrs["velocity"] = {"tensor_order": 1}
        if "particles" in f:
            p = self._dataset("particles")
            if p.shape[:4] != vel.shape[:4] or p.ndim != 5 or p.shape[4] != 1:
                raise SchemaError(f"{path}: 'particles' has shape {p.shape}; expected (B,T,X,Y,1)")
            self.fields["particles"] = FieldSpec(
                dims=("sample", "time", "x", "y"), role="state", long_name="particle density"
            )
        if "force" in f:
            fo = self._dataset("force")
            if fo.shape != (self.n_samples, nx, ny, nv):
                raise SchemaError(f"{path}: 'force' has shape {fo.shape}; expected (B,X,Y,2)")
            self.fields["force"] = FieldSpec(
                dims=("sample", "x", "y", "component"), role="input", long_name="forcing"
            )
            self.field_attrs["force"] = {"tensor_order": 1}
        self.info["grid"] = "not stored in the file: unit-square cell centres assumed"
        self._set_params()
        self.pde = "2D incompressible Navier-Stokes (PDEBench NS_Incom)"

    def splits(self, n: int):
        return None

    def read(self, start, stop, names):
        sel = np.s_[start:stop]
        out = {}
        if "velocity" in names:
            out["velocity"] = h5_read(self.path, self.f["velocity"], sel)
        if "particles" in names:
            out["particles"] = h5_read(self.path, self.f["particles"], sel)[..., 0]
        if "force" in names:
            out["force"] = h5_read(self.path, self.f["force"], sel)
        return out


_CLASSES = {
    "pdebench-tensor": TensorFile,
    "pdebench-darcy": DarcyFile,
    "pdebench-cfd": CFDFile,
    "pdebench-groups": GroupsFile,
    "pdebench-ns": NSFile,
}


def open_pdebench(
    path: str | os.PathLike, layout: str | None = None, *, verify: bool = True
) -> Source:
    """Open a PDEBench file as a :class:`Source` (its layout is detected).

    ``verify=False`` skips the per-sample grid comparison of per-sample-group files (used
    when a file already checked is reopened in a worker process).
    """
    path = Path(path)
    f = open_source_h5(path)
    try:
        found = detect_pdebench(f)
        if found is None or (layout is not None and found != layout):
            expected = PDEBENCH_LAYOUTS if layout is None else {layout: PDEBENCH_LAYOUTS[layout]}
            raise unknown_layout(path, _describe(f), expected, backend="pdebench")
        if found == "pdebench-groups":
            return GroupsFile(path, f, verify=verify)
        return _CLASSES[found](path, f)
    except BaseException:
        f.close()
        raise


class PDEBenchBackend(ImporterBackend):
    """Convert a PDEBench file (single-array, Darcy, CFD, per-sample groups, NS).

    The layout is detected. Numeric file attributes (beta, Nu, eta, ...) become params.
    Test split: PDEBench's first 10% of samples (the last 10% of the group keys for
    per-sample-group files).
    """

    name = "pdebench"
    layouts = PDEBENCH_LAYOUTS
    source_help = "A PDEBench .hdf5/.h5 file."

    def layout_of(self, path: str | os.PathLike) -> str | None:
        p = Path(path)
        try:
            if not p.is_file() or p.suffix in (".mat", ".pt") or not h5py.is_hdf5(p):
                return None
            with h5py.File(p, "r") as f:
                return None if "schema" in f.attrs else detect_pdebench(f)
        except (OSError, KeyError, ValueError):
            return None

    def guess_can_open(self, path: str | os.PathLike) -> bool:
        return self.layout_of(path) is not None

    def open_source(self, path, layout=None, *, reopen=False) -> Source:
        return open_pdebench(path, layout, verify=not reopen)


BACKEND = PDEBenchBackend()


def import_pdebench(
    src: str | os.PathLike,
    output: str | os.PathLike,
    *,
    fields: Sequence[str] | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    compression: str | None = None,
    progress: bool = True,
) -> Path:
    """Convert a PDEBench HDF5 file into a ``pdesurrogates-h5`` file.

    The layout is detected: single-array ``tensor`` files (Advection, Burgers, 1D
    reaction-diffusion; field ``u`` (sample, time, x...), ``t-coordinate`` cut to the
    ``T`` steps of the data), 2D Darcy (``nu`` -> ``a``, ``tensor[:, 0]`` -> ``u``),
    compressible flow (``density``, ``pressure``, ``velocity`` with a component dim),
    one group per sample (``data`` channels -> fields ``u``/``v``, or ``h`` for the
    shallow-water file) and 2D incompressible NS (``velocity``, ``particles``, ``force``).
    Numeric file attributes (``beta``, ``Nu``, ``rho``, ``eta``, ``zeta``, ``M``) become
    per-sample parameters. Splits follow PDEBench: the first 10 % of samples are the
    test set in single-file layouts, the last 10 % of the sorted group keys in the
    per-sample-group layout.

    Parameters
    ----------
    src : path-like
        The PDEBench ``.hdf5`` / ``.h5`` file.
    output : path-like
        The new file.
    fields : sequence of str, optional
        Import only these fields (names as in our file, e.g. ``["a", "u"]``).
    limit : int, optional
        Import only the first ``limit`` samples.
    overwrite : bool
        Replace an existing ``output``.
    compression : {None, "lzf", "gzip"}
        Optional filter for the output.
    progress : bool
        Show a progress bar.

    Returns
    -------
    pathlib.Path
        The complete output file.

    Examples
    --------
    >>> import h5py, numpy as np, tempfile, os
    >>> from pdesurrogates.datasets import import_pdebench, open_dataset
    >>> d = tempfile.mkdtemp()
    >>> with h5py.File(os.path.join(d, "1D_Advection_Sols_beta0.1.hdf5"), "w") as f:
    ...     f["tensor"] = np.ones((10, 5, 8), np.float32)
    ...     f["x-coordinate"] = ((np.arange(8) + 0.5) / 8).astype("f4")
    ...     f["t-coordinate"] = (np.arange(6) * 0.1).astype("f4")  # T + 1 entries
    ...     f.attrs["beta"] = 0.1
    >>> out = import_pdebench(os.path.join(d, "1D_Advection_Sols_beta0.1.hdf5"),
    ...                       os.path.join(d, "adv.h5"), progress=False)
    >>> ds = open_dataset(out)
    >>> len(ds), tuple(ds[0]["u"].shape), len(ds.splits["test"])
    (10, (1, 5, 8), 1)
    """
    return BACKEND.import_file(
        src,
        output,
        fields=fields,
        limit=limit,
        overwrite=overwrite,
        compression=compression,
        progress=progress,
    )
