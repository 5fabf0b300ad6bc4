"""The one inference behind ``import arrays``, ``from_arrays`` and ``from_xarray``.

:func:`infer_layout` looks only at names, shapes, dtypes and (netCDF, zarr, xarray) dim
names, never at values: which axis holds the samples (the one every named array shares;
the leading one by default, or a dim called ``sample``), which axes are spatial (``x``,
``y``, ``z`` in order), which one (if any) holds channels (``component``), the grid
coordinates (given, found in the store, or ``linspace(0, 1, n)``, said so) and the
per-sample params (1-D arrays of length N). What it cannot decide is a
:class:`~pdesurrogates.errors.SchemaError` that lists the candidates and the option
that picks one. The result is an :class:`ArrayPlan`, printed before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from pdesurrogates.datasets._layout import FIELD_DTYPES, field_dtype, is_downcast
from pdesurrogates.datasets._schema import SPATIAL_DIMS
from pdesurrogates.datasets.backends._array_stores import (
    ArrayStore,
    Variable,
    describe_variables,
)
from pdesurrogates.errors import DatasetError, SchemaError

__all__ = ["LAYOUTS", "ArrayPlan", "FieldPlan", "infer_layout"]

LAYOUTS = ("channels-last", "channels-first", "spatial")
ROLES = {"input": "input", "target": "output", "output": "output", "param": "param"}
ROLES.update(coefficient="coefficient", state="state")
SAMPLE_NAMES = {"sample", "samples", "n", "n_samples", "batch", "member", "realization"}
SAMPLE_NAMES |= {"ensemble", "trajectory", "trajectories", "case", "cases", "run", "runs"}
CHANNEL_NAMES = {"component", "components", "channel", "channels", "c", "var", "variable"}
TIME_NAMES = {"time", "t"}
SMALL = 4  # an end axis this short (and shorter than the others) may be channels
_RANGE = re.compile(r"^\s*([-+0-9.eE]+)\s*:\s*([-+0-9.eE]+)\s*$")
_AXIS_FLAG = "--sample-axis AXIS, or NAME=AXIS per field (Python: sample_axis=)"


@dataclass
class FieldPlan:
    """How one array becomes one field: its axes, in source order, and our dims."""

    name: str
    role: str
    variable: Variable
    sample_axis: int
    spatial_axes: tuple[int, ...]
    time_axis: int | None = None
    channel_axis: int | None = None

    @property
    def dims(self) -> tuple[str, ...]:
        time = ("time",) if self.time_axis is not None else ()
        comp = ("component",) if self.channel_axis is not None else ()
        return ("sample", *time, *SPATIAL_DIMS[: len(self.spatial_axes)], *comp)

    @property
    def order(self) -> tuple[int, ...]:
        """Source axes in the order of :attr:`dims` (the transpose to our layout)."""
        time = () if self.time_axis is None else (self.time_axis,)
        comp = () if self.channel_axis is None else (self.channel_axis,)
        return (self.sample_axis, *time, *self.spatial_axes, *comp)


@dataclass
class ArrayPlan:
    """What :func:`infer_layout` decided: printed before anything is written."""

    where: str
    n_samples: int
    fields: dict[str, FieldPlan]
    params: dict[str, Variable]
    coords: dict[str, np.ndarray]
    coord_notes: dict[str, str]
    coord_units: dict[str, str]
    layout: str
    stored_dtype: dict[str, np.dtype]
    dtype: np.dtype | None = None
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[dict[str, str]]:
        """One row per field and param: field, role, shape, dtype, axes, coords."""
        rows = []
        for name, fp in self.fields.items():
            v = fp.variable
            spatial = ", ".join(
                f"{a}->{d}" for a, d in zip(fp.spatial_axes, SPATIAL_DIMS, strict=False)
            )
            extra = [f"{fp.time_axis}->time"] if fp.time_axis is not None else []
            extra += [f"{fp.channel_axis}->component"] if fp.channel_axis is not None else []
            rows.append(
                {
                    "field": name,
                    "role": fp.role,
                    "shape": str(v.shape),
                    "dtype": _dtype_text(v.dtype, self.stored_dtype[name]),
                    "sample axis": str(fp.sample_axis),
                    "spatial axes": ", ".join([spatial, *extra]),
                    "coords": ", ".join(fp.dims[1:]),
                }
            )
        for name, v in self.params.items():
            rows.append(
                {
                    "field": name,
                    "role": "param",
                    "shape": str(v.shape),
                    "dtype": _dtype_text(v.dtype, np.dtype(np.float64)),
                    "sample axis": "0",
                    "spatial axes": "",
                    "coords": "",
                }
            )
        return rows

    def summary(self) -> str:
        """A plain-text version of :meth:`rows`, the coordinates and the notes."""
        head = f"{self.where}: {self.n_samples} samples, layout {self.layout}"
        lines = [head] + [
            "  " + " | ".join(f"{k}: {v}" for k, v in row.items() if v) for row in self.rows()
        ]
        lines += [f"  coords {note}" for note in self.coord_notes.values()]
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])


def _dtype_text(src: np.dtype, stored: np.dtype) -> str:
    if src == stored:
        return str(src)
    return f"{src} -> {stored}"


# --- inference ----------------------------------------------------------------------
def infer_layout(
    store: ArrayStore,
    roles: Mapping[str, str],
    *,
    sample_axis: int | str | Mapping[str, int | str] | None = None,
    layout: str | None = None,
    coords: Mapping[str, Any] | None = None,
    dtype: Any = None,
    auto_params: bool = True,
) -> ArrayPlan:
    """Decide the sample, spatial and channel axes, coordinates and params of ``store``.

    The one inference behind ``pdesurrogates import arrays``, :func:`from_arrays` and
    :func:`from_xarray` (their parameters are documented there). Raises
    :class:`~pdesurrogates.errors.SchemaError` for an ambiguous or inconsistent layout
    (naming the fields, the axes and the option that decides), ``DatasetError`` for a
    name the store does not have, ``ValueError`` for a bad argument or a non-numeric array.
    """
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r}: use one of {LAYOUTS}")
    fields, params = _roles(store, roles)
    axes = _sample_axes(store, fields, params, sample_axis)
    n = _n_samples(store, fields, axes)
    plans, layout = _field_axes(store, fields, axes, layout)
    for name in params:
        _check_param(store, name, n)
    coords_out, notes, units, used = _coords(store, plans, coords or {})
    if auto_params:
        used |= set(fields) | set(params)
        for name, v in store.variables.items():
            if name in used or name.rpartition("/")[2] in (*SPATIAL_DIMS, *TIME_NAMES):
                continue
            if v.numeric and v.shape == (n,) and name not in coords_out:
                params.append(name)
    ours = _our_names([*plans, *params])
    wanted = None if dtype is None else field_dtype(dtype, "every field")
    stored = {ours[k]: wanted or _natural(fp.variable.dtype) for k, fp in plans.items()}
    plan = ArrayPlan(
        where=store.where,
        n_samples=n,
        fields={ours[k]: replace(fp, name=ours[k]) for k, fp in plans.items()},
        params={ours[k]: store.variables[k] for k in params},
        coords=coords_out,
        coord_notes=notes,
        coord_units=units,
        layout=layout,
        stored_dtype=stored,
        dtype=wanted,
    )
    _dtype_notes(plan)
    return plan


def _our_names(names: list[str]) -> dict[str, str]:
    """Names in our file: ``group/name`` becomes ``name`` (``group_name`` if that clashes)."""
    short = [n.rpartition("/")[2] for n in names]
    if len(set(short)) == len(short):
        return dict(zip(names, short, strict=True))
    return {n: n.strip("/").replace("/", "_") for n in names}


def _natural(src: np.dtype) -> np.dtype:
    """The dtype the writer keeps for source values of dtype ``src`` (no dtype asked)."""
    if src.kind == "f" and src.name in FIELD_DTYPES:
        return src
    return np.dtype(np.float64)  # integers, booleans, long doubles


def _dtype_notes(plan: ArrayPlan) -> None:
    for name, fp in plan.fields.items():
        src, stored = fp.variable.dtype, plan.stored_dtype[name]
        if is_downcast(src, stored):
            why = "as asked" if plan.dtype is not None else "the widest float stored"
            plan.notes.append(
                f"{name}: {src} is stored as {stored} (downcast, {why}; relative rounding "
                f"{np.finfo(stored).eps:.1e})"
            )


def _roles(store: ArrayStore, roles: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    if not isinstance(roles, Mapping) or not roles:
        raise ValueError("roles: give a dict of name -> 'input' | 'target' | 'param'")
    fields: dict[str, str] = {}
    params: list[str] = []
    for name, role in roles.items():
        ours = ROLES.get(str(role).lower())
        if ours is None:
            raise ValueError(f"roles[{name!r}] = {role!r}: use one of {sorted(ROLES)}")
        if name not in store.variables:
            raise DatasetError(
                f"{store.where}: no array {name!r}; the {store.kind} holds: "
                f"{describe_variables(store.variables)}"
            )
        v = store.variables[name]
        if not v.numeric:
            raise ValueError(
                f"{store.where}: {store.label(name)} has dtype {v.dtype}, not numbers (object, "
                "string and complex arrays are refused); convert it to a float array first"
            )
        if ours == "param":
            params.append(name)
        else:
            fields[name] = ours
    if not fields:
        raise ValueError("roles: name at least one 'input' or 'target' field")
    return fields, params


def _explicit_axis(store: ArrayStore, name: str, axis: int | str) -> int:
    v = store.variables[name]
    if isinstance(axis, str) and not axis.lstrip("-").isdigit():
        if not v.dims or axis not in v.dims:
            raise ValueError(
                f"sample_axis {axis!r}: {store.label(name)} has no dim {axis!r} "
                f"(its dims: {v.dims or 'unnamed'}, shape {v.shape})"
            )
        return v.dims.index(axis)
    i = int(axis)
    if not -v.ndim <= i < v.ndim:
        raise ValueError(f"sample_axis {i}: {store.label(name)} has {v.ndim} axes {v.shape}")
    return i % v.ndim


def _sample_axes(store, fields, params, sample_axis) -> dict[str, int]:
    vs = {k: store.variables[k] for k in fields}
    for k, v in vs.items():
        if v.ndim < 2:
            raise SchemaError(
                f"{store.where}: field {store.label(k)} has shape {v.shape}; a field needs a "
                "sample axis and at least one spatial axis (a scalar per sample is a param)"
            )
    if isinstance(sample_axis, Mapping):
        missing = sorted(set(vs) - set(sample_axis))
        if missing:
            raise ValueError(f"sample_axis: give an axis for {missing} too")
        return {k: _explicit_axis(store, k, sample_axis[k]) for k in vs}
    if sample_axis is not None:
        return {k: _explicit_axis(store, k, sample_axis) for k in vs}
    if all(v.dims for v in vs.values()):
        return _named_sample_axes(store, vs)
    lengths = {store.variables[p].shape[0] for p in params if store.variables[p].ndim}
    leads = {v.shape[0] for v in vs.values()}
    if len(leads) == 1:  # the default; params of another length are refused later
        return dict.fromkeys(vs, 0)
    shapes = ", ".join(f"{store.label(k)} {v.shape}" for k, v in vs.items())
    if len({v.shape[1:] for v in vs.values()}) == 1:
        raise SchemaError(
            f"{store.where}: the fields disagree on axis 0, the sample axis ({shapes}); every "
            "field needs the same number of samples"
        )
    common = set.intersection(*(set(v.shape) for v in vs.values()))
    common = common & lengths if lengths else common
    cands = {
        n: {k: [i for i, m in enumerate(v.shape) if m == n] for k, v in vs.items()} for n in common
    }
    if len(cands) == 1 and all(len(ax) == 1 for ax in next(iter(cands.values())).values()):
        return {k: ax[0] for k, ax in next(iter(cands.values())).items()}
    if not cands:
        raise SchemaError(
            f"{store.where}: no axis has the same length in every field ({shapes}), so there "
            f"is no sample axis; every field needs the same number of samples"
        )
    listing = "; ".join(
        f"length {n}: "
        + ", ".join(f"{store.label(k)} axis {' or '.join(map(str, ax))}" for k, ax in c.items())
        for n, c in sorted(cands.items(), reverse=True)
    )
    raise SchemaError(
        f"{store.where}: ambiguous sample axis ({shapes}); candidates: {listing}. "
        f"Pick one with {_AXIS_FLAG}"
    )


def _named_sample_axes(store: ArrayStore, vs: Mapping[str, Variable]) -> dict[str, int]:
    common = set.intersection(*(set(v.dims) for v in vs.values()))
    named = sorted(d for d in common if d.lower() in SAMPLE_NAMES)
    leads = {v.dims[0] for v in vs.values()}
    if len(named) == 1:
        dim = named[0]
    elif len(leads) == 1 and leads <= common:
        dim = leads.pop()
    elif len(common) == 1:
        dim = next(iter(common))
    else:
        dims = ", ".join(f"{store.label(k)} {v.dims}" for k, v in vs.items())
        raise SchemaError(
            f"{store.where}: ambiguous sample axis ({dims}); candidate dims shared by every "
            f"field: {sorted(common) or 'none'}. Pick one with --sample-axis DIM (Python: "
            "sample_axis=)"
        )
    return {k: v.dims.index(dim) for k, v in vs.items()}


def _n_samples(store: ArrayStore, fields: Mapping[str, str], axes: Mapping[str, int]) -> int:
    sizes = {k: store.variables[k].shape[a] for k, a in axes.items()}
    if len(set(sizes.values())) > 1:
        listing = ", ".join(f"{store.label(k)} axis {axes[k]}: {n}" for k, n in sizes.items())
        raise SchemaError(
            f"{store.where}: the fields disagree on the sample axis ({listing}); every field "
            "needs the same number of samples"
        )
    n = next(iter(sizes.values()))
    if n < 1:
        raise SchemaError(f"{store.where}: the sample axis is empty; there is nothing to import")
    return n


def _check_param(store: ArrayStore, name: str, n: int) -> None:
    v = store.variables[name]
    if v.shape != (n,):
        raise SchemaError(
            f"{store.where}: param {store.label(name)} has shape {v.shape}; a param holds one "
            f"value per sample, shape ({n},)"
        )


def _rest(v: Variable, s: int) -> list[int]:
    return [i for i in range(v.ndim) if i != s]


def _field_axes(store, fields, axes, layout) -> tuple[dict[str, FieldPlan], str]:
    vs = {k: store.variables[k] for k in fields}
    named = all(v.dims for v in vs.values())
    if named and layout is None:
        chan = _named_channels(vs, axes)
    else:
        chan = _channel_axes(store, vs, axes, layout)
    if layout is None:
        ends = {
            "first" if c == _rest(vs[k], axes[k])[0] else "last"
            for k, c in chan.items()
            if c is not None
        }
        layout = "channels-" + ends.pop() if len(ends) == 1 else "spatial"
    plans: dict[str, FieldPlan] = {}
    for k, v in vs.items():
        rest = [i for i in _rest(v, axes[k]) if i != chan[k]]
        time = next((i for i in rest if named and v.dims[i].lower() in TIME_NAMES), None)
        spatial = tuple(i for i in rest if i != time)
        if not 1 <= len(spatial) <= 3:
            raise SchemaError(
                f"{store.where}: field {store.label(k)} {v.shape} has {len(spatial)} spatial "
                "axes after the sample axis; 1 to 3 are supported (x, y, z). Check "
                f"{_AXIS_FLAG} and --layout"
            )
        plans[k] = FieldPlan(k, fields[k], v, axes[k], spatial, time, chan[k])
    _check_grid(store, plans)
    return plans, layout


def _named_channels(vs, axes) -> dict[str, int | None]:
    out = {}
    for k, v in vs.items():
        found = [i for i in _rest(v, axes[k]) if v.dims[i].lower() in CHANNEL_NAMES]
        out[k] = found[-1] if found else None
    return out


def _channel_axes(store, vs, axes, layout) -> dict[str, int | None]:
    rest = {k: _rest(v, axes[k]) for k, v in vs.items()}
    shapes = {k: tuple(vs[k].shape[i] for i in r) for k, r in rest.items()}
    ranks = {k: len(r) for k, r in rest.items()}
    hi, lo = max(ranks.values()), min(ranks.values())
    listing = ", ".join(f"{store.label(k)} {vs[k].shape}" for k in vs)
    if layout == "spatial" or (layout is None and hi == lo):
        if hi != lo:
            raise SchemaError(
                f"{store.where}: with --layout spatial every field needs the same number of "
                f"axes ({listing}); a field with one more axis has channels: pass --layout "
                "channels-last or channels-first"
            )
        if layout is None:
            _check_ambiguous_channels(store, shapes, listing)
        return dict.fromkeys(vs)
    if hi - lo > 1:
        raise SchemaError(
            f"{store.where}: the fields have {lo} to {hi} axes besides the sample axis "
            f"({listing}); they must share one grid (and at most one channel axis)"
        )
    if layout is None:  # some fields have one more axis: at the front or at the end?
        ref = next(shapes[k] for k in vs if ranks[k] == lo)
        high = [k for k in vs if ranks[k] == hi]
        last = all(shapes[k][:-1] == ref for k in high)
        first = all(shapes[k][1:] == ref for k in high)
        if last == first:
            what = "either" if last else "neither"
            raise SchemaError(
                f"{store.where}: {', '.join(map(store.label, high))} have one more axis than "
                f"the other fields ({listing}), at {what} end of the grid; pass --layout "
                "channels-last or --layout channels-first (Python: layout=)"
            )
        layout = "channels-last" if last else "channels-first"
    pos = -1 if layout == "channels-last" else 0
    return {k: rest[k][pos] if ranks[k] == hi else None for k in vs}


def _check_ambiguous_channels(store, shapes, listing) -> None:
    ref = next(iter(shapes.values()))
    if len(ref) < 2 or len(set(shapes.values())) > 1:
        return
    cands = []
    if ref[-1] <= SMALL and ref[-1] < min(ref[:-1]):
        cands.append(f"the last axis (length {ref[-1]}) as channels: --layout channels-last")
    if ref[0] <= SMALL and ref[0] < min(ref[1:]):
        cands.append(
            f"the first axis after the sample axis (length {ref[0]}) as channels: "
            "--layout channels-first"
        )
    if cands:
        raise SchemaError(
            f"{store.where}: ambiguous layout ({listing}): a short axis may hold channels or "
            f"be part of the grid. Candidates: {'; '.join(cands)}; or every axis as grid: "
            "--layout spatial (Python: layout=)"
        )


def _check_grid(store: ArrayStore, plans: Mapping[str, FieldPlan]) -> None:
    ref_name, ref = next(iter(plans.items()))
    for what in ("spatial_axes", "time_axis", "channel_axis"):
        for k, fp in plans.items():
            a, b = getattr(ref, what), getattr(fp, what)
            if what != "spatial_axes" and (a is None or b is None):
                continue
            ax_a, ax_b = (a, b) if what == "spatial_axes" else ((a,), (b,))
            dims = SPATIAL_DIMS if what == "spatial_axes" else (what.split("_")[0],)
            if len(ax_a) != len(ax_b):
                raise SchemaError(
                    f"{store.where}: {store.label(ref_name)} has {len(ax_a)} spatial axes and "
                    f"{store.label(k)} {len(ax_b)}; the fields must share one grid"
                )
            for d, i, j in zip(dims[: len(ax_a)], ax_a, ax_b, strict=True):
                n, m = ref.variable.shape[i], fp.variable.shape[j]
                if n != m:
                    raise SchemaError(
                        f"{store.where}: the fields disagree on the {d} axis: "
                        f"{store.label(ref_name)} axis {i} has length {n}, {store.label(k)} "
                        f"axis {j} has {m}; the fields must share one grid"
                    )


# --- coordinates --------------------------------------------------------------------
def _coords(store: ArrayStore, plans: Mapping[str, FieldPlan], spec: Mapping[str, Any]):
    """Coordinates of every dim the fields use: given, found in the store, or assumed."""
    ref = next(iter(plans.values()))
    v = ref.variable
    axes: dict[str, int] = dict(zip(SPATIAL_DIMS, ref.spatial_axes, strict=False))
    if ref.time_axis is not None:
        axes = {"time": ref.time_axis, **axes}
    source_dims = {d: (v.dims[i] if v.dims else d) for d, i in axes.items()}
    known = set(axes) | set(source_dims.values())
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ValueError(
            f"coords: no axis {unknown} in this layout; give coordinates for {sorted(axes)}"
            + (f" (or by source dim name: {sorted(source_dims.values())})" if v.dims else "")
        )
    coords: dict[str, np.ndarray] = {}
    notes: dict[str, str] = {}
    units: dict[str, str] = {}
    used: set[str] = set()
    for d, i in axes.items():
        n = v.shape[i]
        given = spec.get(d, spec.get(source_dims[d]))
        found = store.coord(source_dims[d]) if v.dims else None
        if given is not None:
            values, notes[d] = _given_coord(store, d, given, n, used)
        elif found is not None and found[0].shape == (n,):
            values, notes[d] = found[0], f"{d}: coordinate {source_dims[d]!r}"
            if found[1].get("units"):
                units[d] = str(found[1]["units"])
        elif d in store.variables and _usable(store.variables[d], n):
            values, notes[d] = store.read(d, ()), f"{d}: array {d!r}"
            used.add(d)
        else:
            values, notes[d] = np.linspace(0.0, 1.0, n), f"{d}: linspace(0, 1, {n}) assumed"
        coords[d] = _checked_coord(d, values, n)
    channels = [fp for fp in plans.values() if fp.channel_axis is not None]
    if channels:
        c = channels[0].variable.shape[channels[0].channel_axis]
        coords["component"] = np.arange(c)
        notes["component"] = f"component: {c} channels"
    return coords, notes, units, used


def _usable(v: Variable, n: int) -> bool:
    return v.numeric and v.shape == (n,)


def _given_coord(store: ArrayStore, d: str, given: Any, n: int, used: set[str]):
    if isinstance(given, str):
        match = _RANGE.match(given)
        if match:
            lo, hi = float(match.group(1)), float(match.group(2))
            return np.linspace(lo, hi, n), f"{d}: linspace({lo:g}, {hi:g}, {n})"
        if given not in store.variables:
            raise DatasetError(
                f"coords[{d!r}] = {given!r}: neither START:STOP nor an array of "
                f"{store.where}; it holds: {describe_variables(store.variables)}"
            )
        if not _usable(store.variables[given], n):
            raise ValueError(
                f"coords[{d!r}] = {given!r}: {store.label(given)} is "
                f"{store.variables[given]}; the {d} axis needs {n} numbers"
            )
        used.add(given)
        return store.read(given, ()), f"{d}: array {given!r}"
    if isinstance(given, tuple) and len(given) == 2 and np.ndim(given[0]) == 0:
        lo, hi = float(given[0]), float(given[1])
        return np.linspace(lo, hi, n), f"{d}: linspace({lo:g}, {hi:g}, {n})"
    return np.asarray(given), f"{d}: given ({n} values)"


def _checked_coord(d: str, values: Any, n: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf" or arr.shape != (n,):
        raise ValueError(
            f"coords[{d!r}]: got {arr.dtype} values of shape {arr.shape}; the {d} axis needs "
            f"{n} numbers (or START:STOP for a uniform grid)"
        )
    step = np.diff(arr.astype(np.float64))
    if not np.isfinite(arr).all() or not (np.all(step > 0) or np.all(step < 0)):
        raise ValueError(f"coords[{d!r}]: the values must be finite and strictly monotone")
    return arr
