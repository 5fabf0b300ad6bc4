"""The Well files (and train/valid/test folders of them) as an importer source.

Implemented from The Well's documented data format. A field's shape is ``(B,)`` if
``sample_varying``, then ``(T,)`` if ``time_varying``, then one axis per spatial dim whose
``dim_varying`` entry is true, then ``D`` once per tensor order. We map:

* ``t0_fields/<f>`` to ``<f>`` with dims (sample, time, x, y[, z]) minus the non-varying ones;
* ``t1_fields/<v>`` to ``<v>`` with a trailing ``component`` dim of length D;
* ``t2_fields/<s>`` (D x D per point) to D fields ``<s>_<dim>``: row ``i`` of the tensor,
  its columns along ``component`` (our schema has one component dim);
* the i-th spatial dim to x, y, z (original names kept in the coordinate's ``long_name``);
* ``scalars`` constant in time to ``/params``, time-varying ones to fields;
* ``boundary_conditions`` copied verbatim; train/valid/test folders to ``/splits``.
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
    convert,
    h5_read,
    open_source_h5,
)
from pdesurrogates.datasets.backends._registry import unknown_layout
from pdesurrogates.errors import DatasetError, SchemaError

__all__ = ["BACKEND", "WellBackend", "WellSource", "import_the_well", "is_well_file"]

_LAYOUTS = {
    "the-well": "The Well: 't0_fields'/'t1_fields'/'t2_fields', 'dimensions', 'scalars', "
    "'boundary_conditions' (a file or a folder with train/valid/test)"
}

_SPLITS = ("train", "valid", "test")
_SUFFIXES = (".hdf5", ".h5", ".hdf")


def _texts(v) -> list[str]:
    return [x.decode() if isinstance(x, bytes) else str(x) for x in np.atleast_1d(v)]


def _flag(attrs, key: str, default: bool = False) -> bool:
    v = attrs.get(key)
    return default if v is None else bool(np.asarray(v).reshape(-1)[0])


def is_well_file(f: h5py.File) -> bool:
    return "dimensions" in f and any(f"t{k}_fields" in f for k in range(3))


def _files_of(path: Path) -> tuple[list[Path], list[str]]:
    """The data files under ``path`` and the split each belongs to ("" = none)."""
    if not path.exists():
        raise DatasetError(f"{path}: no such file or directory")
    if path.is_file():
        split = path.parent.name if path.parent.name in _SPLITS else ""
        return [path], [split]
    base = path / "data" if (path / "data").is_dir() else path
    files, splits = [], []
    if any((base / s).is_dir() for s in _SPLITS):
        for s in _SPLITS:
            found = sorted(p for p in (base / s).glob("*") if p.suffix in _SUFFIXES)
            files += found
            splits += [s] * len(found)
    else:
        files = sorted(p for p in base.glob("*") if p.suffix in _SUFFIXES)
        splits = [""] * len(files)
    if not files:
        raise DatasetError(
            f"{path}: no .hdf5/.h5 files found (looked in {base} and its train/valid/test "
            "folders); give a Well file or a dataset folder"
        )
    return files, splits


class WellSource(Source):
    """One Well file, or all files of a Well dataset folder (train/valid/test)."""

    layout = "the-well"

    def __init__(self, path: str | os.PathLike, *, limit_per_split: int | None = None) -> None:
        super().__init__(path)
        paths, splits = _files_of(self.path)
        self.files: list[h5py.File] = []
        try:
            self._init(paths, splits, limit_per_split)
        except BaseException:
            self.close()
            raise

    def _init(self, paths, splits, limit_per_split) -> None:
        self.file_paths = paths
        counts: dict[str, int] = {}
        self.spans: list[tuple[int, int, int]] = []  # (file index, global start, n used)
        self.split_of: list[str] = []
        total = 0
        for k, (p, s) in enumerate(zip(paths, splits, strict=True)):
            f = open_source_h5(p)
            self.files.append(f)
            if not is_well_file(f):
                raise unknown_layout(
                    p,
                    f"top-level objects {sorted(f.keys())[:12]} (no 'dimensions' and "
                    "t0/t1/t2_fields groups)",
                    _LAYOUTS,
                    backend="the-well",
                )
            b = int(np.asarray(f.attrs.get("n_trajectories", 0)))
            if b < 1:
                raise SchemaError(f"{p}: root attribute n_trajectories is {b}; expected >= 1")
            if limit_per_split is not None:
                b = min(b, limit_per_split - counts.get(s, 0))
            if b <= 0:
                continue
            counts[s] = counts.get(s, 0) + b
            self.spans.append((k, total, b))
            self.split_of += [s] * b
            total += b
        self.n_samples = total
        f0 = self.files[self.spans[0][0]]
        self._describe(f0, self.file_paths[self.spans[0][0]])
        for k, start, _ in self.spans[1:]:
            self._compare(self.files[k], self.file_paths[k], start)
        self.dataset_name = str(_texts(f0.attrs.get("dataset_name", self.path.stem))[0])
        self.pde = f"The Well: {self.dataset_name}"
        self.info = {"format": "the_well", "files": [str(p.name) for p in self.file_paths]}
        self.root_attrs = {
            "grid_type": str(_texts(f0.attrs.get("grid_type", "cartesian"))[0]),
            "source_spatial_dims": np.array(self.orig_dims, dtype=h5py.string_dtype()),
        }
        self._fill_params()
        if any(self.split_of):
            self.split_note = "The Well's train/valid/test folders"

    # --- structure --------------------------------------------------------------------
    def _coord(self, f, p, name: str, n_traj: int) -> np.ndarray:
        ds = f["dimensions"][name]
        values = np.asarray(h5_read(p, ds, ()), np.float64)
        if _flag(ds.attrs, "sample_varying") and values.ndim == 2:
            for i in range(1, values.shape[0]):
                check_same_grid(p, f"dimensions/{name}", values[0], values[i], str(i))
            values = values[0]
        return values.reshape(-1)

    def _describe(self, f: h5py.File, p: Path) -> None:
        dims_grp = f["dimensions"]
        self.orig_dims = _texts(dims_grp.attrs.get("spatial_dims", []))
        nd = int(np.asarray(f.attrs.get("n_spatial_dims", len(self.orig_dims))))
        if not self.orig_dims or len(self.orig_dims) != nd or nd > 3:
            raise SchemaError(
                f"{p}: dimensions.attrs['spatial_dims']={self.orig_dims} does not match "
                f"n_spatial_dims={nd} (1 to 3 spatial dims supported)"
            )
        self.nd = nd
        self.dmap = dict(zip(self.orig_dims, SPATIAL_DIMS, strict=False))
        b = int(np.asarray(f.attrs["n_trajectories"]))
        if "time" in dims_grp:
            self.coords["time"] = self._coord(f, p, "time", b)
        for od in self.orig_dims:
            if od not in dims_grp:
                raise SchemaError(f"{p}: spatial dim {od!r} has no dataset in /dimensions")
            self.coords[self.dmap[od]] = self._coord(f, p, od, b)
            self.units[self.dmap[od]] = ""
        for bc in f["boundary_conditions"].values() if "boundary_conditions" in f else []:
            if str(_texts(bc.attrs.get("bc_type", ""))[0]).upper() == "PERIODIC":
                for od in _texts(bc.attrs.get("associated_dims", [])):
                    if od in self.dmap:
                        self.periodic[self.dmap[od]] = True
        self.sources: dict[str, tuple[str, str, int | None]] = {}  # name -> (grp, ds, row)
        self.flags: dict[str, tuple[bool, bool]] = {}
        for order in range(3):
            gname = f"t{order}_fields"
            if gname not in f:
                continue
            grp = f[gname]
            names = _texts(grp.attrs.get("field_names", [])) or list(grp.keys())
            for name in names:
                if name not in grp:
                    raise SchemaError(f"{p}: /{gname} lists {name!r} but has no such dataset")
                self._add_field(f, p, gname, name, order, b)
        if not self.fields:
            raise SchemaError(f"{p}: t0/t1/t2_fields hold no fields")
        self.scalar_fields: dict[str, str] = {}
        if "scalars" in f:
            grp = f["scalars"]
            for name in _texts(grp.attrs.get("field_names", [])) or list(grp.keys()):
                if name not in grp:
                    continue
                ds = grp[name]
                if _flag(ds.attrs, "time_varying"):
                    sv = _flag(ds.attrs, "sample_varying")
                    fname = name if name not in self.fields else f"scalar_{name}"
                    self.fields[fname] = FieldSpec(
                        dims=(("sample",) if sv else ()) + ("time",),
                        role="coefficient",
                        long_name=f"time-varying scalar {name}",
                    )
                    self.sources[fname] = ("scalars", name, None)
                    self.flags[fname] = (sv, True)
                    self._check_shape(p, ds, (b,) * sv + (len(self.coords["time"]),))

    def _check_shape(self, p, ds, shape) -> None:
        if tuple(ds.shape) != tuple(shape):
            raise SchemaError(
                f"{p}: {ds.name} has shape {ds.shape}; its flags (sample_varying, "
                f"time_varying, dim_varying, tensor order) say {tuple(shape)}"
            )

    def _add_field(self, f, p, gname, name, order, b) -> None:
        ds = f[gname][name]
        sv = _flag(ds.attrs, "sample_varying", True)
        tv = _flag(ds.attrs, "time_varying", True)
        dv = ds.attrs.get("dim_varying")
        dv = [True] * self.nd if dv is None else [bool(x) for x in np.atleast_1d(dv)]
        if len(dv) != self.nd:
            raise SchemaError(f"{p}: {ds.name}.attrs['dim_varying']={dv} needs {self.nd} entries")
        if tv and "time" not in self.coords:
            raise SchemaError(f"{p}: {ds.name} is time_varying but /dimensions has no 'time'")
        spatial = [SPATIAL_DIMS[i] for i in range(self.nd) if dv[i]]
        shape = (
            (b,) * sv
            + ((len(self.coords["time"]),) if tv else ())
            + tuple(len(self.coords[d]) for d in spatial)
            + (self.nd,) * order
        )
        self._check_shape(p, ds, shape)
        dims = ("sample",) * sv + ("time",) * tv + tuple(spatial)
        if order:
            self.coords["component"] = np.arange(self.nd, dtype=np.int64)
            dims = (*dims, "component")
        rows = [None] if order < 2 else list(range(self.nd))
        for row in rows:
            out = name if row is None else f"{name}_{self.orig_dims[row]}"
            if out in self.fields:
                raise SchemaError(f"{p}: two fields map to the name {out!r}")
            self.fields[out] = FieldSpec(
                dims=dims,
                role="state",
                long_name=name if row is None else f"{name}[{self.orig_dims[row]}, :]",
            )
            self.sources[out] = (gname, name, row)
            if row is not None:
                self.aliases.setdefault(name, []).append(out)
            self.flags[out] = (sv, tv)
            attrs = {"tensor_order": order, "source_field": f"{gname}/{name}"}
            if row is not None:
                attrs["tensor_row"] = row
                for key in ("symmetric", "antisymmetric"):
                    if key in ds.attrs:
                        attrs[key] = bool(np.asarray(ds.attrs[key]).reshape(-1)[0])
            self.field_attrs[out] = attrs

    def _compare(self, f: h5py.File, p: Path, start: int) -> None:
        """Every further file must have the same fields and the same grid."""
        if not is_well_file(f):
            raise unknown_layout(
                p, f"top-level objects {sorted(f.keys())[:12]}", _LAYOUTS, backend="the-well"
            )
        b = int(np.asarray(f.attrs["n_trajectories"]))
        for name in ["time", *self.orig_dims]:
            if name == "time" and "time" not in self.coords:
                continue
            ours = "time" if name == "time" else self.dmap[name]
            if name not in f["dimensions"]:
                raise SchemaError(f"{p}: /dimensions lacks {name!r}")
            check_same_grid(
                p, f"dimensions/{name}", self.coords[ours], self._coord(f, p, name, b), str(start)
            )
        for out, (gname, name, _) in self.sources.items():
            if gname not in f or name not in f[gname]:
                raise SchemaError(
                    f"{p}: lacks /{gname}/{name}, which the first file has; all files of a "
                    "dataset must hold the same fields"
                )
            sv, _ = self.flags[out]
            if not sv:
                a = h5_read(p, f[gname][name], ())
                ref = h5_read(self.file_paths[0], self.files[self.spans[0][0]][gname][name], ())
                if not np.array_equal(a, ref):
                    raise SchemaError(
                        f"{p}: the sample-invariant field /{gname}/{name} differs from the "
                        f"first file's (first offending sample: {start})"
                    )

    def _fill_params(self) -> None:
        names: list[str] = []
        for k, _, _ in self.spans:
            f = self.files[k]
            if "scalars" in f:
                for name in f["scalars"]:
                    if not _flag(f["scalars"][name].attrs, "time_varying") and name not in names:
                        names.append(name)
        for name in names:
            values = np.empty(self.n_samples)
            for k, start, n in self.spans:
                f = self.files[k]
                if "scalars" not in f or name not in f["scalars"]:
                    raise SchemaError(f"{self.file_paths[k]}: /scalars lacks {name!r}")
                v = np.asarray(h5_read(self.file_paths[k], f["scalars"][name], ()), np.float64)
                values[start : start + n] = v.reshape(-1)[:n] if v.size > 1 else v.reshape(())
            self.params[name] = ParamSpec(dist="discrete", long_name=f"Well scalar {name}")
            self.param_values[name] = values

    # --- data -------------------------------------------------------------------------
    def _get(self, k: int, name: str, sel) -> np.ndarray:
        gname, src, row = self.sources[name]
        ds = self.files[k][gname][src]
        arr = h5_read(self.file_paths[k], ds, sel)
        return arr if row is None else arr[..., row, :]

    def read(self, start, stop, names):
        out: dict[str, list[np.ndarray]] = {n: [] for n in names}
        for k, s0, n in self.spans:
            lo, hi = max(start, s0), min(stop, s0 + n)
            if lo >= hi:
                continue
            for name in names:
                out[name].append(self._get(k, name, np.s_[lo - s0 : hi - s0]))
        return {n: v[0] if len(v) == 1 else np.concatenate(v) for n, v in out.items()}

    def static(self, name: str) -> np.ndarray:
        return self._get(self.spans[0][0], name, ())

    def splits(self, n: int):
        if not any(self.split_of):
            return None
        labels = np.array(self.split_of[:n])
        return {s: np.flatnonzero(labels == s).astype(np.int64) for s in _SPLITS if s in labels}

    def write_extras(self, f: h5py.File, n: int) -> None:
        src = self.files[self.spans[0][0]]
        if "boundary_conditions" in src:
            src.copy(src["boundary_conditions"], f, "boundary_conditions")
        for od, d in self.dmap.items():
            f[d].attrs["long_name"] = od

    def close(self) -> None:
        for f in self.files:
            try:
                f.close()
            except Exception:  # pragma: no cover
                pass
        self.files = []


class WellBackend(ImporterBackend):
    """Convert a Well file or dataset folder (train/valid/test become the splits).

    t0/t1/t2 fields keep their dims, tensor components go on a component dim; constant
    scalars become params; boundary conditions are copied.
    """

    name = "the-well"
    layouts = _LAYOUTS
    source_help = "A Well .hdf5 file, or a dataset folder (train/valid/test)."
    limit_help = "At most N samples per split."

    def guess_can_open(self, path: str | os.PathLike) -> bool:
        p = Path(path)
        try:
            first = _files_of(p)[0][0]
            if first.suffix == ".mat" or not h5py.is_hdf5(first):
                return False
            with h5py.File(first, "r") as f:
                return "schema" not in f.attrs and is_well_file(f)
        except (OSError, DatasetError, KeyError, ValueError):
            return False

    def open_source(self, path, layout=None, *, reopen=False) -> Source:
        return WellSource(path)

    def import_file(
        self,
        src,
        output,
        *,
        fields=None,
        limit=None,
        overwrite=False,
        compression=None,
        progress=True,
    ) -> Path:
        """As for every backend, but ``limit`` caps the samples taken from each split."""
        if limit is not None and (not isinstance(limit, int | np.integer) or limit < 1):
            raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
        with WellSource(src, limit_per_split=limit) as source:
            return convert(
                source,
                output,
                fields=fields,
                overwrite=overwrite,
                compression=compression,
                progress=progress,
            )


BACKEND = WellBackend()


def import_the_well(
    src: str | os.PathLike,
    output: str | os.PathLike,
    *,
    fields: Sequence[str] | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    compression: str | None = None,
    progress: bool = True,
) -> Path:
    """Convert a Well file, or a Well dataset folder, into a ``pdesurrogates-h5`` file.

    ``src`` is one ``.hdf5`` file, or a folder holding ``train/``, ``valid/``, ``test/``
    (directly or under ``data/``): every trajectory of every file becomes a sample and
    the folders become ``/splits``. Scalar fields keep their dims, vector fields get a
    ``component`` dim, rank-2 fields ``s`` are stored as one field per row ``s_<dim>``
    (columns along ``component``). Spatial dims map in order to x, y, z. Constant
    ``scalars`` become parameters, time-varying ones fields; ``boundary_conditions``
    are copied. ``limit`` caps the samples taken from each split.

    Parameters are as for :func:`import_pdebench`.
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
