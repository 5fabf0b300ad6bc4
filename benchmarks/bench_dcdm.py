"""DCDM and learned preconditioners against CG, Jacobi-PCG, IC(0)-PCG and pyamg SA-PCG.

One process, every solver side by side on the same systems:

* 2D Dirichlet box and 2D smoke domain (Neumann walls, Dirichlet open top, one disc
  obstacle) at 64², 128², 256², 512²; 3D Dirichlet box at 32³, 64³ (``--sizes3d``).
* rtol 1e-4 and 1e-6 on the true residual ``||b - A x|| <= rtol ||b||``, with a random
  (white-noise) and a smooth (20 low cosine modes) right-hand side.
* Solvers: plain CG (scipy), Jacobi-PCG (scipy cg), IC(0)-PCG (scipy cg with our own
  IC(0) factor, ``pdesurrogates.solvers.IncompleteCholesky``: no fill, natural order,
  SuperLU triangular solves), pyamg smoothed-aggregation PCG (scipy cg with one SA
  V-cycle per application), DCDM (``pdesurrogates.solvers.dcdm``: truncated flexible CG
  with ``ConjugateDirectionNet``, trained ONCE: in 2D one training run on the Ritz vectors
  of the Dirichlet box at 64², 128² and 256² together (``width=0``), in 3D at 16³),
  and the learned SPD V-cycle (``LearnedVCycle``, trained once) as ``M=`` in scipy cg.
* Generalisation: the Dirichlet-trained DCDM network on the smoke domain and on a
  variable-coefficient problem (log-normal coefficient exp(1.7 g), g a smoothed unit
  Gaussian field: max/min about 1.5e4 at 64²).
* Sequence: 10 smoke systems whose obstacle moves (the matrix changes each step);
  SA-PCG redoes its setup every step, DCDM reuses the network.

Reported per run: iterations, setup and solve wall time. Peak memory is measured apart,
one fresh process per (problem, solver) at the largest sizes (``--only memory`` re-measures
just that and merges it into the stored results): ``mem_mib`` is the peak RSS of setup +
solve above the RSS after imports and building the problem (``_common.fresh_process_peak``).
DCDM and the V-cycle run there at their initialisation (same architecture, width and
per-iteration cost as the trained ones).
The scipy solvers stop on their recursive residual; the true relative residual is
recomputed and stored. All timings single-threaded (``torch.set_num_threads(1)``) on a
shared 2-core machine: iteration counts are exact, times are indicative.

Run: ``python benchmarks/bench_dcdm.py`` (``--quick`` for a short sanity run;
``--only growth-sequence`` retrains the 2D networks and re-measures only their rows and
the sequence, merged into the stored results; ``--only memory`` re-measures peak memory;
``--only coeff`` trains the coefficient-aware network on a mix of families and measures it
against SA-PCG with its untrained ablation, merged the same way: see ``_dcdm_coeff.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import pyamg
import scipy.sparse.linalg as sla
import torch

from pdesurrogates.solvers import (
    IncompleteCholesky,
    LearnedPreconditioner,
    dcdm,
    gallery,
    jacobi,
)
from pdesurrogates.surrogates import ConjugateDirectionNet, LearnedVCycle
from pdesurrogates.surrogates._dcdm_coeff import SMOOTHERS
from pdesurrogates.training import ritz_training_vectors, train_dcdm, train_vcycle

from _common import RESULTS, fresh_process_peak, markdown_table, write_results

SEQ_SOLVERS = ("sa_amg", "dcdm_smoke", "dcdm_smoke_init", "dcdm", "ic0", "learned_vcycle")


def scipy_pcg(A, b, rtol, setup_fn, maxiter, clock=time.perf_counter):
    t0 = clock()
    M = setup_fn(A) if setup_fn is not None else None
    t1 = clock()
    count = [0]

    def cb(_):
        count[0] += 1

    x, info = sla.cg(A, b, rtol=rtol, M=M, maxiter=maxiter, callback=cb)
    t2 = clock()
    relres = float(np.linalg.norm(b - A @ x) / np.linalg.norm(b))
    return {
        "iterations": count[0],
        "setup_s": t1 - t0,
        "solve_s": t2 - t1,
        "converged": info == 0,
        "true_relres": relres,
    }


def sa_setup(A):
    return pyamg.smoothed_aggregation_solver(A).aspreconditioner(cycle="V")


def ic_setup(A):
    return IncompleteCholesky(A).aspreconditioner()


def run_dcdm(problem, b, rtol, net, maxiter):
    t0 = time.perf_counter()
    res = dcdm(problem, b, net, rtol=rtol, maxiter=maxiter)
    t = time.perf_counter() - t0
    return {
        "iterations": res.n_iter,
        "setup_s": 0.0,
        "solve_s": t,
        "converged": res.converged,
        "true_relres": res.relative_residual,
        "fallbacks": res.info["fallbacks"],
    }


def run_vcycle(problem, b, rtol, model, maxiter):
    def setup(A):
        return LearnedPreconditioner(model, problem).aspreconditioner()

    return scipy_pcg(problem.A, b, rtol, setup, maxiter)


def measure(fn):
    return fn()  # peak memory: measured apart, in fresh processes (memory_rows)


MEMORY_CASES = (("dirichlet", 512, 2), ("smoke", 512, 2), ("dirichlet", 64, 3))
MEMORY_SOLVERS = ("cg", "ic0", "sa_amg", "dcdm", "learned_vcycle")


def memory_worker(kind, n, dim, solver, width) -> None:
    """One solve (random b, rtol 1e-6) in this fresh process; prints its peak RSS."""
    torch.set_num_threads(1)
    n, dim, width = int(n), int(dim), int(width)
    p = make_problem(kind, n, dim)
    b = gallery.random_rhs(p, seed=1)
    setups = {"cg": None, "ic0": ic_setup, "sa_amg": sa_setup}
    if solver == "dcdm":
        net = ConjugateDirectionNet(
            dim=dim, width=width, boundary="smoke" if kind == "smoke" else "dirichlet"
        )
        base = fresh_process_peak(None, None)
        out = run_dcdm(p, b, 1e-6, net, 1000)
    elif solver == "learned_vcycle":
        vc = LearnedVCycle(dim=dim).float()
        base = fresh_process_peak(None, None)
        out = run_vcycle(p, b, 1e-6, vc, 20000)
    else:
        base = fresh_process_peak(None, None)
        out = scipy_pcg(p.A, b, 1e-6, setups[solver], 20000)
    fresh_process_peak(None, None, report={"baseline_mib": base, "iters": out["iterations"]})


def memory_rows(args, log) -> list[dict]:
    rows = []
    cases = MEMORY_CASES if not args.quick else (("dirichlet", 32, 2), ("smoke", 32, 2))
    if args.memory_cases:
        cases = [
            (k, int(n), int(d)) for k, n, d in (c.split(":") for c in args.memory_cases.split(","))
        ]
    for kind, n, dim in cases:
        for solver in MEMORY_SOLVERS:
            width = args.width if dim == 2 else args.width3d
            rep = fresh_process_peak(__file__, ["--memory-worker", kind, n, dim, solver, width])
            rows.append(
                {
                    "problem": kind,
                    "dim": dim,
                    "n": n,
                    "solver": solver,
                    "iterations": rep["iters"],
                    "mem_mib": rep["delta_mib"],
                    "rss_mib": rep["peak_mib"],
                }
            )
            log(f"memory {kind}{dim}d n={n} {solver}: {rep['delta_mib']:.1f} MiB")
    return rows


MEMORY_NOTE = (
    "\n## Peak memory (fresh process per solver, random b, rtol 1e-6)\n\n"
    "mem_mib: peak RSS of setup + solve above the RSS after imports and building the "
    "problem (kernel high-water mark reset there); rss_mib: the absolute peak. DCDM and "
    "the V-cycle at their initialisation (same architecture and cost as the trained ones; "
    "DCDM on smoke with the smoke-padded network). Earlier 'peak_mb' figures (an in-process "
    "RSS delta, mostly 0.004 MiB) were an artefact and are dropped.\n\n"
)


def apply_memory(data, mem) -> None:
    """Put the fresh-process figures into the summary; drop in-process ``peak_mb``."""
    by = {(r["problem"], r["dim"], r["n"], r["solver"]): r["mem_mib"] for r in mem}
    for r in data["runs"]:
        r.pop("peak_mb", None)
    for r in data["summary"]:
        kind, dim = r["problem"].split()[0], int(r["problem"].split()[1][0])
        for col, solver in (("mem DCDM MiB", "dcdm"), ("mem SA MiB", "sa_amg")):
            measured = r["rhs"] == "random" and r["rtol"] == 1e-6
            r[col] = by.get((kind, dim, r["n"], solver)) if measured else None
    data["memory"] = mem


def memory_only(args, log) -> None:
    """Re-measure peak memory and merge it into the stored dcdm.json / dcdm.md."""
    path = RESULTS / "dcdm.json"
    data = json.loads(path.read_text())
    md = (RESULTS / "dcdm.md").read_text()
    body = md.partition("\n\n")[2]  # after "# Benchmark: dcdm": the command line, then md
    body = body.split("\n\n", 1)[1] if body.startswith("Command:") else body
    old_table = markdown_table(data["summary"])
    mem = memory_rows(args, log)
    apply_memory(data, mem)
    cmd = " ".join(["python", "bench_dcdm.py", *sys.argv[1:]])
    data["memory_command"] = cmd
    if old_table in body:
        body = body.replace(old_table, markdown_table(data["summary"]))
    body = body.split(MEMORY_NOTE.split("(")[0])[0].rstrip("\n") + "\n"
    body += MEMORY_NOTE + f"Command: `{cmd}`\n\n" + markdown_table(mem)
    previous = data.pop("command", None)
    data.pop("benchmark", None)
    data.pop("environment", None)
    write_results("dcdm", data, body, command=previous)


def make_problem(kind, n, dim):
    shape = (n,) * dim
    if kind == "dirichlet":
        return gallery.dirichlet_box(shape)
    if kind == "smoke":
        c = (0.5, 0.35) if dim == 2 else (0.5, 0.5, 0.35)
        return gallery.smoke_domain(shape, obstacles=[(c, 0.12)])
    if kind == "varcoef":
        from scipy.ndimage import gaussian_filter

        rng = np.random.default_rng(0)
        g = gaussian_filter(rng.standard_normal(shape), 3.0, mode="wrap")
        g = g / g.std()
        return gallery.variable_coefficient(np.exp(1.7 * g))  # max/min ~ 1.5e4 at 64²
    raise ValueError(kind)


def _ints(text):
    return [int(v) for v in str(text).split(",")]


def train_models(args, log, *, only_2d=False):
    """Train the DCDM networks once; 2D ones on the multi-size Ritz set (one run)."""
    info = {}
    nets = {}
    jobs = [
        ("dcdm2d", 2, _ints(args.train_grids), _ints(args.samples), args.epochs, args.width),
        ("dcdm2d_smoke", 2, _ints(args.train_grids), _ints(args.samples), args.epochs, args.width),
    ]
    if not only_2d:
        jobs.append(
            ("dcdm3d", 3, [args.train_grid3d], [args.samples3d], args.epochs3d, args.width3d)
        )
    for key, dim, grids, samples, epochs, width in jobs:
        if len(samples) != len(grids):
            raise SystemExit(f"--samples needs one count per training grid {grids}")
        m = args.lanczos if dim == 2 else args.lanczos3d
        smoke = key.endswith("smoke")
        shapes, mats, data = [], [], []
        t0 = time.perf_counter()
        for grid, ns in zip(grids, samples, strict=True):
            shape = (grid,) * dim
            p = gallery.smoke_domain(shape) if smoke else gallery.dirichlet_box(shape)
            shapes.append(shape)
            mats.append(p.A)
            data.append(ritz_training_vectors(p.A, ns, m=m, seed=0))
        t_data = time.perf_counter() - t0
        torch.manual_seed(0)
        net = ConjugateDirectionNet(
            dim=dim, width=width, boundary="smoke" if smoke else "dirichlet"
        )
        t0 = time.perf_counter()
        hist = train_dcdm(
            net,
            mats if len(shapes) > 1 else mats[0],
            data if len(shapes) > 1 else data[0],
            shape=shapes if len(shapes) > 1 else shapes[0],
            epochs=epochs,
            batch_size=16,
            lr=1e-3,
            progress=False,
        )
        t_train = time.perf_counter() - t0
        nets[key] = net
        info[key] = {
            "train_problem": "empty smoke box" if smoke else "Dirichlet box",
            "train_shape": [list(s) for s in shapes] if len(shapes) > 1 else list(shapes[0]),
            "samples": samples if len(samples) > 1 else samples[0],
            "lanczos_steps": m,
            "epochs": epochs,
            "width": width,
            "data_s": t_data,
            "train_s": t_train,
            "loss_first_epoch": hist[0]["loss"],
            "loss_last_epoch": hist[-1]["loss"],
            "parameters": sum(p.numel() for p in net.parameters()),
        }
        log(f"trained {key} on {shapes}: data {t_data:.0f}s, train {t_train:.0f}s")
        if smoke or only_2d:
            continue
        vc = LearnedVCycle(dim=dim)
        vshape = (32, 32) if dim == 2 else (12, 12, 12)
        t0 = time.perf_counter()
        vh = train_vcycle(vc, vshape, steps=args.vcycle_steps, progress=False)
        info[f"vcycle{dim}d"] = {
            "train_shape": list(vshape),
            "steps": args.vcycle_steps,
            "train_s": time.perf_counter() - t0,
            "rho_first": vh[0]["rho"],
            "rho_last": vh[-1]["rho"],
        }
        nets[f"vc{dim}"] = vc.float()
        log(f"trained V-cycle {dim}D: rho {vh[0]['rho']:.3f} -> {vh[-1]['rho']:.3f}")
    return nets, info


NET_V1 = "width 8, trained at 64² only (earlier full run)"


def _key(r):
    return (r["problem"], r["dim"], r["n"], r["rhs"], r["rtol"], r["solver"])


def merge_previous(rows, seq, train_info, only_solvers_seq, log):
    """Merge a subset run into the stored results: new rows replace rows with the same key."""
    import json

    from _common import RESULTS

    path = RESULTS / "dcdm.json"
    if not path.exists():
        log("no stored dcdm.json to merge into; writing the subset only")
        return rows, seq, train_info, None
    old = json.loads(path.read_text())
    new_keys = {_key(r) for r in rows}
    kept = [r for r in old["runs"] if _key(r) not in new_keys]
    for r in kept:
        if r["solver"].startswith("dcdm") and "network" not in r:
            r["network"] = NET_V1
    order = {_key(r): i for i, r in enumerate(old["runs"])}
    merged = sorted(kept + rows, key=lambda r: order.get(_key(r), len(order)))
    old_seq = [r for r in old["sequence"]["runs"] if r["solver"] not in only_solvers_seq]
    for r in old_seq:
        if r["solver"].startswith("dcdm") and "network" not in r:
            r["network"] = NET_V1
    info = dict(old["training"])
    for k in list(info):
        if k in train_info and "width" not in info[k]:  # v1 entries keep their record
            info[k + " (v1, earlier full run)"] = info.pop(k)
    info.update(train_info)
    return merged, old_seq + seq, info, old.get("full_run_command", old.get("command"))


def main():
    if len(sys.argv) == 7 and sys.argv[1] == "--memory-worker":
        memory_worker(*sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="seconds-long sanity run")
    ap.add_argument(
        "--only",
        choices=("all", "growth-sequence", "memory", "coeff"),
        default="all",
        help="'growth-sequence': retrain the 2D DCDM networks and re-measure only the DCDM "
        "rows of the 2D problems and the sequence (SA-PCG and DCDM), merging them into the "
        "stored results/dcdm.json and .md (other rows are kept); 'memory': re-measure only "
        "the peak memory (fresh process per solver) and merge it into the stored results",
    )
    ap.add_argument("--sizes2d", default="64,128,256,512")
    ap.add_argument("--sizes3d", default="32,64")
    ap.add_argument(
        "--train-grids", default="64,128,256", help="2D training grid sides (one training run)"
    )
    ap.add_argument("--train-grid3d", type=int, default=16)
    ap.add_argument("--samples", default="400,200,64", help="training vectors per 2D grid")
    ap.add_argument("--samples3d", type=int, default=400)
    ap.add_argument("--lanczos", type=int, default=400)
    ap.add_argument("--lanczos3d", type=int, default=300)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--epochs3d", type=int, default=4)
    ap.add_argument("--width", type=int, default=0, help="2D DCDM nonlinear-branch width")
    ap.add_argument("--width3d", type=int, default=8, help="3D DCDM nonlinear-branch width")
    ap.add_argument("--vcycle-steps", type=int, default=60)
    ap.add_argument("--seq-n", type=int, default=256)
    ap.add_argument("--seq-steps", type=int, default=10)
    ap.add_argument(
        "--memory-cases",
        default="",
        help="problem:n:dim,... of the memory runs (default: dirichlet:512:2,smoke:512:2,"
        "dirichlet:64:3)",
    )
    ap.add_argument("--coeff-train", default="64,128", help="coeff: training grid sides")
    ap.add_argument("--coeff-big", type=int, default=256, help="coeff: one more size (0: none)")
    ap.add_argument(
        "--coeff-epochs",
        type=int,
        default=12,
        help="coeff: training epochs (fixed: the run is reproducible; the learning rate "
        "decays over them)",
    )
    ap.add_argument(
        "--coeff-seeds",
        default="0",
        help="coeff: one training run per seed (initialisation and shuffling); the one with "
        "the lowest loss on validation matrices of the training families is kept",
    )
    ap.add_argument("--coeff-lr", type=float, default=3e-3)
    ap.add_argument(
        "--coeff-aniso-weight",
        type=float,
        default=1.0,
        help="coeff: factor on the loss of the anisotropic training matrices",
    )
    ap.add_argument(
        "--coeff-aniso-big",
        type=int,
        default=0,
        help="coeff: this many more anisotropic training matrices (eps = 1e-3) at --coeff-big",
    )
    ap.add_argument(
        "--coeff-reach",
        type=int,
        default=1,
        choices=(1, 2),
        help="coeff: smoother taps up to this many cells away (2: 5x5, extra taps start at 0)",
    )
    ap.add_argument(
        "--coeff-varcoef-extra",
        type=int,
        default=0,
        help="coeff: this many random-coefficient training fields (gallery.random_coefficient, "
        "seeds 20, 21, ...; correlation 1.5-6 cells, contrast 1e2-1e5)",
    )
    ap.add_argument(
        "--coeff-varcoef-weight",
        type=float,
        default=1.0,
        help="coeff: factor on the loss of the variable-coefficient training matrices",
    )
    ap.add_argument(
        "--coeff-smoother",
        choices=SMOOTHERS,
        default="spd",
        help="coeff: smoother parametrisation: spd (symmetric positive definite, scaled at "
        "setup to contract in the A-norm) or free (per-cell taps, can amplify)",
    )
    ap.add_argument(
        "--coeff-balance",
        action="store_true",
        help="coeff: weight each training matrix's loss by 1 / its initial loss",
    )
    ap.add_argument(
        "--coeff-seconds",
        type=float,
        default=7200.0,
        help="coeff: wall-clock safety cap per training run (a run it ends is not "
        "reproducible; the results say how many epochs ran)",
    )
    ap.add_argument("--coeff-sizes", default="128,256,512", help="coeff: test grid sides")
    ap.add_argument(
        "--coeff-aniso-angles",
        choices=("random", "spread"),
        default="random",
        help="coeff: angles of the anisotropic training matrices: random, or spread evenly "
        "over [0, pi/2] per eps (both away from the test angle)",
    )
    ap.add_argument(
        "--coeff-aniso-extra",
        type=int,
        default=0,
        help="coeff: this many more anisotropic training matrices at the smallest size, "
        "angles spread over [0, pi/2] away from the test angle",
    )
    ap.add_argument(
        "--coeff-sweep",
        type=int,
        default=17,
        help="coeff: anisotropy at this many angles over [0, pi/2] (0: none), learned "
        "against untrained",
    )
    ap.add_argument("--coeff-sweep-n", type=int, default=128, help="coeff: sweep grid side")
    args = ap.parse_args()
    if args.quick:
        args.sizes2d, args.sizes3d = "32,64", "16"
        args.train_grids, args.train_grid3d = "16,32", 8
        args.samples, args.samples3d = "48,32", 64
        args.lanczos = args.lanczos3d = 40
        args.epochs = args.epochs3d = 1
        args.vcycle_steps = 5
        args.seq_n, args.seq_steps = 64, 3
    subset = args.only == "growth-sequence"
    torch.set_num_threads(1)
    t_start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", flush=True)

    if args.only == "memory":
        memory_only(args, log)
        log("done")
        return
    if args.only == "coeff":
        from _dcdm_coeff import coeff_only

        coeff_only(args, log)
        log("done")
        return

    nets, train_info = train_models(args, log, only_2d=subset)
    net_v2 = (
        f"width {args.width}, trained once on {args.train_grids.replace(',', '²+')}² "
        f"({args.samples} vectors)"
    )
    # ablation: the same architectures at their multigrid initialisation (no training)
    init_nets = {
        2: ConjugateDirectionNet(dim=2, width=args.width),
        3: ConjugateDirectionNet(dim=3, width=args.width3d),
        "smoke": ConjugateDirectionNet(dim=2, width=args.width, boundary="smoke"),
    }
    rows = []
    maxiter = 20000
    solvers = {
        "cg": lambda p, b, rt: scipy_pcg(p.A, b, rt, None, maxiter),
        "jacobi": lambda p, b, rt: scipy_pcg(p.A, b, rt, jacobi, maxiter),
        "ic0": lambda p, b, rt: scipy_pcg(p.A, b, rt, ic_setup, maxiter),
        "sa_amg": lambda p, b, rt: scipy_pcg(p.A, b, rt, sa_setup, maxiter),
        "dcdm": lambda p, b, rt: run_dcdm(p, b, rt, nets[f"dcdm{p.dim}d"], 1000),
        "dcdm_smoke": lambda p, b, rt: run_dcdm(p, b, rt, nets["dcdm2d_smoke"], 1000),
        "dcdm_init": lambda p, b, rt: run_dcdm(p, b, rt, init_nets[p.dim], 1000),
        "dcdm_smoke_init": lambda p, b, rt: run_dcdm(p, b, rt, init_nets["smoke"], 1000),
        "learned_vcycle": lambda p, b, rt: run_vcycle(p, b, rt, nets[f"vc{p.dim}"], maxiter),
    }
    sizes2d = _ints(args.sizes2d)
    cases = [(k, n, 2) for k in ("dirichlet", "smoke") for n in sizes2d]
    if not subset:
        cases += [("dirichlet", n, 3) for n in _ints(args.sizes3d)]
        cases += [("varcoef", n, 2) for n in sizes2d[:3]]
    for kind, n, dim in cases:
        p = make_problem(kind, n, dim)
        for rhs in ("random", "smooth"):
            b = gallery.random_rhs(p, seed=1) if rhs == "random" else gallery.smooth_rhs(p, seed=1)
            for rtol in (1e-4, 1e-6):
                for name, fn in solvers.items():
                    if kind == "varcoef" and name in ("jacobi",):
                        continue
                    if name in ("dcdm_smoke", "dcdm_smoke_init") and kind != "smoke":
                        continue
                    if subset and not (
                        (kind == "dirichlet" and name in ("dcdm", "dcdm_init"))
                        or (kind == "smoke" and name in ("dcdm_smoke", "dcdm_smoke_init"))
                    ):
                        continue
                    out = measure(lambda fn=fn, p=p, b=b, rtol=rtol: fn(p, b, rtol))
                    row = {
                        "problem": kind,
                        "dim": dim,
                        "n": n,
                        "unknowns": p.n,
                        "rhs": rhs,
                        "rtol": rtol,
                        "solver": name,
                        **out,
                        "total_s": out["setup_s"] + out["solve_s"],
                    }
                    if name in ("dcdm", "dcdm_smoke") and dim == 2:
                        row["network"] = net_v2
                    rows.append(row)
                    log(
                        f"{kind}{dim}d n={n} {rhs} rtol={rtol:g} {name}: it={out['iterations']} "
                        f"t={row['total_s']:.2f}s conv={out['converged']}"
                    )

    # sequence benchmark: a moving obstacle, the matrix changes every step
    seq_solvers = ("sa_amg", "dcdm_smoke", "dcdm_smoke_init") if subset else SEQ_SOLVERS
    seq = []
    N = args.seq_n
    for step in range(args.seq_steps):
        cx = 0.25 + 0.5 * step / max(args.seq_steps - 1, 1)
        p = gallery.smoke_domain((N, N), obstacles=[((cx, 0.35), 0.1)])
        b = gallery.smooth_rhs(p, seed=step)
        for name in seq_solvers:
            out = measure(lambda name=name, p=p, b=b: solvers[name](p, b, 1e-6))
            rec = {"step": step, "solver": name, **out, "total_s": out["setup_s"] + out["solve_s"]}
            if name == "dcdm_smoke":
                rec["network"] = net_v2
            seq.append(rec)
        log(f"sequence step {step}")
    previous_command = None
    if subset:
        rows, seq, train_info, previous_command = merge_previous(
            rows, seq, train_info, seq_solvers, log
        )
    seq_tot = {}
    for name in SEQ_SOLVERS:
        rs = [r for r in seq if r["solver"] == name]
        if not rs:
            continue
        seq_tot[name] = {
            "total_s": sum(r["total_s"] for r in rs),
            "setup_s": sum(r["setup_s"] for r in rs),
            "iterations": sum(r["iterations"] for r in rs),
            "all_converged": all(r["converged"] for r in rs),
            "network": rs[0].get("network", ""),
            "measured": "this run" if name in seq_solvers else "earlier full run",
        }
    if subset:  # the summary covers every stored problem
        cases = list(dict.fromkeys((r["problem"], r["n"], r["dim"]) for r in rows))

    # summaries: ratios at rtol 1e-6
    index = {_key(r): r for r in rows}

    def get(kind, dim, n, rhs, rtol, solver):
        return index.get((kind, dim, n, rhs, rtol, solver))

    def val(r, field):
        return r[field] if r else None

    summary = []
    for kind, n, dim in cases:
        for rhs in ("random", "smooth"):
            for rtol in (1e-4, 1e-6):
                d = get(kind, dim, n, rhs, rtol, "dcdm")
                c = get(kind, dim, n, rhs, rtol, "cg")
                ic = get(kind, dim, n, rhs, rtol, "ic0")
                sa = get(kind, dim, n, rhs, rtol, "sa_amg")
                vc = get(kind, dim, n, rhs, rtol, "learned_vcycle")
                ds = get(kind, dim, n, rhs, rtol, "dcdm_smoke")
                d0 = get(kind, dim, n, rhs, rtol, "dcdm_init")
                ds0 = get(kind, dim, n, rhs, rtol, "dcdm_smoke_init")
                summary.append(
                    {
                        "problem": f"{kind} {dim}D",
                        "n": n,
                        "rhs": rhs,
                        "rtol": rtol,
                        "it CG": val(c, "iterations"),
                        "it IC0": val(ic, "iterations"),
                        "it SA": val(sa, "iterations"),
                        "it DCDM": val(d, "iterations"),
                        "it DCDMs": val(ds, "iterations"),
                        "it DCDM0": val(d0, "iterations"),
                        "it DCDMs0": val(ds0, "iterations"),
                        "it VC": val(vc, "iterations"),
                        "DCDM/CG it": d["iterations"] / c["iterations"] if d and c else None,
                        "DCDM/IC0 it": d["iterations"] / ic["iterations"] if d and ic else None,
                        "t CG": val(c, "total_s"),
                        "t IC0": val(ic, "total_s"),
                        "t SA": val(sa, "total_s"),
                        "t DCDM": val(d, "total_s"),
                        "t DCDMs": val(ds, "total_s"),
                        "t VC": val(vc, "total_s"),
                        "DCDM/SA t": d["total_s"] / sa["total_s"] if d and sa else None,
                        "mem DCDM MiB": val(d, "peak_mb"),
                        "mem SA MiB": val(sa, "peak_mb"),
                        "DCDM net": "v2"
                        if d and d.get("network") == net_v2
                        else ("v1" if dim == 2 else "3D"),
                    }
                )
    growth = {}
    for rhs in ("random", "smooth"):
        a = get("dirichlet", 2, 128, rhs, 1e-6, "dcdm")
        z = get("dirichlet", 2, 512, rhs, 1e-6, "dcdm")
        if a and z:
            growth[rhs] = z["iterations"] / a["iterations"]
    growth0 = {}
    for rhs in ("random", "smooth"):
        a = get("dirichlet", 2, 128, rhs, 1e-6, "dcdm_init")
        z = get("dirichlet", 2, 512, rhs, 1e-6, "dcdm_init")
        if a and z:
            growth0[rhs] = z["iterations"] / a["iterations"]
    data = {
        "training": train_info,
        "runs": rows,
        "summary": summary,
        "dcdm_growth_128_to_512_rtol1e-6": growth,
        "dcdm_init_growth_128_to_512_rtol1e-6": growth0,
        "sequence": {"n": N, "steps": args.seq_steps, "runs": seq, "totals": seq_tot},
        "wall_s": time.perf_counter() - t_start,
    }
    if not subset:
        apply_memory(data, memory_rows(args, log))
    data["full_run_command"] = previous_command if subset else "python bench_dcdm.py"
    if subset:
        data["note"] = (
            "rows of DCDM (2D Dirichlet: dcdm, dcdm_init; 2D smoke: dcdm_smoke, "
            "dcdm_smoke_init) and the sequence rows sa_amg, dcdm_smoke, dcdm_smoke_init "
            f"re-measured by `{' '.join(['python', 'bench_dcdm.py', *__import__('sys').argv[1:]])}`"
            f"; all other rows from `{previous_command}`"
        )
    md = ["## Iterations and total time (setup + solve, s); DCDM and VC trained once\n"]
    if subset:
        md.append(
            "**Merged results.** This run re-measured only the 2D DCDM rows (Dirichlet: "
            "DCDM, DCDM0; smoke: DCDMs, DCDMs0) and the sequence rows SA, DCDMs, DCDMs0, with "
            f"the DCDM networks v2 ({net_v2}). Every other number comes from the earlier full "
            f"run (`{previous_command}`); there the 2D DCDM networks were v1 ({NET_V1}): that "
            "applies to the DCDM column of the smoke and varcoef rows (column 'DCDM net'), "
            "and to the sequence rows marked 'earlier full run'. Iteration counts of CG, IC0, "
            "SA and VC do not depend on the network.\n\n"
        )
    md.append(
        "Solvers: CG = scipy cg; IC0 = scipy cg + our IC(0) (no fill, SuperLU triangular "
        "solves); SA = scipy cg + pyamg smoothed aggregation V-cycle; DCDM = "
        "pdesurrogates.solvers.dcdm with ConjugateDirectionNet trained on the Dirichlet box "
        f"({train_info['dcdm2d']['train_shape']} in 2D, "
        f"{train_info.get('dcdm3d', {}).get('train_shape')} "
        "in 3D); DCDMs = the same network with boundary='smoke' trained once on the empty "
        "smoke box (obstacles unseen); DCDM0 / DCDMs0 = the same networks untrained (their "
        "multigrid initialisation), as an ablation; VC = scipy cg + LearnedVCycle (SPD "
        "learned Galerkin multigrid). Single thread, shared 2-core machine: iteration "
        "counts are exact, times indicative.\n"
    )
    md.append(markdown_table(summary))
    md.append("\n## DCDM iteration growth 128² → 512² (Dirichlet, rtol 1e-6)\n\n")
    md.append("".join(f"- {k} b: {v:.2f}× (trained)\n" for k, v in growth.items()))
    md.append("".join(f"- {k} b: {v:.2f}× (untrained ablation)\n" for k, v in growth0.items()))
    md.append(f"\n## Sequence: {args.seq_steps} smoke systems {N}², moving obstacle, rtol 1e-6\n\n")
    md.append(
        markdown_table(
            [{"solver": k, **v} for k, v in seq_tot.items()],
            ["solver", "iterations", "setup_s", "total_s", "all_converged", "measured", "network"],
        )
    )
    if "sa_amg" in seq_tot and "dcdm_smoke" in seq_tot:
        ratio = seq_tot["dcdm_smoke"]["total_s"] / seq_tot["sa_amg"]["total_s"]
        md.append(f"\nDCDMs / SA total time on the sequence: {ratio:.2f}\n")
        data["sequence"]["dcdm_smoke_over_sa_total"] = ratio
    md.append("\n## Training\n\n")
    train_rows = [{"model": k, **v} for k, v in train_info.items()]
    train_cols = list(dict.fromkeys(c for r in train_rows for c in r))
    md.append(markdown_table(train_rows, train_cols))
    if not subset:
        md.append(MEMORY_NOTE + markdown_table(data["memory"]))
    write_results("dcdm", data, "".join(md))
    log("done")


if __name__ == "__main__":
    main()
