"""``pdesurrogates solve``, ``train dcdm``, ``train vcycle``, ``train neural-ic`` and ``train
neural-amg``: learned and classical solvers.

Parsing and printing only: the problems come from
:func:`pdesurrogates.solvers.gallery.named_problem` and the solve is
:func:`pdesurrogates.solvers.solve_with`; this module loads or constructs the model object
it passes in.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import typer

from pdesurrogates.cli._app import QUIET, app, train_app

__all__ = [
    "solve_command",
    "train_dcdm_command",
    "train_neural_amg_command",
    "train_neural_ic_command",
    "train_vcycle_command",
]

# literal copies of solvers.gallery.PROBLEM_NAMES / solvers.SOLVE_METHODS for the help
# text (importing solvers here would import scipy when the CLI starts; a test checks them)
_PROBLEMS = ("poisson2d", "poisson3d", "smoke2d", "smoke3d", "varcoef2d")
_METHODS = ("cg", "jacobi", "ic", "amg", "sa", "dcdm", "vcycle", "neural_ic", "neural_amg")
_MODEL_METHODS = ("dcdm", "vcycle", "neural_ic", "neural_amg")


def _residual_plot(residuals: np.ndarray, bnorm: float, title: str, path: Path) -> None:
    from pdesurrogates._figures import save_figure

    save_figure(_residual_figure(residuals, bnorm, title), path, dpi=110)


def _residual_figure(residuals: np.ndarray, bnorm: float, title: str):
    from pdesurrogates._figures import figure, finish, label_axes, style

    fig, axes = figure(size=(5.0, 3.5))
    ax = axes[0, 0]
    with style():
        ax.semilogy(np.arange(len(residuals)), np.asarray(residuals) / bnorm, marker=".")
    label_axes(ax, "iteration", r"relative residual $\|b - Ax_k\| / \|b\|$ (–)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    return finish(fig)


def _model_for(method: str, model: Path | None, dim: int):
    """The model object for ``method``: loaded from ``model``, or the default V-cycle."""
    if model is not None and method not in _MODEL_METHODS:
        raise ValueError(
            f"--model is not used by --method {method}; the methods that take a model are "
            f"{', '.join(_MODEL_METHODS)}"
        )
    if model is not None:
        import pdesurrogates

        return pdesurrogates.load(model)
    if method == "vcycle":
        from pdesurrogates.surrogates import LearnedVCycle

        typer.echo("note: no --model given; using the untrained (geometric) V-cycle")
        return LearnedVCycle(dim=dim)
    if method == "neural_amg":
        from pdesurrogates.surrogates import NeuralAMG

        typer.echo("note: no --model given; using the untrained NeuralAMG (smoothed aggregation)")
        return NeuralAMG()
    if method == "dcdm":
        raise ValueError(
            "--method dcdm needs --model (a saved direction network, e.g. from "
            "'pdesurrogates train dcdm')"
        )
    if method == "neural_ic":
        raise ValueError(
            "--method neural_ic needs --model (a saved NeuralIncompleteCholesky, e.g. from "
            "'pdesurrogates train neural-ic')"
        )
    return None


def read_matrix(path: Path):
    """A sparse matrix from ``.npz`` (``scipy.sparse.save_npz``) or ``.mtx`` (Matrix Market).

    Never unpickles; a missing, unreadable or non-square file is a ``DatasetError`` that
    names the file.
    """
    import scipy.io
    import scipy.sparse as sp

    from pdesurrogates.errors import DatasetError

    if not path.is_file():
        raise DatasetError(f"--matrix {path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".mtx"):
        raise DatasetError(
            f"--matrix {path}: unknown format {suffix!r}; give a .npz file written by "
            "scipy.sparse.save_npz or a Matrix Market .mtx file"
        )
    try:  # any failure of a malformed file is the file's fault, never a bug (no unpickling)
        A = sp.load_npz(path) if suffix == ".npz" else scipy.io.mmread(path)
    except Exception as exc:
        raise DatasetError(
            f"--matrix {path}: cannot read a sparse matrix ({type(exc).__name__}: {exc}); "
            "give a .npz file written by scipy.sparse.save_npz or a Matrix Market .mtx file"
        ) from exc
    if np.dtype(A.dtype).kind == "c":  # a float cast would drop the imaginary part
        raise DatasetError(
            f"--matrix {path}: the matrix is complex ({A.dtype}); the solvers take real "
            "symmetric positive definite matrices"
        )
    try:
        A = sp.csr_matrix(A, dtype=float)
    except (ValueError, TypeError) as exc:
        raise DatasetError(f"--matrix {path}: cannot read a sparse matrix ({exc})") from exc
    if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] == 0:
        raise DatasetError(f"--matrix {path}: the matrix is {A.shape[0]}x{A.shape[1]}, not square")
    return A


def _system(problem: str, n: int, matrix: Path | None, rhs: str, seed: int, obstacle: bool):
    """``(system, b, label)``: a gallery Problem or the matrix of ``--matrix``."""
    from pdesurrogates.solvers import gallery

    if matrix is None:
        prob = gallery.named_problem(problem, n, obstacle=obstacle, seed=seed)
        b = (gallery.random_rhs if rhs == "random" else gallery.smooth_rhs)(prob, seed=seed)
        return prob, b, f"{problem} n={n} ({prob.n} unknowns)"
    if rhs != "random":
        raise ValueError("--rhs smooth needs a grid; with --matrix use --rhs random")
    A = read_matrix(matrix)
    b = np.random.default_rng(seed).standard_normal(A.shape[0])
    return A, b, f"{matrix.name} ({A.shape[0]} unknowns)"


def _bad(option: str, message: str) -> typer.BadParameter:
    """A usage error (exit code 2) naming ``option``."""
    return typer.BadParameter(message, param_hint=f"'{option}'")


def _plot_formats() -> tuple[str, ...]:
    """The file suffixes matplotlib can write (without the dot)."""
    from matplotlib.backend_bases import FigureCanvasBase

    return tuple(sorted(FigureCanvasBase.get_supported_filetypes()))


def _check_solve_options(problem, method, rhs, threads, n, rtol, maxiter, plot) -> None:
    """Refuse a bad option value of ``solve`` before any work, as a usage error."""
    if problem not in _PROBLEMS:
        raise _bad(
            "--problem", f"unknown problem {problem!r}; choose one of {', '.join(_PROBLEMS)}"
        )
    if method not in _METHODS:
        raise _bad("--method", f"unknown method {method!r}; choose one of {', '.join(_METHODS)}")
    if rhs not in ("random", "smooth"):
        raise _bad("--rhs", f"must be 'random' or 'smooth'; got {rhs!r}")
    if threads < 1:
        raise _bad("--threads", f"must be >= 1; got {threads}")
    if n < 4:
        raise _bad("--n", f"must be >= 4; got {n}")
    from pdesurrogates.errors import SolverError
    from pdesurrogates.solvers._checks import check_maxiter, check_tolerances

    for option, check in (("--rtol", lambda: check_tolerances(rtol, 0.0)),
                          ("--maxiter", lambda: check_maxiter(maxiter, 1))):  # fmt: skip
        try:
            check()
        except SolverError as exc:
            raise _bad(option, str(exc)) from exc
    if plot is not None and plot.suffix:
        formats = _plot_formats()
        if plot.suffix[1:].lower() not in formats:
            raise _bad(
                "--plot",
                f"{plot}: matplotlib cannot write {plot.suffix!r} files; use one of "
                f"{', '.join('.' + f for f in formats)}",
            )


@app.command("solve")
def solve_command(
    problem: str = typer.Option("poisson2d", help=f"Test problem: {', '.join(_PROBLEMS)}."),
    n: int = typer.Option(128, "--n", help="Grid cells per side."),
    matrix: Path | None = typer.Option(
        None,
        help="Solve this sparse SPD matrix instead of a gallery problem: a .npz file "
        "(scipy.sparse.save_npz) or a Matrix Market .mtx file; right-hand side: random.",
    ),
    method: str = typer.Option("cg", help=f"Solver: {', '.join(_METHODS)}."),
    model: Path | None = typer.Option(
        None,
        help="Saved model (directory) for dcdm (from 'train dcdm'), vcycle (from 'train "
        "vcycle'; default: the untrained geometric V-cycle), neural_ic (from 'train "
        "neural-ic') or neural_amg (from 'train neural-amg'; default: the untrained one, "
        "plain smoothed aggregation).",
    ),
    rtol: float = typer.Option(
        1e-6,
        help="Relative tolerance on the true residual (0: iterate until --maxiter or until "
        "the residual stagnates at the floating-point floor).",
    ),
    rhs: str = typer.Option("random", help="Right-hand side: random or smooth."),
    seed: int = typer.Option(0, help="Seed of the right-hand side."),
    maxiter: int | None = typer.Option(None, help="Iteration cap (default: 10 n for CG)."),
    obstacle: bool = typer.Option(True, help="Put an obstacle in the smoke domains."),
    plot: Path | None = typer.Option(
        None, help="Residual plot file (default: solve_<problem>_<method>.png)."
    ),
    threads: int = typer.Option(1, help="Torch threads for the network (dcdm)."),
) -> None:
    """Solve a gallery system and print iterations, setup time and solve time.

    Saves a plot of the relative residual against the iteration number. With --matrix,
    the system is that file's matrix (e.g. an unstructured finite-element matrix: use
    --method neural_amg, sa, neural_ic, ic or amg; the grid methods dcdm and vcycle refuse
    a matrix that is not a stencil on a square or cube grid).

    Example: pdesurrogates solve --problem smoke2d --n 256 --method dcdm --model runs/dcdm2d

    Example: pdesurrogates solve --matrix A.npz --method neural_amg --model runs/namg
    """
    _check_solve_options(problem, method, rhs, threads, n, rtol, maxiter, plot)
    import torch

    from pdesurrogates.errors import SolverError
    from pdesurrogates.solvers import solve_with

    torch.set_num_threads(threads)
    prob, b, label = _system(problem, n, matrix, rhs, seed, obstacle)
    dim = getattr(prob, "dim", None) or len(getattr(prob, "grid_shape", None) or (0, 0))
    net = _model_for(method, model, dim)
    try:
        res = solve_with(prob, b, method, model=net, rtol=rtol, maxiter=maxiter)
    except ValueError as exc:  # SolverError is a ValueError: a bad --rtol, --maxiter, model
        raise SolverError(f"{exc} (--model {model})" if model is not None else str(exc)) from exc
    status = "converged" if res.converged else f"NOT converged ({res.status.value})"
    used = f" model={res.info['model_class']}" if net is not None else ""
    typer.echo(
        f"{label} method={method}{used}: {status}, "
        f"iterations={res.n_iter}, setup={res.info['setup_seconds']:.3f} s, "
        f"solve={res.info['solve_seconds']:.3f} s, "
        f"relative residual={res.relative_residual:.2e}"
    )
    fb = res.info.get("fallbacks", 0)
    if fb:
        typer.echo(f"note: {fb} iterations fell back to the residual direction")
    name = problem if matrix is None else matrix.stem
    path = plot or Path(f"solve_{name}_{method}.png")
    title = f"{problem} {n}: {method}" if matrix is None else f"{matrix.name}: {method}"
    _residual_plot(res.residuals, res.info["bnorm"], title, path)
    typer.echo(f"residual plot: {path}")
    if not res.converged:
        raise SolverError(f"{method} did not converge: {res.message}")


_SAMPLES, _LANCZOS = 800, 400  # training vectors generated by `train dcdm`
_MODEL_DIR = "Directory of the saved model (a directory holding a model is refused)."


def _save_run(net, out: Path, meta: dict) -> None:
    import pdesurrogates

    pdesurrogates.save(net, out, metadata=json.loads(json.dumps(meta)))


@train_app.command("dcdm")
def train_dcdm_command(
    dim: int = typer.Option(2, help="Spatial dimension (2 or 3)."),
    grid: int = typer.Option(128, help="Training grid cells per side (of the --boundary domain)."),
    output: Path = typer.Option(
        Path("runs/dcdm"),
        "-o",
        "--output",
        help="Run directory (new, or without a model): the model goes to OUTPUT/model, the "
        "training vectors to OUTPUT/ritz.h5.",
    ),
    samples: int = typer.Option(
        None,
        min=1,
        help=f"Ritz-vector training vectors to generate (default {_SAMPLES}); with --data, "
        "the count the file must have.",
    ),
    lanczos_steps: int = typer.Option(
        None,
        "--lanczos",
        min=1,
        help=f"Lanczos steps of the generated vectors (default {_LANCZOS}); with --data, "
        "the steps the file must record.",
    ),
    epochs: int = typer.Option(None, min=1, help="Training epochs (default: DCDMConfig)."),
    batch_size: int = typer.Option(None, min=1, help="Batch size (default: DCDMConfig)."),
    lr: float = typer.Option(
        None, min=0.0, help="Peak Adam learning rate, cosine schedule (default: DCDMConfig)."
    ),
    width: int = typer.Option(8, help="Channels of the nonlinear correction (0 = linear)."),
    boundary: str = typer.Option(
        "dirichlet",
        help="Training domain and network padding: 'dirichlet' (Dirichlet box) or 'smoke' "
        "(Neumann walls, open top).",
    ),
    seed: int = typer.Option(
        None, help="Seed of the data, the initialisation and the shuffling (default: DCDMConfig)."
    ),
    max_seconds: float | None = typer.Option(
        None, min=0.0, help="Stop training after this many seconds (default: no limit)."
    ),
    data: Path | None = typer.Option(
        None,
        help="Existing training-vector file (.h5) of the same grid and boundary; default: "
        "generate OUTPUT/ritz.h5.",
    ),
    quiet: bool = QUIET,
) -> None:
    """Train a DCDM direction network on Ritz vectors of a Poisson matrix.

    Generates the training vectors once (Lanczos Ritz vectors weighted to the low
    spectrum, stored in the run directory as OUTPUT/ritz.h5), trains with the DCDM loss
    ||r - A d (d^T r)/(d^T A d)||^2 and saves the model to OUTPUT/model (use it with
    'pdesurrogates solve --method dcdm --model OUTPUT'). An OUTPUT that already holds a
    model is refused. An OUTPUT/ritz.h5 left without a model is reused only if it was
    made with the same grid, boundary, samples, Lanczos steps and seed; else it is refused
    naming the difference.
    """
    if dim not in (2, 3):
        raise _bad("--dim", f"must be 2 or 3; got {dim}")
    if grid < 8:
        raise _bad("--grid", f"must be >= 8; got {grid}")
    if boundary not in ("dirichlet", "smoke"):
        raise _bad("--boundary", f"must be 'dirichlet' or 'smoke'; got {boundary!r}")
    from pdesurrogates.runs import new_run_dir
    from pdesurrogates.solvers import gallery
    from pdesurrogates.training import DCDMConfig, check_ritz_dataset, write_ritz_dataset

    given = dict(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, max_seconds=max_seconds)
    cfg = DCDMConfig.from_dict({k: v for k, v in given.items() if v is not None})
    seed = cfg.seed
    shape = (grid,) * dim
    prob = gallery.dirichlet_box(shape) if boundary == "dirichlet" else gallery.smoke_domain(shape)
    if data is not None:  # a file of the user's: the settings asked for must be its own
        remedy = "drop --samples/--lanczos (or give the file's), or omit --data to generate"
        check_ritz_dataset(data, prob, n_samples=samples, m=lanczos_steps, remedy=remedy)
    with new_run_dir(output, f"train dcdm -o {output}", inputs=[data]):
        t0 = time.perf_counter()
        if data is None:
            data, n, m = output / "ritz.h5", samples or _SAMPLES, lanczos_steps or _LANCZOS
            if data.exists():  # left by an earlier run of OUTPUT: reused only if it fits
                check_ritz_dataset(data, prob, n_samples=n, m=m, seed=seed)
                typer.echo(f"reusing the training vectors {data} (same settings)")
            else:
                typer.echo(f"generating {n} Ritz-vector training vectors on {shape} ...")
                write_ritz_dataset(data, prob, n, m=m, seed=seed)
        t_data = time.perf_counter() - t0
        _train_dcdm_model(output, data, t_data, prob, cfg, dim, width, boundary, quiet)


def _train_dcdm_model(output, data, t_data, prob, cfg, dim, width, boundary, quiet) -> None:
    import torch

    from pdesurrogates.surrogates import ConjugateDirectionNet
    from pdesurrogates.training import train_dcdm

    seed, shape = cfg.seed, tuple(prob.shape)
    with torch.random.fork_rng(devices=[]):  # seeded initialisation, global RNG untouched
        torch.manual_seed(seed)
        net = ConjugateDirectionNet(dim=dim, width=width, boundary=boundary)
    hist = train_dcdm(net, prob, str(data), progress=not quiet, **cfg.to_dict())  # grid: prob
    meta = {
        "config": cfg.to_dict(),
        "trained_on": {"problem": prob.name, "shape": list(shape)},
        "data": str(data),
        "data_seconds": t_data,
        "history": hist,
    }
    _save_run(net, output / "model", meta)
    last = hist[-1]
    typer.echo(
        f"trained {len(hist)} epochs in {last['seconds']:.1f} s: loss {last['loss']:.4g}, "
        f"valid {last['valid_loss']:.4g}; saved to {output / 'model'} (training vectors: "
        f"{data})"
    )


@train_app.command("vcycle")
def train_vcycle_command(
    dim: int = typer.Option(2, help="Spatial dimension (2 or 3)."),
    grid: int = typer.Option(32, help="Training grid cells per side (dense algebra: small)."),
    output: Path = typer.Option(Path("runs/vcycle"), "-o", "--output", help=_MODEL_DIR),
    steps: int = typer.Option(
        None, min=1, help="Adam steps, each on fresh error vectors (default: VCycleConfig)."
    ),
    batch_size: int = typer.Option(
        None, min=1, help="Random error vectors per step (default: VCycleConfig)."
    ),
    power: int = typer.Option(
        None, min=1, help="V-cycles per error vector in the loss (default: VCycleConfig)."
    ),
    lr: float = typer.Option(None, min=0.0, help="Adam learning rate (default: VCycleConfig)."),
    smoothing_steps: int = typer.Option(2, help="Jacobi steps before and after (>= 1)."),
    coarse_cells: int = typer.Option(64, help="Unknowns of the exactly solved coarsest level."),
    seed: int = typer.Option(None, help="Seed of the error vectors (default: VCycleConfig)."),
    quiet: bool = QUIET,
) -> None:
    """Train a learned multigrid V-cycle (SPD by construction) on the Dirichlet Laplacian.

    Minimises the estimated contraction factor of the V-cycle's error propagation and saves
    the model to OUTPUT (use it with 'pdesurrogates solve --method vcycle --model OUTPUT').
    """
    from pdesurrogates.runs import new_run_dir
    from pdesurrogates.solvers import gallery
    from pdesurrogates.surrogates import LearnedVCycle
    from pdesurrogates.training import VCycleConfig, train_vcycle

    given = dict(steps=steps, batch_size=batch_size, power=power, lr=lr, seed=seed)
    cfg = VCycleConfig.from_dict({k: v for k, v in given.items() if v is not None})
    if dim not in (2, 3):
        raise ValueError(f"--dim must be 2 or 3; got {dim}")
    if grid < 4:
        raise ValueError(f"--grid must be >= 4; got {grid}")
    shape = (grid,) * dim
    net = LearnedVCycle(dim=dim, smoothing_steps=smoothing_steps, coarse_cells=coarse_cells)
    with new_run_dir(output, f"train vcycle -o {output}", lock=output):
        t0 = time.perf_counter()
        settings = {k: v for k, v in cfg.to_dict().items() if k != "shape"}
        hist = train_vcycle(net, A=gallery.dirichlet_box(shape), progress=not quiet, **settings)
        seconds = time.perf_counter() - t0
        meta = {
            "trained_on": {"problem": "dirichlet_box", "shape": list(shape)},
            "config": {**settings, "shape": list(shape)},
            "seconds": seconds,
            "history": hist,
        }
        _save_run(net.float(), output, meta)
    typer.echo(
        f"trained {cfg.steps} steps in {seconds:.1f} s: contraction {hist[0]['rho']:.3f} -> "
        f"{hist[-1]['rho']:.3f}; saved to {output}"
    )


def _mesh_sizes(sizes: str) -> tuple[int, int]:
    """``--sizes 'lo,hi'`` of the FEM training meshes, checked."""
    try:
        lo, hi = (int(v) for v in sizes.split(","))
    except ValueError as exc:
        raise ValueError(f"--sizes must be two integers 'lo,hi'; got {sizes!r}") from exc
    if not 4 <= lo <= hi:
        raise ValueError(f"--sizes must satisfy 4 <= lo <= hi; got {sizes!r}")
    return lo, hi


# Options of the two graph preconditioners' trainers (random P1 FEM training matrices).
_SIZES = typer.Option(
    "10,22", help="Smallest,largest mesh cells per side of the training matrices."
)
_GRAPH_BATCH = typer.Option(4, "--batch-size", min=1, help="Matrices per step.")
_GRAPH_LR = typer.Option(3e-3, "--lr", min=0.0, help="Adam learning rate.")
_LATENT = typer.Option(16, "--latent", min=1, help="Width of the node and edge states.")
_ROUNDS = typer.Option(3, "--rounds", min=1, help="Message-passing rounds.")
_GRAPH_SEED = typer.Option(
    0, "--seed", help="Seed of the matrices, the initialisation and the probes."
)


def _train_graph(kind: str, output: Path, matrices: int, sizes: str, seed: int, fit) -> None:
    """The body both graph trainers share: matrices -> ``fit(mats)`` -> saved model."""
    lo, hi = _mesh_sizes(sizes)
    from pdesurrogates.runs import new_run_dir
    from pdesurrogates.training import fem_training_matrices

    with new_run_dir(output, f"train {kind.replace('_', '-')} -o {output}", lock=output):
        t0 = time.perf_counter()
        mats = fem_training_matrices(matrices, sizes=(lo, hi), seed=seed)
        net, hist, config = fit(mats)
        seconds = time.perf_counter() - t0
        config = dict(matrices=matrices, sizes=[lo, hi], seed=seed, **config)
        _save_run(net, output, {"config": config, "seconds": seconds, "history": hist})
    loss = hist["loss"] or hist.get("init_loss") or []
    last = f"{loss[-1]:.4g}" if loss else "n/a (0 steps)"
    typer.echo(f"trained {kind} in {seconds:.1f} s: final loss {last}; saved to {output}")


@train_app.command("neural-ic")
def train_neural_ic_command(
    output: Path = typer.Option(Path("runs/neural_ic"), "-o", "--output", help=_MODEL_DIR),
    matrices: int = typer.Option(48, min=1, help="Random P1 FEM training matrices."),
    sizes: str = _SIZES,
    steps: int = typer.Option(200, min=0, help="Adam steps on the unrolled-PCG loss."),
    init_steps: int = typer.Option(200, min=0, help="Adam steps fitting IC(0) first."),
    batch_size: int = _GRAPH_BATCH,
    lr: float = _GRAPH_LR,
    latent: int = _LATENT,
    rounds: int = _ROUNDS,
    seed: int = _GRAPH_SEED,
    quiet: bool = QUIET,
) -> None:
    """Train a learned incomplete Cholesky factorisation on random P1 FEM matrices.

    Fits the network to IC(0) (--init-steps), then minimises the energy-norm error left
    after a few unrolled PCG steps (--steps), on Poisson, lognormal, anisotropic and
    elasticity matrices of random unstructured meshes. Saves the model to OUTPUT (use it
    with 'pdesurrogates solve --matrix A.npz --method neural_ic --model OUTPUT').
    """

    def fit(mats):
        from pdesurrogates.surrogates import NeuralIncompleteCholesky
        from pdesurrogates.training import train_neural_ic

        net = NeuralIncompleteCholesky(latent=latent, rounds=rounds, seed=seed)
        hist = train_neural_ic(
            net,
            mats,
            steps=steps,
            init_steps=init_steps,
            lr=lr,
            batch=batch_size,
            seed=seed,
            progress=not quiet,
        )
        return net, hist, dict(steps=steps, init_steps=init_steps, batch_size=batch_size, lr=lr)

    _train_graph("neural_ic", output, matrices, sizes, seed, fit)


@train_app.command("neural-amg")
def train_neural_amg_command(
    output: Path = typer.Option(Path("runs/neural_amg"), "-o", "--output", help=_MODEL_DIR),
    matrices: int = typer.Option(32, min=1, help="Random P1 FEM training matrices."),
    sizes: str = _SIZES,
    steps: int = typer.Option(200, min=0, help="Adam steps on the cycle loss."),
    batch_size: int = _GRAPH_BATCH,
    lr: float = _GRAPH_LR,
    latent: int = _LATENT,
    rounds: int = _ROUNDS,
    seed: int = _GRAPH_SEED,
    quiet: bool = QUIET,
) -> None:
    """Train a learned smoothed-aggregation AMG (NeuralAMG) on random P1 FEM matrices.

    A graph network sets the finest level's prolongation-smoothing and SOR weights; it
    starts as plain smoothed aggregation and minimises the energy-norm error left by two
    cycles (three levels, plain SA below the finest) on Poisson, lognormal, anisotropic
    and elasticity matrices of random unstructured meshes. Saves the model to OUTPUT (use
    it with 'pdesurrogates solve --matrix A.npz --method neural_amg --model OUTPUT').
    """

    def fit(mats):
        from pdesurrogates.surrogates import NeuralAMG
        from pdesurrogates.training import train_neural_amg

        net = NeuralAMG(latent=latent, rounds=rounds, seed=seed)
        hist = train_neural_amg(
            net, mats, steps=steps, lr=lr, batch=batch_size, seed=seed, progress=not quiet
        )
        return net, hist, dict(steps=steps, batch_size=batch_size, lr=lr)

    _train_graph("neural_amg", output, matrices, sizes, seed, fit)
