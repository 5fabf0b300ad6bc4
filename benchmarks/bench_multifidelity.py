"""Multi-fidelity benchmark: MF-DNN and co-kriging against SMT's MFK and single-fidelity baselines.

Methods (each (method, problem) pair runs in its own worker process, so peak memory is
measured from a clean start, time limits can be enforced and an out-of-memory failure is
recorded instead of killing the run; workers share a 10 GiB address-space limit):

* ``mfdnn``     — :func:`pdesurrogates.training.fit_multifidelity_net` (validated ensemble;
  in 20–100 D the low-fidelity data are screened for interacting input pairs, the NN_L form
  (MLP, additive, additive + MLP, additive + pair nets) is chosen on held-out low-fidelity
  points, NN_L is early-stopped on them, and the correction's L2 weight is chosen on
  held-out high-fidelity points);
* ``cokriging`` — :class:`pdesurrogates.surrogates.CoKrigingGP` (AR(1)) with its default
  ``kernel="auto"``: ARD RBF up to 10 inputs (SGPR low level above 2,000 points), above that
  the second-order ANOVA kernel on the input pairs screened from the low-fidelity data (a
  sparse additive + pair GP with inducing points per component at the low level, an exact
  ANOVA GP for the discrepancy);
* ``cokriging_rbf`` — the same with ``kernel="rbf"`` (the only kernel before the ANOVA one;
  on the 20–100-D cases, results from before the ``kernel`` option are shown under this
  name);
* ``smt_mfk``   — SMT's ``MFK`` (external baseline; recursive AR(1) co-kriging);
* ``hf_gp``     — an exact gpytorch GP (ARD RBF) on the high-fidelity points only;
* ``constant``  — the mean of the high-fidelity training outputs.

Problems: Forrester 11/4 and 21/4 (high-fidelity points {0, 0.4, 0.6, 1}), the nonlinear
sin pair 50/13 (every 4th point), and the quartic pairs at 20, 32 and 100 D with 500/50 and
5,000/500 points (x ~ U(−3, 3)^d, the first n_hi low-fidelity points are the high-fidelity
ones). Error: relative L2 of the high-fidelity prediction on a test set (1,000 grid points
in 1-D, 2,000 uniform points otherwise); NRMSE = RMSE / std(y_test) is also given, since
relative L2 is flattered by the large mean of the quartic pairs.

Run: ``python benchmarks/bench_multifidelity.py`` (``--quick`` for a seconds-long check;
``--only highdim`` for the 20–100-D cases).
``--methods`` and ``--cases`` run a subset; with ``--merge`` the other (case, method) results
of the existing JSON are kept, and the table says which run each row comes from.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PeakMemory, markdown_table, write_results

MEM_LIMIT = 10 * 2**30
METHODS = ["mfdnn", "cokriging", "cokriging_rbf", "smt_mfk", "hf_gp", "constant"]


def problem_data(case: str):
    from pdesurrogates.solvers.reference import forrester, highdim, nonlinear_sin

    if case.startswith("forrester"):
        n_lo = int(case.split("_")[1])
        p = forrester()
        x_lo = np.linspace(0, 1, n_lo)[:, None]
        x_hi = np.array([[0.0], [0.4], [0.6], [1.0]])
        xt = np.linspace(0, 1, 1000)[:, None]
    elif case == "nonlinear_50_13":
        p = nonlinear_sin()
        x_lo = np.linspace(0, 1, 50)[:, None]
        x_hi = x_lo[::4]
        xt = np.linspace(0, 1, 1000)[:, None]
    else:  # highdim{d}_{nlo}_{nhi}
        name, n_lo, n_hi = case.split("_")
        p = highdim(int(name[7:]))
        x_lo = p.sample(int(n_lo), seed=0, method="uniform")
        x_hi = x_lo[: int(n_hi)]
        xt = p.sample(2000, seed=12345, method="uniform")
    return p, x_lo, p.low(x_lo), x_hi, p.high(x_hi), xt, p.high(xt)


def run_method(method: str, case: str, quick: bool) -> dict:
    import torch

    torch.set_num_threads(1)
    p, x_lo, y_lo, x_hi, y_hi, xt, yt = problem_data(case)
    d = p.dim
    extra = {}
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        if method == "constant":
            pred = np.full(len(xt), y_hi.mean())
        elif method == "mfdnn":
            from pdesurrogates.training import fit_multifidelity_net

            if d == 1:
                fit = fit_multifidelity_net(
                    [x_lo, x_hi],
                    [y_lo, y_hi],
                    bounds=p.bounds,
                    n_members=2 if quick else 6,
                    keep=1 if quick else 3,
                    fit_kwargs={"adam_steps": 200} if quick else {},
                )
            else:
                # interacting pairs screened and the NN_L form chosen by held-out
                # low-fidelity error (low_arch="auto"); NN_L early-stopped on a held-out
                # tenth of the low-fidelity points; the correction's L2 weight chosen on a
                # held-out fifth of the high-fidelity ones
                fit = fit_multifidelity_net(
                    [x_lo, x_hi],
                    [y_lo, y_hi],
                    bounds=p.bounds,
                    n_members=2,
                    keep=2,
                    net_kwargs={"low_width": 32, "activation": "silu"},
                    fit_kwargs={
                        "adam_steps": 100 if quick else 500,
                        "lbfgs_steps": 20 if quick else 100,
                        "lm_steps": 0,
                        "joint": False,
                        "lr": 1e-2,
                        "low_holdout": 0.1,
                    },
                )
            pred = fit.predict(xt).mean
        elif method in ("cokriging", "cokriging_rbf"):
            from pdesurrogates.surrogates import CoKrigingGP

            kernel = "rbf" if method == "cokriging_rbf" else "auto"
            gp = CoKrigingGP(in_dim=d, n_restarts=4 if d == 1 else 2, kernel=kernel)
            gp.fit(x_lo, y_lo, x_hi, y_hi, bounds=p.bounds)
            pred = gp.predict(xt).mean
            extra = {"kernel": kernel, "pairs": None if gp.pairs is None else len(gp.pairs)}
        elif method == "smt_mfk":
            from smt.applications.mfk import MFK

            opts = {"theta0": [1.0] * d, "print_global": False}
            if d > 1:
                opts["n_start"] = 1
            mfk = MFK(**opts)
            mfk.set_training_values(x_lo, y_lo[:, None], name=0)
            mfk.set_training_values(x_hi, y_hi[:, None])
            mfk.train()
            pred = mfk.predict_values(xt)[:, 0]
        elif method == "hf_gp":
            pred = _hf_gp(x_hi, y_hi, p.bounds, xt)
        else:
            raise ValueError(f"unknown method {method!r}")
        seconds = time.perf_counter() - t0
    err = float(np.linalg.norm(pred - yt) / np.linalg.norm(yt))
    nrmse = float(np.sqrt(np.mean((pred - yt) ** 2)) / np.std(yt))
    return {"rel_l2": err, "nrmse": nrmse, "seconds": seconds, "peak_mb": mem.peak_mb, **extra}


def _hf_gp(x, y, bounds, xt):
    """Exact GP (ARD RBF, constant mean) on the high-fidelity data only (float64)."""
    import torch

    from pdesurrogates.surrogates._cokriging import _import_gpytorch

    g = _import_gpytorch()
    lo, span = bounds[:, 0], bounds[:, 1] - bounds[:, 0]
    z = torch.as_tensor((x - lo) / span)
    mu, sd = y.mean(), y.std()
    t = torch.as_tensor((y - mu) / sd)

    class GP(g.models.ExactGP):
        def __init__(self):
            lik = g.likelihoods.GaussianLikelihood(
                noise_constraint=g.constraints.Interval(1e-10, 1.0)
            )
            super().__init__(z, t, lik)
            self.mean_module = g.means.ConstantMean()
            self.covar_module = g.kernels.ScaleKernel(g.kernels.RBFKernel(ard_num_dims=z.shape[1]))

        def forward(self, a):
            return g.distributions.MultivariateNormal(self.mean_module(a), self.covar_module(a))

    gp = GP().double()
    gp.covar_module.base_kernel.lengthscale = 0.3 * np.sqrt(z.shape[1])
    gp.likelihood.noise = 1e-6
    mll = g.mlls.ExactMarginalLogLikelihood(gp.likelihood, gp)
    gp.train()
    opt = torch.optim.LBFGS(gp.parameters(), max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = -mll(gp(z), t)
        loss.backward()
        return loss

    with g.settings.max_cholesky_size(10**6), g.settings.cholesky_jitter(double_value=1e-8):
        opt.step(closure)
        gp.eval()
        with torch.no_grad():
            out = gp(torch.as_tensor((xt - lo) / span)).mean.numpy()
    return out * sd + mu


def _mfk_reference(case: str, by: dict) -> tuple[dict, str]:
    """SMT MFK's result on ``case``, or on the largest case of that dimension it managed."""
    own = by.get((case, "smt_mfk"), {})
    if own.get("status") == "ok" or not case.startswith("highdim"):
        return own, case
    dim = case.split("_")[0]
    done = [
        (int(c.split("_")[1]), c)
        for (c, m), r in by.items()
        if m == "smt_mfk" and r.get("status") == "ok" and c.split("_")[0] == dim
    ]
    if not done:
        return own, case
    ref = max(done)[1]
    return by[(ref, "smt_mfk")], ref


