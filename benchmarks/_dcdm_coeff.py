"""Coefficient-aware DCDM: one network trained on a mix of problem families, tested on
held-out problems and sizes against pyamg SA-PCG, with its untrained initialisation as
the ablation (``python bench_dcdm.py --only coeff``).

Families (2D, random right-hand side, rtol 1e-6 on the true residual):

* poisson: the Dirichlet box;
* varcoef: Dirichlet diffusion with a log-normal coefficient ``exp(6 G)`` (``G`` a
  smoothed Gaussian field, ``gallery.named_problem('varcoef2d', n, seed=...)``), max/min
  about 1e4 and more; training seeds 1-3, test seed 100 (held out);
* aniso: rotated anisotropic diffusion (9-point), training on random ``eps`` in
  {1e-3, 1e-2} and angles drawn away from the test angle, test ``eps = 1e-3``,
  ``theta = pi/8`` (held out);
* smoke: Neumann walls, open top, random disc obstacles in training, two discs at
  other places in the test (unseen geometry);
* randcoef, randcoef-l8 (test only): ``gallery.random_coefficient`` fields of contrast
  1e4, correlation 3 and 8 cells, seed 0: generators never used in training.

Training sizes 64² and 128² (plus one 256² matrix per family); test sizes 128², 256², 512².
Training is reproducible: a fixed number of epochs ``--coeff-epochs`` (the cosine learning
rate decays over them), one run per seed of ``--coeff-seeds`` (initialisation and
shuffling), single thread; the run with the lowest loss on one more matrix of every
training family (128², seed 8, not a test problem) relative to the untrained network is
kept. ``--coeff-seconds`` is only a safety cap (the results record the epochs run).
Times are this process's CPU seconds (``time.process_time``, one thread) for every solver
of the table, so that the learned/SA time ratio does not follow the machine's load.
``--coeff-balance`` divides each training matrix's loss by its initial loss;
``--coeff-aniso-weight`` multiplies the anisotropic matrices' loss on top of that, and
``--coeff-aniso-big k`` adds k anisotropic 256² matrices with ``eps = 1e-3`` (the one
256² anisotropic matrix of the base mix has ``eps = 1e-2``). ``--coeff-reach 2`` gives the
network a 5x5 smoother (``ConjugateDirectionNet(smoother_reach=2)``).
``--coeff-aniso-extra k`` adds k anisotropic 64² matrices at angles spread over
[0, pi/2] (away from the test angle; ``--coeff-aniso-angles spread`` spreads the base
mix's angles instead), and ``--coeff-sweep`` runs the network and its initialisation on
anisotropy at that many angles: one network should serve every direction.
``--coeff-smoother`` picks the smoother (``spd``, the default: symmetric positive
definite with a setup-time safeguard; ``free``: the earlier per-cell kernel);
``--coeff-varcoef-extra k`` adds k ``random_coefficient`` training fields (seeds 20, 21,
...; :data:`RANDCOEF_MIX`) and ``--coeff-varcoef-weight`` weights the variable-coefficient
matrices' loss.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from pdesurrogates.solvers import dcdm, gallery, grid_stencil
from pdesurrogates.surrogates import ConjugateDirectionNet
from pdesurrogates.training import DCDMStep, ritz_training_vectors, sparse_to_torch, train_dcdm

FAMILIES = ("poisson", "varcoef", "aniso", "smoke")
UNSEEN = ("randcoef", "randcoef-l8")  # test-only fields (seed 0: never a training seed)
TEST_FAMILIES = FAMILIES + UNSEEN
CLOCK = time.process_time  # solve times: this process's CPU seconds (one thread)
TEST_THETA = np.pi / 8


RANDCOEF_MIX = ((1.5, 1e2), (3.0, 1e4), (6.0, 1e3), (1.5, 1e5), (3.0, 1e3), (6.0, 1e4))
"""(correlation, contrast) of the ``--coeff-varcoef-extra`` training fields, in turn."""


def randcoef_mix(seed: int) -> tuple[float, float]:
    """(correlation, contrast) of the randcoef training field of ``seed`` (20, 21, ...)."""
    return RANDCOEF_MIX[(seed - 20) % len(RANDCOEF_MIX)]


def train_problem(family: str, n: int, seed: int, theta: float | None = None):
    """A training matrix; anisotropy: ``eps = 1e-3`` for even seeds, ``1e-2`` for odd ones,
    at angle ``theta`` (default: random, away from the test angle); randcoef (seeds 20,
    21, ...): ``gallery.random_coefficient`` with correlation and contrast from
    :data:`RANDCOEF_MIX` in turn."""
    rng = np.random.default_rng(1000 * seed + n)
    if family == "randcoef":
        corr, contrast = randcoef_mix(seed)
        return gallery.random_coefficient((n, n), contrast=contrast, correlation=corr, seed=seed)
    if family == "poisson":
        return gallery.dirichlet_box((n, n))
    if family == "varcoef":
        return gallery.named_problem("varcoef2d", n, seed=seed)
    if family == "aniso":
        if theta is None:
            theta = rng.uniform(0, np.pi / 2)
            while abs(theta - TEST_THETA) < 0.1:
                theta = rng.uniform(0, np.pi / 2)
        return gallery.anisotropic_diffusion((n, n), eps=[1e-3, 1e-2][seed % 2], theta=theta)
    if family == "smoke":
        obs = [((rng.uniform(0.25, 0.75), rng.uniform(0.2, 0.6)), rng.uniform(0.05, 0.15))]
        return gallery.smoke_domain((n, n), obstacles=obs)
    raise ValueError(family)


def test_problem(family: str, n: int):
    if family == "poisson":
        return gallery.dirichlet_box((n, n))
    if family == "varcoef":
        return gallery.named_problem("varcoef2d", n, seed=100)
    if family == "aniso":
        return gallery.anisotropic_diffusion((n, n), eps=1e-3, theta=TEST_THETA)
    if family == "smoke":
        return gallery.smoke_domain((n, n), obstacles=[((0.3, 0.45), 0.1), ((0.7, 0.25), 0.08)])
    if family == "randcoef":  # rougher log-normal field (correlation 3 cells), max/min 1e4
        return gallery.random_coefficient((n, n), contrast=1e4, seed=0)
    if family == "randcoef-l8":  # smoother (correlation 8 cells), max/min 1e4
        return gallery.random_coefficient((n, n), contrast=1e4, correlation=8.0, seed=0)
    raise ValueError(family)


def spread_angles(k: int, offset: float) -> list[float]:
    """``k`` angles spread evenly over [0, pi/2] without the band ``|theta - pi/8| < 0.1``
    around the test angle: at fractions ``(i + offset) / k`` of the allowed length, or
    ``i / (k - 1)`` (both ends included) when ``offset`` is 0."""
    lo, hi = TEST_THETA - 0.1, TEST_THETA + 0.1
    length = np.pi / 2 - (hi - lo)
    if offset == 0:
        fr = [i / max(k - 1, 1) for i in range(k)]
    else:
        fr = [(i + offset) / k for i in range(k)]
    return [float(t if t < lo else t + (hi - lo)) for t in (f * length for f in fr)]


def aniso_angles(plan) -> dict:
    """Spread angles for the anisotropic entries of a training plan: per ``eps``, evenly
    over the allowed range (``eps = 1e-3`` with both ends, the grid-aligned cases;
    ``1e-2`` offset by half a step, which can meet a ``1e-3`` angle), handed out in an
    interleaved order so that every size gets angles from all over the range."""
    out = {}
    for parity, offset in ((0, 0.0), (1, 0.5)):
        keys = [(n, s) for fam, n, s, _ in plan if fam == "aniso" and s % 2 == parity]
        angles = spread_angles(len(keys), offset)
        order = list(range(0, len(keys), 2)) + list(range(1, len(keys), 2))
        out.update({key: angles[i] for key, i in zip(keys, order, strict=True)})
    return out


def training_set(
    sizes=(64, 128),
    big=256,
    samples=(160, 96, 48),
    lanczos=300,
    log=print,
    aniso_big=0,
    spread=False,
    aniso_extra=0,
    varcoef_extra=0,
):
    """``(problems, vectors, labels)`` of the training mix; ``varcoef_extra`` random
    coefficient fields (:data:`RANDCOEF_MIX`), alternately at the two smallest sizes;
    ``aniso_big`` more anisotropic
    matrices at the big size (even seeds: eps = 1e-3); ``spread``: the anisotropic
    matrices' angles from :func:`aniso_angles` instead of random; ``aniso_extra`` more
    anisotropic matrices at the smallest size, at spread angles (seeds 10, 11, ...:
    ``eps`` alternating 1e-3, 1e-2)."""
    probs, data, labels = [], [], []
    t0 = time.perf_counter()
    plan = []
    for fam in FAMILIES:
        for n, ns in zip(sizes, samples, strict=False):
            seeds = (1,) if fam == "poisson" else (1, 2)
            plan += [(fam, n, s, ns) for s in seeds]
        if big:
            plan.append((fam, big, 3, samples[-1]))
        if big and fam == "aniso":
            plan += [(fam, big, 4 + 2 * j, samples[-1]) for j in range(aniso_big)]
    angles = aniso_angles(plan) if spread else {}
    extra = [("aniso", sizes[0], 10 + j, samples[0]) for j in range(aniso_extra)]
    angles.update(aniso_angles(extra))
    plan += extra
    two = list(zip(sizes, samples, strict=False))[:2]
    plan += [
        ("randcoef", *two[j % len(two)][:1], 20 + j, two[j % len(two)][1])
        for j in range(varcoef_extra)
    ]
    for fam, n, seed, ns in plan:
        theta = angles.get((n, seed)) if fam == "aniso" else None
        p = train_problem(fam, n, seed, theta)
        probs.append(p)
        data.append(ritz_training_vectors(p.A, ns, m=min(lanczos, p.n), seed=seed))
        at = "" if theta is None else f" theta {theta:.3f}"
        if fam == "randcoef":
            at = " correlation {:g} contrast {:g}".format(*randcoef_mix(seed))
        labels.append(f"{fam} {n}² seed {seed}{at}")
    log(f"training data: {len(probs)} matrices in {time.perf_counter() - t0:.0f}s")
    return probs, data, labels


VALID_SEED = 8  # validation matrices of the training families (aniso: eps = 1e-3)


def validation_set(n=128, samples=64, lanczos=200):
    """``(problems, vectors)``: one more matrix of every training family at ``n``² (seed
    :data:`VALID_SEED`, not a training seed, not a test problem), to choose among seeds."""
    probs = [train_problem(fam, n, VALID_SEED) for fam in FAMILIES]
    data = [
        ritz_training_vectors(p.A, samples, m=min(lanczos, p.n), seed=VALID_SEED) for p in probs
    ]
    return probs, data


@torch.no_grad()
def validation_score(net, init, probs, data) -> float:
    """Mean over the validation matrices of (DCDM loss of ``net``) / (loss of ``init``):
    below 1 where training helped, every family counted alike."""
    ratios = []
    for p, X in zip(probs, data, strict=True):
        S = torch.from_numpy(grid_stencil(p.A, p.shape)[None])
        step = DCDMStep([sparse_to_torch(p.A)], [tuple(p.shape)], [S])
        batch = (0, torch.from_numpy(X))
        ratios.append(float(step.loss(net, batch)[0]) / float(step.loss(init, batch)[0]))
    return float(np.mean(ratios))


def train_coeff(args, log=print):
    """Train one network per seed of ``--coeff-seeds`` for a fixed number of epochs (the
    time budget only a safety cap) and keep the one with the lowest validation score."""
    sizes = tuple(int(v) for v in args.coeff_train.split(","))
    big = args.coeff_big
    t0 = time.perf_counter()
    probs, data, labels = training_set(
        sizes=sizes,
        big=big,
        samples=(160, 96, 48),
        lanczos=args.lanczos,
        log=log,
        aniso_big=args.coeff_aniso_big,
        spread=args.coeff_aniso_angles == "spread",
        aniso_extra=args.coeff_aniso_extra,
        varcoef_extra=args.coeff_varcoef_extra,
    )
    vprobs, vdata = validation_set(lanczos=args.lanczos)
    t_data = time.perf_counter() - t0
    weights = [
        args.coeff_aniso_weight
        if lab.startswith("aniso")
        else args.coeff_varcoef_weight
        if lab.startswith(("varcoef", "randcoef"))
        else 1.0
        for lab in labels
    ]
    seeds = [int(v) for v in args.coeff_seeds.split(",")]
    torch.manual_seed(0)
    init = ConjugateDirectionNet(
        dim=2, coefficients=True, smoother_reach=args.coeff_reach, smoother=args.coeff_smoother
    )
    runs = []
    for seed in seeds:
        torch.manual_seed(seed)
        net = ConjugateDirectionNet(
            dim=2, coefficients=True, smoother_reach=args.coeff_reach, smoother=args.coeff_smoother
        )
        t0 = time.perf_counter()
        hist = train_dcdm(
            net,
            probs,
            data,
            epochs=args.coeff_epochs,
            batch_size=16,
            lr=args.coeff_lr,
            seed=seed,
            progress=False,
            max_seconds=args.coeff_seconds,
            balance=args.coeff_balance,
            weights=weights,
        )
        score = validation_score(net, init, vprobs, vdata)
        run = {
            "seed": seed,
            "train_s": time.perf_counter() - t0,
            "epochs_run": len(hist),
            "loss_per_epoch": [round(h["loss"], 5) for h in hist],
            "lr_per_epoch": [float(f"{h['lr']:.3g}") for h in hist],
            "valid_score": score,
        }
        log(f"coefficient-aware DCDM, seed {seed}: {run}")
        runs.append((score, seed, net, run))
    score, seed, net, _ = min(runs, key=lambda t: (t[0], t[1]))
    info = {
        "train_problems": labels,
        "valid_problems": [f"{fam} 128² seed {VALID_SEED}" for fam in FAMILIES],
        "data_s": t_data,
        "train_s": sum(r["train_s"] for *_, r in runs),
        "epochs": args.coeff_epochs,
        "lr": args.coeff_lr,
        "seeds": seeds,
        "seed": seed,
        "runs": [r for *_, r in runs],
        "parameters": sum(p.numel() for p in net.parameters()),
    }
    log(f"chosen seed {seed} (validation score {score:.4f})")
    return net, info


def sa_pcg(A, b, rtol, maxiter):
    """pyamg SA-PCG through bench_dcdm's one scipy-PCG driver, with its total time."""
    from bench_dcdm import sa_setup, scipy_pcg  # bench_dcdm imports this module lazily

    out = scipy_pcg(A, b, rtol, sa_setup, maxiter, clock=CLOCK)
    return out | {"total_s": out["setup_s"] + out["solve_s"]}


