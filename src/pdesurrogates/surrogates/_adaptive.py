"""Adaptive multi-fidelity sampling and the multi-fidelity UQ study.

:func:`adaptive_cokriging` grows a nested multi-fidelity design by calling the user's
simulators, one new point per iteration:

1. fit :class:`~pdesurrogates.surrogates.CoKrigingGP` (AR(1)) on the current design;
2. pick the location ``x*`` among random candidates in the box by
   * ``"variance"``: the largest predictive variance of the highest level (MMSE), optionally
     weighted by an input density ``weight(x)`` (for UQ, variance where inputs are likely);
   * ``"ivr"``: the largest integrated variance reduction — the drop of the (weighted)
     average predictive variance over integration points if the highest level were
     observed at ``x*`` (computed from the joint posterior covariance);
3. pick the fidelity by cost (Meliani et al., 2019): level ``l = argmax_l σ²_l(x*) / C_l²``,
   ``σ²_l`` the share of level ``l`` in the variance at ``x*`` (see
   :meth:`CoKrigingGP.variance_contributions`) and ``C_l`` the cumulative cost of running
   levels ``0..l`` there (the design stays nested);
4. run the simulators of levels ``0..l`` at ``x*`` and repeat until the budget is spent.

:func:`mf_uq_study` propagates input distributions through a surrogate and through the true
function on the **same** input samples with :func:`pdesurrogates.uq.propagate`, and reports
moments, densities and the Wasserstein-1 distance; :func:`plot_uq_study` draws them.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pdesurrogates._figures import Quantity, figure, label_axes, robust_limits, styled

__all__ = [
    "AdaptiveResult",
    "MFStudyResult",
    "adaptive_cokriging",
    "mf_uq_study",
    "plot_uq_study",
]


@dataclass
class AdaptiveResult:
    """Outcome of :func:`adaptive_cokriging`.

    Attributes
    ----------
    model : CoKrigingGP
        The model fitted on the final design.
    xs, ys : list of ndarray
        The final nested design and outputs, lowest fidelity first.
    history : list of dict
        One record per iteration: ``x``, ``level``, ``criterion`` value, ``max_std``,
        ``cost`` spent so far, ``seconds``.
    spent : float
        Total simulator cost (initial design included).
    """

    model: Any
    xs: list
    ys: list
    history: list = field(default_factory=list)
    spent: float = 0.0


def _call(sim: Callable, x: np.ndarray, level: int) -> np.ndarray:
    y = np.asarray(sim(x), dtype=np.float64).reshape(-1)
    if y.shape != (x.shape[0],):
        raise ValueError(
            f"the level-{level} simulator returned shape {y.shape} for {x.shape[0]} input "
            f"point(s); it must return one value per point, shape ({x.shape[0]},)"
        )
    if not np.all(np.isfinite(y)):
        raise ValueError(f"the level-{level} simulator returned NaN or infinite values")
    return y


def adaptive_cokriging(
    simulators: Sequence[Callable[[np.ndarray], np.ndarray]],
    bounds,
    *,
    initial: Sequence[int] | tuple[Sequence, Sequence] = (10, 4),
    costs: Sequence[float] | None = None,
    budget: float = 100.0,
    criterion: str = "variance",
    weight: Callable[[np.ndarray], np.ndarray] | None = None,
    n_candidates: int = 2000,
    n_integration: int = 256,
    max_iter: int = 200,
    seed: int = 0,
    progress: bool = True,
    model_kwargs: Mapping | None = None,
    callback: Callable[[dict], None] | None = None,
) -> AdaptiveResult:
    """Grow a nested multi-fidelity design by cost-aware variance-based sampling.

    Parameters
    ----------
    simulators : sequence of callables
        ``f_l(x: (n, d)) -> (n,)``, lowest fidelity first.
    bounds : array (d, 2)
        The input box (candidates are drawn in it).
    initial : sequence of int, or (xs, ys)
        Initial nested design sizes per level (Latin hypercube + nested subsets; the
        simulators are run on it and its cost counts), or an existing design.
    costs : sequence of float
        Cost of one run at each level (default 1, 10, 100, ...).
    budget : float
        Total cost allowed, initial design included.
    criterion : {"variance", "ivr"}
        Location criterion (see the module notes).
    weight : callable, optional
        Input density ``p(x)`` (up to a constant) weighting the criterion.
    n_candidates, n_integration : int
        Random candidate points per iteration, and integration points for ``"ivr"``.
    max_iter : int
        Safety cap on iterations.
    seed : int
        Seed of the designs and candidates.
    progress : bool
        Show a progress bar of the cost spent (each iteration is also logged to the
        ``pdesurrogates`` logger).
    model_kwargs : mapping, optional
        Passed to :class:`CoKrigingGP`.
    callback : callable, optional
        Called with each iteration's record.

    Returns
    -------
    AdaptiveResult
    """
    from pdesurrogates._progress import ProgressBar, logger
    from pdesurrogates.surrogates._cokriging import CoKrigingGP

    sims = list(simulators)
    bounds, costs = _check_study(sims, bounds, costs, criterion, budget)
    n_levels, d = len(sims), bounds.shape[0]
    rng = np.random.default_rng(seed)
    xs, ys, spent = _initial_design(sims, bounds, initial, costs, seed, rng)
    if spent > budget:
        raise ValueError(
            f"the initial design already costs {spent:g} > budget {budget:g}; "
            "raise the budget or shrink the initial design"
        )
    kwargs = {"n_restarts": 2, **dict(model_kwargs or {}), "in_dim": d, "n_levels": n_levels}
    kwargs["kind"] = "ar1"
    cum_cost = np.cumsum(costs)
    history: list[dict] = []
    model = CoKrigingGP(**kwargs).fit_levels(xs, ys, bounds=bounds)
    with ProgressBar(enabled=progress) as bar:
        task = bar.add_task("adaptive co-kriging (cost)", total=budget, completed=spent)
        for it in range(max_iter):
            affordable = [lv for lv in range(n_levels) if spent + cum_cost[lv] <= budget]
            if not affordable:
                break
            t0 = time.perf_counter()
            x_new, crit, var = _next_point(
                model, bounds, criterion, weight, n_candidates, n_integration, rng
            )
            contrib = model.variance_contributions(x_new)[:, 0]
            value = [
                contrib[lv] / cum_cost[lv] ** 2 if lv in affordable else -1
                for lv in range(n_levels)
            ]
            level = int(np.argmax(value))
            for lv in range(level + 1):
                xs[lv] = np.concatenate([xs[lv], x_new])
                ys[lv] = np.concatenate([ys[lv], _call(sims[lv], x_new, lv)])
            spent += float(cum_cost[level])
            model = CoKrigingGP(**kwargs).fit_levels(xs, ys, bounds=bounds)
            rec = {
                "iteration": it,
                "x": x_new[0].tolist(),
                "level": level,
                "criterion": crit,
                "max_std": float(math.sqrt(max(var.max(), 0.0))),
                "cost": spent,
                "seconds": time.perf_counter() - t0,
            }
            history.append(rec)
            msg = (
                f"level {level} at x={np.array2string(x_new[0], precision=3)}, "
                f"max std {rec['max_std']:.3g}, cost {spent:g}/{budget:g}"
            )
            bar.update(task, completed=spent, info=msg)
            logger.info("adaptive co-kriging [%d] %s", it, msg)
            if callback is not None:
                callback(rec)
    return AdaptiveResult(model=model, xs=xs, ys=ys, history=history, spent=spent)


def _check_study(sims, bounds, costs, criterion, budget):
    """Validated ``bounds`` (d, 2) and per-level ``costs``."""
    n_levels = len(sims)
    if n_levels < 2:
        raise ValueError(f"give at least 2 simulators (lowest fidelity first); got {n_levels}")
    bounds = np.asarray(bounds, dtype=np.float64)
    if bounds.ndim != 2 or bounds.shape[1] != 2 or not np.all(bounds[:, 1] > bounds[:, 0]):
        raise ValueError("bounds must have shape (d, 2) with lower < upper")
    costs = [10.0**k for k in range(n_levels)] if costs is None else [float(c) for c in costs]
    if len(costs) != n_levels or any(not (c > 0) for c in costs):
        raise ValueError(f"costs must hold {n_levels} positive numbers; got {costs}")
    if criterion not in ("variance", "ivr"):
        raise ValueError(f"criterion must be 'variance' or 'ivr'; got {criterion!r}")
    if not budget > 0:
        raise ValueError(f"budget must be positive; got {budget!r}")
    return bounds, costs


def _initial_design(sims, bounds, initial, costs, seed, rng):
    """The starting nested design ``xs``, its outputs ``ys`` and the cost spent on them."""
    from scipy.stats import qmc

    n_levels, d = len(sims), bounds.shape[0]
    if isinstance(initial, tuple) and len(initial) == 2 and not np.isscalar(initial[0]):
        xs = [np.asarray(x, dtype=np.float64).reshape(len(x), d) for x in initial[0]]
        ys = [np.asarray(y, dtype=np.float64).reshape(-1) for y in initial[1]]
        return xs, ys, 0.0
    counts = [int(c) for c in initial]
    if len(counts) != n_levels or any(a < b for a, b in itertools.pairwise(counts)):
        raise ValueError(
            f"initial must give {n_levels} non-increasing sizes (lowest fidelity first); "
            f"got {counts}"
        )
    u = qmc.LatinHypercube(d=d, seed=seed).random(counts[0])
    xs = [bounds[:, 0] + u * (bounds[:, 1] - bounds[:, 0])]
    for c in counts[1:]:
        prev = xs[-1]
        xs.append(prev[np.sort(rng.choice(len(prev), c, replace=False))])
    ys, spent = [], 0.0
    for level, (sim, x) in enumerate(zip(sims, xs, strict=True)):
        ys.append(_call(sim, x, level))
        spent += costs[level] * len(x)
    return xs, ys, spent


def _next_point(model, bounds, criterion, weight, n_candidates, n_integration, rng):
    """The best random candidate ``(1, d)``, its criterion value and the candidates' variance."""
    d, span = bounds.shape[0], bounds[:, 1] - bounds[:, 0]
    cand = bounds[:, 0] + rng.random((n_candidates, d)) * span
    w = np.ones(n_candidates) if weight is None else np.asarray(weight(cand), float)
    var = model.predict(cand).std ** 2
    if criterion == "variance":
        score = var * w
        best = int(np.argmax(score))
        return cand[best : best + 1], float(score[best]), var
    # integrated variance reduction, on the 128 candidates of largest weighted variance
    top = np.argsort(var * w)[-min(128, n_candidates) :]
    integ = bounds[:, 0] + rng.random((n_integration, d)) * span
    wi = np.ones(n_integration) if weight is None else np.asarray(weight(integ), float)
    wi = wi / wi.sum()
    cov = model.posterior_covariance(np.concatenate([integ, cand[top]]))
    cross = cov[:n_integration, n_integration:]
    diag = np.clip(np.diag(cov)[n_integration:], 1e-300, None)
    score_top = (wi[:, None] * cross**2).sum(0) / diag
    i = int(np.argmax(score_top))
    best = int(top[i])
    return cand[best : best + 1], float(score_top[i]), var


