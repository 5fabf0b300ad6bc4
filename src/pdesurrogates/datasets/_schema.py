"""The ``pdesurrogates-h5`` schema: constants, specs and validation helpers.

One file holds one dataset of N samples on a shared grid. Version 2 (written today) is a
netCDF-4 file that ``xr.open_dataset(path, engine="h5netcdf")`` and ``netCDF4.Dataset``
read as they are::

    /                      attrs: schema, schema_version=2, Conventions, title,
                                  dataset_name, n_samples, n_spatial_dims, spatial_dims,
                                  pde, source, created_by, complete (int8 0/1)
    /sample, /time, /x, /y, /z, /component   coordinate variables (dimension scales),
                                  attrs long_name, units, axis, periodic (int8 0/1)
    /<field>               data variable, float16/32/64 as written; dims a subset of
                                  (sample, time, x, y, z, component), attached dimension
                                  scales; attrs kind="field", dims, role, long_name, units
    /<param>               float64 (sample,), attrs kind="param", long_name, units, dist,
                                  dist_bounds | loc/scale
    /splits/{train,valid,test}   int64 indices into sample (a group: xarray skips it)
    /stats/<field>/{mean,std}    float64, computed on the train split (or all samples)

Version 1 (still read, upgraded by :func:`pdesurrogates.datasets.migrate`) kept the
fields in ``/fields/<name>`` (always float32) and the parameters in ``/params/<name>``.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pdesurrogates.errors import DatasetError, PdeSurrogatesError, SchemaError

__all__ = [
    "COORD_DIMS",
    "DIM_ORDER",
    "DISTRIBUTIONS",
    "MAX_METADATA_BYTES",
    "MAX_SAMPLE_BYTES",
    "ROLES",
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "SPATIAL_DIMS",
    "FieldSpec",
    "ParamSpec",
    "ValidationReport",
    "check_file",
    "field_key",
    "held_open",
    "lock_failed",
    "open_error",
    "open_h5",
    "param_key",
    "read_bounded",
    "reading",
    "refuse_special",
]

SCHEMA_NAME = "pdesurrogates-h5"
SCHEMA_VERSION = 2
#: Versions this pdesurrogates reads (older ones are upgraded by ``pdesurrogates migrate``).
READABLE_VERSIONS = (1, 2)
DIM_ORDER = ("sample", "time", "x", "y", "z", "component")
SPATIAL_DIMS = ("x", "y", "z")
COORD_DIMS = DIM_ORDER
ROLES = ("input", "output", "state", "coefficient")
DISTRIBUTIONS = ("uniform", "normal", "loguniform", "discrete")
REQUIRED_ROOT_ATTRS = (
    "schema",
    "schema_version",
    "dataset_name",
    "n_samples",
    "n_spatial_dims",
    "spatial_dims",
    "complete",
)
SPLIT_NAMES = ("train", "valid", "test")
#: Names of version-2 root objects that are not fields or parameters.
RESERVED_NAMES = (*DIM_ORDER, "splits", "stats", "fields", "params")
#: Float types a field may be stored in (None in DatasetWriter keeps the input's).
FIELD_DTYPES = ("float16", "float32", "float64")


def field_key(version: int, name: str) -> str:
    """HDF5 path of field ``name`` in a file of schema ``version``."""
    return f"fields/{name}" if version == 1 else name


def param_key(version: int, name: str) -> str:
    """HDF5 path of parameter ``name`` in a file of schema ``version``."""
    return f"params/{name}" if version == 1 else name


@dataclass(frozen=True)
class FieldSpec:
    """Description of one field: its dims (in schema order), role, units and long name."""

    dims: tuple[str, ...]
    role: str = "output"
    units: str = ""
    long_name: str = ""

    def __post_init__(self) -> None:
        dims = tuple(self.dims)
        object.__setattr__(self, "dims", dims)
        unknown = [d for d in dims if d not in DIM_ORDER]
        if unknown:
            raise ValueError(f"FieldSpec.dims: unknown dims {unknown}; allowed: {DIM_ORDER}")
        order = [DIM_ORDER.index(d) for d in dims]
        if order != sorted(order) or len(set(dims)) != len(dims):
            raise ValueError(
                f"FieldSpec.dims {dims} must be distinct and ordered as in {DIM_ORDER}"
            )
        if self.role not in ROLES:
            raise ValueError(f"FieldSpec.role {self.role!r} must be one of {ROLES}")


@dataclass(frozen=True)
class ParamSpec:
    """A per-sample scalar parameter and the distribution it was drawn from.

    ``dist`` is one of ``uniform`` / ``loguniform`` (with ``bounds``), ``normal`` (with
    ``loc`` and ``scale``) or ``discrete``.
    """

    dist: str = "discrete"
    units: str = ""
    bounds: tuple[float, float] | None = None
    loc: float | None = None
    scale: float | None = None
    long_name: str = ""

    def __post_init__(self) -> None:
        if self.dist not in DISTRIBUTIONS:
            raise ValueError(f"ParamSpec.dist {self.dist!r} must be one of {DISTRIBUTIONS}")
        if self.dist in ("uniform", "loguniform"):
            if self.bounds is None or len(self.bounds) != 2 or self.bounds[0] >= self.bounds[1]:
                raise ValueError(
                    f"ParamSpec with dist={self.dist!r} needs bounds=(low, high), low < high"
                )
            object.__setattr__(self, "bounds", (float(self.bounds[0]), float(self.bounds[1])))
        if self.dist == "normal" and (self.loc is None or self.scale is None or self.scale <= 0):
            raise ValueError("ParamSpec with dist='normal' needs loc and scale > 0")

    def to_attrs(self, version: int = SCHEMA_VERSION) -> dict[str, Any]:
        """The HDF5 attributes of the parameter (``dist_bounds`` in version 2: ``bounds``
        is a CF attribute naming a variable, so version 2 does not use it)."""
        attrs: dict[str, Any] = {"dist": self.dist, "units": self.units}
        if self.long_name:
            attrs["long_name"] = self.long_name
        if self.bounds is not None:
            key = "bounds" if version == 1 else "dist_bounds"
            attrs[key] = np.asarray(self.bounds, dtype=np.float64)
        if self.loc is not None:
            attrs["loc"] = float(self.loc)
        if self.scale is not None:
            attrs["scale"] = float(self.scale)
        return attrs

    @classmethod
    def from_attrs(cls, attrs) -> ParamSpec:
        bounds = attrs.get("dist_bounds", attrs.get("bounds"))
        return cls(
            dist=_text(attrs.get("dist", "discrete")),
            units=_text(attrs.get("units", "")),
            bounds=None if bounds is None else tuple(float(b) for b in bounds),
            loc=None if attrs.get("loc") is None else float(attrs["loc"]),
            scale=None if attrs.get("scale") is None else float(attrs["scale"]),
            long_name=_text(attrs.get("long_name", "")),
        )


def _text(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray) and v.shape == ():
        return _text(v.item())
    return str(v)


def _texts(v: Any) -> list[str]:
    return [_text(x) for x in np.atleast_1d(v)]


#: Largest metadata array (a coordinate, parameter, split or statistic) read into memory.
MAX_METADATA_BYTES = 256 * 2**20
#: Largest single sample of one field a reader will allocate.
MAX_SAMPLE_BYTES = 16 * 2**30

# What h5py / numpy raise on a damaged or hostile file. PdeSurrogatesError passes through.
_LOW_LEVEL = (
    OSError,
    KeyError,
    RuntimeError,
    TypeError,
    ValueError,
    AttributeError,
    MemoryError,
    IndexError,
    LookupError,
    ArithmeticError,
    UnicodeError,
    RecursionError,
    SystemError,
    BufferError,
    AssertionError,
)


@contextmanager
def reading(path: Any, action: str = "read") -> Iterator[None]:
    """Turn low-level failures while reading ``path`` into :class:`DatasetError`.

    Errors of the package (:class:`PdeSurrogatesError`) pass through unchanged; anything
    h5py, HDF5 or numpy raise on a damaged file is chained into a message that names the
    file and says what to do.
    """
    try:
        yield
    except PdeSurrogatesError:
        raise
    except MemoryError as exc:
        raise DatasetError(
            f"{path}: cannot {action}: it declares more data than fits in memory; the file "
            "is corrupt or not meant to be read whole. Run `pdesurrogates validate` on it"
        ) from exc
    except _LOW_LEVEL as exc:
        if lock_failed(exc):
            raise open_error(Path(path), exc, "") from exc
        raise DatasetError(
            f"{path}: cannot {action} ({type(exc).__name__}: {exc}); the file is corrupt or "
            "not a valid dataset. Run `pdesurrogates validate` on it, then regenerate it or "
            "copy it again"
        ) from exc


_SPECIAL = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def refuse_special(path: str | os.PathLike) -> None:
    """Raise :class:`DatasetError` if ``path`` is a FIFO, device or socket (never opened).

    Missing paths, regular files and directories pass (they get their own messages).
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise DatasetError(
            f"{path}: cannot access ({exc}); check the path and permissions"
        ) from exc
    for test, kind in _SPECIAL:
        if test(mode):
            raise DatasetError(
                f"{path}: is {kind}, not a regular file; it is refused without being opened. "
                "Copy the data into a regular file and open that"
            )


