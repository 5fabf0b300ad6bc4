"""Learned preconditioners at 3D 128³ and on 512² sequences, with the learning ablation.

One process, every solver side by side on the same systems (rtol 1e-6, random b):

* ``3d``: Poisson (Dirichlet box), variable coefficient (log-normal, max/min exactly
  ``--contrast``, 1e4) and smoke (Neumann walls, open top, one ball obstacle) at ``--n3d``³
  (128³ = 2.1M unknowns), single thread. Setup and solve seconds, iterations; peak memory
  per solver on the Poisson row in fresh processes (``_common.fresh_process_peak``).
* ``2d``: Poisson, variable coefficient, rotated anisotropic diffusion (eps 1e-3,
  theta pi/8) and smoke at ``--sizes2d`` (128², 256², 512²): SA-PCG and the four
  V-cycles (the ablation), iterations and setup + solve seconds.
* ``mem2d``: peak memory of every 2D family and size for SA-PCG, IC(0)-PCG, the Galerkin
  and geometric V-cycles and the coefficient-aware DCDM network that
  ``bench_dcdm.py --only coeff`` saved, each solver in a fresh process.
* ``seq``: ``--seq-steps`` (20) systems at ``--seq-n``² (512²): a moving-obstacle smoke
  sequence and a variable-coefficient sequence whose log-coefficient drifts smoothly
  (``gallery.moving_obstacles``, ``gallery.drifting_coefficients``). Total time per
  solver; AMG and the V-cycles either set up for every system or reuse their hierarchy
  until the extra iterations it has cost (against the count of the system it was built
  for) add up to its setup time, then rebuild
  (``pdesurrogates.solvers._sequence.solve_sequence``, ``amortize=True``); both are
  reported.

Solvers: CG (scipy), IC(0)-PCG (``IncompleteCholesky``), SA-PCG (pyamg smoothed
aggregation V-cycle), DCDM (``ConjugateDirectionNet``, trained once by
``bench_dcdm.train_models``: 3D on the 16³ box, 2D smoke on empty smoke boxes), and four
multigrid V-cycles with the same cycle (``MultigridHierarchy``: cell-centred trilinear
``P``, ``R = P^T``, 2+2 damped-Jacobi sweeps, Cholesky at <= 64 cells), the ablation:

* ``vc_learned``: Galerkin coarse operators, parameters trained (``train_vcycle``) on a mix
  of Poisson, contrast-1e4 coefficients, a smoke domain and (2D) anisotropic diffusion at
  another angle (theta pi/6) at ``--train3d``³ / ``--train2d``², loss weights
  ``--vc-weights`` (``relative``: each family's loss divided by its start value);
* ``vc_init``: the same Galerkin cycle untrained (its initialisation, the classical
  Galerkin parameters);
* ``geo_learned``: rediscretised (geometric) coarse operators, parameters trained for them;
* ``geometric``: classical geometric multigrid, rediscretised coarse operators, classical
  parameters (= the untrained initialisation of ``geo_learned``).

Times are single-threaded wall clock on a shared 2-core machine: iteration counts are
exact, times indicative, ratios within one run comparable.

Run: ``python benchmarks/bench_preconditioners.py`` (``--quick`` for a short sanity run
into a temporary folder; ``--only 3d``, ``--only mem2d`` or ``--only seq`` re-measures one
part and merges it into the stored results; ``--sequences varcoef`` likewise re-measures
one sequence; ``--render-only`` rewrites the .md from the stored .json).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from types import SimpleNamespace

import torch
from bench_dcdm import ic_setup, run_dcdm, sa_setup, scipy_pcg, train_models

import pdesurrogates
from pdesurrogates.errors import SolverError
from pdesurrogates.solvers import gallery
from pdesurrogates.solvers._multigrid import MultigridHierarchy
from pdesurrogates.solvers._sequence import solve_sequence
from pdesurrogates.surrogates import LearnedVCycle
from pdesurrogates.training import train_vcycle

from _common import RESULTS, fresh_process_peak, markdown_table, write_results

VC = {  # name -> (trained model key or None, coarse operators)
    "vc_learned": ("galerkin", "galerkin"),
    "vc_init": (None, "galerkin"),
    "geo_learned": ("geometric", "geometric"),
    "geometric": (None, "geometric"),
}
SOLVERS_3D = ("sa_amg", "ic0", "cg", "dcdm", *VC)
MEMORY_SOLVERS = ("sa_amg", "ic0", "vc_init", "geometric")
MEMORY_SOLVERS_2D = (*MEMORY_SOLVERS, "dcdm_coeff")
COEFF_NET = RESULTS / "dcdm_coeff2d"  # saved by bench_dcdm.py --only coeff


def problem(kind: str, shape, contrast: float, seed: int = 0):
    if kind == "poisson":
        return gallery.dirichlet_box(shape)
    if kind == "varcoef":
        return gallery.random_coefficient(shape, contrast=contrast, seed=seed)
    if kind == "smoke":
        c = (0.5, 0.35) if len(shape) == 2 else (0.5, 0.5, 0.35)
        return gallery.smoke_domain(shape, obstacles=[(c, 0.15)])
    if kind == "aniso":
        return gallery.anisotropic_diffusion(shape, eps=ANISO_EPS, theta=ANISO_THETA)
    raise ValueError(kind)


ANISO_EPS, ANISO_THETA, ANISO_TRAIN_THETA = 1e-3, math.pi / 8, math.pi / 6


def train_mix(dim: int, m: int, contrast: float, coarse: str = "galerkin") -> list:
    """The V-cycle training distribution: Poisson, hard coefficients, an obstacle and (2D,
    Galerkin: rediscretisation needs a 5-point matrix) anisotropy at another angle."""
    shape = (m,) * dim
    c = (0.4, 0.4) if dim == 2 else (0.4, 0.5, 0.4)
    mix = [
        gallery.dirichlet_box(shape),
        gallery.random_coefficient(shape, contrast=contrast, correlation=1.5, seed=5),
        gallery.smoke_domain(shape, obstacles=[(c, 0.2)]),
    ]
    if dim == 2 and coarse == "galerkin":
        mix.append(gallery.anisotropic_diffusion(shape, eps=ANISO_EPS, theta=ANISO_TRAIN_THETA))
    return mix


def train_vcycles(dim, args, log) -> tuple[dict, dict]:
    models, info = {}, {}
    m = args.train3d if dim == 3 else args.train2d
    for coarse in ("galerkin", "geometric"):
        mix = train_mix(dim, m, args.contrast, coarse)
        vc = LearnedVCycle(dim=dim)
        t0 = time.perf_counter()
        hist = train_vcycle(
            vc,
            A=mix,
            coarse=coarse,
            steps=args.vc_steps,
            lr=3e-2,
            weights=args.vc_weights,
            progress=False,
        )
        params = vc.numpy_parameters()
        names = f"poisson + varcoef (contrast {args.contrast:.0e}) + smoke"
        if len(mix) == 4:
            names += " + aniso (theta pi/6)"
        info[f"vcycle{dim}d_{coarse}"] = {
            "train_shape": list(mix[0].shape),
            "train_problems": names,
            "loss_weights": args.vc_weights or "equal",
            "steps": args.vc_steps,
            "train_s": time.perf_counter() - t0,
            "rho_first": hist[0]["rho"],
            "rho_last": hist[-1]["rho"],
            "stencil": [float(v) for v in params["stencil"]],
            "omega_fraction": [float(v) for v in params["omega_fraction"]],
        }
        models[coarse] = vc
        log(f"V-cycle {dim}D {coarse}: rho {hist[0]['rho']:.3f} -> {hist[-1]['rho']:.3f}")
    return models, info


def dcdm_nets(args, log, dim: int):
    """The DCDM networks of bench_dcdm (3D box network, or the 2D smoke network)."""
    ns = SimpleNamespace(**vars(args))
    if dim == 3:  # bench_dcdm trains the 2D networks too: keep those tiny here
        ns.train_grids, ns.samples, ns.lanczos, ns.epochs = "16", "16", 20, 1
    ns.vcycle_steps = 1
    nets, info = train_models(ns, log, only_2d=dim == 2)
    key = "dcdm3d" if dim == 3 else "dcdm2d_smoke"
    return nets[key], {key: info[key]}


def vc_setup(models, name):
    key, coarse = VC[name]
    model = None if key is None else models[key]
    return lambda p: MultigridHierarchy(model, p, coarse=coarse).aspreconditioner()


def run_one(name, p, b, rtol, models, net, maxiter_cg, maxiter_dcdm, warm=False):
    """One solve; ``warm``: set the preconditioner up once untimed first (its time and page
    faults kept as ``setup_cold_s`` / ``faults_cold``), then time a second setup and the
    solve, so that a setup does not pay for the memory the solver before it released."""
    if name == "dcdm":
        return run_dcdm(p, b, rtol, net, maxiter_dcdm)
    if name in VC:
        vc = vc_setup(models, name)
        setup = lambda _A: vc(p)  # noqa: E731
    else:
        setup = {"sa_amg": sa_setup, "ic0": ic_setup, "cg": None}[name]
    cold = {}
    if warm and setup is not None:
        f0, t0 = _faults(), time.perf_counter()
        setup(p.A)
        cold = {"setup_cold_s": time.perf_counter() - t0, "faults_cold": _faults() - f0}
    f0 = _faults()
    out = scipy_pcg(p.A, b, rtol, setup, 20000 if name != "cg" else maxiter_cg)
    if cold:
        out["faults_warm"] = _faults() - f0
    return {**out, **cold}


def _faults() -> int:
    """Minor page faults of this process so far (first touches of fresh memory)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def memory_worker(kind, n, solver, contrast, dim="3") -> None:
    """One solve at rtol 1e-6 in this fresh process (V-cycles at their initialisation;
    ``dcdm_coeff``: the coefficient-aware network ``bench_dcdm.py --only coeff`` saved)."""
    torch.set_num_threads(1)
    p = problem(kind, (int(n),) * int(dim), float(contrast))
    b = gallery.random_rhs(p, seed=1)
    net = None
    if solver == "dcdm":
        from pdesurrogates.surrogates import ConjugateDirectionNet

        net = ConjugateDirectionNet(dim=3, width=8)
    if solver == "dcdm_coeff":
        net = pdesurrogates.load(COEFF_NET)
    base = fresh_process_peak(None, None)
    if solver == "dcdm_coeff":
        out = run_dcdm(p, b, 1e-6, net, 2000)
    else:
        out = run_one(solver, p, b, 1e-6, {}, net, 3000, 5)
    fresh_process_peak(None, None, report={"baseline_mib": base, "iters": out["iterations"]})


