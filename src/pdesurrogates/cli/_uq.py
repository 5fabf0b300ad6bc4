"""UQ commands: ``uq evaluate PRED.h5 TRUTH.h5`` and ``uq propagate``.

The Python functions behind them (:func:`evaluate_files`, :func:`propagate_from_files`,
:func:`read_inputs`) are usable directly; the commands are thin wrappers.
"""

from __future__ import annotations

import importlib
import json
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import typer

from pdesurrogates.cli._app import uq_app
from pdesurrogates.errors import CheckpointError, ConfigError, DatasetError

__all__ = ["evaluate_files", "load_model_or_function", "propagate_from_files", "read_inputs"]


def _parse_levels(text: str) -> tuple[float, ...]:
    try:
        levels = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise ValueError(f"--levels must be comma-separated numbers, got {text!r}") from None
    if not levels or any(not 0 < v < 1 for v in levels):
        raise ValueError(f"--levels must lie strictly between 0 and 1, got {text!r}")
    return levels


# --------------------------------------------------------------------------- evaluate
def evaluate_files(
    pred_path: str | Path,
    truth_path: str | Path,
    *,
    field: str | None = None,
    split: str | None = None,
    levels: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95),
    out: str | Path | None = None,
    name: str | None = None,
    figures: bool = True,
):
    """Evaluate a prediction file against a truth dataset; optionally write the report.

    Parameters
    ----------
    pred_path : path
        Prediction file (see :mod:`pdesurrogates.uq._io` for the layout).
    truth_path : path
        The ``pdesurrogates-h5`` dataset holding the true field.
    field : str, optional
        The predicted field (default: the only one in the prediction file).
    split : str, optional
        Compare with this split of the truth file (the prediction file then holds exactly
        that split's samples, in order).
    out : path, optional
        Directory for ``uq_report.json`` and, with ``figures``, PNG figures.
    """
    from pdesurrogates.datasets import open_dataset
    from pdesurrogates.uq import evaluate, load_prediction, plots

    pred_path, truth_path = Path(pred_path), Path(truth_path)
    for p, what in ((pred_path, "prediction"), (truth_path, "truth")):
        if not p.is_file():
            raise FileNotFoundError(f"{what} file {p} does not exist")
    pred = load_prediction(pred_path, field)
    if field is None:
        field = json.loads(open_dataset(pred_path).attrs.get("prediction_of", "[]") or "[]")
        field = field[0] if field else None
    truth = open_dataset(truth_path)
    if field is None or field not in truth.fields:
        raise DatasetError(
            f"{truth_path}: has no field {field!r} to compare with; fields: {sorted(truth.fields)}"
        )
    if split is not None:
        truth = truth.split(split)
    y = truth.load(field)
    if tuple(y.shape) != pred.shape:
        where = f" (split {split!r})" if split else ""
        raise DatasetError(
            f"{pred_path} predicts {field!r} with shape {pred.shape} but {truth_path}{where} "
            f"holds {tuple(y.shape)}; predict the same samples (use --split for a split)"
        )
    meta = {
        "name": name or pred_path.stem,
        "prediction": str(pred_path),
        "truth": str(truth_path),
        "field": field,
        "split": split or "all",
    }
    report = evaluate(pred, y, levels=levels, meta=meta)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        report.to_json(out / "uq_report.json")
        if figures:
            figs = {}
            if len(pred.shape) - 1 in (1, 2):
                figs["error_map"] = plots.plot_error_maps(pred, y)
            if report.kind != "point":
                figs.update(
                    calibration=plots.plot_calibration(report),
                    pit=plots.plot_pit(report),
                    coverage=plots.plot_coverage(report),
                )
            figs["pred_vs_true"] = plots.plot_pred_vs_true(pred, y)
            for k, fig in figs.items():
                fig.savefig(out / f"{k}.png", dpi=120)
    return report


@uq_app.command("evaluate")
def evaluate_cmd(
    pred: Path = typer.Argument(..., help="Prediction file (pdesurrogates-h5, see docs)."),
    truth: Path = typer.Argument(..., help="Truth dataset (pdesurrogates-h5)."),
    field: str = typer.Option(
        None, "--field", "-f", help="Predicted field (default: the only one)."
    ),
    split: str = typer.Option(
        None, "--split", help="Compare with this split of TRUTH (train/valid/test)."
    ),
    levels: str = typer.Option(
        "0.5,0.8,0.9,0.95", "--levels", help="Comma-separated central-interval levels."
    ),
    out: Path = typer.Option(None, "-o", "--out", help="Directory for uq_report.json and figures."),
    name: str = typer.Option(None, "--name", help="Model name shown in the report."),
    no_figures: bool = typer.Option(False, "--no-figures", help="Write the JSON only."),
) -> None:
    """Judge a probabilistic prediction: accuracy, CRPS, NLL, coverage, calibration.

    PRED.h5 holds the predictive mean as /fields/<f>, and optionally /fields/<f>_std
    (Gaussian), /predictive/<f>/samples (S, N, ...; members first) or
    /predictive/<f>/quantiles (K, N, ...; attribute 'levels'). Write it with
    pdesurrogates.uq.save_prediction.
    """
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
    typer.echo(report.summary())
    if out is not None:
        typer.echo(f"wrote {Path(out) / 'uq_report.json'}")


