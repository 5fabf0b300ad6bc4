"""The ``pdesurrogates`` command: a thin layer over the Python API.

Each command group lives in its own module and attaches itself to the Typer objects in
:mod:`pdesurrogates.cli._app`. Errors the package raises on purpose are printed as one
clear message with a non-zero exit code, never a traceback (``--debug`` shows one).
Library messages (the ``pdesurrogates`` logger) are shown through rich on standard error.
"""

from __future__ import annotations

import importlib
import logging
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


_STATE = {"debug": False}
_INTERRUPTED = 130  # the exit code of a command stopped by Ctrl-C (128 + SIGINT)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
    debug: bool = typer.Option(
        False, "--debug", help="Show the full traceback when a command fails."
    ),
) -> None:
    """Learned surrogates for operators and PDEs."""
    _STATE["debug"] = debug


for _name in _COMMAND_MODULES:
    importlib.import_module(_name)


def _commands_taking(option: str) -> list[str]:
    """The full names of the commands that take ``option`` (for example ``--n-lo``)."""
    found = []

    def walk(cmd, path):
        for name, sub in (getattr(cmd, "commands", None) or {}).items():
            walk(sub, [*path, name])
        for param in getattr(cmd, "params", []):
            if option in (*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ())):
                found.append(" ".join(path))
                break

    walk(typer.main.get_command(app), [])
    return found


def _show_logs(console) -> None:
    """Route the library's ``logging`` messages to ``console`` (once per process)."""
    from rich.logging import RichHandler

    logger = logging.getLogger("pdesurrogates")
    if not any(getattr(h, "_pdesurrogates_cli", False) for h in logger.handlers):
        handler = RichHandler(console=console, show_time=False, show_path=False)
        handler._pdesurrogates_cli = True
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pdesurrogates`` console script."""
    from rich.console import Console
    from rich.markup import escape
    from typer._click.exceptions import NoSuchOption

    err = Console(stderr=True)
    _show_logs(err)
    _STATE["debug"] = False
    try:
        # Without standalone mode typer returns (does not raise) the code of an Exit,
        # including the Exit(130) it makes of a KeyboardInterrupt (Ctrl-C).
        code = app(args=argv, prog_name="pdesurrogates", standalone_mode=False)
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        err.print("[red]Aborted.[/red]")
        return _INTERRUPTED
    except KeyboardInterrupt:
        code = _INTERRUPTED
    except NoSuchOption as exc:
        exc.show()
        owners = _commands_taking(exc.option_name)
        if owners:
            names = ", ".join(f"'pdesurrogates {o}'" for o in owners)
            err.print(f"{exc.option_name} is an option of {names}.", highlight=False)
        return int(exc.exit_code)
    except (
        PdeSurrogatesError,
        ValueError,
        FileNotFoundError,
        FileExistsError,
        IsADirectoryError,
        NotADirectoryError,
        PermissionError,
    ) as exc:
        if _STATE["debug"]:
            err.print_exception()
        err.print("[bold red]error:[/bold red]", escape(str(exc)), highlight=False, soft_wrap=True)
        return 1
    except typer.TyperException as exc:  # usage errors: bad option values, unknown options
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            err.print("[bold red]error:[/bold red]", escape(str(exc)), highlight=False)
        return int(getattr(exc, "exit_code", 2))
    except Exception as exc:  # the last line of defence: never a bare traceback
        if _STATE["debug"]:
            err.print_exception()
        err.print(
            f"[bold red]error:[/bold red] unexpected {type(exc).__name__}: {escape(str(exc))}",
            highlight=False,
            soft_wrap=True,
        )
        err.print(
            "This input is not checked yet, or it is a bug: rerun with --debug for the "
            "traceback and report it.",
            highlight=False,
        )
        return 1
    if code == _INTERRUPTED:
        err.print(
            "[bold red]interrupted[/bold red] (Ctrl-C): the command stopped before it finished "
            "(files are only put in place complete; rerun an interrupted generate or train "
            "with --resume to continue it)",
            highlight=False,
            soft_wrap=True,
        )
        return _INTERRUPTED
    return code if isinstance(code, int) and not isinstance(code, bool) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
