"""Checking a ``pdesurrogates-h5`` file: structure, meaning, values and checksums.

:func:`validate` is the one entry point (``pdesurrogates validate``). The cheap part (the
structure and metadata, :func:`~pdesurrogates.datasets._structure.read_structure`) also
runs whenever a file is opened; the value scan and the deep checks run only here, never
on a training read.
"""

from __future__ import annotations

import os
from typing import Any

import h5py
import numpy as np

from pdesurrogates._files import check_interrupt
from pdesurrogates.datasets._schema import (
    ValidationReport,
    check_file,
    open_h5,
    reading,
)
from pdesurrogates.datasets._structure import read_structure
from pdesurrogates.errors import DatasetError, SchemaError

__all__ = ["metadata_only", "scan_values", "validate"]

_BLOCK_BYTES = 32 * 2**20
_READ_ERRORS = (OSError, RuntimeError, ValueError, KeyError, TypeError)


def validate(
    path: str | os.PathLike,
    *,
    check_values: bool = True,
    deep: bool = False,
    isolate: bool = False,
) -> ValidationReport:
    """Check that ``path`` is a complete, well-formed and meaningful ``pdesurrogates-h5`` file.

    Parameters
    ----------
    path : path-like
        The HDF5 file.
    check_values : bool
        Also read every field (streamed, about 32 MiB at a time) and report the first
        NaN/Inf and the first sample that cannot be read (a Fletcher32 checksum mismatch
        in a file written with checksums).
    deep : bool
        Also recompute the train statistics from the data and compare them with the stored
        ones (catches changed bytes the checksums cannot, in files without them). Implies
        ``check_values``.
    isolate : bool
        Read the file in a child process, so that a file which crashes HDF5 is reported as
        corrupt instead of killing this interpreter (what ``pdesurrogates validate`` does).

    Returns
    -------
    ValidationReport
        With ``notes`` for what does not make the file invalid (no checksums, a constant
        field, an empty valid/test split).

    Raises
    ------
    DatasetError
        The file is missing, special (a FIFO, a device), truncated, not HDF5, or a sample
        cannot be read; or HDF5 crashed reading it (with ``isolate=True``).
    SchemaError
        The file breaks the schema: every problem found is listed, each naming the object
        and the fix (foreign layout, wrong version, incomplete, mismatched shapes, bad
        statistics, coordinates, splits or parameters, links, unwritten chunks, NaN/Inf).
    """
    if isolate:
        from pdesurrogates.datasets._isolate import run_isolated

        return run_isolated("validate", path, {"check_values": check_values, "deep": deep})
    p = check_file(path)
    with reading(p, "validate it"), open_h5(p) as f:
        meta = read_structure(f, p)
        notes = list(meta["notes"])
        if not meta["checksums"]:
            notes.append(
                f"{p}: the fields carry no checksums (Fletcher32), so flipped bits in the "
                "data cannot be detected; regenerate the file with a current pdesurrogates "
                "to add them"
            )
        if check_values or deep:
            scan_values(f, p, meta)
        if deep:
            _check_stats(f, p, meta)
    return ValidationReport(
        path=str(path),
        n_samples=meta["n_samples"],
        fields={k: v.dims for k, v in meta["fields"].items()},
        shapes=meta["shapes"],
        params=sorted(meta["params"]),
        splits={k: len(v) for k, v in meta["splits"].items()},
        checked_values=check_values or deep,
        attrs=meta["attrs"],
        deep=deep,
        checksums=meta["checksums"],
        notes=notes,
    )


def metadata_only(path: str | os.PathLike, **_: Any) -> None:
    """The metadata part of :func:`validate` (the first phase of an isolated run)."""
    validate(path, check_values=False)


def scan_values(f: h5py.File, path: Any, meta: dict[str, Any] | None = None) -> None:
    """Read every field; raise on the first NaN/Inf or unreadable (corrupt) sample."""
    if meta is None:
        meta = read_structure(f, path)
    for name in meta["fields"]:
        ds = f[meta["field_paths"][name]]
        if ds.ndim == 0 or meta["fields"][name].dims[0] != "sample":
            _check_block(path, ds.name, _read(ds, path, name, None), 0, has_sample=False)
            continue
        per_sample = max(1, int(np.prod(ds.shape[1:])) * ds.dtype.itemsize)
        step = max(1, _BLOCK_BYTES // per_sample)
        for start in range(0, ds.shape[0], step):
            stop = min(start + step, ds.shape[0])
            block = _read(ds, path, name, (start, stop))
            _check_block(path, ds.name, block, start, has_sample=True)
            check_interrupt()  # a held-back Ctrl-C (DeferredInterrupt): after each block


def _read(ds: h5py.Dataset, path: Any, name: str, rows: tuple[int, int] | None) -> np.ndarray:
    """Read a block of samples; on failure, find and name the first sample that fails."""
    try:
        return ds[()] if rows is None else ds[rows[0] : rows[1]]
    except _READ_ERRORS as exc:
        if rows is None:
            raise DatasetError(
                f"{path}: field {name!r} ({ds.name}) is corrupt: it cannot be read "
                f"({exc}); regenerate the file or copy it again"
            ) from exc
        for i in range(*rows):
            try:
                ds[i]
            except _READ_ERRORS as exc_i:
                raise DatasetError(
                    f"{path}: sample {i} of field {name!r} ({ds.name}) is corrupt: it "
                    f"cannot be read ({exc_i}); a checksum mismatch means its bytes changed "
                    "on disk. Regenerate that sample or the file, or copy it again"
                ) from exc_i
        raise DatasetError(
            f"{path}: samples {rows[0]}..{rows[1] - 1} of field {name!r} cannot be read "
            f"({exc}); regenerate the file or copy it again"
        ) from exc


def _check_block(path, where: str, block: np.ndarray, start: int, *, has_sample: bool) -> None:
    finite = np.isfinite(block)
    if finite.all():
        return
    bad = np.argwhere(~finite)[0]
    at = tuple(int(i) for i in bad)
    if has_sample:
        at = (at[0] + start, *at[1:])
    kind = "NaN" if np.isnan(block[tuple(bad)]) else "Inf"
    raise SchemaError(
        f"{path}: {where} holds {kind} at index {at}; the simulation that "
        "produced it diverged or the file is damaged. Regenerate that sample or drop it"
    )


def _check_stats(f: h5py.File, path: Any, meta: dict[str, Any]) -> None:
    """Recompute the stored train statistics from the data and compare."""
    from pdesurrogates.datasets._writer import compute_stats

    train = meta["splits"].get("train")
    if train is None or not train.size:
        return
    for name, (mean, std) in meta["stats"].items():
        spec = meta["fields"][name]
        got_mean, got_std = compute_stats(f[meta["field_paths"][name]], spec.dims, train)
        scale = float(np.max(np.abs(mean))) + float(np.max(std)) + 1e-30
        for what, stored, got in (("mean", mean, got_mean), ("std", std, got_std)):
            if not np.allclose(stored, got, rtol=1e-9, atol=1e-12 * scale):
                raise SchemaError(
                    f"{path}: /stats/{name}/{what} is {np.asarray(stored).tolist()} but the "
                    f"train samples give {np.asarray(got).tolist()}: the data or the "
                    "statistics changed after the file was written. Regenerate the file or "
                    "copy it again"
                )
