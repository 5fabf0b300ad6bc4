"""Shared machinery of the importers: the ``Source`` description and the streaming converter.

Every supported community layout is described by a :class:`Source`: the coordinates, the
fields (as :class:`FieldSpec` in our schema), the per-sample parameters and a
``read(start, stop)`` method returning a block of samples already mapped to our layout.
:func:`convert` streams any source through :class:`DatasetWriter` in blocks of bounded
size, so files larger than memory convert with a flat memory profile; the direct
read-only view (:mod:`pdesurrogates.datasets._import_open`) reads through the same
``Source`` objects.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pdesurrogates.datasets._schema import SPATIAL_DIMS, FieldSpec, ParamSpec
from pdesurrogates.datasets._writer import DatasetWriter
from pdesurrogates.errors import DatasetError, SchemaError

__all__ = [
    "LAYOUTS",
    "Source",
    "check_same_grid",
    "convert",
    "h5_read",
    "numeric_attrs",
    "open_source_h5",
    "unknown_layout",
]

#: Every layout the importers recognise, with a one-line description (used in errors).
LAYOUTS: dict[str, str] = {
    "pdebench-tensor": "PDEBench single-array file: 'tensor' (N, T, X[, Y, Z]) + "
    "'x-coordinate', 't-coordinate'",
    "pdebench-darcy": "PDEBench 2D Darcy: 'nu' (N, X, Y), 'tensor' (N, 1, X, Y), attr 'beta'",
    "pdebench-cfd": "PDEBench compressible flow: 'density', 'pressure', 'Vx'[, 'Vy', 'Vz']",
    "pdebench-groups": "PDEBench one group per sample: '0000/data' (T, X[, Y], C), "
    "'0000/grid/{x,y,t}'",
    "pdebench-ns": "PDEBench 2D incompressible NS: 'velocity', 'particles', 'force', 't'",
    "the-well": "The Well: 't0_fields'/'t1_fields'/'t2_fields', 'dimensions', 'scalars', "
    "'boundary_conditions' (a file or a folder with train/valid/test)",
    "fno-mat": "FNO .mat (MATLAB v5 or v7.3): 'coeff'/'sol' (Darcy) or 'a'/'u'[/'t']",
    "neuralop-pt": "neuraloperator .pt: a dict with tensors 'x' and 'y' (and e.g. 'visc')",
}

_BLOCK_BYTES = 32 * 2**20  # source bytes read per block while converting


def unknown_layout(
    path: str | os.PathLike,
    found: str,
    expected: Sequence[str] | None = None,
    *,
    other: str | None = None,
):
    """The error for a file whose layout is not recognised.

    ``other``: a layout the file does match, for a hint at the right importer.
    """
    names = list(expected or LAYOUTS)
    lines = "; ".join(f"{k} ({LAYOUTS[k]})" for k in names)
    if other:
        command = "pdebench" if other.startswith("pdebench") else other
        todo = f"This looks like a {other} file: use `pdesurrogates import {command}`"
    else:
        todo = "Check the file, or write your own converter with DatasetWriter"
    return SchemaError(
        f"{path}: unknown layout: found {found}. Recognised layouts: {lines}. {todo}"
    )


def open_source_h5(path: str | os.PathLike) -> h5py.File:
    """Open a foreign HDF5 file read-only with clear errors for missing/truncated files."""
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"{p}: no such file")
    if p.is_dir():
        raise DatasetError(f"{p}: is a directory, expected an HDF5 file")
    try:
        return h5py.File(p, "r")
    except OSError as exc:
        size = p.stat().st_size
        raise DatasetError(
            f"{p}: cannot open as HDF5 ({size} bytes; {exc}). The file is truncated, corrupt "
            "or not HDF5; download or copy it again"
        ) from exc


def check_storage(path, ds: h5py.Dataset) -> None:
    """Raise if a contiguous dataset's bytes extend past the end of the file (truncation)."""
    try:
        offset = ds.id.get_offset()
    except Exception:  # chunked / compact: checked when read
        return
    if offset is None:
        return
    end = offset + ds.id.get_storage_size()
    size = Path(path).stat().st_size
    if end > size:
        raise DatasetError(
            f"{path}: dataset {ds.name} ends at byte {end} but the file has {size} bytes: the "
            "file is truncated; download or copy it again"
        )


