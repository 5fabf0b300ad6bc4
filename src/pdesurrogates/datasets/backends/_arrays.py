"""Plain arrays as a dataset: ``pdesurrogates import arrays``, ``from_arrays``, ``from_xarray``.

A user's own file holds arrays and nothing else: ``coeff`` and ``solution`` of shape
(64, 32, 32), say. :func:`infer_layout` is the one place that decides, for the command
and both Python functions, which axis holds the samples (the one every named array
shares, the leading one by default), which axes are spatial (``x``, ``y``, ``z`` in
order), which one (if any) holds channels, the grid coordinates and the per-sample
params (1-D arrays of length N). Anything it cannot decide is an error that lists the
candidates and the option that picks one. :meth:`ArrayPlan.write` then streams the
arrays through the one :class:`~pdesurrogates.datasets.DatasetWriter`, with a seeded
train/valid/test split and the train statistics.

Examples
--------
>>> import numpy as np, tempfile, os
>>> from pdesurrogates.datasets import from_arrays, open_dataset
>>> rng = np.random.default_rng(0)
>>> a, u = rng.normal(size=(2, 10, 8, 6))
>>> path = from_arrays({"a": a, "u": u}, roles={"a": "input", "u": "target"},
...                    path=os.path.join(tempfile.mkdtemp(), "mine.h5"))
>>> ds = open_dataset(path)
>>> len(ds), tuple(ds[0]["u"].shape), [len(ds.split(s)) for s in ("train", "valid", "test")]
(10, (1, 8, 6), [8, 1, 1])
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pdesurrogates._files import DeferredInterrupt, check_interrupt, check_not_input
from pdesurrogates._progress import ProgressBar, logger
from pdesurrogates.datasets._schema import FieldSpec, ParamSpec
from pdesurrogates.datasets._stats import contiguous_splits
from pdesurrogates.datasets._writer import DatasetWriter
from pdesurrogates.datasets.backends._array_layout import (
    ArrayPlan,
    FieldPlan,
    infer_layout,
)
from pdesurrogates.datasets.backends._array_stores import (
    ArrayStore,
    DictStore,
    Variable,
    XarrayStore,
    open_array_file,
)
from pdesurrogates.errors import DatasetError

__all__ = [
    "ArrayPlan",
    "from_arrays",
    "from_xarray",
    "import_arrays",
    "seeded_splits",
    "write_plan",
]

_BLOCK_BYTES = 32 * 2**20


def write_plan(
    plan: ArrayPlan,
    store: ArrayStore,
    path: str | os.PathLike,
    *,
    split: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int | None = 0,
    overwrite: bool = False,
    compression: str | None = None,
    progress: bool = True,
) -> Path:
    """Stream the arrays of ``store`` into a new ``pdesurrogates-h5`` file, as planned."""
    splits = seeded_splits(plan.n_samples, split, seed)
    writer = DatasetWriter(
        path,
        n_samples=plan.n_samples,
        coords=plan.coords,
        fields={k: _field_spec(fp) for k, fp in plan.fields.items()},
        params={k: _param_spec(v) for k, v in plan.params.items()},
        dataset_name=Path(path).stem,
        source={
            "importer": "arrays",
            "file": Path(store.where).name if store.inputs else store.kind,
            "format": store.kind,
            "sample_axis": {k: fp.sample_axis for k, fp in plan.fields.items()},
            "layout": plan.layout,
            "coords": plan.coord_notes,
        },
        units=plan.coord_units,
        compression=compression,
        overwrite=overwrite,
        inputs=store.inputs,
        dtype=plan.dtype,
    )
    try:
        with writer:
            _stream(plan, store, writer, progress)
            note = "contiguous blocks" if seed is None else f"random, seed {seed}"
            attrs = {"split_convention": f"{tuple(split)} of the samples ({note})"}
            return writer.finalize(splits=splits, extra_attrs=attrs)
    except BaseException as exc:
        unfinished = writer.partial.exists()
        writer.abort()
        if isinstance(exc, KeyboardInterrupt) and unfinished:
            logger.warning(
                "interrupted: nothing was written to %s (its unfinished partial file is removed)",
                path,
            )
        raise


def _stream(plan: ArrayPlan, store: ArrayStore, writer: DatasetWriter, progress: bool) -> None:
    n = plan.n_samples
    per_sample = sum(
        max(1, int(np.prod(fp.variable.shape)) // n) * fp.variable.dtype.itemsize
        for fp in plan.fields.values()
    )
    step = max(1, _BLOCK_BYTES // max(per_sample, 1))
    with ProgressBar(enabled=progress) as bar, DeferredInterrupt():
        task = bar.add_task(f"importing {Path(store.where).name}", total=n)
        for start in range(0, n, step):
            stop = min(n, start + step)
            block = {k: _read(store, fp, start, stop) for k, fp in plan.fields.items()}
            values = {k: store.read(v.name, np.s_[start:stop]) for k, v in plan.params.items()}
            for name, value in values.items():
                _check_finite(store, plan.params[name].name, value[:, None], start, "param")
            writer.write_batch(start, block, values)
            bar.advance(task, stop - start)
            check_interrupt()


def _read(store: ArrayStore, fp: FieldPlan, start: int, stop: int) -> np.ndarray:
    sel = tuple(
        slice(start, stop) if i == fp.sample_axis else slice(None) for i in range(fp.variable.ndim)
    )
    block = np.transpose(store.read(fp.variable.name, sel), fp.order)
    _check_finite(store, fp.variable.name, block, start, "field")
    return block


def _field_spec(fp: FieldPlan) -> FieldSpec:
    attrs = fp.variable.attrs
    return FieldSpec(
        dims=fp.dims,
        role=fp.role,
        units=str(attrs.get("units", "")),
        long_name=str(attrs.get("long_name", "")) or fp.name,
    )


def _param_spec(v: Variable) -> ParamSpec:
    return ParamSpec(
        units=str(v.attrs.get("units", "")), long_name=str(v.attrs.get("long_name", ""))
    )


def _check_finite(store: ArrayStore, name: str, block: np.ndarray, start: int, what: str):
    k = block.shape[0]
    finite = np.isfinite(block).reshape(k, -1).all(axis=1)
    if not finite.all():
        i = start + int(np.argmin(finite))
        raise DatasetError(
            f"{store.where}: {what} {store.label(name)} holds NaN or Inf at sample {i} "
            "(its index along the sample axis); repair or drop that sample before importing"
        )


def seeded_splits(
    n: int, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int | None = 0
) -> dict[str, np.ndarray]:
    """Train/valid/test indices: a seeded random partition (``seed=None``: blocks in order).

    >>> {k: v.tolist() for k, v in seeded_splits(5, (0.6, 0.2, 0.2), seed=None).items()}
    {'train': [0, 1, 2], 'valid': [3], 'test': [4]}
    >>> sorted(np.concatenate(list(seeded_splits(7, seed=1).values())).tolist())
    [0, 1, 2, 3, 4, 5, 6]
    """
    blocks = contiguous_splits(n, tuple(float(f) for f in fractions))
    if seed is None:
        return blocks
    perm = np.random.default_rng(seed).permutation(n)
    return {k: np.sort(perm[v]) for k, v in blocks.items()}


# --- the public entry points --------------------------------------------------------
def _run(
    store: ArrayStore,
    roles: Mapping[str, str],
    path: str | os.PathLike | None,
    *,
    dry_run: bool,
    progress: bool,
    split: Sequence[float],
    seed: int | None,
    overwrite: bool,
    compression: str | None,
    on_plan: Callable[[ArrayPlan], None] | None = None,
    **options: Any,
) -> Path | ArrayPlan:
    plan = infer_layout(store, roles, **options)
    if on_plan is not None:
        on_plan(plan)
    else:
        logger.info("%s", plan.summary())
        for note in plan.notes:
            logger.warning("%s", note)
    if dry_run:
        return plan
    if path is None:
        raise ValueError("path: give the output file (or dry_run=True to only see the plan)")
    return write_plan(
        plan,
        store,
        path,
        split=split,
        seed=seed,
        overwrite=overwrite,
        compression=compression,
        progress=progress,
    )


def from_arrays(
    arrays: Mapping[str, Any],
    roles: Mapping[str, str],
    *,
    path: str | os.PathLike | None = None,
    coords: Mapping[str, Any] | None = None,
    sample_axis: int | str | Mapping[str, int | str] | None = None,
    layout: str | None = None,
    dtype: Any = None,
    split: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int | None = 0,
    overwrite: bool = False,
    compression: str | None = None,
    progress: bool = False,
    dry_run: bool = False,
) -> Path | ArrayPlan:
    """Write in-memory arrays as a ``pdesurrogates-h5`` file (what ``import arrays`` does).

    Parameters
    ----------
    arrays : dict of str to array-like
        Numeric arrays (object, string and complex arrays are refused, naming the key).
    roles : dict of str to str
        ``"input"``, ``"target"`` (stored as role ``output``), ``"param"`` (one value
        per sample), ``"coefficient"`` or ``"state"`` for each array. 1-D arrays of
        length N without a role become params; any other array needs a role.
    path : path-like
        The new file (written atomically; an existing one needs ``overwrite=True``).
    coords : dict, optional
        Grid coordinates by axis (``x``, ``y``, ``z``, ``time``): an array, a
        ``(start, stop)`` pair or ``"start:stop"`` (uniform), or the key of an array in
        ``arrays``. Default: ``linspace(0, 1, n)``, reported as assumed.
    sample_axis : int, str or dict, optional
        The sample axis of every field, or ``{name: axis}``. Default: inferred (the
        leading axis when every field shares it).
    layout : {"channels-last", "channels-first", "spatial"}, optional
        Where a channel axis is (``spatial``: none). Default: inferred.
    dtype : optional
        The stored dtype of every field (float16, float32 or float64). Default: the
        source's dtype (integers as float64). A downcast is reported.
    split, seed : optional
        Train/valid/test fractions, split at random with ``seed`` (None: in order).
    dry_run : bool
        Only infer: return the :class:`ArrayPlan` and write nothing.

    Returns
    -------
    pathlib.Path or ArrayPlan
        The written file, or the plan when ``dry_run``.
    """
    store = DictStore(arrays)
    loose = [k for k in store.variables if k not in roles and store.variables[k].ndim != 1]
    if loose:
        raise ValueError(
            f"arrays {loose} have no role; give roles[name] = 'input' | 'target' | 'param' "
            "(1-D arrays of length N without a role become params)"
        )
    for name, v in store.variables.items():
        if not v.numeric:
            raise ValueError(
                f"arrays[{name!r}] has dtype {v.dtype}, not numbers (object, string and "
                "complex arrays are refused); give a float or integer array"
            )
    return _run(
        store,
        roles,
        path,
        coords=coords,
        sample_axis=sample_axis,
        layout=layout,
        dtype=dtype,
        split=split,
        seed=seed,
        overwrite=overwrite,
        compression=compression,
        progress=progress,
        dry_run=dry_run,
    )


def from_xarray(
    ds: Any,
    roles: Mapping[str, str],
    *,
    path: str | os.PathLike | None = None,
    **options: Any,
) -> Path | ArrayPlan:
    """Write an ``xarray.Dataset`` as a ``pdesurrogates-h5`` file.

    Its dim names decide the axes (a dim called ``sample``, ``member``, ``batch``, ...
    is the sample axis; ``time``/``t`` is time; ``component``/``channel`` holds
    channels; the others are x, y, z in order), its coordinates become the grid, and
    each variable's ``units`` and ``long_name`` are kept. Data variables without a role
    that are 1-D along the sample dim become params. The other options are those of
    :func:`from_arrays`.
    """
    import xarray as xr

    if not isinstance(ds, xr.Dataset):
        raise ValueError(f"ds: expected an xarray.Dataset, got {type(ds).__name__}")
    return _run(XarrayStore(ds), roles, path, **_defaults(options))


def _defaults(options: dict[str, Any]) -> dict[str, Any]:
    base = {
        "split": (0.8, 0.1, 0.1),
        "seed": 0,
        "overwrite": False,
        "compression": None,
        "progress": False,
        "dry_run": False,
    }
    unknown = set(options) - set(base) - {"coords", "sample_axis", "layout", "dtype", "on_plan"}
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {sorted(unknown)}")
    return {**base, **options}


def import_arrays(
    src: str | os.PathLike,
    output: str | os.PathLike | None,
    roles: Mapping[str, str],
    **options: Any,
) -> Path | ArrayPlan:
    """Convert a user's HDF5, ``.npz``, netCDF or zarr file (``pdesurrogates import arrays``).

    ``roles`` names the arrays to import (``{"coeff": "input", "solution": "target"}``;
    arrays in groups as ``"group/name"``); 1-D arrays of length N not named become params.
    The options are those of :func:`from_arrays`; ``output`` may be None with
    ``dry_run=True``. ``on_plan(plan)`` is called with the :class:`ArrayPlan` before
    anything is written (the command prints it as a table; by default it is logged).
    """
    options = _defaults(options)
    if output is not None:
        out = Path(output)
        check_not_input(out, [src], also=(str(out) + ".partial", str(out) + ".lock"))
    with open_array_file(src) as store:
        return _run(store, roles, output, **options)
