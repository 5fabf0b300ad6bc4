"""UQ benchmark: the evaluator, propagation through a trained surrogate, Sobol' indices.

1. ``uq.evaluate`` on N fields of 64² from a 10-member ensemble (float32; N = 1,000 in
   the full run), against looping uncertainty-toolbox field by field over the same metric
   set (RMSE, MAE, Gaussian NLL and CRPS, miscalibration area, RMSCE, MACE, sharpness,
   coverage at 4 levels; the ensemble CRPS from properscoring, which the toolbox lacks).
   The toolbox only knows Gaussians, so it gets the ensemble mean and std. ``evaluate``
   additionally computes the fair ensemble CRPS, empirical-quantile intervals, interval
   scores, whole-field coverage, per-field calibration curves and the rank histogram.
   Also reported: scoringrules' vectorised ``crps_ensemble(estimator="fair")`` over all
   points (one metric only) for scale.
2. ``uq.propagate``: 10⁵ input samples through a small MLP surrogate of the Ishigami
   function (trained here for a few seconds), batch 4,096, against calling the same model
   one sample at a time; plus surrogate-vs-truth statistics on the same samples.
3. ``uq.sobol_indices`` for Ishigami (a = 7, b = 0.1) at 2¹⁰..2¹⁶ base samples: error
   against the exact indices and wall time.
4. ``uq.sobol_indices`` beside SALib (``sobol.sample`` + ``sobol.analyze``, first and total
   order, 100 bootstrap resamples each) and ``scipy.stats.sobol_indices`` (point estimates
   only: its BCa bootstrap is far slower, timed once), on Ishigami and the G-function with
   a = [0, 1, 4.5, 9, 99, 99, 99, 99], N = 2¹⁰..2¹⁴, over ``--seeds`` seeds: RMSE of S1 and
   ST against the closed forms (all indices, all seeds), the ratio ours/SALib with its
   bootstrap standard error over seeds, coverage of the exact indices by S ± conf at 90 %
   and 95 %, and time; ours both by default (one net, bootstrap) and with
   ``replicates=8`` (Student-t intervals). SALib runs on the same designs as ours (same
   integer seed), so the ratio is paired: it measures the estimators, not the luck of
   independent scramblings (the scrambled-net errors are heavy-tailed, and two identical
   methods on independent seed sets differ by up to 1.6x over 100 seeds).

Run: ``python benchmarks/bench_uq.py`` (``--quick`` for a seconds-long sanity run;
``--sections sobol,sobol_peers`` reruns parts 3–4 and keeps the stored rows of the
others; ``--only-sobol`` is the same).
All timings single-threaded (``torch.set_num_threads(1)``), best of ``--repeats``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import properscoring as ps
import scoringrules as sr
import torch
from scipy import stats
from uncertainty_toolbox import metrics_calibration as mc
from uncertainty_toolbox import metrics_scoring_rule as msr

from pdesurrogates.uq import (
    Prediction,
    evaluate,
    ishigami,
    ishigami_indices,
    propagate,
    sobol_indices,
)
from pdesurrogates.uq._sobol import g_function, g_function_indices

from _common import RESULTS, PeakMemory, markdown_table, write_results

LEVELS = (0.5, 0.8, 0.9, 0.95)


def toolbox_field(m, s, y, members):
    """The competitor: uncertainty-toolbox (+ properscoring) metrics of one field."""
    return {
        "rmse": float(np.sqrt(np.mean((m - y) ** 2))),
        "mae": float(np.mean(np.abs(m - y))),
        "nll": msr.nll_gaussian(m, s, y),
        "crps_gaussian": msr.crps_gaussian(m, s, y),
        "crps_ensemble": float(ps.crps_ensemble(y, members, axis=0).mean()),
        "miscal_area": mc.miscalibration_area(m, s, y, vectorized=True),
        "rmsce": mc.root_mean_squared_calibration_error(m, s, y, vectorized=True),
        "mace": mc.mean_absolute_calibration_error(m, s, y, vectorized=True),
        "sharpness": mc.sharpness(s),
        **{f"coverage_{lv}": mc.get_proportion_in_interval(m, s, y, lv) for lv in LEVELS},
    }


def bench_evaluate(n_fields: int, res: int, members: int, repeats: int) -> dict:
    g = torch.Generator().manual_seed(0)
    centre = torch.randn(n_fields, res, res, generator=g)
    y = centre + torch.randn(n_fields, res, res, generator=g)
    s = centre + torch.randn(members, n_fields, res, res, generator=g)
    pred = Prediction(None, samples=s)
    times = []
    with PeakMemory() as mem:  # peak over all repeats (the first one allocates)
        for _ in range(repeats):
            t0 = time.perf_counter()
            rep = evaluate(pred, y)
            times.append(time.perf_counter() - t0)
    ours = min(times)

    yn, sn = y.numpy().astype(np.float64), s.numpy().astype(np.float64)
    mean, std = sn.mean(0), sn.std(0, ddof=1)
    t0 = time.perf_counter()
    per_field = [
        toolbox_field(mean[i].ravel(), std[i].ravel(), yn[i].ravel(), sn[:, i].reshape(members, -1))
        for i in range(n_fields)
    ]
    theirs = time.perf_counter() - t0

    # scoringrules' numpy backend builds (points, M, M) temporaries: time it on at most
    # 100 fields to bound its memory, and compare with ours on the same fields
    n_sr = min(n_fields, 100)
    t0 = time.perf_counter()
    crps_sr = sr.crps_ensemble(yn[:n_sr], np.moveaxis(sn[:, :n_sr], 0, -1), estimator="fair")
    t_sr = time.perf_counter() - t0
    crps_ours_sub = rep.per_sample["crps"][:n_sr].mean()

    # the two agree where the definitions coincide
    crps_pooled_tb = np.mean([r["crps_ensemble"] for r in per_field])
    rmse_tb = math.sqrt(np.mean([r["rmse"] ** 2 for r in per_field]))
    return {
        "n_fields": n_fields,
        "resolution": res,
        "members": members,
        "ours_seconds": ours,
        "ours_all_repeats": times,
        "ours_peak_mb": mem.peak_mb,
        "toolbox_loop_seconds": theirs,
        "speedup": theirs / ours,
        "scoringrules_fields": n_sr,
        "scoringrules_fair_crps_only_seconds": t_sr,
        "check_fair_crps_ours_same_fields": float(crps_ours_sub),
        "check_fair_crps_scoringrules": float(crps_sr.mean()),
        "check_nrg_crps_properscoring_loop": float(crps_pooled_tb),
        "check_rmse_ours": rep.scalars["rmse"],
        "check_rmse_toolbox_loop": rmse_tb,
        "spread_skill_ratio": rep.scalars["spread_skill_ratio"],
    }


class _MLP(torch.nn.Module):
    def __init__(self, width: int = 64):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(3, width),
            torch.nn.SiLU(),
            torch.nn.Linear(width, width),
            torch.nn.SiLU(),
            torch.nn.Linear(width, 1),
        )

    def forward(self, x):
        return self.net(x / math.pi)[:, 0]


def train_surrogate(steps: int, seed: int = 0) -> tuple[_MLP, float]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-math.pi, math.pi, size=(4000, 3))
    y = ishigami(x)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    model = _MLP()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(0, 4000, (256,))
        loss = torch.mean((model(xt[idx]) - yt[idx]) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    return model, time.perf_counter() - t0


def bench_propagate(n_samples: int, steps: int, n_single: int) -> dict:
    model, train_s = train_surrogate(steps)
    ins = {f"x{i}": stats.uniform(-math.pi, 2 * math.pi) for i in (1, 2, 3)}
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        r_full = propagate(model, ins, n_samples, seed=1, batch_size=4096)
        rate_end_to_end = n_samples / (time.perf_counter() - t0)
    r = propagate(model, ins, n_samples, seed=1, batch_size=4096, reference=ishigami)
    # the same model one sample per call (what a naive loop does)
    x = torch.tensor(r.inputs[:n_single], dtype=torch.float32)
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(n_single):
            model(x[i : i + 1])
    single_rate = n_single / (time.perf_counter() - t0)
    exact = ishigami_indices()
    return {
        "n_samples": n_samples,
        "train_steps": steps,
        "train_seconds": train_s,
        "samples_per_second_sampling_model_moments": r_full.samples_per_second,
        "samples_per_second_end_to_end": rate_end_to_end,
        "single_sample_loop_per_second": single_rate,
        "speedup_vs_single_loop": r_full.samples_per_second / single_rate,
        "peak_mb": mem.peak_mb,
        "surrogate_mean": float(r.mean),
        "surrogate_std": float(r.std),
        "se_mean": float(r.se_mean),
        "exact_mean": 3.5,
        "exact_std": float(np.sqrt(exact["variance"])),
        "truth_same_samples_mean": float(r.reference["mean"]),
        "mean_error_vs_truth_same_samples": float(r.reference["mean_error"]),
        "std_rel_error_vs_truth_same_samples": float(r.reference["std_rel_error"]),
        "wasserstein1": float(r.reference["wasserstein1"]),
        "ks": float(r.reference["ks"]),
        "rmse_same_samples": float(r.reference["rmse_same_samples"]),
    }


def bench_sobol(exponents: list[int]) -> list[dict]:
    ins = {f"x{i}": stats.uniform(-math.pi, 2 * math.pi) for i in (1, 2, 3)}
    exact = ishigami_indices()
    rows = []
    for m in exponents:
        t0 = time.perf_counter()
        r = sobol_indices(ishigami, ins, 2**m, seed=0, n_bootstrap=100)
        sec = time.perf_counter() - t0
        rows.append(
            {
                "n_base": 2**m,
                "evaluations": r.n_evaluations,
                "seconds": sec,
                "S1": [float(v) for v in r.S1],
                "ST": [float(v) for v in r.ST],
                "S1_conf": [float(v) for v in r.S1_conf],
                "max_abs_err_S1": float(np.max(np.abs(r.S1 - exact["S1"]))),
                "max_abs_err_ST": float(np.max(np.abs(r.ST - exact["ST"]))),
            }
        )
    return rows


def _salib(problem: dict, fn, n: int, seed: int):
    from SALib.analyze import sobol as salib_analyze
    from SALib.sample import sobol as salib_sample

    x = salib_sample.sample(problem, n, calc_second_order=False, seed=seed)
    return salib_analyze.analyze(
        problem, fn(x), calc_second_order=False, num_resamples=100, seed=seed + 1
    )


def _scipy(ins: dict, fn, n: int, seed: int):
    res = stats.sobol_indices(
        func=lambda x: fn(x.T), n=n, dists=list(ins.values()), rng=np.random.default_rng(seed)
    )
    return res.first_order, res.total_order


def _ratio_se(ours: np.ndarray, theirs: np.ndarray, n_boot: int = 2000) -> float:
    """Bootstrap standard error of RMSE(ours) / RMSE(theirs), paired over seeds.

    ``ours``/``theirs``: per-seed mean squared errors on the same designs; the seeds are
    resampled jointly.
    """
    rng = np.random.default_rng(0)
    i = rng.integers(0, ours.size, (n_boot, ours.size))
    return float(np.std(np.sqrt(ours[i].mean(1) / theirs[i].mean(1)), ddof=1))


def _covered(err, conf) -> list:
    return list(np.abs(np.asarray(err)) <= np.asarray(conf))


def _peer_cell(fn, ins, ex, problem, n: int, n_seeds: int, reps: int) -> dict:
    """One (problem, N) cell: ours (one net; ``reps`` replicates), SALib, scipy."""
    import warnings

    keys = ("o", "r", "s", "p")  # ours, ours with replicates, SALib, scipy
    err = {f"{k}{i}": [] for k in keys for i in "1t"}
    cov = {f"{k}{lv}": [] for k in "ors" for lv in (90, 95)}
    sec = dict.fromkeys(keys, 0.0)
    same = []
    z = stats.norm.ppf(0.95) / stats.norm.ppf(0.975)  # 90 % from a 95 % z half-width
    tq = stats.t.ppf(0.95, reps - 1) / stats.t.ppf(0.975, reps - 1)
    for seed in range(n_seeds):
        t0 = time.perf_counter()
        r = sobol_indices(fn, ins, n, seed=seed, n_bootstrap=100)
        sec["o"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        rr = sobol_indices(fn, ins, n, seed=seed, replicates=reps)
        sec["r"] += time.perf_counter() - t0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            s = _salib(problem, fn, n, seed)  # the same design as ours
            sec["s"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            p1, pt = _scipy(ins, fn, n, seed + 2000)
            sec["p"] += time.perf_counter() - t0
        same.append(np.abs(s["S1"] - r.S1).max())
        est = {
            "o": (r.S1, r.ST, r.S1_conf, r.ST_conf, z),
            "r": (rr.S1, rr.ST, rr.S1_conf, rr.ST_conf, tq),
            "s": (s["S1"], s["ST"], s["S1_conf"], s["ST_conf"], z),
            "p": (p1, pt, None, None, None),
        }
        for k, (e1, et, c1, ct, q) in est.items():
            err[k + "1"].append(e1 - ex["S1"])
            err[k + "t"].append(et - ex["ST"])
            if c1 is not None:
                cov[f"{k}95"] += _covered(e1 - ex["S1"], c1) + _covered(et - ex["ST"], ct)
                cov[f"{k}90"] += _covered(e1 - ex["S1"], q * c1) + _covered(et - ex["ST"], q * ct)
    mse = {k: np.mean(np.square(v), axis=1) for k, v in err.items()}  # per seed

    def rmse(k):
        return float(np.sqrt(mse[k].mean()))

    row = {"n_base": n, "seeds": n_seeds, "replicates": reps}
    for i, lab in (("1", "S1"), ("t", "ST")):
        row |= {
            f"ours_rmse_{lab}": rmse("o" + i),
            f"salib_rmse_{lab}": rmse("s" + i),
            f"ratio_{lab}": rmse("o" + i) / rmse("s" + i),
            f"ratio_{lab}_se": _ratio_se(mse["o" + i], mse["s" + i]),
            f"ours_replicates_rmse_{lab}": rmse("r" + i),
            f"replicates_cost_{lab}": rmse("r" + i) / rmse("o" + i),
            f"scipy_rmse_{lab}": rmse("p" + i),
            f"top5_seeds_share_of_mse_{lab}": float(
                np.sort(mse["o" + i])[-5:].sum() / mse["o" + i].sum()
            ),
        }
    row |= {
        f"coverage{lv}_{k}": float(np.mean(cov[f"{c}{lv}"]))
        for c, k in zip("ors", ("ours_bootstrap", "ours_replicates", "salib"), strict=True)
        for lv in (90, 95)
    }
    row |= {
        "same_design_max_abs_diff_S1": float(np.max(same)),
        "ours_seconds": sec["o"] / n_seeds,
        "ours_replicates_seconds": sec["r"] / n_seeds,
        "salib_seconds": sec["s"] / n_seeds,
        "scipy_seconds_no_ci": sec["p"] / n_seeds,
        "time_ratio_ours_salib": sec["o"] / sec["s"],
    }
    return row


def bench_sobol_peers(
    exponents: list[int], n_seeds: int, reps: int = 8, cells: set | None = None
) -> list[dict]:
    """Ours beside SALib and scipy on Ishigami and the G-function over seeds.

    ``cells``: only these ``(problem, exponent)`` cells (all when None).
    """
    g_a = (0.0, 1.0, 4.5, 9.0, 99.0, 99.0, 99.0, 99.0)
    cases = {
        "ishigami": (
            ishigami,
            {f"x{i}": stats.uniform(-math.pi, 2 * math.pi) for i in (1, 2, 3)},
            ishigami_indices(),
            [[-math.pi, math.pi]] * 3,
        ),
        "g_function": (
            lambda x: g_function(x, g_a),
            {f"x{i}": stats.uniform(0, 1) for i in range(1, 9)},
            g_function_indices(g_a),
            [[0.0, 1.0]] * 8,
        ),
    }
    rows = []
    for name, (fn, ins, ex, bounds) in cases.items():
        problem = {"num_vars": len(ins), "names": list(ins), "bounds": bounds}
        for m in exponents:
            if cells is not None and (name, m) not in cells:
                continue
            rows.append({"problem": name} | _peer_cell(fn, ins, ex, problem, 2**m, n_seeds, reps))
            print(rows[-1], flush=True)
    return rows


def _scipy_bootstrap_seconds(n: int) -> float:
    """Time of scipy's BCa bootstrap (100 resamples) on Ishigami, once."""
    ins = [stats.uniform(-math.pi, 2 * math.pi)] * 3
    res = stats.sobol_indices(
        func=lambda x: ishigami(x.T), n=n, dists=ins, rng=np.random.default_rng(0)
    )
    t0 = time.perf_counter()
    res.bootstrap(confidence_level=0.95, n_resamples=100)
    return time.perf_counter() - t0


