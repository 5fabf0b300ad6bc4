"""The learned incomplete Cholesky (NeuralIF-style) against CG, IC(0)-PCG and pyamg SA-PCG.

One process, every solver side by side on the same systems, scipy ``cg`` at rtol 1e-6
(relative residual), ``x0 = 0``, a white-noise right-hand side, at most 5000 iterations:

* ``cg``: no preconditioner; ``ic0``: our IC(0) (``IncompleteCholesky``);
  ``sa``: ``pyamg.smoothed_aggregation_solver(A).aspreconditioner()`` (defaults);
  ``nic``: ``NeuralIncompleteCholesky`` trained here on our FEM families;
  ``nic_init``: the same network after its first training phase only (fitted to IC(0)),
  the learned method's own initialisation.
* Unseen FEM matrices: P1 on new random meshes, families poisson / lognormal (sigma 2.5,
  beyond the training range 0.5-2) / anisotropic / plane-strain elasticity, unit square
  and L-shape, m = 64, 128 (the training meshes have m = 10-22, i.e. 80-900 unknowns).
* pyamg's example matrices (``pyamg.gallery.load_example``), never seen in training;
  those that are not SPD (``unit_square`` is singular) are listed and skipped.
* A 20-matrix sequence on one mesh (m = 32 and m = 128) whose lognormal coefficient drifts: total
  time per solver; SA either rebuilds its hierarchy every step (``sa``) or keeps it while
  it converges in at most twice the iterations it took when new (``sa_reuse``); ``nic``
  reuses the pattern via ``update()``.

Reported: iterations, setup and solve wall time, peak RSS increase (MiB), and ratios
ours/theirs. Single-threaded on a shared 2-core machine: iterations are exact, times are
indicative (about +-30 %).

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_algebraic.py`` (``--quick`` for a short
sanity run).
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import pyamg
import scipy.sparse as sp
import scipy.sparse.linalg as sla
import torch

from pdesurrogates.solvers import IncompleteCholesky
from pdesurrogates.solvers.reference import FEM_FAMILIES, fem_family, fem_mesh, fem_sequence
from pdesurrogates.surrogates import NeuralIncompleteCholesky
from pdesurrogates.training import fem_training_matrices, train_neural_ic

from _common import PeakMemory, markdown_table, write_results

RTOL = 1e-6
MAXITER = 5000
PYAMG_EXAMPLES = (
    "airfoil",
    "bar",
    "knot",
    "local_disc_galerkin_diffusion",
    "unit_cube",
    "unit_square",
)


def run_pcg(A, b, setup):
    """``(iterations, setup s, solve s, relative residual, peak MiB)``."""
    with PeakMemory() as mem:
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
    return count[0], t1 - t0, t2 - t1, rel, mem.peak_mb


def solvers(model, model_init):
    return {
        "cg": None,
        "ic0": lambda A: IncompleteCholesky(A).aspreconditioner(),
        "sa": lambda A: pyamg.smoothed_aggregation_solver(A).aspreconditioner(),
        "nic_init": lambda A: model_init.precondition(A).aspreconditioner(),
        "nic": lambda A: model.precondition(A).aspreconditioner(),
    }


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


def test_matrices(quick: bool):
    sizes = (32,) if quick else (64, 128)
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
    return model, model_init, info


def sequence(model, m: int, quick: bool):
    mesh = fem_mesh(m, seed=7)
    systems = fem_sequence(mesh, 6 if quick else 20, sigma=1.5, seed=7)
    rng = np.random.default_rng(0)
    bs = [rng.normal(size=s.A.shape[0]) for s in systems]
    rows = []
    sa = {"ml": None, "base": None, "last": None}
    nic_p = [None]

    def sa_reuse(A):
        # keep the hierarchy while it converges in at most 2x the iterations it took when new
        if sa["ml"] is None or sa["last"] > 2 * sa["base"]:
            sa["ml"], sa["base"] = pyamg.smoothed_aggregation_solver(A), None
        return sa["ml"].aspreconditioner()

    def nic_update(A):
        nic_p[0] = model.precondition(A) if nic_p[0] is None else nic_p[0].update(A)
        return nic_p[0].aspreconditioner()

    setups = {
        "ic0": lambda A: IncompleteCholesky(A).aspreconditioner(),
        "sa": lambda A: pyamg.smoothed_aggregation_solver(A).aspreconditioner(),
        "sa_reuse": sa_reuse,
        "nic": nic_update,
    }
    for name, setup in setups.items():
        its, tset, tsol, peak = [], 0.0, 0.0, 0.0
        sa.update(ml=None, base=None, last=None)
        for s, b in zip(systems, bs, strict=True):
            it, a, c, _rel, pk = run_pcg(s.A, b, setup)
            sa["last"] = it
            sa["base"] = it if sa["base"] is None else sa["base"]
            its.append(it)
            tset, tsol, peak = tset + a, tsol + c, max(peak, pk)
        rows.append(
            {
                "solver": name,
                "m": m,
                "n": systems[0].A.shape[0],
                "steps": len(systems),
                "iters_total": int(sum(its)),
                "iters_max": int(max(its)),
                "setup_s": tset,
                "solve_s": tsol,
                "total_s": tset + tsol,
                "peak_mb": peak,
            }
        )
    sa_total = next(r["total_s"] for r in rows if r["solver"] == "sa")
    best_sa = min(r["total_s"] for r in rows if r["solver"].startswith("sa"))
    for r in rows:
        r["total_vs_sa"] = r["total_s"] / sa_total
        r["total_vs_best_sa"] = r["total_s"] / best_sa
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a short sanity run")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, model_init, train_info = train(args.quick)
    mats, skipped = test_matrices(args.quick)
    rows = []
    rng = np.random.default_rng(0)
    for name, group, A in mats:
        b = rng.normal(size=A.shape[0])
        res = {}
        for sname, setup in solvers(model, model_init).items():
            it, tset, tsol, rel, peak = run_pcg(A, b, setup)
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
                    "peak_mb": peak,
                }
            )
        for r in rows[-len(res) :]:
            r["iters_vs_sa"] = r["iters"] / max(res["sa"][0], 1)
            r["total_vs_sa"] = r["total_s"] / res["sa"][1]
            r["iters_vs_ic0"] = r["iters"] / max(res["ic0"][0], 1)
    seq = [r for m in ((16,) if args.quick else (32, 128)) for r in sequence(model, m, args.quick)]
    summary = []
    for name, _group, _ in mats:
        by = {r["solver"]: r for r in rows if r["matrix"] == name}
        summary.append(
            {
                "matrix": name,
                "n": by["nic"]["n"],
                "cg": by["cg"]["iters"],
                "ic0": by["ic0"]["iters"],
                "sa": by["sa"]["iters"],
                "nic_init": by["nic_init"]["iters"],
                "nic": by["nic"]["iters"],
                "nic/sa iters": by["nic"]["iters_vs_sa"],
                "nic/ic0 iters": by["nic"]["iters_vs_ic0"],
                "nic/sa total": by["nic"]["total_vs_sa"],
                "target <=1.5x SA": "met" if by["nic"]["iters_vs_sa"] <= 1.5 else "missed",
            }
        )
    data = {
        "rtol": RTOL,
        "train": train_info,
        "skipped_not_spd": skipped,
        "rows": rows,
        "sequence": seq,
        "summary": summary,
    }
    cols = ["matrix", "n", "cg", "ic0", "sa", "nic_init", "nic", "nic/sa iters", "nic/ic0 iters"]
    md = [
        "Iterations to rtol 1e-6 (scipy cg, white-noise b). `nic`: the learned incomplete "
        "Cholesky; `nic_init`: its IC(0)-fitted initialisation. Skipped (not SPD): "
        f"{', '.join(skipped) or 'none'}.\n\n",
        markdown_table(summary, [*cols, "nic/sa total", "target <=1.5x SA"]),
        "\n## Setup, solve and memory per solver\n\n",
        markdown_table(
            rows,
            ["matrix", "solver", "iters", "setup_s", "solve_s", "total_s", "peak_mb"],
        ),
        "\n## 20-matrix sequence on one pattern (drifting lognormal coefficient)\n\n",
        markdown_table(seq),
        "\n## Training\n\n",
        markdown_table([train_info]),
    ]
    write_results("algebraic", data, "".join(md))
    print("".join(md))


if __name__ == "__main__":
    main()
