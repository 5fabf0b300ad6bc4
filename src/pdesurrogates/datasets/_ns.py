"""The Navier–Stokes recipe: the dataset behind ``pdesurrogates generate navier-stokes``.

Vorticity trajectories of 2-D incompressible flow on the unit torus with the FNO
benchmark's forcing and random initial vorticity, from the pseudo-spectral torch solver
in :mod:`pdesurrogates.solvers.reference`. One field ``w`` (sample, time, x, y) with the
role ``state`` on a uniform time axis that starts at ``t = 0`` (the initial vorticity).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

from pdesurrogates.datasets._generate import generate_dataset

__all__ = ["generate_navier_stokes"]


def generate_navier_stokes(
    output: str | os.PathLike,
    *,
    n_samples: int = 1000,
    resolution: int = 64,
    nu: float = 1e-3,
    duration: float = 50.0,
    n_times: int = 51,
    refine: int = 1,
    cfl: float = 0.25,
    dt_max: float = 1e-2,
    device: str = "cpu",
    seed: int = 0,
    workers: int = 1,
    scheduler: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    split: Sequence[float] = (0.8, 0.1, 0.1),
    compression: str | None = None,
) -> Path:
    """Generate ``n_samples`` vorticity trajectories into a ``pdesurrogates-h5`` file.

    Parameters
    ----------
    output : path-like
        The new file (written as a partial file and renamed when complete).
    n_samples : int
        Number of trajectories.
    resolution : int
        Grid points per side of the stored field (even; the points ``j/resolution``).
    nu : float
        Viscosity (the FNO benchmark uses 1e-3, 1e-4 and 1e-5).
    duration : float
        Final time (time units; the forcing has period 1 in space).
    n_times : int
        Stored times ``linspace(0, duration, n_times)``, ``t = 0`` included.
    refine : int
        Solve on a grid ``refine`` times finer (for small ``nu``), store every
        ``refine``-th point.
    cfl, dt_max : float
        Time step ``min(dt_max, cfl h / max|u|)`` of the solver.
    device : str
        Torch device of the solve (``"cuda"`` runs unchanged on a GPU).
    seed : int
        Base seed; trajectory ``i`` draws its initial vorticity from ``(seed, i)``.
    workers, scheduler, resume, overwrite, progress, split, compression
        As for :func:`pdesurrogates.datasets.generate_dataset`.

    Returns
    -------
    pathlib.Path
        The complete file.

    Examples
    --------
    >>> import tempfile, os
    >>> from pdesurrogates.datasets import generate_navier_stokes, open_dataset
    >>> out = generate_navier_stokes(os.path.join(tempfile.mkdtemp(), "ns.h5"), n_samples=2,
    ...                              resolution=16, duration=1.0, n_times=3, progress=False)
    >>> ds = open_dataset(out)
    >>> tuple(ds[0]["w"].shape), ds.coords["time"].tolist(), ds.fields["w"].role
    ((1, 3, 16, 16), [0.0, 0.5, 1.0], 'state')
    """
    from pdesurrogates.solvers.reference import NS_DEFAULTS, ns_dataset_layout, ns_sample

    if isinstance(refine, bool) or not isinstance(refine, int) or refine < 1:
        raise ValueError(f"refine must be a positive integer, got {refine!r}")
    if not (nu > 0 and cfl > 0 and dt_max > 0):
        raise ValueError(f"nu, cfl and dt_max must be > 0, got {nu}, {cfl}, {dt_max}")
    _check_device(device)
    layout = ns_dataset_layout(resolution, nu=nu, duration=duration, n_times=n_times)
    source = {
        "generator": "navier-stokes",
        "resolution": resolution,
        "seed": seed,
        "nu": nu,
        "duration": duration,
        "n_times": n_times,
        "refine": refine,
        "cfl": cfl,
        "dt_max": dt_max,
        "alpha": NS_DEFAULTS["alpha"],
        "tau": NS_DEFAULTS["tau"],
        "scheme": "pseudo-spectral, 2/3 dealiasing, Crank-Nicolson viscosity + Heun advection",
    }
    sample = functools.partial(
        ns_sample,
        resolution=resolution,
        nu=nu,
        duration=duration,
        n_times=n_times,
        refine=refine,
        cfl=cfl,
        dt_max=dt_max,
        device=device,
    )
    return generate_dataset(
        output,
        sample,
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


def _check_device(device: str) -> None:
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device {device!r} is not a torch device (e.g. cpu, cuda)") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} is not available here: use device='cpu'")
