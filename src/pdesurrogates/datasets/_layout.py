"""The version-2 layout of a ``pdesurrogates-h5`` file: how each object is created.

Shared by :class:`~pdesurrogates.datasets.DatasetWriter` and
:func:`~pdesurrogates.datasets.migrate`, so a migrated file and a new one are laid out by
the same code. Fields and parameters are netCDF-4 variables at the root with attached
dimension scales, which is what ``xr.open_dataset(path, engine="h5netcdf")`` and
``netCDF4.Dataset`` need to see data variables with their coordinates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import h5py
import numpy as np

from pdesurrogates._progress import logger
from pdesurrogates.datasets._schema import (
    DIM_ORDER,
    FIELD_DTYPES,
    RESERVED_NAMES,
    SPATIAL_DIMS,
    FieldSpec,
    ParamSpec,
)
from pdesurrogates.errors import DatasetError

__all__ = [
    "check_finite_samples",
    "check_names",
    "create_coords",
    "create_field",
    "create_param",
    "field_dtype",
    "parse_coords",
    "retype_field",
    "samples_ok",
    "storage_dtype",
]

_AXIS = {"time": "T", "x": "X", "y": "Y", "z": "Z"}
_COORD_NAMES = {
    "sample": "sample index",
    "time": "time",
    "x": "x",
    "y": "y",
    "z": "z",
    "component": "vector component",
}


def check_names(
    fields: Mapping[str, Any], params: Mapping[str, Any], coords: Mapping[str, Any]
) -> None:
    """Refuse field and parameter names that cannot be root variables of one file.

    A name may be a dim name the file does not use (a parameter ``z`` of a 2-D dataset).
    """
    reserved = [k for k in RESERVED_NAMES if k not in DIM_ORDER or k == "sample" or k in coords]
    for kind, names in (("field", fields), ("param", params)):
        for name in names:
            if not isinstance(name, str) or not name or "/" in name or name.startswith("_"):
                raise ValueError(
                    f"{kind} name {name!r}: use a non-empty name without '/' that does not "
                    "start with '_'"
                )
            if name in reserved:
                raise ValueError(
                    f"{kind} name {name!r} is taken by a coordinate or group of the file "
                    f"({', '.join(reserved)}); rename the {kind}"
                )
    both = sorted(set(fields) & set(params))
    if both:
        raise ValueError(
            f"{both[0]!r} names both a field and a parameter; fields and parameters share "
            "one namespace (the file's root variables): rename one of them"
        )


def field_dtype(requested: Any, name: str) -> np.dtype | None:
    """A requested storage dtype as a float numpy dtype (None keeps the input's)."""
    if requested is None:
        return None
    try:
        dtype = np.dtype(requested)
    except TypeError as exc:
        raise ValueError(f"dtype for field {name!r}: {requested!r} is not a dtype") from exc
    if dtype.name not in FIELD_DTYPES:
        raise ValueError(
            f"dtype for field {name!r}: {dtype} is not one of {FIELD_DTYPES} (fields are "
            "stored as real floats)"
        )
    return dtype


def storage_dtype(arr: np.ndarray, name: str, where: str) -> np.dtype:
    """The float dtype that keeps ``arr``'s values: its own, or float64 for integers."""
    kind = arr.dtype.kind
    if kind == "f" and arr.dtype.name in FIELD_DTYPES:
        return arr.dtype
    if kind == "f":  # long double: float64 is the widest HDF5/netCDF float we write
        return np.dtype(np.float64)
    if kind in "iub":
        return np.dtype(np.float64)
    raise ValueError(
        f"{where}: field {name!r} has dtype {arr.dtype}; fields hold real numbers (pass a "
        "float or integer array; for complex data store the real and imaginary parts as "
        "two fields or as a 'component' dim)"
    )


def warn_downcast(name: str, src: np.dtype, dst: np.dtype, why: str) -> None:
    """Log a narrowing cast of field ``name`` (once per writer; the caller tracks it)."""
    logger.warning(
        "field %r: %s data stored as %s (%s); values are rounded to %s precision",
        name,
        src,
        dst,
        why,
        dst,
    )


def is_downcast(src: np.dtype, dst: np.dtype) -> bool:
    """Whether casting ``src`` values to the float type ``dst`` can lose information."""
    if src.kind == "f":
        return src.itemsize > dst.itemsize
    if src.kind in "iu":
        return src.itemsize >= dst.itemsize  # int32 -> float32 loses digits, int8 does not
    return False


def create_coords(
    f: h5py.File,
    n_samples: int,
    coords: Mapping[str, np.ndarray],
    units: Mapping[str, str],
    periodic: Mapping[str, bool],
) -> dict[str, h5py.Dataset]:
    """Write the coordinate variables (dimension scales) at the root; return them by dim."""
    sample = f.create_dataset("sample", data=np.arange(n_samples, dtype=np.int64))
    scales = {"sample": sample}
    for name in DIM_ORDER[1:]:
        if name not in coords:
            continue
        values = coords[name]
        if values.dtype.kind == "f":
            values = values.astype(np.float64)
        scales[name] = f.create_dataset(name, data=values)
    for name, ds in scales.items():
        ds.make_scale(name)
        ds.attrs["long_name"] = _COORD_NAMES[name]
        if units.get(name):
            ds.attrs["units"] = units[name]
        if name in _AXIS:
            ds.attrs["axis"] = _AXIS[name]
        if name in SPATIAL_DIMS:
            ds.attrs["periodic"] = np.int8(bool(periodic.get(name, False)))
    return scales


def _field_kwargs(shape: tuple[int, ...], spec: FieldSpec, compression: str | None) -> dict:
    chunks = (1, *shape[1:]) if spec.dims[0] == "sample" else shape
    kwargs: dict[str, Any] = {"fletcher32": True, "chunks": chunks}  # after shuffle+compression
    if compression:
        kwargs.update(compression=compression, shuffle=True)
    return kwargs


def create_field(
    f: h5py.File,
    name: str,
    spec: FieldSpec,
    shape: tuple[int, ...],
    dtype: np.dtype,
    scales: Mapping[str, h5py.Dataset],
    compression: str | None,
) -> h5py.Dataset:
    """Create field ``name`` as a root variable (no values yet: they read as NaN)."""
    ds = f.create_dataset(
        name,
        shape=shape,
        dtype=dtype,
        fillvalue=np.nan,
        **_field_kwargs(shape, spec, compression),
    )
    ds.attrs["kind"] = "field"
    ds.attrs["dims"] = np.array(spec.dims, dtype=h5py.string_dtype())
    ds.attrs["role"] = spec.role
    ds.attrs["long_name"] = spec.long_name or name
    if spec.units:
        ds.attrs["units"] = spec.units
    for axis, d in enumerate(spec.dims):
        ds.dims[axis].attach_scale(scales[d])
    return ds


def retype_field(
    f: h5py.File,
    name: str,
    spec: FieldSpec,
    dtype: np.dtype,
    scales: Mapping[str, h5py.Dataset],
    compression: str | None,
) -> h5py.Dataset:
    """Recreate the still empty field ``name`` with another dtype, keeping its attributes."""
    old = f[name]
    shape = old.shape
    attrs = {k: v for k, v in old.attrs.items() if k not in ("DIMENSION_LIST", "REFERENCE_LIST")}
    for axis, d in enumerate(spec.dims):  # no dangling references in the scales
        old.dims[axis].detach_scale(scales[d])
    del f[name]
    ds = create_field(f, name, spec, shape, dtype, scales, compression)
    for k, v in attrs.items():
        ds.attrs[k] = v
    return ds


def create_param(
    f: h5py.File, name: str, spec: ParamSpec, n_samples: int, scales: Mapping[str, h5py.Dataset]
) -> h5py.Dataset:
    """Create parameter ``name`` as a float64 root variable along ``sample``."""
    ds = f.create_dataset(name, shape=(n_samples,), dtype=np.float64)
    ds.attrs["kind"] = "param"
    attrs = spec.to_attrs()
    attrs.setdefault("long_name", name)
    if not attrs.get("units"):
        attrs.pop("units", None)
    for k, v in attrs.items():
        ds.attrs[k] = v
    ds.dims[0].attach_scale(scales["sample"])
    return ds


def parse_coords(coords: Mapping[str, Any] | None, fields: Mapping[str, FieldSpec]):
    """The coordinate arrays; an integer n stands for n cell centres of [0, 1]."""
    if coords is None:
        dims = sorted(
            {d for s in fields.values() for d in s.dims if d != "sample"}, key=DIM_ORDER.index
        )
        example = ", ".join(f"{d!r}: n_{d}" for d in dims) or "'x': n_x"
        raise ValueError(
            "coords is missing: the writer needs the grid of every dim the fields use "
            f"({', '.join(dims) or 'none'}). Pass coords={{{example}}} with an integer n for "
            "n cell centres of [0, 1] (spacing 1/n, the grid the generators and the metrics "
            "assume), or a 1-D array of coordinate values per dim"
        )
    out = {}
    for k, v in coords.items():
        if isinstance(v, int | np.integer) and not isinstance(v, bool):
            if v < 1:
                raise ValueError(f"coords[{k!r}] = {v}: a number of points must be >= 1")
            v = (np.arange(int(v)) + 0.5) / int(v)
        out[k] = np.asarray(v)
    return out


def check_finite_samples(arr: np.ndarray, name: str, first: int) -> None:
    """Refuse NaN/Inf in ``arr`` (samples ``first, first + 1, ...``), naming the sample."""
    if arr.dtype.kind not in "fc" or not arr.size:
        return
    finite = np.isfinite(arr).reshape(arr.shape[0], -1).all(axis=1)
    if not finite.all():
        raise DatasetError(
            f"sample {first + int(np.argmin(finite))}: field {name!r} holds NaN or Inf; the "
            "simulation diverged or the data are damaged. Fix the generator (or its "
            "parameters) or drop that sample before writing"
        )


def _sample_ok(ds: h5py.Dataset, i: int) -> bool:
    """Whether sample ``i`` reads back (checksum) with finite values."""
    try:
        return bool(np.isfinite(ds[i]).all())
    except OSError:
        return False


def samples_ok(ds: h5py.Dataset) -> np.ndarray:
    """Per sample of ``ds``: whether it reads back (checksum) with finite values."""
    n = ds.shape[0]
    ok = np.ones(n, dtype=bool)
    per_sample = max(1, int(np.prod(ds.shape[1:])))
    step = max(1, (16 * 2**20) // (ds.dtype.itemsize * per_sample))
    for start in range(0, n, step):
        stop = min(start + step, n)
        try:
            block = ds[start:stop].reshape(-1, per_sample)
            ok[start:stop] = np.isfinite(block).all(axis=1)
        except OSError:  # a chunk cut short by a kill: check sample by sample
            ok[start:stop] = [_sample_ok(ds, i) for i in range(start, stop)]
    return ok
