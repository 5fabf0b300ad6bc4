"""A text summary of a dataset file: the library side of ``pdesurrogates info``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from pdesurrogates.datasets._schema import open_h5, reading, refuse_special
from pdesurrogates.datasets._structure import read_structure
from pdesurrogates.datasets._validate import validate
from pdesurrogates.datasets.backends import guess_backend
from pdesurrogates.errors import DatasetError

__all__ = ["describe", "file_metadata", "metadata_only"]


def file_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The structure of a dataset file (ours, or a foreign file read in place).

    The dict holds ``n_samples``, ``spatial_dims``, ``coords``, ``fields`` (FieldSpec),
    ``shapes``, ``params`` (ParamSpec), ``param_values``, ``splits``, ``stats`` and the
    root ``attrs``. No field values are read.
    """
    p = Path(path)
    refuse_special(p)
    with reading(p, "read its metadata"):
        backend = guess_backend(p)
        if backend is not None:
            with backend.open_source(p) as source:
                return source.metadata()
        with open_h5(p) as f:
            return read_structure(f, p)


def metadata_only(path: str | os.PathLike, *, check: bool = False, **_: Any) -> None:
    """The metadata part of :func:`describe` (the first phase of an isolated run)."""
    if check:
        validate(path, check_values=False)
    file_metadata(path)


def describe(path: str | os.PathLike, *, check: bool = False, isolate: bool = False) -> str:
    """An ``ncdump -h``-like text summary of a dataset file.

    Parameters
    ----------
    path : path-like
        A ``pdesurrogates-h5`` file, or a foreign file an importer backend recognises.
    check : bool
        Also scan every value for NaN/Inf (:func:`~pdesurrogates.datasets.validate`).
    isolate : bool
        Read the file in a child process: a file that crashes HDF5 raises
        :class:`~pdesurrogates.errors.DatasetError` instead of killing this interpreter
        (what ``pdesurrogates info`` does).

    Examples
    --------
    >>> import os, tempfile
    >>> from pdesurrogates.datasets import DatasetWriter, FieldSpec, describe
    >>> path = os.path.join(tempfile.mkdtemp(), "d.h5")
    >>> with DatasetWriter(path, n_samples=2, coords={"x": [0.0, 1.0]},
    ...                    fields={"u": FieldSpec(("sample", "x"))}) as w:
    ...     w.write_batch(0, {"u": [[1.0, 2.0], [3.0, 4.0]]})
    ...     _ = w.finalize()
    >>> print(next(line for line in describe(path).splitlines() if "u(sample" in line))
      float64 u(sample, x)  shape (2, 2)  role=output  'u'
    """
    if isolate:
        from pdesurrogates.datasets._isolate import run_isolated

        return run_isolated("describe", path, {"check": check})
    report = validate(path, check_values=check) if check else None
    meta = file_metadata(path)
    with reading(path, "describe it"):
        return _describe(path, meta, report)


def _describe(path, meta: dict[str, Any], report) -> str:
    attrs = meta["attrs"]
    if "schema" not in attrs or "complete" not in attrs:
        raise DatasetError(f"{path}: has no schema attributes; it cannot be described")
    version = attrs["schema_version"]
    upgrade = "; `pdesurrogates migrate` upgrades it" if meta.get("version") == 1 else ""
    lines = [f"{path}  (schema {attrs['schema']} v{version}{upgrade})"]
    lines.append(f"  dataset_name: {attrs.get('dataset_name', '')}")
    lines.append(f"  pde: {attrs.get('pde', '')}")
    source = attrs.get("source", "")
    try:
        source = json.dumps(json.loads(source), sort_keys=True)
    except (TypeError, ValueError):
        pass
    lines.append(f"  source: {source}")
    lines.append(f"  created_by: {attrs.get('created_by', '')}")
    lines.append(f"  complete: {bool(attrs['complete'])}")
    lines.append(
        "  NaN/Inf: "
        + (
            "none (every value was scanned)"
            if report
            else "not checked (run with --check to scan every value)"
        )
    )
    lines.append("dimensions:")
    for name, values in meta["coords"].items():
        values = np.asarray(values)
        rng = f"[{values.min():.6g}, {values.max():.6g}]" if values.dtype.kind in "fiu" else ""
        lines.append(f"  {name} = {len(values)}  {rng}")
    lines += _fields_and_params(meta)
    if report is not None and report.notes:
        lines.append("notes:")
        lines += [f"  {n}" for n in report.notes]
    return "\n".join(lines)


def _fields_and_params(meta: dict[str, Any]) -> list[str]:
    lines = ["fields:"]
    for name, spec in meta["fields"].items():
        dtype = meta.get("dtypes", {}).get(name, "float32")
        lines.append(
            f"  {dtype} {name}({', '.join(spec.dims)})  shape {meta['shapes'][name]}"
            f"  role={spec.role}"
            + (f"  units={spec.units}" if spec.units else "")
            + (f"  '{spec.long_name}'" if spec.long_name else "")
        )
    lines.append("params:")
    if not meta["params"]:
        lines.append("  (none)")
    for name, spec in meta["params"].items():
        extra = f" bounds={spec.bounds}" if spec.bounds else ""
        if spec.loc is not None:
            extra += f" loc={spec.loc} scale={spec.scale}"
        lines.append(f"  float64 {name}(sample)  dist={spec.dist}{extra}")
    splits = meta["splits"]
    lines.append("splits:")
    lines.append(
        "  " + (", ".join(f"{k}: {len(v)}" for k, v in splits.items()) if splits else "(none)")
    )
    lines.append(f"stats (mean, std {_stats_over(splits, meta['n_samples'])}):")
    if not meta["stats"]:
        lines.append("  (none)")
    for name, (mean, std) in meta["stats"].items():
        lines.append(
            f"  {name}: mean {np.array2string(np.asarray(mean), precision=5)}"
            f"  std {np.array2string(np.asarray(std), precision=5)}"
        )
    return lines


def _stats_over(splits: dict[str, Any], n: int) -> str:
    """What the stored statistics were computed over (the writer's rule)."""
    if "train" in splits:
        return f"over the train split, {len(splits['train'])} of {n} samples"
    return f"over all {n} samples: the file has no train split"
