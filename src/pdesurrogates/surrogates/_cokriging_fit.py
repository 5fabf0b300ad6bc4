"""Recursive AR(1) / NARGP fitting of :class:`~pdesurrogates.surrogates.CoKrigingGP`.

Levels are fitted lowest fidelity first. Level ``k`` is a GP on ``[x, y_{k−1}]``; with a
nested design ``y_{k−1}`` at its points is the observed lower-level value, otherwise the
lower level's posterior mean (Forrester 2007). Each exact level is fitted from several
starts (:func:`init_hypers`) by L-BFGS and keeps the best marginal likelihood; the
sparse (SGPR) lowest level is fitted once by Adam (:mod:`._cokriging_optim`). Progress is
one :class:`~pdesurrogates._progress.ProgressBar` task over every start of every level;
a :class:`~pdesurrogates._progress.TimeBudget` stops further restarts (every level is
still fitted from at least one start).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from pdesurrogates._progress import ProgressBar, TimeBudget, logger
from pdesurrogates.errors import TrainingError
from pdesurrogates.surrogates._cokriging_centre import try_centred
from pdesurrogates.surrogates._cokriging_gp import (
    DTYPE,
    ExactPosterior,
    gp_classes,
    gp_settings,
    import_gpytorch,
    loo_residuals,
    loo_variance_ratio,
)
from pdesurrogates.surrogates._cokriging_optim import adam, lbfgs
from pdesurrogates.surrogates._mf_checks import warn_outside

__all__ = [
    "check_levels",
    "check_n_train",
    "check_outputs",
    "fit_recursive",
    "half_sample_mode",
    "init_hypers",
    "input_box",
    "nested_index",
    "warn_outside",
]


#: Length-scale multipliers tried by :func:`_loo_lengthscales` after the likelihood fit.
LS_FACTORS = (0.7, 1.3, 1.6, 2.0)
#: A multiplier replaces the likelihood's length scales only if its leave-one-out error is
#: below this fraction of theirs.
LS_SWITCH = 0.8
#: Levels whose length scales are checked by leave-one-out.
LS_SEARCH_LEVELS = range(0, 100)
#: Largest exact level (points) searched by :func:`_loo_lengthscales` (cost O(n³) each).
LS_SEARCH_MAX = 600


def nested_index(x_hi: np.ndarray, x_lo: np.ndarray, tol: float = 1e-10) -> np.ndarray | None:
    """Row indices of ``x_hi`` in ``x_lo`` (or None when some row is missing)."""
    idx = np.empty(len(x_hi), dtype=np.int64)
    for i, row in enumerate(x_hi):
        d = np.abs(x_lo - row).max(1)
        j = int(np.argmin(d))
        if d[j] > tol:
            return None
        idx[i] = j
    return idx


def level_flags(name: str, flags, n_levels: int) -> list[bool] | None:
    """Per-level booleans (``None`` stays ``None``), or a ``ValueError`` naming ``name``."""
    if flags is None:
        return None
    out = [bool(f) for f in flags]
    if len(out) != n_levels:
        raise ValueError(f"{name} needs one value per level ({n_levels}); got {len(out)}")
    return out


def check_n_train(n_train) -> list[int]:
    """``n_train`` as a list of positive ints, or a ``ValueError`` naming it."""
    try:
        values = list(n_train)
    except TypeError:
        raise ValueError(f"n_train must be a list of integers; got {n_train!r}") from None
    if not all(
        isinstance(n, int | np.integer) and not isinstance(n, bool) and n >= 1 for n in values
    ):
        raise ValueError(f"n_train must be a list of integers >= 1; got {n_train!r}")
    return [int(n) for n in values]


def _as_level(k: int, x, y, in_dim: int, need: int, who: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x.detach().cpu() if torch.is_tensor(x) else x, dtype=np.float64)
    y = np.asarray(y.detach().cpu() if torch.is_tensor(y) else y, dtype=np.float64)
    if x.ndim == 1 and in_dim == 1:
        x = x[:, None]
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if x.ndim != 2 or x.shape[1] != in_dim:
        raise ValueError(f"X of level {k} must have shape (n, {in_dim}); got {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(
            f"y of level {k} must have shape ({len(x)},) to match its X; got {y.shape}"
        )
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError(f"level {k} data contain NaN or infinite values; remove them")
    if len(x) < need:
        raise ValueError(f"level {k} has {len(x)} point(s); {who} needs at least {need} there")
    return x, y


def input_box(allx: np.ndarray, in_dim: int, bounds, *, stacklevel: int = 3) -> np.ndarray:
    """The input box ``(d, 2)`` every multi-fidelity model scales its inputs to [0, 1] with.

    ``bounds`` when declared (a ``ValueError`` if malformed; a ``UserWarning`` naming the
    input dimension when data lie outside it), else the range of ``allx`` (a constant
    input gets a unit span).
    """
    if bounds is None:
        lo, hi = allx.min(0), allx.max(0)
        hi = np.where(hi > lo, hi, lo + 1.0)
        return np.stack([lo, hi], 1)
    try:
        bounds = np.asarray(bounds, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bounds must be an array of shape ({in_dim}, 2); got {bounds!r}") from exc
    if bounds.shape != (in_dim, 2) or not np.all(bounds[:, 1] > bounds[:, 0]):
        raise ValueError(
            f"bounds must have shape ({in_dim}, 2) with lower < upper in every row; "
            f"got {bounds.tolist()}"
        )
    warn_outside(allx, bounds, "training input", stacklevel=stacklevel + 1)
    return bounds


def check_outputs(ys) -> None:
    """``ValueError`` when some fidelity's outputs are constant (zero variance)."""
    for k, y in enumerate(ys):
        y = np.asarray(y)
        if len(y) and float(np.ptp(y)) <= 1e-300 + 1e-14 * float(np.abs(y).max()):
            raise ValueError(
                f"the outputs of fidelity level {k} are constant ({float(y[0]):g} at all "
                f"{len(y)} points, zero variance): they carry no information to scale or "
                "correlate; check that the right column was passed, or drop this level"
            )


