"""Prediction files: a ``pdesurrogates-h5`` dataset holding a model's predictive distribution.

The one layout every family writes (``pdesurrogates predict``, :func:`save_prediction`)
and :func:`pdesurrogates.uq.evaluate` reads. Layout version 2, for a predicted field
``<f>`` (e.g. ``u``):

* ``/<f>`` (a root-level variable, as every field in schema version 2): the predictive
  **mean**, same dims, coordinates and units as the field in the truth file (so the file
  opens in xarray and validates like any dataset); on disk in the file's layout of the
  field, in memory channel-first like every field (:func:`save_prediction` takes and
  :func:`load_prediction` returns ``(N, C, *grid)``);
* ``/<f>_std`` (optional): the std of a Gaussian prediction, same dims;
* ``/predictive/<f>/samples`` (optional): float32 array ``(S, N, ...)``, ensemble members
  or samples, **member axis first**;
* ``/predictive/<f>/quantiles`` (optional): float32 ``(K, N, ...)`` with attribute
  ``levels`` (K increasing numbers in (0, 1));
* ``/predictive/<f>`` attribute ``kind`` (``point``, ``gaussian``, ``samples``,
  ``quantiles``);
* ``/predictive/source_index`` (optional): int64 ``(N,)``, the rows of the source data
  file that were predicted;
* root attributes ``prediction_format = "pdesurrogates-prediction"``,
  ``prediction_format_version = 2``, ``prediction_of`` (JSON list of predicted field
  names), ``prediction_split`` (``train``, ``valid``, ``test``, ``all``, or empty when
  unknown) and ``prediction_data`` (path of the source data file, or empty). A named
  split is also stored as ``/splits/<split>`` covering every sample.

At most one of ``_std``, ``samples`` and ``quantiles`` per field; with none the file is a
point prediction. Version 1 files (no ``prediction_format_version``) are refused with a
message that says how to regenerate them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pdesurrogates.errors import SchemaError
from pdesurrogates.uq._prediction import Prediction

__all__ = [
    "PREDICTION_FORMAT",
    "PREDICTION_FORMAT_VERSION",
    "PredictionInfo",
    "load_prediction",
    "read_prediction_info",
    "save_prediction",
]

PREDICTION_FORMAT = "pdesurrogates-prediction"
PREDICTION_FORMAT_VERSION = 2
_SPLITS = ("train", "valid", "test")
_REGENERATE = (
    "regenerate it with `pdesurrogates predict RUN --data DATA -o FILE` (a trained run) "
    "or pdesurrogates.uq.save_prediction (any model)"
)


@dataclass(frozen=True)
class PredictionInfo:
    """What a prediction file says about itself (see :func:`read_prediction_info`)."""

    path: Path
    fields: tuple[str, ...]
    kinds: dict[str, str]
    split: str
    data: str
    n_samples: int
    source_index: np.ndarray | None
    version: int

    def only_field(self) -> str:
        """The predicted field when there is exactly one."""
        if len(self.fields) != 1:
            raise ValueError(
                f"{self.path} predicts several fields {list(self.fields)}; choose one with "
                "field= (--field)"
            )
        return self.fields[0]


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
    units: str = "",
    split: str | None = None,
    data: str | os.PathLike | None = None,
    source_index: Any = None,
    overwrite: bool = False,
    source: dict[str, Any] | None = None,
) -> Path:
    """Write ``pred`` (channel-first, ``(N, C, *grid)``) as a prediction file for ``field``.

    The arrays are stored in the file's layout of the field (``dims``); a field without a
    ``component`` dim may also be given without its channel axis of 1 (``(N, X, Y)``
    where ``(N, 1, X, Y)`` is expected).

    Parameters
    ----------
    path : path
        The file to write (to a ``.partial`` name first, renamed when complete).
    pred : Prediction or array
        The predictive distribution; ensemble members are kept as ``samples``.
    field : str
        Name of the predicted field.
    like : path, optional
        The truth (or source) dataset: dims, coordinates and units of ``field`` come from
        it. Otherwise give ``coords`` and ``dims`` (``dims`` starts with ``"sample"``).
    split : str, optional
        The split of the source data that was predicted (``train``, ``valid``, ``test``
        or ``all``); :func:`pdesurrogates.runs.evaluate_files` then compares with the same
        split.
    data : path, optional
        The source data file (recorded as ``prediction_data``).
    source_index : array of int, optional
        Rows of the source data file that were predicted, shape ``(N,)``.
    source : dict, optional
        Extra provenance stored in the file's ``source`` attribute.
    """
    from pdesurrogates.datasets import DatasetWriter, FieldSpec, channel_first_shape, open_dataset

    if not isinstance(pred, Prediction):
        pred = Prediction(pred)
    if field.endswith("_std"):
        raise ValueError(f"field={field!r}: names ending in '_std' are reserved for the std")
    if split is not None and split not in (*_SPLITS, "all"):
        raise ValueError(f"split={split!r}: use train, valid, test or all")
    if like is not None:
        ds = open_dataset(like)
        if field not in ds.fields:
            raise ValueError(f"field={field!r} is not in {like}; fields: {sorted(ds.fields)}")
        spec = ds.fields[field]
        dims, units = spec.dims, spec.units
        coords = {d: ds.coords[d] for d in dims if d != "sample"}
    if coords is None or dims is None:
        raise ValueError("give like= (the truth dataset) or both coords= and dims=")
    dims = tuple(dims)
    if dims[0] != "sample":
        raise ValueError(f"dims must start with 'sample', got {dims}")
    grid = tuple(len(coords[d]) for d in dims[1:])
    expected = channel_first_shape(grid, dims)
    accepted = (expected,) if dims[-1] == "component" else (expected, grid)
    if tuple(pred.shape[1:]) not in accepted:
        raise ValueError(
            f"pred has fields of shape {pred.shape[1:]} but the grid {dims[1:]} needs "
            f"{expected} (channel-first)"
        )
    n = pred.shape[0]
    if source_index is not None:
        source_index = np.asarray(source_index, dtype=np.int64).reshape(-1)
        if source_index.shape != (n,):
            raise ValueError(f"source_index must hold {n} row numbers, got {source_index.shape}")
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
        inputs=[data] if data is not None else (),
    ) as w:
        batch = {field: _stored(pred.mean, dims)}
        if std is not None:
            batch[f"{field}_std"] = _stored(std, dims)
        w.write_batch(0, batch)
        _write_predictive(w.file, field, pred, dims, source_index)
        return w.finalize(
            splits={split: np.arange(n)} if split in _SPLITS else {},
            extra_attrs={
                "prediction_format": PREDICTION_FORMAT,
                "prediction_format_version": PREDICTION_FORMAT_VERSION,
                "prediction_of": json.dumps([field]),
                "prediction_split": split or "",
                "prediction_data": "" if data is None else str(Path(data).resolve()),
            },
        )


def _stored(x: Any, dims: tuple[str, ...], lead: int = 0) -> np.ndarray:
    """A channel-first array in the file's layout of a field with ``dims``, float32."""
    from pdesurrogates.datasets import from_channel_first

    return np.ascontiguousarray(from_channel_first(_np32(x), dims, lead=lead))


