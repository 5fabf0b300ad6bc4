"""FNO ``.mat`` files (MATLAB v5 and v7.3) and neuraloperator ``.pt`` files as sources.

* ``.mat`` v7.3 is HDF5: it is read lazily through h5py, block by block. MATLAB is
  column-major, so every array comes back with its axes reversed; we reverse them back.
* ``.mat`` v5 is read with :func:`scipy.io.loadmat`, one variable at a time (the format
  has no partial reads, and caps a variable at 2 GiB).
* ``.pt`` is read with ``torch.load(weights_only=True)`` (never a full unpickle), memory
  mapped when the file uses the zip format: tensors are paged in as they are copied, not
  loaded whole.

Mapping: Darcy ``coeff`` -> ``a`` (input), ``sol`` -> ``u`` (output); ``a`` / ``u`` (and
neuraloperator ``x`` / ``y``) -> ``a`` / ``u``; a ``u`` with one more axis than ``a`` is a
trajectory: MATLAB ``(N, X, Y, T)`` becomes ``(sample, time, x, y)``, neuraloperator
``(N, T, X)`` is already in that order. Neither format stores the grid: we write the
uniform grid ``linspace(0, 1, n)`` and say so in the ``source`` attribute.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import h5py
import numpy as np

from pdesurrogates.datasets._import_base import Source, h5_read, unknown_layout
from pdesurrogates.datasets._schema import SPATIAL_DIMS, FieldSpec, ParamSpec
from pdesurrogates.errors import DatasetError, SchemaError

__all__ = ["MatSource", "PtSource"]

_GRID_NOTE = "not stored in the file: uniform linspace(0, 1, n) assumed"


def _layout_fields(src: Source, a_shape, u_shape, *, time_last: bool, where: str) -> None:
    """Fill coords and fields of a source with input ``a`` and output ``u``."""
    if a_shape[0] != u_shape[0]:
        raise SchemaError(
            f"{src.path}: {where} hold {a_shape[0]} and {u_shape[0]} samples; they must match"
        )
    spatial = tuple(a_shape[1:])
    if not 1 <= len(spatial) <= 3:
        raise SchemaError(f"{src.path}: input has shape {a_shape}; expected (N, X[, Y, Z])")
    dims = SPATIAL_DIMS[: len(spatial)]
    u_spatial = u_shape[1:-1] if time_last else u_shape[2:]
    has_time = len(u_shape) == len(a_shape) + 1
    if not has_time and tuple(u_shape[1:]) != spatial:
        raise SchemaError(
            f"{src.path}: {where} have shapes {a_shape} and {u_shape}: neither the same grid "
            "nor a trajectory (one extra time axis)"
        )
    if has_time and tuple(u_spatial) != spatial:
        raise SchemaError(
            f"{src.path}: output {u_shape} does not have the input's grid {spatial} (a "
            f"trajectory is {'(N, X, ..., T)' if time_last else '(N, T, X, ...)'})"
        )
    src.n_samples = int(a_shape[0])
    for d, n in zip(dims, spatial, strict=True):
        src.coords[d] = np.linspace(0.0, 1.0, n)
    src.fields["a"] = FieldSpec(dims=("sample", *dims), role="input", long_name="input a")
    if has_time:
        nt = u_shape[-1] if time_last else u_shape[1]
        src.coords = {"time": np.arange(nt, dtype=np.float64), **src.coords}
        src.fields["u"] = FieldSpec(
            dims=("sample", "time", *dims), role="output", long_name="output trajectory u"
        )
    else:
        src.fields["u"] = FieldSpec(dims=("sample", *dims), role="output", long_name="output u")
    src.has_time = has_time
    src.info["grid"] = _GRID_NOTE


def mat_version(path: Path) -> str:
    """``"7.3"`` (HDF5-based), ``"5"`` (or older, scipy-readable) or ``""``."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(128)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc})") from exc
    if h5py.is_hdf5(path):
        return "7.3"
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
        if self.version == "7.3":
            from pdesurrogates.datasets._import_base import open_source_h5

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
            raise unknown_layout(self.path, f"MATLAB variables [{found}]", ["fno-mat"])
        self.shapes = {k: shapes[v] for k, v in self.keys.items()}
        _layout_fields(
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


class PtSource(Source):
    """A neuraloperator ``.pt`` file: a dict with tensors ``x`` (input) and ``y`` (output)."""

    layout = "neuralop-pt"

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(path)
        import torch

        if not self.path.exists():
            raise DatasetError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise DatasetError(f"{self.path}: is a directory, expected a .pt file")
        self.info = {"format": "torch.save dict"}
        mmap = zipfile.is_zipfile(self.path)
        try:
            obj = torch.load(self.path, map_location="cpu", weights_only=True, mmap=mmap)
        except pickle.UnpicklingError as exc:
            raise DatasetError(
                f"{self.path}: holds objects other than tensors and plain containers, which "
                f"we never unpickle ({str(exc).splitlines()[0]}). Re-save it as a dict of "
                "tensors"
            ) from exc
        except (RuntimeError, EOFError, OSError, ValueError) as exc:
            size = self.path.stat().st_size
            raise DatasetError(
                f"{self.path}: cannot read as a torch file ({size} bytes; "
                f"{str(exc).splitlines()[0]}). The file is truncated, corrupt or not a .pt file"
            ) from exc
        if not isinstance(obj, dict) or not all(
            isinstance(obj.get(k), torch.Tensor) for k in ("x", "y")
        ):
            if isinstance(obj, dict):
                found = "dict with keys " + str(
                    {
                        k: tuple(v.shape) if hasattr(v, "shape") else type(v).__name__
                        for k, v in obj.items()
                    }
                )
            else:
                found = type(obj).__name__
            raise unknown_layout(self.path, found, ["neuralop-pt"])
        self.x, self.y = obj["x"], obj["y"]
        _layout_fields(
            self, tuple(self.x.shape), tuple(self.y.shape), time_last=False, where="'x'/'y'"
        )
        self.info["dtypes"] = {"x": str(self.x.dtype), "y": str(self.y.dtype)}
        self.aliases = {"x": ["a"], "y": ["u"]}
        for k, v in obj.items():
            if k in ("x", "y") or not isinstance(v, torch.Tensor) or v.numel() != 1:
                continue
            self.params[k] = ParamSpec(dist="discrete", long_name=f"file entry {k}")
            self.param_values[k] = np.full(self.n_samples, float(v.reshape(())))
        self.pde = "neuraloperator " + self.path.stem

    def read(self, start, stop, names):
        import torch

        out = {}
        for name in names:
            t = (self.x if name == "a" else self.y)[start:stop]
            if t.dtype == torch.bfloat16:  # no numpy equivalent; exact in float32
                t = t.float()
            out[name] = t.numpy().astype(np.float32)
        return out

    def close(self) -> None:
        self.x = self.y = None