def peak_rows(kind, n, dim, solvers, contrast, log) -> list[dict]:
    """Peak memory of each solver on one problem, each in a fresh process."""
    rows = []
    for solver in solvers:
        rep = fresh_process_peak(__file__, ["--memory-worker", kind, n, solver, contrast, dim])
        rows.append(
            {
                "problem": kind,
                "n": n,
                "solver": solver,
                "iterations": rep["iters"],
                "mem_mib": rep["delta_mib"],
                "rss_mib": rep["peak_mib"],
            }
        )
        log(f"memory {kind} {n} {solver}: {rep['delta_mib']:.0f} MiB")
    return rows


def part_3d(args, log) -> dict:
    torch.set_num_threads(1)
    net, info = dcdm_nets(args, log, 3)
    models, vinfo = train_vcycles(3, args, log)
    info.update(vinfo)
    shape = (args.n3d,) * 3
    rows = []
    for kind in ("poisson", "varcoef", "smoke"):
        t0 = time.perf_counter()
        p = problem(kind, shape, args.contrast)
        log(f"{kind} {shape}: built in {time.perf_counter() - t0:.1f}s")
        b = gallery.random_rhs(p, seed=1)
        for name in SOLVERS_3D:
            out = run_one(
                name, p, b, 1e-6, models, net, args.maxiter_cg, args.maxiter_dcdm, warm=True
            )
            out["total_s"] = out["setup_s"] + out["solve_s"]
            rows.append({"problem": kind, "n": args.n3d, "unknowns": p.n, "solver": name, **out})
            log(
                f"  {name}: {out['iterations']} it, setup {out['setup_s']:.2f}s, "
                f"solve {out['solve_s']:.2f}s, converged {out['converged']}"
            )
    solvers = MEMORY_SOLVERS if not args.no_memory else ()
    mem = peak_rows("poisson", args.n3d, 3, solvers, args.contrast, log)
    return {"rows": rows, "memory": mem, "training": info, "contrast": args.contrast}


