"""Multi-fidelity commands: ``mf fit``, ``mf adapt``, ``mf study``.

Data come either from a built-in benchmark problem (``--problem forrester`` with
``--n-lo/--n-hi``) or from an ``.npz`` file with arrays ``x_lo, y_lo, x_hi, y_hi`` (and
optionally ``bounds`` of shape (d, 2)). ``mf fit`` writes a run directory
(:func:`pdesurrogates.runs.fit_mf_run`); ``mf study`` and ``uq propagate`` take the run
directory or the model directory inside it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer

from pdesurrogates.cli._app import mf_app

__all__ = ["adapt_cmd", "fit_cmd", "study_cmd"]


@mf_app.command("fit")
def fit_cmd(
    out: Path = typer.Option(
        ..., "-o", "--output", help="Run directory to create (model/, run.json, test.h5)."
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
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Fit a multi-fidelity surrogate into a run directory.

    Writes OUTPUT/model (pdesurrogates.load), OUTPUT/run.json and, with --problem,
    OUTPUT/test.h5 (high-fidelity test points: inputs as parameters x0.., output as
    field y) and the test error on them. Score the run with
    `pdesurrogates evaluate OUTPUT --data OUTPUT/test.h5 -o REPORT`.
    """
    from pdesurrogates.runs import fit_mf_run

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
    keys = ("method", "problem", "n_lo", "n_hi", "ensemble", "test_rel_l2")
    typer.echo(json.dumps({k: record[k] for k in keys if k in record}))


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
    out: Path = typer.Option(None, "-o", "--output", help="Write the summary JSON here."),
    plot: Path = typer.Option(None, help="Write the density plot (PNG) here."),
    seed: int = typer.Option(0, help="Seed of the input samples."),
) -> None:
    """Propagate an input distribution through the model and the truth; compare moments."""
    import torch

    from pdesurrogates import load
    from pdesurrogates.io import atomic_write_text
    from pdesurrogates.solvers.reference import get_mf_problem
    from pdesurrogates.surrogates import mf_uq_study, plot_uq_study

    p = get_mf_problem(problem)
    m = load(model)
    if dist == "uniform":
        spec = {"dist": "uniform"}
        inputs = {
            f"x{i}": {**spec, "low": float(lo), "high": float(hi)}
            for i, (lo, hi) in enumerate(p.bounds)
        }
    elif dist == "normal":
        inputs = {
            f"x{i}": {"dist": "normal", "mean": float((lo + hi) / 2), "std": float((hi - lo) / 6)}
            for i, (lo, hi) in enumerate(p.bounds)
        }
    else:
        raise ValueError(f"--dist must be uniform or normal; got {dist!r}")

    def surrogate(x):
        with torch.no_grad():
            return m(torch.as_tensor(np.asarray(x), dtype=torch.float64)).double().numpy()

    def truth(x):
        return p.levels[-1](np.asarray(x, dtype=np.float64))

    study = mf_uq_study(surrogate, truth, {dist: inputs}, n_samples=n_samples, seed=seed)
    text = json.dumps(study.to_dict(), indent=2)
    if out is not None:
        atomic_write_text(out, text)
    if plot is not None:
        plot_uq_study(study).savefig(plot, dpi=120)
    typer.echo(text)