def run_net(p, b, net, rtol, maxiter):
    t0 = CLOCK()
    res = dcdm(p, b, net, rtol=rtol, maxiter=maxiter)
    return {
        "iterations": res.n_iter,
        "total_s": CLOCK() - t0,
        "converged": res.converged,
        "true_relres": res.relative_residual,
    }


def coeff_rows(net, sizes, log=print, rtol=1e-6, maxiter=2000, repeats=3):
    """One row per family and size; every time is the best of ``repeats`` interleaved
    runs (the counts do not change between runs), as the machine is shared."""
    torch.manual_seed(0)
    init = ConjugateDirectionNet(**net.get_config())  # untrained: geometric MG
    rows = []
    best = lambda runs: min(runs, key=lambda r: r["total_s"])  # noqa: E731
    for fam in TEST_FAMILIES:
        for n in sizes:
            p = test_problem(fam, n)
            b = gallery.random_rhs(p, seed=0)
            runs = [
                (
                    sa_pcg(p.A.tocsr(), b, rtol, maxiter),
                    run_net(p, b, net, rtol, maxiter),
                    run_net(p, b, init, rtol, maxiter),
                )
                for _ in range(repeats)
            ]
            sa, tr, un = (best(list(col)) for col in zip(*runs, strict=True))
            row = {
                "family": fam,
                "n": n,
                "it SA": sa["iterations"],
                "it learned": tr["iterations"],
                "it untrained": un["iterations"],
                "learned/SA it": tr["iterations"] / sa["iterations"],
                "untrained/learned it": un["iterations"] / tr["iterations"],
                "t SA": sa["total_s"],
                "setup SA": sa["setup_s"],
                "t learned": tr["total_s"],
                "t untrained": un["total_s"],
                "learned/SA t": tr["total_s"] / sa["total_s"],
                "converged": sa["converged"] and tr["converged"] and un["converged"],
            }
            rows.append(row)
            log(f"coeff {fam} {n}: {row}")
    return rows


