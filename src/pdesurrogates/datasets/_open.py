"""Opening a dataset file: our own schema, or a foreign format read in place.

:func:`open_dataset` reads a ``pdesurrogates-h5`` file as a :class:`FieldDataset`, or, when
an importer backend recognises the file (PDEBench, The Well, FNO ``.mat``,
neuraloperator ``.pt``, ...), as a :class:`SourceDataset`: a :class:`FieldDataset` whose
samples come through the importer's mapping, so
``open_dataset("2D_DarcyFlow_beta1.0_Train.hdf5")["a"]`` is exactly what
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

from pdesurrogates.datasets._reader import FieldDataset
from pdesurrogates.datasets._schema import reading, refuse_special
from pdesurrogates.datasets.backends import Source, get_backend, guess_backend
from pdesurrogates.errors import DatasetError

__all__ = ["SourceDataset", "open_dataset", "open_foreign"]


class SourceDataset(FieldDataset):
    """A community-format file read in place, with the :class:`FieldDataset` interface."""

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        backend: str,
        layout: str | None = None,
        fields: Sequence[str] | None = None,
        indices: Sequence[int] | None = None,
        check_finite: bool = True,
        _meta: dict[str, Any] | None = None,
    ) -> None:
        self.backend = backend
        self._src: Source | None = None
        if _meta is None:  # metadata only; the source is reopened lazily in each process
            with reading(path, "read it"), get_backend(backend).open_source(path, layout) as src:
                _meta = src.metadata()
        self.layout: str = _meta["attrs"]["layout"]
        super().__init__(
            path, fields=fields, indices=indices, check_finite=check_finite, _meta=_meta
        )

    def _new(self, *, fields=None, indices=None) -> SourceDataset:
        return SourceDataset(
            self.path,
            backend=self.backend,
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
            with reading(self.path, f"compute statistics of {name!r}"):
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
            backend = get_backend(self.backend)
            self._src = backend.open_source(self.path, self.layout, reopen=True)
            self._src_pid = os.getpid()
        return self._src

    def _read(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        with reading(self.path, "read samples"):
            return self._read_source(rows)

    def _read_source(self, rows: np.ndarray) -> dict[str, np.ndarray]:
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
    """A :class:`SourceDataset` if an importer backend recognises ``path``, else None.

    Returns None for our own ``pdesurrogates-h5`` files and anything unrecognised.
    """
    p = Path(path)
    refuse_special(p)
    with reading(p, "recognise its format"):
        backend = guess_backend(p)
    if backend is None:
        return None
    ds = SourceDataset(p, backend=backend.name, fields=fields, check_finite=check_finite)
    return ds.split(split) if split else ds


def open_dataset(
    path: str | os.PathLike,
    *,
    fields: Sequence[str] | None = None,
    split: str | None = None,
    check_finite: bool = True,
    dtype: Any = np.float32,
) -> FieldDataset:
    """Open a dataset file as a :class:`FieldDataset` (a map-style torch ``Dataset``).

    A ``pdesurrogates-h5`` file is validated on opening (a bad file raises
    :class:`SchemaError` or :class:`DatasetError` naming the object); values are checked
    for NaN/Inf as they are read. Use :func:`pdesurrogates.datasets.validate` for a full
    scan up front. A file an importer backend recognises (PDEBench, The Well, FNO
    ``.mat``, neuraloperator ``.pt``, ...) is read in place as a :class:`SourceDataset`.

    Parameters
    ----------
    path : path-like
        The file.
    fields : sequence of str, optional
        Only read these fields.
    split : str, optional
        Only the samples of this split (``train`` / ``valid`` / ``test``).
    check_finite : bool
        Check each sample for NaN/Inf the first time it is read.
    dtype : numpy dtype or None
        Type of the field values returned (default float32, what the models train in);
        None returns the dtype the file stores (a ``pdesurrogates-h5`` file only: a
        foreign file is always read as float32).
    """
    foreign = open_foreign(path, fields=fields, split=split, check_finite=check_finite)
    if foreign is not None:
        return foreign
    ds = FieldDataset(path, fields=fields, check_finite=check_finite, dtype=dtype)
    return ds.split(split) if split else ds