# ---------------------------------------------------------------------- the UQ study


@dataclass
class MFStudyResult:
    """Outcome of :func:`mf_uq_study`: one propagation per input distribution.

    Attributes
    ----------
    results : dict of str to PropagationResult
        Surrogate propagations (with ``reference`` holding the truth comparison: mean error,
        relative std error, Wasserstein-1, KS distance) keyed by distribution name.
    summary : list of dict
        One row per distribution: surrogate and true mean/std, errors, W1, KS.
    """

    results: dict
    summary: list

    def to_dict(self) -> dict:
        return {"summary": self.summary}


def mf_uq_study(
    surrogate: Callable[[np.ndarray], np.ndarray],
    truth: Callable[[np.ndarray], np.ndarray],
    distributions: Mapping[str, Mapping[str, Any]],
    *,
    n_samples: int = 100_000,
    seed: int = 0,
    method: str = "mc",
    progress: bool = False,
) -> MFStudyResult:
    """Propagate input distributions through a surrogate and the truth on the same samples.

    Parameters
    ----------
    surrogate, truth : callables
        ``f(x: (n, d)) -> (n,)``: e.g. ``lambda x: model.predict(x).mean`` and
        ``problem.high``.
    distributions : mapping of str to mapping of str to distribution
        Named input distributions; each maps input names (in input order) to scipy.stats
        frozen distributions or specs for :func:`pdesurrogates.uq.make_distribution`
        (e.g. ``{"uniform": {"x": {"dist": "uniform", "low": 0, "high": 1}}}``).
    n_samples : int
        Samples per distribution (the same samples go through both functions).
    seed : int
        Seed of the input samples.
    method : {"mc", "lhs", "sobol"}
        Sampling design, passed to :func:`pdesurrogates.uq.propagate`.

    Returns
    -------
    MFStudyResult
    """
    from pdesurrogates.uq import propagate

    if not distributions:
        raise ValueError("give at least one named input distribution")
    results, summary = {}, []
    for name, inputs in distributions.items():
        if not isinstance(inputs, Mapping) or not inputs:
            raise ValueError(f"distribution {name!r} must map input names to distributions")
        res = propagate(
            surrogate,
            inputs,
            n_samples,
            method=method,
            seed=seed,
            reference=truth,
            progress=progress,
        )
        ref = res.reference
        results[name] = res
        summary.append(
            {
                "distribution": name,
                "n_samples": int(n_samples),
                "mean": float(res.mean),
                "true_mean": float(ref["mean"]),
                "std": float(res.std),
                "true_std": float(ref["std"]),
                "mean_error": float(ref["mean_error"]),
                "std_rel_error": float(ref["std_rel_error"]),
                "wasserstein1": float(ref["wasserstein1"]),
                "ks": float(ref["ks"]),
            }
        )
    return MFStudyResult(results=results, summary=summary)


