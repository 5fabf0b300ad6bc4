"""Where plain arrays come from: in-memory arrays, an xarray Dataset, or a user's file.

An :class:`ArrayStore` lists its variables (name, shape, dtype, named dims when the
format has them) without reading values, and reads any slice of one variable. The
stores are the only format-specific part of ``pdesurrogates import arrays``: plain
HDF5 (h5py, nested groups as ``group/name``), ``.npz`` (numpy, never unpickled),
netCDF 3/4 (xarray) and zarr (xarray, when the ``zarr`` package is importable).
"""

from __future__ import annotations

import os
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pdesurrogates.datasets.backends._base import check_storage, h5_read, open_source_h5
from pdesurrogates.errors import DatasetError

__all__ = [
    "ArrayStore",
    "DictStore",
    "Variable",
    "XarrayStore",
    "describe_variables",
    "open_array_file",
    "plain_arrays_hint",
]

_NUMERIC = "biuf"


@dataclass(frozen=True)
class Variable:
    """One array of a store: its name, shape, dtype and (netCDF, zarr, xarray) dim names."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    dims: tuple[str, ...] | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def numeric(self) -> bool:
        return self.dtype.kind in _NUMERIC

    def __str__(self) -> str:
        dims = f" dims {self.dims}" if self.dims else ""
        return f"{self.name} {self.shape} {self.dtype}{dims}"


def describe_variables(variables: Mapping[str, Variable], limit: int = 12) -> str:
    """``"coeff (64, 32, 32) float64, solution (...)"``: the listing used in messages."""
    items = [str(v) for v in variables.values()]
    more = f", ... ({len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more if items else "no arrays"


class ArrayStore(ABC):
    """Named arrays to import. Subclasses fill ``variables`` and implement :meth:`read`.

    Attributes
    ----------
    where : str
        How messages name the source (a file path, or ``arrays``).
    kind : str
        ``HDF5``, ``npz``, ``netCDF``, ``zarr``, ``xarray`` or ``arrays``.
    variables : dict of str to Variable
    inputs : list of Path
        Files the data come from (the output must not be one of them).
    """

    kind = ""

    def __init__(self, where: str) -> None:
        self.where = where
        self.variables: dict[str, Variable] = {}
        self.inputs: list[Path] = []

    @abstractmethod
    def read(self, name: str, sel: tuple) -> np.ndarray:
        """``variable[sel]`` as a numpy array."""

    def coord(self, dim: str) -> tuple[np.ndarray, dict[str, Any]] | None:
        """The coordinate values and attributes of a named dim, if the store has them."""
        return None

    def label(self, name: str) -> str:
        """How a message names one variable."""
        return f"{name!r}"

    def close(self) -> None:  # noqa: B027 (optional hook: in-memory stores hold no handle)
        """Release file handles."""

    def __enter__(self) -> ArrayStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class DictStore(ArrayStore):
    """In-memory arrays (:func:`~pdesurrogates.datasets.from_arrays`)."""

    kind = "arrays"

    def __init__(self, arrays: Mapping[str, Any]) -> None:
        super().__init__("arrays")
        if not isinstance(arrays, Mapping) or not arrays:
            raise ValueError("arrays: give a non-empty dict of name -> array")
        self._arrays = {}
        for name, value in arrays.items():
            arr = np.asarray(value)
            self._arrays[str(name)] = arr
            self.variables[str(name)] = Variable(str(name), arr.shape, arr.dtype)

    def label(self, name: str) -> str:
        return f"arrays[{name!r}]"

    def read(self, name, sel):
        return np.asarray(self._arrays[name][sel])


class XarrayStore(ArrayStore):
    """The data variables of an ``xarray.Dataset`` (read lazily, slice by slice)."""

    kind = "xarray"

    def __init__(self, ds: Any, where: str = "dataset", kind: str = "xarray") -> None:
        super().__init__(where)
        self.kind = kind
        self.ds = ds
        for name, var in ds.data_vars.items():
            self.variables[str(name)] = Variable(
                str(name),
                tuple(int(n) for n in var.shape),
                np.dtype(var.dtype),
                tuple(str(d) for d in var.dims),
                dict(var.attrs),
            )

    def read(self, name, sel):
        return np.asarray(self.ds[name].variable[sel].values)

    def coord(self, dim):
        if dim not in self.ds.coords:
            return None
        var = self.ds.coords[dim]
        if var.ndim != 1 or np.dtype(var.dtype).kind not in "iuf":
            return None
        return np.asarray(var.values), dict(var.attrs)

    def close(self) -> None:
        if self.kind != "xarray":  # a dataset we opened (not one the caller gave us)
            self.ds.close()


class H5Store(ArrayStore):
    """A plain HDF5 file read with h5py; datasets in groups are named ``group/name``."""

    kind = "HDF5"

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.inputs = [path]
        self.path = path
        self.f = open_source_h5(path)

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset) and len(self.variables) < 10_000:
                try:
                    dtype = np.dtype(obj.dtype)
                except TypeError:  # an HDF5 type numpy has no name for
                    dtype = np.dtype(object)
                self.variables[name] = Variable(name, tuple(obj.shape), dtype, None, {})

        try:
            self.f.visititems(visit)
        except (OSError, RuntimeError) as exc:
            self.f.close()
            raise DatasetError(
                f"{path}: cannot list the arrays of this HDF5 file ({exc}); the file is "
                "truncated or damaged. Download or copy it again"
            ) from exc

    def read(self, name, sel):
        ds = self.f[name]
        check_storage(self.path, ds)
        return np.asarray(h5_read(self.path, ds, sel))

    def close(self) -> None:
        self.f.close()


class NpzStore(ArrayStore):
    """A numpy ``.npz`` archive; object arrays are refused (never unpickled)."""

    kind = "npz"

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.inputs = [path]
        self.path = path
        try:
            self.npz = np.load(path, allow_pickle=False)
            names = list(self.npz.files)
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise DatasetError(
                f"{path}: cannot open as a numpy .npz archive ({exc}); the file is truncated "
                "or not an .npz file"
            ) from exc
        self._cache: dict[str, np.ndarray] = {}
        for name in names:
            try:
                arr = self._load(name)
            except ValueError:  # an object array: reported when it is asked for
                self.variables[name] = Variable(name, (), np.dtype(object))
                continue
            self.variables[name] = Variable(name, arr.shape, arr.dtype)

    def _load(self, name: str) -> np.ndarray:
        if name not in self._cache:
            try:
                self._cache[name] = self.npz[name]
            except (OSError, zipfile.BadZipFile, EOFError) as exc:
                raise DatasetError(
                    f"{self.path}: cannot read {name!r} ({exc}); the archive is truncated or "
                    "damaged"
                ) from exc
        return self._cache[name]

    def read(self, name, sel):
        return np.asarray(self._load(name)[sel])

    def close(self) -> None:
        self.npz.close()
        self._cache.clear()


def _open_xarray_file(path: Path, engine: str, kind: str) -> XarrayStore:
    import xarray as xr

    try:
        if engine == "zarr":
            ds = xr.open_zarr(path, consolidated=None, chunks=None)
        else:
            ds = xr.open_dataset(path, engine=engine, chunks=None)
    except Exception as exc:  # each engine raises its own types on a damaged file
        raise DatasetError(
            f"{path}: cannot open as {kind} ({type(exc).__name__}: {exc}); the file is "
            f"truncated, damaged or not a {kind} file"
        ) from exc
    store = XarrayStore(ds, str(path), kind)
    store.inputs = [path]
    return store


def _is_zarr(p: Path) -> bool:
    return p.suffix == ".zarr" or any(
        (p / marker).exists() for marker in (".zgroup", ".zarray", "zarr.json")
    )


def _is_netcdf4(path: Path) -> bool:
    """An HDF5 file written through netCDF-4 (dimension scales give named dims)."""
    with h5py.File(path, "r") as f:
        if "_NCProperties" in f.attrs:
            return True
        return any(
            isinstance(obj, h5py.Dataset) and "DIMENSION_LIST" in obj.attrs for obj in f.values()
        )


def open_array_file(path: str | os.PathLike) -> ArrayStore:
    """Open a user's HDF5, ``.npz``, netCDF or zarr file as an :class:`ArrayStore`."""
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"{p}: no such file or directory")
    if p.is_dir() or p.suffix == ".zarr":
        if not _is_zarr(p):
            raise DatasetError(
                f"{p}: is a directory and not a zarr store (no .zgroup, .zarray or zarr.json)"
            )
        try:
            import zarr  # noqa: F401
        except ImportError as exc:
            raise DatasetError(
                f"{p}: is a zarr store; reading it needs the zarr package: pip install zarr"
            ) from exc
        return _open_xarray_file(p, "zarr", "zarr")
    if not p.is_file():
        raise DatasetError(f"{p}: is not a regular file; copy the data into a file first")
    with open(p, "rb") as fh:
        head = fh.read(8)
    if head.startswith(b"CDF"):
        return _open_xarray_file(p, "scipy", "netCDF")
    if head.startswith(b"PK"):
        return NpzStore(p)
    if h5py.is_hdf5(p):
        with open_source_h5(p) as f:
            if "schema" in f.attrs:
                raise DatasetError(
                    f"{p}: is already a pdesurrogates-h5 file; use it as it is (pdesurrogates "
                    "info / train ... --data)"
                )
        if _is_netcdf4(p):
            return _open_xarray_file(p, "h5netcdf", "netCDF")
        return H5Store(p)
    size = p.stat().st_size
    raise DatasetError(
        f"{p}: is not an HDF5, netCDF, .npz or zarr file ({size} bytes). The file is "
        "truncated or in another format; convert it with numpy or xarray first"
    )


# --- hints for the other commands ---------------------------------------------------
def plain_arrays_hint(f: Any, path: Any) -> str:
    """For an open HDF5 file without our schema: the ``import arrays`` command, or ``""``.

    A file whose numeric datasets (with at least two axes) are not of a known format is
    most likely a user's own arrays: the refusal of ``info``, ``open_dataset`` and the
    importers then says how to bring it in.
    """
    found: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if len(found) < 8 and isinstance(obj, h5py.Dataset):
            kind = np.dtype(obj.dtype).kind if obj.dtype.names is None else "V"
            if kind in "biuf" and len(obj.shape) >= 2:
                found.append(f"{name} {tuple(obj.shape)} {obj.dtype}")

    try:
        if "schema" in f.attrs:
            return ""
        f.visititems(visit)
    except Exception:  # a damaged file: its own error says what is wrong
        return ""
    if not found:
        return ""
    return (
        f"this looks like plain arrays ({', '.join(found)}): run `pdesurrogates import arrays "
        f"{path} -o OUT.h5 --input NAME --target NAME` with names from this list"
    )
