"""``pdesurrogates train mgno|fno``, ``pdesurrogates evaluate`` and ``pdesurrogates predict``.

``predict`` and ``evaluate`` take a run of every family (MgNO/FNO, DeepONet,
multi-fidelity). Argument parsing and printing only; the work is done by
:mod:`pdesurrogates.runs`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from pdesurrogates.cli._app import OVERWRITE, QUIET, app, train_app

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
_EPOCHS = typer.Option(
    None, "--epochs", min=1, help="Epochs (overrides [training] epochs; default 30)."
)
_LR = typer.Option(None, "--lr", min=0.0, help="Peak learning rate (default 1e-3).")
_BATCH = typer.Option(None, "--batch-size", min=1, help="Samples per step (default 8).")
_SEED = typer.Option(
    None, "--seed", help="Seed of initialisation and shuffling (overrides [training] seed; 0)."
)
_RESUME = typer.Option(False, "--resume", help="Continue an interrupted run in --output.")
_HISTORY = typer.Option(
    None,
    "--history",
    min=1,
    help="Time series: states the step model sees (default 1; a field with a time axis "
    "trains a step model).",
)
_UNROLL = typer.Option(
    None,
    "--unroll",
    min=1,
    help="Time series: model calls unrolled per training sample (default 1: teacher "
    "forcing; > 1: pushforward training).",
)
_RESAMPLE = typer.Option(
    False,
    "--resample",
    help="Time series: interpolate a non-uniform time axis linearly onto a uniform one "
    "(same first and last time and number of times) instead of refusing it.",
)
_RUN_HELP = "Run directory of `pdesurrogates train mgno|fno|deeponet` or `pdesurrogates mf fit`."
_SPLIT = typer.Option("test", "--split", help="test (default), valid, train or all.")


def _train(kind, data, output, config, ensemble, epochs, lr, batch_size, seed, resume, quiet,
           history=None, unroll=None, resample=False):  # fmt: skip
    from rich.console import Console

    from pdesurrogates.runs import train_run

    record = train_run(
        kind,
        data,
        output,
        config=config,
        ensemble=ensemble,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        resume=resume,
        progress=not quiet,
        history=history,
        unroll=unroll,
        resample=resample,
    )
    con = Console()
    summary = ", ".join(f"{k} {v:.4g}" for k, v in record["summary"].items())
    k = record["ensemble"]
    what = f"an ensemble of {k} {kind.upper()}" if k > 1 else kind.upper()
    if k > 1 and summary:
        summary += "; means over the members"
    con.print(f"trained {what} on {record['n_train']} samples ({summary})", highlight=False)
    con.print(f"model: {Path(output) / 'model'}", highlight=False)


@train_app.command("mgno")
def train_mgno(
    data: Path = _DATA,
    output: Path = _OUT,
    config: Path = _CONFIG,
    ensemble: int = _ENSEMBLE,
    epochs: int = _EPOCHS,
    lr: float = _LR,
    batch_size: int = _BATCH,
    seed: int = _SEED,
    resume: bool = _RESUME,
    quiet: bool = QUIET,
    history: int = _HISTORY,
    unroll: int = _UNROLL,
    resample: bool = _RESAMPLE,
) -> None:
    """Train a multigrid neural operator (MgNO) on a 2-D field dataset.

    Inputs and target default to the fields with role 'input' and 'output'; the
    validation split (when present) selects the best epoch. Writes the model, a
    checkpoint every epoch and metrics.jsonl to OUTPUT. A field with a time axis
    (e.g. `generate navier-stokes`) trains a step model: --history states in, the next
    one out (use padding_mode = "circular" in [model] for periodic data).
    """
    _train("mgno", data, output, config, ensemble, epochs, lr, batch_size, seed, resume, quiet,
           history, unroll, resample)  # fmt: skip


@train_app.command("fno")
def train_fno(
    data: Path = _DATA,
    output: Path = _OUT,
    config: Path = _CONFIG,
    ensemble: int = _ENSEMBLE,
    epochs: int = _EPOCHS,
    lr: float = _LR,
    batch_size: int = _BATCH,
    seed: int = _SEED,
    resume: bool = _RESUME,
    quiet: bool = QUIET,
    history: int = _HISTORY,
    unroll: int = _UNROLL,
    resample: bool = _RESAMPLE,
) -> None:
    """Train neuraloperator's Fourier neural operator (FNO) on a 2-D field dataset."""
    _train("fno", data, output, config, ensemble, epochs, lr, batch_size, seed, resume, quiet,
           history, unroll, resample)  # fmt: skip


@app.command("evaluate")
def evaluate(
    run: Path = typer.Argument(..., help=_RUN_HELP),
    data: Path = typer.Option(..., "--data", "-d", help="File to evaluate on."),
    output: Path = typer.Option(..., "-o", "--output", help="Report directory."),
    split: str = _SPLIT,
    overwrite: bool = OVERWRITE,
) -> None:
    """Predict SPLIT of DATA and score it: the same as `predict` followed by
    `uq evaluate`. Writes predictions.h5, uq_report.json, report.md, metrics.json,
    per_sample.csv and figures (best, median and worst samples; calibration for
    ensembles). A step-model run is rolled out: the report adds the error of every
    step and the time it first exceeds 10 %, and the sample figures show a few time
    snapshots. Report files already in OUTPUT are refused unless --overwrite; with
    it, the files the earlier report wrote (listed in its metrics.json) and the new
    one does not are removed, other files are kept."""
    from rich.console import Console

    from pdesurrogates.runs import evaluate_run, summary_line

    m = evaluate_run(run, data, output, split=split, overwrite=overwrite)
    Console().print(summary_line(m), highlight=False)
    Console().print(f"report: {Path(output) / 'report.md'}", highlight=False)


@app.command("predict")
def predict(
    run: Path = typer.Argument(..., help=_RUN_HELP),
    data: Path = typer.Option(
        ..., "--data", "-d", help="File with the inputs (fields, sources or parameters)."
    ),
    output: Path = typer.Option(..., "-o", "--output", help="Prediction file (.h5)."),
    split: str = _SPLIT,
    overwrite: bool = OVERWRITE,
    steps: int = typer.Option(
        None,
        "--steps",
        min=1,
        help="Step models: model calls of the rollout (default: the rest of the data's "
        "time axis after the first --history states).",
    ),
    resample: bool = _RESAMPLE,
) -> None:
    """Predict the target field of SPLIT and write a prediction file (the layout
    `uq evaluate` reads: mean, ensemble members or Gaussian std, the split and the
    source rows). Works for runs of train mgno|fno|deeponet and mf fit.

    A step model (train mgno|fno on a time series) is rolled out from the first
    --history states of each trajectory; the file keeps the time axis (the predicted
    times), and `uq evaluate` adds the error of every step and the time to 10 % error."""
    from rich.console import Console

    from pdesurrogates.runs import predict_run
    from pdesurrogates.uq import read_prediction_info

    path = predict_run(
        run, data, output, split=split, overwrite=overwrite, steps=steps, resample=resample
    )
    info = read_prediction_info(path)
    Console().print(
        f"predicted {info.n_samples} samples of split {info.split} "
        f"({info.kinds[info.fields[0]]}): {path}",
        highlight=False,
    )
