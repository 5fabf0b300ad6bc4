"""Data commands: ``generate darcy|helmholtz|navier-stokes``, ``info``, ``validate``, ``migrate``.

Parsing and printing only: the recipes are :func:`pdesurrogates.datasets.generate_darcy`,
:func:`~pdesurrogates.datasets.generate_helmholtz` and
:func:`~pdesurrogates.datasets.generate_navier_stokes`, the summary
:func:`pdesurrogates.datasets.describe`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from pdesurrogates.cli._app import COMPRESSION, OVERWRITE, QUIET, app, generate_app

__all__ = [
    "check_workers",
    "generate_darcy_cmd",
    "generate_helmholtz_cmd",
    "generate_navier_stokes_cmd",
    "info",
    "migrate_cmd",
    "validate_cmd",
]


# Options every generator shares, declared once (typer reads a default per command).
WORKERS = typer.Option(1, "--workers", "-w", help="Worker processes (dask LocalCluster).")
SCHEDULER = typer.Option(
    None, "--scheduler", help="Address of an existing dask scheduler, e.g. tcp://host:8786."
)
RESUME = typer.Option(False, "--resume", help="Finish an interrupted run.")
SPLIT = typer.Option(
    "0.8,0.1,0.1", "--split", help="Train,valid,test fractions of contiguous blocks."
)


def check_workers(workers: int, scheduler: str | None) -> None:
    """Shared argument check of the generators' ``--workers`` / ``--scheduler`` options."""
    if workers < 1:
        raise typer.BadParameter(f"--workers must be >= 1, got {workers}")
    if scheduler is not None and not scheduler.strip():
        raise typer.BadParameter("--scheduler must be a dask scheduler address")


@generate_app.command("darcy")
def generate_darcy_cmd(
    output: Path = typer.Option(..., "-o", "--output", help="Output file (.h5)."),
    n_samples: int = typer.Option(1000, "--n-samples", "-n", min=1, help="Number of samples."),
    resolution: int = typer.Option(64, "--resolution", "-r", help="Cells per side (4-2048)."),
    seed: int = typer.Option(0, "--seed", help="Base seed; sample i uses the stream (seed, i)."),
    variant: str = typer.Option(
        "smooth",
        "--variant",
        help="Coefficient field: 'smooth' (tau=3), 'rough' (tau=5) or 'multiscale' "
        "(six trigonometric scales, solved on a 3x finer grid).",
    ),
    workers: int = WORKERS,
    scheduler: str = SCHEDULER,
    resume: bool = RESUME,
    overwrite: bool = OVERWRITE,
    split: str = SPLIT,
    compression: str = COMPRESSION,
    quiet: bool = QUIET,
) -> None:
    """Generate Darcy flow samples: -div(a grad u) = 1, u = 0 on the unit-square walls.

    The coefficient a is a thresholded Gaussian random field (values 12 and 3) or the
    multiscale trigonometric field (a in [2.4e-4, 130]); u is solved by cell-centred
    finite differences with a sparse direct solver. Files made with any number of
    workers hold identical values. A run locks OUTPUT.lock (a second
    writer is refused), writes OUTPUT.partial and renames it when complete; --resume
    continues an interrupted run (remove the stale lock first) and does nothing when
    OUTPUT is already complete.
    """
    from pdesurrogates.datasets import generate_darcy
    from pdesurrogates.solvers.reference import DARCY_VARIANTS

    if variant not in DARCY_VARIANTS:
        raise typer.BadParameter(f"--variant must be one of {sorted(DARCY_VARIANTS)}")
    check_workers(workers, scheduler)
    _run(
        generate_darcy,
        output,
        resume,
        n_samples=n_samples,
        resolution=resolution,
        seed=seed,
        variant=variant,
        workers=workers,
        scheduler=scheduler,
        overwrite=overwrite,
        progress=not quiet,
        split=_parse_split(split),
        compression=compression,
    )


