"""The structure of a ``pdesurrogates-h5`` file, and what its metadata must mean.

:func:`read_structure` reads every metadata object (root attributes, coordinates, field
layouts, parameters, splits, statistics) with sizes bounded before allocation, checks
them all and raises one :class:`SchemaError` listing every problem found, each naming the
object and the fix. Findings that do not make a file invalid (a constant field, an empty
valid/test split) are kept as notes. No field values are read: this runs when a file is
opened, not on every sample read.
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from pdesurrogates.datasets._schema import (
    DIM_ORDER,
    MAX_SAMPLE_BYTES,
    READABLE_VERSIONS,
    REQUIRED_ROOT_ATTRS,
    SCHEMA_NAME,
    SCHEMA_VERSION,
    SPATIAL_DIMS,
    SPLIT_NAMES,
    FieldSpec,
    ParamSpec,
    _human,
    _text,
    _texts,
    field_key,
    param_key,
    read_bounded,
)
from pdesurrogates.datasets.backends._array_stores import plain_arrays_hint
from pdesurrogates.errors import SchemaError

__all__ = ["attr_value", "read_structure"]

_REGEN = "regenerate the file or copy it again"


class _Findings:
    """Errors and notes about one file; every entry names the object and the fix."""

    def __init__(self, path: Any) -> None:
        self.path = path
        self.errors: list[str] = []
        self.notes: list[str] = []

    def error(self, obj: str, what: str, fix: str = _REGEN) -> None:
        self.errors.append(f"{obj} {what}; {fix}")

    def note(self, obj: str, what: str, fix: str) -> None:
        self.notes.append(f"{self.path}: {obj} {what}; {fix}")

    def fail(self, obj: str, what: str, fix: str = _REGEN) -> SchemaError:
        return SchemaError(f"{self.path}: {' '.join(s for s in (obj, what) if s)}; {fix}")

    def raise_if_any(self) -> None:
        if not self.errors:
            return
        text = f"{self.path}: {self.errors[0]}"
        if len(self.errors) > 1:
            more = "\n".join(f"  {self.path}: {e}" for e in self.errors[1:])
            text += f"\n{len(self.errors) - 1} more problem(s):\n{more}"
        raise SchemaError(text)


def read_structure(f: h5py.File, path) -> dict[str, Any]:
    """Check the structure and metadata of an open file and return them (no value scan)."""
    out = _Findings(path)
    n, spatial, version = _check_root(f, out)
    coords, coord_attrs = _read_coords(f, out, n, spatial, version)
    fields, shapes, checksums, found = _read_fields(f, out, coords, version)
    params, param_values = _read_params(f, out, n, version)
    splits = _read_splits(f, out, n)
    stats = _read_stats(f, out, fields, found, coords, splits)
    out.raise_if_any()
    return {
        "version": version,
        "field_paths": {k: field_key(version, k) for k in fields},
        "param_paths": {k: param_key(version, k) for k in params},
        "dtypes": {k: str(f[field_key(version, k)].dtype) for k in fields},
        "n_samples": n,
        "spatial_dims": spatial,
        "coords": coords,
        "coord_attrs": coord_attrs,
        "fields": fields,
        "shapes": shapes,
        "params": params,
        "param_values": param_values,
        "splits": splits,
        "stats": stats,
        "attrs": {k: attr_value(v) for k, v in f.attrs.items()},
        "checksums": checksums,
        "notes": out.notes,
    }


# --- links --------------------------------------------------------------------------
def _member(group: h5py.Group, name: str, where: str, out: _Findings, kind=h5py.Dataset):
    """``group[name]`` if it is a hard link to an object of ``kind``; else record why not."""
    link = group.get(name, getlink=True)
    if link is None:
        return None
    if isinstance(link, h5py.SoftLink):
        out.error(
            where,
            f"is a soft link to {link.path!r}, not a {kind.__name__.lower()} of its own",
            "store the data itself (copy it in place of the link) or regenerate the file",
        )
        return None
    if isinstance(link, h5py.ExternalLink):
        out.error(
            where,
            f"is an external link to {link.filename!r}:{link.path}, which is never followed",
            "copy the data into this file or regenerate it",
        )
        return None
    obj = group[name]
    if not isinstance(obj, kind):
        out.error(where, f"is a {type(obj).__name__}, expected a {kind.__name__}")
        return None
    return obj


# --- root ---------------------------------------------------------------------------
def _integer(v: Any) -> int | None:
    arr = np.asarray(v)
    if arr.shape != () or arr.dtype.kind not in "iu":
        return None
    return int(arr)


def _boolean(v: Any) -> bool | None:
    arr = np.asarray(v)
    if arr.shape != ():
        return None
    if arr.dtype.kind == "b":
        return bool(arr)
    if arr.dtype.kind in "iu" and int(arr) in (0, 1):
        return bool(int(arr))
    return None


def _check_root(f: h5py.File, out: _Findings) -> tuple[int, list[str], int]:
    attrs = f.attrs
    if "schema" not in attrs:
        raise out.fail(
            "",
            f"is not a {SCHEMA_NAME} file (no root attribute 'schema'; top-level objects: "
            f"{sorted(f.keys())[:10]})",
            plain_arrays_hint(f, out.path)
            or "convert it with `pdesurrogates import ...` or write it with DatasetWriter",
        )
    if _text(attrs["schema"]) != SCHEMA_NAME:
        raise out.fail(
            "root attribute",
            f"schema is {_text(attrs['schema'])!r}, not {SCHEMA_NAME!r}",
            "this file belongs to another tool; convert it with `pdesurrogates import ...`",
        )
    version = attrs.get("schema_version")
    number = None if version is None else _integer(version)
    if number is None:
        raise out.fail(
            "root attribute",
            f"schema_version is {attr_value(version)!r}, not an integer",
            f"set it to the integer {SCHEMA_VERSION} (if the file is otherwise valid) or "
            "regenerate the file",
        )
    if number not in READABLE_VERSIONS:
        raise out.fail(
            "root attribute",
            f"schema_version is {number}; this pdesurrogates reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}",
            "upgrade pdesurrogates" if number > SCHEMA_VERSION else "regenerate the file",
        )
    missing = [a for a in REQUIRED_ROOT_ATTRS if a not in attrs]
    if missing:
        raise out.fail("root:", f"missing root attributes {missing}", "regenerate the file")
    complete = _boolean(attrs["complete"])
    if complete is None:
        raise out.fail(
            "root attribute",
            f"complete is {attr_value(attrs['complete'])!r} "
            f"({np.asarray(attrs['complete']).dtype}), not a boolean (a string such as "
            "'False' must not read as true)",
            "store a real boolean (h5py: f.attrs['complete'] = True) or regenerate the file",
        )
    if not complete:
        raise out.fail(
            "root:",
            "the file is marked incomplete (complete=False): its writer did not finish",
            "rerun the generator with --resume",
        )
    n = _integer(attrs["n_samples"])
    if n is None or n < 1:
        raise out.fail(
            "root attribute",
            f"n_samples is {attr_value(attrs['n_samples'])!r}, not a positive integer",
        )
    spatial = _texts(attrs["spatial_dims"])
    n_spatial = _integer(attrs["n_spatial_dims"])
    if n_spatial != len(spatial):
        raise out.fail(
            "root attributes",
            f"n_spatial_dims={attr_value(attrs['n_spatial_dims'])!r} but spatial_dims={spatial}",
            "fix the root attributes",
        )
    if spatial != list(SPATIAL_DIMS[: len(spatial)]):
        raise out.fail("root attribute", f"spatial_dims={spatial} is not x, (x, y) or (x, y, z)")
    return n, spatial, number


# --- coordinates --------------------------------------------------------------------
def _read_coords(f: h5py.File, out: _Findings, n: int, spatial: list[str], version: int):
    """The coordinate arrays by dim, and their ``units``/``long_name`` attributes."""
    coords: dict[str, np.ndarray] = {}
    attrs: dict[str, dict[str, str]] = {}
    for name in DIM_ORDER:
        if version > 1 and _kind(f, name) in ("field", "param"):
            continue  # a variable named like a dim the file does not use
        where = f"coordinate /{name}"
        ds = _member(f, name, where, out)
        if ds is None:
            continue
        if ds.ndim != 1:
            out.error(where, f"has shape {ds.shape}, expected a 1-D dataset")
            continue
        values = read_bounded(ds, out.path, where)
        coords[name] = values
        attrs[name] = {k: _text(ds.attrs[k]) for k in ("units", "long_name") if k in ds.attrs}
        _check_coord(out, name, where, values)
    if "sample" not in coords or len(coords["sample"]) != n:
        raise out.fail(
            "coordinate /sample",
            f"is missing or does not have n_samples={n} entries",
            "regenerate the file",
        )
    for d in spatial:
        if d not in coords:
            raise out.fail(f"spatial coordinate /{d}", "is missing", "regenerate the file")
    return coords, attrs


def _check_coord(out: _Findings, name: str, where: str, values: np.ndarray) -> None:
    kind = values.dtype.kind
    if kind == "c":
        out.error(where, f"is complex ({values.dtype}); coordinates are real")
        return
    if kind not in "iuf":
        if name != "component":
            out.error(where, f"has dtype {values.dtype}, expected numbers")
        return
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        out.error(where, f"holds {values[bad[0]]} at index {int(bad[0])}; coordinates are finite")
        return
    if name in ("sample", "component"):
        uniq, counts = np.unique(values, return_counts=True)
        if uniq.size != values.size:
            dup = uniq[counts > 1][0]
            out.error(where, f"holds the value {dup} more than once; its entries must be unique")
        return
    if values.size > 1:
        step = np.diff(values.astype(np.float64))
        if not (np.all(step > 0) or np.all(step < 0)):
            i = int(np.flatnonzero(step <= 0)[0] if step[0] > 0 else np.flatnonzero(step >= 0)[0])
            out.error(
                where,
                f"is not strictly monotone (entries {i} and {i + 1}: {values[i]}, {values[i + 1]})",
            )


# --- fields -------------------------------------------------------------------------
def _variables(f: h5py.File, out: _Findings, kind: str) -> list[tuple[str, str, h5py.Dataset]]:
    """The version-2 root variables whose ``kind`` attribute is ``kind``: (name, where, ds)."""
    found = []
    for name in f:
        if name in ("splits", "stats") or (name in DIM_ORDER and _kind(f, name) is None):
            continue
        link = f.get(name, getlink=True)
        if not isinstance(link, h5py.HardLink):
            if kind == "field":  # report a link once, with the fields
                _member(f, name, f"/{name}", out)
            continue
        obj = f[name]
        if isinstance(obj, h5py.Dataset) and _text(obj.attrs.get("kind", "")) == kind:
            found.append((name, f"/{name}", obj))
    return found


def _kind(f: h5py.File, name: str) -> str | None:
    """The ``kind`` attribute (field / param) of a version-2 root dataset, if it has one."""
    link = f.get(name, getlink=True)
    if not isinstance(link, h5py.HardLink) or not isinstance(f[name], h5py.Dataset):
        return None
    kind = f[name].attrs.get("kind")
    return None if kind is None else _text(kind)


def _read_fields(f: h5py.File, out: _Findings, coords, version: int):
    if version == 1:
        grp = _member(f, "fields", "/fields", out, kind=h5py.Group)
        members = [] if grp is None else [(k, f"/fields/{k}", grp) for k in grp]
        empty = "/fields", "is missing or empty"
    else:
        members = _variables(f, out, "field")
        empty = "root:", "holds no field variables (datasets with attribute kind='field')"
    if not members:
        out.raise_if_any()
        raise out.fail(*empty, "the file holds no data; regenerate it")
    fields: dict[str, FieldSpec] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    checksums = True
    for name, where, found in members:
        ds = _member(found, name, where, out) if version == 1 else found
        if ds is None:
            continue
        spec = _field_spec(ds, where, out)
        if spec is None or not _field_shape_ok(ds, spec, where, coords, out):
            continue
        if ds.dtype.kind != "f":
            out.error(where, f"has dtype {ds.dtype}, expected a real float type")
            continue
        per_sample = int(np.prod(ds.shape[1:] if spec.dims[0] == "sample" else ds.shape))
        if per_sample * ds.dtype.itemsize > MAX_SAMPLE_BYTES:
            out.error(
                where,
                f"declares {_human(per_sample * ds.dtype.itemsize)} per sample, more than "
                f"the {_human(MAX_SAMPLE_BYTES)} a reader allocates",
            )
            continue
        _check_allocated(ds, spec, where, out)
        checksums = checksums and bool(ds.fletcher32)
        fields[name] = spec
        shapes[name] = tuple(ds.shape)
    return fields, shapes, checksums, {name for name, _, _ in members}


def _field_spec(ds: h5py.Dataset, where: str, out: _Findings) -> FieldSpec | None:
    dims_attr = ds.attrs.get("dims")
    if dims_attr is None:
        out.error(where, "has no 'dims' attribute")
        return None
    try:
        return FieldSpec(
            dims=tuple(_texts(dims_attr)),
            role=_text(ds.attrs.get("role", "output")),
            units=_text(ds.attrs.get("units", "")),
            long_name=_text(ds.attrs.get("long_name", "")),
        )
    except ValueError as exc:
        out.error(where, f"has bad attributes: {exc}")
        return None


def _field_shape_ok(ds, spec: FieldSpec, where: str, coords, out: _Findings) -> bool:
    dims = spec.dims
    if len(dims) != ds.ndim:
        out.error(where, f"has {ds.ndim} axes but dims {dims}")
        return False
    for d, size in zip(dims, ds.shape, strict=True):
        if d not in coords:
            out.error(where, f"uses dim {d!r} with no /{d} coordinate")
            return False
        if len(coords[d]) != size:
            out.error(
                where,
                f"has shape {ds.shape} with dims {dims}, but /{d} has {len(coords[d])} "
                "entries (mismatched shapes)",
            )
            return False
    return True


def _check_allocated(ds: h5py.Dataset, spec: FieldSpec, where: str, out: _Findings) -> None:
    """Record an error if part of ``ds`` was never written (it would read as fill values)."""
    if ds.size == 0:
        return
    if ds.chunks is None:
        if ds.id.get_storage_size() == 0 and ds.compression is None:
            layout = ds.id.get_create_plist().get_layout()
            if layout == h5py.h5d.CONTIGUOUS:
                out.error(where, "was never written (its storage is not allocated)")
        return
    expected = int(np.prod([-(-s // c) for s, c in zip(ds.shape, ds.chunks, strict=True)]))
    have = ds.id.get_num_chunks()
    if have >= expected:
        return
    first = ""
    if spec.dims[0] == "sample":
        written = {ds.id.get_chunk_info(i).chunk_offset[0] for i in range(have)}
        step = ds.chunks[0]
        missing = next(s for s in range(0, ds.shape[0], step) if s not in written)
        first = f" (the first is sample {missing})"
    out.error(
        where,
        f"has {expected - have} of {expected} chunks never written{first}; they would read "
        "back as fill values, not data",
        "rerun the generator for those samples or regenerate the file",
    )


# --- params -------------------------------------------------------------------------
def _read_params(f: h5py.File, out: _Findings, n: int, version: int):
    params: dict[str, ParamSpec] = {}
    param_values: dict[str, np.ndarray] = {}
    if version == 1:
        grp = _member(f, "params", "/params", out, kind=h5py.Group)
        members = [] if grp is None else [(k, f"/params/{k}", grp) for k in grp]
    else:
        members = _variables(f, out, "param")
    for name, where, found in members:
        ds = _member(found, name, where, out) if version == 1 else found
        if ds is None:
            continue
        if ds.shape != (n,):
            out.error(where, f"has shape {ds.shape}, expected ({n},)")
            continue
        if ds.dtype.kind not in "iuf":
            what = "complex" if ds.dtype.kind == "c" else f"of dtype {ds.dtype}"
            out.error(where, f"is {what}; parameters are real numbers")
            continue
        try:
            spec = ParamSpec.from_attrs(ds.attrs)
        except (ValueError, TypeError) as exc:
            out.error(where, f"has bad attributes: {exc}", "fix its attributes")
            continue
        values = read_bounded(ds, out.path, where).astype(np.float64)
        if _check_param(out, where, spec, values):
            params[name] = spec
            param_values[name] = values
    return params, param_values


def _check_param(out: _Findings, where: str, spec: ParamSpec, values: np.ndarray) -> bool:
    declared = [v for v in (*(spec.bounds or ()), spec.loc, spec.scale) if v is not None]
    if not np.all(np.isfinite(declared)):
        out.error(where, f"declares non-finite bounds/loc/scale {declared}", "fix its attributes")
        return False
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        out.error(where, f"holds {values[bad[0]]} for sample {int(bad[0])}")
        return False
    if spec.bounds is not None:
        low, high = spec.bounds
        if spec.dist == "loguniform" and low <= 0:
            out.error(where, f"is loguniform with bounds {spec.bounds}; bounds must be > 0")
            return False
        outside = np.flatnonzero((values < low) | (values > high))
        if outside.size:
            i = int(outside[0])
            out.error(
                where,
                f"holds {values[i]} for sample {i}, outside its declared bounds {spec.bounds} "
                f"({outside.size} sample(s) outside)",
                "fix the values or the 'bounds' attribute, or regenerate the file",
            )
            return False
    return True


# --- splits and statistics ----------------------------------------------------------
def _read_splits(f: h5py.File, out: _Findings, n: int) -> dict[str, np.ndarray]:
    splits: dict[str, np.ndarray] = {}
    grp = _member(f, "splits", "/splits", out, kind=h5py.Group)
    for name in grp if grp is not None else ():
        where = f"/splits/{name}"
        ds = _member(grp, name, where, out)
        if ds is None:
            continue
        if name not in SPLIT_NAMES:
            out.error(where, f"is not one of the splits {SPLIT_NAMES}", "rename or delete it")
            continue
        if ds.ndim != 1 or ds.dtype.kind not in "iu":
            out.error(where, f"is not a 1-D integer array (shape {ds.shape}, {ds.dtype})")
            continue
        idx = read_bounded(ds, out.path, where).astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            out.error(where, f"holds indices outside [0, {n})")
            continue
        uniq, counts = np.unique(idx, return_counts=True)
        if uniq.size != idx.size:
            out.error(where, f"holds sample {int(uniq[counts > 1][0])} more than once")
            continue
        if not idx.size:
            out.note(where, "is empty", "give it samples or ignore this note")
        splits[name] = idx
    names = sorted(splits)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            common = np.intersect1d(splits[a], splits[b])
            if common.size:
                out.error(
                    f"/splits/{a} and /splits/{b}",
                    f"share {common.size} sample(s) (first: {int(common[0])}); splits must be "
                    "disjoint",
                )
    return splits


def _read_stats(f: h5py.File, out: _Findings, fields, found, coords, splits):
    """The statistics of the valid ``fields``; those of a field ``found`` in the file but
    invalid are skipped (its own error says what is wrong), any other one is an error."""
    stats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    grp = _member(f, "stats", "/stats", out, kind=h5py.Group)
    if grp is not None and len(grp) and "train" in splits and not splits["train"].size:
        out.error("/stats", "is present but /splits/train is empty; statistics need samples")
    for name in grp if grp is not None else ():
        where = f"/stats/{name}"
        sub = _member(grp, name, where, out, kind=h5py.Group)
        if sub is None:
            continue
        if name not in fields:
            if name not in found:
                out.error(where, f"belongs to no field (fields: {sorted(found)})", "delete it")
            continue
        has_comp = fields[name].dims[-1] == "component"
        want = (len(coords["component"]),) if has_comp else ()
        pair = [_stat(sub, key, f"{where}/{key}", want, out) for key in ("mean", "std")]
        if pair[0] is not None and pair[1] is not None:
            stats[name] = (pair[0], pair[1])
    return stats


def _stat(grp, key: str, where: str, want: tuple[int, ...], out: _Findings):
    ds = _member(grp, key, where, out)
    if ds is None:
        if key not in grp:
            out.error(where, "is missing")
        return None
    if ds.dtype.kind not in "iuf":
        what = "complex" if ds.dtype.kind == "c" else f"of dtype {ds.dtype} (not a number)"
        out.error(where, f"is {what}; statistics are real numbers")
        return None
    if ds.shape != want:
        out.error(where, f"has shape {ds.shape}, expected {want} (one value per component)")
        return None
    values = np.asarray(read_bounded(ds, out.path, where), dtype=np.float64)
    bad = ~np.isfinite(values)
    if key == "std" and not bad.any():
        if (values < 0).any():
            out.error(where, f"holds a negative value {values.min()}; a std is >= 0")
            return None
        if (values == 0).any():
            out.note(
                where,
                "is 0: the field is constant over the train split and cannot be normalised",
                "drop the field or normalise it yourself",
            )
    if bad.any():
        out.error(where, f"holds {values[bad].flat[0]}; statistics are finite")
        return None
    return values[()] if values.ndim == 0 else values


def attr_value(v: Any) -> Any:
    """An attribute value as plain Python (str, list, number)."""
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    if isinstance(v, np.ndarray):
        if v.dtype.kind in "OSU":
            return _texts(v)
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v
