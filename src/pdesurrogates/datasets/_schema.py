"""The ``pdesurrogates-h5`` schema, version 1: constants, specs and validation.

One file holds one dataset of N samples on a shared grid::

    /                      attrs: schema, schema_version, dataset_name, n_samples,
                                  n_spatial_dims, spatial_dims, pde, source, created_by,
                                  complete
    /sample, /time, /x, /y, /z, /component   coordinates (HDF5 dimension scales)
    /fields/<name>         float32, dims a subset of (sample, time, x, y, z, component)
    /params/<name>         float64 (sample,), attrs units, dist, bounds | loc/scale
    /splits/{train,valid,test}   int64 indices into sample
    /stats/<field>/{mean,std}    float64, computed on the train split only
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pdesurrogates.errors import DatasetError, SchemaError

__all__ = [
    "COORD_DIMS",
    "DIM_ORDER",
    "DISTRIBUTIONS",
    "ROLES",
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "SPATIAL_DIMS",
    "FieldSpec",
    "ParamSpec",
    "ValidationReport",
    "open_h5",
    "validate",
]

SCHEMA_NAME = "pdesurrogates-h5"
SCHEMA_VERSION = 1
DIM_ORDER = ("sample", "time", "x", "y", "z", "component")
SPATIAL_DIMS = ("x", "y", "z")
COORD_DIMS = DIM_ORDER
ROLES = ("input", "output", "state", "coefficient")
DISTRIBUTIONS = ("uniform", "normal", "loguniform", "discrete")
REQUIRED_ROOT_ATTRS = (
    "schema",
    "schema_version",
    "dataset_name",
    "n_samples",
    "n_spatial_dims",
    "spatial_dims",
    "complete",
)
SPLIT_NAMES = ("train", "valid", "test")


@dataclass(frozen=True)
class FieldSpec:
    """Description of one field: its dims (in schema order), role, units and long name."""

    dims: tuple[str, ...]
    role: str = "output"
    units: str = ""
    long_name: str = ""

    def __post_init__(self) -> None:
        dims = tuple(self.dims)
        object.__setattr__(self, "dims", dims)
        unknown = [d for d in dims if d not in DIM_ORDER]
        if unknown:
            raise ValueError(f"FieldSpec.dims: unknown dims {unknown}; allowed: {DIM_ORDER}")
        order = [DIM_ORDER.index(d) for d in dims]
        if order != sorted(order) or len(set(dims)) != len(dims):
            raise ValueError(
                f"FieldSpec.dims {dims} must be distinct and ordered as in {DIM_ORDER}"
            )
        if self.role not in ROLES:
            raise ValueError(f"FieldSpec.role {self.role!r} must be one of {ROLES}")


@dataclass(frozen=True)
class ParamSpec:
    """A per-sample scalar parameter and the distribution it was drawn from.

    ``dist`` is one of ``uniform`` / ``loguniform`` (with ``bounds``), ``normal`` (with
    ``loc`` and ``scale``) or ``discrete``.
    """

    dist: str = "discrete"
    units: str = ""
    bounds: tuple[float, float] | None = None
    loc: float | None = None
    scale: float | None = None
    long_name: str = ""

    def __post_init__(self) -> None:
        if self.dist not in DISTRIBUTIONS:
            raise ValueError(f"ParamSpec.dist {self.dist!r} must be one of {DISTRIBUTIONS}")
        if self.dist in ("uniform", "loguniform"):
            if self.bounds is None or len(self.bounds) != 2 or self.bounds[0] >= self.bounds[1]:
                raise ValueError(
                    f"ParamSpec with dist={self.dist!r} needs bounds=(low, high), low < high"
                )
            object.__setattr__(self, "bounds", (float(self.bounds[0]), float(self.bounds[1])))
        if self.dist == "normal" and (self.loc is None or self.scale is None or self.scale <= 0):
            raise ValueError("ParamSpec with dist='normal' needs loc and scale > 0")

    def to_attrs(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {"dist": self.dist, "units": self.units}
        if self.long_name:
            attrs["long_name"] = self.long_name
        if self.bounds is not None:
            attrs["bounds"] = np.asarray(self.bounds, dtype=np.float64)
        if self.loc is not None:
            attrs["loc"] = float(self.loc)
        if self.scale is not None:
            attrs["scale"] = float(self.scale)
        return attrs

    @classmethod
    def from_attrs(cls, attrs) -> ParamSpec:
        bounds = attrs.get("bounds")
        return cls(
            dist=_text(attrs.get("dist", "discrete")),
            units=_text(attrs.get("units", "")),
            bounds=None if bounds is None else tuple(float(b) for b in bounds),
            loc=None if attrs.get("loc") is None else float(attrs["loc"]),
            scale=None if attrs.get("scale") is None else float(attrs["scale"]),
            long_name=_text(attrs.get("long_name", "")),
        )


def _text(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray) and v.shape == ():
        return _text(v.item())
    return str(v)


def _texts(v: Any) -> list[str]:
    return [_text(x) for x in np.atleast_1d(v)]


def open_h5(path: str | os.PathLike, mode: str = "r") -> h5py.File:
    """Open an HDF5 file, turning low-level failures into :class:`DatasetError`."""
    p = Path(path)
    if mode == "r" and not p.exists():
        hint = ""
        if Path(str(p) + ".partial").exists():
            hint = (
                f" (an unfinished {p.name}.partial exists: a generator was interrupted; "
                "rerun it with --resume)"
            )
        raise DatasetError(f"{p}: no such file{hint}")
    if p.is_dir():
        raise DatasetError(f"{p}: is a directory, expected an HDF5 file")
    try:
        return h5py.File(p, mode)
    except OSError as exc:
        size = p.stat().st_size if p.exists() else 0
        raise DatasetError(
            f"{p}: cannot open as HDF5 ({size} bytes; {exc}). The file is truncated, corrupt "
            "or not HDF5; regenerate it or copy it again"
        ) from exc


@dataclass
class ValidationReport:
    """What :func:`validate` found in a valid file."""

    path: str
    n_samples: int
    fields: dict[str, tuple[str, ...]]
    shapes: dict[str, tuple[int, ...]]
    params: list[str]
    splits: dict[str, int]
    checked_values: bool
    attrs: dict[str, Any] = field(default_factory=dict)


def _fail(path, what: str, todo: str) -> SchemaError:
    return SchemaError(f"{path}: {what}; {todo}")


def read_structure(f: h5py.File, path) -> dict[str, Any]:
    """Check the structure of an open file and return its metadata (no value scan)."""
    n, spatial = _check_root(f, path)
    coords = _read_coords(f, path, n, spatial)
    fields, shapes = _read_fields(f, path, coords)
    params, param_values = _read_params(f, path, n)
    splits, stats = _read_splits_and_stats(f, path, n)
    return {
        "n_samples": n,
        "spatial_dims": spatial,
        "coords": coords,
        "fields": fields,
        "shapes": shapes,
        "params": params,
        "param_values": param_values,
        "splits": splits,
        "stats": stats,
        "attrs": {k: _attr_value(v) for k, v in f.attrs.items()},
    }


def _check_root(f: h5py.File, path) -> tuple[int, list[str]]:
    attrs = f.attrs
    if "schema" not in attrs:
        raise _fail(
            path,
            f"not a {SCHEMA_NAME} file (no root attribute 'schema'; top-level objects: "
            f"{sorted(f.keys())[:10]})",
            "convert it with `pdesurrogates import ...` or write it with DatasetWriter",
        )
    if _text(attrs["schema"]) != SCHEMA_NAME:
        raise _fail(
            path,
            f"schema is {_text(attrs['schema'])!r}, not {SCHEMA_NAME!r}",
            "this file belongs to another tool; convert it with `pdesurrogates import ...`",
        )
    version = attrs.get("schema_version")
    if version is None or int(np.asarray(version)) != SCHEMA_VERSION:
        raise _fail(
            path,
            f"schema_version is {_attr_value(version)!r}; this pdesurrogates reads version "
            f"{SCHEMA_VERSION}",
            "upgrade pdesurrogates or regenerate the file",
        )
    missing = [a for a in REQUIRED_ROOT_ATTRS if a not in attrs]
    if missing:
        raise _fail(path, f"missing root attributes {missing}", "regenerate the file")
    if not bool(attrs["complete"]):
        raise _fail(
            path,
            "the file is marked incomplete (complete=False): its writer did not finish",
            "rerun the generator with --resume",
        )
    n = int(attrs["n_samples"])
    spatial = _texts(attrs["spatial_dims"])
    if int(attrs["n_spatial_dims"]) != len(spatial):
        raise _fail(
            path,
            f"n_spatial_dims={int(attrs['n_spatial_dims'])} but spatial_dims={spatial}",
            "fix the root attributes",
        )
    return n, spatial


def _read_coords(f: h5py.File, path, n: int, spatial: list[str]) -> dict[str, np.ndarray]:
    coords: dict[str, np.ndarray] = {}
    for name in DIM_ORDER:
        if name in f:
            ds = f[name]
            if not isinstance(ds, h5py.Dataset) or ds.ndim != 1:
                raise _fail(path, f"coordinate /{name} is not a 1-D dataset", "regenerate")
            coords[name] = ds[()]
    if "sample" not in coords or len(coords["sample"]) != n:
        raise _fail(
            path,
            f"coordinate /sample is missing or does not have n_samples={n} entries",
            "regenerate the file",
        )
    for d in spatial:
        if d not in coords:
            raise _fail(path, f"spatial coordinate /{d} is missing", "regenerate the file")
    return coords


def _read_fields(f: h5py.File, path, coords):
    if "fields" not in f or not len(f["fields"]):
        raise _fail(path, "no /fields group or it is empty", "the file holds no data")
    fields: dict[str, FieldSpec] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    for name, ds in f["fields"].items():
        where = f"/fields/{name}"
        if not isinstance(ds, h5py.Dataset):
            raise _fail(path, f"{where} is not a dataset", "regenerate the file")
        dims_attr = ds.attrs.get("dims")
        if dims_attr is None:
            raise _fail(path, f"{where} has no 'dims' attribute", "regenerate the file")
        dims = tuple(_texts(dims_attr))
        try:
            spec = FieldSpec(
                dims=dims,
                role=_text(ds.attrs.get("role", "output")),
                units=_text(ds.attrs.get("units", "")),
                long_name=_text(ds.attrs.get("long_name", "")),
            )
        except ValueError as exc:
            raise _fail(path, f"{where}: {exc}", "regenerate the file") from exc
        if len(dims) != ds.ndim:
            raise _fail(path, f"{where} has {ds.ndim} axes but dims {dims}", "regenerate the file")
        for d, size in zip(dims, ds.shape, strict=True):
            if d not in coords:
                raise _fail(path, f"{where} uses dim {d!r} with no /{d} coordinate", "regenerate")
            if len(coords[d]) != size:
                raise _fail(
                    path,
                    f"{where} has shape {ds.shape} with dims {dims}, but /{d} has "
                    f"{len(coords[d])} entries (mismatched shapes)",
                    "regenerate the file",
                )
        if ds.dtype.kind != "f":
            raise _fail(path, f"{where} has dtype {ds.dtype}, expected float", "regenerate")
        fields[name] = spec
        shapes[name] = tuple(ds.shape)
    return fields, shapes


def _read_params(f: h5py.File, path, n: int):
    params: dict[str, ParamSpec] = {}
    param_values: dict[str, np.ndarray] = {}
    if "params" in f:
        for name, ds in f["params"].items():
            if ds.shape != (n,):
                raise _fail(
                    path,
                    f"/params/{name} has shape {ds.shape}, expected ({n},)",
                    "regenerate the file",
                )
            try:
                params[name] = ParamSpec.from_attrs(ds.attrs)
            except ValueError as exc:
                raise _fail(path, f"/params/{name}: {exc}", "fix its attributes") from exc
            param_values[name] = ds[()].astype(np.float64)
    return params, param_values


def _read_splits_and_stats(f: h5py.File, path, n: int):
    splits: dict[str, np.ndarray] = {}
    if "splits" in f:
        for name, ds in f["splits"].items():
            idx = ds[()]
            if idx.ndim != 1 or idx.dtype.kind not in "iu":
                raise _fail(path, f"/splits/{name} is not a 1-D integer array", "regenerate")
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                raise _fail(
                    path, f"/splits/{name} holds indices outside [0, {n})", "regenerate the file"
                )
            splits[name] = idx.astype(np.int64)
    stats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if "stats" in f:
        for name, grp in f["stats"].items():
            if "mean" in grp and "std" in grp:
                stats[name] = (grp["mean"][()], grp["std"][()])
    return splits, stats


def _attr_value(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray):
        if v.dtype.kind in "OSU":
            return _texts(v)
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def scan_values(f: h5py.File, path, *, samples_per_read: int | None = None) -> None:
    """Raise :class:`SchemaError` if any field holds NaN or Inf (streamed, bounded memory)."""
    for name, ds in f["fields"].items():
        n0 = ds.shape[0] if ds.ndim else 1
        per_sample = max(1, int(np.prod(ds.shape[1:])) if ds.ndim > 1 else 1)
        step = samples_per_read or max(1, (32 * 2**20) // (4 * per_sample))
        for start in range(0, max(n0, 1), step):
            block = ds[start : start + step] if ds.ndim else ds[()]
            finite = np.isfinite(block)
            if not finite.all():
                bad = np.argwhere(~finite)[0]
                where = tuple(int(i) for i in bad)
                if ds.ndim:
                    where = (where[0] + start, *where[1:])
                kind = "NaN" if np.isnan(block[tuple(bad)]) else "Inf"
                raise SchemaError(
                    f"{path}: /fields/{name} holds {kind} at index {where}; the simulation "
                    "that produced it diverged or the file is damaged. Regenerate that "
                    "sample or drop it"
                )


def validate(path: str | os.PathLike, *, check_values: bool = True) -> ValidationReport:
    """Check that ``path`` is a complete, well-formed ``pdesurrogates-h5`` file.

    Parameters
    ----------
    path : path-like
        The HDF5 file.
    check_values : bool
        Also scan every field for NaN/Inf (streamed in blocks of about 32 MiB).

    Returns
    -------
    ValidationReport

    Raises
    ------
    DatasetError
        The file is missing, truncated or not HDF5.
    SchemaError
        The file is HDF5 but breaks the schema (foreign layout, wrong version,
        incomplete, mismatched shapes, NaN/Inf values, ...). The message names the object.
    """
    with open_h5(path) as f:
        meta = read_structure(f, path)
        if check_values:
            scan_values(f, path)
    return ValidationReport(
        path=str(path),
        n_samples=meta["n_samples"],
        fields={k: v.dims for k, v in meta["fields"].items()},
        shapes=meta["shapes"],
        params=sorted(meta["params"]),
        splits={k: len(v) for k, v in meta["splits"].items()},
        checked_values=check_values,
        attrs=meta["attrs"],
    )


def source_text(source: Any) -> str:
    """Serialise a ``source`` description (str or dict) for the root attribute."""
    if isinstance(source, str):
        return source
    return json.dumps(source, sort_keys=True, default=str)