FAMILIES_2D = ("poisson", "varcoef", "aniso", "smoke")
SOLVERS_2D = ("sa_amg", *VC)


def part_2d(args, log) -> dict:
    """Every family at every ``--sizes2d``: SA-PCG and the four V-cycles (the ablation)."""
    torch.set_num_threads(1)
    models, info = train_vcycles(2, args, log)
    rows = []
    for kind in FAMILIES_2D:
        for n in (int(v) for v in args.sizes2d.split(",")):
            p = problem(kind, (n, n), args.contrast)
            b = gallery.random_rhs(p, seed=1)
            for name in SOLVERS_2D:
                row = {"problem": kind, "n": n, "case": f"{kind} {n}²", "solver": name}
                try:
                    out = run_one(name, p, b, 1e-6, models, None, args.maxiter_cg, 0)
                except SolverError as err:  # rediscretisation of a 9-point matrix
                    rows.append({**row, "iterations": None, "note": str(err)})
                    log(f"  {kind} {n}² {name}: n/a ({err})")
                    continue
                out["total_s"] = out["setup_s"] + out["solve_s"]
                rows.append({**row, **out})
                log(f"  {kind} {n}² {name}: {out['iterations']} it, {out['total_s']:.2f}s")
    return {"rows": rows, "training": info, "contrast": args.contrast}