def _run(recipe, output: Path, resume: bool, **kwargs) -> None:
    """Run a generator recipe and say where it wrote (unless a resume found it complete)."""
    before = _identity(output)
    path = recipe(output, resume=resume, **kwargs)
    if not (resume and before is not None and before == _identity(path)):
        typer.echo(f"wrote {path}")  # else the file was complete: the log says so


@generate_app.command("helmholtz")
def generate_helmholtz_cmd(
    output: Path = typer.Option(..., "-o", "--output", help="Output file (.h5)."),
    n_samples: int = typer.Option(1000, "--n-samples", "-n", min=1, help="Number of samples."),
    resolution: int = typer.Option(
        101, "--resolution", "-r", help="Grid points per side, walls included (3-4097)."
    ),
    omega: float = typer.Option(
        1000.0, "--omega", help="Angular frequency (rad/s); wavespeed c is about 20 m/s."
    ),
    refine: int = typer.Option(
        1, "--refine", min=1, help="Solve on a grid this many times finer, store its nodes."
    ),
    seed: int = typer.Option(0, "--seed", help="Base seed; sample i uses the stream (seed, i)."),
    workers: int = WORKERS,
    scheduler: str = SCHEDULER,
    resume: bool = RESUME,
    overwrite: bool = OVERWRITE,
    split: str = SPLIT,
    compression: str = COMPRESSION,
    quiet: bool = QUIET,
) -> None:
    """Generate Helmholtz samples: -lap u - (omega/c)^2 u = 0 on the unit square (m).

    Neumann walls with du/dn = 1 on |x - 0.5| <= 0.15 of the top wall; the input is the
    wavespeed c = 20 + tanh(random cosine series) m/s, the output the wavefield u, solved
    by 5-point finite differences (second order) with a sparse direct solver. The
    defaults are the MgNO / de Hoop et al. benchmark (101 points, omega = 1000 rad/s).
    Files made with any number of workers hold identical values. A run locks
    OUTPUT.lock, writes OUTPUT.partial and renames it when complete; --resume continues
    an interrupted run.
    """
    from pdesurrogates.datasets import generate_helmholtz

    check_workers(workers, scheduler)
    _run(
        generate_helmholtz,
        output,
        resume,
        n_samples=n_samples,
        resolution=resolution,
        omega=omega,
        refine=refine,
        seed=seed,
        workers=workers,
        scheduler=scheduler,
        overwrite=overwrite,
        progress=not quiet,
        split=_parse_split(split),
        compression=compression,
    )


