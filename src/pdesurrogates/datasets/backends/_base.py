"""What every importer backend shares: the ``Source`` description, the backend base class
and the streaming converter.

A foreign dataset is described by a :class:`Source`: the coordinates, the fields (as
:class:`FieldSpec` in our schema), the per-sample parameters and a ``read(start, stop)``
method returning a block of samples already mapped to our layout. :func:`convert`
streams any source through :class:`DatasetWriter` in blocks of bounded size, so files
larger than memory convert with a flat memory profile; the read-in-place view
(:func:`pdesurrogates.datasets.open_dataset` on a foreign file) reads through the same
``Source`` objects. An :class:`ImporterBackend` ties a format together: whether a path
looks like it (``guess_can_open``), how to open it as a ``Source`` and how to import it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import h5py
import numpy as np

from pdesurrogates._files import DeferredInterrupt, check_interrupt, check_not_input
from pdesurrogates._progress import ProgressBar, logger
from pdesurrogates.datasets._schema import (
    SCHEMA_NAME,
    SPATIAL_DIMS,
    FieldSpec,
    ParamSpec,
    open_error,
)
from pdesurrogates.datasets._writer import DatasetWriter, contiguous_splits
from pdesurrogates.errors import DatasetError, SchemaError

__all__ = [
    "ImporterBackend",
    "Source",
    "check_same_grid",
    "check_storage",
    "convert",
    "fill_input_output",
    "h5_read",
    "numeric_attrs",
    "open_source_h5",
]

_BLOCK_BYTES = 32 * 2**20  # source bytes read per block while converting


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
        raise open_error(p, exc, "download or copy it again") from exc


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
        One of the ``layouts`` of the backend that opened it.
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

    def metadata(self) -> dict[str, Any]:
        """The metadata dict of a ``pdesurrogates-h5`` file (as the reader holds it)."""
        n = self.n_samples
        coords = dict(self.coords)
        ids = np.arange(n, dtype=np.int64) if self.sample_ids is None else self.sample_ids
        coords["sample"] = np.asarray(ids, np.int64)
        splits = self.splits(n)
        if splits is None:
            splits = contiguous_splits(n)
        return {
            "n_samples": n,
            "spatial_dims": [d for d in SPATIAL_DIMS if d in coords],
            "coords": coords,
            "fields": dict(self.fields),
            "shapes": {k: self.field_shape(k) for k in self.fields},
            "params": dict(self.params),
            "param_values": {k: np.asarray(v, np.float64) for k, v in self.param_values.items()},
            "splits": {k: np.asarray(v, np.int64) for k, v in splits.items()},
            "stats": {},
            "attrs": {
                "schema": f"{self.layout} layout read in place, not {SCHEMA_NAME}",
                "schema_version": "n/a",
                "created_by": "",
                "dataset_name": self.dataset_name,
                "pde": self.pde,
                "source": str(self.path),
                "layout": self.layout,
                "n_samples": n,
                "complete": True,
                "split_convention": self.split_note or "contiguous 80/10/10 blocks",
            },
        }

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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

    Memory use is bounded by about ``3 * block_bytes`` whatever the source size. The output
    is written under its lock as :class:`DatasetWriter` does, and is never one of the source's
    files (:class:`~pdesurrogates.errors.OutputError`). On any error, and on Ctrl-C (raised
    as :class:`KeyboardInterrupt` after the block being copied), the unfinished
    ``output.partial`` is removed.
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
        inputs=_source_files(source),
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
            with ProgressBar(enabled=progress) as bar, DeferredInterrupt():
                task = bar.add_task(f"importing {source.path.name}", total=n)
                for start in range(0, n, step):
                    stop = min(n, start + step)
                    block = source.read(start, stop, sample_names) if sample_names else {}
                    values = {k: v[start:stop] for k, v in source.param_values.items()}
                    writer.write_batch(start, block, values)
                    bar.advance(task, stop - start)
                    check_interrupt()
            splits = source.splits(n)
            attrs = {
                "split_convention": source.split_note or "contiguous 80/10/10 blocks",
                **source.root_attrs,
            }
            if splits is None:
                return writer.finalize(split=(0.8, 0.1, 0.1), extra_attrs=attrs)
            return writer.finalize(splits=splits, extra_attrs=attrs)
    except BaseException as exc:
        unfinished = writer.partial.exists()
        writer.abort()
        if isinstance(exc, KeyboardInterrupt) and unfinished:
            logger.warning(
                "interrupted: nothing was written to %s (its unfinished partial file is removed)",
                output,
            )
        raise


def _source_files(source: Source) -> list[Path]:
    """Every file a source reads: its path and, for multi-file sources, each file."""
    return [source.path, *(Path(p) for p in getattr(source, "file_paths", None) or [])]


_GRID_NOTE = "not stored in the file: uniform linspace(0, 1, n) assumed"


def fill_input_output(src: Source, a_shape, u_shape, *, time_last: bool, where: str) -> None:
    """Fill coords and fields of a source holding an input ``a`` and an output ``u``.

    ``u`` is either on ``a``'s grid or a trajectory with one more (time) axis, last
    (``time_last``, MATLAB files) or right after the sample axis. The grid is the uniform
    ``linspace(0, 1, n)``: these formats do not store it.
    """
    if a_shape[0] != u_shape[0]:
        raise SchemaError(
            f"{src.path}: {where} hold {a_shape[0]} and {u_shape[0]} samples; they must match"
        )
    spatial = tuple(a_shape[1:])
    if not 1 <= len(spatial) <= 3:
        raise SchemaError(f"{src.path}: input has shape {a_shape}; expected (N, X[, Y, Z])")
    dims = SPATIAL_DIMS[: len(spatial)]
    u_spatial = u_shape[1:-1] if time_last else u_shape[2:]
    has_time = len(u_shape) == len(a_shape) + 1
    if not has_time and tuple(u_shape[1:]) != spatial:
        raise SchemaError(
            f"{src.path}: {where} have shapes {a_shape} and {u_shape}: neither the same grid "
            "nor a trajectory (one extra time axis)"
        )
    if has_time and tuple(u_spatial) != spatial:
        raise SchemaError(
            f"{src.path}: output {u_shape} does not have the input's grid {spatial} (a "
            f"trajectory is {'(N, X, ..., T)' if time_last else '(N, T, X, ...)'})"
        )
    src.n_samples = int(a_shape[0])
    for d, n in zip(dims, spatial, strict=True):
        src.coords[d] = np.linspace(0.0, 1.0, n)
    src.fields["a"] = FieldSpec(dims=("sample", *dims), role="input", long_name="input a")
    if has_time:
        nt = u_shape[-1] if time_last else u_shape[1]
        src.coords = {"time": np.arange(nt, dtype=np.float64), **src.coords}
        src.fields["u"] = FieldSpec(
            dims=("sample", "time", *dims), role="output", long_name="output trajectory u"
        )
    else:
        src.fields["u"] = FieldSpec(dims=("sample", *dims), role="output", long_name="output u")
    src.has_time = has_time
    src.info["grid"] = _GRID_NOTE


class ImporterBackend:
    """One foreign file format: how to recognise it, open it and import it.

    Subclass it in one module of :mod:`pdesurrogates.datasets.backends` and bind an
    instance to the module-level name ``BACKEND``: the registry finds it there (third-party
    packages register through the ``pdesurrogates.importers`` entry-point group or
    :func:`~pdesurrogates.datasets.backends.register_backend`). The class docstring is the
    help text of its ``pdesurrogates import <name>`` command.

    Attributes
    ----------
    name : str
        The ``pdesurrogates import`` sub-command and the ``backend=`` value.
    layouts : dict of str to str
        Every layout the backend reads, with a one-line description (used in errors).
    source_help, limit_help : str
        Help texts of the command's source argument and ``--limit`` option.
    """

    name: ClassVar[str] = ""
    layouts: ClassVar[dict[str, str]] = {}
    source_help: ClassVar[str] = "The source file."
    limit_help: ClassVar[str] = "Import only the first N samples."

    def guess_can_open(self, path: str | os.PathLike) -> bool:  # pragma: no cover
        """Whether ``path`` looks like this format (cheap; never raises)."""
        raise NotImplementedError

    def layout_of(self, path: str | os.PathLike) -> str | None:
        """The layout of ``path`` (a key of ``layouts``), or None if not this format."""
        return next(iter(self.layouts)) if self.guess_can_open(path) else None

    def open_source(
        self, path: str | os.PathLike, layout: str | None = None, *, reopen: bool = False
    ) -> Source:  # pragma: no cover
        """Open ``path`` as a :class:`Source`.

        ``reopen=True``: the file was opened and checked before (in another process);
        expensive consistency checks may be skipped.
        """
        raise NotImplementedError

    def import_file(
        self,
        src: str | os.PathLike,
        output: str | os.PathLike,
        *,
        fields: Sequence[str] | None = None,
        limit: int | None = None,
        overwrite: bool = False,
        compression: str | None = None,
        progress: bool = True,
    ) -> Path:
        """Convert ``src`` into a complete ``pdesurrogates-h5`` file at ``output``.

        ``output`` must not be ``src`` (nor, for a folder, one of its files): the source is
        never destroyed, ``overwrite`` or not.
        """
        out = Path(output)
        check_not_input(out, [src], also=(str(out) + ".partial", str(out) + ".lock"))
        with self.open_source(src) as source:
            return convert(
                source,
                output,
                fields=fields,
                limit=limit,
                overwrite=overwrite,
                compression=compression,
                progress=progress,
            )

    @property
    def help(self) -> str:
        """The command help: the class docstring."""
        import inspect

        return inspect.cleandoc(type(self).__doc__ or self.name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
