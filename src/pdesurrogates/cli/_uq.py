"""UQ commands: ``uq evaluate PRED.h5 TRUTH.h5`` and ``uq propagate``.

Argument parsing and printing only: the work is done by
:func:`pdesurrogates.runs.evaluate_files` and :func:`pdesurrogates.runs.propagate_from_files`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from pdesurrogates.cli._app import uq_app

__all__ = ["evaluate_cmd", "propagate_cmd"]


def _parse_levels(text: str) -> tuple[float, ...]:
    try:
        levels = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise ValueError(f"--levels must be comma-separated numbers, got {text!r}") from None
    if not levels or any(not 0 < v < 1 for v in levels):
        raise ValueError(f"--levels must lie strictly between 0 and 1, got {text!r}")
    return levels


@uq_app.command("evaluate")
def evaluate_cmd(
    pred: Path = typer.Argument(..., help="Prediction file (pdesurrogates-h5, see docs)."),
    truth: Path = typer.Argument(..., help="Truth dataset (pdesurrogates-h5)."),
    field: str = typer.Option(None, "--field", help="Predicted field (default: the only one)."),
    split: str = typer.Option(
        None,
        "--split",
        help="Compare with this split of TRUTH (default: the split PRED records, else all).",
    ),
    levels: str = typer.Option(
        "0.5,0.8,0.9,0.95", "--levels", help="Comma-separated central-interval levels."
    ),
    out: Path = typer.Option(
        None, "-o", "--output", help="Directory for uq_report.json and figures."
    ),
    name: str = typer.Option(None, "--name", help="Model name shown in the report."),
    no_figures: bool = typer.Option(False, "--no-figures", help="Write the JSON only."),
) -> None:
    """Judge a probabilistic prediction: accuracy, CRPS, NLL, coverage, calibration.

    PRED.h5 is a prediction file (`pdesurrogates predict`, or
    pdesurrogates.uq.save_prediction): the predictive mean, and the ensemble members,
    a Gaussian std or quantiles. The only predicted field is chosen without --field,
    and the split the file records is compared unless --split says otherwise.
    """
    from pdesurrogates.runs import evaluate_files

    report = evaluate_files(
        pred,
        truth,
        field=field,
        split=split,
        levels=_parse_levels(levels),
        out=out,
        name=name,
        figures=not no_figures,
    )
    typer.echo(
        f"field {report.meta['field']}, split {report.meta['split']} "
        f"({report.meta['n_samples']} samples)"
    )
    typer.echo(report.summary())
    if out is not None:
        typer.echo(f"wrote {Path(out) / 'uq_report.json'}")


@uq_app.command("propagate")
def propagate_cmd(
    model: str = typer.Option(
        ...,
        "--model",
        "-m",
        help=(
            "Saved model directory (runs/NAME or runs/NAME/model), module:function "
            "(module on sys.path) or path/to/file.py:function."
        ),
    ),
    inputs: Path = typer.Option(
        ..., "--inputs", "-i", help="TOML file of input distributions ([inputs.<name>])."
    ),
    n_samples: int = typer.Option(10000, "--n-samples", "-n", min=4, help="Model evaluations."),
    out: Path = typer.Option(..., "-o", "--output", help="Output directory."),
    method: str = typer.Option("mc", "--method", help="mc, lhs or sobol (power-of-2 N)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the input design."),
    batch_size: int = typer.Option(4096, "--batch-size", min=1, help="Inputs per model call."),
    scheduler: str = typer.Option(
        None, "--scheduler", help="Dask scheduler address (default: run in-process)."
    ),
    sobol: int = typer.Option(
        None, "--sobol", help="Also compute Sobol' indices with this many base samples (2^k)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Propagate input uncertainty through a surrogate or simulator.

    The model receives a (B, D) batch of inputs in the order of the TOML file and returns
    one output (scalar or array) per row. Writes propagation.json, outputs.npz and figures.
    """
    from pdesurrogates.runs import propagate_from_files

    done = propagate_from_files(
        model,
        inputs,
        n_samples,
        out,
        method=method,
        seed=seed,
        batch_size=batch_size,
        scheduler=scheduler,
        sobol_base=sobol,
        progress=not quiet,
    )
    typer.echo(done["result"].summary())
    if done["sobol"] is not None:
        typer.echo(done["sobol"].summary())
    for p in done["written"].values():
        typer.echo(f"wrote {p}")
