"""Upgrading a ``pdesurrogates-h5`` file to the current schema version, in place.

:func:`migrate` (``pdesurrogates migrate FILE``) rewrites a version-1 file in the
version-2 layout beside it (a private ``.<name>.<pid>.<random>.partial``), validates the
new file and checks every value against the old one, and only then renames it over the
original (:func:`pdesurrogates._files.atomic_replace`). The original is untouched on any
failure and on Ctrl-C (raised after the block being copied or compared), and a file
another writer holds (its ``.lock``) is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

import pdesurrogates.datasets._layout as _layout
from pdesurrogates._files import (
    DeferredInterrupt,
    WriteLock,
    atomic_replace,
    check_interrupt,
    unique_partial,
)
from pdesurrogates._version import __version__
from pdesurrogates.datasets._schema import (
    DIM_ORDER,
    SCHEMA_VERSION,
    check_file,
    field_key,
    open_h5,
    param_key,
    reading,
)
from pdesurrogates.datasets._structure import read_structure
from pdesurrogates.datasets._validate import validate
from pdesurrogates.errors import DatasetError, SchemaError

__all__ = ["Migration", "migrate"]

_STANDARD_ATTRS = ("dims", "role", "units", "long_name", "kind", "bounds", "dist", "loc", "scale")
_SCALE_ATTRS = ("DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME")
_BLOCK_BYTES = 16 * 2**20


@dataclass
class Migration:
    """What :func:`migrate` did (or, with ``dry_run``, would do) to one file."""

    path: str
    from_version: int
    to_version: int
    changed: bool
    changes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if self.from_version == self.to_version:
            return f"{self.path}: already at schema version {self.to_version}; nothing to do"
        head = "migrated" if self.changed else "would migrate"
        lines = [f"{head} {self.path}: schema version {self.from_version} -> {self.to_version}"]
        return "\n".join(lines + [f"  {c}" for c in self.changes])


def migrate(path: str | os.PathLike, *, dry_run: bool = False) -> Migration:
    """Upgrade the dataset file ``path`` to the current schema version, in place.

    Parameters
    ----------
    path : path-like
        A ``pdesurrogates-h5`` file. A file already at the current version is left alone
        (``changed`` is False).
    dry_run : bool
        Only say what would change.

    Raises
    ------
    OutputError
        Another writer holds ``path`` (its ``.lock`` file exists).
    SchemaError, DatasetError
        The file is not a valid ``pdesurrogates-h5`` file, or its names cannot all be
        root variables (a field and a parameter with one name): nothing is changed.

    Examples
    --------
    >>> import os, tempfile
    >>> from pdesurrogates.datasets import migrate
    >>> from pdesurrogates.testing._fuzz_datasets import build_base
    >>> old = build_base(tempfile.mkdtemp(), version=1)
    >>> print(migrate(old, dry_run=True).changes[0])
    fields mask, u, v: /fields/<name> -> /<name> (root variables with their coordinates)
    >>> migrate(old).changed, migrate(old).changed
    (True, False)
    """
    p = check_file(path)
    with reading(p, "read it for migration"), open_h5(p) as f:
        meta = read_structure(f, p)
    version = meta["version"]
    plan = Migration(str(path), version, SCHEMA_VERSION, False)
    if version == SCHEMA_VERSION:
        return plan
    try:
        _layout.check_names(meta["fields"], meta["params"], meta["coords"])
    except ValueError as exc:
        raise SchemaError(
            f"{p}: cannot be migrated to schema version {SCHEMA_VERSION}: {exc} (rewrite it "
            "with DatasetWriter under new names); the file was not changed"
        ) from exc
    plan.changes = _changes(meta)
    if dry_run:
        return plan
    lock = WriteLock(p, command=f"pdesurrogates migrate {p}")
    lock.acquire()
    tmp = unique_partial(p)
    try:
        with reading(p, "migrate it"), DeferredInterrupt():  # Ctrl-C: after a block
            with h5py.File(p, "r") as src, h5py.File(tmp, "w", track_order=True) as dst:
                _rewrite(src, dst, meta)
            validate(tmp, check_values=True)
            _compare(p, tmp, meta)
        atomic_replace(tmp, p)
    finally:
        tmp.unlink(missing_ok=True)
        lock.release()
    plan.changed = True
    return plan


def _changes(meta: dict[str, Any]) -> list[str]:
    fields = ", ".join(meta["fields"])
    out = [f"fields {fields}: /fields/<name> -> /<name> (root variables with their coordinates)"]
    if meta["params"]:
        out.append(
            f"params {', '.join(meta['params'])}: /params/<name> -> /<name> (variables along "
            "sample; attribute bounds -> dist_bounds)"
        )
    out.append("root: schema_version 1 -> 2, complete stored as int8, Conventions and title added")
    out.append("coordinates: long_name and axis attributes added; values, splits, stats unchanged")
    return out


def _attrs(obj: h5py.HLObject) -> dict[str, Any]:
    return {k: v for k, v in obj.attrs.items() if k not in _SCALE_ATTRS}


def _rewrite(src: h5py.File, dst: h5py.File, meta: dict[str, Any]) -> None:
    """Write the version-2 layout of the version-1 file ``src`` into ``dst``."""
    for k, v in src.attrs.items():
        dst.attrs[k] = v
    dst.attrs["schema_version"] = SCHEMA_VERSION
    dst.attrs.setdefault("Conventions", "CF-1.8")
    dst.attrs.setdefault("title", str(meta["attrs"].get("dataset_name", "")) or "dataset")
    dst.attrs["history"] = f"migrated from schema version 1 by pdesurrogates {__version__}"
    dst.attrs["complete"] = np.int8(0)
    coords = {k: v for k, v in meta["coords"].items() if k != "sample"}
    units = {k: _layout_text(src[k].attrs["units"]) for k in coords if "units" in src[k].attrs}
    periodic = {k: bool(src[k].attrs.get("periodic", False)) for k in coords}
    scales = _layout.create_coords(dst, meta["n_samples"], coords, units, periodic)
    scales["sample"][...] = meta["coords"]["sample"]
    for name, ds in scales.items():
        for k, v in _attrs(src[name]).items():
            if k not in ("periodic", "units"):
                ds.attrs[k] = v
    for name, spec in meta["fields"].items():
        old = src[field_key(1, name)]
        comp = old.compression if old.compression in ("lzf", "gzip") else None
        new = _layout.create_field(dst, name, spec, old.shape, old.dtype, scales, comp)
        _copy_values(old, new)
        for k, v in _attrs(old).items():
            if k not in _STANDARD_ATTRS:
                new.attrs[k] = v
    for name, spec in meta["params"].items():
        old = src[param_key(1, name)]
        new = _layout.create_param(dst, name, spec, meta["n_samples"], scales)
        new[...] = meta["param_values"][name]
        for k, v in _attrs(old).items():
            if k not in _STANDARD_ATTRS:
                new.attrs[k] = v
    for name in src:  # splits, stats and any extra group or dataset, as they are
        if name not in ("fields", "params") and name not in DIM_ORDER:
            src.copy(src[name], dst, name)
    dst.attrs["complete"] = np.int8(1)


def _layout_text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _blocks(ds: h5py.Dataset):
    if ds.ndim == 0 or ds.shape[0] == 0:
        yield ()
        return
    per = max(1, int(np.prod(ds.shape[1:])) * ds.dtype.itemsize)
    step = max(1, _BLOCK_BYTES // per)
    for start in range(0, ds.shape[0], step):
        yield slice(start, min(start + step, ds.shape[0]))


def _copy_values(old: h5py.Dataset, new: h5py.Dataset) -> None:
    for block in _blocks(old):
        new[block] = old[block]
        check_interrupt()


def _compare(old_path: Path, new_path: Path, meta: dict[str, Any]) -> None:
    """Refuse the new file unless every value, split and statistic equals the old one."""
    with h5py.File(old_path, "r") as a, h5py.File(new_path, "r") as b:
        pairs = [(field_key(1, k), k) for k in meta["fields"]]
        pairs += [(param_key(1, k), k) for k in meta["params"]]
        pairs += [(k, k) for k in meta["coords"]]
        pairs += [(f"splits/{k}", f"splits/{k}") for k in meta["splits"]]
        stats = [f"stats/{k}/{s}" for k in meta["stats"] for s in ("mean", "std")]
        pairs += [(k, k) for k in stats]
        for old, new in pairs:
            x, y = a[old], b[new]
            same = x.shape == y.shape and x.dtype == y.dtype
            for block in _blocks(x) if same else ():
                same = same and np.array_equal(x[block], y[block])
                check_interrupt()
            if not same:
                raise DatasetError(
                    f"{old_path}: the migrated copy of /{old} differs from the original; the "
                    "original was kept unchanged. Run `pdesurrogates validate --deep` on it"
                )
