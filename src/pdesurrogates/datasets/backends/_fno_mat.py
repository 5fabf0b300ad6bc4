"""FNO ``.mat`` files (MATLAB v5 and v7.3) as an importer backend.

* v7.3 is HDF5: it is read lazily through h5py, block by block. MATLAB is column-major,
  so every array comes back with its axes reversed; we reverse them back.
* v5 is read with :func:`scipy.io.loadmat`, one variable at a time (the format has no
  partial reads, and caps a variable at 2 GiB).

Mapping: Darcy ``coeff`` -> ``a`` (input), ``sol`` -> ``u`` (output); ``a`` / ``u`` ->
``a`` / ``u``; a ``u`` with one more axis than ``a`` is a trajectory: MATLAB ``(N, X, Y,
T)`` becomes ``(sample, time, x, y)``. The grid is not stored: we write the uniform grid
``linspace(0, 1, n)`` and say so in the ``source`` attribute.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from pdesurrogates.datasets.backends._base import (
    ImporterBackend,
    Source,
    fill_input_output,
    h5_read,
    open_source_h5,
)
from pdesurrogates.datasets.backends._registry import unknown_layout
from pdesurrogates.errors import DatasetError

__all__ = ["BACKEND", "FnoMatBackend", "MatSource", "import_fno_mat", "mat_version"]

_LAYOUTS = {"fno-mat": "FNO .mat (MATLAB v5 or v7.3): 'coeff'/'sol' (Darcy) or 'a'/'u'[/'t']"}


def mat_version(path: Path) -> str:
    """``"7.3"`` (HDF5 behind a MATLAB header), ``"5"`` (or older, scipy-readable),
    ``"hdf5"`` (HDF5 without a MATLAB header: not written by MATLAB) or ``""``."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(128)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc})") from exc
    if h5py.is_hdf5(path):
        return "7.3" if head.startswith(b"MATLAB") else "hdf5"
    if head.startswith(b"MATLAB 5.0 MAT-file") or path.suffix == ".mat":
        return "5"
    return ""


class MatSource(Source):
    """An FNO ``.mat`` file: Darcy (``coeff``, ``sol``), Burgers or NS (``a``, ``u``[, ``t``])."""

    layout = "fno-mat"

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(path)
        if not self.path.exists():
            raise DatasetError(f"{self.path}: no such file")
        self.version = mat_version(self.path)
        self.info = {"format": f"matlab v{self.version}"}
        self.h5: h5py.File | None = None
        self._cache: dict[str, np.ndarray] = {}
        if self.version == "hdf5":  # row-major arrays of another tool: not reversed
            with open_source_h5(self.path) as f:
                found = ", ".join(
                    f"{k}{v.shape}" for k, v in sorted(f.items()) if isinstance(v, h5py.Dataset)
                )
            raise unknown_layout(
                self.path,
                f"an HDF5 file without a MATLAB header, so not a MATLAB file (arrays "
                f"[{found or 'none at the root'}])",
                _LAYOUTS,
                backend="fno-mat",
            )
        if self.version == "7.3":
            self.h5 = open_source_h5(self.path)
            shapes = {
                k: tuple(reversed(v.shape))
                for k, v in self.h5.items()
                if isinstance(v, h5py.Dataset) and v.dtype.kind in "fiub"
            }
        else:
            shapes = self._whos()
        if {"coeff", "sol"} <= set(shapes):
            self.keys = {"a": "coeff", "u": "sol"}
            self.pde = "Darcy flow (FNO piecewise-constant coefficient data)"
        elif {"a", "u"} <= set(shapes):
            self.keys = {"a": "a", "u": "u"}
            self.pde = "FNO " + self.path.stem
        else:
            found = ", ".join(f"{k}{v}" for k, v in sorted(shapes.items())) or "no arrays"
            raise unknown_layout(
                self.path, f"MATLAB variables [{found}]", _LAYOUTS, backend="fno-mat"
            )
        self.shapes = {k: shapes[v] for k, v in self.keys.items()}
        fill_input_output(
            self, self.shapes["a"], self.shapes["u"], time_last=True, where="'a'/'u' arrays"
        )
        if self.has_time and "t" in shapes:
            t = self._whole("t").reshape(-1).astype(np.float64)
            if len(t) == len(self.coords["time"]):
                self.coords["time"] = t
        self.info["variables"] = self.keys
        self.aliases = {v: [k] for k, v in self.keys.items() if v != k}

    def _whos(self) -> dict[str, tuple[int, ...]]:
        import scipy.io

        try:
            entries = scipy.io.whosmat(self.path)
        except Exception as exc:
            size = self.path.stat().st_size
            raise DatasetError(
                f"{self.path}: not a readable MATLAB file ({size} bytes; {exc}). It is "
                "truncated, corrupt or not a .mat file"
            ) from exc
        return {name: tuple(shape) for name, shape, cls in entries if cls != "char"}

    def _whole(self, var: str) -> np.ndarray:
        if var in self._cache:
            return self._cache[var]
        if self.h5 is not None:
            arr = np.transpose(h5_read(self.path, self.h5[var], ()))
        else:
            import scipy.io

            try:
                arr = scipy.io.loadmat(self.path, variable_names=[var])[var]
            except Exception as exc:
                raise DatasetError(
                    f"{self.path}: cannot read variable {var!r} ({exc}); the file is truncated "
                    "or damaged"
                ) from exc
        self._cache[var] = arr
        return arr

    def read(self, start, stop, names):
        out = {}
        for name in names:
            var = self.keys[name]
            if self.h5 is not None:
                # sample axis is the last one on disk: read the block, reverse the axes
                arr = np.transpose(h5_read(self.path, self.h5[var], np.s_[..., start:stop]))
            else:
                arr = self._whole(var)[start:stop]
            if name == "u" and self.has_time:
                arr = np.moveaxis(arr, -1, 1)
            out[name] = np.asarray(arr, dtype=np.float32)
        return out

    def close(self) -> None:
        if self.h5 is not None:
            self.h5.close()
            self.h5 = None
        self._cache.clear()