def angle_sweep(net, n: int, k: int, log=print, rtol=1e-6, maxiter=2000) -> list[dict]:
    """Iterations of the learned network and its initialisation on rotated anisotropy at
    ``k`` angles over [0, pi/2], ``eps`` 1e-3 and 1e-2, ``n``²: does one network serve every
    angle, not only the test angle?"""
    torch.manual_seed(0)
    init = ConjugateDirectionNet(**net.get_config())
    rows = []
    for theta in np.linspace(0, np.pi / 2, k):
        for eps in (1e-3, 1e-2):
            p = gallery.anisotropic_diffusion((n, n), eps=eps, theta=float(theta))
            b = gallery.random_rhs(p, seed=0)
            tr = dcdm(p, b, net, rtol=rtol, maxiter=maxiter)
            un = dcdm(p, b, init, rtol=rtol, maxiter=maxiter)
            rows.append(
                {
                    "theta": round(float(theta), 4),
                    "eps": eps,
                    "it learned": tr.n_iter if tr.converged else None,
                    "it untrained": un.n_iter if un.converged else None,
                    "untrained/learned it": un.n_iter / tr.n_iter if tr.converged else None,
                }
            )
            log(f"angle sweep {rows[-1]}")
    return rows


def sweep_summary(rows) -> str:
    worse = [r for r in rows if r["it learned"] is None or r["untrained/learned it"] < 1.0]
    gains = [r["untrained/learned it"] for r in rows if r["it learned"] is not None]
    return (
        f"- learned fewer iterations than untrained at {len(rows) - len(worse)} of "
        f"{len(rows)} (angle, eps) pairs; untrained/learned from {min(gains):.2f} to "
        f"{max(gains):.2f}"
        + (
            "; learned worse (or not converged) at "
            + ", ".join(f"theta {r['theta']:.3f} eps {r['eps']:g}" for r in worse)
            if worse
            else ""
        )
        + "\n"
    )


