"""Read-only access to community layouts without converting them first.

:func:`open_foreign` returns a :class:`SourceDataset`: a :class:`FieldDataset` whose
samples come from a PDEBench / Well / FNO / neuraloperator file through the importers'
mapping, so ``open_dataset("2D_DarcyFlow_beta1.0_Train.hdf5")["a"]`` is exactly what
``import_pdebench`` would have written. The source is opened lazily once per process and
never pickled (DataLoader workers are fine). Train statistics are not stored in these
files, so ``stats()`` raises; import the file to get them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pdesurrogates.datasets._import_api import detect_layout, open_source
from pdesurrogates.datasets._import_base import Source
from pdesurrogates.datasets._reader import FieldDataset
from pdesurrogates.datasets._schema import SCHEMA_NAME
from pdesurrogates.errors import DatasetError

__all__ = ["SourceDataset", "open_foreign"]


def _build_meta(source: Source) -> dict[str, Any]:
    n = source.n_samples
    coords = dict(source.coords)
    coords["sample"] = (
        np.arange(n, dtype=np.int64)
        if source.sample_ids is None
        else np.asarray(source.sample_ids, np.int64)
    )
    splits = source.splits(n)
    if splits is None:
        from pdesurrogates.datasets._writer import contiguous_splits

        splits = contiguous_splits(n)
    return {
        "n_samples": n,
        "spatial_dims": [d for d in ("x", "y", "z") if d in coords],
        "coords": coords,
        "fields": dict(source.fields),
        "shapes": {k: source.field_shape(k) for k in source.fields},
        "params": dict(source.params),
        "param_values": {k: np.asarray(v, np.float64) for k, v in source.param_values.items()},
        "splits": {k: np.asarray(v, np.int64) for k, v in splits.items()},
        "stats": {},
        "attrs": {
            "schema": f"{source.layout} layout read in place, not {SCHEMA_NAME}",
            "schema_version": "n/a",
            "created_by": "",
            "dataset_name": source.dataset_name,
            "pde": source.pde,
            "source": str(source.path),
            "layout": source.layout,
            "n_samples": n,
            "complete": True,
            "split_convention": source.split_note or "contiguous 80/10/10 blocks",
        },
    }


class SourceDataset(FieldDataset):
    """A community-format file read in place, with the :class:`FieldDataset` interface."""

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        layout: str,
        fields: Sequence[str] | None = None,
        indices: Sequence[int] | None = None,
        check_finite: bool = True,
        _meta: dict[str, Any] | None = None,
    ) -> None:
        self.layout = layout
        self._src: Source | None = None
        if _meta is None:  # metadata only; the source is reopened lazily in each process
            with open_source(path, layout) as src:
                _meta = _build_meta(src)
        super().__init__(
            path, fields=fields, indices=indices, check_finite=check_finite, _meta=_meta
        )

    def _new(self, *, fields=None, indices=None) -> SourceDataset:
        return SourceDataset(
            self.path,
            layout=self.layout,
            fields=self.field_names if fields is None else fields,
            indices=self.indices if indices is None else indices,
            check_finite=self.check_finite,
            _meta=self._meta,
        )

    def split(self, name: str) -> SourceDataset:
        splits = self._meta["splits"]
        if name not in splits:
            raise DatasetError(
                f"{self.path}: has no split {name!r}; available splits: {sorted(splits)}"
            )
        members = np.intersect1d(self.indices, splits[name])
        return self._new(indices=members)

    def subset(self, indices: Sequence[int]) -> SourceDataset:
        return self._new(indices=self.indices[np.asarray(indices, dtype=np.int64)])

    def select(self, fields: Sequence[str]) -> SourceDataset:
        return self._new(fields=fields)

    def _source(self) -> Source:
        if self._src is None or getattr(self, "_src_pid", None) != os.getpid():
            verified = {"verify": False} if self.layout.startswith("pdebench") else {}
            self._src = open_source(self.path, self.layout, **verified)
            self._src_pid = os.getpid()
        return self._src

    def _read(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        src = self._source()
        rows = np.asarray(rows, dtype=np.int64)
        sample_fields = [k for k in self.field_names if self.fields[k].dims[0] == "sample"]
        out = {
            k: np.asarray(v, dtype=np.float32)
            for k, v in src.read_rows(rows, sample_fields).items()
        }
        for name in sample_fields:
            self._check(name, out[name], rows)
        for name in self.field_names:
            if name not in out:
                arr = np.asarray(src.static(name), dtype=np.float32)
                out[name] = np.broadcast_to(arr, (len(rows), *arr.shape))
        return out

    def close(self) -> None:
        if self._src is not None and getattr(self, "_src_pid", None) == os.getpid():
            self._src.close()
        self._src = None
        super().close()

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_src"] = None
        state["_src_pid"] = None
        return state

    def __repr__(self) -> str:
        return f"{self.layout}:" + super().__repr__()


def open_foreign(
    path: str | os.PathLike,
    *,
    fields: Sequence[str] | None = None,
    split: str | None = None,
    check_finite: bool = True,
) -> SourceDataset | None:
    """A :class:`SourceDataset` if ``path`` is in a recognised community layout, else None.

    Called by :func:`pdesurrogates.datasets.open_dataset` before it reads ``path`` as a
    ``pdesurrogates-h5`` file; returns None for our own files and anything unrecognised.
    """
    p = Path(path)
    layout = detect_layout(p)
    if layout is None:
        return None
    ds = SourceDataset(p, layout=layout, fields=fields, check_finite=check_finite)
    return ds.split(split) if split else ds