def sobol_peers_markdown(rows: list[dict]) -> str:
    reps = rows[0]["replicates"]
    md = (
        "\n## Sobol' indices beside SALib and scipy (Ishigami; G-function, "
        "a = [0, 1, 4.5, 9, 99, 99, 99, 99])\n\n"
        "RMSE over all indices and seeds against the closed forms. Ours (default, one "
        "scrambled Sobol' net, bootstrap intervals) and SALib run on the same designs "
        "(seeds 0..S-1; their S1 agree to rounding, last column, and ours divides ST by "
        "the variance of all runs, SALib by that of the A and B runs); scipy on its own "
        "designs of the same kind (seeds 2000..). "
        "'± SE': bootstrap standard error of the RMSE ratio, seeds resampled jointly. "
        "'top-5 share': fraction of our MSE carried by the 5 worst seeds. "
        f"'R={reps}': our `replicates={reps}` (8 independent scramblings of N/8 rows, "
        "the same model runs; Student-t intervals), its RMSE and its cost against the "
        "default. Coverage: fraction of exact indices inside S ± conf at 90 % / 95 % "
        "(nominal). Times per call, model runs included; ours and SALib with 100 "
        "bootstrap resamples; scipy point estimates only.\n\n"
    )
    table = []
    for r in rows:
        table.append(
            {
                "problem": r["problem"],
                "N": r["n_base"],
                "seeds": r["seeds"],
                "S1 RMSE ours": r["ours_rmse_S1"],
                "S1 RMSE SALib": r["salib_rmse_S1"],
                "S1 ours/SALib ± SE": f"{r['ratio_S1']:.2f} ± {r['ratio_S1_se']:.2f}",
                "ST RMSE ours": r["ours_rmse_ST"],
                "ST RMSE SALib": r["salib_rmse_ST"],
                "ST ours/SALib ± SE": f"{r['ratio_ST']:.2f} ± {r['ratio_ST_se']:.2f}",
                "top-5 share S1/ST": (
                    f"{r['top5_seeds_share_of_mse_S1']:.2f} / {r['top5_seeds_share_of_mse_ST']:.2f}"
                ),
                "S1/ST RMSE scipy": f"{r['scipy_rmse_S1']:.3g} / {r['scipy_rmse_ST']:.3g}",
                f"S1/ST RMSE R={reps} (x default)": (
                    f"{r['ours_replicates_rmse_S1']:.3g} / {r['ours_replicates_rmse_ST']:.3g} "
                    f"(x{r['replicates_cost_S1']:.1f} / x{r['replicates_cost_ST']:.1f})"
                ),
                "cov. 90/95 ours bootstrap": (
                    f"{r['coverage90_ours_bootstrap']:.3f} / {r['coverage95_ours_bootstrap']:.3f}"
                ),
                f"cov. 90/95 ours R={reps}": (
                    f"{r['coverage90_ours_replicates']:.3f} / {r['coverage95_ours_replicates']:.3f}"
                ),
                "cov. 90/95 SALib": (f"{r['coverage90_salib']:.3f} / {r['coverage95_salib']:.3f}"),
                "s ours": r["ours_seconds"],
                f"s ours R={reps}": r["ours_replicates_seconds"],
                "s SALib": r["salib_seconds"],
                "s scipy (no CI)": r["scipy_seconds_no_ci"],
                "time ours/SALib": r["time_ratio_ours_salib"],
                "same design max S1 diff": r["same_design_max_abs_diff_S1"],
            }
        )
    return md + markdown_table(table)


