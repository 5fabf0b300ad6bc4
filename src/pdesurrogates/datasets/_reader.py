"""Reading ``pdesurrogates-h5`` files as a torch ``Dataset``.

The h5py handle is opened lazily, once per process, and never pickled, so a
:class:`FieldDataset` works with ``DataLoader(num_workers=K)`` under fork, spawn and
forkserver alike. Batched fetches (``__getitems__``) read whole index runs with one
HDF5 call.

Every field comes out channel-first (the package's one tensor convention, defined in
:mod:`pdesurrogates.datasets._channels`): ``ds[i][name]`` is ``(C, *grid)``, a batch
and :meth:`FieldDataset.load` are ``(N, C, *grid)``. A scalar field has ``C = 1``
(``(X, Y)`` in the file -> ``(1, X, Y)``); a field with a ``component`` dim has it as
``C`` (``(X, Y, C)`` -> ``(C, X, Y)``); ``time`` and the grid axes keep the file's order.
Coordinates, parameters and :meth:`FieldDataset.stats` (per component) are unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from pdesurrogates.datasets._channels import channel_first_shape, to_channel_first
from pdesurrogates.datasets._schema import FieldSpec, ParamSpec, open_h5, reading
from pdesurrogates.datasets._structure import read_structure
from pdesurrogates.errors import DatasetError

__all__ = ["FieldDataset"]


class _Batch(Sequence):
    """The samples of one batch, as a sequence of dicts built on demand from stacked tensors.

    The default collate iterates it and stacks as usual; :meth:`FieldDataset.collate`
    returns the stacked tensors without building a dict per sample or copying.
    """

    def __init__(self, stacked: dict[str, Any], n: int) -> None:
        self.stacked = stacked
        self._n = n

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, j):
        if isinstance(j, slice):
            return [self[k] for k in range(*j.indices(self._n))]
        if not -self._n <= j < self._n:
            raise IndexError(j)
        params = self.stacked["params"]
        sample = {k: v[j] for k, v in self.stacked.items() if k != "params"}
        sample["params"] = {k: v[j] for k, v in params.items()}
        return sample


class FieldDataset(torch.utils.data.Dataset):
    """A ``pdesurrogates-h5`` file as a map-style torch dataset of dict samples.

    ``ds[i]`` is ``{"<field>": Tensor, ..., "params": {"<name>": Tensor(())}}`` with
    every field channel-first, ``(C, *grid)``: ``(1, X, Y)`` for a scalar field stored
    as ``(sample, x, y)``, ``(C, X, Y)`` for one stored as ``(sample, x, y, component)``.
    Batches (:meth:`loader`, :meth:`collate`, ``DataLoader``) and :meth:`load` are
    ``(N, C, *grid)``, what the models take and return. Fields are float32 (what the
    models train in) whatever the file stores, unless ``dtype`` says otherwise.
    Fields without a sample axis are returned unchanged with every sample.

    Use :func:`pdesurrogates.datasets.open_dataset` to create one.

    Parameters
    ----------
    path : path-like
        The file.
    fields : sequence of str, optional
        Only read these fields (default: all).
    indices : array of int, optional
        Restrict to these samples (used by :meth:`split`).
    check_finite : bool
        Raise :class:`DatasetError` when a sample holds NaN/Inf (each sample is checked the
        first time a process reads it; default on).
    dtype : numpy dtype or None
        Type of the field values returned (default float32); None returns the file's
        own (float64 in a file written from float64 data).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        fields: Sequence[str] | None = None,
        indices: Sequence[int] | None = None,
        check_finite: bool = True,
        dtype: Any = np.float32,
        _meta: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.dtype = None if dtype is None else np.dtype(dtype)
        if _meta is None:
            with reading(self.path, "open it"), open_h5(self.path) as f:
                _meta = read_structure(f, self.path)
        self._meta = _meta
        all_fields: dict[str, FieldSpec] = _meta["fields"]
        if fields is None:
            fields = list(all_fields)
        unknown = [k for k in fields if k not in all_fields]
        if unknown:
            raise DatasetError(
                f"{self.path}: no field(s) {unknown}; available fields: {sorted(all_fields)}"
            )
        self.field_names: list[str] = list(fields)
        self.fields: dict[str, FieldSpec] = {k: all_fields[k] for k in self.field_names}
        n = _meta["n_samples"]
        self.indices = (
            np.arange(n, dtype=np.int64) if indices is None else np.asarray(indices, np.int64)
        )
        self.check_finite = check_finite
        self._h5: h5py.File | None = None
        self._pid: int | None = None
        self._dsets: dict[str, h5py.Dataset] = {}
        self._verified: np.ndarray | None = None

    # --- metadata ---------------------------------------------------------------------
    @property
    def attrs(self) -> dict[str, Any]:
        """Root attributes of the file."""
        return dict(self._meta["attrs"])

    @property
    def coords(self) -> dict[str, np.ndarray]:
        """Coordinate arrays by dim name (``sample`` restricted to this dataset's samples)."""
        coords = dict(self._meta["coords"])
        coords["sample"] = coords["sample"][self.indices]
        return coords

    @property
    def coord_attrs(self) -> dict[str, dict[str, str]]:
        """``units`` and ``long_name`` of each coordinate variable, by dim name."""
        return {d: dict(a) for d, a in self._meta["coord_attrs"].items()}

    @property
    def spatial_dims(self) -> list[str]:
        return list(self._meta["spatial_dims"])

    @property
    def params(self) -> dict[str, ParamSpec]:
        """Parameter specs (distribution, bounds, units) by name."""
        return dict(self._meta["params"])

    def param_values(self, name: str) -> np.ndarray:
        """All values of parameter ``name`` for this dataset's samples (float64)."""
        if name not in self._meta["param_values"]:
            raise DatasetError(
                f"{self.path}: no parameter {name!r}; available: {sorted(self._meta['params'])}"
            )
        return self._meta["param_values"][name][self.indices]

    @property
    def splits(self) -> dict[str, np.ndarray]:
        return dict(self._meta["splits"])

    def shape(self, name: str) -> tuple[int, ...]:
        """Channel-first shape ``(C, *grid)`` of field ``name`` for one sample (what
        ``ds[i][name]`` has)."""
        spec, full = self.fields[name], self._meta["shapes"][name]
        per_sample = tuple(full[1:]) if spec.dims[0] == "sample" else tuple(full)
        return channel_first_shape(per_sample, spec.dims)

    def _dims(self, name: str) -> tuple[str, ...]:
        """Dims of field ``name`` as :meth:`_read` returns it (a sample axis first)."""
        dims = tuple(self.fields[name].dims)
        return dims if dims[0] == "sample" else ("sample", *dims)

    def _channel_first(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """:meth:`_read`'s arrays (the file's layout) as channel-first views."""
        return {k: to_channel_first(v, self._dims(k)) for k, v in arrays.items()}

    def stats(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)`` of field ``name`` over the train split, as stored in the file."""
        if name not in self._meta["stats"]:
            raise DatasetError(
                f"{self.path}: no statistics for field {name!r} in /stats; the file was "
                "written without a train split. Regenerate it or fit a Normalizer yourself"
            )
        mean, std = self._meta["stats"][name]
        return np.asarray(mean), np.asarray(std)

    def split(self, name: str) -> FieldDataset:
        """The samples of split ``name`` (``train`` / ``valid`` / ``test``)."""
        splits = self._meta["splits"]
        if name not in splits:
            raise DatasetError(
                f"{self.path}: has no split {name!r}; available splits: "
                f"{sorted(splits) or 'none'}. Add one when writing (DatasetWriter.finalize)"
            )
        members = (
            np.intersect1d(self.indices, splits[name])
            if len(self) < len(self._meta["coords"]["sample"])
            else splits[name]
        )
        return FieldDataset(
            self.path,
            fields=self.field_names,
            indices=members,
            check_finite=self.check_finite,
            dtype=self.dtype,
            _meta=self._meta,
        )

    def subset(self, indices: Sequence[int]) -> FieldDataset:
        """A dataset of the given positions of this one."""
        return FieldDataset(
            self.path,
            fields=self.field_names,
            indices=self.indices[np.asarray(indices, dtype=np.int64)],
            check_finite=self.check_finite,
            dtype=self.dtype,
            _meta=self._meta,
        )

    def select(self, fields: Sequence[str]) -> FieldDataset:
        """The same samples with only the given fields."""
        return FieldDataset(
            self.path,
            fields=fields,
            indices=self.indices,
            check_finite=self.check_finite,
            dtype=self.dtype,
            _meta=self._meta,
        )

    # --- reading ----------------------------------------------------------------------
    def _file(self) -> h5py.File:
        pid = os.getpid()
        if self._h5 is None or self._pid != pid:
            with reading(self.path, "reopen it for reading"):
                self._h5 = h5py.File(self.path, "r", rdcc_nbytes=16 * 2**20)
                self._pid = pid
                paths = self._meta.get("field_paths", {})
                self._dsets = {k: self._h5[paths.get(k, k)] for k in self.field_names}
        return self._h5

    def close(self) -> None:
        """Close this process's file handle (reopened on the next read)."""
        if self._h5 is not None and self._pid == os.getpid():
            self._h5.close()
        self._h5 = None
        self._dsets = {}

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_h5"] = None  # an h5py handle must never cross a process boundary
        state["_pid"] = None
        state["_dsets"] = {}
        return state

    def __len__(self) -> int:
        return len(self.indices)

    def _check(self, name: str, arr: np.ndarray, rows: np.ndarray) -> None:
        # A sum is non-finite whenever any term is (NaN and Inf propagate) and is one fast
        # pass without a temporary; only an overflowing sum needs the elementwise check.
        if self.check_finite and not (
            np.isfinite(np.add.reduce(arr, axis=None)) or np.isfinite(arr).all()
        ):
            bad = np.argwhere(~np.isfinite(arr))[0]
            sample = int(rows[bad[0]]) if len(rows) else -1
            raise DatasetError(
                f"{self.path}: field {name!r} holds NaN or Inf in sample {sample}; the "
                "simulation that produced it diverged or the file is damaged. Run "
                "`pdesurrogates info --check` on the file, then regenerate or drop the sample"
            )

    def _read(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Read the given (file) sample rows of every selected field: arrays (len(rows), ...).

        Rows in increasing contiguous order are read with one slice; any other order is
        read sample by sample straight into its place in the batch (h5py's fancy indexing
        is ~30x slower, and sorting then permuting costs an extra copy).
        """
        self._file()
        rows = np.asarray(rows, dtype=np.int64)
        contiguous = len(rows) > 0 and bool(np.all(np.diff(rows) == 1))
        # each sample is checked for NaN/Inf the first time this process reads it
        if self._verified is None:
            self._verified = np.zeros(self._meta["n_samples"], dtype=bool)
        checked = not self.check_finite or bool(self._verified[rows].all())
        out = {}
        for name in self.field_names:
            ds = self._dsets[name]
            if self.fields[name].dims[0] != "sample":
                with reading(self.path, f"read {ds.name}"):
                    arr = ds[()]
                    arr = arr if self.dtype is None else arr.astype(self.dtype, copy=False)
                out[name] = np.broadcast_to(arr, (len(rows), *arr.shape))
                continue
            try:
                if contiguous:
                    arr = ds[int(rows[0]) : int(rows[-1]) + 1]
                else:
                    arr = np.empty((len(rows), *ds.shape[1:]), dtype=ds.dtype)
                    for k, r in enumerate(rows.tolist()):
                        arr[k] = ds[r]
            except Exception as exc:  # h5py: OSError (checksum, truncation), RuntimeError, ...
                raise self._read_error(name, rows, exc) from exc
            if not checked:
                self._check(name, arr, rows)
            out[name] = arr if self.dtype is None else arr.astype(self.dtype, copy=False)
        if not checked:
            self._verified[rows] = True
        return out

    def _read_error(self, name: str, rows: np.ndarray, exc: Exception) -> DatasetError:
        which = (
            f"sample {int(rows[0])}" if len(rows) == 1 else f"samples {rows.min()}..{rows.max()}"
        )
        return DatasetError(
            f"{self.path}: cannot read {which} of field {name!r} ({type(exc).__name__}: "
            f"{exc}); the file is damaged (a checksum mismatch means its bytes changed on "
            "disk). Run `pdesurrogates validate --deep` on it, then regenerate it or copy it "
            "again"
        )

    def _params(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        return {k: v[rows] for k, v in self._meta["param_values"].items()}

    def __getitem__(self, i: int) -> dict[str, Any]:
        n = len(self)
        if not -n <= int(i) < n:
            raise IndexError(f"index {i} out of range for a dataset of {n} samples")
        rows = self.indices[[int(i)]]
        arrays = self._channel_first(self._read(rows))
        sample: dict[str, Any] = {k: torch.from_numpy(np.array(v[0])) for k, v in arrays.items()}
        sample["params"] = {k: torch.tensor(v[0]) for k, v in self._params(rows).items()}
        return sample

    def __getitems__(self, positions: Sequence[int]) -> list[dict[str, Any]]:
        """Batched fetch used by ``DataLoader``: one HDF5 read per field and index run."""
        rows = self.indices[np.asarray(positions, dtype=np.int64)]
        read = self._channel_first(self._read(rows))
        # a field without a sample axis is a read-only broadcast view: copy it
        arrays = {
            k: torch.from_numpy(
                np.ascontiguousarray(v) if v.flags.writeable else np.array(v, order="C")
            )
            for k, v in read.items()
        }
        params = {k: torch.from_numpy(v) for k, v in self._params(rows).items()}
        return _Batch({**arrays, "params": params}, len(rows))

    @staticmethod
    def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
        """Collate function that reuses the tensors ``__getitems__`` already stacked.

        Gives the same result as ``torch.utils.data.default_collate`` without a copy:
        fields ``(N, C, *grid)``, parameters ``(N,)``.
        """
        if isinstance(batch, _Batch):
            return batch.stacked
        return torch.utils.data.default_collate(batch)

    def loader(
        self, batch_size: int = 32, *, shuffle: bool = False, num_workers: int = 0, **kwargs
    ) -> torch.utils.data.DataLoader:
        """A ``DataLoader`` over this dataset with the copy-free :meth:`collate`; its
        batches hold fields ``(N, C, *grid)``.

        With workers, ``persistent_workers`` defaults to True so each worker keeps its
        file handle across epochs.
        """
        if num_workers > 0:
            kwargs.setdefault("persistent_workers", True)
        return torch.utils.data.DataLoader(
            self,
            batch_size=batch_size,
            shuffle=shuffle,
            num_workers=num_workers,
            collate_fn=self.collate,
            **kwargs,
        )

    def load(self, name: str) -> np.ndarray:
        """Read field ``name`` for all of this dataset's samples into memory,
        channel-first ``(N, C, *grid)`` (``(N, 1, X, Y)`` for a scalar 2-D field)."""
        if name not in self.fields:
            raise DatasetError(
                f"{self.path}: no field {name!r}; available fields: {sorted(self.fields)}"
            )
        arr = to_channel_first(self.select([name])._read(self.indices)[name], self._dims(name))
        return np.ascontiguousarray(arr) if arr.flags.writeable else np.array(arr, order="C")

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}{self.shape(k)}" for k in self.field_names)
        return f"FieldDataset({str(self.path)!r}, n={len(self)}, fields: {shapes})"