def part_mem2d(args, log) -> dict:
    """Peak memory of every 2D family x size x solver, each in a fresh process."""
    if not (COEFF_NET / "config.json").is_file():
        raise SystemExit(f"{COEFF_NET}: no saved network; run bench_dcdm.py --only coeff first")
    rows = []
    for kind in FAMILIES_2D:
        for n in (int(v) for v in args.sizes2d.split(",")):
            solvers = [s for s in MEMORY_SOLVERS_2D if not (kind == "aniso" and s == "geometric")]
            rows += peak_rows(kind, n, 2, solvers, args.contrast, log)
    return {"memory": rows}


def sequence_systems(kind, args):
    shape = (args.seq_n,) * 2
    if kind == "smoke":
        probs = gallery.moving_obstacles(shape, args.seq_steps)
    else:
        probs = gallery.drifting_coefficients(shape, args.seq_steps, contrast=args.contrast)
    return [(p, gallery.smooth_rhs(p, seed=i)) for i, p in enumerate(probs)]


SEQUENCES = ("smoke", "varcoef")
PARTS = ("2d", "3d", "seq", "mem2d")


def part_seq(args, log) -> dict:
    torch.set_num_threads(1)
    kinds = [k for k in SEQUENCES if k in args.sequences.split(",")]
    net, info = dcdm_nets(args, log, 2) if "smoke" in kinds else (None, {})
    models, vinfo = train_vcycles(2, args, log)
    info.update(vinfo)
    runs, totals = [], []
    for kind in kinds:
        systems = sequence_systems(kind, args)
        log(f"sequence {kind}: {len(systems)} systems built")
        variants = [("sa_amg", sa_setup_p, r) for r in (False, True)]
        variants += [(v, vc_setup(models, v), False) for v in VC]
        variants += [(v, vc_setup(models, v), True) for v in ("vc_learned", "geometric")]
        for name, setup, reuse in variants:
            out = solve_sequence(systems, setup, reuse=reuse, rtol=1e-6)
            label = f"{name}{'_reuse' if reuse else ''}"
            runs += [{"sequence": kind, "step": i, "solver": label, **r} for i, r in enumerate(out)]
            totals.append(_total(kind, label, out))
            log(f"  {label}: {totals[-1]['total_s']:.2f}s, {totals[-1]['iterations']} it")
        if kind == "smoke":
            out = [run_dcdm(p, b, 1e-6, net, args.maxiter_dcdm) for p, b in systems]
            for r in out:
                r["total_s"] = r["setup_s"] + r["solve_s"]
                r["rebuilt"] = False
            runs += [
                {"sequence": kind, "step": i, "solver": "dcdm", **r} for i, r in enumerate(out)
            ]
            totals.append(_total(kind, "dcdm", out))
            log(f"  dcdm: {totals[-1]['total_s']:.2f}s")
    return {
        "runs": runs,
        "totals": totals,
        "training": {kind: info for kind in kinds},
        "n": args.seq_n,
        "steps": args.seq_steps,
        "contrast": args.contrast,
    }