def verdict(rows) -> str:
    out = []
    within = [r for r in rows if r["learned/SA it"] <= 2.0]
    faster = [r for r in rows if r["learned/SA t"] <= 1.0]
    out.append(
        f"- within 2x SA-PCG's iterations: {len(within)} of {len(rows)} rows"
        + (
            "; not within: "
            + ", ".join(
                f"{r['family']} {r['n']}² ({r['learned/SA it']:.2f}x)"
                for r in rows
                if r not in within
            )
            if len(within) < len(rows)
            else ""
        )
    )
    out.append(
        f"- total time <= SA-PCG's: {len(faster)} of {len(rows)} rows"
        + (
            "; slower: "
            + ", ".join(
                f"{r['family']} {r['n']}² ({r['learned/SA t']:.2f}x)"
                for r in rows
                if r not in faster
            )
            if len(faster) < len(rows)
            else ""
        )
    )
    for fam in TEST_FAMILIES:
        fr = [r for r in rows if r["family"] == fam]
        if not fr:
            continue
        gains = [r["untrained/learned it"] for r in fr]
        bar = 1.0 if fam in UNSEEN else 1.3  # an unseen generator: never worse
        ok = all(g >= bar for g in gains)
        out.append(
            f"- {fam}{' (generator never seen in training)' if fam in UNSEEN else ''}: "
            "untrained/learned iterations "
            + ", ".join(f"{g:.2f}" for g in gains)
            + (
                f" (learning buys >= {bar:g}x)"
                if ok
                else f" (learning buys LESS than {bar:g}x here)"
            )
        )
    return "\n".join(out) + "\n"