@styled
def plot_uq_study(study: MFStudyResult, *, bins: int = 80, output: Quantity | str | None = None):
    """Output densities of surrogate and truth (histograms on the same input samples), one
    panel per input distribution; the legend gives each one's mean and std, the title
    the Wasserstein-1 and KS distances.

    The x axis spans the 0.5–99.5 % quantiles of both outputs (a few outliers do not
    squash the bulk); the share of samples outside is written in the panel. ``output``
    (a :class:`~pdesurrogates._figures.Quantity` or a name) labels the x axis. Returns
    the matplotlib figure.
    """
    q = output if isinstance(output, Quantity) else Quantity("y", long_name=output or "output y")
    per = f"1/{q.units}" if q.units not in ("", "1") else q.units
    fig, axes = figure(1, len(study.results), panel=(4.6, 3.4))
    for ax, (name, res), row in zip(axes[0], study.results.items(), study.summary, strict=True):
        y, r = np.asarray(res.outputs), np.asarray(res.reference_outputs)
        lo, hi = robust_limits(y, r)
        edges = np.linspace(lo, hi, bins + 1)
        outside = 100 * float(np.mean((y < lo) | (y > hi) | (r < lo) | (r > hi)))
        truth = f"truth: mean {row['true_mean']:.4g}, std {row['true_std']:.3g}"
        ax.hist(r, bins=edges, density=True, alpha=0.45, color="0.45", label=truth)
        surr = f"surrogate: mean {row['mean']:.4g}, std {row['std']:.3g}"
        ax.hist(y, bins=edges, density=True, histtype="step", lw=1.5, color="C0", label=surr)
        note = f"x range: 0.5–99.5 % quantiles\n({outside:.2g} % of samples outside)"
        ax.text(0.98, 0.97, note, transform=ax.transAxes, ha="right", va="top", fontsize=7)
        ax.set_xlim(lo, hi)
        ax.set_ylim(0, ax.get_ylim()[1] * 1.45)
        ax.set_title(
            f"{name} inputs, {row['n_samples']} samples: "
            f"W1 {row['wasserstein1']:.2g}, KS {row['ks']:.2g}"
        )
        label_axes(ax, q, q.derived("probability density", units=per))
        ax.legend(loc="upper left")
    return fig