def sa_setup_p(p):
    return sa_setup(p.A)


def _total(kind, label, out) -> dict:
    return {
        "sequence": kind,
        "solver": label,
        "iterations": int(sum(r["iterations"] for r in out)),
        "setups": int(sum(bool(r["rebuilt"]) for r in out)),
        "setup_s": float(sum(r["setup_s"] for r in out)),
        "solve_s": float(sum(r["solve_s"] for r in out)),
        "total_s": float(sum(r["total_s"] for r in out)),
        "all_converged": all(r["converged"] for r in out),
    }


MEMORY_NOTE = (
    "mem_mib: peak RSS of setup + solve above the process after imports and the problem; "
    "V-cycles at their initialisation (same cost as the learned ones). The grid-stencil "
    "check of the matrix (`solvers._checks.check_grid_stencil`, run by every grid "
    "preconditioner) walks the nonzeros in blocks of 2^20 with 32-bit coordinates: on the "
    "128³ Poisson matrix, in fresh processes side by side with the previous 64-bit "
    "version, it took 0.25-0.45 s against 0.9-3.5 s and peaked at about 25 MiB "
    "(tracemalloc; the RSS rise was under 1 MiB) against 251 MiB. The V-cycles' "
    "peak is now their hierarchy (P, P^T and the Galerkin operators).\n\n"
)
LOAD_NOTE = (
    "Machine load: these runs shared the 2 cores with other jobs (the 2D part at load "
    "average 4-6, the 3D part and the sequences at about 2-4), so absolute times are "
    "inflated and noisy (SA's setup suffers most); iteration counts are exact, and ratios "
    "within one table are the figures to compare. In the 3D part every preconditioner is "
    "set up once untimed before its timed setup and solve (`setup_cold_s` is that first "
    "setup). The previous run timed the learned Galerkin cycle right after the DCDM solve, "
    "and its setup came out twice its untrained version's. The two do the same work (the "
    "same operators, the same page-fault counts); the first V-cycle setup after the DCDM "
    "solve is the slow one, whichever variant it is (measured at 128³: learned then "
    "untrained 17.2 s / 10.7 s, untrained then learned 20.7 s / 11.5 s).\n"
)


TWO_D_NOTE = (
    "Families: Poisson (Dirichlet box), varcoef (log-normal coefficient, max/min exactly "
    "``--contrast``), aniso (rotated anisotropic diffusion, eps = 1e-3, theta = pi/8, "
    "9-point; the V-cycles were trained at theta = pi/6) and smoke (one obstacle). "
    "Geometric coarsening needs a 5-point matrix: it does not apply to aniso (n/a).\n\n"
)


def _helps_summary(abl) -> str:
    """Which families the learning pays on (>= 1.3x fewer iterations at every size)."""
    lines = []
    for coarse in ("Galerkin", "geometric"):
        rows = [r for r in abl if r["coarse"] == coarse]
        fams = dict.fromkeys(r["case"].split()[0] for r in rows)
        for fam in fams:
            g = [
                r["it untrained"] / max(r["it learned"], 1)
                for r in rows
                if r["case"].startswith(fam + " ")
            ]
            verdict = "meets" if min(g) >= 1.3 else "misses"
            lines.append(
                f"- {coarse} {fam}: untrained/learned iterations "
                f"{', '.join(f'{v:.2f}' for v in g)}: {verdict} the 1.3x bar"
            )
    return "\n" + "\n".join(lines) + "\n"


