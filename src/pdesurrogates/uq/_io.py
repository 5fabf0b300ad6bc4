"""Prediction files: a ``pdesurrogates-h5`` dataset holding a model's predictive distribution.

Convention (version 1), for a predicted field ``<f>`` (e.g. ``u``):

* ``/fields/<f>``: the predictive **mean**, same dims, coordinates and units as the field
  in the truth file (so the file opens in xarray and validates like any dataset);
* ``/fields/<f>_std`` (optional): the std of a Gaussian prediction, same dims;
* ``/predictive/<f>/samples`` (optional): float32 array ``(S, N, ...)``, ensemble members
  or samples, **member axis first**;
* ``/predictive/<f>/quantiles`` (optional): float32 ``(K, N, ...)`` with attribute
  ``levels`` (K increasing numbers in (0, 1));
* root attribute ``prediction_of`` (JSON list of predicted field names) and, per field,
  ``/predictive/<f>`` attribute ``kind``.

At most one of ``_std``, ``samples`` and ``quantiles`` per field; with none the file is a
point prediction. The sample axis must line up with the truth file (or with the split of
it that was predicted).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pdesurrogates.errors import SchemaError
from pdesurrogates.uq._prediction import Prediction

__all__ = ["load_prediction", "save_prediction"]


def _np32(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def save_prediction(
    path: str | os.PathLike,
    pred: Prediction,
    *,
    field: str,
    like: str | os.PathLike | None = None,
    coords: dict[str, Any] | None = None,
    dims: tuple[str, ...] | None = None,
    overwrite: bool = False,
    source: dict[str, Any] | None = None,
) -> Path:
    """Write ``pred`` (shape ``(N, ...)``) as a prediction file for field ``field``.

    Coordinates, dims and units come from the truth dataset ``like`` (recommended) or from
    ``coords`` and ``dims`` (``dims`` starts with ``"sample"``). The file is written to a
    ``.partial`` name and renamed when complete.
    """
    from pdesurrogates.datasets import DatasetWriter, FieldSpec, open_dataset

    if not isinstance(pred, Prediction):
        pred = Prediction(pred)
    if field.endswith("_std"):
        raise ValueError(f"field={field!r}: names ending in '_std' are reserved for the std")
    units = ""
    if like is not None:
        ds = open_dataset(like)
        if field not in ds.fields:
            raise ValueError(f"field={field!r} is not in {like}; fields: {sorted(ds.fields)}")
        spec = ds.fields[field]
        dims = spec.dims
        units = spec.units
        crd = ds.coords
        coords = {d: crd[d] for d in dims if d != "sample"}
    if coords is None or dims is None:
        raise ValueError("give like= (the truth dataset) or both coords= and dims=")
    dims = tuple(dims)
    if dims[0] != "sample":
        raise ValueError(f"dims must start with 'sample', got {dims}")
    expected = tuple(len(coords[d]) for d in dims[1:])
    if tuple(pred.shape[1:]) != expected:
        raise ValueError(
            f"pred has fields of shape {pred.shape[1:]} but the grid {dims[1:]} has {expected}"
        )
    n = pred.shape[0]
    fields = {field: FieldSpec(dims=dims, role="output", units=units, long_name="predictive mean")}
    std = pred.std if pred.kind == "gaussian" else None
    if std is not None:
        fields[f"{field}_std"] = FieldSpec(
            dims=dims, role="output", units=units, long_name="predictive standard deviation"
        )
    src = {"kind": pred.kind, "predicted_field": field, **(source or {})}
    with DatasetWriter(
        path,
        n_samples=n,
        coords=coords,
        fields=fields,
        dataset_name=f"prediction of {field}",
        source=src,
        overwrite=overwrite,
    ) as w:
        batch = {field: _np32(pred.mean)}
        if std is not None:
            batch[f"{field}_std"] = _np32(std)
        w.write_batch(0, batch)
        grp = w.file.require_group(f"predictive/{field}")
        grp.attrs["kind"] = pred.kind
        if pred.kind == "samples":
            s = _np32(pred.samples)
            grp.create_dataset("samples", data=s, chunks=(s.shape[0], 1, *s.shape[2:]))
        elif pred.kind == "quantiles":
            q = _np32(pred.quantiles)
            d = grp.create_dataset("quantiles", data=q, chunks=(q.shape[0], 1, *q.shape[2:]))
            d.attrs["levels"] = np.asarray(pred.levels, dtype=np.float64)
        return w.finalize(
            splits={"train": np.arange(n)},
            extra_attrs={"prediction_of": json.dumps([field])},
        )


def load_prediction(
    path: str | os.PathLike, field: str | None = None, *, indices: Any = None
) -> Prediction:
    """Read the predictive distribution of ``field`` from a prediction file.

    ``field`` defaults to the only predicted field of the file. ``indices`` selects samples.
    """
    from pdesurrogates.datasets import open_dataset

    ds = open_dataset(path)
    names = [k for k in ds.fields if not k.endswith("_std")]
    if field is None:
        if len(names) != 1:
            raise ValueError(
                f"{path} holds several fields {names}; choose one with field= (--field)"
            )
        field = names[0]
    if field not in ds.fields:
        raise ValueError(f"field={field!r} is not in {path}; fields: {sorted(names)}")
    if indices is not None:
        ds = ds.subset(np.asarray(indices))
    mean = ds.load(field)
    std = ds.load(f"{field}_std") if f"{field}_std" in ds.fields else None
    samples = quantiles = levels = None
    rows = ds.indices
    with h5py.File(path, "r") as f:
        grp = f.get(f"predictive/{field}")
        if grp is not None:
            try:
                if "samples" in grp:
                    samples = grp["samples"][()][:, rows]
                if "quantiles" in grp:
                    quantiles = grp["quantiles"][()][:, rows]
                    levels = np.asarray(grp["quantiles"].attrs["levels"], dtype=np.float64)
            except (KeyError, OSError) as exc:
                raise SchemaError(
                    f"{path}: /predictive/{field} is unreadable or lacks 'levels' ({exc}); "
                    "rewrite the file with pdesurrogates.uq.save_prediction"
                ) from exc
    given = [
        k
        for k, v in (("std", std), ("samples", samples), ("quantiles", quantiles))
        if v is not None
    ]
    if len(given) > 1:
        raise SchemaError(
            f"{path}: field {field!r} has {' and '.join(given)}; a prediction file holds at "
            "most one of them per field"
        )
    try:
        return Prediction(mean, std=std, samples=samples, quantiles=quantiles, levels=levels)
    except ValueError as exc:
        raise SchemaError(f"{path}: field {field!r}: {exc}") from exc
