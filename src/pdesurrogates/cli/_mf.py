"""Multi-fidelity commands: ``mf fit``, ``mf adapt``, ``mf study``.

Data come either from a built-in benchmark problem (``--problem forrester`` with
``--n-lo/--n-hi``) or from an ``.npz`` file with arrays ``x_lo, y_lo, x_hi, y_hi`` (and
optionally ``bounds`` of shape (d, 2)). ``mf fit`` writes a run directory
(:func:`pdesurrogates.runs.fit_mf_run`, default ``runs/mf``), and so does ``mf adapt``
(:func:`pdesurrogates.runs.adapt_mf_run`, default ``runs/mf-adapt``); ``mf study``
(:func:`pdesurrogates.runs.run_mf_study`, default ``runs/mf-study``) and ``uq propagate``
take the run directory or the model directory inside it. Each prints tables and writes
JSON plus a figure.
"""

from __future__ import annotations

from pathlib import Path

import typer

from pdesurrogates.cli._app import QUIET, mf_app
from pdesurrogates.cli._tables import fmt, quiet_logs, table

__all__ = ["adapt_cmd", "fit_cmd", "study_cmd"]


_SCORES = {
    "test_rel_l2": "test relative L2 error",
    "test_rmse": "test RMSE",
    "test_crps": "test CRPS",
    "test_coverage_95": "test coverage of 95 % intervals",
}


def _score_rows(record: dict) -> list[tuple[str, str]]:
    n_test = record.get("n_test")
    return [
        (f"{label} ({n_test} points)", f"{record[k]:.4g}")
        for k, label in _SCORES.items()
        if k in record
    ]


def _fit_table(record: dict):
    source = record["problem"] or Path(record["data"] or "").name
    method = record["method"]
    if method == "auto":
        method = f"auto: chose {record['kind']} (lowest cross-validated error)"
    rows = [
        ("method", method),
        ("data", f"{source} ({record['in_dim']}-D input)"),
        ("n_lo / n_hi", f"{record['n_lo']} / {record['n_hi']}"),
    ]
    if record.get("ensemble", 1) > 1:
        rows.append(("ensemble members", str(record["ensemble"])))
    rows += _score_rows(record)
    for kind, score in record.get("cv_scores", {}).items():
        mark = " (chosen)" if kind == record["kind"] else ""
        label = f"cross-validated error, {kind}{mark}"
        rows.append((label, fmt(score) if score is not None else "not scored"))
    rows.append(("fit time", f"{record['fit_seconds']:.3g} s"))
    caption = None
    if "cv_scores" in record:
        caption = (
            "Cross-validated error: RMS over held-out high-fidelity points (the same folds "
            "for every method) divided by their std; within 5 % of the lowest is a tie, "
            "won by the simpler method (cokriging, nargp, mfdnn). The MF-DNN takes part "
            "from 6 high-fidelity points."
        )
    return table("Multi-fidelity fit", ("", "value"), rows, caption=caption)


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
    method: str = typer.Option(
        "cokriging",
        help="cokriging | nargp | mfdnn | auto (the best of the three by cross-validated "
        "error on the high-fidelity points).",
    ),
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
        help="MF-DNN (mfdnn, auto): TOML file with a [training] table (MultiFidelityConfig "
        "settings).",
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

    with quiet_logs(quiet):
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


def _adapt_table(record: dict):
    n0 = record["n_initial"]
    rows = [
        ("method", f"adaptive co-kriging, criterion {record['criterion']}"),
        ("problem", f"{record['problem']} ({record['in_dim']}-D input)"),
        ("cost spent / budget", f"{record['spent']:g} / {record['budget']:g}"),
        ("cost per run (low, high)", ", ".join(f"{c:g}" for c in record["costs"])),
        ("n_lo / n_hi, initial", f"{n0[0]} / {n0[1]}"),
        ("n_lo / n_hi, final", f"{record['n_lo']} / {record['n_hi']}"),
        ("points added", str(record["iterations"])),
        *_score_rows(record),
        ("time", f"{record['fit_seconds']:.3g} s"),
    ]
    return table("Adaptive multi-fidelity design", ("", "value"), rows)


@mf_app.command("adapt")
def adapt_cmd(
    problem: str = typer.Option(..., help="Built-in two-level problem to sample."),
    out: Path = typer.Option(
        Path("runs/mf-adapt"),
        "-o",
        "--output",
        help="Run directory to create (model/, run.json, fit.png, test.h5).",
    ),
    budget: float = typer.Option(60.0, help="Total simulator cost, initial design included."),
    costs: str = typer.Option("1,10", help="Cost per run of each level, comma-separated."),
    n_lo: int = typer.Option(8, help="Initial low-fidelity points."),
    n_hi: int = typer.Option(3, help="Initial high-fidelity points (nested)."),
    criterion: str = typer.Option("variance", help="variance | ivr."),
    n_test: int = typer.Option(
        2000, min=1, help="High-fidelity test points written to test.h5 and scored."
    ),
    seed: int = typer.Option(0, help="Seed."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, no log."),
) -> None:
    """Adaptive co-kriging: grow the design by calling the problem's simulators.

    Prints a table (cost spent, design sizes, test scores) and writes a run directory
    like `mf fit`: OUTPUT/model, OUTPUT/run.json (the same numbers and every added
    point), OUTPUT/fit.png and OUTPUT/test.h5.
    """
    from rich.console import Console

    from pdesurrogates.runs import RUN_FILE, adapt_mf_run

    try:
        cost_list = [float(c) for c in costs.split(",")]
    except ValueError as exc:
        raise ValueError(f"--costs must be comma-separated numbers; got {costs!r}") from exc
    with quiet_logs(quiet):
        record = adapt_mf_run(
            out,
            problem,
            budget=budget,
            costs=cost_list,
            n_lo=n_lo,
            n_hi=n_hi,
            criterion=criterion,
            n_test=n_test,
            seed=seed,
            progress=not quiet,
        )
    console = Console()
    console.print(_adapt_table(record))
    console.print(f"wrote {out / RUN_FILE}, {out / record['figure']}", highlight=False)


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
        yield table(title, cols, rows)


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
    quiet: bool = QUIET,
) -> None:
    """Propagate an input distribution through the model and the truth; compare moments.

    Prints the mean, std, skewness and excess kurtosis (0 for a normal distribution) of
    the surrogate's and the truth's output with their Monte Carlo standard errors, and
    writes OUTPUT/study.json and OUTPUT/study.png.
    """
    from rich.console import Console

    from pdesurrogates.runs import run_mf_study

    done = run_mf_study(
        model, problem, out, dist=dist, n_samples=n_samples, seed=seed, progress=not quiet
    )
    if plot is not None:
        from pdesurrogates.io import atomic_write_bytes

        atomic_write_bytes(plot, done["written"]["figure"].read_bytes())
        done["written"]["copy"] = plot
    if as_json:
        typer.echo(done["written"]["json"].read_text())
        return
    console = Console()
    for t in _study_tables(done):
        console.print(t)
    console.print("wrote " + ", ".join(map(str, done["written"].values())), highlight=False)
