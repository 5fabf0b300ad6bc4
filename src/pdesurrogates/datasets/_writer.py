"""Writing ``pdesurrogates-h5`` files: atomic, resumable, one sample per chunk.

Before anything is written the writer takes the exclusive lock ``<path>.lock``
(:class:`pdesurrogates._files.WriteLock`): a second writer of the same path fails at once,
naming the holder, and a lock left by a killed writer is reported as stale. While it holds
the lock the writer works on ``<path>.partial`` (a name private to the lock holder, so an
interrupted run can be found and resumed) and renames it to ``<path>`` only in
:meth:`DatasetWriter.finalize`, after the splits and statistics are written and the root
attribute ``complete`` is set, and after the data are flushed to disk. A killed writer
therefore never leaves a file at ``path``, and an existing file at ``path`` is replaced
only by a complete one; ``resume=True`` reopens the partial file and writes only the
samples still missing. The output is never one of the writer's ``inputs``.

The file is written in schema version 2 (:mod:`pdesurrogates.datasets._layout`): every
field and parameter is a root variable with attached dimension scales, so plain
``xr.open_dataset(path, engine="h5netcdf")`` reads it. Field datasets are stored in the
dtype of the data written (or the ``dtype`` asked for), with one sample per chunk and
HDF5's Fletcher32 checksum (after the shuffle and compression filters when compression is
chosen), so a damaged chunk fails its read instead of returning wrong values. Ctrl-C during
:meth:`~DatasetWriter.finalize` stops it between statistics blocks (the partial file stays
resumable) or, once the file is being completed, right after the rename.
"""

from __future__ import annotations

import json
import os
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

import pdesurrogates.datasets._layout as _layout
from pdesurrogates._files import DeferredInterrupt, WriteLock, atomic_replace, check_not_input
from pdesurrogates._version import __version__
from pdesurrogates.datasets._schema import (
    DIM_ORDER,
    SCHEMA_NAME,
    SCHEMA_VERSION,
    SPATIAL_DIMS,
    FieldSpec,
    ParamSpec,
    _text,
    source_text,
)
from pdesurrogates.datasets._stats import compute_stats, contiguous_splits
from pdesurrogates.errors import DatasetError

__all__ = ["DatasetWriter", "compute_stats", "contiguous_splits"]

_PROGRESS = "_written"  # per-sample completion flags, removed by finalize()
_SIGNATURE = "_writer_signature"
# While a file is written, /fields/<name> and /params/<name> are soft links to the root
# variables, so code that reaches into ``writer.file`` with version-1 paths keeps working;
# finalize() removes them.
_ALIASES = ("fields", "params")