def h5_read(path, ds: h5py.Dataset, sel: Any) -> np.ndarray:
    """``ds[sel]`` with read failures turned into :class:`DatasetError` naming the object."""
    try:
        return ds[sel]
    except (OSError, RuntimeError) as exc:
        raise DatasetError(
            f"{path}: cannot read {ds.name} ({exc}); the file is truncated or damaged. "
            "Download or copy it again"
        ) from exc


def numeric_attrs(attrs: Mapping[str, Any], skip: Sequence[str] = ()) -> dict[str, float]:
    """Scalar numeric attributes (PDE parameters such as ``beta``, ``Nu``, ``eta``)."""
    out: dict[str, float] = {}
    for k, v in attrs.items():
        if k in skip:
            continue
        arr = np.asarray(v)
        if arr.dtype.kind in "fiu" and arr.size == 1 and arr.dtype.kind != "b":
            out[str(k)] = float(arr.reshape(()))
    return out


def check_same_grid(path, what: str, ref: np.ndarray, values: np.ndarray, sample: str) -> None:
    """Raise if a per-sample grid differs from the first sample's."""
    if ref.shape != values.shape or not np.array_equal(ref, values):
        raise SchemaError(
            f"{path}: grids differ across samples: {what} of sample {sample} differs from "
            "that of the first sample (first offending sample). Our schema stores one shared "
            "grid; import the samples with equal grids separately"
        )