class FnoMatBackend(ImporterBackend):
    """Convert an FNO .mat file (MATLAB v5 or v7.3).

    Darcy coeff/sol become a/u; Burgers or NS a/u stay a/u, NS trajectories (N, X, Y, T)
    become (sample, time, x, y). The reversed axes of v7.3 files are put back.
    """

    name = "fno-mat"
    layouts = _LAYOUTS
    source_help = "An FNO .mat file (MATLAB v5 or v7.3)."

    def guess_can_open(self, path: str | os.PathLike) -> bool:
        p = Path(path)
        return p.suffix.lower() == ".mat" and p.is_file()

    def open_source(self, path, layout=None, *, reopen=False) -> Source:
        return MatSource(path)

    def import_file(self, src, output, **options) -> Path:
        p = Path(src)
        if p.is_file() and mat_version(p) == "":
            raise unknown_layout(
                p, "neither a MATLAB v5 nor a v7.3 (HDF5) file", _LAYOUTS, backend="fno-mat"
            )
        return super().import_file(src, output, **options)


BACKEND = FnoMatBackend()


def import_fno_mat(
    src: str | os.PathLike,
    output: str | os.PathLike,
    *,
    fields: Sequence[str] | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    compression: str | None = None,
    progress: bool = True,
) -> Path:
    """Convert an FNO ``.mat`` file (MATLAB v7.3 via h5py, or v5 via scipy) to our schema.

    Darcy files (``coeff``, ``sol``) give fields ``a`` (input) and ``u`` (output);
    Burgers / Navier-Stokes files (``a``, ``u``[, ``t``]) give ``a`` and ``u``, with a
    trajectory ``u`` (N, X, Y, T) stored as (sample, time, x, y). v7.3 arrays, which
    h5py returns with reversed axes, are transposed back. The grid is not stored in
    these files: a uniform ``linspace(0, 1, n)`` is written.

    Parameters are as for :func:`import_pdebench`.
    """
    return BACKEND.import_file(
        src,
        output,
        fields=fields,
        limit=limit,
        overwrite=overwrite,
        compression=compression,
        progress=progress,
    )