def check_file(path: str | os.PathLike) -> Path:
    """``path`` as a :class:`~pathlib.Path` if it is an existing regular file, else raise."""
    p = Path(path)
    refuse_special(p)
    if not p.exists():
        hint = ""
        if Path(str(p) + ".partial").exists():
            hint = (
                f" (an unfinished {p.name}.partial exists: a generator was interrupted; "
                "rerun it with --resume)"
            )
        raise DatasetError(f"{p}: no such file{hint}")
    if p.is_dir():
        raise DatasetError(f"{p}: is a directory, expected an HDF5 file")
    return p


def open_h5(path: str | os.PathLike, mode: str = "r") -> h5py.File:
    """Open an HDF5 file, turning low-level failures into :class:`DatasetError`.

    FIFOs, devices and sockets are refused before anything opens them.
    """
    p = check_file(path) if mode == "r" else Path(path)
    try:
        return h5py.File(p, mode)
    except Exception as exc:  # h5py raises OSError, but a hostile superblock may give more
        raise open_error(p, exc, "regenerate it or copy it again") from exc


def open_error(path: Path, exc: BaseException, remedy: str) -> DatasetError:
    """Why ``h5py.File(path)`` failed with ``exc``: the file is held open by another
    process (HDF5's file lock), or it is truncated, corrupt or not HDF5 (``remedy`` says
    what to do then)."""
    if held_open(exc):
        return DatasetError(
            f"{path}: is open in another process (HDF5 could not lock it: errno 11, resource "
            "temporarily unavailable); a running simulation or another pdesurrogates command "
            "may be writing it. Wait for that process to finish (or close the file there), "
            "or work on a copy of the file"
        )
    if isinstance(exc, OSError) and exc.errno == errno.ENOLCK:
        return DatasetError(
            f"{path}: HDF5 cannot lock files on this filesystem (errno {errno.ENOLCK}, no "
            "locks available: e.g. NFS without a lock service); set the environment variable "
            "HDF5_USE_FILE_LOCKING=FALSE, or work on a copy on a local disk"
        )
    size = path.stat().st_size if path.exists() else 0
    return DatasetError(
        f"{path}: cannot open as HDF5 ({size} bytes; {exc}). The file is truncated, corrupt "
        f"or not HDF5; {remedy}"
    )


