"""Multi-fidelity methods against emukit and SMT on the peers' own test functions.

Ours: one call of ``fit_multifidelity_levels(xs, ys, method="auto")`` (``fit_multifidelity``
for any number of levels) per problem and seed gives the ``auto`` column and the AR(1)
co-kriging, NARGP and MF-DNN candidates it fitted and scored (each with the defaults of
``method=<that method>``; MF-DNN's small-design settings up to 50 high-fidelity points).
Peers: SMT's ``MFK`` (always), emukit's linear (``GPyLinearMultiFidelityModel``) and
nonlinear (``NonLinearMultiFidelityModel``) models when emukit and GPy are installed (the
``peers`` extra), both with ARD RBF kernels in several dimensions, zero noise and 5
optimisation restarts as in emukit's examples; and the constant predictor (mean of the
high-fidelity outputs).

Problems (emukit's definitions, see ``solvers/reference/_mf_functions.py``): Forrester
12/6 (f_L = 0.5 f_H + 10 (x − 0.5) + 5), nonlinear sin 50/13 on [0, 1] and 50/14 on
[−5, 10], Currin 40/10, Park 80/20, Borehole 160/40 and Hartmann-3 80/40/20 (3 levels).
Designs: the lowest level a Latin hypercube (seeded), each higher level a random subset of
the level below (nested, HF ⊂ LF, which every method accepts). Error: relative L2 of the
highest-fidelity mean on 2,000 uniform test points (seeded), and the fraction of test points
inside the central 90 % Gaussian interval of the predictive std (``coverage90``; none for
the constant and for one-member MF-DNN fits). Seeds 0, 1, 2.

Run: ``nice python benchmarks/bench_mf_peers.py`` (``--quick``: seed 0, three small
problems). Every (problem, seed, method) result is stored in ``results/mf_peers.json`` as
it finishes and skipped on the next run (resumable); ``--redo METHOD ...`` reruns methods;
two runs with different ``--methods`` may share the file; ``--tables`` only rewrites the
tables. Seed 0 of every problem runs first.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, markdown_table, write_results

OURS = ["auto", "ar1", "nargp", "mfdnn"]  # one auto fit gives all four
PEERS = ["smt_mfk", "emukit_linear", "emukit_nargp"]
METHODS = [*OURS, *PEERS, "constant"]
# key: (problem name, factory kwargs, design sizes lowest level first)
PROBLEMS = {
    "forrester_12_6": ("forrester", {"c": 5.0}, (12, 6)),
    "nonlinear_sin_50_13": ("nonlinear_sin", {}, (50, 13)),
    "nonlinear_sin_wide_50_14": ("nonlinear_sin_wide", {}, (50, 14)),
    "currin_40_10": ("currin", {}, (40, 10)),
    "park_80_20": ("park", {}, (80, 20)),
    "borehole_160_40": ("borehole", {}, (160, 40)),
    "hartmann3_80_40_20": ("hartmann3", {}, (80, 40, 20)),
}
QUICK = ["forrester_12_6", "nonlinear_sin_50_13", "currin_40_10"]
Z90 = 1.6448536269514722


def make_problem(key: str):
    from pdesurrogates.solvers.reference import _mf_functions as mf

    name, kwargs, counts = PROBLEMS[key]
    return getattr(mf, name)(**kwargs), counts


def design(p, counts, seed: int):
    """Nested design: LHS at the lowest level, random subsets above; test points uniform."""
    rng = np.random.default_rng(seed)
    xs = [p.sample(counts[0], seed=seed, method="lhs")]
    for n in counts[1:]:
        xs.append(xs[-1][np.sort(rng.choice(len(xs[-1]), n, replace=False))])
    ys = [p(x, level) for level, x in enumerate(xs)]
    xt = p.sample(2000, seed=10_000 + seed, method="uniform")
    return xs, ys, xt, p.high(xt)


# ------------------------------------------------------------------------- ours
def fit_ours(xs, ys, bounds, seed: int, mfdnn=None):
    """The one adapter to our multi-fidelity API: ``fit_multifidelity_levels(...,
    method="auto")`` (``fit_multifidelity`` for any number of levels). Returns
    ``{method: (predict, seconds)}`` for ``auto`` and every candidate it fitted (AR(1),
    NARGP, MF-DNN), each with the library defaults of ``method=<that method>``, and the
    fit.

    ``mfdnn``: a stored MF-DNN result ``{"fold_score": ..., "row": ...}`` of an earlier
    run of the same (unchanged, seeded) MF-DNN code: only the GPs are fitted, and the
    MF-DNN takes part in the choice with its stored k-fold score through the library's
    own rule (:func:`mfdnn_score`, :func:`select_method`)."""
    from pdesurrogates.training._mf_auto import (
        cv_folds,
        fit_multifidelity_levels,
        low_fidelity_part,
        mfdnn_score,
        select_method,
    )

    t0 = time.perf_counter()
    methods = ("ar1", "nargp") if mfdnn else ("ar1", "nargp", "mfdnn")
    fit = fit_multifidelity_levels(
        list(xs), list(ys), "auto", bounds=bounds, seed=seed, methods=methods
    )
    out = {m: (c.predict, fit.seconds[m]) for m, c in fit.candidates.items()}
    out["auto"] = (fit.predict, time.perf_counter() - t0)
    choice, scores, detail = fit.method, dict(fit.scores), dict(fit.cv_detail)
    if mfdnn:
        folds = cv_folds(len(ys[-1]), seed)
        low = low_fidelity_part(fit.candidates["ar1"].model, folds)
        detail = {"mfdnn_folds": mfdnn["fold_score"], "low_part": low, "mfdnn_reused": True}
        scores["mfdnn"] = mfdnn_score(mfdnn["fold_score"], low)
        choice = select_method(scores)
        if choice != "mfdnn":
            out["auto"] = (fit.candidates[choice].predict, out["auto"][1])
    return out, {"choice": choice, "cv_scores": scores, "cv_detail": detail}


def predict_ours(predict, xt):
    pred = predict(xt)
    mean = np.asarray(pred.mean, dtype=np.float64).reshape(-1)
    try:
        std = np.asarray(pred.std, dtype=np.float64).reshape(-1)
    except Exception:  # a single deterministic member has no spread
        std = None
    return mean, std


# ------------------------------------------------------------------------- peers
def smt_mfk(xs, ys, xt):
    from smt.applications.mfk import MFK

    model = MFK(theta0=[1.0] * xs[0].shape[1], print_global=False)
    for level, (x, y) in enumerate(zip(xs[:-1], ys[:-1], strict=True)):
        model.set_training_values(x, y[:, None], name=level)
    model.set_training_values(xs[-1], ys[-1][:, None])
    model.train()
    var = np.maximum(model.predict_variances(xt)[:, 0], 0.0)
    return model.predict_values(xt)[:, 0], np.sqrt(var)


def _emukit_arrays(xs, ys):
    from emukit.multi_fidelity.convert_lists_to_array import convert_xy_lists_to_arrays

    return convert_xy_lists_to_arrays(list(xs), [y[:, None] for y in ys])


def _with_fidelity(xt, level):
    return np.concatenate([xt, np.full((len(xt), 1), float(level))], 1)


def emukit_linear(xs, ys, xt):
    import GPy
    from emukit.model_wrappers.gpy_model_wrappers import GPyMultiOutputWrapper
    from emukit.multi_fidelity.kernels import LinearMultiFidelityKernel
    from emukit.multi_fidelity.models import GPyLinearMultiFidelityModel

    d, k = xs[0].shape[1], len(xs)
    x, y = _emukit_arrays(xs, ys)
    kernel = LinearMultiFidelityKernel([GPy.kern.RBF(d, ARD=d > 1) for _ in range(k)])
    gpy = GPyLinearMultiFidelityModel(x, y, kernel, n_fidelities=k)
    for i in range(k):
        name = "Gaussian_noise" if i == 0 else f"Gaussian_noise_{i}"
        getattr(gpy.mixed_noise, name).fix(0)
    model = GPyMultiOutputWrapper(gpy, k, n_optimization_restarts=5, verbose_optimization=False)
    model.optimize()
    mean, var = model.predict(_with_fidelity(xt, k - 1))
    return mean[:, 0], np.sqrt(np.maximum(var[:, 0], 0.0))


def emukit_nargp(xs, ys, xt):
    import GPy
    from emukit.multi_fidelity.models.non_linear_multi_fidelity_model import (
        NonLinearMultiFidelityModel,
        make_non_linear_kernels,
    )

    d, k = xs[0].shape[1], len(xs)
    x, y = _emukit_arrays(xs, ys)
    kernels = make_non_linear_kernels(GPy.kern.RBF, k, d, ARD=d > 1)
    model = NonLinearMultiFidelityModel(
        x, y, n_fidelities=k, kernels=kernels, verbose=False, optimization_restarts=5
    )
    for m in model.models:
        m.Gaussian_noise.variance.fix(0)
    model.optimize()
    mean, var = model.predict(_with_fidelity(xt, k - 1))
    return mean[:, 0], np.sqrt(np.maximum(var[:, 0], 0.0))


def peer_available(method: str) -> bool:
    import importlib.util

    if method.startswith("emukit"):
        return all(importlib.util.find_spec(m) for m in ("emukit", "GPy"))
    if method == "smt_mfk":
        return importlib.util.find_spec("smt") is not None
    return True


# ------------------------------------------------------------------------- one run
def _scores(row: dict, mean, std, yt, seconds: float) -> dict:
    err = float(np.linalg.norm(mean - yt) / np.linalg.norm(yt))
    cov = None
    if std is not None and np.all(np.isfinite(std)):
        cov = float(np.mean(np.abs(mean - yt) <= Z90 * std))
    return {**row, "status": "ok", "rel_l2": err, "coverage90": cov, "seconds": seconds}


def run_one(key: str, seed: int, method: str, mfdnn=None) -> list[dict]:
    """Rows of one (problem, seed, method); ``auto`` also gives the rows of its candidates
    (``mfdnn``: a stored MF-DNN result to reuse, :func:`fit_ours`)."""
    import torch

    torch.set_num_threads(1)
    p, counts = make_problem(key)
    xs, ys, xt, yt = design(p, counts, seed)
    row = {"problem": key, "seed": seed, "method": method, "levels": len(xs)}
    if not peer_available(method):
        return [{**row, "status": "not installed"}]
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if method == "constant":
                return [_scores(row, np.full(len(xt), ys[-1].mean()), None, yt, 0.0)]
            if method in OURS:
                fits, info = fit_ours(xs, ys, p.bounds, seed, mfdnn)
                rows = []
                for m, (predict, seconds) in fits.items():
                    t1 = time.perf_counter()
                    mean, std = predict_ours(predict, xt)
                    r = {**row, "method": m}
                    if m == "auto":
                        r.update(info)
                    rows.append(_scores(r, mean, std, yt, seconds + time.perf_counter() - t1))
                if mfdnn:  # the stored MF-DNN row; auto's row is it when auto chose it
                    rows.append(mfdnn["row"])
                    if info["choice"] == "mfdnn":
                        auto = next(r for r in rows if r["method"] == "auto")
                        auto.update({k: mfdnn["row"][k] for k in ("rel_l2", "coverage90")})
                        auto["seconds"] += mfdnn["row"]["seconds"]
                return rows
            mean, std = globals()[method](xs, ys, xt)
    except Exception as exc:  # recorded, the benchmark goes on
        return [
            {
                **row,
                "status": f"failed: {type(exc).__name__}: {exc}"[:300],
                "traceback": traceback.format_exc()[-2000:],
                "seconds": time.perf_counter() - t0,
            }
        ]
    return [_scores(row, mean, std, yt, time.perf_counter() - t0)]


# ------------------------------------------------------------------------- tables
def current(runs: list[dict]) -> list[dict]:
    """Drop rows of AR(1), NARGP and MF-DNN not fitted by the ``auto`` run of their
    (problem, seed) (left from an earlier version that fitted them separately)."""
    auto = {(r["problem"], r["seed"]) for r in runs if r["method"] == "auto" and "choice" in r}
    return [
        r
        for r in runs
        if r["method"] not in ("ar1", "nargp", "mfdnn") or (r["problem"], r["seed"]) in auto
    ]


def summarise(runs: list[dict], keys, seeds) -> tuple[str, list[dict]]:
    runs = current(runs)
    by = {(r["problem"], r["seed"], r["method"]): r for r in runs}

    def err(k, s, m):
        r = by.get((k, s, m))
        return r["rel_l2"] if r and r.get("status") == "ok" else None

    rows, summary = [], []
    for k in keys:
        for s in seeds:
            row = {"problem": k, "seed": s}
            for m in METHODS:
                e = err(k, s, m)
                r = by.get((k, s, m))
                row[m] = e if e is not None else (r["status"][:20] if r else "")
            rows.append(row)
            ours = [e for m in OURS if (e := err(k, s, m)) is not None]
            peers = [e for m in PEERS if (e := err(k, s, m)) is not None]
            const = err(k, s, "constant")
            if not ours or const is None:
                continue
            bo, bp = min(ours), (min(peers) if peers else None)
            en, on = err(k, s, "emukit_nargp"), err(k, s, "nargp")
            auto = by.get((k, s, "auto")) or {}
            worse = [m for m in OURS if (e := err(k, s, m)) is not None and e > const]
            summary.append(
                {
                    "problem": k,
                    "seed": s,
                    "best ours": bo,
                    "best peer": bp,
                    "ours/peer": bo / bp if bp else None,
                    "best ours <= best peer": None if bp is None else ("yes" if bo <= bp else "NO"),
                    "ours worse than constant": ", ".join(worse) or "none",
                    "nargp/emukit_nargp": on / en if on is not None and en else None,
                    "auto chose": auto.get("choice"),
                }
            )
    extra = []
    for k in keys:
        for m in METHODS:
            rs = [by.get((k, s, m)) for s in seeds]
            ok = [r for r in rs if r and r.get("status") == "ok"]
            if not ok:
                continue
            covs = [r["coverage90"] for r in ok if r["coverage90"] is not None]
            extra.append(
                {
                    "problem": k,
                    "method": m,
                    "mean rel L2": float(np.mean([r["rel_l2"] for r in ok])),
                    "coverage90 (mean)": float(np.mean(covs)) if covs else None,
                    "seconds (mean)": float(np.mean([r["seconds"] for r in ok])),
                    "seeds": len(ok),
                }
            )
    md = "## Relative L2 of the highest-fidelity mean (2,000 uniform test points)\n\n"
    md += markdown_table(rows, ["problem", "seed", *METHODS])
    md += "\n## Per row: best of ours (incl. auto) against the best peer, and the constant\n\n"
    md += markdown_table(summary)
    md += "\n## Coverage of the 90 % predictive interval and fit+predict time\n\n"
    md += markdown_table(extra)
    return md, summary


def load_runs() -> list[dict]:
    path = RESULTS / "mf_peers.json"
    if not path.exists():
        return []
    return json.loads(path.read_text()).get("runs", [])


def _merge(on_disk: list[dict], mine: list[dict], produced: set) -> list[dict]:
    """``mine`` updated with the file's rows, except the keys this process ``produced``
    (another process, e.g. one running other methods, may have written rows since)."""
    rows = {(r["problem"], r["seed"], r["method"]): r for r in mine}
    for r in on_disk:
        key = (r["problem"], r["seed"], r["method"])
        if key not in produced:
            rows[key] = r
    return list(rows.values())


def _stored_mfdnn(runs: list[dict]) -> dict:
    """``{(problem, seed): {"fold_score", "row"}}`` of the stored MF-DNN results whose
    auto row kept the MF-DNN's k-fold score."""
    by = {(r["problem"], r["seed"], r["method"]): r for r in runs}
    out = {}
    for (k, s, m), r in by.items():
        mf = by.get((k, s, "mfdnn"))
        if m != "auto" or not mf or mf.get("status") != "ok":
            continue
        detail = r.get("cv_detail") or {}
        score = detail.get("mfdnn_folds", (r.get("cv_scores") or {}).get("mfdnn"))
        if score is not None:
            out[(k, s)] = {"fold_score": float(score), "row": mf}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="seed 0, three small problems")
    ap.add_argument("--problems", nargs="*", default=None, choices=list(PROBLEMS))
    ap.add_argument("--methods", nargs="*", default=METHODS, choices=METHODS)
    ap.add_argument("--seeds", nargs="*", type=int, default=None)
    ap.add_argument("--redo", nargs="*", default=[], choices=METHODS, help="rerun these")
    ap.add_argument(
        "--tables", action="store_true", help="only rewrite the tables from the stored results"
    )
    ap.add_argument(
        "--reuse-mfdnn",
        action="store_true",
        help="auto fits only the GPs and reuses the stored MF-DNN row and k-fold score "
        "(valid while the MF-DNN code is unchanged; its fits take minutes)",
    )
    args = ap.parse_args()
    if args.tables:
        runs = current(load_runs())
        keys = [k for k in PROBLEMS if any(r["problem"] == k for r in runs)]
        md, summary = summarise(runs, keys, sorted({r["seed"] for r in runs}))
        write_results(
            "mf_peers",
            {"quick": False, "runs": runs, "summary": summary},
            md,
            command="nice python benchmarks/bench_mf_peers.py",
        )
        print(md)
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    keys = args.problems or (QUICK if args.quick else list(PROBLEMS))
    seeds = args.seeds if args.seeds is not None else ([0] if args.quick else [0, 1, 2])
    runs = load_runs()
    stored_mfdnn = _stored_mfdnn(runs) if args.reuse_mfdnn else {}
    # n/a rows (auto before fit_multifidelity existed) are always retried
    done = {
        (r["problem"], r["seed"], r["method"])
        for r in runs
        if r["method"] not in args.redo and not r.get("status", "").startswith("n/a")
    }
    runs = [r for r in runs if (r["problem"], r["seed"], r["method"]) in done]
    produced: set = set()
    command = "nice python benchmarks/bench_mf_peers.py " + " ".join(sys.argv[1:])

    def scope(runs):
        present = {*keys, *[r["problem"] for r in runs]}
        return [k for k in PROBLEMS if k in present], sorted({*seeds, *[r["seed"] for r in runs]})

    for s in seeds:  # every problem at seed 0 first: a partial run covers every row
        for k in keys:
            for m in args.methods:
                if (k, s, m) in done:
                    continue
                new = run_one(k, s, m, stored_mfdnn.get((k, s)) if m == "auto" else None)
                # re-read the file: another run (other methods) may have added rows meanwhile
                runs = _merge(load_runs(), runs, produced)
                for r in new:
                    key = (k, s, r["method"])
                    runs = [x for x in runs if (x["problem"], x["seed"], x["method"]) != key]
                    runs.append(r)
                    done.add(key)
                    produced.add(key)
                    print(
                        f"{k:26s} seed {s} {r['method']:14s} {r.get('status'):10.10s} "
                        f"rel_l2={r.get('rel_l2', float('nan')):.3g} "
                        f"cov90={r.get('coverage90')} {r.get('seconds', 0):.1f}s",
                        flush=True,
                    )
                md, summary = summarise(runs, *scope(runs))
                write_results(
                    "mf_peers",
                    {"quick": args.quick, "runs": runs, "summary": summary},
                    md,
                    command=command,
                )
    md, _ = summarise(_merge(load_runs(), runs, produced), *scope(runs))
    print(md)


if __name__ == "__main__":
    main()