# --------------------------------------------------------------------------- propagate
def read_inputs(path: str | Path) -> dict[str, Any]:
    """Read input distributions from a TOML file into scipy.stats frozen distributions.

    Each input is a table ``[inputs.<name>]`` (or a top-level ``[<name>]``) with ``dist``
    and its parameters, as accepted by :func:`pdesurrogates.uq.make_distribution`::

        [inputs.k]
        dist = "uniform"
        low = 0.5
        high = 2.0
    """
    from pdesurrogates.uq import make_distribution

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"inputs file {path} does not exist")
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    table = doc.get("inputs", doc)
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"{path}: no inputs; add tables like [inputs.x] with dist = ...")
    out = {}
    for k, spec in table.items():
        if not isinstance(spec, dict):
            raise ConfigError(f"{path}: inputs.{k} must be a table with a 'dist' key")
        try:
            out[k] = make_distribution(spec, name=f"{path}: inputs.{k}")
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
    return out


def load_model_or_function(spec: str):
    """A saved model directory (``runs/NAME``, ``runs/NAME/model``) or ``module:function``."""
    import pdesurrogates

    p = Path(spec)
    if p.exists():
        for cand in (p, p / "model"):
            if (cand / "config.json").is_file():
                model = pdesurrogates.load(cand)
                model.eval()
                return model
        raise CheckpointError(
            f"{p}: no saved model (config.json) here or in {p / 'model'}; pass the directory "
            "written by pdesurrogates.save or by training"
        )
    if ":" in spec:
        mod, _, attr = spec.partition(":")
        try:
            fn = getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(
                f"--model {spec!r}: cannot import {attr!r} from {mod!r} ({exc})"
            ) from exc
        if not callable(fn):
            raise ValueError(f"--model {spec!r} is not callable")
        return fn
    raise FileNotFoundError(
        f"--model {spec!r}: no such directory; give a saved model directory or module:function"
    )


def propagate_from_files(
    model: str,
    inputs: str | Path,
    n_samples: int,
    out: str | Path,
    *,
    method: str = "mc",
    seed: int = 0,
    batch_size: int = 4096,
    scheduler: str | None = None,
    sobol_base: int | None = None,
    progress: bool = True,
) -> dict[str, Path]:
    """Run :func:`pdesurrogates.uq.propagate` (and optionally Sobol') and write the results.

    Writes ``propagation.json`` (moments, standard errors, quantiles, KDE), ``outputs.npz``
    (input and output samples), ``propagation.png`` for a scalar output, and with
    ``sobol_base`` ``sobol.json`` and ``sobol.png``. Returns the written paths.
    """
    from pdesurrogates.io import atomic_write_bytes
    from pdesurrogates.uq import plots, propagate, sobol_indices

    fn = load_model_or_function(model)
    dists = read_inputs(inputs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    res = propagate(
        fn,
        dists,
        n_samples,
        method=method,
        seed=seed,
        batch_size=batch_size,
        scheduler=scheduler,
        progress=progress,
    )
    res.meta.update({"model": str(model), "inputs_file": str(inputs)})
    written = {"propagation": out / "propagation.json"}
    res.to_json(written["propagation"])
    import io

    buf = io.BytesIO()
    np.savez(buf, inputs=res.inputs, outputs=res.outputs, names=np.array(res.names))
    atomic_write_bytes(out / "outputs.npz", buf.getvalue())
    written["samples"] = out / "outputs.npz"
    if res.outputs is not None and res.outputs.ndim == 1:
        plots.plot_propagation(res).savefig(out / "propagation.png", dpi=120)
        written["figure"] = out / "propagation.png"
    typer.echo(res.summary())
    if sobol_base:
        sob = sobol_indices(
            fn,
            dists,
            sobol_base,
            seed=seed,
            batch_size=batch_size,
            scheduler=scheduler,
            progress=progress,
        )
        written["sobol"] = out / "sobol.json"
        sob.to_json(written["sobol"])
        plots.plot_sobol(sob).savefig(out / "sobol.png", dpi=120)
        written["sobol_figure"] = out / "sobol.png"
        typer.echo(sob.summary())
    return written


@uq_app.command("propagate")
def propagate_cmd(
    model: str = typer.Option(
        ...,
        "--model",
        "-m",
        help="Saved model directory (runs/NAME or runs/NAME/model) or module:function.",
    ),
    inputs: Path = typer.Option(
        ..., "--inputs", "-i", help="TOML file of input distributions ([inputs.<name>])."
    ),
    n_samples: int = typer.Option(10000, "--n-samples", "-n", min=4, help="Model evaluations."),
    out: Path = typer.Option(..., "-o", "--out", help="Output directory."),
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
    written = propagate_from_files(
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
    for p in written.values():
        typer.echo(f"wrote {p}")
