"""UQ commands: ``uq evaluate PRED.h5 TRUTH.h5`` and ``uq propagate``.

Argument parsing and printing only: the work is done by
:func:`pdesurrogates.runs.evaluate_files` and :func:`pdesurrogates.runs.propagate_from_files`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from pdesurrogates.cli._app import OVERWRITE, QUIET, uq_app
from pdesurrogates.cli._tables import fmt, table

_MAX_COLUMNS = 6  # output components shown in the table of a vector output

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
    overwrite: bool = OVERWRITE,
    no_figures: bool = typer.Option(False, "--no-figures", help="Write the JSON only."),
    as_json: bool = typer.Option(
        False, "--json", help="Print the report as JSON (uq_report.json) instead of tables."
    ),
) -> None:
    """Judge a probabilistic prediction: accuracy, CRPS, NLL, coverage, calibration.

    PRED.h5 is a prediction file (`pdesurrogates predict`, or
    pdesurrogates.uq.save_prediction): the predictive mean, and the ensemble members,
    a Gaussian std or quantiles. The only predicted field is chosen without --field,
    and the split the file records is compared unless --split says otherwise; when
    PRED records the rows it predicted, exactly those rows of TRUTH are compared (a
    note on stderr says when PRED was predicted from another file than TRUTH). A
    prediction with a time axis (a rollout) also gets the relative L2 of every step
    and the time the error first exceeds 10 %. An existing OUTPUT/uq_report.json is
    refused unless --overwrite; with it, the figures the earlier report wrote (listed
    in its uq_report.json) and the new one does not are removed, other files are kept.
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
        overwrite=overwrite,
    )
    if "warning" in report.meta:
        typer.echo(f"warning: {report.meta['warning']}", err=True)
    if as_json:
        typer.echo(report.to_json())
        return
    from rich.console import Console

    console = Console()
    console.print(
        f"field {report.meta['field']}, split {report.meta['split']} "
        f"({report.meta['n_samples']} samples)",
        highlight=False,
    )
    console.print(
        table(
            report.title(),
            ("metric", "value", "better", "meaning"),
            report.metric_rows(),
            caption=f"Predictive form scored: {report.describe_form()}.",
        )
    )
    cols, rows = report.level_rows()
    if rows:
        console.print(table("Central prediction intervals", cols, rows))
    cols, rows = report.step_rows()
    if rows:
        caption = report.step_caption()
        title = "Relative L2 along the trajectory"
        console.print(table(title, cols, rows, caption=caption, min_width=len(caption) // 2 + 4))
    if out is not None:
        console.print(f"wrote {Path(out) / 'uq_report.json'}", highlight=False)


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
        ...,
        "--inputs",
        "-i",
        help=(
            "TOML file of input distributions ([inputs.<name>]). For a run that records its "
            "input names (mf fit: x0, x1, ...) exactly those, in any order; for a "
            "module:function in the order of the file."
        ),
    ),
    n_samples: int = typer.Option(10000, "--n-samples", "-n", min=4, help="Model evaluations."),
    out: Path = typer.Option(
        Path("runs/propagate"),
        "-o",
        "--output",
        help="Directory for propagation.json, outputs.npz and the figures.",
    ),
    method: str = typer.Option("mc", "--method", help="mc, lhs or sobol (power-of-2 N)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the input design."),
    batch_size: int = typer.Option(4096, "--batch-size", min=1, help="Inputs per model call."),
    scheduler: str = typer.Option(
        None, "--scheduler", help="Dask scheduler address (default: run in-process)."
    ),
    sobol: int = typer.Option(
        None, "--sobol", help="Also compute Sobol' indices with this many base samples (2^k)."
    ),
    quiet: bool = QUIET,
    as_json: bool = typer.Option(False, "--json", help="Print propagation.json instead of tables."),
) -> None:
    """Propagate input uncertainty through a surrogate or simulator.

    The model receives a (B, D) batch of inputs and returns one output (scalar or array)
    per row. A saved run that records its input names (run.json "input", as mf fit
    writes) gets them in its own order: the TOML file must name exactly those inputs, in
    any order, or the command stops naming the missing and unknown ones. A
    module:function gets them in the order of the TOML file. Prints the output's mean,
    std, skewness and excess kurtosis (0 for a normal distribution) with Monte Carlo
    standard errors, and its quantiles; an optional [output] table in the TOML file
    (name, units, long_name) labels them. Writes OUTPUT/propagation.json (the same
    numbers), OUTPUT/outputs.npz (the samples) and OUTPUT/propagation.png (scalar
    outputs); with --sobol also sobol.json and sobol.png.
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
    if as_json:
        typer.echo(done["written"]["propagation"].read_text())
        return
    from rich.console import Console

    console = Console()
    console.print(_propagation_table(done["result"], done["output"]))
    if done["sobol"] is not None:
        console.print(_sobol_table(done["sobol"]))
    console.print("wrote " + ", ".join(map(str, done["written"].values())), highlight=False)


def _components(res) -> tuple[list[str], int]:
    """Column names of the output components shown, and how many there are in all."""
    import numpy as np

    shape = np.shape(res.mean)
    if not shape:
        return ["value"], 1
    idx = list(np.ndindex(*shape))
    names = [f"[{', '.join(map(str, i))}]" for i in idx[:_MAX_COLUMNS]]
    return names, len(idx)


def _propagation_table(res, output):
    """Moments (with standard errors) and quantiles of the propagated output."""
    import numpy as np

    from pdesurrogates.uq._propagate import MOMENTS

    cols, total = _components(res)
    k = len(cols)

    def cells(arr, se=None):
        a = np.ravel(arr)[:k]
        if se is None:
            return [fmt(v, ".5g") for v in a]
        s = np.ravel(se)[:k]
        return [f"{fmt(v, '.5g')} ± {fmt(e, '.2g')}" for v, e in zip(a, s, strict=True)]

    dimless = {"skewness", "excess_kurtosis"}
    rows = [
        (m, *([output.units if m not in dimless else "1"] if output.units else []),
         *cells(getattr(res, m), getattr(res, f"se_{m}")))
        for m in MOMENTS
    ]  # fmt: skip
    if res.quantiles is not None:
        for lv, q in zip(res.quantile_levels, res.quantiles, strict=True):
            unit = [output.units] if output.units else []
            rows.append((f"quantile {100 * float(lv):g} %", *unit, *cells(q)))
    shown = "" if total == len(cols) else f"; first {len(cols)} of {total} components"
    title = f"Output {output.label}"
    caption = (
        f"{res.n_samples} samples ({res.method}) of {', '.join(res.names)} in "
        f"{res.seconds:.3g} s. Values ± Monte Carlo standard error; excess kurtosis is 0 "
        f"for a normal distribution{shown}."
    )
    columns = ("statistic", *(["units"] if output.units else []), *cols)
    return table(title, columns, rows, caption=caption)


def _sobol_table(sob):
    """First-order and total Sobol' indices with their bootstrap half-widths."""
    import numpy as np

    level = round(100 * float(sob.conf_level))
    rows = []
    for i, name in enumerate(sob.names):

        def first(a, i=i):
            return float(np.ravel(np.asarray(a)[i])[0])

        rows.append(
            (
                name,
                f"{first(sob.S1):.4f} ± {first(sob.S1_conf):.2g}",
                f"{first(sob.ST):.4f} ± {first(sob.ST_conf):.2g}",
            )
        )
    title = (
        f"Sobol' indices: {sob.n_base} base samples, {sob.n_evaluations} evaluations, "
        f"± {level} % bootstrap half-width (first output component)"
    )
    return table(title, ("input", "first order S1", "total ST"), rows)