def check_levels(
    xs, ys, in_dim: int, n_levels: int, bounds, *, top: int = 3, who: str = "co-kriging",
    stacklevel: int = 4,
):  # fmt: skip
    """Validate per-level data (every model's one check): returns float64 ``xs``, ``ys``
    and the input box ``(d, 2)``. Each level needs 2 points, the highest ``top``."""
    if not isinstance(xs, list | tuple) or not isinstance(ys, list | tuple):
        raise ValueError("xs and ys must be lists with one array per level, lowest fidelity first")
    if len(xs) != n_levels or len(ys) != n_levels:
        raise ValueError(
            f"expected {n_levels} levels of data; got {len(xs)} input and {len(ys)} output arrays"
        )
    levels = [
        _as_level(k, x, y, in_dim, top if k == n_levels - 1 else 2, who)
        for k, (x, y) in enumerate(zip(xs, ys, strict=True))
    ]
    xs_np = [x for x, _ in levels]
    ys_np = [y for _, y in levels]
    check_outputs(ys_np)
    return xs_np, ys_np, input_box(np.concatenate(xs_np), in_dim, bounds, stacklevel=stacklevel)


def init_hypers(gp, k: int, z, y, gen, restart: int, *, in_dim: int, noise_floor: float) -> None:
    """Starting hyperparameters of start ``restart`` of level ``k``.

    Start 0 uses a short, start 1 a long length scale; later starts draw log-uniformly.
    The AR(1) link starts from the least-squares ρ, β (γ) and is then fitted jointly.
    """
    g = import_gpytorch()

    def rand(lo, hi, shape):
        u = torch.rand(shape, generator=gen, dtype=DTYPE)
        return torch.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))

    reset = getattr(gp.covar_module, "reset_hypers", None)  # additive/ANOVA kernel
    if reset is not None:
        reset(restart, gen)
    root_d = math.sqrt(in_dim)
    for mod in gp.covar_module.modules():
        if isinstance(mod, g.kernels.RBFKernel):
            shape = mod.lengthscale.shape
            if mod.active_dims is not None and len(mod.active_dims) == 1 and k > 0:
                mod.lengthscale = rand(0.3, 3.0, shape) if restart else torch.ones(shape)
            elif restart < 2:
                mod.lengthscale = torch.full(shape, (0.3, 2.0)[restart] * root_d)
            else:
                mod.lengthscale = rand(0.1 * root_d, 2.0 * root_d, shape)
        if isinstance(mod, g.kernels.ScaleKernel):
            mod.outputscale = rand(0.3, 3.0, ()) if restart > 1 else torch.tensor(1.0)
    gp.likelihood.noise = max(1e-6, 10 * noise_floor)
    if isinstance(gp.mean_module, gp_classes()["LinearLinkMean"]):
        mean = gp.mean_module
        a = mean.basis(z)
        offset = getattr(mean, "offset", None)
        r = y - offset(z) if offset is not None else y
        sol = torch.linalg.lstsq(a, r[:, None]).solution[:, 0]
        if restart >= 2:  # shrink towards ρ·y only
            sol = torch.zeros_like(sol).index_fill_(0, torch.tensor([0]), 0.5 * float(sol[0]))
        with torch.no_grad():
            for p, c in zip(
                mean.coefficients(),
                torch.split(sol, [int(p.numel()) for p in mean.coefficients()]),
                strict=True,
            ):
                p.copy_(c)
    elif isinstance(gp.mean_module, g.means.ConstantMean):
        with torch.no_grad():
            gp.mean_module.constant.fill_(float(y.mean()))