class Source:
    """A foreign dataset described in our schema's terms (subclasses fill the attributes).

    Attributes
    ----------
    path : Path
    layout : str
        One of :data:`LAYOUTS`.
    n_samples : int
    coords : dict of str to ndarray
        ``time``, ``x``, ``y``, ``z``, ``component`` as needed.
    fields : dict of str to FieldSpec
    params : dict of str to ParamSpec
    param_values : dict of str to ndarray (n_samples,)
    sample_ids : ndarray (n_samples,) of int64
    """

    layout = ""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.n_samples = 0
        self.coords: dict[str, np.ndarray] = {}
        self.fields: dict[str, FieldSpec] = {}
        self.params: dict[str, ParamSpec] = {}
        self.param_values: dict[str, np.ndarray] = {}
        self.sample_ids: np.ndarray | None = None
        self.units: dict[str, str] = {}
        self.periodic: dict[str, bool] = {}
        self.field_attrs: dict[str, dict[str, Any]] = {}
        self.dataset_name = self.path.stem
        self.pde = ""
        self.info: dict[str, Any] = {}
        self.split_note = ""
        self.root_attrs: dict[str, Any] = {}
        self.aliases: dict[str, list[str]] = {}  # source name -> our field names

    # --- to implement -----------------------------------------------------------------
    def read(self, start: int, stop: int, names: Sequence[str]) -> dict[str, np.ndarray]:
        """Samples ``start:stop`` of the sample-varying fields ``names``: float32 arrays."""
        raise NotImplementedError

    def static(self, name: str) -> np.ndarray:
        """A field without a sample dim."""
        raise NotImplementedError(name)

    def splits(self, n: int) -> dict[str, np.ndarray] | None:
        """The layout's conventional splits of the first ``n`` samples (None: default)."""
        return None

    def write_extras(self, f: h5py.File, n: int) -> None:
        """Copy extra metadata (group keys, configs, boundary conditions) into ``f``."""

    def close(self) -> None:
        """Release file handles."""

    # --- helpers ----------------------------------------------------------------------
    def sample_bytes(self, names: Sequence[str]) -> int:
        total = 0
        for name in names:
            spec = self.fields[name]
            if spec.dims[0] == "sample":
                total += 4 * int(np.prod([len(self.coords[d]) for d in spec.dims[1:]]))
        return max(total, 1)

    def field_shape(self, name: str) -> tuple[int, ...]:
        spec = self.fields[name]
        return tuple(self.n_samples if d == "sample" else len(self.coords[d]) for d in spec.dims)

    def select(self, fields: Sequence[str] | None) -> list[str]:
        """Validate a requested field list (None: all) against the available fields.

        Names as in our file, or as in the source (see ``aliases``: e.g. ``nu`` for the
        Darcy field ``a``, ``Vx`` for ``velocity``, a rank-2 Well field's name for its rows).
        """
        if fields is None:
            return list(self.fields)
        fields = list(fields)
        if not fields:
            raise ValueError("fields: give at least one field name")
        chosen: list[str] = []
        missing = []
        for name in fields:
            targets = [name] if name in self.fields else self.aliases.get(name, [])
            if not targets:
                missing.append(name)
            chosen += [t for t in targets if t not in chosen]
        if missing:
            alias = (
                " (source names accepted: "
                + ", ".join(f"{k} -> {'/'.join(v)}" for k, v in self.aliases.items())
                + ")"
                if self.aliases
                else ""
            )
            raise DatasetError(
                f"{self.path}: no field(s) {missing} in this {self.layout} file; available "
                f"fields: {list(self.fields)}{alias}"
            )
        return chosen

    def read_rows(self, rows: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
        """Arbitrary sample rows (any order, duplicates allowed), reading contiguous runs."""
        rows = np.asarray(rows, dtype=np.int64)
        names = [n for n in names if self.fields[n].dims[0] == "sample"]
        if not len(rows):
            return {n: np.empty((0, *self.field_shape(n)[1:]), np.float32) for n in names}
        uniq, inverse = np.unique(rows, return_inverse=True)
        breaks = np.flatnonzero(np.diff(uniq) != 1) + 1
        parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
        for run in np.split(uniq, breaks):
            block = self.read(int(run[0]), int(run[-1]) + 1, names)
            for n in names:
                parts[n].append(block[n])
        return {n: np.concatenate(parts[n])[inverse] for n in names}

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _progress_bar(enabled: bool, total: int, description: str):
    from pdesurrogates.datasets._generate import _progress

    return _progress(enabled, total, 0, description)


def convert(
    source: Source,
    output: str | os.PathLike,
    *,
    fields: Sequence[str] | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    compression: str | None = None,
    progress: bool = True,
    block_bytes: int = _BLOCK_BYTES,
) -> Path:
    """Stream ``source`` into a complete ``pdesurrogates-h5`` file at ``output``.

    Memory use is bounded by about ``3 * block_bytes`` whatever the source size. On any
    error the unfinished ``output.partial`` is removed.
    """
    if limit is not None and (not isinstance(limit, int | np.integer) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    names = source.select(fields)
    n = source.n_samples if limit is None else min(int(limit), source.n_samples)
    if n < 1:
        raise DatasetError(f"{source.path}: holds no samples")
    used = {d for name in names for d in source.fields[name].dims}
    coords = {d: v for d, v in source.coords.items() if d in used or d in SPATIAL_DIMS}
    specs = {name: source.fields[name] for name in names}
    sample_names = [k for k in names if specs[k].dims[0] == "sample"]
    writer = DatasetWriter(
        output,
        n_samples=n,
        coords=coords,
        fields=specs,
        params=source.params,
        dataset_name=source.dataset_name,
        pde=source.pde,
        source={
            "importer": source.layout,
            "file": source.path.name,
            **source.info,
            **({"limit": n} if n < source.n_samples else {}),
        },
        units={k: v for k, v in source.units.items() if k in coords},
        periodic={k: v for k, v in source.periodic.items() if k in coords},
        compression=compression,
        overwrite=overwrite,
    )
    try:
        with writer:
            f = writer.file
            for name in names:
                if specs[name].dims[0] != "sample":
                    writer.write_static(name, source.static(name))
                for k, v in source.field_attrs.get(name, {}).items():
                    f["fields"][name].attrs[k] = v
            if source.sample_ids is not None:
                f["sample"][...] = np.asarray(source.sample_ids[:n], dtype=np.int64)
            source.write_extras(f, n)
            step = max(1, block_bytes // source.sample_bytes(sample_names))
            bar, task = _progress_bar(progress, n, f"importing {source.path.name}")
            with bar:
                for start in range(0, n, step):
                    stop = min(n, start + step)
                    block = source.read(start, stop, sample_names) if sample_names else {}
                    values = {k: v[start:stop] for k, v in source.param_values.items()}
                    writer.write_batch(start, block, values)
                    bar.advance(task, stop - start)
            splits = source.splits(n)
            attrs = {
                "split_convention": source.split_note or "contiguous 80/10/10 blocks",
                **source.root_attrs,
            }
            if splits is None:
                return writer.finalize(split=(0.8, 0.1, 0.1), extra_attrs=attrs)
            return writer.finalize(splits=splits, extra_attrs=attrs)
    except BaseException:
        writer.close()
        writer.partial.unlink(missing_ok=True)
        raise
