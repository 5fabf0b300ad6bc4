"""The Helmholtz recipe: the dataset behind ``pdesurrogates generate helmholtz``.

``-lap u - (omega/c)^2 u = 0`` on the unit square with Neumann walls and a flux bump on the
top wall; the input is the wavespeed ``c`` (20 + tanh of a random cosine series), the
output the wavefield ``u``, from the reference solver in
:mod:`pdesurrogates.solvers.reference` (the de Hoop et al. set-up used by MgNO).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

from pdesurrogates.datasets._generate import generate_dataset

__all__ = ["generate_helmholtz"]


def generate_helmholtz(
    output: str | os.PathLike,
    *,
    n_samples: int = 1000,
    resolution: int = 101,
    omega: float = 1000.0,
    refine: int = 1,
    seed: int = 0,
    workers: int = 1,
    scheduler: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    split: Sequence[float] = (0.8, 0.1, 0.1),
    compression: str | None = None,
) -> Path:
    """Generate ``n_samples`` Helmholtz samples into a ``pdesurrogates-h5`` file.

    Fields ``c`` (wavespeed, m/s, input) and ``u`` (wavefield, output) on the
    ``resolution x resolution`` nodes ``i/(resolution - 1)`` of the unit square, walls
    included. Sample ``i`` draws its randomness from ``(seed, i)``.

    Parameters
    ----------
    output : path-like
        The new file (written as a partial file and renamed when complete).
    n_samples : int
        Number of samples.
    resolution : int
        Grid points per side, walls included (101 in the benchmark).
    omega : float
        Angular frequency (rad/s); 1000 in the benchmark (12.6 points per wavelength
        at 101 points).
    refine : int
        Solve on a grid ``refine`` times finer and keep its every ``refine``-th node
        (1: the benchmark's discrete solution on the stored grid).
    seed : int
        Base seed.
    workers, scheduler, resume, overwrite, progress, split, compression
        As for :func:`pdesurrogates.datasets.generate_dataset`.

    Returns
    -------
    pathlib.Path
        The complete file.

    Examples
    --------
    >>> import tempfile, os
    >>> from pdesurrogates.datasets import generate_helmholtz, open_dataset
    >>> out = generate_helmholtz(os.path.join(tempfile.mkdtemp(), "helm.h5"), n_samples=3,
    ...                          resolution=11, omega=100.0, progress=False)
    >>> ds = open_dataset(out)
    >>> len(ds), tuple(ds[0]["c"].shape), [ds.fields[k].role for k in ("c", "u")]
    (3, (1, 11, 11), ['input', 'output'])
    """
    from pdesurrogates.solvers.reference import (
        HELMHOLTZ_DEFAULTS,
        helmholtz_dataset_layout,
        helmholtz_sample,
    )

    if isinstance(refine, bool) or not isinstance(refine, int) or refine < 1:
        raise ValueError(f"refine must be a positive integer, got {refine!r}")
    if not omega >= 0:
        raise ValueError(f"omega must be a frequency >= 0 (rad/s), got {omega}")
    layout = helmholtz_dataset_layout(resolution, omega)
    source = {
        "generator": "helmholtz",
        "resolution": resolution,
        "seed": seed,
        "refine": refine,
        **HELMHOLTZ_DEFAULTS,
        "omega": omega,
    }
    return generate_dataset(
        output,
        functools.partial(helmholtz_sample, resolution=resolution, omega=omega, refine=refine),
        n_samples=n_samples,
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