#: Starts of an exact NARGP level above the lowest, per ``n_restarts``.
NARGP_STARTS = 2


def _n_starts(model, gp) -> int:
    """Starts of level ``gp``: one for a sparse level, ``n_restarts`` for an exact one,
    :data:`NARGP_STARTS` times that for a NARGP level above the lowest.

    Why: NARGP's kernel ``k_y k_x + k_δ`` on ``[x, y]`` has 2d + 4 hyperparameters and
    more local optima than the AR(1) discrepancy's d + 2. With 8 starts instead of 4 there
    (peer benchmark designs): Park 80/20 seed 2 0.0035 → 0.0025, Currin 40/10 seed 0
    0.024 → 0.020, Hartmann-3 80/40/20 seed 0 0.044 → 0.034; AR(1) with 8 starts at every
    level is unchanged. Sixteen starts found higher likelihoods and worse test errors
    (Hartmann-3 seed 0: 0.069).
    """
    sparse = isinstance(gp.covar_module, import_gpytorch().kernels.InducingPointKernel)
    if sparse:
        return 1
    link = isinstance(getattr(gp, "mean_module", None), gp_classes()["LinearLinkMean"])
    return model.n_restarts * (NARGP_STARTS if link and model.kind == "nargp" else 1)


def _fit_level(model, k: int, z, y, gen, budget: TimeBudget, bar, task) -> float:
    """Fit level ``k`` from its starts; keep the best marginal likelihood."""
    g = import_gpytorch()
    gp = model.levels[k]
    if hasattr(gp, "fit_level"):  # additive/ANOVA sparse level: fits itself
        value = gp.fit_level(z, y, budget=budget)
        bar.advance(task, _n_starts(model, gp), info=f"level {k}: additive sparse GP")
        gp.eval()
        return value
    gp.set_train_data(z, y, strict=False)
    sparse = isinstance(gp.covar_module, g.kernels.InducingPointKernel)
    if sparse:
        m = gp.covar_module.inducing_points.shape[0]
        perm = torch.randperm(z.shape[0], generator=gen)[:m]
        with torch.no_grad():
            gp.covar_module.inducing_points.copy_(z[perm])
    mll = g.mlls.ExactMarginalLogLikelihood(gp.likelihood, gp)
    best, best_state, last_error = -math.inf, None, None
    restarts = _n_starts(model, gp)
    for r in range(restarts):
        if best_state is not None and budget.exhausted():
            bar.advance(task, restarts - r, info=f"level {k}: time budget reached")
            break
        init_hypers(gp, k, z, y, gen, r, in_dim=model.in_dim, noise_floor=model.noise_floor)
        gp.train()
        try:
            with gp_settings():
                if sparse:
                    value = adam(gp, mll, z, y, steps=150, lr=0.05, budget=budget)
                else:
                    value = lbfgs(gp, mll, z, y, steps=200)
        except (RuntimeError, ValueError, np.linalg.LinAlgError) as exc:
            last_error = exc
            value = -math.inf
        if math.isfinite(value) and value > best:
            best = value
            best_state = {n: t.detach().clone() for n, t in gp.state_dict().items()}
        bar.advance(task, info=f"level {k}, start {r + 1}/{restarts}, log lik {best:.4g}")
    if best_state is None:
        raise TrainingError(
            f"co-kriging level {k}: every hyperparameter optimisation failed (the kernel "
            f"matrix stayed singular: {last_error}); check for duplicated points or raise "
            "noise_floor"
        )
    gp.load_state_dict(best_state)
    if not sparse and len(y) <= LS_SEARCH_MAX and k in LS_SEARCH_LEVELS and not budget.exhausted():
        _interpolation_noise(gp, mll, z, y, model.noise_floor)
        _loo_lengthscales(gp, mll, z, y)
    gp.eval()
    return best


