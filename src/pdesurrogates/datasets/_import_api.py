"""Importers: PDEBench, The Well, FNO ``.mat`` and neuraloperator ``.pt`` to ``pdesurrogates-h5``.

Each ``import_*`` function streams its source block by block (about 32 MiB of source data
at a time) through :class:`~pdesurrogates.datasets.DatasetWriter`, so files larger than
memory convert with bounded memory; the output is atomic (``OUT.partial`` renamed when
complete), carries the source's conventional splits in ``/splits`` and validates.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import h5py

from pdesurrogates.datasets._import_base import Source, convert, unknown_layout
from pdesurrogates.datasets._import_fno import MatSource, PtSource, mat_version
from pdesurrogates.datasets._import_pdebench import detect_pdebench, open_pdebench
from pdesurrogates.datasets._import_well import WellSource, is_well_file
from pdesurrogates.errors import DatasetError

__all__ = [
    "detect_layout",
    "import_fno_mat",
    "import_neuralop_pt",
    "import_pdebench",
    "import_the_well",
    "open_source",
]


def detect_layout(path: str | os.PathLike) -> str | None:
    """The community layout of ``path`` (a key of ``LAYOUTS``), or None if not recognised.

    Returns None for our own ``pdesurrogates-h5`` files and for anything unreadable.
    """
    p = Path(path)
    if p.is_dir():
        try:
            WellSource(p).close()
        except Exception:
            return None
        return "the-well"
    if not p.is_file():
        return None
    if p.suffix == ".pt":
        return "neuralop-pt"
    if p.suffix == ".mat":
        return "fno-mat"
    if not h5py.is_hdf5(p):
        return None
    try:
        with h5py.File(p, "r") as f:
            if "schema" in f.attrs:
                return None
            if is_well_file(f):
                return "the-well"
            return detect_pdebench(f)
    except OSError:
        return None


def open_source(path: str | os.PathLike, layout: str | None = None, **kwargs) -> Source:
    """Open ``path`` as an importer :class:`Source` of the given (or detected) layout."""
    p = Path(path)
    layout = layout or detect_layout(p)
    if layout is None:
        from pdesurrogates.datasets._import_base import LAYOUTS

        if not p.exists():
            raise DatasetError(f"{p}: no such file or directory")
        raise unknown_layout(p, "no recognised structure", list(LAYOUTS))
    if layout.startswith("pdebench"):
        return open_pdebench(p, None if layout == "pdebench" else layout, **kwargs)
    if layout == "the-well":
        return WellSource(p, **kwargs)
    if layout == "fno-mat":
        return MatSource(p)
    if layout == "neuralop-pt":
        return PtSource(p)
    raise ValueError(f"unknown layout {layout!r}")


def _run(source: Source, output, fields, limit, overwrite, compression, progress) -> Path:
    with source:
        return convert(
            source,
            output,
            fields=fields,
            limit=limit,
            overwrite=overwrite,
            compression=compression,
            progress=progress,
        )


def import_pdebench(
    src: str | os.PathLike,
    output: str | os.PathLike,
    *,
    fields: Sequence[str] | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    compression: str | None = None,
    progress: bool = True,
) -> Path:
    """Convert a PDEBench HDF5 file into a ``pdesurrogates-h5`` file.

    The layout is detected: single-array ``tensor`` files (Advection, Burgers, 1D
    reaction-diffusion; field ``u`` (sample, time, x...), ``t-coordinate`` cut to the
    ``T`` steps of the data), 2D Darcy (``nu`` -> ``a``, ``tensor[:, 0]`` -> ``u``),
    compressible flow (``density``, ``pressure``, ``velocity`` with a component dim),
    one group per sample (``data`` channels -> fields ``u``/``v``, or ``h`` for the
    shallow-water file) and 2D incompressible NS (``velocity``, ``particles``, ``force``).
    Numeric file attributes (``beta``, ``Nu``, ``rho``, ``eta``, ``zeta``, ``M``) become
    per-sample parameters. Splits follow PDEBench: the first 10 % of samples are the
    test set in single-file layouts, the last 10 % of the sorted group keys in the
    per-sample-group layout.

    Parameters
    ----------
    src : path-like
        The PDEBench ``.hdf5`` / ``.h5`` file.
    output : path-like
        The new file.
    fields : sequence of str, optional
        Import only these fields (names as in our file, e.g. ``["a", "u"]``).
    limit : int, optional
        Import only the first ``limit`` samples.
    overwrite : bool
        Replace an existing ``output``.
    compression : {None, "lzf", "gzip"}
        Optional filter for the output.
    progress : bool
        Show a progress bar.

    Returns
    -------
    pathlib.Path
        The complete output file.

    Examples
    --------
    >>> import h5py, numpy as np, tempfile, os
    >>> from pdesurrogates.datasets import import_pdebench, open_dataset
    >>> d = tempfile.mkdtemp()
    >>> with h5py.File(os.path.join(d, "1D_Advection_Sols_beta0.1.hdf5"), "w") as f:
    ...     f["tensor"] = np.ones((10, 5, 8), np.float32)
    ...     f["x-coordinate"] = ((np.arange(8) + 0.5) / 8).astype("f4")
    ...     f["t-coordinate"] = (np.arange(6) * 0.1).astype("f4")  # T + 1 entries
    ...     f.attrs["beta"] = 0.1
    >>> out = import_pdebench(os.path.join(d, "1D_Advection_Sols_beta0.1.hdf5"),
    ...                       os.path.join(d, "adv.h5"), progress=False)
    >>> ds = open_dataset(out)
    >>> len(ds), tuple(ds[0]["u"].shape), len(ds.splits["test"])
    (10, (5, 8), 1)
    """
    return _run(open_pdebench(src), output, fields, limit, overwrite, compression, progress)


def import_the_well(
    src: str | os.PathLike,
    output: str | os.PathLike,
    *,
    fields: Sequence[str] | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    compression: str | None = None,
    progress: bool = True,
) -> Path:
    """Convert a Well file, or a Well dataset folder, into a ``pdesurrogates-h5`` file.

    ``src`` is one ``.hdf5`` file, or a folder holding ``train/``, ``valid/``, ``test/``
    (directly or under ``data/``): every trajectory of every file becomes a sample and
    the folders become ``/splits``. Scalar fields keep their dims, vector fields get a
    ``component`` dim, rank-2 fields ``s`` are stored as one field per row ``s_<dim>``
    (columns along ``component``). Spatial dims map in order to x, y, z. Constant
    ``scalars`` become parameters, time-varying ones fields; ``boundary_conditions``
    are copied. ``limit`` caps the samples taken from each split.

    Parameters are as for :func:`import_pdebench`.
    """
    source = WellSource(src, limit_per_split=limit)
    return _run(source, output, fields, None, overwrite, compression, progress)


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
    p = Path(src)
    if p.exists() and p.is_file() and mat_version(p) == "":
        raise unknown_layout(p, "neither a MATLAB v5 nor a v7.3 (HDF5) file", ["fno-mat"])
    return _run(MatSource(src), output, fields, limit, overwrite, compression, progress)


def import_neuralop_pt(
    src: str | os.PathLike,
    output: str | os.PathLike,
    *,
    fields: Sequence[str] | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    compression: str | None = None,
    progress: bool = True,
) -> Path:
    """Convert a neuraloperator ``.pt`` file (a dict of ``x``, ``y`` tensors) to our schema.

    Loaded with ``torch.load(weights_only=True)`` (memory-mapped for zip-format files).
    ``x`` -> ``a`` (input; booleans become 0.0/1.0), ``y`` -> ``u`` (output; ``(N, T,
    X)`` trajectories keep their time axis), one-element tensors such as ``visc`` ->
    parameters. The grid is not stored: a uniform ``linspace(0, 1, n)`` is written.

    Parameters are as for :func:`import_pdebench`.
    """
    return _run(PtSource(src), output, fields, limit, overwrite, compression, progress)
