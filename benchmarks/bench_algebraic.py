"""The learned algebraic preconditioners (neural IC, neural AMG) against CG, IC(0) and pyamg SA.

One process, every solver side by side on the same systems, scipy ``cg`` at rtol 1e-6
(relative residual), ``x0 = 0``, a white-noise right-hand side, at most 5000 iterations:

* ``cg``: no preconditioner; ``ic0``: our IC(0) (``IncompleteCholesky``);
  ``sa``: ``pyamg.smoothed_aggregation_solver(A).aspreconditioner()`` (defaults);
  ``nic``: ``NeuralIncompleteCholesky`` trained here on our FEM families;
  ``nic_init``: the same network after its first training phase only (fitted to IC(0)),
  the learned method's own initialisation; ``nic_sgs``: the network as constructed (zero
  output heads), which is exactly symmetric Gauss-Seidel.
* ``namg_raw``: ``NeuralAMG`` trained here (cycle loss) on the same FEM families: our
  smoothed-aggregation hierarchy whose prolongation and SOR weights a graph network sets;
  ``namg``: the same network with ``guard=True``: it also builds the plain hierarchy on
  the same aggregates and keeps the cycle of smaller estimated convergence factor;
  ``amg_init``: the network as constructed (zero output head), which is exactly our own
  plain smoothed aggregation (``SmoothedAggregation``, pyamg's defaults, symmetric
  Gauss-Seidel), the learned method's initialisation.
* Unseen FEM matrices: P1 on new random meshes, families poisson / lognormal (sigma 2.5,
  beyond the training range 0.5-2) / anisotropic / plane-strain elasticity, unit square
  and L-shape, m = 64, 128 (the training meshes have m = 10-22, i.e. 80-900 unknowns).
* pyamg's example matrices (``pyamg.gallery.load_example``), never seen in training;
  those that are not SPD (``unit_square`` is singular) are listed and skipped.
* A 20-matrix sequence on one mesh (m = 32 and m = 128) whose lognormal coefficient drifts,
  solved by ``pdesurrogates.solvers.solve_sequence`` (the rule of every sequence
  benchmark), five interleaved rounds, the median by CPU time per solver; SA
  either rebuilds its hierarchy every step (``sa``)
  or reuses it (``sa_reuse``: kept while it converges within 1.5x the iterations of the
  system it was built for and until the extra iterations it costs add up to its setup
  time, then rebuilt); ``nic`` reuses the pattern via ``update()``; ``namg_update``
  rebuilds its hierarchy every step but reuses the aggregates (``update()``: no
  strength/aggregation pass) and ``namg_keep`` reuses its hierarchy by the same rule as
  ``sa_reuse`` (rebuilds by ``update()``).

Reported: iterations, setup and solve wall time (all solvers in this process, side by
side), and ratios ours/theirs. Peak memory is measured apart: every (matrix, solver) pair
is rerun in a fresh process (``_common.fresh_process_peak``) that imports, loads the
matrix (and the saved model), resets the kernel's RSS high-water mark, runs setup and
solve and reads ``ru_maxrss``; ``mem_mib`` is that peak above the RSS after loading,
``rss_mib`` the absolute peak RSS of the process during setup and solve (for the largest
FEM meshes and pyamg's matrices). Single-threaded on a shared 2-core machine: iterations
are exact, times are indicative (about +-30 %).

Run: ``OMP_NUM_THREADS=1 nice python benchmarks/bench_algebraic.py`` (``--quick`` for a
short sanity run into a temporary folder).
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyamg
import scipy.sparse as sp
import scipy.sparse.linalg as sla
import torch

import pdesurrogates
from pdesurrogates.solvers import IncompleteCholesky, solve_sequence
from pdesurrogates.solvers.reference import FEM_FAMILIES, fem_family, fem_mesh, fem_sequence
from pdesurrogates.surrogates import NeuralAMG, NeuralIncompleteCholesky
from pdesurrogates.training import fem_training_matrices, train_neural_amg, train_neural_ic

from _common import fresh_process_peak, markdown_table, write_results

RTOL = 1e-6
NAMG_MATRICES, NAMG_SIZES, NAMG_STEPS, NAMG_CYCLES = 32, (10, 22), 200, 4
NAMG_LEVELS, NAMG_SHARED = 10, True  # learned levels at use; level-1 weights in the loss
MAXITER = 5000
SEQUENCE_ROUNDS = 5  # interleaved repetitions of every sequence solver (median reported)
PYAMG_EXAMPLES = (
    "airfoil",
    "bar",
    "knot",
    "local_disc_galerkin_diffusion",
    "unit_cube",
    "unit_square",
)
SOLVERS = ("cg", "ic0", "sa", "nic_sgs", "nic_init", "nic", "amg_init", "namg_raw", "namg")
# the solvers that are a model
MODELS = ("nic_sgs", "nic_init", "nic", "amg_init", "namg_raw", "namg")
# memory is measured (one fresh process each) for these solvers on the largest FEM meshes
# and pyamg's matrices; nic_sgs / nic_init share nic's architecture, pattern and cost
MEMORY_SOLVERS = ("cg", "ic0", "sa", "nic", "namg")


def run_pcg(A, b, setup):
    """``(iterations, setup s, solve s, relative residual)``."""
    t0 = time.perf_counter()
    M = setup(A) if setup is not None else None
    t1 = time.perf_counter()
    count = [0]
    x, _ = sla.cg(
        A,
        b,
        rtol=RTOL,
        maxiter=MAXITER,
        M=M,
        callback=lambda xk: count.__setitem__(0, count[0] + 1),
    )
    t2 = time.perf_counter()
    rel = float(np.linalg.norm(b - A @ x) / np.linalg.norm(b))
    return count[0], t1 - t0, t2 - t1, rel


def setup_of(name: str, model=None):
    """The preconditioner set-up function of solver ``name`` (``model`` for the nic ones)."""
    if name == "cg":
        return None
    if name == "ic0":
        return lambda A: IncompleteCholesky(A).aspreconditioner()
    if name == "sa":
        return lambda A: pyamg.smoothed_aggregation_solver(A).aspreconditioner()
    return lambda A: model.precondition(A).aspreconditioner()


def memory_worker(matrix: str, solver: str, model_dir: str) -> None:
    """One solve in this fresh process; prints its peak RSS (see ``fresh_process_peak``)."""
    torch.set_num_threads(1)
    A = sp.load_npz(matrix).tocsr()
    b = np.load(matrix.replace(".npz", "_b.npy"))
    model = pdesurrogates.load(model_dir) if solver in MODELS else None
    base = fresh_process_peak(None, None)
    it, *_ = run_pcg(A, b, setup_of(solver, model))
    fresh_process_peak(None, None, report={"baseline_mib": base, "iters": it})


def measure_memory(name, A, b, models, workdir: Path) -> dict:
    """``{solver: worker report}`` for one matrix, one fresh process per solver."""
    path = workdir / f"{name}.npz"
    sp.save_npz(path, sp.csr_matrix(A))
    np.save(workdir / f"{name}_b.npy", b)
    out = {}
    for solver in MEMORY_SOLVERS:
        mdir = workdir / solver if solver in MODELS else workdir
        out[solver] = fresh_process_peak(__file__, ["--memory-worker", path, solver, mdir])
    return out


def is_spd(A) -> bool:
    """Smallest eigenvalue above 1e-10 of the largest (dense for these small matrices)."""
    if A.shape[0] <= 5000:
        lam = np.linalg.eigvalsh(A.toarray())
        return bool(lam[0] > 1e-10 * lam[-1])
    try:
        lam = sla.eigsh(A, k=1, which="SA", return_eigenvectors=False, tol=1e-8, maxiter=20000)
        return bool(lam[0] > 1e-10 * abs(A).max())
    except sla.ArpackNoConvergence:
        return False


def test_matrices(sizes):
    out = []
    k = 0
    for m in sizes:
        for kind in FEM_FAMILIES:
            for domain in ("square", "lshape"):
                sigma = 2.5 if kind == "lognormal" else None
                s = fem_family(kind, m, domain=domain, seed=1000 + k, sigma=sigma)
                out.append((f"fem_{kind}_{domain}_m{m}", "fem", s.A))
                k += 1
    skipped = []
    for name in PYAMG_EXAMPLES:
        A = sp.csr_matrix(pyamg.gallery.load_example(name)["A"], dtype=float)
        A = sp.csr_matrix((A + A.T) * 0.5)
        if is_spd(A):
            out.append((name, "pyamg", A))
        else:
            skipped.append(name)
    return out, skipped


def train(quick: bool):
    mats = fem_training_matrices(12 if quick else 48, seed=0)
    model = NeuralIncompleteCholesky(latent=16, rounds=3, seed=0)
    model_sgs = copy.deepcopy(model)
    t0 = time.perf_counter()
    h0 = train_neural_ic(model, mats, steps=0, init_steps=20 if quick else 200, progress=False)
    t1 = time.perf_counter()
    model_init = copy.deepcopy(model)
    h1 = train_neural_ic(model, mats, steps=20 if quick else 200, init_steps=0, progress=False)
    t2 = time.perf_counter()
    info = {
        "train_matrices": len(mats),
        "train_unknowns": [int(min(A.shape[0] for A in mats)), int(max(A.shape[0] for A in mats))],
        "ic0_fit_seconds": t1 - t0,
        "pcg_proxy_seconds": t2 - t1,
        "ic0_fit_loss_final": h0["init_loss"][-1],
        "pcg_proxy_loss_first": h1["loss"][0],
        "pcg_proxy_loss_final": float(np.mean(h1["loss"][-10:])),
    }
    namg = NeuralAMG(latent=16, rounds=3, seed=0, levels=NAMG_LEVELS)
    amg_init = copy.deepcopy(namg)
    t3 = time.perf_counter()
    mats_amg = fem_training_matrices(8 if quick else NAMG_MATRICES, sizes=NAMG_SIZES, seed=0)
    h2 = train_neural_amg(
        namg,
        mats_amg,
        steps=10 if quick else NAMG_STEPS,
        cycles=NAMG_CYCLES,
        shared=NAMG_SHARED,
        progress=False,
    )
    info.update(
        namg_matrices=len(mats_amg),
        namg_unknowns=[
            int(min(A.shape[0] for A in mats_amg)),
            int(max(A.shape[0] for A in mats_amg)),
        ],
        namg_seconds=time.perf_counter() - t3,
        namg_loss_first=float(np.mean(h2["loss"][:10])),
        namg_loss_final=float(np.mean(h2["loss"][-10:])),
        namg_levels=NAMG_LEVELS,
        namg_shared_loss=NAMG_SHARED,
    )
    guarded = copy.deepcopy(namg)
    guarded.guard = True
    models = {"nic_sgs": model_sgs, "nic_init": model_init, "nic": model}
    return {**models, "amg_init": amg_init, "namg_raw": namg, "namg": guarded}, info


SEQUENCE_NOTE = (
    "`pdesurrogates.solvers.solve_sequence`, rtol 1e-6: `_reuse` / `namg_keep` keep the "
    "preconditioner while it converges within 1.5x the iterations of the system it was built "
    "for and until the iterations it costs beyond that count, at the measured time per "
    "iteration, add up to its setup time; then rebuild (`namg_keep` by `update()`, reusing "
    "the aggregates). `setups` counts the builds. Each solver runs the whole sequence "
    f"{SEQUENCE_ROUNDS} times, interleaved with the others; the row is its median round by "
    "`cpu_s`, the process CPU time of setups and solves (the ratios `cpu_vs_*` use it: "
    "unlike wall time it does not grow with the load of the shared machine); `setup_s`, "
    "`solve_s`, `total_s` are that round's wall times.\n\n"
)


def sequence(models, m: int, quick: bool):
    """The 20-matrix sequence through the library's one rule (``solve_sequence``)."""
    mesh = fem_mesh(m, seed=7)
    systems = fem_sequence(mesh, 6 if quick else 20, sigma=1.5, seed=7)
    rng = np.random.default_rng(0)
    pairs = [(s.A, rng.normal(size=s.A.shape[0])) for s in systems]

    def updating(model):
        """Set-up that reuses the previous hierarchy's pattern work (``update()``)."""
        held = [None]

        def setup(A):
            held[0] = model.precondition(A) if held[0] is None else held[0].update(A)
            return held[0].aspreconditioner()

        return setup

    namg = models["namg"]

    def setups():  # name: (set-up, reuse); fresh closures for every round
        return {
            "ic0": (setup_of("ic0"), False),
            "sa": (setup_of("sa"), False),
            "sa_reuse": (setup_of("sa"), True),
            "nic": (updating(models["nic"]), False),
            "namg_update": (updating(namg), False),
            "namg_keep": (updating(namg), True),
        }

    runs: dict[str, list] = {name: [] for name in setups()}
    for _ in range(SEQUENCE_ROUNDS):  # interleaved rounds: load drifts hit every solver
        for name, (setup, reuse) in setups().items():
            t0 = time.process_time()
            out = solve_sequence(pairs, setup, reuse=reuse, rtol=RTOL, maxiter=MAXITER)
            runs[name].append((time.process_time() - t0, out))
    rows = []
    for name, done in runs.items():
        cpu, out = sorted(done, key=lambda d: d[0])[len(done) // 2]  # the median round
        rows.append(
            {
                "solver": name,
                "m": m,
                "n": systems[0].A.shape[0],
                "steps": len(systems),
                "iters_total": sum(r["iterations"] for r in out),
                "iters_max": max(r["iterations"] for r in out),
                "setups": sum(r["rebuilt"] for r in out),
                "setup_s": sum(r["setup_s"] for r in out),
                "solve_s": sum(r["solve_s"] for r in out),
                "total_s": sum(r["total_s"] for r in out),
                "cpu_s": cpu,
                "all_converged": all(r["converged"] for r in out),
            }
        )
    sa_cpu = next(r["cpu_s"] for r in rows if r["solver"] == "sa")
    best_sa = min(r["cpu_s"] for r in rows if r["solver"].startswith("sa"))
    best_namg = min(r["cpu_s"] for r in rows if r["solver"].startswith("namg"))
    for r in rows:
        r["cpu_vs_sa"] = r["cpu_s"] / sa_cpu
        r["cpu_vs_best_sa"] = r["cpu_s"] / best_sa
        r["best_namg_vs_best_sa"] = best_namg / best_sa
    return rows


def solve_rows(mats, models, workdir: Path, memory_for, log) -> list[dict]:
    """Every solver on every matrix (timed here), then its memory in fresh processes."""
    rows = []
    rng = np.random.default_rng(0)
    for name, group, A in mats:
        b = rng.normal(size=A.shape[0])
        res = {}
        for sname in SOLVERS:
            it, tset, tsol, rel = run_pcg(A, b, setup_of(sname, models.get(sname)))
            res[sname] = it, tset + tsol
            rows.append(
                {
                    "matrix": name,
                    "group": group,
                    "n": A.shape[0],
                    "nnz_per_row": A.nnz / A.shape[0],
                    "solver": sname,
                    "iters": it,
                    "setup_s": tset,
                    "solve_s": tsol,
                    "total_s": tset + tsol,
                    "rel_residual": rel,
                }
            )
        mem = measure_memory(name, A, b, models, workdir) if name in memory_for else {}
        for r in rows[-len(res) :]:
            r["iters_vs_sa"] = r["iters"] / max(res["sa"][0], 1)
            r["total_vs_sa"] = r["total_s"] / res["sa"][1]
            r["iters_vs_ic0"] = r["iters"] / max(res["ic0"][0], 1)
            m = mem.get(r["solver"])
            if m is not None:
                r["mem_mib"], r["rss_mib"] = m["delta_mib"], m["peak_mib"]
                r["mem_worker_iters"] = m["iters"]  # the fresh process ran the same solve
        log(f"{name}: " + ", ".join(f"{k} {v[0]}" for k, v in res.items()))
    return rows


def summarise(mats, rows) -> list[dict]:
    summary = []
    for name, _group, _ in mats:
        by = {r["solver"]: r for r in rows if r["matrix"] == name}
        nic, namg, sa = by["nic"], by["namg"], by["sa"]
        summary.append(
            {
                "matrix": name,
                "n": nic["n"],
                **{f"it {s}": by[s]["iters"] for s in SOLVERS},
                **{f"t {s}": by[s]["total_s"] for s in SOLVERS if s != "cg"},
                "nic/sa it": nic["iters_vs_sa"],
                "nic/ic0 it": nic["iters_vs_ic0"],
                "nic_init/nic it": by["nic_init"]["iters"] / max(nic["iters"], 1),
                "nic/sa t": nic["total_vs_sa"],
                "mem nic MiB": nic.get("mem_mib"),
                "mem sa MiB": by["sa"].get("mem_mib"),
                "<=1.5x SA it": "met" if nic["iters_vs_sa"] <= 1.5 else "missed",
                "namg/sa it": namg["iters_vs_sa"],
                "amg_init/namg_raw it": by["amg_init"]["iters"] / max(by["namg_raw"]["iters"], 1),
                "amg_init/namg it": by["amg_init"]["iters"] / max(namg["iters"], 1),
                "namg/amg_init t": namg["total_s"] / by["amg_init"]["total_s"],
                "namg/sa t": namg["total_vs_sa"],
                "mem namg MiB": namg.get("mem_mib"),
                "namg <=1.5x SA it": "met" if namg["iters"] <= 1.5 * sa["iters"] else "missed",
            }
        )
    return summary


MEMORY_NOTE = (
    "mem_mib: peak RSS of setup + solve in a fresh process (VmHWM, reset after loading) "
    "above the RSS after imports, matrix and model load; rss_mib: that process's absolute "
    "peak during setup + solve. Measured with --only memory: the nic row with the network "
    "as constructed (same architecture, factor pattern and per-iteration cost as the "
    "trained one; its iterations are in mem_worker_iters)"
)
ROW_COLUMNS = ["matrix", "solver", "iters", "setup_s", "solve_s", "total_s"]
MEMORY_MATRICES = (
    "fem_poisson_square_m128",
    "fem_lognormal_square_m128",
    "fem_anisotropic_square_m128",
    "fem_elasticity_square_m128",
)


def render(data) -> str:
    return "".join(
        [
            "Iterations (`it`) and total setup + solve seconds (`t`) to rtol 1e-6 (scipy cg, "
            "white-noise b, x0 = 0). `nic`: the learned incomplete Cholesky; `nic_init`: its "
            "initialisation, the same network fitted to IC(0) only; `nic_sgs`: the network as "
            "constructed (zero heads = symmetric Gauss-Seidel); `ic0`: our IC(0); `sa`: pyamg "
            "smoothed aggregation (defaults); `namg_raw`: the learned AMG (NeuralAMG, trained "
            "here); `namg`: the same network with `guard=True` (it also builds the plain "
            "hierarchy on the same aggregates and keeps the cycle of smaller estimated "
            "convergence factor, a few power-iteration cycles each); "
            "`amg_init`: its initialisation, the network as constructed = our own "
            "smoothed aggregation (SmoothedAggregation). `mem`: peak RSS of setup + solve in "
            "a fresh process per solver, above the RSS after imports and loading (absolute "
            "peaks in the table below), for cg, ic0, sa, nic and namg on the largest square "
            "meshes; blank: "
            f"not measured. {data['memory']}. Skipped (not SPD): "
            f"{', '.join(data['skipped_not_spd']) or 'none'}.\n\n",
            markdown_table(data["summary"]),
            "\n## Setup, solve and memory per solver\n\n",
            markdown_table(
                data["rows"],
                [*ROW_COLUMNS, "mem_mib", "rss_mib", "mem_worker_iters"],
            ),
            "\n## 20-matrix sequence on one pattern (drifting lognormal coefficient)\n\n",
            f"Command: `{data['sequence_command']}`\n\n" if "sequence_command" in data else "",
            SEQUENCE_NOTE,
            markdown_table(data["sequence"]),
            "\n## Training\n\n",
            markdown_table([data["train"]]),
        ]
    )


def _stored() -> tuple[dict, str]:
    """The stored results (without their header) and the command that made them."""
    import json

    from _common import RESULTS

    data = json.loads((RESULTS / "algebraic.json").read_text())
    command = data.pop("command")
    for key in ("benchmark", "environment"):
        data.pop(key, None)
    return data, command


def sequence_only(log, quick: bool) -> None:
    """Train the models, rerun the two sequences and merge them into the stored results."""
    data, command = _stored()
    models, _ = train(quick)
    log("trained")
    sizes = (16,) if quick else (32, 128)
    data["sequence"] = [r for m in sizes for r in sequence(models, m, quick)]
    data["sequence_command"] = " ".join(["python", "bench_algebraic.py", *sys.argv[1:]])
    write_results("algebraic", data, render(data), command=command)
    print(markdown_table(data["sequence"]))


def memory_only(log) -> None:
    """Measure peak memory (fresh processes) and merge it into the stored results."""
    data, command = _stored()
    mats, _ = test_matrices((64, 128))
    rng = np.random.default_rng(0)
    bs = {name: rng.normal(size=A.shape[0]) for name, _, A in mats}  # the same b as the run
    model = NeuralIncompleteCholesky(latent=16, rounds=3, seed=0)
    with tempfile.TemporaryDirectory(prefix="bench_algebraic_") as tmp:
        workdir = Path(tmp)
        pdesurrogates.save(model, workdir / "nic")
        pdesurrogates.save(NeuralAMG(latent=16, rounds=3, seed=0), workdir / "namg")
        for name, _, A in mats:
            for r in data["rows"]:
                if r["matrix"] == name:
                    for k in ("mem_mib", "rss_mib", "mem_worker_iters"):
                        r.pop(k, None)
            if name not in MEMORY_MATRICES:
                continue
            mem = measure_memory(name, A, bs[name], {}, workdir)
            for r in data["rows"]:
                m = mem.get(r["solver"]) if r["matrix"] == name else None
                if m is not None:
                    r["mem_mib"], r["rss_mib"] = m["delta_mib"], m["peak_mib"]
                    r["mem_worker_iters"] = m["iters"]
            log(f"memory {name}: " + ", ".join(f"{k} {v['delta_mib']:.1f}" for k, v in mem.items()))
    data["summary"] = summarise(mats, data["rows"])
    data["memory"] = MEMORY_NOTE
    data["memory_command"] = " ".join(["python", "bench_algebraic.py", *sys.argv[1:]])
    write_results("algebraic", data, render(data), command=command)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--memory-worker":
        memory_worker(*sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a short sanity run")
    ap.add_argument(
        "--only",
        choices=("all", "memory", "sequence"),
        default="all",
        help="'memory' / 'sequence': measure only the peak memory / the two sequences and "
        "merge them into the stored results",
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    t_start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", flush=True)

    if args.only == "memory":
        memory_only(log)
        return
    if args.only == "sequence":
        sequence_only(log, args.quick)
        return

    models, train_info = train(args.quick)
    log(f"trained: {train_info}")
    sizes = (24,) if args.quick else (64, 128)
    mats, skipped = test_matrices(sizes)
    memory_for = set(MEMORY_MATRICES) if not args.quick else {mats[0][0]}
    with tempfile.TemporaryDirectory(prefix="bench_algebraic_") as tmp:
        workdir = Path(tmp)
        for name, model in models.items():
            pdesurrogates.save(model, workdir / name)
        rows = solve_rows(mats, models, workdir, memory_for, log)
    seq = [r for m in ((16,) if args.quick else (32, 128)) for r in sequence(models, m, args.quick)]
    summary = summarise(mats, rows)
    data = {
        "rtol": RTOL,
        "train": train_info,
        "skipped_not_spd": skipped,
        "memory": MEMORY_NOTE.split(". Measured with")[0],
        "rows": rows,
        "sequence": seq,
        "summary": summary,
        "wall_s": time.perf_counter() - t_start,
    }
    write_results("algebraic", data, render(data))
    print(render(data))


if __name__ == "__main__":
    main()
