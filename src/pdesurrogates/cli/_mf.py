"""Multi-fidelity commands: ``mf fit``, ``mf adapt``, ``mf study``.

Data come either from a built-in benchmark problem (``--problem forrester`` with
``--n-lo/--n-hi``) or from an ``.npz`` file with arrays ``x_lo, y_lo, x_hi, y_hi`` (and
optionally ``bounds`` of shape (d, 2)). Models are saved with :func:`pdesurrogates.save`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer

from pdesurrogates.cli._app import mf_app

__all__ = ["load_mf_data"]


def load_mf_data(problem: str | None, data: Path | None, n_lo: int, n_hi: int, seed: int):
    """``(problem_or_None, [x_lo, x_hi], [y_lo, y_hi], bounds)`` from a problem or an npz."""
    from pdesurrogates.solvers.reference import get_mf_problem

    if (problem is None) == (data is None):
        raise ValueError("give exactly one of --problem NAME or --data FILE.npz")
    if problem is not None:
        p = get_mf_problem(problem)
        if p.n_levels != 2:
            raise ValueError(f"problem {problem!r} has {p.n_levels} levels; the CLI handles 2")
        if n_hi > n_lo or n_hi < 3:
            raise ValueError(f"--n-hi must be in [3, --n-lo]; got {n_hi} (n-lo {n_lo})")
        x_lo, x_hi = p.nested_design([n_lo, n_hi], seed=seed)
        return p, [x_lo, x_hi], [p.low(x_lo), p.high(x_hi)], p.bounds
    path = Path(data)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; give an .npz with x_lo, y_lo, x_hi, y_hi")
    with np.load(path, allow_pickle=False) as f:
        missing = [k for k in ("x_lo", "y_lo", "x_hi", "y_hi") if k not in f]
        if missing:
            raise ValueError(f"{path}: missing arrays {missing}; expected x_lo, y_lo, x_hi, y_hi")
        arrs = {k: np.asarray(f[k], dtype=np.float64) for k in f.files}
    x_lo = arrs["x_lo"].reshape(len(arrs["x_lo"]), -1)
    x_hi = arrs["x_hi"].reshape(len(arrs["x_hi"]), -1)
    bounds = arrs.get("bounds")
    return None, [x_lo, x_hi], [arrs["y_lo"].reshape(-1), arrs["y_hi"].reshape(-1)], bounds


@mf_app.command("fit")
def fit_cmd(
    out: Path = typer.Option(..., "-o", "--output", help="Directory to save the model in."),
    problem: str = typer.Option(None, help="Built-in problem (forrester, nonlinear_sin, ...)."),
    data: Path = typer.Option(None, help=".npz with x_lo, y_lo, x_hi, y_hi (and bounds)."),
    method: str = typer.Option("cokriging", help="cokriging | nargp | mfdnn."),
    n_lo: int = typer.Option(21, help="Low-fidelity points (with --problem)."),
    n_hi: int = typer.Option(6, help="High-fidelity points (with --problem; nested)."),
    members: int | None = typer.Option(
        None,
        help="MF-DNN members trained (half are kept); default MultiFidelityConfig.n_members.",
    ),
    seed: int = typer.Option(0, help="Seed of the design and of the fit."),
) -> None:
    """Fit a multi-fidelity surrogate and save it; reports the test error for --problem."""
    from pdesurrogates import save
    from pdesurrogates.surrogates import CoKrigingGP
    from pdesurrogates.training import MultiFidelityConfig, fit_multifidelity_net

    p, xs, ys, bounds = load_mf_data(problem, data, n_lo, n_hi, seed)
    d = xs[0].shape[1]
    if method in ("cokriging", "nargp"):
        model = CoKrigingGP(in_dim=d, kind="ar1" if method == "cokriging" else "nargp", seed=seed)
        model.fit(xs[0], ys[0], xs[1], ys[1], bounds=bounds, progress=True)

        def predict(x):
            return model.predict(x).mean
    elif method == "mfdnn":
        # the default lives in the config (read here: the CLI imports torch lazily)
        n_members = MultiFidelityConfig.n_members if members is None else members
        fit = fit_multifidelity_net(xs, ys, bounds=bounds, n_members=n_members, seed=seed)
        model = fit.model

        def predict(x):
            return fit.predict(x).mean
    else:
        raise ValueError(f"--method must be cokriging, nargp or mfdnn; got {method!r}")
    meta = {"method": method, "problem": problem, "n_lo": len(ys[0]), "n_hi": len(ys[1])}
    if p is not None:
        xt = p.sample(2000, seed=seed + 1000, method="uniform")
        yt = p.high(xt)
        meta["test_rel_l2"] = float(np.linalg.norm(predict(xt) - yt) / np.linalg.norm(yt))
    save(model, out, metadata=meta)
    typer.echo(json.dumps(meta))


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
    model: Path = typer.Option(..., help="Saved multi-fidelity model (from `mf fit`)."),
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