@generate_app.command("navier-stokes")
def generate_navier_stokes_cmd(
    output: Path = typer.Option(..., "-o", "--output", help="Output file (.h5)."),
    n_samples: int = typer.Option(1000, "--n-samples", "-n", min=1, help="Number of trajectories."),
    resolution: int = typer.Option(
        64, "--resolution", "-r", help="Grid points per side of the torus (even, 4-4096)."
    ),
    nu: float = typer.Option(1e-3, "--nu", help="Viscosity (FNO benchmark: 1e-3, 1e-4, 1e-5)."),
    duration: float = typer.Option(
        50.0, "--duration", "-T", help="Final time (time units; the torus has side 1)."
    ),
    n_times: int = typer.Option(
        51, "--n-times", help="Stored times, uniform from 0 to --duration, t = 0 included."
    ),
    refine: int = typer.Option(
        1, "--refine", min=1, help="Solve on a grid this many times finer, store its points."
    ),
    cfl: float = typer.Option(0.25, "--cfl", help="CFL number of the adaptive time step."),
    dt_max: float = typer.Option(0.01, "--dt-max", help="Largest time step (time units)."),
    device: str = typer.Option("cpu", "--device", help="Torch device, e.g. cpu or cuda."),
    seed: int = typer.Option(0, "--seed", help="Base seed; trajectory i uses (seed, i)."),
    workers: int = WORKERS,
    scheduler: str = SCHEDULER,
    resume: bool = RESUME,
    overwrite: bool = OVERWRITE,
    split: str = SPLIT,
    compression: str = COMPRESSION,
    quiet: bool = QUIET,
) -> None:
    """Generate 2-D Navier-Stokes vorticity trajectories on the unit torus.

    w_t + u.grad w = nu lap w + f with the FNO benchmark's forcing
    f = 0.1 (sin 2pi(x+y) + cos 2pi(x+y)) and random initial vorticity; pseudo-spectral
    with 2/3 dealiasing, Crank-Nicolson viscosity and Heun advection, in torch. Writes
    the field w (sample, time, x, y) on a uniform time axis. Files made with any
    number of workers hold identical values. A run locks OUTPUT.lock, writes
    OUTPUT.partial and renames it when complete; --resume continues an interrupted run.
    """
    from pdesurrogates.datasets import generate_navier_stokes

    check_workers(workers, scheduler)
    if n_times < 2 or duration <= 0 or nu <= 0 or cfl <= 0 or dt_max <= 0:
        raise typer.BadParameter(
            "--n-times must be >= 2 and --duration, --nu, --cfl, --dt-max must be > 0"
        )
    _run(
        generate_navier_stokes,
        output,
        resume,
        n_samples=n_samples,
        resolution=resolution,
        nu=nu,
        duration=duration,
        n_times=n_times,
        refine=refine,
        cfl=cfl,
        dt_max=dt_max,
        device=device,
        seed=seed,
        workers=workers,
        scheduler=scheduler,
        overwrite=overwrite,
        progress=not quiet,
        split=_parse_split(split),
        compression=compression,
    )


def _identity(path: Path) -> tuple[int, int, int] | None:
    """(device, inode, mtime) of a file, None if absent: unchanged means not rewritten."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns


def _parse_split(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or any(p < 0 for p in parts) or abs(sum(parts) - 1) > 1e-9:
        raise typer.BadParameter(f"--split must be three fractions summing to 1, got {text!r}")
    return parts  # type: ignore[return-value]


@app.command("info")
def info(
    file: Path = typer.Argument(..., help="A pdesurrogates-h5 file."),
    check: bool = typer.Option(
        False, "--check", help="Also scan every value for NaN/Inf (otherwise not checked)."
    ),
) -> None:
    """Print a file's fields, dims, shapes, params, splits, stats and completeness.

    The file is read in a child process: a file that crashes HDF5 is reported as corrupt.
    """
    from pdesurrogates.datasets import describe

    typer.echo(describe(file, check=check, isolate=True))


@app.command("validate")
def validate_cmd(
    file: Path = typer.Argument(..., help="A pdesurrogates-h5 file."),
    deep: bool = typer.Option(
        False,
        "--deep",
        help="Also recompute the train statistics from the data and compare them.",
    ),
) -> None:
    """Check a file against the pdesurrogates-h5 schema: structure, metadata, values.

    Every sample is read (checksums are verified where the file has them) and scanned for
    NaN/Inf; every problem found names the object and the fix. The file is read in a child
    process: a file that crashes HDF5 is reported as corrupt.
    """
    from pdesurrogates.datasets import validate

    report = validate(file, deep=deep, isolate=True)
    for note in report.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(
        f"{file}: valid ({report.n_samples} samples; fields "
        + ", ".join(f"{k}{v}" for k, v in report.shapes.items())
        + ("; deep check passed" if deep else "")
        + ")"
    )


@app.command("migrate")
def migrate_cmd(
    file: Path = typer.Argument(..., help="A pdesurrogates-h5 file to upgrade in place."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would change."),
) -> None:
    """Upgrade a dataset file to the current schema version (2), in place and atomically.

    The new layout is written beside the file, validated and compared value by value
    with the original, then renamed over it: the original is unchanged on any failure. A
    file another writer holds (FILE.lock) is refused; a current file is left alone.
    """
    from pdesurrogates.datasets import migrate

    typer.echo(str(migrate(file, dry_run=dry_run)))