def _verdict(it_learned, it_init) -> str:
    gain = it_init / max(it_learned, 1)
    if gain >= 1.3:
        return f"yes: {gain:.2f}x fewer iterations"
    return f"no: {gain:.2f}x (learning does not help here)"


def ablation_rows(rows, key) -> list[dict]:
    """learned / untrained / classical geometric side by side per problem (a variant that
    does not apply, e.g. rediscretisation of a 9-point matrix, shows as n/a)."""
    out = []
    for prob in dict.fromkeys(r[key] for r in rows):
        by = {r["solver"]: r for r in rows if r[key] == prob and r.get("iterations") is not None}
        geo = by.get("geometric", {})
        for learned, init, label in (
            ("vc_learned", "vc_init", "Galerkin"),
            ("geo_learned", "geometric", "geometric"),
        ):
            if learned not in by or init not in by:
                continue
            out.append(
                {
                    key: prob,
                    "coarse": label,
                    "it learned": by[learned]["iterations"],
                    "it untrained": by[init]["iterations"],
                    "it geometric": geo.get("iterations", "n/a"),
                    "t learned": by[learned]["total_s"],
                    "t untrained": by[init]["total_s"],
                    "t geometric": geo.get("total_s", "n/a"),
                    "learning helps (>= 1.3x)": _verdict(
                        by[learned]["iterations"], by[init]["iterations"]
                    ),
                }
            )
    return out


def _with_ratio(rows, key, sa_names=("sa_amg",)) -> list[dict]:
    out = []
    for r in rows:
        sa = [s for s in rows if s[key] == r[key] and s["solver"] in sa_names]
        best = min(s["total_s"] for s in sa) if sa else float("nan")
        out.append({**r, "total / SA": r["total_s"] / best})
    return out


def _table(rows) -> str:
    """Markdown table over the union of the rows' keys (first-seen order)."""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    return markdown_table(rows, cols)


