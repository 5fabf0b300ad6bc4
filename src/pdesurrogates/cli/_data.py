"""Data commands: ``generate darcy``, ``info`` and ``validate``."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import typer

from pdesurrogates.cli._app import app, generate_app

__all__ = ["describe", "generate_darcy", "info", "validate_cmd"]


def check_workers(workers: int, scheduler: str | None) -> None:
    """Shared argument check of the generators' ``--workers`` / ``--scheduler`` options."""
    if workers < 1:
        raise typer.BadParameter(f"--workers must be >= 1, got {workers}")
    if scheduler is not None and not scheduler.strip():
        raise typer.BadParameter("--scheduler must be a dask scheduler address")


@generate_app.command("darcy")
def generate_darcy(
    output: Path = typer.Option(..., "-o", "--output", help="Output file (.h5)."),
    n_samples: int = typer.Option(1000, "--n-samples", "-n", min=1, help="Number of samples."),
    resolution: int = typer.Option(64, "--resolution", "-r", help="Cells per side (4-2048)."),
    seed: int = typer.Option(0, "--seed", help="Base seed; sample i uses the stream (seed, i)."),
    variant: str = typer.Option(
        "smooth", "--variant", help="Coefficient field: 'smooth' (tau=3) or 'rough' (tau=5)."
    ),
    workers: int = typer.Option(1, "--workers", "-w", help="Worker processes (dask LocalCluster)."),
    scheduler: str = typer.Option(
        None, "--scheduler", help="Address of an existing dask scheduler, e.g. tcp://host:8786."
    ),
    resume: bool = typer.Option(False, "--resume", help="Finish an interrupted run."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
    split: str = typer.Option(
        "0.8,0.1,0.1", "--split", help="Train,valid,test fractions of contiguous blocks."
    ),
    compression: str = typer.Option(None, "--compression", help="None (default), lzf or gzip."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Generate Darcy flow samples: -div(a grad u) = 1, u = 0 on the unit-square walls.

    The coefficient a is a thresholded Gaussian random field (values 12 and 3); u is
    solved by cell-centred finite differences with a sparse direct solver. Files made
    with any number of workers are identical. Writes go to OUTPUT.partial, renamed when
    complete; --resume continues an interrupted run.
    """
    from pdesurrogates.datasets import generate_dataset
    from pdesurrogates.solvers.reference import DARCY_VARIANTS, darcy_dataset_layout, darcy_sample

    if variant not in DARCY_VARIANTS:
        raise typer.BadParameter(f"--variant must be one of {sorted(DARCY_VARIANTS)}")
    check_workers(workers, scheduler)
    fractions = _parse_split(split)
    layout = darcy_dataset_layout(resolution, variant)
    source = {
        "generator": "darcy",
        "resolution": resolution,
        "variant": variant,
        "seed": seed,
        **DARCY_VARIANTS[variant],
    }
    path = generate_dataset(
        output,
        functools.partial(darcy_sample, resolution=resolution, variant=variant),
        n_samples=n_samples,
        seed=seed,
        workers=workers,
        scheduler=scheduler,
        resume=resume,
        overwrite=overwrite,
        progress=not quiet,
        split=fractions,
        compression=compression,
        source=source,
        **layout,
    )
    typer.echo(f"wrote {path}")


def _parse_split(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or any(p < 0 for p in parts) or abs(sum(parts) - 1) > 1e-9:
        raise typer.BadParameter(f"--split must be three fractions summing to 1, got {text!r}")
    return parts  # type: ignore[return-value]


def describe(path: Path, *, check: bool = False) -> str:
    """An ``ncdump -h``-like text summary of a dataset file."""
    from pdesurrogates.datasets import open_dataset, validate

    report = validate(path, check_values=check) if check else None
    ds = open_dataset(path)
    attrs = ds.attrs
    lines = [f"{path}  (schema {attrs['schema']} v{attrs['schema_version']})"]
    lines.append(f"  dataset_name: {attrs.get('dataset_name', '')}")
    lines.append(f"  pde: {attrs.get('pde', '')}")
    source = attrs.get("source", "")
    try:
        source = json.dumps(json.loads(source), sort_keys=True)
    except (TypeError, ValueError):
        pass
    lines.append(f"  source: {source}")
    lines.append(f"  created_by: {attrs.get('created_by', '')}")
    lines.append(f"  complete: {bool(attrs['complete'])}")
    lines.append(f"  values checked for NaN/Inf: {'yes, all finite' if report else 'no (--check)'}")
    lines.append("dimensions:")
    for name, values in ds._meta["coords"].items():
        values = np.asarray(values)
        rng = f"[{values.min():.6g}, {values.max():.6g}]" if values.dtype.kind in "fiu" else ""
        lines.append(f"  {name} = {len(values)}  {rng}")
    lines.append("fields:")
    for name, spec in ds.fields.items():
        shape = ds._meta["shapes"][name]
        lines.append(
            f"  float32 {name}({', '.join(spec.dims)})  shape {shape}  role={spec.role}"
            + (f"  units={spec.units}" if spec.units else "")
            + (f"  '{spec.long_name}'" if spec.long_name else "")
        )
    lines.append("params:")
    if not ds.params:
        lines.append("  (none)")
    for name, spec in ds.params.items():
        extra = f" bounds={spec.bounds}" if spec.bounds else ""
        if spec.loc is not None:
            extra += f" loc={spec.loc} scale={spec.scale}"
        lines.append(f"  float64 {name}(sample)  dist={spec.dist}{extra}")
    lines.append("splits:")
    splits = ds.splits
    lines.append(
        "  " + (", ".join(f"{k}: {len(v)}" for k, v in splits.items()) if splits else "(none)")
    )
    lines.append("stats (train split):")
    stats = ds._meta["stats"]
    if not stats:
        lines.append("  (none)")
    for name, (mean, std) in stats.items():
        lines.append(
            f"  {name}: mean {np.array2string(np.asarray(mean), precision=5)}"
            f"  std {np.array2string(np.asarray(std), precision=5)}"
        )
    return "\n".join(lines)


@app.command("info")
def info(
    file: Path = typer.Argument(..., help="A pdesurrogates-h5 file."),
    check: bool = typer.Option(False, "--check", help="Also scan every value for NaN/Inf."),
) -> None:
    """Print a file's fields, dims, shapes, params, splits, stats and completeness."""
    typer.echo(describe(file, check=check))


@app.command("validate")
def validate_cmd(
    file: Path = typer.Argument(..., help="A pdesurrogates-h5 file."),
) -> None:
    """Check a file against the pdesurrogates-h5 schema, including a NaN/Inf scan."""
    from pdesurrogates.datasets import validate

    report = validate(file)
    typer.echo(
        f"{file}: valid ({report.n_samples} samples; fields "
        + ", ".join(f"{k}{v}" for k, v in report.shapes.items())
        + ")"
    )
