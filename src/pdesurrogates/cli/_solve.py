"""``pdesurrogates solve`` and ``pdesurrogates train dcdm``: learned and classical solvers."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import typer

from pdesurrogates.cli._app import app, train_app

__all__ = ["build_problem", "solve_command", "train_dcdm_command"]

_PROBLEMS = ("poisson2d", "poisson3d", "smoke2d", "smoke3d", "varcoef2d")
_METHODS = ("cg", "jacobi", "ic", "amg", "dcdm", "vcycle")


def build_problem(name: str, n: int, *, obstacle: bool = True, seed: int = 0):
    """A gallery :class:`~pdesurrogates.solvers.gallery.Problem` by CLI name."""
    from pdesurrogates.solvers import gallery

    if n < 4:
        raise ValueError(f"--n must be >= 4; got {n}")
    if name == "poisson2d":
        return gallery.dirichlet_box((n, n))
    if name == "poisson3d":
        return gallery.dirichlet_box((n, n, n))
    if name == "smoke2d":
        obs = [((0.5, 0.35), 0.12)] if obstacle else []
        return gallery.smoke_domain((n, n), obstacles=obs)
    if name == "smoke3d":
        obs = [((0.5, 0.5, 0.35), 0.15)] if obstacle else []
        return gallery.smoke_domain((n, n, n), obstacles=obs)
    if name == "varcoef2d":
        rng = np.random.default_rng(seed)
        from scipy.ndimage import gaussian_filter

        k = np.exp(2.0 * gaussian_filter(rng.standard_normal((n, n)), 2.0, mode="wrap") * 3)
        return gallery.variable_coefficient(k)
    raise ValueError(f"unknown --problem {name!r}; choose one of {', '.join(_PROBLEMS)}")


def _residual_plot(residuals: np.ndarray, bnorm: float, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.semilogy(np.arange(len(residuals)), np.asarray(residuals) / bnorm, marker=".")
    ax.set_xlabel("iteration")
    ax.set_ylabel(r"$\|b - Ax_k\| / \|b\|$")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def run_method(problem, b, method: str, *, model=None, rtol: float = 1e-6, maxiter=None):
    """Set up and run one solver; returns ``(SolveResult, setup_seconds, solve_seconds)``."""
    from pdesurrogates import solvers

    A = problem.A
    t0 = time.perf_counter()
    if method == "cg":
        M = None
    elif method == "jacobi":
        M = solvers.jacobi(A)
    elif method == "ic":
        M = solvers.IncompleteCholesky(A).aslinearoperator()
    elif method == "amg":
        M = solvers.amg(A)
    elif method in ("dcdm", "vcycle"):
        if model is None:
            raise ValueError(f"--method {method} needs --model (a saved model directory)")
        pre = solvers.LearnedPreconditioner(model, problem)
    else:
        raise ValueError(f"unknown --method {method!r}; choose one of {', '.join(_METHODS)}")
    setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    if method in ("dcdm", "vcycle"):
        res = pre.solve(b, rtol=rtol, maxiter=maxiter)
    else:
        res = solvers.cg(A, b, rtol=rtol, M=M, maxiter=maxiter, check_symmetric=False)
    return res, setup, time.perf_counter() - t1


@app.command("solve")
def solve_command(
    problem: str = typer.Option("poisson2d", help=f"Test problem: {', '.join(_PROBLEMS)}."),
    n: int = typer.Option(128, "--n", help="Grid cells per side."),
    method: str = typer.Option("cg", help=f"Solver: {', '.join(_METHODS)}."),
    model: Path | None = typer.Option(
        None, help="Saved model directory (from 'pdesurrogates train dcdm') for dcdm/vcycle."
    ),
    rtol: float = typer.Option(1e-6, help="Relative tolerance on the true residual."),
    rhs: str = typer.Option("random", help="Right-hand side: random or smooth."),
    seed: int = typer.Option(0, help="Seed of the right-hand side."),
    maxiter: int | None = typer.Option(None, help="Iteration cap."),
    obstacle: bool = typer.Option(True, help="Put an obstacle in the smoke domains."),
    plot: Path | None = typer.Option(
        None, help="Residual plot file (default: solve_<problem>_<method>.png)."
    ),
    threads: int = typer.Option(1, help="Torch threads for the network (dcdm)."),
) -> None:
    """Solve a gallery system and print iterations, setup time and solve time.

    Saves a plot of the relative residual against the iteration number.

    Example: pdesurrogates solve --problem smoke2d --n 256 --method dcdm --model runs/dcdm2d
    """
    if problem not in _PROBLEMS:
        raise ValueError(f"unknown --problem {problem!r}; choose one of {', '.join(_PROBLEMS)}")
    if method not in _METHODS:
        raise ValueError(f"unknown --method {method!r}; choose one of {', '.join(_METHODS)}")
    if rhs not in ("random", "smooth"):
        raise ValueError(f"--rhs must be 'random' or 'smooth'; got {rhs!r}")
    import torch

    from pdesurrogates.solvers import gallery

    if threads < 1:
        raise ValueError(f"--threads must be >= 1; got {threads}")
    torch.set_num_threads(threads)
    prob = build_problem(problem, n, obstacle=obstacle, seed=seed)
    b = (
        gallery.random_rhs(prob, seed=seed)
        if rhs == "random"
        else gallery.smooth_rhs(prob, seed=seed)
    )
    net = None
    if model is not None:
        import pdesurrogates

        net = pdesurrogates.load(model)
        mdim = getattr(net, "dim", None)
        if mdim is not None and mdim != prob.dim:
            raise ValueError(
                f"the model in {model} is {mdim}D but --problem {problem} is {prob.dim}D; "
                f"train a {prob.dim}D model (pdesurrogates train dcdm --dim {prob.dim})"
            )
    elif method == "vcycle":
        from pdesurrogates.surrogates import LearnedVCycle

        net = LearnedVCycle(dim=prob.dim)
        typer.echo("note: no --model given; using the untrained (geometric) V-cycle")
    res, setup, solve = run_method(prob, b, method, model=net, rtol=rtol, maxiter=maxiter)
    status = "converged" if res.converged else "NOT converged"
    typer.echo(
        f"{problem} n={n} ({prob.n} unknowns) method={method}: {status}, "
        f"iterations={res.n_iter}, setup={setup:.3f} s, solve={solve:.3f} s, "
        f"relative residual={res.relative_residual:.2e}"
    )
    fb = res.info.get("fallbacks", 0)
    if fb:
        typer.echo(f"note: {fb} iterations fell back to the residual direction")
    path = plot or Path(f"solve_{problem}_{method}.png")
    fig = _residual_plot(res.residuals, res.info["bnorm"], f"{problem} {n}: {method}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    typer.echo(f"residual plot: {path}")
    if not res.converged:
        from pdesurrogates.errors import SolverError

        raise SolverError(f"{method} did not converge: {res.message}")


@train_app.command("dcdm")
def train_dcdm_command(
    dim: int = typer.Option(2, help="Spatial dimension (2 or 3)."),
    grid: int = typer.Option(128, help="Training grid cells per side (Dirichlet box)."),
    out: Path = typer.Option(Path("runs/dcdm"), help="Output directory of the saved model."),
    samples: int = typer.Option(800, help="Number of Ritz-vector training vectors."),
    lanczos_steps: int = typer.Option(400, "--lanczos", help="Lanczos steps (Ritz vectors)."),
    epochs: int = typer.Option(4, help="Training epochs."),
    batch_size: int = typer.Option(16, help="Batch size."),
    lr: float = typer.Option(1e-3, help="Adam learning rate (cosine schedule)."),
    width: int = typer.Option(8, help="Channels of the nonlinear correction (0 = linear)."),
    boundary: str = typer.Option(
        "dirichlet",
        help="Training domain and network padding: 'dirichlet' (Dirichlet box) or 'smoke' "
        "(Neumann walls, open top).",
    ),
    seed: int = typer.Option(0, help="Seed of the data and the initialisation."),
    max_minutes: float | None = typer.Option(None, help="Stop training after this long."),
    data: Path | None = typer.Option(
        None, help="Existing training-vector file (.h5); default: generate OUT-ritz.h5."
    ),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Train a DCDM direction network on Ritz vectors of a Poisson matrix.

    Generates the training vectors once (Lanczos Ritz vectors weighted to the low
    spectrum, stored next to OUT as OUT-ritz.h5), trains with the DCDM loss
    ||r - A d (d^T r)/(d^T A d)||^2 and saves the model to OUT (use it with
    'pdesurrogates solve --method dcdm --model OUT').
    """
    import torch

    import pdesurrogates
    from pdesurrogates.solvers import gallery
    from pdesurrogates.surrogates import ConjugateDirectionNet
    from pdesurrogates.training import train_dcdm, write_ritz_dataset

    if dim not in (2, 3):
        raise ValueError(f"--dim must be 2 or 3; got {dim}")
    if grid < 8:
        raise ValueError(f"--grid must be >= 8; got {grid}")
    if boundary not in ("dirichlet", "smoke"):
        raise ValueError(f"--boundary must be 'dirichlet' or 'smoke'; got {boundary!r}")
    shape = (grid,) * dim
    prob = gallery.dirichlet_box(shape) if boundary == "dirichlet" else gallery.smoke_domain(shape)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if data is None:
        data = out.parent / f"{out.name}-ritz.h5"
        if not data.exists():
            typer.echo(f"generating {samples} Ritz-vector training vectors on {shape} ...")
            write_ritz_dataset(data, prob, samples, m=lanczos_steps, seed=seed)
    t_data = time.perf_counter() - t0
    torch.manual_seed(seed)
    net = ConjugateDirectionNet(dim=dim, width=width, boundary=boundary)
    hist = train_dcdm(
        net,
        prob.A,
        str(data),
        shape=shape,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        progress=progress,
        max_seconds=None if max_minutes is None else 60 * max_minutes,
    )
    meta = {
        "trained_on": {"problem": prob.name, "shape": list(shape)},
        "data": str(data),
        "data_seconds": t_data,
        "history": hist,
    }
    pdesurrogates.save(net, out, metadata=json.loads(json.dumps(meta)))
    last = hist[-1]
    typer.echo(
        f"trained {len(hist)} epochs in {last['seconds']:.1f} s: loss {last['loss']:.4g}, "
        f"valid {last['valid_loss']:.4g}; saved to {out}"
    )