def _refit_fixed(gp, mll, z, y, fixed, steps: int = 60) -> float:
    """Refit ``gp`` by L-BFGS with the parameters ``fixed`` frozen; its log likelihood."""
    for p in fixed:
        p.requires_grad_(False)
    gp.train()
    try:
        with gp_settings():
            return lbfgs(gp, mll, z, y, steps=steps)
    except (RuntimeError, ValueError, np.linalg.LinAlgError):
        return -math.inf
    finally:
        for p in fixed:
            p.requires_grad_(True)
        gp.eval()


#: Noise variance (times the model's floor) an exact level is tried at by
#: :func:`_interpolation_noise`.
NOISE_TRY = 2.0
#: Largest drop of the log likelihood (total, nats) that still counts as the flat part
#: the noise is lowered along by :func:`_interpolation_noise`.
LL_FLAT = 0.1
#: Largest drop (total, nats) at which :func:`_interpolation_noise` still interpolates
#: when the median absolute leave-one-out residual falls with the RMS one.
LL_SMALL = 3.0


def _interpolation_noise(gp, mll, z, y, floor: float) -> None:
    """Lower a fitted noise variance to the floor (``NOISE_TRY`` times it) when that does
    not raise the closed-form leave-one-out error; the other hyperparameters are refitted
    with the noise fixed.

    Why: on noise-free data the marginal likelihood is flat in the noise once it is far
    below the kernel matrix's small eigenvalues, and L-BFGS stops wherever the flat part
    begins. That nugget smooths an interpolant: on Forrester's low fidelity from 12
    points the fit stopped at a noise of 6e-8 (standardised) and the test error of the
    level was 1.5e-3; at the floor, 5e-4 (emukit's zero-noise linear model: 4.8e-4).
    Noisy data keep their noise: interpolating them raises the leave-one-out error. The
    likelihood must stay flat (drop ≤ :data:`LL_FLAT` nats): with two near-duplicate
    points the floor cut the leave-one-out error tenfold (each predicts the other) while the
    likelihood fell by 0.18 nats and the test error rose from 6.8e-3 to 5.3e-2 (NARGP,
    random Forrester 12/6 design of seed 0); on the LHS Forrester designs it fell by 0.002
    (seed 0) and 0.06 (seed 2). A drop of up to :data:`LL_SMALL` nats is accepted when the
    median absolute leave-one-out residual falls too: the near-duplicate pair above raised
    it (1.5e-3 → 1.8e-3) while the RMS fell tenfold. On Currin 40/10 (seed 0) the lowest
    level lost 1.98 nats, the RMS fell 0.038 → 0.034 and the median 0.0073 → 0.0066, and
    its test error went from 0.0122 to 0.0105 (emukit's zero-noise model: 0.0106).
    """
    lik = gp.likelihood
    target = NOISE_TRY * floor
    if float(lik.noise.detach()) <= 10 * target:
        return
    base = {n: t.detach().clone() for n, t in gp.state_dict().items()}
    gp.eval()
    loo0, med0, ll0 = _loo_rms(gp), _loo_median(gp), _log_lik(gp, mll, z, y)
    lik.noise = target
    value = _refit_fixed(gp, mll, z, y, [lik.noise_covar.raw_noise])
    loo1 = _loo_rms(gp) if math.isfinite(value) else math.inf
    drop = len(y) * (ll0 - value)
    flat = drop <= LL_FLAT
    small = drop <= LL_SMALL and math.isfinite(loo1) and _loo_median(gp) <= med0
    if not (loo1 <= loo0 and (flat or small)):
        gp.load_state_dict(base)