def render(data) -> str:
    md = [__doc__.split("\n\n", 1)[1], "\n", LOAD_NOTE, "\n"]
    if "2d" in data:
        d = data["2d"]
        md.append("## 2D families, rtol 1e-6, random b, one thread\n\n")
        md.append(f"Command: `{d['command']}`\n\n")
        md.append(TWO_D_NOTE)
        done = [r for r in d["rows"] if r.get("iterations") is not None]
        cols = ["problem", "n", "solver", "iterations", "setup_s", "solve_s", "total_s"]
        cols += ["total / SA", "converged"]
        md.append(markdown_table(_with_ratio(done, "case"), cols))
        md.append("\n### Ablation: learned / untrained initialisation / classical geometric\n\n")
        md.append(markdown_table(ablation_rows(d["rows"], "case")))
        md.append(_helps_summary(ablation_rows(d["rows"], "case")))
        md.append("\n### Training\n\n")
        md.append(_table([{"model": k, **v} for k, v in d["training"].items()]))
    if "3d" in data:
        d = data["3d"]
        md.append(f"## 3D {d['rows'][0]['n']}³, rtol 1e-6, random b, one thread\n\n")
        md.append(f"Command: `{d['command']}`\n\n")
        cols = [
            "problem",
            "solver",
            "iterations",
            "setup_s",
            "solve_s",
            "total_s",
            "total / SA",
            "converged",
            "true_relres",
            "setup_cold_s",
        ]
        md.append(markdown_table(_with_ratio(d["rows"], "problem"), cols))
        md.append("\n### Ablation: learned / untrained initialisation / classical geometric\n\n")
        md.append(markdown_table(ablation_rows(d["rows"], "problem")))
        if d["memory"]:
            md.append("\n### Peak memory, Poisson, fresh process per solver\n\n")
            md.append(MEMORY_NOTE)
            if d.get("memory_command"):  # measured by another run of the same code
                md.append(f"Command (memory): `{d['memory_command']}`\n\n")
            md.append(markdown_table(d["memory"]))
        md.append("\n### Training\n\n")
        md.append(_table([{"model": k, **v} for k, v in d["training"].items()]))
    if "mem2d" in data:
        d = data["mem2d"]
        md.append("\n## Peak memory, 2D families, fresh process per solver\n\n")
        md.append(f"Command: `{d['command']}`\n\n")
        md.append(MEMORY_NOTE)
        md.append(
            "`dcdm_coeff`: the coefficient-aware DCDM network of `bench_dcdm.py --only "
            "coeff` (its compiled per-matrix cycle); `vc_init` has the hierarchy of "
            "`vc_learned`.\n\n"
        )
        md.append(markdown_table(d["memory"]))
    if "seq" in data:
        d = data["seq"]
        md.append(f"\n## Sequences: {d['steps']} systems at {d['n']}², rtol 1e-6\n\n")
        for kind, cmd in _as_dict(d["command"]).items():
            md.append(f"Command ({kind}): `{cmd}`\n\n")
        md.append(
            "`_reuse`: the hierarchy is kept while it converges within 1.5x the "
            "iterations of the system it was built for (from a zero start) and until the "
            "iterations it costs beyond that count, at the measured time per iteration, "
            "add up to its setup time; rebuilt otherwise. `setups` counts the builds. "
            "total / SA is against the faster SA variant.\n\n"
        )
        tot = _with_ratio(d["totals"], "sequence", ("sa_amg", "sa_amg_reuse"))
        md.append(markdown_table(tot))
        learned = [t for t in tot if t["solver"].startswith(("vc_learned", "geo_learned", "dcdm"))]
        for seq in dict.fromkeys(t["sequence"] for t in tot):
            best = min((t for t in learned if t["sequence"] == seq), key=lambda t: t["total_s"])
            md.append(
                f"\nBest learned on {seq}: {best['solver']}, {best['total / SA']:.2f}x "
                "the faster SA's total.\n"
            )
        md.append("\n### Ablation on the sequences (rebuilt every step)\n\n")
        abl = [t for t in d["totals"] if not t["solver"].endswith("_reuse")]
        md.append(markdown_table(ablation_rows(abl, "sequence")))
        trainings = d["training"]
        if not set(trainings) <= set(SEQUENCES):
            trainings = {"all": trainings}
        for kind, training in trainings.items():
            md.append(f"\n### Training ({kind} sequence run)\n\n")
            md.append(_table([{"model": k, **v} for k, v in training.items()]))
    return "".join(md)


def _commands(data) -> str:
    cmds = [c for d in data.values() for c in _as_dict(d["command"]).values()]
    return "; ".join(dict.fromkeys(cmds))


def _as_dict(command) -> dict:
    return command if isinstance(command, dict) else {"all": command}


def _merge_seq(old: dict | None, new: dict) -> dict:
    """``new`` sequence results, with the sequences it did not run kept from ``old``."""
    kinds = {t["sequence"] for t in new["totals"]}
    if old is None or (old["n"], old["steps"]) != (new["n"], new["steps"]):
        return new
    if "smoke" not in old["training"] and "varcoef" not in old["training"]:
        old = {**old, "training": {k: old["training"] for k in SEQUENCES}}
    if not isinstance(old["command"], dict):
        old = {**old, "command": {k: old["command"] for k in SEQUENCES}}
    keep = [k for k in SEQUENCES if k not in kinds and k in old["command"]]
    return {
        **new,
        "runs": [r for r in old["runs"] if r["sequence"] in keep] + new["runs"],
        "totals": [t for t in old["totals"] if t["sequence"] in keep] + new["totals"],
        "training": {**{k: old["training"][k] for k in keep}, **new["training"]},
        "command": {**{k: old["command"][k] for k in keep}, **new["command"]},
    }


