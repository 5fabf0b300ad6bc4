"""Import commands: ``import <backend> SRC -o OUT.h5``, one per importer backend.

The sub-commands are made from the registry of :mod:`pdesurrogates.datasets.backends`:
a new backend module gets its command without an edit here. Each command's help is its
backend's docstring.
"""

from __future__ import annotations

from pathlib import Path

import typer

from pdesurrogates.cli._app import import_app
from pdesurrogates.datasets.backends import ImporterBackend, list_backends

__all__ = ["import_command"]

_OUTPUT = typer.Option(..., "-o", "--output", help="Output file (.h5), written atomically.")
_FIELDS = typer.Option(
    None,
    "--fields",
    "-f",
    help="Only these fields (comma-separated or repeated), named as in the output file.",
)
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
        overwrite: bool = _OVERWRITE,
        compression: str = _COMPRESSION,
        quiet: bool = _QUIET,
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
