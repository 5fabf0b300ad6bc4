"""Import commands: ``import <backend> SRC -o OUT.h5``, one per importer backend.

The sub-commands are made from the registry of :mod:`pdesurrogates.datasets.backends`:
a new backend module gets its command without an edit here. Each command's help is its
backend's docstring. ``import arrays`` is the one format-free command: a user's own
arrays, with the roles named on the command line.
"""

from __future__ import annotations

from pathlib import Path

import typer

from pdesurrogates.cli._app import COMPRESSION, OVERWRITE, QUIET, import_app
from pdesurrogates.datasets.backends import ImporterBackend, list_backends

__all__ = ["import_command"]

_OUTPUT = typer.Option(..., "-o", "--output", help="Output file (.h5), written atomically.")
_FIELDS = typer.Option(
    None,
    "--fields",
    "-f",
    help="Only these fields (comma-separated or repeated), named as in the output file.",
)


def _fields(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    names = [v.strip() for item in values for v in item.split(",") if v.strip()]
    if not names:
        raise typer.BadParameter("--fields needs at least one field name")
    return names


def _summary(path: Path) -> str:
    from pdesurrogates.datasets import file_metadata

    meta = file_metadata(path)
    shapes = ", ".join(f"{k}{v}" for k, v in meta["shapes"].items())
    splits = ", ".join(f"{k}: {len(v)}" for k, v in meta["splits"].items())
    return f"wrote {path} ({meta['n_samples']} samples; {shapes}; splits {splits})"


def import_command(backend: ImporterBackend):
    """The ``pdesurrogates import <backend.name>`` command function of a backend."""

    def command(
        src: Path = typer.Argument(..., help=backend.source_help),
        output: Path = _OUTPUT,
        fields: list[str] = _FIELDS,
        limit: int = typer.Option(None, "--limit", min=1, help=backend.limit_help),
        overwrite: bool = OVERWRITE,
        compression: str = COMPRESSION,
        quiet: bool = QUIET,
    ) -> None:
        path = backend.import_file(
            src,
            output,
            fields=_fields(fields),
            limit=limit,
            overwrite=overwrite,
            compression=compression,
            progress=not quiet,
        )
        typer.echo(_summary(path))

    command.__name__ = "import_" + backend.name.replace("-", "_")
    command.__doc__ = backend.help
    return command


for _backend in list_backends():
    import_app.command(_backend.name)(import_command(_backend))


def _names(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    out = {}
    for item in values or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise typer.BadParameter(f"{flag} {item!r}: expected NAME=VALUE")
        out[key.strip()] = value.strip()
    return out


def _sample_axis(values: list[str] | None):
    if not values:
        return None
    if len(values) == 1 and "=" not in values[0]:
        return values[0]
    return _pairs(values, "--sample-axis")


def _print_plan(plan) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{plan.where}: {plan.n_samples} samples, layout {plan.layout}")
    rows = plan.rows()
    for column in rows[0]:
        table.add_column(column)
    for row in rows:
        table.add_row(*row.values())
    console = Console()
    console.print(table)
    for note in plan.coord_notes.values():
        console.print(f"coords {note}", highlight=False)
    for note in plan.notes:
        console.print(f"note: {note}", highlight=False)


@import_app.command("arrays")
def import_arrays(
    src: Path = typer.Argument(..., help="An HDF5, .npz, netCDF or zarr file of plain arrays."),
    output: Path = typer.Option(
        None, "-o", "--output", help="Output file (.h5), written atomically."
    ),
    inputs: list[str] = typer.Option(
        None, "--input", help="Input array(s): repeat or comma-separate; group/name in groups."
    ),
    targets: list[str] = typer.Option(None, "--target", help="Target (output) array(s)."),
    params: list[str] = typer.Option(
        None,
        "--param",
        help="Per-sample scalar(s), shape (N,). Unnamed 1-D arrays of length N "
        "become params anyway.",
    ),
    sample_axis: list[str] = typer.Option(
        None, "--sample-axis", help="AXIS (or dim name) for every field, or NAME=AXIS per field."
    ),
    coords: list[str] = typer.Option(
        None, "--coords", help="AXIS=START:STOP (uniform) or AXIS=ARRAY, e.g. x=0:1 y=ygrid."
    ),
    layout: str = typer.Option(
        None, "--layout", help="channels-last, channels-first or spatial (default: inferred)."
    ),
    dtype: str = typer.Option(None, "--dtype", help="Stored dtype, e.g. float64."),
    split: str = typer.Option("0.8,0.1,0.1", "--split", help="Train,valid,test fractions."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random split."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show what was inferred and write nothing."
    ),
    overwrite: bool = OVERWRITE,
    compression: str = COMPRESSION,
    quiet: bool = QUIET,
) -> None:
    """Convert a file of plain arrays (HDF5, .npz, netCDF, zarr) into a dataset.

    Name the arrays with --input and --target. The sample axis (shared by every named
    array; the leading one by default), the spatial axes, any channel axis, the grid
    and the params are inferred and shown before anything is written; --sample-axis,
    --layout and --coords decide what cannot be inferred. The split is random (--seed).
    """
    from pdesurrogates.cli._data import _parse_split
    from pdesurrogates.datasets import import_arrays as run

    roles = {name: "input" for name in _names(inputs)}
    roles |= {name: "target" for name in _names(targets)}
    roles |= {name: "param" for name in _names(params)}
    if not any(r != "param" for r in roles.values()):
        raise typer.BadParameter("name the arrays to import with --input and/or --target")
    if output is None and not dry_run:
        raise typer.BadParameter("give the output file with -o/--output (or pass --dry-run)")
    options = {
        "sample_axis": _sample_axis(sample_axis),
        "layout": layout,
        "coords": _pairs(coords, "--coords") or None,
        "dtype": dtype,
        "split": _parse_split(split),
        "seed": seed,
        "overwrite": overwrite,
        "compression": compression,
        "progress": not quiet,
    }
    path = run(src, output, roles, dry_run=dry_run, on_plan=_print_plan, **options)
    if dry_run:
        typer.echo("dry run: nothing written")
        return
    typer.echo(_summary(path))