def held_open(exc: BaseException) -> bool:
    """Whether ``exc`` is HDF5 refusing a file because another process has locked it
    (errno 11; HDF5 says "unable to lock file" for other lock failures too)."""
    return isinstance(exc, OSError) and exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK)


def lock_failed(exc: BaseException) -> bool:
    """Whether ``exc`` is HDF5 failing to lock a file: held by another process
    (:func:`held_open`) or a filesystem without locks (ENOLCK); :func:`open_error` says
    which, and what to do."""
    return held_open(exc) or (isinstance(exc, OSError) and exc.errno == errno.ENOLCK)


def read_bounded(
    ds: h5py.Dataset, path: Any, what: str, limit: int = MAX_METADATA_BYTES
) -> np.ndarray:
    """Read the whole dataset ``ds`` after checking its declared size against ``limit``."""
    nbytes = int(np.prod(ds.shape, dtype=object)) * int(ds.dtype.itemsize)
    if nbytes > limit:
        raise SchemaError(
            f"{path}: {what} declares shape {ds.shape} ({_human(nbytes)}), more than the "
            f"{_human(limit)} allowed for it; the file is corrupt or hostile and was not read. "
            "Regenerate it or copy it again"
        )
    return ds[()]


def _human(nbytes: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.4g} {unit}" if unit != "bytes" else f"{nbytes} bytes"
        nbytes /= 1024
    return f"{nbytes} bytes"  # pragma: no cover


@dataclass
class ValidationReport:
    """What :func:`validate` found in a valid file.

    ``notes`` are findings that do not make the file invalid (no checksums, a constant
    field, an empty valid/test split), each naming the object and what to do.
    """

    path: str
    n_samples: int
    fields: dict[str, tuple[str, ...]]
    shapes: dict[str, tuple[int, ...]]
    params: list[str]
    splits: dict[str, int]
    checked_values: bool
    attrs: dict[str, Any] = field(default_factory=dict)
    deep: bool = False
    checksums: bool = False
    notes: list[str] = field(default_factory=list)


def source_text(source: Any) -> str:
    """Serialise a ``source`` description (str or dict) for the root attribute."""
    if isinstance(source, str):
        return source
    return json.dumps(source, sort_keys=True, default=str)