def _baseline_ratios(r: dict, by: dict, case: str) -> dict:
    """``err/const``, ``err/HF GP`` and the co-kriging kernel's pair count of result ``r``."""
    out = {}
    for name, base in (("err/const", "constant"), ("err/HF GP", "hf_gp")):
        b = by.get((case, base), {})
        if b.get("status") == "ok" and r["method"] != base:
            out[name] = r["rel_l2"] / b["rel_l2"]
    if r.get("pairs") is not None:
        out["pairs"] = r["pairs"]
    return out


def _relabel(r: dict) -> dict:
    """A 20–100-D co-kriging result from before the ``kernel`` option used the RBF kernel."""
    if r["method"] == "cokriging" and r["case"].startswith("highdim") and "kernel" not in r:
        r.update(method="cokriging_rbf", kernel="rbf")
    return r


def worker_main(method: str, case: str, quick: bool) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEM_LIMIT, MEM_LIMIT))
    try:
        out = run_method(method, case, quick)
        out["status"] = "ok"
    except MemoryError:
        out = {"status": f"OOM (>{MEM_LIMIT / 2**30:.0f} GiB address space)"}
    except RuntimeError as exc:
        if "allocate" in str(exc) or "memory" in str(exc).lower():
            out = {"status": f"OOM (>{MEM_LIMIT / 2**30:.0f} GiB address space)"}
        else:
            out = {"status": f"error: {str(exc)[:200]}"}
    print("RESULT " + json.dumps(out), flush=True)