SECTIONS = ("evaluate", "propagate", "sobol", "sobol_peers")


def _parse_cells(text: str) -> set:
    """``"g_function:14,ishigami:10"`` -> {("g_function", 14), ("ishigami", 10)}."""
    cells = set()
    for item in text.split(","):
        name, _, m = item.partition(":")
        if name not in ("ishigami", "g_function") or not m.isdigit():
            raise SystemExit(f"--cells: {item!r} is not PROBLEM:EXPONENT (e.g. g_function:14)")
        cells.add((name, int(m)))
    return cells


def _sobol_peer_cells(args) -> dict:
    """Rerun only ``--cells`` of the SALib comparison; the other cells keep their stored rows."""
    cells = _parse_cells(args.cells)
    stored = json.loads((RESULTS / "uq.json").read_text())["sobol_peers"]
    new = bench_sobol_peers(sorted({m for _, m in cells}), args.seeds, cells=cells)
    fresh = {(r["problem"], int(math.log2(r["n_base"]))): r for r in new}
    rows = [r for r in stored["rows"] if (r["problem"], int(math.log2(r["n_base"]))) not in fresh]
    order = {"ishigami": 0, "g_function": 1}
    rows = sorted(rows + new, key=lambda r: (order[r["problem"]], r["n_base"]))
    return stored | {"rows": rows}