def _log_lik(gp, mll, z, y) -> float:
    """``mll(gp(z), y)`` (per point) at ``gp``'s current hyperparameters; −inf on failure."""
    gp.train()
    try:
        with torch.no_grad(), gp_settings():
            return float(mll(gp(z), y))
    except (RuntimeError, ValueError, np.linalg.LinAlgError):
        return -math.inf
    finally:
        gp.eval()


def _loo_lengthscales(gp, mll, z, y) -> None:
    """Keep the marginal-likelihood fit of an exact RBF level, or its length scales times
    one of :data:`LS_FACTORS` (output scale and link coefficients refitted by L-BFGS, the
    length scales and the noise fixed) when that lowers the closed-form leave-one-out error below
    :data:`LS_SWITCH` times the fit's.

    Why: from a dozen points the likelihood's optimum length scale is often too short for
    a smooth response (Forrester's low fidelity from 12 points: ℓ = 0.185, leave-one-out
    error 0.074 and test error 4.7e-3; at 1.6 ℓ, 0.012 and 1.3e-3). Cross-validation is the
    more robust estimate when the kernel is misspecified (Bachoc 2013).
    """
    g = import_gpytorch()
    rbfs = [m for m in gp.covar_module.modules() if isinstance(m, g.kernels.RBFKernel)]
    if not rbfs:
        return
    base = {n: t.detach().clone() for n, t in gp.state_dict().items()}
    ls0 = [m.lengthscale.detach().clone() for m in rbfs]
    gp.eval()
    best_loo, best_state = _loo_rms(gp), base
    limit = LS_SWITCH * best_loo
    for c in LS_FACTORS:
        gp.load_state_dict(base)
        for m, ls in zip(rbfs, ls0, strict=True):
            con = m.raw_lengthscale_constraint
            m.lengthscale = (ls * c).clamp(1.001 * con.lower_bound, 0.999 * con.upper_bound)
            m.raw_lengthscale.requires_grad_(False)
        noise = gp.likelihood.noise_covar.raw_noise
        noise.requires_grad_(False)  # a larger noise would smooth instead of interpolate
        gp.train()
        try:
            with gp_settings():
                value = lbfgs(gp, mll, z, y, steps=60)
        except (RuntimeError, ValueError, np.linalg.LinAlgError):
            value = -math.inf
        finally:
            noise.requires_grad_(True)
            for m in rbfs:
                m.raw_lengthscale.requires_grad_(True)
        gp.eval()
        loo = _loo_rms(gp) if math.isfinite(value) else math.inf
        if loo < min(limit, best_loo):
            best_loo, best_state = loo, {n: t.detach().clone() for n, t in gp.state_dict().items()}
    if best_state is base:
        gp.load_state_dict(base)
        return
    # the longer length scales interpolate better but their posterior variance between the
    # points is much smaller than the likelihood fit's; widen it by the
    # median ratio of the two at midpoints between training points
    probe = _midpoints(z)
    with torch.no_grad():
        gp.load_state_dict(base)
        var_ml = ExactPosterior(gp)(probe)[1]
        gp.load_state_dict(best_state)
        var_cv = ExactPosterior(gp)(probe)[1]
    ratio = float((var_ml / var_cv.clamp_min(1e-300)).median())
    gp.var_factor = min(max(ratio, 1.0), 100.0) if math.isfinite(ratio) else 1.0


