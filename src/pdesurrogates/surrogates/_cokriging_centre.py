"""The centred AR(1) link of :class:`~pdesurrogates.surrogates.CoKrigingGP`.

Above the lowest level the default link mean is ``ρ y_{k−1} + β (+ γᵀx)`` with every
coefficient fitted. The centred link ``y_k = m + ρ (y_{k−1} − m) + δ_k`` ties the offset
to ``m``, the lowest level's constant mean (its likelihood constant or its half-sample
mode, whichever the fit kept), and leaves only ρ and a zero-mean discrepancy δ_k. It moves
with shifts and scales of the outputs (``m`` does); with ``m = 0`` it is the zero-mean
model of Kennedy and O'Hagan (2000) as emukit fits it.

Each AR(1) level above the lowest is fitted with both links; :func:`try_centred` keeps
the centred one when its evidence (:func:`link_evidence`) is at least the default's and
its discrepancy stays a discrepancy (:func:`amplitude_ratio` at most :data:`MAX_AMPLITUDE`).
"""

from __future__ import annotations

import math

import torch

from pdesurrogates._progress import logger
from pdesurrogates.errors import TrainingError
from pdesurrogates.surrogates._cokriging_gp import DTYPE, gp_settings, import_gpytorch, mean_basis

__all__ = ["MAX_AMPLITUDE", "amplitude_ratio", "centre_values", "link_evidence", "try_centred"]

#: Largest :func:`amplitude_ratio` of a centred level that is kept.
MAX_AMPLITUDE = 2.0
#: Prior variance of every link coefficient in :func:`link_evidence` (standardised units).
PRIOR_VAR = 1.0


def centre_values(model, k: int) -> tuple[float, float] | None:
    """``(m_{k−1}, m_k)``: the lowest level's constant mean ``m`` in the standardised units
    of levels ``k − 1`` and ``k``; None when the lowest level has no fitted constant mean
    (sparse or additive level)."""
    gp0 = model.levels[0]
    g = import_gpytorch()
    mean = getattr(gp0, "mean_module", None)
    if not isinstance(mean, g.means.ConstantMean) or not hasattr(gp0, "z_train"):
        return None
    if isinstance(gp0.covar_module, g.kernels.InducingPointKernel):
        return None
    m = float(model.y_mean[0]) + float(model.y_std[0]) * float(mean.constant.detach())
    return tuple((m - float(model.y_mean[j])) / float(model.y_std[j]) for j in (k - 1, k))


def link_evidence(gp, prior_var: float = PRIOR_VAR) -> float:
    """Log marginal likelihood per point of a fitted exact level with its link coefficients
    integrated out under independent ``N(0, prior_var)`` priors (standardised units):
    ``log N(y − offset; 0, K + σ²I + prior_var · H Hᵀ)``, ``H`` the mean's basis
    (:func:`~._cokriging_gp.mean_basis`), kernel hyperparameters as fitted. Unlike the
    profile likelihood it charges a link for each coefficient it fits, so links with
    different bases can be compared (−inf when the matrix is not positive definite)."""
    z, y = gp.z_train, gp.y_train
    n = len(y)
    with torch.no_grad(), gp_settings():
        k = gp.covar_module(z).to_dense()
        a = k + gp.likelihood.noise.reshape(()).to(k.dtype) * torch.eye(n, dtype=k.dtype)
        h = mean_basis(gp, z)
        chol, info = torch.linalg.cholesky_ex(a + prior_var * h @ h.T)
        if int(info):
            return -math.inf
        offset = getattr(gp.mean_module, "offset", None)
        r = (y - offset(z) if offset is not None else y)[:, None]
        quad = float((r * torch.cholesky_solve(r, chol)).sum())
        logdet = 2.0 * float(chol.diagonal().log().sum())
    return -0.5 * (quad + logdet + n * math.log(2 * math.pi)) / n


def amplitude_ratio(gp) -> float:
    """Prior variance of a fitted level's discrepancy over the mean square of its targets
    ``y − mean(z)`` at the training points (nan without a scaled kernel).

    Near 1 for a discrepancy the data determine. A ratio in the tens or hundreds is a
    long-length-scale component with a large variance standing in for a mean the link does
    not have: Hartmann-3 80/40/20 seed 0, top level centred: 41 (length scales 1e4 / 12 /
    0.36, test error 0.060 against 0.033 for the default link); Currin 40/10 seed 2: 374
    (0.033 against 0.027). Where the centred link helped it was at most 1.6.
    """
    scale = getattr(gp.covar_module, "outputscale", None)
    if scale is None:
        return math.nan
    with torch.no_grad():
        r = gp.y_train - gp.mean_module(gp.z_train)
        return float(scale.detach()) / max(float(r.square().mean()), 1e-300)


def try_centred(model, k: int, gen, budget, bar, task, fit_level) -> bool:
    """Fit AR(1) level ``k`` (fitted with the default link) again with the centred link and
    keep that one when :func:`link_evidence` does not prefer the default and
    :func:`amplitude_ratio` is at most :data:`MAX_AMPLITUDE`; records ``model.centred[k]``.

    The trial draws its starts from a copy of ``gen``, so the later levels' restarts are
    the same whichever link is kept; it is skipped once the time budget is spent.
    ``fit_level``: the fit's per-level routine (:func:`~._cokriging_fit._fit_level`).
    """
    base = model.levels[k]
    centre = centre_values(model, k)
    exact = hasattr(base, "z_train") and not hasattr(base, "fit_level")
    if centre is None or k == 0 or not exact or budget.exhausted():
        bar.advance(task, model.n_restarts, info=f"level {k}: no centred link")
        return False
    model.centred[k] = True
    cen = model.make_level(k, len(base.y_train))
    model.centred[k] = False
    cen.mean_module.centre.copy_(torch.tensor(centre, dtype=DTYPE))
    cen.z_train.copy_(base.z_train)
    cen.y_train.copy_(base.y_train)
    trial_gen = torch.Generator()
    trial_gen.set_state(gen.get_state())
    model.levels[k] = cen
    try:
        fit_level(model, k, cen.z_train, cen.y_train, trial_gen, budget, bar, task)
    except TrainingError:
        model.levels[k] = base
        return False
    ev_base, ev_cen, amp = link_evidence(base), link_evidence(cen), amplitude_ratio(cen)
    keep = ev_cen >= ev_base and amp <= MAX_AMPLITUDE
    logger.info(
        "co-kriging centred link at level %d %s (evidence %.4g against %.4g, amplitude %.3g)",
        k,
        "kept" if keep else "not kept",
        ev_cen,
        ev_base,
        amp,
    )
    if keep:
        model.centred[k] = True
        model.linear_trend[k] = False
    else:
        model.levels[k] = base
    return keep
