"""Import commands: ``import pdebench | the-well | fno-mat | neuralop-pt SRC -o OUT.h5``."""

from __future__ import annotations

from pathlib import Path

import typer

from pdesurrogates.cli._app import import_app

__all__ = ["import_fno_mat_cmd", "import_neuralop_pt_cmd", "import_pdebench_cmd", "import_well_cmd"]

_OUTPUT = typer.Option(..., "-o", "--output", help="Output file (.h5), written atomically.")
_FIELDS = typer.Option(
    None,
    "--fields",
    "-f",
    help="Only these fields (comma-separated or repeated), named as in the output file.",
)
_LIMIT = typer.Option(None, "--limit", "-n", min=1, help="Import only the first N samples.")
_OVERWRITE = typer.Option(False, "--overwrite", help="Replace an existing output file.")
_COMPRESSION = typer.Option(None, "--compression", help="None (default), lzf or gzip.")
_QUIET = typer.Option(False, "--quiet", "-q", help="No progress bar.")


def _fields(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    names = [v.strip() for item in values for v in item.split(",") if v.strip()]
    if not names:
        raise typer.BadParameter("--fields needs at least one field name")
    return names


def _run(func, src: Path, output: Path, fields, limit, overwrite, compression, quiet) -> None:
    path = func(
        src,
        output,
        fields=_fields(fields),
        limit=limit,
        overwrite=overwrite,
        compression=compression,
        progress=not quiet,
    )
    from pdesurrogates.datasets import open_dataset

    ds = open_dataset(path)
    shapes = ", ".join(f"{k}{ds._meta['shapes'][k]}" for k in ds.field_names)
    splits = ", ".join(f"{k}: {len(v)}" for k, v in ds.splits.items())
    typer.echo(f"wrote {path} ({len(ds)} samples; {shapes}; splits {splits})")


@import_app.command("pdebench")
def import_pdebench_cmd(
    src: Path = typer.Argument(..., help="A PDEBench .hdf5/.h5 file."),
    output: Path = _OUTPUT,
    fields: list[str] = _FIELDS,
    limit: int = _LIMIT,
    overwrite: bool = _OVERWRITE,
    compression: str = _COMPRESSION,
    quiet: bool = _QUIET,
) -> None:
    """Convert a PDEBench file (single-array, Darcy, CFD, per-sample groups, NS).

    The layout is detected. Numeric file attributes (beta, Nu, eta, ...) become params.
    Test split: PDEBench's first 10% of samples (the last 10% of the group keys for
    per-sample-group files).
    """
    from pdesurrogates.datasets import import_pdebench

    _run(import_pdebench, src, output, fields, limit, overwrite, compression, quiet)


@import_app.command("the-well")
def import_well_cmd(
    src: Path = typer.Argument(
        ..., help="A Well .hdf5 file, or a dataset folder (train/valid/test)."
    ),
    output: Path = _OUTPUT,
    fields: list[str] = _FIELDS,
    limit: int = typer.Option(None, "--limit", "-n", min=1, help="At most N samples per split."),
    overwrite: bool = _OVERWRITE,
    compression: str = _COMPRESSION,
    quiet: bool = _QUIET,
) -> None:
    """Convert a Well file or dataset folder (train/valid/test become the splits).

    t0/t1/t2 fields keep their dims, tensor components go on a component dim; constant
    scalars become params; boundary conditions are copied.
    """
    from pdesurrogates.datasets import import_the_well

    _run(import_the_well, src, output, fields, limit, overwrite, compression, quiet)


@import_app.command("fno-mat")
def import_fno_mat_cmd(
    src: Path = typer.Argument(..., help="An FNO .mat file (MATLAB v5 or v7.3)."),
    output: Path = _OUTPUT,
    fields: list[str] = _FIELDS,
    limit: int = _LIMIT,
    overwrite: bool = _OVERWRITE,
    compression: str = _COMPRESSION,
    quiet: bool = _QUIET,
) -> None:
    """Convert an FNO .mat file (MATLAB v5 or v7.3).

    Darcy coeff/sol become a/u; Burgers or NS a/u stay a/u, NS trajectories (N, X, Y, T)
    become (sample, time, x, y). The reversed axes of v7.3 files are put back.
    """
    from pdesurrogates.datasets import import_fno_mat

    _run(import_fno_mat, src, output, fields, limit, overwrite, compression, quiet)


@import_app.command("neuralop-pt")
def import_neuralop_pt_cmd(
    src: Path = typer.Argument(..., help="A neuraloperator .pt file (dict of x, y tensors)."),
    output: Path = _OUTPUT,
    fields: list[str] = _FIELDS,
    limit: int = _LIMIT,
    overwrite: bool = _OVERWRITE,
    compression: str = _COMPRESSION,
    quiet: bool = _QUIET,
) -> None:
    """Convert a neuraloperator .pt file (a dict of x, y tensors).

    Loaded with weights_only=True: x becomes a, y becomes u, one-element tensors (e.g.
    visc) become params.
    """
    from pdesurrogates.datasets import import_neuralop_pt

    _run(import_neuralop_pt, src, output, fields, limit, overwrite, compression, quiet)