def launch(method: str, case: str, quick: bool, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--worker", method, case] + (["--quick"] if quick else [])
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        res = {"status": f"timeout (>{timeout:.0f} s)"}
    else:
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if lines:
            res = json.loads(lines[-1][7:])
        elif proc.returncode < 0 or "MemoryError" in proc.stderr:
            res = {"status": f"killed/OOM (exit {proc.returncode})"}
        else:
            res = {"status": f"error: {proc.stderr.strip().splitlines()[-1][:200]}"}
    res.update(method=method, case=case, wall=time.perf_counter() - t0)
    print(f"{case:22s} {method:10s} {_fmt(res)}", flush=True)
    return res


def _fmt(r):
    if r.get("status") != "ok":
        return r.get("status", "?")
    return (
        f"rel_l2={r['rel_l2']:.3e} nrmse={r['nrmse']:.3e} t={r['seconds']:.1f}s "
        f"mem={r['peak_mb']:.0f}MB"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny settings, seconds-long run")
    ap.add_argument("--worker", nargs=2, metavar=("METHOD", "CASE"), help=argparse.SUPPRESS)
    ap.add_argument("--jobs", type=int, default=2, help="worker processes at once")
    ap.add_argument("--cases", default=None, help="comma-separated subset of cases")
    ap.add_argument("--methods", default=None, help="comma-separated subset of methods")
    ap.add_argument("--only", choices=["highdim"], default=None, help="run only the 20-100-D cases")
    ap.add_argument(
        "--merge",
        action="store_true",
        help="keep the (case, method) results of the existing JSON that this run does not redo",
    )
    ap.add_argument(
        "--mfk-timeout",
        type=float,
        default=None,
        help="time limit of every SMT MFK fit in seconds (default 360, 180 at 5,000 points)",
    )
    ap.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="time limit of every fit of our methods in seconds (default 1500, 2400 at 5,000)",
    )
    args = ap.parse_args()
    if args.worker:
        worker_main(*args.worker, args.quick)
        return
    full = ["forrester_11", "forrester_21", "nonlinear_50_13"]
    for d in (20, 32, 100):
        full += [f"highdim{d}_500_50", f"highdim{d}_5000_500"]
    cases = ["forrester_11", "highdim20_200_20"] if args.quick else list(full)
    if args.only == "highdim":
        cases = [c for c in cases if c.startswith("highdim")]
    if args.cases:
        cases = args.cases.split(",")
    methods = args.methods.split(",") if args.methods else METHODS
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        ap.error(f"unknown methods {unknown}; choose from {METHODS}")
    jobs = []
    for case in cases:
        big = "5000" in case
        for m in methods:
            if m == "smt_mfk":
                timeout = 30 if args.quick else (180 if big else 360)
                timeout = args.mfk_timeout or timeout
            else:
                timeout = args.timeout or (60 if args.quick else (2400 if big else 1500))
            jobs.append((m, case, timeout))
    # the slowest jobs first, so that two workers finish together
    jobs.sort(key=lambda j: -j[2])
    command = " ".join(["python", *sys.argv])
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda j: launch(j[0], j[1], args.quick, j[2]), jobs))
    for r in results:
        r["run"] = f"{command} ({stamp})"
    if args.merge:
        old_path = Path(__file__).resolve().parent / "results" / "multifidelity.json"
        old = json.loads(old_path.read_text())
        old_run = f"{old['command']} ({old['environment']['date']})"
        done = {(r["case"], r["method"]) for r in results}
        kept = [_relabel(dict(r, run=r.get("run", old_run))) for r in old["results"]]
        results = [r for r in kept if (r["case"], r["method"]) not in done] + results
        present = {r["case"] for r in results}
        cases = [c for c in full if c in present] + sorted(present - set(full))
    runs = sorted({r["run"] for r in results})
    rows = []
    by = {(r["case"], r["method"]): r for r in results}
    for case in cases:
        mfk, mfk_case = _mfk_reference(case, by)
        for m in METHODS:
            r = by.get((case, m))
            if r is None:
                continue
            row = {"case": case, "method": m, "status": r["status"]}
            if len(runs) > 1:
                row["run"] = runs.index(r["run"]) + 1
            if r["status"] == "ok":
                row.update(
                    rel_l2=r["rel_l2"], nrmse=r["nrmse"], fit_s=r["seconds"], peak_mb=r["peak_mb"]
                )
                if mfk.get("status") == "ok" and m != "smt_mfk":
                    row["err/MFK"] = r["rel_l2"] / mfk["rel_l2"]
                    if mfk_case != case:
                        row["MFK on"] = mfk_case
                row.update(_baseline_ratios(r, by, case))
            rows.append(row)
    md = (
        "Relative L2 error of the high-fidelity prediction on the test set, NRMSE = RMSE/std,"
        " fit+predict time and peak RSS increase of a fresh worker process (2 workers ran at"
        " once on 2 shared cores, one thread each; times are indicative). `err/MFK` is ours"
        " over SMT MFK on the same data or, where MFK failed (out of memory or time), over"
        " MFK at the largest size it managed in the same dimension (column `MFK on`)."
        " `err/const` and `err/HF GP` are the same ratio over the constant predictor and over"
        " the exact GP on the high-fidelity points only; `pairs` is the number of input pairs"
        " of the co-kriging ANOVA kernel.\n\n"
    )
    cols = ["case", "method", "status", "rel_l2", "nrmse", "err/MFK", "MFK on"]
    cols += ["err/const", "err/HF GP", "pairs", "fit_s", "peak_mb"]
    if len(runs) > 1:
        md += "Rows come from several runs (column `run`):\n\n" + "".join(
            f"{i}. `{r}`\n" for i, r in enumerate(runs, 1)
        )
        md += "\n"
        cols.insert(3, "run")
    md += markdown_table(rows, cols)
    write_results(
        "multifidelity",
        {"results": results, "rows": rows, "quick": args.quick, "runs": runs},
        md,
        command=command,
    )
    print(md)


if __name__ == "__main__":
    main()
