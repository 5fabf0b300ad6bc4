"""Acoustics data: Gaussian-pulse sources in a room, solved by FDTD.

:func:`generate_acoustics` is the function behind ``pdesurrogates generate
acoustics1d|acoustics2d|acoustics3d``; it writes a ``pdesurrogates-h5`` file through
:func:`~pdesurrogates.datasets.generate_dataset`.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

__all__ = ["generate_acoustics"]


def generate_acoustics(
    output,
    *,
    dim: int,
    n_sources: int,
    fmax: float = 500.0,
    duration: float = 0.05,
    size=None,
    margin: float | None = None,
    receivers=None,
    resolution=None,
    ppw: float = 20.0,
    n_times: int | None = None,
    seed: int = 0,
    workers: int = 1,
    scheduler: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    split=(0.8, 0.1, 0.1),
    compression: str | None = None,
    geometry: str = "box",
    impedance: float | None = None,
) -> Path:
    """Simulate ``n_sources`` Gaussian-pulse sources by FDTD into a dataset file.

    Each sample holds the pressure field ``p`` (time, x[, y]) on the stored grid and the
    impulse responses ``ir`` (time, component = receiver) at the receivers; the source
    position is in ``/params`` (``xs``[, ``ys``], uniform within the margin). See
    :func:`pdesurrogates.solvers.reference.acoustics_setup` for the grid choices.

    ``geometry="l-shape"`` removes the quarter ``x > L_x/2, y > L_y/2`` of the room;
    ``impedance`` (Pa s/m) makes every wall locally reacting. In 3D (and with either of
    these) the staggered solver :func:`~pdesurrogates.solvers.reference.solve_room`
    runs, with receivers on a 3 x 3 x 3 grid by default.
    """
    from pdesurrogates.datasets._generate import generate_dataset
    from pdesurrogates.solvers.reference import (
        acoustics_dataset_layout,
        acoustics_sample,
        acoustics_setup,
    )

    if dim not in (1, 2, 3):
        raise ValueError(f"dim must be 1, 2 or 3; got {dim!r}")
    if size is None:
        size = [2.0] * dim
    size = [float(v) for v in np.atleast_1d(size)]
    if len(size) == 1 and dim > 1:
        size = size * dim
    if len(size) != dim:
        raise ValueError(f"size must give {dim} room dimensions (m); got {size}")
    setup = acoustics_setup(
        size,
        fmax=fmax,
        duration=duration,
        margin=margin,
        receivers=receivers,
        resolution=resolution,
        ppw=ppw,
        n_times=n_times,
        geometry=geometry,
        impedance=impedance,
    )
    layout = acoustics_dataset_layout(setup)
    source = {"generator": f"acoustics{dim}d", "solver": setup.solver, "seed": seed}
    source.update(setup.to_dict())
    return generate_dataset(
        output,
        functools.partial(acoustics_sample, setup=setup),
        n_samples=n_sources,
        seed=seed,
        workers=workers,
        scheduler=scheduler,
        resume=resume,
        overwrite=overwrite,
        progress=progress,
        split=split,
        compression=compression,
        source=source,
        **layout,
    )