def _midpoints(z: torch.Tensor, n: int = 256) -> torch.Tensor:
    """Midpoints of ``n`` seeded random pairs of distinct rows of ``z``."""
    gen = torch.Generator().manual_seed(0)
    i = torch.randint(len(z), (n,), generator=gen)
    j = (i + 1 + torch.randint(len(z) - 1, (n,), generator=gen)) % len(z)
    return 0.5 * (z[i] + z[j])


def _level_inputs(model, k: int, xs_np, xs_t, ys_t) -> torch.Tensor:
    """``[x, y_{k−1}]`` at the level-k points: observed if nested, else the posterior mean."""
    if k == 0:
        return xs_t[0]
    idx = nested_index(xs_np[k], xs_np[k - 1])
    if idx is not None:
        col = ys_t[k - 1][idx]
    else:
        with torch.no_grad():
            col = model._predict_scaled(xs_t[k], k - 1)[0].detach()
    return torch.cat([xs_t[k], col[:, None]], dim=1)


def _var_scale(gp) -> float:
    """Cross-validation factor of an exact level's predictive variance (1 otherwise)."""
    g = import_gpytorch()
    if hasattr(gp, "fit_level") or isinstance(gp.covar_module, g.kernels.InducingPointKernel):
        return 1.0
    if len(gp.y_train) > LS_SEARCH_MAX:
        return 1.0
    return min(loo_variance_ratio(gp) * getattr(gp, "var_factor", 1.0), 100.0)


def _loo_median(gp) -> float:
    e = loo_residuals(gp)
    return float(e.abs().median()) if torch.isfinite(e).all() else math.inf


def _loo_rms(gp) -> float:
    e = loo_residuals(gp)
    return float(e.square().mean().sqrt()) if torch.isfinite(e).all() else math.inf


def half_sample_mode(y: np.ndarray) -> float:
    """Half-sample mode of ``y``, a variant of Bickel and Frühwirth's (2006): repeatedly keep
    the shortest interval holding half of the sorted values (the first on a tie), then take
    the mean of the last two or three (theirs averages the closer pair of three). A robust
    location that moves with shifts and positive scales of ``y`` (like the mean, unlike
    zero)."""
    y = np.sort(np.asarray(y, dtype=np.float64))
    while len(y) > 3:
        h = (len(y) + 1) // 2
        i = int(np.argmin(y[h - 1 :] - y[: len(y) - h + 1]))
        y = y[i : i + h]
    return float(y.mean())