COEFF_HEAD = "## Coefficient-aware DCDM: one network for four families"


def coeff_only(args, log=print) -> None:
    """Train, measure and merge the section into the stored dcdm.json / dcdm.md."""
    import json
    import sys

    from pdesurrogates.io import save

    from _common import RESULTS, markdown_table, write_results

    net, info = train_coeff(args, log)
    save(net, RESULTS / "dcdm_coeff2d", metadata={"training": info})
    sizes = [int(v) for v in args.coeff_sizes.split(",")]
    rows = coeff_rows(net, sizes, log)
    sweep = angle_sweep(net, args.coeff_sweep_n, args.coeff_sweep, log) if args.coeff_sweep else []
    cmd = " ".join(["python", "bench_dcdm.py", *sys.argv[1:]])
    path = RESULTS / "dcdm.json"
    data = json.loads(path.read_text())
    md = (RESULTS / "dcdm.md").read_text()
    body = md.partition("\n\n")[2]
    body = body.split("\n\n", 1)[1] if body.startswith("Command:") else body
    body = body.split(COEFF_HEAD)[0].rstrip("\n") + "\n\n"
    data["coefficient_aware"] = {"command": cmd, "training": info, "rows": rows, "sweep": sweep}
    body += (
        f"{COEFF_HEAD}\n\n"
        f"Command: `{cmd}` (trains the network, saved to `results/dcdm_coeff2d/`).\n\n"
        "One ConjugateDirectionNet(coefficients=True), trained once on a mix of Poisson, "
        "variable-coefficient, anisotropic and smoke matrices (training matrices: "
        f"{', '.join(info['train_problems'])}), used without retraining on held-out "
        "problems and sizes: varcoef seed 100 (max/min coefficient >= 1e4), anisotropy "
        "eps = 1e-3, theta = pi/8 (angle not in training), smoke with two discs at new "
        "places, and coefficient fields of two generators never used in training "
        "(randcoef: random_coefficient, contrast 1e4, correlation 3 cells, seed 0; "
        "randcoef-l8: correlation 8 cells). Random b, rtol 1e-6 on the true residual, "
        "one thread; every time is "
        "process CPU seconds (time.process_time, for SA and DCDM alike), the best of 3 "
        "interleaved runs. 'untrained' is the "
        "same network at its initialisation: a geometric V-cycle (aggregation coarse "
        "operators P^T A P / 2, l1-Jacobi smoothing, bilinear interpolation; a 5x5 "
        "smoother's extra taps start at zero and are left out of its compiled cycle) = the "
        "classical geometric multigrid with the same cycle. SA = scipy cg + pyamg smoothed "
        "aggregation; times are setup + solve (DCDM: stencil extraction, network setup and "
        "compiling its cycle to sparse matrices included; the iterations apply that cycle "
        "in numpy, float32). Training (reproducible): "
        f"{info['epochs']} epochs, Adam with cosine learning rate from {info['lr']:g}, "
        f"batch 16, seeds {', '.join(map(str, info['seeds']))}, kept seed {info['seed']} "
        "(lowest DCDM loss relative to the untrained network on validation matrices of "
        f"the training families: {', '.join(info['valid_problems'])}; scores "
        + ", ".join(f"{r['seed']}: {r['valid_score']:.4f}" for r in info["runs"])
        + ")"
        + (
            ""
            if all(r["epochs_run"] == info["epochs"] for r in info["runs"])
            else " (the time cap ended a run early: NOT reproducible)"
        )
        + f", {info['train_s']:.0f} s in all, data {info['data_s']:.0f} s, "
        f"{info['parameters']} parameters"
        + (
            "; each training matrix's loss divided by its loss under the initial network"
            if args.coeff_balance
            else ""
        )
        + (
            f"; the anisotropic matrices' loss times {args.coeff_aniso_weight:g}"
            if args.coeff_aniso_weight != 1
            else ""
        )
        + (
            f"; smoother taps up to {args.coeff_reach} cells away (on the pattern of A^2)"
            if args.coeff_reach != 1
            else ""
        )
        + ".\n\n"
        + markdown_table(rows)
        + "\n"
        + verdict(rows)
        + (
            f"\n### Every angle: anisotropy at {args.coeff_sweep_n}², {args.coeff_sweep} "
            "angles over [0, pi/2]\n\nThe same network and its initialisation, rtol 1e-6 "
            "(a blank count: not converged in 2,000 iterations).\n\n"
            + markdown_table(sweep)
            + "\n"
            + sweep_summary(sweep)
            if sweep
            else ""
        )
    )
    previous = data.pop("command", None)
    data.pop("benchmark", None)
    data.pop("environment", None)
    write_results("dcdm", data, body, command=previous)
