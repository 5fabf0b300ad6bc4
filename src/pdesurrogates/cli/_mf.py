"""Multi-fidelity commands: ``mf fit``, ``mf adapt``, ``mf study``.

Data come either from a built-in benchmark problem (``--problem forrester`` with
``--n-lo/--n-hi``) or from an ``.npz`` file with arrays ``x_lo, y_lo, x_hi, y_hi`` (and
optionally ``bounds`` of shape (d, 2)). ``mf fit`` writes a run directory
(:func:`pdesurrogates.runs.fit_mf_run`, default ``runs/mf``); ``mf study``
(:func:`pdesurrogates.runs.run_mf_study`, default ``runs/mf-study``) and ``uq propagate``
take the run directory or the model directory inside it. Both print tables and write
JSON plus a figure.
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import typer

from pdesurrogates.cli._app import mf_app

__all__ = ["adapt_cmd", "fit_cmd", "study_cmd"]


@contextmanager
def _quiet_logs(quiet: bool):
    """With ``quiet``, the library's INFO messages (co-kriging levels) are not shown."""
    logger = logging.getLogger("pdesurrogates")
    level = logger.level
    if quiet:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _table(title: str, columns, rows):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, c in enumerate(columns):
        table.add_column(c, justify="left" if i == 0 else "right")
    for r in rows:
        table.add_row(*r)
    return table


def _fit_table(record: dict):
    source = record["problem"] or Path(record["data"] or "").name
    rows = [
        ("method", record["method"]),
        ("data", f"{source} ({record['in_dim']}-D input)"),
        ("n_lo / n_hi", f"{record['n_lo']} / {record['n_hi']}"),
    ]
    if record.get("ensemble", 1) > 1:
        rows.append(("ensemble members", str(record["ensemble"])))
    names = {
        "test_rel_l2": "test relative L2 error",
        "test_rmse": "test RMSE",
        "test_crps": "test CRPS",
        "test_coverage_95": "test coverage of 95 % intervals",
    }
    n_test = record.get("n_test")
    for k, label in names.items():
        if k in record:
            rows.append((f"{label} ({n_test} points)", f"{record[k]:.4g}"))
    rows.append(("fit time", f"{record['fit_seconds']:.3g} s"))
    return _table("Multi-fidelity fit", ("", "value"), rows)


