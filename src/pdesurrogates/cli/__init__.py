"""The ``pdesurrogates`` command: a thin layer over the Python API.

Each command group lives in its own module and attaches itself to the Typer objects in
:mod:`pdesurrogates.cli._app`. Errors the package raises on purpose are printed as one
clear message with a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import importlib
import sys

import typer

from pdesurrogates._version import __version__
from pdesurrogates.cli._app import app
from pdesurrogates.errors import PdeSurrogatesError

__all__ = ["app", "main"]

# Modules that register commands on import (one per command group).
_COMMAND_MODULES: list[str] = [
    "pdesurrogates.cli._data",
    "pdesurrogates.cli._import",
    "pdesurrogates.cli._acoustics",
    "pdesurrogates.cli._uq",
    "pdesurrogates.cli._solve",
    "pdesurrogates.cli._train",
    "pdesurrogates.cli._mf",
]


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"pdesurrogates {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
) -> None:
    """Learned surrogates for operators and PDEs."""


for _name in _COMMAND_MODULES:
    importlib.import_module(_name)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pdesurrogates`` console script."""
    from rich.console import Console
    from rich.markup import escape

    err = Console(stderr=True)
    try:
        app(args=argv, prog_name="pdesurrogates", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err.print("[red]Aborted.[/red]")
        return 130
    except KeyboardInterrupt:
        err.print("[red]Interrupted.[/red]")
        return 130
    except PdeSurrogatesError as exc:
        err.print("[bold red]error:[/bold red]", escape(str(exc)), highlight=False, soft_wrap=True)
        return 1
    except (ValueError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        err.print("[bold red]error:[/bold red]", escape(str(exc)), highlight=False, soft_wrap=True)
        return 1
    except typer.TyperException as exc:  # usage errors: bad option values, unknown options
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            err.print("[bold red]error:[/bold red]", escape(str(exc)), highlight=False)
        return int(getattr(exc, "exit_code", 2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
