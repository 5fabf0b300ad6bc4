"""The Darcy recipe: the dataset behind ``pdesurrogates generate darcy``.

``-div(a grad u) = 1`` on the unit square, ``u = 0`` on the walls; the coefficient is a
thresholded Gaussian random field (values 12 and 3) or the trigonometric multiscale field,
the solution comes from the reference finite-difference solver in
:mod:`pdesurrogates.solvers.reference`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

from pdesurrogates.datasets._generate import generate_dataset

__all__ = ["generate_darcy"]


def generate_darcy(
    output: str | os.PathLike,
    *,
    n_samples: int = 1000,
    resolution: int = 64,
    seed: int = 0,
    variant: str = "smooth",
    workers: int = 1,
    scheduler: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    split: Sequence[float] = (0.8, 0.1, 0.1),
    compression: str | None = None,
) -> Path:
    """Generate ``n_samples`` Darcy-flow samples into a ``pdesurrogates-h5`` file.

    Fields ``a`` (coefficient, input) and ``u`` (solution, output) on the cell centres of a
    ``resolution x resolution`` grid. Sample ``i`` draws its randomness from ``(seed, i)``,
    so files made with any number of workers hold identical values (not identical bytes).

    Parameters
    ----------
    output : path-like
        The new file (written as a partial file and renamed when complete).
    n_samples : int
        Number of samples.
    resolution : int
        Cells per side (4 to 2048).
    seed : int
        Base seed.
    variant : {"smooth", "rough", "multiscale"}
        The coefficient field: a thresholded Gaussian random field with ``tau`` 3
        (smooth) or 5 (rough), or the trigonometric multiscale product of six scales
        (solved on a 3x finer grid; see
        :func:`pdesurrogates.solvers.reference.multiscale_coefficient`).
    workers, scheduler, resume, overwrite, progress, split, compression
        As for :func:`pdesurrogates.datasets.generate_dataset`.

    Returns
    -------
    pathlib.Path
        The complete file.

    Examples
    --------
    >>> import tempfile, os
    >>> from pdesurrogates.datasets import generate_darcy, open_dataset
    >>> out = generate_darcy(os.path.join(tempfile.mkdtemp(), "darcy.h5"), n_samples=4,
    ...                      resolution=8, progress=False)
    >>> ds = open_dataset(out)
    >>> len(ds), tuple(ds[0]["a"].shape), sorted(ds.splits)
    (4, (1, 8, 8), ['test', 'train', 'valid'])
    """
    from pdesurrogates.solvers.reference import DARCY_VARIANTS, darcy_dataset_layout, darcy_sample

    if variant not in DARCY_VARIANTS:
        raise ValueError(f"variant must be one of {sorted(DARCY_VARIANTS)}, got {variant!r}")
    layout = darcy_dataset_layout(resolution, variant)
    source = {
        "generator": "darcy",
        "resolution": resolution,
        "variant": variant,
        "seed": seed,
        **DARCY_VARIANTS[variant],
    }
    return generate_dataset(
        output,
        functools.partial(darcy_sample, resolution=resolution, variant=variant),
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
