"""The registry of importer backends, and layout detection by asking each of them.

Backends are found, once, in three places: every module of this package that binds an
:class:`~pdesurrogates.datasets.backends.ImporterBackend` instance to the name
``BACKEND``; the ``pdesurrogates.importers`` entry-point group of installed packages
(each entry point loads a backend class or instance); and :func:`register_backend`.
A user's own arrays (``pdesurrogates import arrays``) need no backend: the roles come
from the command line, and :func:`unknown_layout` points such files there. Adding an
importer is therefore one new module (plus its test): the ``pdesurrogates
import`` sub-commands, :func:`pdesurrogates.datasets.import_dataset` and reading foreign
files in place with :func:`pdesurrogates.datasets.open_dataset` all go through here.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py

from pdesurrogates._progress import logger
from pdesurrogates.datasets._schema import lock_failed, open_error
from pdesurrogates.datasets.backends._array_stores import plain_arrays_hint
from pdesurrogates.datasets.backends._base import ImporterBackend
from pdesurrogates.errors import DatasetError, SchemaError

__all__ = [
    "get_backend",
    "guess_backend",
    "import_dataset",
    "list_backends",
    "register_backend",
    "unknown_layout",
]

_ENTRY_POINT_GROUP = "pdesurrogates.importers"
_REGISTRY: dict[str, ImporterBackend] = {}
_LOADED = False


def register_backend(backend: ImporterBackend | type[ImporterBackend]) -> ImporterBackend:
    """Add a backend (an instance, or a class to instantiate); returns the instance.

    A backend of the same ``name`` is replaced.
    """
    if isinstance(backend, type):
        backend = backend()
    if not isinstance(backend, ImporterBackend) or not backend.name:
        raise ValueError(f"{backend!r} is not an ImporterBackend with a name")
    _REGISTRY[backend.name] = backend
    return backend


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    here = str(Path(__file__).parent)
    for info in sorted(pkgutil.iter_modules([here]), key=lambda m: m.name):
        module = importlib.import_module(f"{__package__}.{info.name}")
        backend = getattr(module, "BACKEND", None)
        if isinstance(backend, ImporterBackend) and backend.name not in _REGISTRY:
            _REGISTRY[backend.name] = backend
    from importlib.metadata import entry_points

    for ep in entry_points(group=_ENTRY_POINT_GROUP):
        try:
            register_backend(ep.load())
        except Exception as exc:  # a broken plugin must not break the package
            logger.warning("importer backend %r (%s) failed to load: %s", ep.name, ep.value, exc)


def list_backends() -> list[ImporterBackend]:
    """Every registered importer backend, sorted by name."""
    _load()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def get_backend(name: str) -> ImporterBackend:
    """The backend called ``name`` (e.g. ``"pdebench"``); ValueError names the known ones."""
    _load()
    if name not in _REGISTRY:
        raise ValueError(f"unknown importer backend {name!r}; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def _is_own_file(path: Path) -> bool:
    try:
        if not (path.is_file() and h5py.is_hdf5(path)):
            return False
        with h5py.File(path, "r") as f:
            return "schema" in f.attrs
    except Exception:  # a damaged file is not ours to recognise; its reader says why
        return False


def _is_special(path: Path) -> bool:
    """A FIFO, device or socket: never opened (a FIFO would block the reader forever)."""
    try:
        return path.exists() and not (path.is_file() or path.is_dir())
    except OSError:
        return True


def guess_backend(
    path: str | os.PathLike, *, exclude: Sequence[str] = ()
) -> ImporterBackend | None:
    """The first backend (by name) whose ``guess_can_open`` accepts ``path``, or None.

    None for our own ``pdesurrogates-h5`` files, missing paths and unrecognised files.
    ``exclude``: backend names not to ask.
    """
    p = Path(path)
    if not p.exists() or _is_special(p) or _is_own_file(p):
        return None
    for backend in list_backends():
        if backend.name in exclude:
            continue
        try:
            if backend.guess_can_open(p):
                return backend
        except Exception as exc:  # guess_can_open must not raise; be safe anyway
            logger.debug("%s.guess_can_open(%s) raised %s", backend.name, p, exc)
    return None


def unknown_layout(
    path: str | os.PathLike,
    found: str,
    layouts: Mapping[str, str] | None = None,
    *,
    backend: str | None = None,
) -> DatasetError:
    """The error for a file whose layout is not recognised (or, when HDF5 refuses it
    because another process holds it open, the error that says so).

    ``layouts``: the layouts that were expected, with descriptions (default: every
    backend's). ``backend``: the backend that tried; when another backend recognises the
    file, the message names its command.
    """
    held = _held_open(path)
    if held is not None:  # every backend failed to open it: not a layout problem
        return held
    if layouts is None:
        layouts = {k: v for b in list_backends() for k, v in b.layouts.items()}
    lines = "; ".join(f"{k} ({v})" for k, v in layouts.items())
    other = guess_backend(path, exclude=[backend] if backend else [])
    layout = other.layout_of(path) if other is not None else None
    if other is not None and layout:
        todo = f"This looks like a {layout} file: use `pdesurrogates import {other.name}`"
    else:
        todo = (
            _plain_arrays(path) or "Check the file, or write your own converter with DatasetWriter"
        )
    return SchemaError(
        f"{path}: unknown layout: found {found}. Recognised layouts: {lines}. {todo}"
    )


def _held_open(path: str | os.PathLike) -> DatasetError | None:
    """The error for an HDF5 file that cannot be locked (another process holds it, or
    the filesystem has no locks), else None."""
    p = Path(path)
    try:
        if _is_special(p) or not (p.is_file() and h5py.is_hdf5(p)):
            return None
        h5py.File(p, "r").close()
    except Exception as exc:
        return open_error(p, exc, "") if lock_failed(exc) else None
    return None


def _plain_arrays(path: str | os.PathLike) -> str:
    """The ``import arrays`` hint for an HDF5 file of plain arrays (else ``""``)."""
    p = Path(path)
    try:
        if _is_special(p) or not (p.is_file() and h5py.is_hdf5(p)):
            return ""
        with h5py.File(p, "r") as f:
            hint = plain_arrays_hint(f, p)
    except Exception:  # a damaged file: the caller's message stands alone
        return ""
    return hint[:1].upper() + hint[1:]


def import_dataset(
    src: str | os.PathLike,
    output: str | os.PathLike,
    *,
    backend: str | None = None,
    fields: Sequence[str] | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    compression: str | None = None,
    progress: bool = True,
) -> Path:
    """Convert a foreign dataset into a ``pdesurrogates-h5`` file with any backend.

    Parameters
    ----------
    src : path-like
        The foreign file (or folder, for The Well).
    output : path-like
        The new file, written atomically.
    backend : str, optional
        The backend's name (``pdebench``, ``the-well``, ``fno-mat``, ``neuralop-pt``, or
        a registered one); by default the first whose ``guess_can_open`` accepts ``src``.
    fields, limit, overwrite, compression, progress
        As for :func:`pdesurrogates.datasets.import_pdebench`.

    Returns
    -------
    pathlib.Path
        The complete output file.
    """
    if backend is None:
        found = guess_backend(src)
        if found is None:
            if not Path(src).exists():
                raise FileNotFoundError(f"{src}: no such file or directory")
            raise unknown_layout(src, "no recognised structure")
    else:
        found = get_backend(backend)
    return found.import_file(
        src,
        output,
        fields=fields,
        limit=limit,
        overwrite=overwrite,
        compression=compression,
        progress=progress,
    )