def main():
    if len(sys.argv) in (6, 7) and sys.argv[1] == "--memory-worker":
        memory_worker(*sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="seconds-long run, temporary folder")
    ap.add_argument(
        "--only",
        choices=("all", *PARTS),
        default="all",
        help="mem2d: peak memory of every 2D family, size and solver in fresh processes "
        "(needs the network of bench_dcdm.py --only coeff)",
    )
    ap.add_argument("--n3d", type=int, default=128)
    ap.add_argument("--sizes2d", default="128,256,512", help="2D part: grid sides")
    ap.add_argument(
        "--vc-weights",
        choices=("equal", "relative"),
        default="relative",
        help="V-cycle training loss weights per family (train_vcycle weights=)",
    )
    ap.add_argument("--seq-n", type=int, default=512)
    ap.add_argument("--seq-steps", type=int, default=20)
    ap.add_argument(
        "--sequences",
        default=",".join(SEQUENCES),
        help="comma-separated sequences to run (smoke, varcoef); the others are kept "
        "from the stored results",
    )
    ap.add_argument("--contrast", type=float, default=1e4)
    ap.add_argument("--train3d", type=int, default=12, help="V-cycle training grid side, 3D")
    ap.add_argument("--train2d", type=int, default=32, help="V-cycle training grid side, 2D")
    ap.add_argument("--vc-steps", type=int, default=60)
    ap.add_argument("--maxiter-cg", type=int, default=3000)
    ap.add_argument("--maxiter-dcdm", type=int, default=40)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument(
        "--render-only", action="store_true", help="rewrite the .md from the stored .json"
    )
    # the DCDM training settings of bench_dcdm.train_models
    ap.add_argument("--train-grids", default="64,128,256")
    ap.add_argument("--samples", default="400,200,64")
    ap.add_argument("--lanczos", type=int, default=400)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--width", type=int, default=0)
    ap.add_argument("--train-grid3d", type=int, default=16)
    ap.add_argument("--samples3d", type=int, default=400)
    ap.add_argument("--lanczos3d", type=int, default=300)
    ap.add_argument("--epochs3d", type=int, default=4)
    ap.add_argument("--width3d", type=int, default=8)
    args = ap.parse_args()
    args.vc_weights = None if args.vc_weights == "equal" else args.vc_weights
    unknown = set(args.sequences.split(",")) - set(SEQUENCES)
    if unknown:
        ap.error(f"--sequences: unknown {sorted(unknown)}; choose from {list(SEQUENCES)}")
    if args.render_only:
        data = json.loads((RESULTS / "preconditioners.json").read_text())
        data = {k: data[k] for k in PARTS if k in data}
        write_results("preconditioners", data, render(data), command=_commands(data))
        return
    if args.quick:
        args.n3d, args.seq_n, args.seq_steps, args.sizes2d = 16, 32, 3, "16,32"
        args.train3d, args.train2d, args.vc_steps = 8, 16, 3
        args.train_grids, args.samples, args.lanczos, args.epochs = "16", "16", 20, 1
        args.train_grid3d, args.samples3d, args.lanczos3d, args.epochs3d = 8, 16, 20, 1
        args.maxiter_dcdm = 20
    t_start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", flush=True)

    stored = RESULTS / "preconditioners.json"
    command = " ".join(["python", *sys.argv])
    new = {}
    if args.only in ("all", "2d"):
        new["2d"] = {**part_2d(args, log), "command": command}
    if args.only in ("all", "3d"):
        new["3d"] = {**part_3d(args, log), "command": command}
    if args.only in ("all", "mem2d"):
        new["mem2d"] = {**part_mem2d(args, log), "command": command}
    if args.only in ("all", "seq"):
        seq = part_seq(args, log)
        new["seq"] = {**seq, "command": {k: command for k in seq["training"]}}
    data = {}
    if not args.quick and stored.exists():  # merge, read at the end
        old = json.loads(stored.read_text())
        if args.only != "all":
            data = {k: old[k] for k in PARTS if k in old}
        if "seq" in new:
            new["seq"] = _merge_seq(old.get("seq"), new["seq"])
    data.update(new)
    # --quick: write_results puts the files in a temporary folder
    path = write_results("preconditioners", data, render(data), command=_commands(data))
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