def _run_sections(args) -> tuple[dict, dict]:
    """Results of the requested sections; the others come from the stored uq.json."""
    quick = args.quick
    runners = {
        "evaluate": lambda: (
            bench_evaluate(50, 32, 10, 1) if quick else bench_evaluate(1000, 64, 10, args.repeats)
        ),
        "propagate": lambda: (
            bench_propagate(10_000, 200, 200) if quick else bench_propagate(100_000, 3000, 2000)
        ),
        "sobol": lambda: bench_sobol([10, 12] if quick else [10, 12, 14, 16]),
        "sobol_peers": lambda: (
            _sobol_peer_cells(args)
            if args.cells
            else {
                "rows": bench_sobol_peers(
                    [10, 12] if quick else [10, 11, 12, 13, 14], 3 if quick else args.seeds
                ),
                "scipy_bca_bootstrap_seconds_ishigami_4096": _scipy_bootstrap_seconds(4096),
            }
        ),
    }
    command = "python benchmarks/bench_uq.py " + " ".join(sys.argv[1:])
    wanted = SECTIONS if not args.sections else tuple(args.sections.split(","))
    if args.only_sobol:
        wanted = ("sobol", "sobol_peers")
    unknown = set(wanted) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"--sections: unknown {sorted(unknown)}; choose from {SECTIONS}")
    old = {}
    if set(wanted) != set(SECTIONS):
        old = json.loads((RESULTS / "uq.json").read_text())
    out, commands = {}, {}
    for sec in SECTIONS:
        if sec in wanted:
            out[sec], commands[sec] = runners[sec](), command
            if sec == "sobol_peers" and args.cells:
                before = old.get("section_commands", {}).get(sec, old.get("command", ""))
                before = before.replace(" (9 of 10 cells)", "")
                commands[sec] = f"{before}; cells {args.cells} rerun by `{command}`"
            continue
        stored = old["sobol_peers"] if sec == "sobol_peers" else old[sec]
        if sec == "sobol_peers" and isinstance(stored, list):  # the layout before v2
            stored = {"rows": stored}
        out[sec] = stored
        fallback = old["command"]
        if sec in ("evaluate", "propagate"):
            fallback = old.get("evaluate_propagate_command", fallback)
        commands[sec] = old.get("section_commands", {}).get(sec, fallback)
    return out, commands


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="seconds-long sanity run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=100, help="seeds of the SALib comparison")
    ap.add_argument(
        "--sections",
        default="",
        help=f"comma-separated parts to run (of {', '.join(SECTIONS)}; default all); "
        "the others keep their stored rows from results/uq.json",
    )
    ap.add_argument(
        "--cells",
        default="",
        help="with --sections sobol_peers: rerun only these PROBLEM:EXPONENT cells "
        "(e.g. g_function:14); the other cells keep their stored rows",
    )
    ap.add_argument(
        "--only-sobol", action="store_true", help="same as --sections sobol,sobol_peers"
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    res, commands = _run_sections(args)
    ev, pr, sob = res["evaluate"], res["propagate"], res["sobol"]
    peers = res["sobol_peers"]["rows"]

    load_after = os.getloadavg()[0]
    md = (
        f"Machine load average (1 min) at start / end: {load_before:.2f} / {load_after:.2f} "
        f"on {os.cpu_count()} cores; all timings single-threaded, wall clock.\n\n"
    )
    md += "## evaluate (10-member ensemble, float32 fields)\n\n"
    md += markdown_table(
        [
            {
                "fields": f"{ev['n_fields']} x {ev['resolution']}²",
                "ours evaluate [s]": ev["ours_seconds"],
                "toolbox loop [s]": ev["toolbox_loop_seconds"],
                "ours/theirs time": ev["ours_seconds"] / ev["toolbox_loop_seconds"],
                "speed-up": ev["speedup"],
                "ours peak MB": ev["ours_peak_mb"],
                "scoringrules fair CRPS only [s]": (
                    f"{ev['scoringrules_fair_crps_only_seconds']:.3g} "
                    f"({ev['scoringrules_fields']} fields)"
                ),
            }
        ]
    )
    md += (
        "\nFair CRPS on the scoringrules fields: ours "
        f"{ev['check_fair_crps_ours_same_fields']:.8f}, scoringrules "
        f"{ev['check_fair_crps_scoringrules']:.8f}; RMSE ours {ev['check_rmse_ours']:.6f}, "
        f"toolbox loop {ev['check_rmse_toolbox_loop']:.6f}.\n\n"
    )
    md += "## propagate (MLP surrogate of Ishigami, batch 4096)\n\n"
    md += markdown_table(
        [
            {
                "samples": pr["n_samples"],
                "samples/s (sampling+model+moments)": pr[
                    "samples_per_second_sampling_model_moments"
                ],
                "samples/s end-to-end (+quantiles, KDE)": pr["samples_per_second_end_to_end"],
                "one-at-a-time samples/s": pr["single_sample_loop_per_second"],
                "speed-up": pr["speedup_vs_single_loop"],
                "peak MB": pr["peak_mb"],
            }
        ]
    )
    md += "\n" + markdown_table(
        [
            {
                "surrogate mean": pr["surrogate_mean"],
                "truth mean (same samples)": pr["truth_same_samples_mean"],
                "± MC SE": pr["se_mean"],
                "std rel. error": pr["std_rel_error_vs_truth_same_samples"],
                "W1": pr["wasserstein1"],
                "KS": pr["ks"],
                "RMSE same samples": pr["rmse_same_samples"],
            }
        ]
    )
    md += "\n## Sobol' indices, Ishigami (exact S1 = 0.3139, 0.4424, 0; ST3 = 0.2437)\n\n"
    md += markdown_table(
        [
            {
                "N base": r["n_base"],
                "runs": r["evaluations"],
                "S1": ", ".join(f"{v:.4f}" for v in r["S1"]),
                "ST": ", ".join(f"{v:.4f}" for v in r["ST"]),
                "max |S1 err|": r["max_abs_err_S1"],
                "max |ST err|": r["max_abs_err_ST"],
                "seconds": r["seconds"],
            }
            for r in sob
        ]
    )
    md += sobol_peers_markdown(peers)
    bca = res["sobol_peers"].get("scipy_bca_bootstrap_seconds_ishigami_4096")
    if bca is not None:
        md += (
            f"\nscipy's BCa bootstrap (`res.bootstrap(n_resamples=100)`) on Ishigami, "
            f"N = 4096: {bca:.3g} s.\n"
        )
    data = {"quick": args.quick, "load_average": [load_before, load_after]}
    data.update(evaluate=ev, propagate=pr, sobol=sob, sobol_peers=res["sobol_peers"])
    data["section_commands"] = commands
    md += "\nCommands per section: " + "; ".join(f"{k}: `{v}`" for k, v in commands.items())
    md += "\n"
    write_results("uq", data, md, command="python benchmarks/bench_uq.py " + " ".join(sys.argv[1:]))
    print(md)


if __name__ == "__main__":
    main()