@mf_app.command("fit")
def fit_cmd(
    out: Path = typer.Option(
        Path("runs/mf"),
        "-o",
        "--output",
        help="Run directory to create (model/, run.json, fit.png, test.h5).",
    ),
    problem: str = typer.Option(None, help="Built-in problem (forrester, nonlinear_sin, ...)."),
    data: Path = typer.Option(None, help=".npz with x_lo, y_lo, x_hi, y_hi (and bounds)."),
    method: str = typer.Option("cokriging", help="cokriging | nargp | mfdnn."),
    n_lo: int = typer.Option(21, help="Low-fidelity points (with --problem)."),
    n_hi: int = typer.Option(6, help="High-fidelity points (with --problem; nested)."),
    n_test: int = typer.Option(
        2000, min=1, help="High-fidelity test points written to test.h5 (with --problem)."
    ),
    members: int | None = typer.Option(
        None,
        help="MF-DNN members trained (half are kept); default MultiFidelityConfig.n_members.",
    ),
    config: Path = typer.Option(
        None,
        "--config",
        "-c",
        help="MF-DNN: TOML file with a [training] table (MultiFidelityConfig settings).",
    ),
    seed: int = typer.Option(0, help="Seed of the design and of the fit."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, no fit log."),
) -> None:
    """Fit a multi-fidelity surrogate into a run directory.

    Prints a table of the fit (sizes, test scores, time). Writes OUTPUT/model
    (pdesurrogates.load), OUTPUT/run.json (the same numbers), OUTPUT/fit.png (the
    surrogate against its data) and, with --problem, OUTPUT/test.h5 (high-fidelity test
    points: inputs as parameters x0.., output as field y). Score the run with
    `pdesurrogates evaluate OUTPUT --data OUTPUT/test.h5 -o REPORT`.
    """
    from rich.console import Console

    from pdesurrogates.runs import RUN_FILE, fit_mf_run

    with _quiet_logs(quiet):
        record = fit_mf_run(
            out,
            problem=problem,
            data=data,
            method=method,
            n_lo=n_lo,
            n_hi=n_hi,
            n_test=n_test,
            members=members,
            config=config,
            seed=seed,
            progress=not quiet,
        )
    console = Console()
    console.print(_fit_table(record))
    console.print(f"wrote {out / RUN_FILE}, {out / record['figure']}", highlight=False)


@mf_app.command("adapt")
def adapt_cmd(
    problem: str = typer.Option(..., help="Built-in two-level problem to sample."),
    out: Path = typer.Option(None, "-o", "--output", help="Save the final model here."),
    budget: float = typer.Option(60.0, help="Total simulator cost, initial design included."),
    costs: str = typer.Option("1,10", help="Cost per run of each level, comma-separated."),
    n_lo: int = typer.Option(8, help="Initial low-fidelity points."),
    n_hi: int = typer.Option(3, help="Initial high-fidelity points (nested)."),
    criterion: str = typer.Option("variance", help="variance | ivr."),
    seed: int = typer.Option(0, help="Seed."),
) -> None:
    """Adaptive co-kriging: grow the design by calling the problem's simulators."""
    from pdesurrogates import save
    from pdesurrogates.solvers.reference import get_mf_problem
    from pdesurrogates.surrogates import adaptive_cokriging

    p = get_mf_problem(problem)
    try:
        cost_list = [float(c) for c in costs.split(",")]
    except ValueError as exc:
        raise ValueError(f"--costs must be comma-separated numbers; got {costs!r}") from exc
    res = adaptive_cokriging(
        list(p.levels),
        p.bounds,
        initial=[n_lo, n_hi],
        costs=cost_list,
        budget=budget,
        criterion=criterion,
        seed=seed,
        progress=True,
    )
    xt = p.sample(2000, seed=seed + 1000, method="uniform")
    yt = p.high(xt)
    err = float(np.linalg.norm(res.model.predict(xt).mean - yt) / np.linalg.norm(yt))
    summary = {
        "spent": res.spent,
        "n_per_level": [len(y) for y in res.ys],
        "iterations": len(res.history),
        "test_rel_l2": err,
    }
    if out is not None:
        save(res.model, out, metadata={"problem": problem, **summary})
    typer.echo(json.dumps(summary))


def _study_tables(doc: dict):
    cols = ("moment", "surrogate", "± SE", "truth", "± SE", "surrogate − truth")
    for row in doc["summary"]:
        name = row["distribution"]
        rows = [
            (
                m["moment"],
                f"{m['surrogate']:.5g}",
                f"{m['se_surrogate']:.2g}",
                f"{m['truth']:.5g}",
                f"{m['se_truth']:.2g}",
                f"{m['difference']:+.3g}",
            )
            for m in doc["moments"]
            if m["distribution"] == name
        ]
        title = (
            f"Output moments, {name} inputs, {row['n_samples']} samples (the same for "
            f"both): Wasserstein-1 {row['wasserstein1']:.3g}, KS {row['ks']:.3g}"
        )
        yield _table(title, cols, rows)


@mf_app.command("study")
def study_cmd(
    model: Path = typer.Option(
        ..., help="Run directory of `mf fit` (or the saved model directory in it)."
    ),
    problem: str = typer.Option(..., help="Built-in problem whose high level is the truth."),
    dist: str = typer.Option(
        "uniform", help="uniform (on the bounds) | normal (centre, 1/6 of the width as std)."
    ),
    n_samples: int = typer.Option(100_000, help="Input samples (shared by model and truth)."),
    out: Path = typer.Option(
        Path("runs/mf-study"),
        "-o",
        "--output",
        help="Directory for study.json (moments, distances) and study.png (densities).",
    ),
    plot: Path = typer.Option(
        None, help="Also write the density figure here (it is always in OUTPUT/study.png)."
    ),
    seed: int = typer.Option(0, help="Seed of the input samples."),
    as_json: bool = typer.Option(False, "--json", help="Print study.json instead of tables."),
) -> None:
    """Propagate an input distribution through the model and the truth; compare moments.

    Prints the mean, std, skewness and excess kurtosis (0 for a normal distribution) of
    the surrogate's and the truth's output with their Monte Carlo standard errors, and
    writes OUTPUT/study.json and OUTPUT/study.png.
    """
    from rich.console import Console

    from pdesurrogates.runs import run_mf_study

    done = run_mf_study(model, problem, out, dist=dist, n_samples=n_samples, seed=seed)
    if plot is not None:
        from pdesurrogates.io import atomic_write_bytes

        atomic_write_bytes(plot, done["written"]["figure"].read_bytes())
        done["written"]["copy"] = plot
    if as_json:
        typer.echo(done["written"]["json"].read_text())
        return
    console = Console()
    for table in _study_tables(done):
        console.print(table)
    console.print("wrote " + ", ".join(map(str, done["written"].values())), highlight=False)