class DatasetWriter:
    """Write N samples of fields (and per-sample parameters) into a new dataset file.

    Parameters
    ----------
    path : path-like
        Destination. The data go to ``<path>.partial`` until :meth:`finalize`.
    n_samples : int
        Number of samples N.
    coords : mapping
        1-D coordinate arrays by dim name: ``x``, ``y``, ``z`` (spatial, in that order),
        optionally ``time`` and ``component``. An integer ``n`` instead of an array
        means ``n`` cell centres of the unit interval, ``(arange(n) + 0.5) / n`` (spacing
        ``h = 1/n``: the grid the generators and :mod:`pdesurrogates.uq.metrics` assume).
    fields : mapping of str to FieldSpec
        The fields to store; each one's dims must have coordinates (``sample`` is implicit).
    params : mapping of str to ParamSpec, optional
        Per-sample scalar parameters and their distributions.
    dataset_name, pde : str
        Descriptive root attributes.
    source : str or dict
        Generator name and parameters, or the imported file (stored as JSON text).
    units, periodic : mapping, optional
        Per-coordinate ``units`` and ``periodic`` attributes.
    compression : {None, "lzf", "gzip"}
        Optional filter (with byte shuffle). Chunks are always one sample, checksummed.
    resume : bool
        Continue an interrupted ``<path>.partial`` written with the same arguments. When
        there is none and ``path`` is already a complete file of the same arguments, the
        writer does nothing (:attr:`already_complete`; :meth:`finalize` returns ``path``).
    overwrite : bool
        Replace an existing complete file at ``path`` (only once the new one is complete).
    inputs : sequence of path-like
        Files the data come from: ``path`` (and its partial and lock files) must not be
        one of them, whatever ``overwrite`` says.
    command : str, optional
        What is writing, recorded in the lock file (default: the command line).
    dtype : dtype, mapping of str to dtype, or None
        Storage type of the fields: ``None`` (default) keeps the dtype of the data
        written (float64 stays float64; integers are stored as float64); ``float16``,
        ``float32`` or ``float64`` (or one per field name) casts, and a narrowing cast is
        logged as a warning naming the field and both dtypes.

    Raises
    ------
    OutputError
        ``path`` is one of ``inputs``, or another writer holds (or a dead one left) its lock.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from pdesurrogates.datasets import DatasetWriter, FieldSpec, open_dataset
    >>> path = os.path.join(tempfile.mkdtemp(), "toy.h5")
    >>> x = np.linspace(0, 1, 8)
    >>> with DatasetWriter(path, n_samples=4, coords={"x": x},
    ...                    fields={"u": FieldSpec(dims=("sample", "x"))}) as w:
    ...     for i in range(4):
    ...         w.write(i, {"u": np.sin((i + 1) * x)})
    ...     _ = w.finalize(split=(0.5, 0.25, 0.25))
    >>> ds = open_dataset(path)
    >>> len(ds), tuple(ds[1]["u"].shape)
    (4, (1, 8))
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        n_samples: int,
        coords: Mapping[str, Any] | None = None,
        fields: Mapping[str, FieldSpec],
        params: Mapping[str, ParamSpec] | None = None,
        dataset_name: str = "",
        pde: str = "",
        source: str | dict = "",
        units: Mapping[str, str] | None = None,
        periodic: Mapping[str, bool] | None = None,
        compression: str | None = None,
        resume: bool = False,
        overwrite: bool = False,
        inputs: Sequence[str | os.PathLike] = (),
        command: str | None = None,
        dtype: Any = None,
    ) -> None:
        self.path = Path(path)
        self.partial = Path(str(self.path) + ".partial")
        self.already_complete = False
        if not isinstance(n_samples, int | np.integer) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
        if compression not in (None, "lzf", "gzip"):
            raise ValueError(f"compression must be None, 'lzf' or 'gzip', got {compression!r}")
        if not fields:
            raise ValueError("fields must name at least one field")
        self.n_samples = int(n_samples)
        self.fields = {
            k: v if isinstance(v, FieldSpec) else FieldSpec(**v) for k, v in fields.items()
        }
        self.params = {
            k: v if isinstance(v, ParamSpec) else ParamSpec(**v) for k, v in (params or {}).items()
        }
        self.coords = _layout.parse_coords(coords, self.fields)
        _layout.check_names(self.fields, self.params, self.coords)
        for k, v in self.coords.items():
            if k == "sample" or k not in DIM_ORDER:
                raise ValueError(
                    f"coords: unknown coordinate {k!r}; give any of {DIM_ORDER[1:]} "
                    "(sample is implicit)"
                )
            if v.ndim != 1 or len(v) < 1:
                raise ValueError(f"coords[{k!r}] must be a non-empty 1-D array, got {v.shape}")
        spatial = [d for d in SPATIAL_DIMS if d in self.coords]
        if spatial != list(SPATIAL_DIMS[: len(spatial)]):
            raise ValueError(f"spatial coords must be x, (x, y) or (x, y, z); got {spatial}")
        self.spatial_dims = spatial
        for name, spec in self.fields.items():
            for d in spec.dims:
                if d != "sample" and d not in self.coords:
                    raise ValueError(f"field {name!r} uses dim {d!r}, which is not in coords")
        self.shapes = {
            name: tuple(self.n_samples if d == "sample" else len(self.coords[d]) for d in spec.dims)
            for name, spec in self.fields.items()
        }
        self.meta = {
            "dataset_name": dataset_name,
            "pde": pde,
            "source": source_text(source),
        }
        self.units = dict(units or {})
        self.periodic = dict(periodic or {})
        self.compression = compression
        per_field = isinstance(dtype, Mapping)
        if per_field and set(dtype) - set(self.fields):
            raise ValueError(f"dtype names unknown fields {sorted(set(dtype) - set(self.fields))}")
        self.dtypes = {
            k: _layout.field_dtype(dtype.get(k) if per_field else dtype, k) for k in self.fields
        }
        self._typed: set[str] = set()  # fields whose storage dtype is fixed
        self._warned: set[str] = set()
        self._signature = json.dumps(
            {
                "n_samples": self.n_samples,
                "fields": {k: [list(v.dims), v.role] for k, v in self.fields.items()},
                "params": sorted(self.params),
                "coords": {
                    k: [len(v), float(v[0]), float(v[-1])]
                    for k, v in self.coords.items()
                    if v.dtype.kind in "fiu"
                },
                "dtype": {k: str(v) for k, v in self.dtypes.items() if v is not None},
                **self.meta,
            },
            sort_keys=True,
        )
        self._last_flush = 0.0
        self._f: h5py.File | None = None
        self._lock = WriteLock(self.path, command=command, partial=self.partial)
        check_not_input(self.path, inputs, also=(self.partial, self._lock.path))
        self._lock.acquire()
        self._unlock = weakref.finalize(self, self._lock.release)
        try:
            self._start(resume, overwrite)
        except BaseException:
            self.close()
            raise

    def _start(self, resume: bool, overwrite: bool) -> None:
        """Under the lock: resume the partial file, find the work done, or start anew."""
        if resume and self.partial.exists():
            self._open_existing()
            return
        if resume and self.path.exists() and self._finished_matches():
            self.already_complete = True
            return
        if self.path.exists() and not overwrite:
            raise DatasetError(
                f"{self.path}: already exists; choose another output path or pass "
                "overwrite=True (--overwrite)"
            )
        self._create()  # a new file (also when resume=True finds nothing to resume)

    def _finished_matches(self) -> bool:
        """Whether ``path`` is a complete file written with this writer's arguments."""
        try:
            with h5py.File(self.path, "r") as f:
                attrs = f.attrs
                version = int(attrs.get("schema_version", -1))
                done = np.asarray(attrs.get("complete"))
                same = (
                    version == SCHEMA_VERSION
                    and done.shape == ()
                    and done.dtype.kind in "biu"
                    and bool(done)
                    and int(attrs.get("n_samples", -1)) == self.n_samples
                    and _text(attrs.get("source")) == self.meta["source"]
                    and all(
                        k in f and _text(f[k].attrs.get("kind", "")) == "field" for k in self.fields
                    )
                    and all(f[k].shape == v for k, v in self.shapes.items())
                )
        except (OSError, KeyError, TypeError, ValueError):
            return False
        if not same:
            raise DatasetError(
                f"{self.path}: already exists and was made with other arguments (source, "
                "number of samples or fields) or an older schema version, so --resume has "
                "nothing to continue. Choose another output path, or pass --overwrite "
                "without --resume"
            )
        return True

    # --- creation ---------------------------------------------------------------------
    def _create(self) -> None:
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        if self.partial.exists():
            self.partial.unlink()
        f = h5py.File(self.partial, "w", track_order=True)
        self._f = f
        f.attrs["schema"] = SCHEMA_NAME
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["Conventions"] = "CF-1.8"
        f.attrs["title"] = self.meta["dataset_name"] or self.path.stem
        f.attrs["dataset_name"] = self.meta["dataset_name"]
        f.attrs["n_samples"] = self.n_samples
        f.attrs["n_spatial_dims"] = len(self.spatial_dims)
        f.attrs["spatial_dims"] = np.array(self.spatial_dims, dtype=h5py.string_dtype())
        f.attrs["pde"] = self.meta["pde"]
        f.attrs["source"] = self.meta["source"]
        f.attrs["created_by"] = f"pdesurrogates {__version__}"
        f.attrs["complete"] = np.int8(0)
        f.attrs[_SIGNATURE] = self._signature
        scales = _layout.create_coords(f, self.n_samples, self.coords, self.units, self.periodic)
        self._scales = scales
        for name, spec in self.fields.items():
            dtype = self.dtypes[name] or np.dtype(np.float32)  # retyped by the first write
            _layout.create_field(f, name, spec, self.shapes[name], dtype, scales, self.compression)
        self._typed = {k for k, v in self.dtypes.items() if v is not None}
        for name, spec in self.params.items():
            _layout.create_param(f, name, spec, self.n_samples, scales)
        for group, names in zip(_ALIASES, (self.fields, self.params), strict=True):
            grp = f.create_group(group)
            for name in names:
                grp[name] = h5py.SoftLink(f"/{name}")
        f.create_dataset(_PROGRESS, shape=(self.n_samples,), dtype=np.uint8, fillvalue=0)
        f.flush()

    def _open_existing(self) -> None:
        try:
            f = h5py.File(self.partial, "r+")
        except OSError as exc:
            raise DatasetError(
                f"{self.partial}: the unfinished file cannot be reopened ({exc}); it was "
                "damaged when the writer stopped. Delete it and run again without --resume"
            ) from exc
        self._f = f
        sig = f.attrs.get(_SIGNATURE)
        if sig is None or _PROGRESS not in f:
            f.close()
            raise DatasetError(
                f"{self.partial}: not an unfinished pdesurrogates file; delete it or run "
                "without --resume"
            )
        if json.loads(sig) != json.loads(self._signature):
            f.close()
            raise DatasetError(
                f"{self.partial}: was started with different arguments (number of samples, "
                "fields, grid, dtype or source); rerun with the original arguments, or "
                "delete it and run without --resume"
            )
        self._scales = {d: f[d] for d in DIM_ORDER if d in f}
        self._typed = {
            k for k in self.fields if self.dtypes[k] is not None or f[k].id.get_num_chunks()
        }
        self._verify_written()

    # --- writing ----------------------------------------------------------------------
    @property
    def file(self) -> h5py.File:
        if self._f is None:
            raise DatasetError(f"{self.path}: the writer is closed")
        return self._f

    def missing(self) -> np.ndarray:
        """Indices of the samples not written yet (all of them for a new file)."""
        if self.already_complete:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(self.file[_PROGRESS][()] == 0)

    def _verify_written(self) -> None:
        """After an interruption, unmark samples whose data did not reach the disk.

        A killed process can leave a sample's flag on disk without its data (HDF5 caches
        metadata). Unwritten chunks read as the NaN fill value, so any sample with a
        non-finite value, or a chunk that fails its checksum, is written again.
        """
        f = self.file
        flags = f[_PROGRESS][()]
        for name, spec in self.fields.items():
            if spec.dims[0] == "sample":
                flags[~_layout.samples_ok(f[name])] = 0
        f[_PROGRESS][...] = flags
        f.flush()

    def _array(self, name: str, value: Any, where: str) -> np.ndarray:
        """``value`` as an array of field ``name``'s storage dtype (fixed by the first write)."""
        arr = np.asarray(value)
        natural = _layout.storage_dtype(arr, name, where)
        f = self.file
        if name not in self._typed:
            if f[name].dtype != natural:
                spec = self.fields[name]
                _layout.retype_field(f, name, spec, natural, self._scales, self.compression)
            self._typed.add(name)
        target = f[name].dtype
        if name not in self._warned and _layout.is_downcast(arr.dtype, target):
            self._warned.add(name)
            why = (
                f"dtype={target} was asked for"
                if self.dtypes[name] is not None
                else "the first data written had that dtype"
            )
            _layout.warn_downcast(name, arr.dtype, target, why)
        return arr.astype(target, copy=False)

    def write(
        self,
        index: int,
        fields: Mapping[str, Any],
        params: Mapping[str, float] | None = None,
    ) -> None:
        """Write sample ``index``: every field with a sample dim, and every parameter."""
        f = self.file
        if not 0 <= int(index) < self.n_samples:
            raise IndexError(f"sample index {index} outside [0, {self.n_samples})")
        expected = {k for k, s in self.fields.items() if s.dims[0] == "sample"}
        if set(fields) != expected:
            raise ValueError(
                f"sample {index}: got fields {sorted(fields)}, expected {sorted(expected)}"
            )
        arrays = {}
        for name, value in fields.items():
            arr = np.asarray(value)
            want = self.shapes[name][1:]
            if arr.shape != want:
                raise ValueError(
                    f"sample {index}: field {name!r} has shape {arr.shape}, expected {want} "
                    f"(dims {self.fields[name].dims[1:]})"
                )
            _layout.check_finite_samples(arr[None], name, int(index))
            arrays[name] = arr
        params = dict(params or {})
        if set(params) != set(self.params):
            raise ValueError(
                f"sample {index}: got params {sorted(params)}, expected {sorted(self.params)}"
            )
        for name, arr in arrays.items():
            f[name][index] = self._array(name, arr, f"sample {index}")
        for name, value in params.items():
            f[name][index] = float(value)
        f[_PROGRESS][index] = 1
        now = time.monotonic()
        if now - self._last_flush > 0.5:  # bound the work an interruption can lose
            f.flush()
            self._last_flush = now

    def write_batch(
        self,
        start: int,
        fields: Mapping[str, Any],
        params: Mapping[str, Any] | None = None,
    ) -> None:
        """Write the contiguous samples ``start, ..., start + k - 1`` in one call per field.

        The same checks as :meth:`write` (field and parameter names, shapes, finite
        values); ``fields[name]`` has shape ``(k, ...)`` and ``params[name]`` shape ``(k,)``.
        """
        f = self.file
        start = int(start)
        expected = {k for k, s in self.fields.items() if s.dims[0] == "sample"}
        if set(fields) != expected:
            raise ValueError(
                f"samples from {start}: got fields {sorted(fields)}, expected {sorted(expected)}"
            )
        arrays = {name: np.asarray(value) for name, value in fields.items()}
        params = {k: np.asarray(v, dtype=np.float64) for k, v in (params or {}).items()}
        if set(params) != set(self.params):
            raise ValueError(
                f"samples from {start}: got params {sorted(params)}, expected {sorted(self.params)}"
            )
        lengths = {a.shape[0] if a.ndim else -1 for a in (*arrays.values(), *params.values())}
        if len(lengths) != 1 or -1 in lengths:
            raise ValueError(
                f"samples from {start}: fields and params must share one leading sample axis; "
                f"got lengths {sorted(lengths)}"
            )
        k = lengths.pop()
        if not (0 <= start and start + k <= self.n_samples):
            raise IndexError(f"samples {start}..{start + k - 1} outside [0, {self.n_samples})")
        for name, arr in arrays.items():
            want = (k, *self.shapes[name][1:])
            if arr.shape != want:
                raise ValueError(
                    f"samples {start}..{start + k - 1}: field {name!r} has shape {arr.shape}, "
                    f"expected {want} (dims {self.fields[name].dims})"
                )
            _layout.check_finite_samples(arr, name, start)
        for name, value in params.items():
            if value.shape != (k,):
                raise ValueError(
                    f"samples from {start}: param {name!r} has shape {value.shape}, expected ({k},)"
                )
        if k == 0:
            return
        for name, arr in arrays.items():
            f[name][start : start + k] = self._array(name, arr, f"samples from {start}")
        for name, value in params.items():
            f[name][start : start + k] = value
        f[_PROGRESS][start : start + k] = 1
        now = time.monotonic()
        if now - self._last_flush > 0.5:
            f.flush()
            self._last_flush = now

    def write_static(self, name: str, value: Any) -> None:
        """Write a field without a sample dim (a grid, a mask, a forcing shared by all)."""
        spec = self.fields[name]
        if spec.dims[0] == "sample":
            raise ValueError(f"field {name!r} has a sample dim; use write()")
        arr = np.asarray(value)
        if arr.shape != self.shapes[name]:
            raise ValueError(f"field {name!r}: shape {arr.shape}, expected {self.shapes[name]}")
        if not np.isfinite(arr).all():
            raise DatasetError(f"field {name!r} (no sample dim) holds NaN or Inf; fix the data")
        self.file[name][...] = self._array(name, arr, f"field {name!r}")

    # --- finishing --------------------------------------------------------------------
    @DeferredInterrupt()
    def finalize(
        self,
        *,
        splits: Mapping[str, Sequence[int]] | None = None,
        split: Sequence[float] = (0.8, 0.1, 0.1),
        extra_attrs: Mapping[str, Any] | None = None,
    ) -> Path:
        """Write splits and train statistics, mark the file complete and move it in place.

        Parameters
        ----------
        splits : mapping, optional
            Explicit index arrays for ``train`` / ``valid`` / ``test`` (any subset).
        split : 3 floats
            Otherwise, fractions of contiguous sample blocks for train / valid / test.
        extra_attrs : mapping, optional
            More root attributes (e.g. a generator's settings).
        """
        if self.already_complete:
            self.close()
            return self.path
        f = self.file
        missing = self.missing()
        if len(missing):
            raise DatasetError(
                f"{self.partial}: {len(missing)} of {self.n_samples} samples are not written "
                f"yet (first: {missing[:5].tolist()}); write them before finalize()"
            )
        unwritten = [
            k
            for k, s in self.fields.items()
            if s.dims[0] != "sample" and not f[k].id.get_num_chunks()
        ]
        if unwritten:
            raise DatasetError(
                f"{self.partial}: field(s) {unwritten} have no sample dim and were never "
                "written; call write_static(name, value) for each before finalize()"
            )
        if splits is None:
            splits = contiguous_splits(self.n_samples, split)
        unknown = set(splits) - {"train", "valid", "test"}
        if unknown:
            raise ValueError(f"splits: unknown names {sorted(unknown)}; use train/valid/test")
        if "splits" in f:
            del f["splits"]
        sgrp = f.create_group("splits")
        for name, idx in splits.items():
            idx = np.asarray(idx, dtype=np.int64)
            if idx.size and (idx.min() < 0 or idx.max() >= self.n_samples):
                raise ValueError(f"splits[{name!r}] holds indices outside [0, {self.n_samples})")
            sgrp.create_dataset(name, data=idx)
        if "stats" in f:
            del f["stats"]
        stgrp = f.create_group("stats")
        train = np.asarray(splits.get("train", np.arange(self.n_samples)), dtype=np.int64)
        if len(train):
            for name, spec in self.fields.items():
                mean, std = compute_stats(f[name], spec.dims, train)
                g = stgrp.create_group(name)
                g.create_dataset("mean", data=np.asarray(mean, dtype=np.float64))
                g.create_dataset("std", data=np.asarray(std, dtype=np.float64))
        for k, v in (extra_attrs or {}).items():
            f.attrs[k] = v
        del f[_PROGRESS]
        for group in _ALIASES:
            if group in f:
                del f[group]
        del f.attrs[_SIGNATURE]
        f.attrs["complete"] = np.int8(1)
        f.flush()
        f.close()
        self._f = None
        atomic_replace(self.partial, self.path)
        self._unlock()
        return self.path

    def close(self) -> None:
        """Close the partial file without finalising (it stays resumable) and unlock."""
        try:
            if self._f is not None:
                f, self._f = self._f, None
                if f.id.valid:
                    f.flush()
                    f.close()
        finally:
            self._unlock()

    def abort(self) -> None:
        """Close and delete the partial file, then unlock (the destination is untouched)."""
        try:
            if self._f is not None:
                f, self._f = self._f, None
                f.close()
            self.partial.unlink(missing_ok=True)
        finally:
            self._unlock()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
