"""The xarray view of a ``pdesurrogates-h5`` file (named dims through dimension scales).

A version-2 file needs nothing of this module: ``xr.open_dataset(path, engine="h5netcdf")``
returns its fields and parameters as data variables with their coordinates.
:func:`open_xarray` adds validation, reads version-1 files too, and gives the same
Dataset for both versions.
"""

from __future__ import annotations

import os

import numpy as np
import xarray as xr

from pdesurrogates.datasets._schema import check_file, open_h5, reading
from pdesurrogates.datasets._structure import read_structure
from pdesurrogates.errors import DatasetError

__all__ = ["open_xarray"]


def open_xarray(path: str | os.PathLike, *, load: bool = False) -> xr.Dataset:
    """Open a file as one :class:`xarray.Dataset`: fields and params with named dims.

    The file is validated first. A version-2 file is what
    ``xr.open_dataset(path, engine="h5netcdf")`` reads; a version-1 file keeps its
    fields and parameters in groups, which are merged here with the root coordinates.
    Either way the result holds the fields, the parameters (prefixed ``param_``), the
    coordinates and the root attributes.

    Parameters
    ----------
    path : path-like
        The file.
    load : bool
        Read everything into memory and close the file (default: lazy). Loaded fields
        and parameters are checked for NaN/Inf, as :func:`open_dataset` checks each
        sample it reads: a damaged value raises :class:`DatasetError` naming the variable
        and the sample.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from pdesurrogates.datasets import DatasetWriter, FieldSpec
    >>> path = os.path.join(tempfile.mkdtemp(), "toy.h5")
    >>> x = np.linspace(0, 1, 4)
    >>> with DatasetWriter(path, n_samples=2, coords={"x": x, "y": x},
    ...                    fields={"u": FieldSpec(dims=("sample", "x", "y"))}) as w:
    ...     for i in range(2):
    ...         w.write(i, {"u": np.full((4, 4), float(i))})
    ...     _ = w.finalize(split=(0.5, 0.5, 0.0))
    >>> ds = open_xarray(path)
    >>> ds["u"].dims, float(ds["u"].sel(sample=1).mean())
    (('sample', 'x', 'y'), 1.0)
    >>> ds.close()
    """
    path = check_file(path)
    with reading(path, "open it with xarray"):
        return _open(path, load)


def _open(path, load: bool) -> xr.Dataset:
    with open_h5(path) as f:
        meta = read_structure(f, path)
    if meta["version"] == 1:
        merged, parts = _open_v1(path, meta)
    else:
        root = xr.open_dataset(path, engine="h5netcdf")
        parts = [root]
        keep = [*meta["fields"], *meta["params"]]
        merged = root[keep].rename({k: f"param_{k}" for k in meta["params"]})
    merged.attrs = {k: v for k, v in meta["attrs"].items() if not k.startswith("_")}
    if load:
        merged = merged.load()
        for p in parts:
            p.close()
        _check_finite(merged, path)
    else:
        merged.set_close(lambda: [p.close() for p in parts])
    return merged


def _open_v1(path, meta) -> tuple[xr.Dataset, list[xr.Dataset]]:
    """A version-1 file: fields and params live in groups, coordinates at the root."""
    has_params = len(meta["params"]) > 0
    root = xr.open_dataset(path, engine="h5netcdf")
    fields = xr.open_dataset(path, engine="h5netcdf", group="fields")
    parts = [fields.assign_coords(root.coords)]
    if has_params:
        params = xr.open_dataset(path, engine="h5netcdf", group="params")
        parts.append(
            params.rename({k: f"param_{k}" for k in params.data_vars}).assign_coords(
                sample=root.coords["sample"]
            )
        )
    merged = xr.merge(parts, compat="override", join="exact", combine_attrs="drop")
    return merged, [root, *parts]


def _check_finite(ds: xr.Dataset, path) -> None:
    """Refuse loaded data variables holding NaN/Inf, naming the variable and the sample."""
    for name, var in ds.data_vars.items():
        values = np.asarray(var.values)
        if not np.issubdtype(values.dtype, np.floating):
            continue
        bad = ~np.isfinite(values)
        if bad.any():
            where = np.argwhere(bad)[0]
            axis = var.dims.index("sample") if "sample" in var.dims else None
            at = f"sample {int(where[axis])}" if axis is not None else f"index {tuple(where)}"
            raise DatasetError(
                f"{path}: {name} holds NaN or Inf at {at}; the simulation that produced it "
                "diverged or the file is damaged. Run `pdesurrogates validate --deep` on it, "
                "then regenerate or drop that sample"
            )
