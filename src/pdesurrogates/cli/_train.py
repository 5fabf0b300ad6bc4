"""``pdesurrogates train mgno|fno``, ``pdesurrogates evaluate`` and ``pdesurrogates predict``."""

from __future__ import annotations

from pathlib import Path

import typer

from pdesurrogates.cli._app import app, train_app

__all__ = ["evaluate", "predict", "train_fno", "train_mgno"]

_DATA = typer.Option(
    ..., "--data", "-d", help="Training file (pdesurrogates-h5) with a train split."
)
_OUT = typer.Option(..., "-o", "--output", help="Run directory to create (e.g. runs/NAME).")
_CONFIG = typer.Option(
    None,
    "--config",
    "-c",
    help="TOML file with [model] (model keyword arguments), [training] (lr, epochs, "
    "batch_size, loss, scheduler, patience, seed, ...) and [data] (input, target).",
)
_ENSEMBLE = typer.Option(
    None,
    "--ensemble",
    "-k",
    min=1,
    help="Train K members with seeds seed..seed+K-1 (deep ensemble).",
)
_RESUME = typer.Option(False, "--resume", help="Continue an interrupted run in --output.")
_QUIET = typer.Option(False, "--quiet", "-q", help="No progress bar.")


def _train(kind, data, output, config, ensemble, resume, quiet):
    from rich.console import Console

    from pdesurrogates.training._runs import train_run

    record = train_run(
        kind, data, output, config=config, ensemble=ensemble, resume=resume, progress=not quiet
    )
    con = Console()
    summary = ", ".join(f"{k} {v:.4g}" for k, v in record["summary"].items())
    what = f"{kind.upper()}" + (
        f" ensemble of {record['ensemble']}" if record["ensemble"] > 1 else ""
    )
    con.print(f"trained {what} on {record['n_train']} samples ({summary})", highlight=False)
    con.print(f"model: {Path(output) / 'model'}", highlight=False)


@train_app.command("mgno")
def train_mgno(
    data: Path = _DATA,
    output: Path = _OUT,
    config: Path = _CONFIG,
    ensemble: int = _ENSEMBLE,
    resume: bool = _RESUME,
    quiet: bool = _QUIET,
) -> None:
    """Train a multigrid neural operator (MgNO) on a 2-D field dataset.

    Inputs and target default to the fields with role 'input' and 'output'; the
    validation split (when present) selects the best epoch. Writes the model, a
    checkpoint every epoch and metrics.jsonl to OUTPUT.
    """
    _train("mgno", data, output, config, ensemble, resume, quiet)


@train_app.command("fno")
def train_fno(
    data: Path = _DATA,
    output: Path = _OUT,
    config: Path = _CONFIG,
    ensemble: int = _ENSEMBLE,
    resume: bool = _RESUME,
    quiet: bool = _QUIET,
) -> None:
    """Train neuraloperator's Fourier neural operator (FNO) on a 2-D field dataset."""
    _train("fno", data, output, config, ensemble, resume, quiet)


@app.command("evaluate")
def evaluate(
    run: Path = typer.Argument(..., help="Run directory written by `pdesurrogates train`."),
    data: Path = typer.Option(..., "--data", "-d", help="File to evaluate on."),
    output: Path = typer.Option(..., "-o", "--output", help="Report directory."),
    split: str = typer.Option("test", "--split", help="test, valid, train or all."),
) -> None:
    """Per-sample and summary relative L2/H1 errors, figures of the best, median and
    worst samples, and UQ metrics for ensembles; writes report.md, metrics.json and PNGs."""
    from rich.console import Console

    from pdesurrogates.training._report import evaluate_run

    m = evaluate_run(run, data, output, split=None if split == "all" else split)
    Console().print(
        f"{m['n_samples']} samples: rel L2 {m['rel_l2']['mean']:.4g} (median "
        f"{m['rel_l2']['median']:.4g}), rel H1 {m['rel_h1']['mean']:.4g}"
        + (f", CRPS {m['uq']['crps']:.4g}" if "uq" in m and "crps" in m["uq"] else ""),
        highlight=False,
    )
    Console().print(f"report: {Path(output) / 'report.md'}", highlight=False)


@app.command("predict")
def predict(
    run: Path = typer.Argument(..., help="Run directory written by `pdesurrogates train`."),
    data: Path = typer.Option(..., "--data", "-d", help="File with the input field(s)."),
    output: Path = typer.Option(..., "-o", "--output", help="Output file (.h5)."),
    split: str = typer.Option("all", "--split", help="all (default), train, valid or test."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
) -> None:
    """Predict the target field for every sample and write a pdesurrogates-h5 file
    (inputs, prediction and, for ensembles, <target>_std)."""
    from rich.console import Console

    from pdesurrogates.training._runs import predict_run

    path = predict_run(
        run, data, output, split=None if split == "all" else split, overwrite=overwrite
    )
    Console().print(f"predictions: {path}", highlight=False)
