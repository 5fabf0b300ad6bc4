"""Proper scores: Gaussian NLL, CRPS (closed form, ensemble, quantile), energy and
interval scores."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from pdesurrogates.uq._backend import (
    as_tensor,
    check_finite,
    check_levels,
    is_torch,
    sort_members,
    to_output,
)
from pdesurrogates.uq._prediction import Prediction
from pdesurrogates.uq.metrics._common import (
    as_prediction,
    check_reduction,
    gaussian_args,
    reduce_points,
    target,
)

__all__ = [
    "crps",
    "crps_ensemble",
    "crps_gaussian",
    "energy_score",
    "interval_score",
    "nll_gaussian",
]

_SQRT_PI = math.sqrt(math.pi)
_SQRT_2PI = math.sqrt(2.0 * math.pi)


def nll_gaussian(mean: Any, std: Any, y: Any, *, reduction: str = "mean"):
    r"""Gaussian negative log-likelihood :math:`\tfrac12\log(2\pi\sigma^2) + (y-\mu)^2/(2\sigma^2)`.

    In nats; lower is better. ``std`` must be strictly positive.
    """
    check_reduction(reduction)
    mu, sd, yt, tout = gaussian_args(mean, std, y, positive=True)
    v = _nll_kernel(mu, sd, yt)
    return to_output(reduce_points(v, reduction), not tout)


def _nll_kernel(mu, sd, yt):
    z = (yt - mu) / sd
    return 0.5 * math.log(2 * math.pi) + torch.log(sd) + 0.5 * z * z


def _crps_gaussian_kernel(mu, sd, yt):
    diff = yt - mu
    safe = torch.where(sd > 0, sd, torch.ones_like(sd))
    z = diff / safe
    pdf = torch.exp(-0.5 * z * z) / _SQRT_2PI
    cdf = torch.special.ndtr(z)
    v = safe * (z * (2 * cdf - 1) + 2 * pdf - 1 / _SQRT_PI)
    return torch.where(sd > 0, v, diff.abs())


def crps_gaussian(mean: Any, std: Any, y: Any, *, reduction: str = "mean"):
    r"""CRPS of a Gaussian N(mean, std²) in closed form.

    :math:`\sigma\,[z(2\Phi(z)-1) + 2\varphi(z) - 1/\sqrt\pi]` with :math:`z=(y-\mu)/\sigma`;
    equals :math:`|y-\mu|` where ``std`` is 0. Units of ``y``; lower is better.

    Examples
    --------
    >>> round(float(crps_gaussian(0.0, 1.0, 0.0)), 6)
    0.233695
    """
    check_reduction(reduction)
    mu, sd, yt, tout = gaussian_args(mean, std, y)
    return to_output(reduce_points(_crps_gaussian_kernel(mu, sd, yt), reduction), not tout)


def _abs_dev_mean(s: torch.Tensor, yt: torch.Tensor) -> torch.Tensor:
    """(1/M) Σ_m |x_m - y|, accumulated member by member (no (M, ...) temporary)."""
    acc = (s[0] - yt).abs()
    for k in range(1, s.shape[0]):
        acc += (s[k] - yt).abs()
    return acc / s.shape[0]


def _gini_sum(srt: torch.Tensor) -> torch.Tensor:
    """Σ_i (2i - M - 1) x_(i) for sorted members; equals ½ Σ_i Σ_j |x_i - x_j|."""
    m = srt.shape[0]
    acc = torch.zeros_like(srt[0])
    for i in range(m):
        c = 2 * (i + 1) - m - 1
        if c:
            acc += c * srt[i]
    return acc


def _crps_ensemble_kernel(s: torch.Tensor, yt: torch.Tensor, estimator: str, srt=None):
    m = s.shape[0]
    first = _abs_dev_mean(s, yt)
    if srt is None:
        srt = sort_members(s)
    if estimator == "pwm":
        beta0 = srt.mean(0)
        beta1 = torch.zeros_like(srt[0])
        for i in range(1, m):
            beta1 += i * srt[i]
        beta1 /= m * (m - 1)
        return first + beta0 - 2 * beta1
    g = _gini_sum(srt)
    if estimator == "fair":
        return first - g / (m * (m - 1))
    return first - g / (m * m)


def crps_ensemble(samples: Any, y: Any, *, estimator: str = "fair", reduction: str = "mean"):
    r"""CRPS of an ensemble / sample forecast, member axis first.

    Estimators (``M`` members :math:`x_1..x_M`, sorted :math:`x_{(i)}`):

    * ``"fair"`` (default): :math:`\frac1M\sum_i|x_i-y| - \frac{1}{2M(M-1)}\sum_{i,j}|x_i-x_j|`,
      unbiased for the CRPS of the distribution the members are drawn from;
    * ``"pwm"``: probability-weighted moments, :math:`\frac1M\sum_i|x_i-y| + \beta_0 - 2\beta_1`
      with :math:`\beta_0=\bar x`, :math:`\beta_1=\frac{1}{M(M-1)}\sum_i (i-1)x_{(i)}`
      (algebraically equal to ``"fair"``);
    * ``"nrg"``: the plain energy form with :math:`1/(2M^2)` (the CRPS of the empirical
      distribution; what ``properscoring.crps_ensemble`` computes).

    Cost :math:`O(M \log M)` per point (one sort along the member axis).

    Parameters
    ----------
    samples : array or Tensor, shape ``(M, ...)``
        Members, ``M >= 2``.
    y : array or Tensor, shape ``(...)``
    estimator : {"fair", "pwm", "nrg"}
    reduction : {"none", "sample", "mean"}
    """
    check_reduction(reduction)
    if estimator not in ("fair", "pwm", "nrg"):
        raise ValueError(f"estimator must be 'fair', 'pwm' or 'nrg', got {estimator!r}")
    tout = is_torch(samples, y)
    s = as_tensor(samples, "samples")
    check_finite(s, "samples")
    if s.ndim < 1 or s.shape[0] < 2:
        raise ValueError(
            "samples needs at least 2 members along axis 0 for the CRPS ensemble estimators"
        )
    yt = target(y, tuple(s.shape[1:]), s)
    v = _crps_ensemble_kernel(s, yt, estimator)
    return to_output(reduce_points(v, reduction), not tout)


def crps(pred: Prediction, y: Any, *, reduction: str = "mean"):
    """CRPS of any :class:`Prediction`, with the right estimator for its kind.

    Gaussian: closed form; samples: the fair ensemble estimator (never a Gaussian fit);
    quantiles: ``2 × mean pinball loss`` over the stored levels (the quantile
    decomposition of the CRPS, exact in the limit of many evenly spaced levels).
    """
    check_reduction(reduction)
    p = as_prediction(pred)
    t = p.tensors()
    yt = target(y, p.shape, t["mean"])
    if p.kind == "gaussian":
        v = _crps_gaussian_kernel(t["mean"], t["std"], yt)
    elif p.kind == "samples":
        v = _crps_ensemble_kernel(t["samples"], yt, "fair", srt=p._sorted_samples())
    elif p.kind == "quantiles":
        v = 2 * _pinball_mean(t["quantiles"], p.levels, yt)
    else:
        raise ValueError("pred is a point prediction: CRPS needs std, samples or quantiles")
    return to_output(reduce_points(v, reduction), p.is_numpy)


def _pinball_mean(q: torch.Tensor, levels: np.ndarray, yt: torch.Tensor) -> torch.Tensor:
    acc = torch.zeros_like(yt)
    for k, tau in enumerate(levels):
        d = yt - q[k]
        acc += torch.where(d >= 0, tau * d, (tau - 1) * d)
    return acc / len(levels)


def energy_score(samples: Any, y: Any, *, estimator: str = "fair", reduction: str = "mean"):
    r"""Energy score of whole fields (multivariate CRPS), member axis first.

    :math:`\frac1M\sum_m\|x_m-y\| - \frac{1}{2M(M-1)}\sum_{m,j}\|x_m-x_j\|` (``"fair"``) or
    with :math:`1/(2M^2)` (``"nrg"``); the norm is the Euclidean norm over all axes after
    the sample axis. ``samples`` has shape ``(M, N, ...)``, ``y`` shape ``(N, ...)``.
    ``reduction`` is ``"sample"`` (or ``"none"``, the same: shape ``(N,)``) or ``"mean"``.
    Cost :math:`O(M^2)` field norms per sample.
    """
    check_reduction(reduction)
    if estimator not in ("fair", "nrg"):
        raise ValueError(f"estimator must be 'fair' or 'nrg', got {estimator!r}")
    tout = is_torch(samples, y)
    s = as_tensor(samples, "samples")
    check_finite(s, "samples")
    if s.ndim < 2 or s.shape[0] < 2:
        raise ValueError("samples must have shape (M, N, ...) with M >= 2 members")
    yt = target(y, tuple(s.shape[1:]), s)
    m, n = s.shape[0], s.shape[1]
    sf, yf = s.reshape(m, n, -1), yt.reshape(n, -1)
    first = sum(torch.linalg.vector_norm(sf[i] - yf, dim=-1) for i in range(m)) / m
    pair = torch.zeros_like(first)
    for i in range(m):
        for j in range(i + 1, m):
            pair += torch.linalg.vector_norm(sf[i] - sf[j], dim=-1)
    denom = m * (m - 1) if estimator == "fair" else m * m
    v = first - pair / denom
    return to_output(v if reduction != "mean" else v.mean(), not tout)


def interval_score(lower: Any, upper: Any, y: Any, *, level: float, reduction: str = "mean"):
    r"""Interval (Winkler) score of central intervals ``[lower, upper]`` at coverage ``level``.

    With :math:`\alpha = 1 - \text{level}`:
    :math:`(u-l) + \frac2\alpha(l-y)\mathbb 1\{y<l\} + \frac2\alpha(y-u)\mathbb 1\{y>u\}`.
    Units of ``y``; lower is better.
    """
    check_reduction(reduction)
    lv = float(check_levels(level, "level")[0])
    tout = is_torch(lower, upper, y)
    lo = as_tensor(lower, "lower")
    check_finite(lo, "lower")
    hi = as_tensor(upper, "upper", like=lo)
    check_finite(hi, "upper")
    if hi.shape != lo.shape:
        raise ValueError(f"upper has shape {tuple(hi.shape)}, lower {tuple(lo.shape)}")
    if bool((hi < lo).any()):
        raise ValueError("upper must be >= lower everywhere")
    yt = target(y, tuple(lo.shape), lo)
    v = _interval_score_kernel(lo, hi, yt, lv)
    return to_output(reduce_points(v, reduction), not tout)


def _interval_score_kernel(lo, hi, yt, level):
    a = 2.0 / (1.0 - level)
    return (hi - lo) + a * (lo - yt).clamp_min(0) + a * (yt - hi).clamp_min(0)
