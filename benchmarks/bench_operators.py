"""MgNO against neuraloperator's FNO over five PDE families, at equal wall-clock per run.

Families, most important first: smooth Darcy, Navier–Stokes vorticity (step model, rollout),
rough Darcy, multiscale (trigonometric) Darcy and Helmholtz, all from the package's own
generators (``docs/guide/pde_families.md``). Both models have about 0.5 M parameters; each
is trained on both losses (relative L2 and relative H1), so four runs per family. The MgNO
and the FNO run of the same (family, loss) train at the same time, each in its own fresh
worker process with one torch thread and the same wall-clock budget, so that both see the
same machine load. A second fresh worker per run evaluates: relative L2 and H1 at the
training resolution and zero-shot at twice that resolution (ground truth generated at 2x
from the same coefficient fields / initial vorticity), inference time per sample and the
peak resident memory of the process (``VmHWM``, see ``_common.peak_rss_mb``). For
Navier–Stokes it also rolls the step model out from the first states of each test
trajectory and reports the relative L2 error per step and the time to 10 % error.

The headline ratio is MgNO at its better loss over FNO at its better loss (better: lower
test relative L2 at the training resolution; for Navier–Stokes, lower 10-step rollout
error). Results: ``benchmarks/results/operators.{json,md}``, rewritten after every
finished (family, loss) pair. Generated data are cached (``--cache``) and reused.

Usage::

    python benchmarks/bench_operators.py                 # full run (about 60 min)
    python benchmarks/bench_operators.py --families darcy_smooth,navier_stokes --budget 120
    python benchmarks/bench_operators.py --prepare-only  # generate the data, then stop
    python benchmarks/bench_operators.py --quick         # seconds-long smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, Timer, markdown_table, peak_rss_mb, write_results

NAME = "operators"
FAMILIES = ("darcy_smooth", "navier_stokes", "darcy_rough", "darcy_multiscale", "helmholtz")
MODELS = ("MgNO", "FNO")
LOSSES = ("rel_l2", "rel_h1")
TRAIN_SEED, TEST_SEED = 1, 2
NU, HISTORY, UNROLL, REPORT_STEP = 1e-3, 2, 3, 10  # Navier–Stokes step model
HELM_OMEGA, HELM_REFINE = 1000.0, 4  # solve Helmholtz on ~4x(res - 1) + 1 nodes
LR, BATCH = 1e-3, 8
PADDING = {"navier_stokes": "circular", "helmholtz": "reflect"}  # else zeros (Dirichlet)
CACHE = Path(tempfile.gettempdir()) / "pdesurrogates-bench-operators"


def sizes(quick: bool) -> dict:
    if quick:
        return dict(res=16, n_train=16, n_test=4, ns_train=4, ns_test=2, ns_times=13, budget=3.0)
    return dict(res=64, n_train=500, n_test=64, ns_train=64, ns_test=8, ns_times=21, budget=270.0)


# the multiscale and Helmholtz solves cost 10-40x the others: fewer samples
SMALLER = {"darcy_multiscale": (300, 32), "helmholtz": (300, 32)}


def _n(family, sz):
    """(training, test) samples of a steady family."""
    if sz["res"] < 64:
        return sz["n_train"], sz["n_test"]
    return SMALLER.get(family, (sz["n_train"], sz["n_test"]))


# -- data (generated once, cached) ---------------------------------------------------------
def _steady_file(family, cache, n, res, seed, refine):
    from pdesurrogates.datasets import generate_darcy, generate_helmholtz

    path = Path(cache) / f"{family}_n{n}_r{res}_s{seed}_x{refine}.h5"
    if path.exists():
        return path
    kw = dict(n_samples=n, resolution=res, seed=seed, progress=False, resume=True)
    if family == "helmholtz":
        return generate_helmholtz(path, omega=HELM_OMEGA, refine=refine, **kw)
    return generate_darcy(path, variant=family.removeprefix("darcy_"), **kw)


def steady_data(family, sz, cache, parts=("train", "test", "hi")):
    """``{"train"|"test"|"hi": (x, y)}``, channel-first float32 arrays."""
    from pdesurrogates.datasets import open_dataset

    res, key = sz["res"], "c" if family == "helmholtz" else "a"
    n_train, n_test = _n(family, sz)
    spec = {
        "train": (n_train, res, TRAIN_SEED, HELM_REFINE),
        "test": (n_test, res, TEST_SEED, HELM_REFINE),
        "hi": (n_test, 2 * res, TEST_SEED, HELM_REFINE // 2),
    }
    out = {}
    for name in parts:
        n, r, seed, refine = spec[name]
        refine = refine if family == "helmholtz" else 1
        ds = open_dataset(_steady_file(family, cache, n, r, seed, refine))
        out[name] = (ds.load(key), ds.load("u"))
    return out


def ns_data(sz, cache):
    """Training file (64²) and test trajectories ``(N, 1, T, 2r, 2r)`` solved at 2x."""
    import numpy as np
    import torch

    from pdesurrogates.datasets import generate_navier_stokes
    from pdesurrogates.solvers.reference import (
        NS_DEFAULTS,
        fno_forcing,
        ns_initial_vorticity,
        solve_navier_stokes,
    )

    res, n_t = sz["res"], sz["ns_times"]
    train = Path(cache) / f"ns_n{sz['ns_train']}_r{res}_t{n_t}_s{TRAIN_SEED}.h5"
    if not train.exists():
        generate_navier_stokes(
            train,
            n_samples=sz["ns_train"],
            resolution=res,
            nu=NU,
            duration=float(n_t - 1),
            n_times=n_t,
            seed=TRAIN_SEED,
            progress=False,
            resume=True,
        )
    test = Path(cache) / f"ns_test_n{sz['ns_test']}_r{2 * res}_t{n_t}_s{TEST_SEED}.npy"
    if not test.exists():
        # the generator's initial vorticity at `res` evaluated on the 2x grid (refine=2),
        # solved there: its every other point is the 1x truth of the same trajectory
        times = np.linspace(0.0, float(n_t - 1), n_t)
        trajs = []
        for i in range(sz["ns_test"]):
            rng = np.random.default_rng([TEST_SEED, i])
            w0 = ns_initial_vorticity(
                res, rng=rng, alpha=NS_DEFAULTS["alpha"], tau=NS_DEFAULTS["tau"], refine=2
            )
            w = solve_navier_stokes(
                torch.as_tensor(w0, dtype=torch.float64),
                times,
                nu=NU,
                forcing=fno_forcing(2 * res),
            )
            trajs.append(w.numpy().astype(np.float32)[None])
        tmp = test.with_suffix(".partial.npy")
        np.save(tmp, np.stack(trajs))
        os.replace(tmp, test)
    return train, np.load(test)


# -- models ------------------------------------------------------------------------------
def build(model, family, quick, in_channels, res, stats):
    import torch

    from pdesurrogates.surrogates import FNO, MgNO, NormalizedModel, Normalizer

    torch.manual_seed(0)
    if model == "MgNO":
        net = MgNO(
            in_channels=in_channels,
            channels=8 if quick else 24,
            levels=3 if quick else 5,
            layers=2 if quick else 4,
            base_resolution=res,
            padding_mode=PADDING.get(family, "zeros"),
            projection_channels=16 if quick else 64,
        )
    else:
        net = FNO(
            in_channels=in_channels,
            n_modes=6 if quick else 12,
            hidden_channels=8 if quick else 38,
            n_layers=2 if quick else 4,
        )
    (xm, xs), (ym, ys) = stats
    return NormalizedModel(
        net,
        input_normalizer=Normalizer(mean=xm, std=xs),
        output_normalizer=Normalizer(mean=ym, std=ys),
    )


class _Pairs:
    """Map-style dataset of in-memory ``{"a": x[i], "u": y[i]}`` pairs."""

    def __init__(self, x, y):
        import torch

        self.x, self.y = torch.as_tensor(x), torch.as_tensor(y)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"a": self.x[i], "u": self.y[i]}


def _train_set(family, sz, cache):
    """(training set, input channels, normaliser statistics)."""
    if family == "navier_stokes":
        from pdesurrogates.datasets import TimePairs, open_dataset

        train_path, _ = ns_data(sz, cache)
        train = TimePairs(open_dataset(train_path), "w", history=HISTORY, unroll=UNROLL)
        w = train.trajectories()
        stats = ((float(w.mean()), float(w.std())),) * 2
        return train, HISTORY, stats
    x, y = steady_data(family, sz, cache, ("train",))["train"]
    stats = ((float(x.mean()), float(x.std())), (float(y.mean()), float(y.std())))
    return _Pairs(x, y), 1, stats


def _test_set(family, sz, cache):
    """NS: test trajectories at 2x; else ``{"test"|"hi": (x, y)}``."""
    if family == "navier_stokes":
        return ns_data(sz, cache)[1]
    return steady_data(family, sz, cache, ("test", "hi"))


# -- worker phases (each in a fresh process) -------------------------------------------------
def worker_train(a, sz):
    import torch

    from pdesurrogates.training import PushforwardStep, Trainer

    from _common import environment

    rss_start = peak_rss_mb()
    torch.set_num_threads(1)
    train, in_ch, stats = _train_set(a.family, sz, a.cache)
    model = build(a.model, a.family, a.quick, in_ch, sz["res"], stats)
    if a.family == "navier_stokes":
        kw = {"step": PushforwardStep(unroll=UNROLL, loss=a.loss)}
    else:
        kw = {"loss": a.loss}
    trainer = Trainer(
        model,
        lr=LR,
        epochs=100_000,
        batch_size=BATCH,
        scheduler="onecycle",
        max_time=a.budget,
        seed=0,
        progress=False,
        grad_clip=1.0,
        **kw,
    )
    # untimed warm-up (torch._dynamo import on first optimiser, kernel set-up)
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    x0 = torch.stack([train[i]["a"] for i in range(min(BATCH, len(train)))])
    model(x0).square().mean().backward()
    model.zero_grad(set_to_none=True)
    rss_ready = peak_rss_mb()
    with Timer() as t:
        history = trainer.fit(train)
    torch.save(model.state_dict(), _file(a, "weights.pt"))
    return {
        "parameters": sum(p.numel() for p in model.model.parameters()),
        "config": model.model.get_config(),
        "epochs": len(history),
        "stop_reason": trainer.stop_reason,
        "train_time_s": t.seconds,
        "final_train_loss": history[-1]["train_loss"] if history else None,
        "history": history,
        "rss_after_imports_mb": rss_start,
        "rss_before_training_mb": rss_ready,
        "peak_rss_train_mb": peak_rss_mb(),
        "environment": environment(),
    }


def _predict(model, x, batch=16):
    import torch

    with torch.no_grad():
        parts = [model(torch.as_tensor(x[i : i + batch])) for i in range(0, len(x), batch)]
        return torch.cat(parts)


def _errors(model, x, y, *, spacing=None, periodic=False):
    import torch

    from pdesurrogates.uq.metrics import rel_h1, rel_l2

    p, y = _predict(model, x), torch.as_tensor(y)
    h1 = rel_h1(p, y, spatial_dims=2, spacing=spacing, periodic=periodic)
    return {"rel_l2": float(rel_l2(p, y, spatial_dims=2)), "rel_h1": float(h1)}


def _infer_time(model, x, batch=8, repeats=3):
    import torch

    xb = torch.as_tensor(x[:batch])
    best = float("inf")
    with torch.no_grad():
        model(xb)  # warm-up
        for _ in range(repeats):
            with Timer() as t:
                model(xb)
            best = min(best, t.seconds)
    return best / len(xb)


def _eval_ns(model, hi):
    import numpy as np
    import torch

    from pdesurrogates.datasets import stack_time
    from pdesurrogates.errors import RolloutError
    from pdesurrogates.surrogates import rollout
    from pdesurrogates.uq.metrics import rollout_rel_l2, time_to_threshold

    out = {}
    for tag, traj in (("1x", hi[..., ::2, ::2]), ("2x", hi)):
        traj = np.ascontiguousarray(traj)
        steps = traj.shape[2] - HISTORY
        starts = range(0, steps, 3)  # one-step errors from every third window
        xs = np.concatenate([stack_time(traj[:, :, t : t + HISTORY]) for t in starts])
        ys = np.concatenate([traj[:, :, t + HISTORY] for t in starts])
        r = {f"one_step_{k}": v for k, v in _errors(model, xs, ys, periodic=True).items()}
        u = torch.as_tensor(traj)
        try:
            pred = rollout(model, u[:, :, :HISTORY], steps, horizon=steps)
            err = rollout_rel_l2(pred, u[:, :, HISTORY:]).numpy()
        except RolloutError as exc:
            r["rollout_failure"] = str(exc)
            err = np.full(steps, np.nan)
        r["rollout_rel_l2_per_step"] = err.tolist()
        r["rollout_rel_l2_step10"] = float(err[REPORT_STEP - 1])
        r["rollout_rel_l2_mean10"] = float(err[:REPORT_STEP].mean())
        r["steps_to_10pct"] = float(time_to_threshold(err, 0.1))
        r["rollout_steps"] = steps
        r["infer_s_per_sample"] = _infer_time(model, xs)
        out[tag] = r
    return out


def worker_eval(a, sz):
    import torch

    rss_start = peak_rss_mb()
    torch.set_num_threads(1)
    test = _test_set(a.family, sz, a.cache)
    in_ch = HISTORY if a.family == "navier_stokes" else 1
    # the normalisers' statistics are buffers: load_state_dict restores the trained ones
    model = build(a.model, a.family, a.quick, in_ch, sz["res"], ((0.0, 1.0), (0.0, 1.0)))
    model.load_state_dict(torch.load(_file(a, "weights.pt"), weights_only=True))
    model.eval()
    if a.family == "navier_stokes":
        r = _eval_ns(model, test)
    else:
        r = {}
        for tag, key in (("1x", "test"), ("2x", "hi")):
            x, y = test[key]
            n = x.shape[-1]
            spacing = 1.0 / (n - 1) if a.family == "helmholtz" else 1.0 / n  # nodes / cells
            r[tag] = _errors(model, x, y, spacing=spacing)
            r[tag]["infer_s_per_sample"] = _infer_time(model, x)
    r["rss_after_imports_mb"] = rss_start
    r["peak_rss_eval_mb"] = peak_rss_mb()
    return r


def _file(a, suffix):
    return Path(a.run_dir) / f"{a.family}_{a.model}_{a.loss}_{suffix}"


def worker_main(a):
    sz = sizes(a.quick)
    if a.worker == "prepare":
        _train_set(a.family, sz, a.cache)
        _test_set(a.family, sz, a.cache)
        return 0
    out = (worker_train if a.worker == "train" else worker_eval)(a, sz)
    path = _file(a, f"{a.worker}.json")
    path.write_text(json.dumps(out, default=float))
    return 0


# -- orchestration (this process stays small: no torch) ------------------------------------
def _spawn(a, phase, family, model="-", loss="-"):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", phase]
    cmd += ["--family", family, "--model", model, "--loss", loss, "--budget", str(a.budget)]
    cmd += ["--cache", str(a.cache), "--run-dir", str(a.run_dir)] + (["--quick"] if a.quick else [])
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    log = open(Path(a.run_dir) / f"{family}_{model}_{loss}_{phase}.log", "w")
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT), log


def _run_all(a, jobs, quiet=False):
    """Run ``[(phase, family, model, loss)]`` at once; return their exit codes."""
    procs = [(_spawn(a, *job), job) for job in jobs]
    codes = []
    for (p, log), job in procs:
        codes.append(p.wait())
        log.close()
        if codes[-1] and not quiet:
            tail = Path(log.name).read_text().splitlines()[-15:]
            print(f"worker {job} failed ({codes[-1]}):\n  " + "\n  ".join(tail), flush=True)
    return codes


def _prepare_in_background(a, families):
    """Generate the families' data one after the other in a background thread, so that
    training starts as soon as the first family is ready; ``{family: Event}`` with ``.ok``.
    A failed attempt (e.g. another run holding the file's write lock) is retried."""
    ready = {f: threading.Event() for f in families}

    def run():
        for f in families:
            ready[f].ok = False
            for _ in range(120):
                if _run_all(a, [("prepare", f)], quiet=True) == [0]:
                    ready[f].ok = True
                    break
                time.sleep(15)
            ready[f].set()

    threading.Thread(target=run, daemon=True).start()
    return ready


def _pair(a, family, loss):
    """Train MgNO and FNO on (family, loss) concurrently, then evaluate both; records."""
    load_before = os.getloadavg()
    codes = _run_all(a, [("train", family, m, loss) for m in MODELS])
    load_after = os.getloadavg()
    ok = [m for m, c in zip(MODELS, codes, strict=True) if c == 0]
    eval_codes = dict(zip(ok, _run_all(a, [("eval", family, m, loss) for m in ok]), strict=True))
    out = {}
    for m in MODELS:
        rec = {"model": m, "loss": loss, "loadavg_before": load_before, "loadavg_after": load_after}
        for phase in ("train", "eval"):
            path = Path(a.run_dir) / f"{family}_{m}_{loss}_{phase}.json"
            if path.exists() and eval_codes.get(m) == 0:
                rec[phase] = json.loads(path.read_text())
        rec["failed"] = "eval" not in rec
        out[f"{m}:{loss}"] = rec
    return out


def _best(runs, model, family):
    key = _score_key(family)
    done = [r for r in runs.values() if r["model"] == model and not r["failed"]]

    def score(r):  # NaN (a failed rollout) ranks last
        v = _get(r, key)
        return v if v == v else float("inf")

    return min(done, key=score, default=None)


def _score_key(family):
    return ("1x", "rollout_rel_l2_step10") if family == "navier_stokes" else ("1x", "rel_l2")


def _get(r, key, tag=None):
    tag, name = (tag or key[0]), key[1]
    v = r["eval"][tag].get(name)
    return float("nan") if v is None else v


def _run_row(family, r):
    row = {"family": family, "model": r["model"], "loss": r["loss"]}
    if r["failed"]:
        return {**row, "params": "failed (see the worker logs)"}
    t, e = r["train"], r["eval"]
    row.update(params=t["parameters"], epochs=t["epochs"], **{"train [s]": t["train_time_s"]})
    if family == "navier_stokes":
        row.update(
            {
                "rel L2 1x": e["1x"]["one_step_rel_l2"],
                "rel H1 1x": e["1x"]["one_step_rel_h1"],
                "rel L2 2x": e["2x"]["one_step_rel_l2"],
                "rel H1 2x": e["2x"]["one_step_rel_h1"],
                "rollout@10 1x": e["1x"]["rollout_rel_l2_step10"],
                "rollout@10 2x": e["2x"]["rollout_rel_l2_step10"],
                "steps to 10 % (1x / 2x)": f"{e['1x']['steps_to_10pct']:g} / "
                f"{e['2x']['steps_to_10pct']:g}",
            }
        )
    else:
        for tag in ("1x", "2x"):
            row[f"rel L2 {tag}"] = e[tag]["rel_l2"]
            row[f"rel H1 {tag}"] = e[tag]["rel_h1"]
        row["2x/1x L2"] = e["2x"]["rel_l2"] / e["1x"]["rel_l2"]
    row.update(
        {
            "infer 1x [ms/sample]": 1e3 * e["1x"]["infer_s_per_sample"],
            "peak RSS train [MB]": t["peak_rss_train_mb"],
            "RSS after imports / before training [MB]": (
                f"{t['rss_after_imports_mb']:.0f} / {t['rss_before_training_mb']:.0f}"
            ),
            "peak RSS eval [MB]": e["peak_rss_eval_mb"],
            "load 1 min before/after": (
                f"{r['loadavg_before'][0]:.1f} / {r['loadavg_after'][0]:.1f}"
            ),
        }
    )
    return row


def _verdict(ok):
    return "met" if ok else "**missed**"


def _check_row(family, runs):
    m, f = _best(runs, "MgNO", family), _best(runs, "FNO", family)
    if m is None or f is None:
        return {"family": family, "MgNO best": "failed" if m is None else m["loss"]}
    key = _score_key(family)
    ratio = _get(m, key) / _get(f, key)
    row = {
        "family": family,
        "MgNO best loss": m["loss"],
        "FNO best loss": f["loss"],
        "metric": "10-step rollout rel L2" if family == "navier_stokes" else "test rel L2",
        "MgNO": _get(m, key),
        "FNO": _get(f, key),
        "MgNO/FNO": ratio,
        "≤ 0.5": _verdict(ratio <= 0.5),
        "MgNO 2x/1x": _get(m, key, "2x") / _get(m, key),
    }
    if family == "navier_stokes":
        row["≤ 1.5 (steady only)"] = "n/a"
        row["NS: MgNO ≤ FNO"] = _verdict(ratio <= 1.0)
        row["steps to 10 % MgNO / FNO"] = (
            f"{_get(m, ('1x', 'steps_to_10pct')):g} / {_get(f, ('1x', 'steps_to_10pct')):g}"
        )
    else:
        row["≤ 1.5 (steady only)"] = _verdict(row["MgNO 2x/1x"] <= 1.5)
    return row


def _columns(rows):
    """Every key of ``rows``, in order of first appearance (families add columns)."""
    return list(dict.fromkeys(k for r in rows for k in r))


def report(a, sz, results, t0, load_start, planned, *, load_end=None, command=None):
    rows = [_run_row(fam, r) for fam, runs in results.items() for r in runs.values()]
    checks = [_check_row(fam, runs) for fam, runs in results.items()]
    n_done = sum(len(runs) for runs in results.values())
    trained = [r for runs in results.values() for r in runs.values() if "train" in r]
    env = trained[0]["train"]["environment"] if trained else {}
    res = sz["res"]
    md = (
        f"MgNO against neuraloperator's FNO (about 0.5 M parameters each), each trained on "
        f"relative L2 and on relative H1. Every run trains in its own fresh process with "
        f"**1 torch thread** for the same wall-clock budget of **{a.budget:g} s** "
        f"(Adam, time-based one-cycle schedule, peak lr {LR:g}, batch {BATCH}, gradient "
        f"clipping 1.0); the MgNO and the FNO run of the same (family, loss) run at the same "
        f"time, so each model gets {2 * a.budget / 60:g} min of training in total per family. "
        f"Machine: {os.cpu_count()} cores shared with other jobs; load average (1/5/15 min) "
        f"at the start {tuple(round(x, 1) for x in load_start)}, at the end "
        f"{tuple(round(x, 1) for x in load_end or os.getloadavg())} (per run in the table).\n\n"
        f"Data: {sz['n_train']} training and {sz['n_test']} test samples at {res}² per steady "
        f"family (multiscale Darcy and Helmholtz: {_n('helmholtz', sz)[0]} and "
        f"{_n('helmholtz', sz)[1]}, their solves cost 10-40x more); the same test fields at "
        f"{2 * res}² for the zero-shot columns (2x). Darcy: the generator's nested random "
        f"fields, so the {2 * res}² "
        f"coefficient refines the {res}² one. Helmholtz (ω = {HELM_OMEGA:g}): {res} and "
        f"{2 * res} nodes, both solved on a grid of about {HELM_REFINE * (res - 1) + 1} nodes "
        f"(`refine` {HELM_REFINE} and {HELM_REFINE // 2}), from the same wavespeed function. "
        f"Navier–Stokes: ν = {NU:g} (chosen for the CPU), {sz['ns_train']} training "
        f"trajectories at {res}², {sz['ns_times']} states 1 time unit apart; step model "
        f"with history {HISTORY}, pushforward training over {UNROLL} calls; "
        f"{sz['ns_test']} test trajectories solved at {2 * res}² from the generator's "
        f"initial vorticity, their every other point is the {res}² truth. NS `rel L2/H1` "
        "are one-step errors from true histories (every third window); `rollout@10` is "
        f"the relative L2 of the 10th predicted state, rolled out from the first {HISTORY} "
        "states.\n\n"
        "Peak RSS: `VmHWM` of the worker process (its whole peak: interpreter, torch, data "
        "and model); the RSS after importing torch and the package, and the peak before "
        "training (data loaded, model built, one warm-up step), show how much of it is the "
        "training itself. Inference: best of 3 batches of 8, per sample, while the "
        "other model's evaluation worker runs.\n\n"
        "## Done-when checks (each model at its better loss)\n\n"
        + markdown_table(checks, _columns(checks))
        + "\n## All runs\n\n"
        + markdown_table(rows, _columns(rows))
        + (
            ""
            if n_done == planned
            else f"\n**Partial**: {n_done} of {planned} runs finished so far.\n"
        )
        + f"\nWhole run: {(time.perf_counter() - t0) / 60:.1f} min. Env: torch "
        f"{env.get('torch', '?')}, Python {env.get('python', '?')}.\n"
    )
    data = {
        "quick": a.quick,
        "complete": n_done == planned,
        "families": list(results),
        "budget_s_per_run": a.budget,
        "threads_per_run": 1,
        "sizes": sz,
        "ns": {"nu": NU, "history": HISTORY, "unroll": UNROLL},
        "helmholtz": {"omega": HELM_OMEGA, "refine": HELM_REFINE},
        "lr": LR,
        "batch_size": BATCH,
        "loadavg_start": load_start,
        "loadavg_now": load_end or os.getloadavg(),
        "checks": checks,
        "runs": results,
    }
    write_results(NAME, data, md, env=env, results_dir=a.results_dir, command=command)
    return md


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, seconds-long run")
    ap.add_argument(
        "--families",
        default=None,
        help=f"comma-separated subset of {','.join(FAMILIES)} (default: all; quick: the first two)",
    )
    ap.add_argument("--budget", type=float, default=None, help="training seconds per run")
    ap.add_argument("--cache", default=None, help=f"generated data (default {CACHE})")
    ap.add_argument("--results-dir", default=None, help="default benchmarks/results")
    ap.add_argument("--prepare-only", action="store_true", help="generate the data and stop")
    ap.add_argument("--worker", choices=("prepare", "train", "eval"), help=argparse.SUPPRESS)
    ap.add_argument("--family", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--loss", help=argparse.SUPPRESS)
    ap.add_argument("--run-dir", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    sz = sizes(a.quick)
    a.budget = sz["budget"] if a.budget is None else a.budget
    a.cache = Path(a.cache or (CACHE / ("quick" if a.quick else "full")))
    if a.worker:
        return worker_main(a)
    a.families = a.families or ",".join(FAMILIES[: 2 if a.quick else None])
    families = [f.strip() for f in a.families.split(",") if f.strip()]
    bad = sorted(set(families) - set(FAMILIES))
    if bad or not families:
        raise SystemExit(f"--families: unknown {bad}; choose from {', '.join(FAMILIES)}")
    if a.results_dir is None and a.quick:
        a.results_dir = tempfile.mkdtemp(prefix="bench_operators_quick_")
    a.cache.mkdir(parents=True, exist_ok=True)
    a.run_dir = Path(tempfile.mkdtemp(prefix="runs_", dir=a.cache))
    print(f"cache {a.cache}, worker logs in {a.run_dir}", flush=True)
    t0, load_start = time.perf_counter(), os.getloadavg()
    ready = _prepare_in_background(a, families)
    if a.prepare_only:
        for family in families:
            ready[family].wait()
        print(f"data ready in {time.perf_counter() - t0:.0f} s", flush=True)
        return 0
    results, planned, md = {}, len(families) * len(MODELS) * len(LOSSES), ""
    for family in families:
        ready[family].wait()
        if not ready[family].ok:
            print(f"{family}: data generation failed, skipped (see the prepare log)")
            continue
        results[family] = {}
        for loss in LOSSES:
            print(f"{family}, {loss}: MgNO and FNO, {a.budget:g} s each", flush=True)
            results[family].update(_pair(a, family, loss))
            md = report(a, sz, results, t0, load_start, planned)
    print(md)
    print(f"results: {Path(a.results_dir or RESULTS) / NAME}.json / .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