def _choose_constant(model, k: int) -> None:
    """Exact level ``k`` with a constant mean: keep its likelihood (GLS) constant, or fix it
    at the outputs' :func:`half_sample_mode` when that lowers the closed-form leave-one-out
    error with that mean fixed (``Q = A⁻¹``, :func:`~._cokriging_gp.mean_basis`; the kernel
    is not refitted). Records ``model.fixed_mean[k]``.

    Why: a response that is flat away from a few wells or peaks (Hartmann-3: 0 outside its
    four wells) is pulled towards the mean of the wells far from the data; a mean at the
    flat part's level predicts better there. Hartmann-3 80 points, seeds 0/2: GLS constant
    −0.46/−0.53, mode −0.03/−0.03, leave-one-out 0.069 → 0.065 and 0.0711 → 0.0705, test
    error of the level 0.0294 → 0.0274 and 0.0407 → 0.0320. Equivariant: shifting and
    scaling the outputs shifts and scales the mode.
    """
    gp = model.levels[k]
    g = import_gpytorch()
    mean = getattr(gp, "mean_module", None)  # none on an additive sparse level
    if not isinstance(mean, g.means.ConstantMean) or len(gp.y_train) > LS_SEARCH_MAX:
        return
    if isinstance(gp.covar_module, g.kernels.InducingPointKernel):
        return
    const = mean.constant
    c_gls = float(const.detach())
    gp.fixed_mean = True
    gp.eval()
    loo_gls = _loo_rms(gp)
    with torch.no_grad():
        const.fill_(half_sample_mode(gp.y_train.numpy()))
    if _loo_rms(gp) < loo_gls:
        model.fixed_mean[k] = True
    else:
        gp.fixed_mean = False
        with torch.no_grad():
            const.fill_(c_gls)
    gp.train()  # drops gpytorch's prediction cache, built with the other constant
    gp.eval()


def _try_quadratic(model, k: int, value: float, gen, budget, bar, task) -> None:
    """NARGP level ``k``: refit with the quadratic link mean ``ρ₂ y² + ηᵀx y²`` and keep it
    when its closed-form leave-one-out error (:func:`loo_residuals`) is lower than the
    linear link's."""
    lin = model.levels[k]
    n = len(lin.y_train)
    quad = model.make_level(k, n, quadratic=True)
    quad.z_train.copy_(lin.z_train)
    quad.y_train.copy_(lin.y_train)
    model.levels[k] = quad
    try:
        value_q = _fit_level(model, k, quad.z_train, quad.y_train, gen, budget, bar, task)
    except TrainingError:
        value_q = -math.inf
    if math.isfinite(value_q) and _loo_rms(quad) < _loo_rms(lin):
        model.quadratic[k] = True
    else:
        model.levels[k] = lin


def fit_recursive(model, xs_np, ys_t, xs_t, *, progress: bool, max_time: float | None) -> None:
    """Fit every level of a built ``model`` (:meth:`CoKrigingGP._build`), lowest first."""
    gen = torch.Generator().manual_seed(model.seed)
    budget = TimeBudget(max_time)
    model.fit_seconds = []
    total = sum(
        _n_starts(model, gp)
        * (1 + model.can_be_quadratic(k, len(ys_t[k])) + (k > 0 and model.kind == "ar1"))
        for k, gp in enumerate(model.levels)
    )
    with ProgressBar(enabled=progress) as bar:
        task = bar.add_task("co-kriging", total=total)
        for k in range(model.n_levels):
            t0 = time.perf_counter()
            gp = model.levels[k]
            gp.z_train.copy_(_level_inputs(model, k, xs_np, xs_t, ys_t))
            gp.y_train.copy_(ys_t[k])
            value = _fit_level(model, k, gp.z_train, gp.y_train, gen, budget, bar, task)
            _choose_constant(model, k)
            if k and model.kind == "ar1":
                try_centred(model, k, gen, budget, bar, task, _fit_level)
            if model.can_be_quadratic(k, len(ys_t[k])):
                _try_quadratic(model, k, value, gen, budget, bar, task)
            model.var_scale[k] = _var_scale(model.levels[k])
            model.fit_seconds.append(time.perf_counter() - t0)
            kind = "SGPR" if k == 0 and model._uses_sgpr(len(ys_t[0])) else "exact"
            rho = f", rho={model.rho[k - 1]:.4g}" if k and model.kind == "ar1" else ""
            logger.info(
                "co-kriging level %d: n=%d, %s, %.1f s%s",
                k,
                len(ys_t[k]),
                kind,
                model.fit_seconds[-1],
                rho,
            )
