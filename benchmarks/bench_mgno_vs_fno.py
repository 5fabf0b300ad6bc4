"""MgNO vs neuraloperator's FNO on Darcy flow (smooth coefficients), same wall-clock budget.

Both models (about 0.5 M parameters each, within 10 %) are trained in this one process on
the same data (64², 1,000 train samples) for the same wall-clock budget, with the same
optimiser and time-based one-cycle schedule and, by default, the same loss (relative H1,
the training loss of the MgNO paper and of neuraloperator's Darcy example; ``--runs`` adds
runs with another loss, e.g. ``FNO:rel_l2``), then evaluated on 200 test samples at
64² and, without retraining, on the same 200 coefficient fields sampled at 128² (the
Darcy generator draws nested random fields, so the 128² field refines the 64² one).

Reported per model: test relative L2 and H1 at 64² and 128², training time and epochs,
inference time per sample, peak memory (RSS above the start of each phase), and the ratios
MgNO / FNO for every pair of runs. Results: ``benchmarks/results/mgno_vs_fno.{json,md}``,
rewritten after every run.

Usage::

    python benchmarks/bench_mgno_vs_fno.py            # full run (about 55 min)
    python benchmarks/bench_mgno_vs_fno.py --runs MgNO:rel_h1,FNO:rel_h1,FNO:rel_l2
    python benchmarks/bench_mgno_vs_fno.py --quick    # seconds-long sanity run
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pdesurrogates.solvers.reference import darcy_sample
from pdesurrogates.surrogates import FNO, MgNO, NormalizedModel, Normalizer
from pdesurrogates.training import Trainer, rel_h1, rel_l2

from _common import PeakMemory, Timer, markdown_table, write_results

NAME = "mgno_vs_fno"
TRAIN_SEED, TEST_SEED = 1, 2


class _Pairs(torch.utils.data.Dataset):
    def __init__(self, a, u):
        self.a, self.u = torch.as_tensor(a), torch.as_tensor(u)

    def __len__(self):
        return len(self.a)

    def __getitem__(self, i):
        return {"a": self.a[i], "u": self.u[i]}


def darcy(n, resolution, seed):
    """Coefficients and solutions, channel-first ``(n, 1, X, Y)``."""
    a = np.empty((n, 1, resolution, resolution), np.float32)
    u = np.empty_like(a)
    for i in range(n):
        sample, _ = darcy_sample(i, seed, resolution=resolution, variant="smooth")
        a[i, 0], u[i, 0] = sample["a"], sample["u"]
    return a, u


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def build(name, quick, base_resolution):
    torch.manual_seed(0)
    if name == "MgNO":
        if quick:
            return MgNO(channels=8, levels=3, layers=2, base_resolution=base_resolution)
        return MgNO(
            channels=24,
            levels=5,
            layers=4,
            base_resolution=base_resolution,
            projection_channels=64,
        )
    if quick:
        return FNO(n_modes=6, hidden_channels=8, n_layers=2)
    return FNO(n_modes=12, hidden_channels=38, n_layers=4)


@torch.no_grad()
def evaluate(model, a, u, batch=20):
    model.eval()
    preds = [model(torch.as_tensor(a[i : i + batch])) for i in range(0, len(a), batch)]
    p, y = torch.cat(preds), torch.as_tensor(u)
    return {
        "rel_l2": float(rel_l2(p, y)),
        "rel_h1": float(rel_h1(p, y)),
        "rel_l2_per_sample": rel_l2(p, y, reduction="none").tolist(),
    }


@torch.no_grad()
def inference_time(model, a, batch=20, repeats=3):
    model.eval()
    x = torch.as_tensor(a[:batch])
    model(x)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(x)
        best = min(best, time.perf_counter() - t0)
    return best / batch


def _parse_runs(text):
    runs = []
    for item in text.split(","):
        name, _, loss = item.strip().partition(":")
        loss = loss or "rel_h1"
        if name not in ("MgNO", "FNO") or loss not in ("rel_l2", "rel_h1"):
            raise SystemExit(
                f"--runs: cannot read {item!r}; use MODEL[:LOSS] with MODEL in MgNO, FNO and "
                "LOSS in rel_l2, rel_h1, e.g. MgNO:rel_h1,FNO:rel_h1"
            )
        runs.append((name, loss))
    if not any(n == "MgNO" for n, _ in runs) or not any(n == "FNO" for n, _ in runs):
        raise SystemExit("--runs: needs at least one MgNO and one FNO run")
    return runs


def _ratios(m, f):
    return {
        "rel_l2_64": m["test_64"]["rel_l2"] / f["test_64"]["rel_l2"],
        "rel_h1_64": m["test_64"]["rel_h1"] / f["test_64"]["rel_h1"],
        "rel_l2_128_zero_shot": m["test_128_zero_shot"]["rel_l2"]
        / f["test_128_zero_shot"]["rel_l2"],
        "train_time": m["train_time_s"] / f["train_time_s"],
        "inference_time_64": m["inference_s_per_sample_64"] / f["inference_s_per_sample_64"],
        "peak_mem_train": m["peak_mem_train_mb"] / max(f["peak_mem_train_mb"], 1e-9),
        "parameters": m["parameters"] / f["parameters"],
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, seconds-long run")
    ap.add_argument(
        "--budget-min",
        type=float,
        default=None,
        help="training budget per run in minutes (default 25; quick: 0.1)",
    )
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--n-test", type=int, default=None)
    ap.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument(
        "--runs",
        default="MgNO:rel_h1,FNO:rel_h1",
        help="comma-separated MODEL[:LOSS] runs, trained one after the other (default "
        "MgNO:rel_h1,FNO:rel_h1: the H1 training loss of the MgNO paper and of "
        "neuraloperator's Darcy example; add FNO:rel_l2 to also train FNO on relative L2)",
    )
    args = ap.parse_args(argv)
    runs = _parse_runs(args.runs)
    torch.set_num_threads(args.threads)
    res, res_hi = (16, 32) if args.quick else (64, 128)
    n_train = args.n_train or (32 if args.quick else 1000)
    n_test = args.n_test or (8 if args.quick else 200)
    budget = 60 * (args.budget_min or (0.1 if args.quick else 25.0))
    load_start = os.getloadavg()
    # first use of torch.optim imports torch._dynamo (seconds): pay it before any timing
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])

    t0 = time.perf_counter()
    a_tr, u_tr = darcy(n_train, res, TRAIN_SEED)
    a_te, u_te = darcy(n_test, res, TEST_SEED)
    a_hi, u_hi = darcy(n_test, res_hi, TEST_SEED)
    data_time = time.perf_counter() - t0
    print(
        f"data: {n_train} train + {n_test} test at {res}², {n_test} at {res_hi}² "
        f"in {data_time:.0f} s",
        flush=True,
    )
    train = _Pairs(a_tr, u_tr)

    rows, results = [], {}
    for name, loss in runs:
        key = f"{name} ({loss})"
        net = build(name, args.quick, res)
        model = NormalizedModel(
            net,
            input_normalizer=Normalizer(mean=float(a_tr.mean()), std=float(a_tr.std())),
            output_normalizer=Normalizer(mean=float(u_tr.mean()), std=float(u_tr.std())),
        )
        trainer = Trainer(
            model,
            loss=loss,
            lr=args.lr,
            epochs=100_000,
            batch_size=args.batch_size,
            scheduler="onecycle",
            max_time=budget,
            seed=0,
            progress=False,
            grad_clip=1.0,
        )
        print(
            f"{key}: {n_params(net):,} parameters, training for {budget / 60:.1f} min", flush=True
        )
        # one untimed forward/backward pass: one-time kernel set-up stays out of the budget
        model(torch.as_tensor(a_tr[: args.batch_size])).square().mean().backward()
        model.zero_grad(set_to_none=True)
        load_before = os.getloadavg()
        with PeakMemory() as mem_train, Timer() as t_train:
            history = trainer.fit(train)
        load_after = os.getloadavg()
        e64 = evaluate(model, a_te, u_te)
        e128 = evaluate(model, a_hi, u_hi)
        with PeakMemory() as mem_inf:
            t_inf = inference_time(model, a_te)
        t_inf_hi = inference_time(model, a_hi)
        results[key] = r = {
            "model": name,
            "loss": loss,
            "parameters": n_params(net),
            "config": net.get_config(),
            "epochs": len(history),  # the last one may be cut short by the budget
            "train_time_s": t_train.seconds,
            "loadavg_before_training": load_before,
            "loadavg_after_training": load_after,
            "final_train_loss": history[-1]["train_loss"],
            "history": history,
            "test_64": e64,
            "test_128_zero_shot": e128,
            "inference_s_per_sample_64": t_inf,
            "inference_s_per_sample_128": t_inf_hi,
            "peak_mem_train_mb": mem_train.peak_mb,
            "peak_mem_inference_mb": mem_inf.peak_mb,
        }
        print(
            f"{key}: {len(history)} epochs, test rel L2 {e64['rel_l2']:.4f} "
            f"(H1 {e64['rel_h1']:.4f}), zero-shot {res_hi}² rel L2 {e128['rel_l2']:.4f}",
            flush=True,
        )
        rows.append(
            {
                "model": name,
                "training loss": loss,
                "params": r["parameters"],
                "epochs": len(history),
                "train time [s]": r["train_time_s"],
                f"rel L2 {res}²": e64["rel_l2"],
                f"rel H1 {res}²": e64["rel_h1"],
                f"rel L2 {res_hi}² (zero-shot)": e128["rel_l2"],
                f"rel H1 {res_hi}² (zero-shot)": e128["rel_h1"],
                f"{res_hi}²/{res}² L2": e128["rel_l2"] / e64["rel_l2"],
                "infer [ms/sample]": 1e3 * t_inf,
                "peak mem train [MB]": r["peak_mem_train_mb"],
                "peak mem infer [MB]": r["peak_mem_inference_mb"],
                "load avg (1 min) before/after training": (
                    f"{load_before[0]:.1f} / {load_after[0]:.1f}"
                ),
            }
        )
        # results after every run, so a long benchmark stopped part-way keeps what it measured
        path = _report(
            args,
            runs,
            results,
            rows,
            budget,
            n_train,
            n_test,
            res,
            res_hi,
            t0,
            data_time,
            load_start,
        )
    print(f"results: {path}")
    return 0


def _report(
    args, runs, results, rows, budget, n_train, n_test, res, res_hi, t0, data_time, load_start
):
    ratios = {
        f"{m} / {f}": _ratios(results[m], results[f])
        for m in results
        if results[m]["model"] == "MgNO"
        for f in results
        if results[f]["model"] == "FNO"
    }
    ratio_rows = [
        {"quantity": q, **{k: v[q] for k, v in ratios.items()}}
        for q in next(iter(ratios.values()), {})
    ]
    done = len(results) == len(runs)
    load_end = os.getloadavg()
    total = time.perf_counter() - t0
    md = (
        f"Darcy flow, smooth coefficients, {n_train} train / {n_test} test at {res}², "
        f"zero-shot evaluation on the same {n_test} fields at {res_hi}². Runs, one after the "
        f"other: {args.runs} (model: training loss). Adam + time-based one-cycle schedule "
        f"(peak lr {args.lr:g}), batch {args.batch_size}, gradient clipping 1.0, and the "
        f"same wall-clock training budget ({budget / 60:.1f} min) per run; {args.threads} "
        "torch threads.\n\n"
        + markdown_table(rows)
        + "\n"
        + (markdown_table(ratio_rows) if ratio_rows else "")
        + ("" if done else f"\n**Partial**: {len(results)} of {len(runs)} runs finished.\n")
        + f"\nWhole run: {total / 60:.1f} min (data generation {data_time:.0f} s). "
        f"Load average (1/5/15 min) at start {tuple(round(x, 1) for x in load_start)}, at "
        f"end {tuple(round(x, 1) for x in load_end)} on {os.cpu_count()} cores. The budget "
        "is wall-clock, so other jobs on the machine cost a run epochs; the load average "
        "before and after each run is in the table.\n"
    )
    data = {
        "quick": args.quick,
        "complete": done,
        "runs": [f"{n}:{loss}" for n, loss in runs],
        "resolution": res,
        "zero_shot_resolution": res_hi,
        "n_train": n_train,
        "n_test": n_test,
        "budget_s_per_model": budget,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "data_generation_s": data_time,
        "total_s": total,
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "models": results,
        "ratios_mgno_over_fno": ratios,
    }
    if args.quick:
        if done:
            print(md)
        return None
    path = write_results(NAME, data, md)
    if done:
        print(md)
    return path


if __name__ == "__main__":
    sys.exit(main())
