"""The Typer application objects that command modules attach to."""

from __future__ import annotations

import typer

__all__ = [
    "COMPRESSION",
    "OVERWRITE",
    "QUIET",
    "app",
    "generate_app",
    "import_app",
    "mf_app",
    "train_app",
    "uq_app",
]

_SETTINGS = {"help_option_names": ["-h", "--help"]}
# Help text is shown as written: square brackets (TOML tables, grids) are not markup.
_MARKUP = None

app = typer.Typer(
    name="pdesurrogates",
    help="Learned surrogates for operators and PDEs: generate data, train, solve, run UQ.",
    epilog="Exit codes: 0 success, 1 error, 2 usage error, 130 interrupted (Ctrl-C).",
    no_args_is_help=True,
    add_completion=False,
    context_settings=_SETTINGS,
    pretty_exceptions_enable=False,
    rich_markup_mode=_MARKUP,
)
generate_app = typer.Typer(
    help="Generate a dataset with a reference simulator.",
    no_args_is_help=True,
    rich_markup_mode=_MARKUP,
)
train_app = typer.Typer(help="Train a surrogate.", no_args_is_help=True, rich_markup_mode=_MARKUP)
import_app = typer.Typer(
    help="Convert a community dataset into the pdesurrogates-h5 schema.",
    no_args_is_help=True,
    rich_markup_mode=_MARKUP,
)
uq_app = typer.Typer(
    help="Uncertainty quantification: evaluate, propagate.",
    no_args_is_help=True,
    rich_markup_mode=_MARKUP,
)
mf_app = typer.Typer(
    help="Multi-fidelity surrogates: fit, adapt, study.",
    no_args_is_help=True,
    rich_markup_mode=_MARKUP,
)

app.add_typer(generate_app, name="generate")
app.add_typer(train_app, name="train")
app.add_typer(import_app, name="import")
app.add_typer(uq_app, name="uq")
app.add_typer(mf_app, name="mf")

# Options many commands share, declared once (typer reads the default per command).
QUIET = typer.Option(False, "--quiet", "-q", help="No progress bar.")
OVERWRITE = typer.Option(False, "--overwrite", help="Replace an existing output file.")
COMPRESSION = typer.Option(None, "--compression", help="None (default), lzf or gzip.")