def _write_predictive(f: h5py.File, field: str, pred: Prediction, dims, source_index) -> None:
    grp = f.require_group(f"predictive/{field}")
    grp.attrs["kind"] = pred.kind
    if pred.kind == "samples":
        s = _stored(pred.samples, dims, lead=1)
        grp.create_dataset("samples", data=s, chunks=(s.shape[0], 1, *s.shape[2:]))
    elif pred.kind == "quantiles":
        q = _stored(pred.quantiles, dims, lead=1)
        d = grp.create_dataset("quantiles", data=q, chunks=(q.shape[0], 1, *q.shape[2:]))
        d.attrs["levels"] = np.asarray(pred.levels, dtype=np.float64)
    if source_index is not None:
        f["predictive"].create_dataset("source_index", data=source_index)


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def read_prediction_info(path: str | os.PathLike) -> PredictionInfo:
    """Read the self-description of a prediction file without loading the arrays.

    Raises
    ------
    FileNotFoundError
        No such file.
    SchemaError
        Not a prediction file, or one in an older layout (the message says how to
        regenerate it), or one written by a newer pdesurrogates.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prediction file {path} does not exist")
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: f.attrs[k] for k in f.attrs}
            kinds = {}
            index = None
            if "predictive" in f:
                grp = f["predictive"]
                kinds = {k: _text(grp[k].attrs.get("kind", "")) for k in grp if k != "source_index"}
                if "source_index" in grp:
                    index = np.asarray(grp["source_index"][()], dtype=np.int64)
    except OSError as exc:
        from pdesurrogates.datasets._schema import lock_failed, open_error

        if lock_failed(exc):  # a predict still writing it, or another process holding it
            raise open_error(path, exc, _REGENERATE) from exc
        raise SchemaError(f"{path}: not an HDF5 file ({exc}); {_REGENERATE}") from exc
    version = attrs.get("prediction_format_version")
    if version is None:
        source = _text(attrs.get("source", ""))
        if "prediction_of" in attrs or "pdesurrogates predict" in source:
            raise SchemaError(
                f"{path}: a prediction file in an older layout (version 1: no members, no "
                f"split); {_REGENERATE}"
            )
        raise SchemaError(
            f"{path}: not a prediction file (no prediction_format_version attribute); pass a "
            f"file written by `pdesurrogates predict` or pdesurrogates.uq.save_prediction"
        )
    if int(version) > PREDICTION_FORMAT_VERSION:
        raise SchemaError(
            f"{path}: prediction layout version {int(version)} is newer than this "
            f"pdesurrogates reads ({PREDICTION_FORMAT_VERSION}); upgrade pdesurrogates"
        )
    if int(version) < PREDICTION_FORMAT_VERSION:
        raise SchemaError(f"{path}: prediction layout version {int(version)}; {_REGENERATE}")
    fields = tuple(json.loads(_text(attrs.get("prediction_of", "[]")) or "[]"))
    if not fields:
        raise SchemaError(f"{path}: the prediction_of attribute names no field; {_REGENERATE}")
    return PredictionInfo(
        path=path,
        fields=fields,
        kinds={k: kinds.get(k, "point") for k in fields},
        split=_text(attrs.get("prediction_split", "")),
        data=_text(attrs.get("prediction_data", "")),
        n_samples=int(attrs.get("n_samples", 0)),
        source_index=index,
        version=int(version),
    )


def load_prediction(
    path: str | os.PathLike, field: str | None = None, *, indices: Any = None
) -> Prediction:
    """Read the predictive distribution of ``field`` from a prediction file, channel-first
    ``(N, C, *grid)`` like :meth:`FieldDataset.load` (members ``(S, N, C, *grid)``).

    ``field`` defaults to the only predicted field of the file. ``indices`` selects samples.
    Raises :class:`SchemaError` for a file in an older layout, saying how to regenerate it.
    """
    from pdesurrogates.datasets import open_dataset, to_channel_first

    info = read_prediction_info(path)
    if field is None:
        field = info.only_field()
    if field not in info.fields:
        raise ValueError(f"field={field!r} is not predicted in {path}; fields: {list(info.fields)}")
    ds = open_dataset(path)
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
                dims = ds.fields[field].dims
                if "samples" in grp:
                    samples = to_channel_first(grp["samples"][()][:, rows], dims, lead=1)
                if "quantiles" in grp:
                    quantiles = to_channel_first(grp["quantiles"][()][:, rows], dims, lead=1)
                    levels = np.asarray(grp["quantiles"].attrs["levels"], dtype=np.float64)
            except (KeyError, OSError, ValueError) as exc:
                raise SchemaError(
                    f"{path}: /predictive/{field} is unreadable or lacks 'levels' ({exc}); "
                    + _REGENERATE
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
