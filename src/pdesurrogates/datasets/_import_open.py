"""Read-only access to community layouts without converting them first.

:func:`open_foreign` returns a :class:`SourceDataset`: a :class:`FieldDataset` whose
samples come from a PDEBench / Well / FNO / neuraloperator file through the importers'
mapping, so ``open_dataset("2D_DarcyFlow_beta1.0_Train.hdf5")["a"]`` is exactly what
``import_pdebench`` would have written. The source is opened lazily once per process and
never pickled (DataLoader workers are fine). Train statistics are not stored in these
files: ``stats()`` computes them on first use with one streamed pass over the train split.
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

    def stats(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)`` of field ``name`` over the file's train split.

        These files store no statistics: they are computed on first use by one streamed
        pass over the train split (float64 accumulation, per component), then kept for
        every view of the same file opened by this :func:`open_dataset` call.
        """
        if name not in self._meta["fields"]:
            raise DatasetError(
                f"{self.path}: no field {name!r}; available fields: {sorted(self._meta['fields'])}"
            )
        if name not in self._meta["stats"]:
            self._meta["stats"][name] = self._compute_stats(name)
        mean, std = self._meta["stats"][name]
        return np.asarray(mean), np.asarray(std)

    def _compute_stats(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        src = self._source()
        spec = self._meta["fields"][name]
        has_comp = spec.dims[-1] == "component"
        n_comp = len(self._meta["coords"]["component"]) if has_comp else 1
        if spec.dims[0] != "sample":
            blocks = [np.asarray(src.static(name))]
        else:
            rows = self._meta["splits"].get("train", np.arange(self._meta["n_samples"]))
            if not len(rows):
                raise DatasetError(f"{self.path}: the train split is empty; no statistics")
            per = 4 * max(1, int(np.prod(self._meta["shapes"][name][1:])))
            step = max(1, (16 * 2**20) // per)
            rows = np.sort(np.asarray(rows, dtype=np.int64))
            blocks = (
                src.read_rows(rows[i : i + step], [name])[name] for i in range(0, len(rows), step)
            )
        count, mean, m2 = 0, np.zeros(n_comp), np.zeros(n_comp)
        for block in blocks:
            b = np.asarray(block, dtype=np.float64).reshape(-1, n_comp)
            k = b.shape[0]
            b_mean = b.mean(axis=0)
            b_m2 = ((b - b_mean) ** 2).sum(axis=0)
            delta = b_mean - mean
            total = count + k
            mean = mean + delta * k / total
            m2 = m2 + b_m2 + delta**2 * count * k / total
            count = total
        std = np.sqrt(m2 / count)
        return (mean, std) if has_comp else (mean[0], std[0])

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
