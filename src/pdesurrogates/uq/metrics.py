"""Accuracy, proper scores and calibration metrics for (probabilistic) field predictions.

Conventions shared by every metric:

* Inputs are numpy arrays or torch tensors; results come back in the same type (torch if
  any input is a tensor). Computation is vectorised in torch; numpy input is not copied.
* Axis 0 of ``y`` is the **sample** axis (one field per sample); the other axes are the
  field (grid, time, component). Ensemble members / quantile levels come **first** in
  ``samples`` / ``quantiles``, before the sample axis.
* ``reduce="none"`` returns per-point values (shape of ``y``), ``"sample"`` one value per
  sample (shape ``(N,)``), ``"mean"`` a single number pooled over everything. Metrics that
  are only defined over a set of points (calibration errors, spread-skill ratio) accept
  ``"sample"`` and ``"mean"`` only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from pdesurrogates.uq._backend import (
    as_tensor,
    check_finite,
    check_levels,
    is_torch,
    to_output,
)
from pdesurrogates.uq._prediction import Prediction

__all__ = [
    "calibration_curve",
    "coverage",
    "crps",
    "crps_ensemble",
    "crps_gaussian",
    "energy_score",
    "interval_score",
    "mace",
    "mae",
    "miscalibration_area",
    "nll_gaussian",
    "nrmse",
    "pit",
    "rel_h1",
    "rel_l2",
    "rmsce",
    "rmse",
    "sharpness",
    "spread_skill_ratio",
]

_REDUCES = ("none", "sample", "mean")
_SQRT_PI = math.sqrt(math.pi)
_SQRT_2PI = math.sqrt(2.0 * math.pi)


# ---------------------------------------------------------------------------- helpers
def _check_reduce(reduce: str, allowed: Sequence[str] = _REDUCES) -> None:
    if reduce not in allowed:
        raise ValueError(f"reduce must be one of {', '.join(map(repr, allowed))}; got {reduce!r}")


def _target(y: Any, shape: tuple[int, ...] | None, like: torch.Tensor | None) -> torch.Tensor:
    t = as_tensor(y, "y", like=like)
    check_finite(t, "y")
    if shape is not None and tuple(t.shape) != tuple(shape):
        raise ValueError(
            f"y has shape {tuple(t.shape)} but the prediction has shape {tuple(shape)}; "
            "they must match"
        )
    return t


def _point(pred: Any, name: str = "pred") -> tuple[torch.Tensor, bool]:
    """Mean of a Prediction or an array, plus the 'torch output' flag."""
    if isinstance(pred, Prediction):
        return pred.tensors()["mean"], not pred.is_numpy
    t = as_tensor(pred, name)
    check_finite(t, name)
    return t, is_torch(pred)


def _reduce_points(v: torch.Tensor, reduce: str, *, sq: bool = False) -> torch.Tensor:
    """Reduce per-point values; ``sq=True`` means RMS-style (sqrt of the mean of squares)."""
    if reduce == "none":
        return v
    if reduce == "sample":
        if v.ndim == 0:
            raise ValueError("reduce='sample' needs a sample axis 0; y is a scalar")
        w = v.reshape(v.shape[0], -1)
        m = (w * w if sq else w).mean(1, dtype=torch.float64).to(v.dtype)
    else:
        m = (v * v if sq else v).mean(dtype=torch.float64).to(v.dtype)
    return m.sqrt() if sq else m


def _field_dims(ndim: int, dims: Sequence[int] | None) -> tuple[int, ...]:
    if dims is None:
        return tuple(range(1, ndim)) if ndim >= 2 else tuple(range(ndim))
    out = tuple(sorted({d % ndim if ndim else d for d in dims}))
    if any(d >= ndim or d < 0 for d in out):
        raise ValueError(f"dims={dims!r} is out of range for arrays with {ndim} axes")
    return out


def _reduce_fields(v: torch.Tensor, reduce: str, keep_leading: bool) -> torch.Tensor:
    """Reduce per-field values (shape = non-field axes of y)."""
    if reduce == "none":
        return v
    if reduce == "sample":
        if v.ndim == 0 or not keep_leading:
            raise ValueError("reduce='sample' needs a sample axis 0 outside the field dims")
        return v.reshape(v.shape[0], -1).mean(1)
    return v.mean()


def _gaussian_args(mean: Any, std: Any, y: Any, *, positive: bool = False):
    out_torch = is_torch(mean, std, y)
    mu = as_tensor(mean, "mean")
    check_finite(mu, "mean")
    sd = as_tensor(std, "std", like=mu)
    check_finite(sd, "std")
    yt = as_tensor(y, "y", like=mu)
    check_finite(yt, "y")
    try:
        shape = torch.broadcast_shapes(mu.shape, sd.shape)
    except RuntimeError:
        raise ValueError(
            f"std has shape {tuple(sd.shape)}, mean has {tuple(mu.shape)}; they must match "
            "(or broadcast)"
        ) from None
    try:
        shape = torch.broadcast_shapes(shape, yt.shape)
    except RuntimeError:
        raise ValueError(
            f"y has shape {tuple(yt.shape)} but the prediction has shape {tuple(shape)}; "
            "they must match (or broadcast)"
        ) from None
    mu, sd, yt = (t.expand(shape) for t in (mu, sd, yt))
    if positive and sd.numel() and bool((sd <= 0).any()):
        raise ValueError("std must be strictly positive for this metric; it holds values <= 0")
    if sd.numel() and bool((sd < 0).any()):
        raise ValueError("std must be non-negative; it holds negative values")
    return mu, sd, yt, out_torch


def _as_prediction(pred: Any, name: str = "pred") -> Prediction:
    if not isinstance(pred, Prediction):
        raise ValueError(
            f"{name} must be a pdesurrogates.uq.Prediction (mean with std, samples or "
            f"quantiles), got {type(pred).__name__}"
        )
    return pred


# ---------------------------------------------------------------------------- accuracy
def rel_l2(pred: Any, y: Any, *, dims: Sequence[int] | None = None, reduce: str = "mean"):
    r"""Relative L2 error :math:`\|\hat y - y\|_2 / \|y\|_2` per field.

    Parameters
    ----------
    pred : array, Tensor or Prediction
        Prediction (its mean is used), shape ``(N, ...)``.
    y : array or Tensor
        Truth, same shape.
    dims : sequence of int, optional
        Axes forming one field; default all axes but the sample axis 0 (the whole array
        when ``y`` has fewer than 2 axes).
    reduce : {"none", "sample", "mean"}
        ``"none"``: one value per field (shape of the non-field axes), ``"sample"``: mean
        over the non-field axes other than 0, ``"mean"``: mean over fields (not pooled).

    Examples
    --------
    >>> import numpy as np
    >>> float(rel_l2(np.array([[1.0, 1.0]]), np.array([[1.0, 2.0]])))
    0.4472135954999579
    """
    _check_reduce(reduce)
    m, tout = _point(pred)
    yt = _target(y, tuple(m.shape), m)
    fd = _field_dims(yt.ndim, dims)
    num = (m - yt).square().sum(fd).sqrt()
    den = yt.square().sum(fd).sqrt()
    if bool((den == 0).any()):
        raise ValueError("y has a field that is identically zero; its relative error is undefined")
    return to_output(_reduce_fields(num / den, reduce, 0 not in fd), not tout)


def _grid_weights_and_spacing(shape, fd, spacing, coords, periodic, like):
    """Per-dim trapezoid weights and the ``torch.gradient`` spacing argument."""
    n_d = len(fd)
    if coords is not None and spacing is not None:
        raise ValueError("give spacing or coords, not both")
    weights, grads = [], []
    if coords is not None:
        if len(coords) != n_d:
            raise ValueError(f"coords needs one 1-D coordinate array per field dim ({n_d})")
        for k, (d, c) in enumerate(zip(fd, coords, strict=True)):
            ct = as_tensor(c, f"coords[{k}]", like=like).reshape(-1)
            if ct.numel() != shape[d]:
                raise ValueError(
                    f"coords[{k}] has {ct.numel()} points but axis {d} of y has {shape[d]}"
                )
            if ct.numel() > 1 and bool((ct[1:] <= ct[:-1]).any()):
                raise ValueError(f"coords[{k}] must be strictly increasing")
            if periodic:
                raise ValueError("periodic=True needs uniform spacing, not coords")
            h = ct[1:] - ct[:-1]
            w = torch.zeros_like(ct)
            w[:-1] += h / 2
            w[1:] += h / 2
            weights.append(w)
            grads.append(ct)
    else:
        if spacing is None:
            spacing = [1.0 / (shape[d] if periodic else max(shape[d] - 1, 1)) for d in fd]
        elif np.ndim(spacing) == 0:
            spacing = [float(spacing)] * n_d
        spacing = [float(s) for s in spacing]
        if len(spacing) != n_d:
            raise ValueError(f"spacing needs one value per field dim ({n_d}), got {len(spacing)}")
        if any(not (s > 0 and math.isfinite(s)) for s in spacing):
            raise ValueError(f"spacing must be positive and finite, got {spacing}")
        for d, h in zip(fd, spacing, strict=True):
            w = torch.full((shape[d],), h, dtype=like.dtype, device=like.device)
            if not periodic and shape[d] > 1:
                w[0] = w[-1] = h / 2
            weights.append(w)
            grads.append(h)
    return weights, grads


def _h1_sq(e: torch.Tensor, fd, weights, grads, periodic) -> torch.Tensor:
    """Squared H1 norm ∫ e² + |∇e|² with trapezoid weights over the field dims."""
    terms = e.square()
    for d, g in zip(fd, grads, strict=True):
        if e.shape[d] < 2:
            continue
        if periodic:
            de = (e.roll(-1, d) - e.roll(1, d)) / (2 * g)
        elif isinstance(g, torch.Tensor):
            de = torch.gradient(e, spacing=(g,), dim=d, edge_order=1)[0]
        else:
            de = torch.gradient(e, spacing=g, dim=d, edge_order=1)[0]
        terms = terms + de.square()
    for d, w in zip(fd, weights, strict=True):
        shp = [1] * e.ndim
        shp[d] = -1
        terms = terms * w.reshape(shp)
    return terms.sum(fd)


def rel_h1(
    pred: Any,
    y: Any,
    *,
    spacing: float | Sequence[float] | None = None,
    coords: Sequence[Any] | None = None,
    dims: Sequence[int] | None = None,
    periodic: bool = False,
    reduce: str = "mean",
):
    r"""Relative H1 error :math:`\|\hat y - y\|_{H^1} / \|y\|_{H^1}` per field, grid-aware.

    :math:`\|u\|_{H^1}^2 = \int u^2 + |\nabla u|^2\,dx`, with the integral by the
    trapezoid rule and derivatives by second-order central differences (first-order at
    non-periodic edges) on the actual grid, so the value converges to the continuous norm
    ratio under refinement and does not depend on the resolution.

    Parameters
    ----------
    pred, y : array, Tensor or Prediction; array or Tensor
        Shape ``(N, *grid)``.
    spacing : float or sequence of float, optional
        Uniform grid spacing per field dim (physical units). Default: each dim spans
        [0, 1] (``1/(n-1)``, or ``1/n`` if periodic).
    coords : sequence of 1-D arrays, optional
        Coordinates per field dim for non-uniform grids (instead of ``spacing``).
    dims : sequence of int, optional
        Field (spatial) axes; default all axes but 0.
    periodic : bool
        Periodic grid (the last point is not a copy of the first).
    reduce : {"none", "sample", "mean"}
        As in :func:`rel_l2`.
    """
    _check_reduce(reduce)
    m, tout = _point(pred)
    yt = _target(y, tuple(m.shape), m)
    fd = _field_dims(yt.ndim, dims)
    weights, grads = _grid_weights_and_spacing(yt.shape, fd, spacing, coords, periodic, yt)
    num = _h1_sq(m - yt, fd, weights, grads, periodic)
    den = _h1_sq(yt, fd, weights, grads, periodic)
    if bool((den == 0).any()):
        raise ValueError("y has a field that is identically zero; its relative error is undefined")
    return to_output(_reduce_fields((num / den).sqrt(), reduce, 0 not in fd), not tout)


def rmse(pred: Any, y: Any, *, reduce: str = "mean"):
    """Root mean squared error.

    ``"none"`` gives the absolute error per point, ``"sample"`` the RMSE of each field and
    ``"mean"`` the RMSE pooled over all points (sqrt of the pooled mean squared error).
    """
    _check_reduce(reduce)
    m, tout = _point(pred)
    yt = _target(y, tuple(m.shape), m)
    return to_output(_reduce_points((m - yt).abs(), reduce, sq=True), not tout)


def mae(pred: Any, y: Any, *, reduce: str = "mean"):
    """Mean absolute error (``"none"``: absolute error per point)."""
    _check_reduce(reduce)
    m, tout = _point(pred)
    yt = _target(y, tuple(m.shape), m)
    return to_output(_reduce_points((m - yt).abs(), reduce), not tout)


def nrmse(
    pred: Any,
    y: Any,
    *,
    norm: str = "std",
    dims: Sequence[int] | None = None,
    reduce: str = "mean",
):
    r"""Normalised RMSE per field: RMSE over the field divided by a scale of the true field.

    ``norm="std"`` divides by the spatial standard deviation of ``y`` (The Well's VRMSE,
    :math:`\sqrt{\mathrm{MSE}/\mathrm{Var}(y)}`), ``"rms"`` by its root mean square
    (PDEBench's nRMSE, identical to :func:`rel_l2`), ``"range"`` by ``max(y) - min(y)``.
    ``reduce`` as in :func:`rel_l2`.
    """
    _check_reduce(reduce)
    if norm not in ("std", "rms", "range"):
        raise ValueError(f"norm must be 'std', 'rms' or 'range', got {norm!r}")
    m, tout = _point(pred)
    yt = _target(y, tuple(m.shape), m)
    fd = _field_dims(yt.ndim, dims)
    err = (m - yt).square().mean(fd).sqrt()
    if norm == "std":
        scale = yt.std(fd, correction=0)
    elif norm == "rms":
        scale = yt.square().mean(fd).sqrt()
    else:
        scale = yt.amax(fd) - yt.amin(fd)
    if bool((scale == 0).any()):
        raise ValueError(f"y has a constant field, so its {norm} is zero and nrmse is undefined")
    return to_output(_reduce_fields(err / scale, reduce, 0 not in fd), not tout)


# ---------------------------------------------------------------------------- scores
def nll_gaussian(mean: Any, std: Any, y: Any, *, reduce: str = "mean"):
    r"""Gaussian negative log-likelihood :math:`\tfrac12\log(2\pi\sigma^2) + (y-\mu)^2/(2\sigma^2)`.

    In nats; lower is better. ``std`` must be strictly positive.
    """
    _check_reduce(reduce)
    mu, sd, yt, tout = _gaussian_args(mean, std, y, positive=True)
    v = _nll_kernel(mu, sd, yt)
    return to_output(_reduce_points(v, reduce), not tout)


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


def crps_gaussian(mean: Any, std: Any, y: Any, *, reduce: str = "mean"):
    r"""CRPS of a Gaussian N(mean, std²) in closed form.

    :math:`\sigma\,[z(2\Phi(z)-1) + 2\varphi(z) - 1/\sqrt\pi]` with :math:`z=(y-\mu)/\sigma`;
    equals :math:`|y-\mu|` where ``std`` is 0. Units of ``y``; lower is better.

    Examples
    --------
    >>> round(float(crps_gaussian(0.0, 1.0, 0.0)), 6)
    0.233695
    """
    _check_reduce(reduce)
    mu, sd, yt, tout = _gaussian_args(mean, std, y)
    return to_output(_reduce_points(_crps_gaussian_kernel(mu, sd, yt), reduce), not tout)


_NETWORK_MAX = 24  # members up to which a sorting network beats a general sort
_NETWORK_BLOCK = 16384  # columns per block: keeps the working set in cache


def _network_sort_np(x: np.ndarray, out: np.ndarray) -> None:
    """Sort the columns of ``x`` (M, P) into ``out`` with an odd-even transposition network.

    ``M (M - 1) / 2`` vectorised compare-exchanges per block of columns; for the small
    ``M`` of ensembles this is several times faster than ``np.sort(axis=0)``.
    """
    m, p = x.shape
    for c0 in range(0, p, _NETWORK_BLOCK):
        c1 = min(c0 + _NETWORK_BLOCK, p)
        rows = [np.array(x[i, c0:c1]) for i in range(m)]
        tmp = np.empty_like(rows[0])
        for r in range(m):
            for i in range(r % 2, m - 1, 2):
                np.minimum(rows[i], rows[i + 1], out=tmp)
                np.maximum(rows[i], rows[i + 1], out=rows[i + 1])
                rows[i], tmp = tmp, rows[i]
        for i in range(m):
            out[i, c0:c1] = rows[i]


def _sort0(x: torch.Tensor) -> torch.Tensor:
    """Sort along axis 0 (members); numpy on the CPU, which is much faster than torch here."""
    if x.device.type == "cpu" and not x.requires_grad:
        xn = x.detach().numpy()
        if 2 <= x.shape[0] <= _NETWORK_MAX and x.ndim >= 1:
            flat = xn.reshape(x.shape[0], -1)
            out = np.empty(flat.shape, dtype=flat.dtype)
            _network_sort_np(flat, out)
            return torch.from_numpy(out.reshape(xn.shape))
        return torch.from_numpy(np.sort(xn, axis=0))
    return torch.sort(x, dim=0).values


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
        srt = _sort0(s)
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


def crps_ensemble(samples: Any, y: Any, *, estimator: str = "fair", reduce: str = "mean"):
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
    reduce : {"none", "sample", "mean"}
    """
    _check_reduce(reduce)
    if estimator not in ("fair", "pwm", "nrg"):
        raise ValueError(f"estimator must be 'fair', 'pwm' or 'nrg', got {estimator!r}")
    tout = is_torch(samples, y)
    s = as_tensor(samples, "samples")
    check_finite(s, "samples")
    if s.ndim < 1 or s.shape[0] < 2:
        raise ValueError(
            "samples needs at least 2 members along axis 0 for the CRPS ensemble estimators"
        )
    yt = _target(y, tuple(s.shape[1:]), s)
    v = _crps_ensemble_kernel(s, yt, estimator)
    return to_output(_reduce_points(v, reduce), not tout)


def crps(pred: Prediction, y: Any, *, reduce: str = "mean"):
    """CRPS of any :class:`Prediction`, with the right estimator for its kind.

    Gaussian: closed form; samples: the fair ensemble estimator (never a Gaussian fit);
    quantiles: ``2 × mean pinball loss`` over the stored levels (the quantile
    decomposition of the CRPS, exact in the limit of many evenly spaced levels).
    """
    _check_reduce(reduce)
    p = _as_prediction(pred)
    t = p.tensors()
    yt = _target(y, p.shape, t["mean"])
    if p.kind == "gaussian":
        v = _crps_gaussian_kernel(t["mean"], t["std"], yt)
    elif p.kind == "samples":
        v = _crps_ensemble_kernel(t["samples"], yt, "fair")
    elif p.kind == "quantiles":
        v = 2 * _pinball_mean(t["quantiles"], p.levels, yt)
    else:
        raise ValueError("pred is a point prediction: CRPS needs std, samples or quantiles")
    return to_output(_reduce_points(v, reduce), p.is_numpy)


def _pinball_mean(q: torch.Tensor, levels: np.ndarray, yt: torch.Tensor) -> torch.Tensor:
    acc = torch.zeros_like(yt)
    for k, tau in enumerate(levels):
        d = yt - q[k]
        acc += torch.where(d >= 0, tau * d, (tau - 1) * d)
    return acc / len(levels)


def energy_score(samples: Any, y: Any, *, estimator: str = "fair", reduce: str = "mean"):
    r"""Energy score of whole fields (multivariate CRPS), member axis first.

    :math:`\frac1M\sum_m\|x_m-y\| - \frac{1}{2M(M-1)}\sum_{m,j}\|x_m-x_j\|` (``"fair"``) or
    with :math:`1/(2M^2)` (``"nrg"``); the norm is the Euclidean norm over all axes after
    the sample axis. ``samples`` has shape ``(M, N, ...)``, ``y`` shape ``(N, ...)``.
    ``reduce`` is ``"sample"`` (or ``"none"``, the same: shape ``(N,)``) or ``"mean"``.
    Cost :math:`O(M^2)` field norms per sample.
    """
    _check_reduce(reduce)
    if estimator not in ("fair", "nrg"):
        raise ValueError(f"estimator must be 'fair' or 'nrg', got {estimator!r}")
    tout = is_torch(samples, y)
    s = as_tensor(samples, "samples")
    check_finite(s, "samples")
    if s.ndim < 2 or s.shape[0] < 2:
        raise ValueError("samples must have shape (M, N, ...) with M >= 2 members")
    yt = _target(y, tuple(s.shape[1:]), s)
    m, n = s.shape[0], s.shape[1]
    sf, yf = s.reshape(m, n, -1), yt.reshape(n, -1)
    first = sum(torch.linalg.vector_norm(sf[i] - yf, dim=-1) for i in range(m)) / m
    pair = torch.zeros_like(first)
    for i in range(m):
        for j in range(i + 1, m):
            pair += torch.linalg.vector_norm(sf[i] - sf[j], dim=-1)
    denom = m * (m - 1) if estimator == "fair" else m * m
    v = first - pair / denom
    return to_output(v if reduce != "mean" else v.mean(), not tout)


def interval_score(lower: Any, upper: Any, y: Any, *, level: float, reduce: str = "mean"):
    r"""Interval (Winkler) score of central intervals ``[lower, upper]`` at coverage ``level``.

    With :math:`\alpha = 1 - \text{level}`:
    :math:`(u-l) + \frac2\alpha(l-y)\mathbb 1\{y<l\} + \frac2\alpha(y-u)\mathbb 1\{y>u\}`.
    Units of ``y``; lower is better.
    """
    _check_reduce(reduce)
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
    yt = _target(y, tuple(lo.shape), lo)
    v = _interval_score_kernel(lo, hi, yt, lv)
    return to_output(_reduce_points(v, reduce), not tout)


def _interval_score_kernel(lo, hi, yt, level):
    a = 2.0 / (1.0 - level)
    return (hi - lo) + a * (lo - yt).clamp_min(0) + a * (yt - hi).clamp_min(0)


# ---------------------------------------------------------------------------- calibration
def coverage(
    pred: Prediction,
    y: Any,
    levels: float | Sequence[float] = (0.5, 0.8, 0.9, 0.95),
    *,
    kind: str = "pointwise",
    min_fraction: float = 1.0,
    reduce: str = "mean",
):
    """Empirical coverage of the central predictive intervals at ``levels``.

    ``kind="pointwise"``: fraction of points with ``lower <= y <= upper``; ``reduce``
    ``"none"`` gives the 0/1 hits (shape ``(K, *y.shape)``), ``"sample"`` the coverage of
    each field ``(K, N)`` and ``"mean"`` the pooled coverage ``(K,)``.

    ``kind="field"``: a field counts as covered when at least ``min_fraction`` of its
    points are (``1.0``: the whole field, i.e. simultaneous coverage; ``0.9`` gives the
    function-level coverage of conformal operator UQ). ``"none"``/``"sample"`` give the
    0/1 indicator per field ``(K, N)``, ``"mean"`` the fraction of fields ``(K,)``.
    Note that pointwise intervals at level ``a`` cover whole fields far less often than
    ``a``; field-wise bands come from :func:`pdesurrogates.uq.conformalize` with
    ``mode="field"``.

    A scalar ``levels`` drops the leading ``K`` axis.
    """
    _check_reduce(reduce)
    if kind not in ("pointwise", "field"):
        raise ValueError(f"kind must be 'pointwise' or 'field', got {kind!r}")
    if not 0.0 < float(min_fraction) <= 1.0:
        raise ValueError(f"min_fraction must be in (0, 1], got {min_fraction}")
    p = _as_prediction(pred)
    lv = check_levels(levels, "levels")
    t = p.tensors()
    yt = _target(y, p.shape, t["mean"])
    qs = p.torch().quantile(np.concatenate([(1 - lv) / 2, (1 + lv) / 2]).tolist())
    res = []
    for k in range(len(lv)):
        lo, hi = qs[k], qs[len(lv) + k]
        hit = ((yt >= lo) & (yt <= hi)).to(yt.dtype)
        if kind == "pointwise":
            res.append(_reduce_points(hit, reduce))
        else:
            if yt.ndim < 1:
                raise ValueError("kind='field' needs a sample axis 0")
            frac = hit.reshape(hit.shape[0], -1).mean(1, dtype=torch.float64)
            ok = (frac >= float(min_fraction) - 1e-12).to(yt.dtype)
            res.append(ok.mean() if reduce == "mean" else ok)
    out = torch.stack(res, 0)
    if np.ndim(levels) == 0:
        out = out[0]
    return to_output(out, p.is_numpy)


def _central_distance(p: Prediction, yt: torch.Tensor) -> torch.Tensor:
    """Per point, the smallest central level whose interval contains y (inf: none does).

    ``d <= level`` exactly when ``y`` lies in the central ``level`` interval; for a Gaussian
    ``d = erf(|z|/√2) = 2Φ(|z|) - 1``; for samples it uses the interpolated empirical CDF
    (the inverse of the linear quantile function); for quantiles the piecewise-linear
    CDF through the stored levels (``inf`` beyond them).
    """
    t = p.tensors()
    if p.kind == "gaussian":
        sd = t["std"]
        z = (yt - t["mean"]).abs() / torch.where(sd > 0, sd, torch.ones_like(sd))
        d = torch.special.erf(z / math.sqrt(2.0))
        zero = (sd == 0) & (yt != t["mean"])
        return torch.where(zero, torch.full_like(d, math.inf), d)
    if p.kind == "samples":
        srt = _sort0(t["samples"])
        return _central_distance_sorted(srt, yt, *_rank_counts(srt, yt))
    if p.kind == "quantiles":
        u = _interp_cdf_quantiles(t["quantiles"], p.levels, yt)
    else:
        raise ValueError("pred is a point prediction: calibration needs std, samples or quantiles")
    d = (2 * u - 1).abs()
    return torch.where(torch.isnan(u), torch.full_like(d, math.inf), d)


def _rank_counts(srt: torch.Tensor, yt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``#{x < y}`` and ``#{x <= y}`` over the members (axis 0), as int64.

    Accumulated member by member in a small integer type: about 3x faster than summing
    an ``(M, ...)`` boolean array.
    """
    acc = torch.uint8 if srt.shape[0] < 255 else torch.int32
    k_lt = torch.zeros(yt.shape, dtype=acc, device=yt.device)
    k_le = torch.zeros(yt.shape, dtype=acc, device=yt.device)
    for i in range(srt.shape[0]):
        k_lt += srt[i] < yt
        k_le += srt[i] <= yt
    return k_lt.long(), k_le.long()


def _central_distance_sorted(
    srt: torch.Tensor, yt: torch.Tensor, k_lt: torch.Tensor, k_le: torch.Tensor
) -> torch.Tensor:
    """Smallest central level whose empirical interval holds y (inf outside the members).

    The interval at level p is ``[Q((1-p)/2), Q((1+p)/2)]`` with ``Q`` the linear
    interpolation of the sorted members at positions ``i/(M-1)``. For y strictly between
    members, with ``u = Q⁻¹(y)``, the answer is ``|2u - 1|``; for y equal to a run of tied
    members at positions ``[a, b]/(M-1)`` it is ``max(0, 1 - 2 b/(M-1), 2 a/(M-1) - 1)``.
    """
    m = srt.shape[0]
    dt = srt.dtype
    lo_i = (k_lt - 1).clamp(0, m - 1)
    hi_i = k_lt.clamp(0, m - 1)
    lo = torch.gather(srt, 0, lo_i.unsqueeze(0))[0]
    hi = torch.gather(srt, 0, hi_i.unsqueeze(0))[0]
    gap = hi - lo
    frac = torch.where(gap > 0, (yt - lo) / torch.where(gap > 0, gap, 1.0), 0.0)
    u = (lo_i.to(dt) + frac) / (m - 1)
    d = (2 * u - 1).abs()
    tied = k_le > k_lt
    qa = k_lt.to(dt) / (m - 1)
    qb = (k_le - 1).to(dt) / (m - 1)
    d_tied = torch.maximum((1 - 2 * qb).clamp_min(0), 2 * qa - 1)
    d = torch.where(tied, d_tied, d)
    outside = (k_le == 0) | (k_lt == m)
    return torch.where(outside, torch.full_like(d, math.inf), d)


def _interp_cdf_quantiles(q: torch.Tensor, levels: np.ndarray, yt: torch.Tensor) -> torch.Tensor:
    kq = q.shape[0]
    lv = torch.as_tensor(levels, dtype=torch.float64, device=yt.device)
    k = torch.zeros(yt.shape, dtype=torch.int64, device=yt.device)
    for i in range(kq):
        k += q[i] < yt
    lo_i = (k - 1).clamp(0, kq - 1)
    hi_i = k.clamp(0, kq - 1)
    lo = torch.gather(q, 0, lo_i.unsqueeze(0))[0].to(torch.float64)
    hi = torch.gather(q, 0, hi_i.unsqueeze(0))[0].to(torch.float64)
    y64 = yt.to(torch.float64)
    gap = hi - lo
    frac = torch.where(gap > 0, (y64 - lo) / torch.where(gap > 0, gap, 1.0), 0.0)
    u = lv[lo_i] + frac * (lv[hi_i] - lv[lo_i])
    inside = (k > 0) & (k < kq) | (y64 == q[0].to(torch.float64))
    return torch.where(inside, u, torch.full_like(u, math.nan))


def _calibration_counts(d: torch.Tensor, n_bins: int, per_sample: bool) -> torch.Tensor:
    """Observed proportions at p_j = j/(n_bins-1) from central distances d (float64)."""
    d = d.to(torch.float64)
    # d = inf (outside every interval) lands in the overflow bin n_bins
    b = torch.ceil(d * (n_bins - 1) - 1e-12).clamp(0, n_bins).to(torch.int64)
    if per_sample:
        n = b.shape[0]
        flat = b.reshape(n, -1)
        idx = flat + (n_bins + 1) * torch.arange(n, device=b.device).unsqueeze(1)
        cnt = torch.bincount(idx.reshape(-1), minlength=n * (n_bins + 1)).reshape(n, -1)
        return cnt.cumsum(1)[:, :n_bins].to(torch.float64) / flat.shape[1]
    cnt = torch.bincount(b.reshape(-1), minlength=n_bins + 1)
    return cnt.cumsum(0)[:n_bins].to(torch.float64) / b.numel()


def calibration_curve(pred: Prediction, y: Any, *, n_bins: int = 100, reduce: str = "mean"):
    """Expected against observed proportion in central intervals (a reliability diagram).

    ``expected = linspace(0, 1, n_bins)``; ``observed[j]`` is the fraction of points inside
    the central ``expected[j]`` predictive interval (the uncertainty-toolbox definition,
    ``prop_type="interval"``). Returns ``(expected, observed)``; ``observed`` has shape
    ``(n_bins,)`` for ``reduce="mean"`` (pooled) and ``(N, n_bins)`` for ``"sample"``.
    """
    _check_reduce(reduce, ("sample", "mean"))
    if not isinstance(n_bins, int | np.integer) or n_bins < 2:
        raise ValueError(f"n_bins must be an integer >= 2, got {n_bins!r}")
    p = _as_prediction(pred)
    yt = _target(y, p.shape, p.tensors()["mean"])
    d = _central_distance(p, yt)
    obs = _calibration_counts(d, int(n_bins), reduce == "sample")
    exp = torch.linspace(0, 1, int(n_bins), dtype=torch.float64, device=obs.device)
    return to_output(exp, p.is_numpy), to_output(obs, p.is_numpy)


def _miscal_area(exp: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
    """∫|obs(p) - p| dp of the piecewise-linear curve, crossings handled exactly."""
    g = obs - exp
    gl, gr = g[..., :-1], g[..., 1:]
    h = exp[1:] - exp[:-1]
    same = gl * gr >= 0
    trap = 0.5 * h * (gl + gr).abs()
    denom = gl.abs() + gr.abs()
    cross = 0.5 * h * (gl * gl + gr * gr) / torch.where(denom > 0, denom, 1.0)
    return torch.where(same, trap, cross).sum(-1)


def miscalibration_area(pred: Prediction, y: Any, *, n_bins: int = 100, reduce: str = "mean"):
    """Area between the calibration curve and the diagonal (0 = calibrated, max 0.5).

    Same definition as uncertainty-toolbox ``miscalibration_area``.
    """
    e, o = calibration_curve(pred, y, n_bins=n_bins, reduce=reduce)
    tout = isinstance(e, torch.Tensor)
    v = _miscal_area(torch.as_tensor(e), torch.as_tensor(o))
    return to_output(v, not tout)


def rmsce(pred: Prediction, y: Any, *, n_bins: int = 100, reduce: str = "mean"):
    """Root-mean-squared calibration error ``sqrt(mean_j (p_j - obs_j)²)`` over the curve."""
    e, o = calibration_curve(pred, y, n_bins=n_bins, reduce=reduce)
    tout = isinstance(e, torch.Tensor)
    v = (torch.as_tensor(o) - torch.as_tensor(e)).square().mean(-1).sqrt()
    return to_output(v, not tout)


def mace(pred: Prediction, y: Any, *, n_bins: int = 100, reduce: str = "mean"):
    """Mean absolute calibration error ``mean_j |p_j - obs_j|`` over the curve."""
    e, o = calibration_curve(pred, y, n_bins=n_bins, reduce=reduce)
    tout = isinstance(e, torch.Tensor)
    v = (torch.as_tensor(o) - torch.as_tensor(e)).abs().mean(-1)
    return to_output(v, not tout)


def sharpness(pred: Prediction, *, reduce: str = "mean"):
    """Sharpness: root mean square of the predictive std (uncertainty-toolbox ``sharp``).

    ``"none"``: std per point; ``"sample"``: RMS std per field; ``"mean"``: pooled RMS std.
    Smaller is sharper; only meaningful together with calibration.
    """
    _check_reduce(reduce)
    p = _as_prediction(pred)
    if p.kind == "point":
        raise ValueError("pred is a point prediction: sharpness needs std, samples or quantiles")
    sd = p.torch().std
    return to_output(_reduce_points(sd, reduce, sq=True), p.is_numpy)


def pit(pred: Prediction, y: Any, *, generator: torch.Generator | None = None, reduce="none"):
    """Probability integral transform u = F(y); uniform on (0, 1) for a calibrated forecast.

    Gaussian: ``Φ((y - μ)/σ)``. Samples: the randomised rank
    ``(#{x < y} + V (#{x = y} + 1)) / (M + 1)`` with ``V ~ U(0, 1)`` drawn from ``generator``
    (``V = 1/2`` without one), so the histogram over ``M + 1`` bins is the rank histogram.
    Quantiles: the piecewise-linear CDF through the stored levels (0/1 outside them).

    ``reduce="none"`` returns the PIT values (shape of ``y``); ``"sample"`` and ``"mean"``
    return the Kolmogorov-Smirnov distance of the values from U(0, 1), per field or pooled.
    """
    _check_reduce(reduce)
    p = _as_prediction(pred)
    t = p.tensors()
    yt = _target(y, p.shape, t["mean"])
    if p.kind == "gaussian":
        sd = t["std"]
        if bool((sd <= 0).any()):
            raise ValueError("std must be strictly positive for the PIT of a Gaussian")
        u = torch.special.ndtr((yt - t["mean"]) / sd)
    elif p.kind == "samples":
        s = t["samples"]
        k_lt, k_le = _rank_counts(s, yt)
        below = k_lt.to(yt.dtype)
        ties = (k_le - k_lt).to(yt.dtype)
        if generator is None:
            v = torch.full_like(yt, 0.5)
        else:
            v = torch.rand(yt.shape, generator=generator, dtype=yt.dtype, device="cpu")
            v = v.to(yt.device)
        u = (below + v * (ties + 1)) / (s.shape[0] + 1)
    elif p.kind == "quantiles":
        u = _interp_cdf_quantiles(t["quantiles"], p.levels, yt)
        q0 = t["quantiles"][0]
        u = torch.where(torch.isnan(u), torch.where(yt < q0, 0.0, 1.0).to(u), u).to(yt.dtype)
    else:
        raise ValueError("pred is a point prediction: the PIT needs std, samples or quantiles")
    if reduce == "none":
        return to_output(u, p.is_numpy)
    return to_output(_ks_uniform(u, reduce == "sample"), p.is_numpy)


def _ks_uniform(u: torch.Tensor, per_sample: bool) -> torch.Tensor:
    w = u.reshape(u.shape[0], -1) if per_sample else u.reshape(1, -1)
    srt = _sort0(w.T.contiguous()).T.to(torch.float64)
    n = srt.shape[1]
    i = torch.arange(1, n + 1, dtype=torch.float64, device=u.device)
    dplus = (i / n - srt).amax(1)
    dminus = (srt - (i - 1) / n).amax(1)
    d = torch.maximum(dplus, dminus)
    return d if per_sample else d[0]


def spread_skill_ratio(pred: Prediction, y: Any, *, reduce: str = "mean"):
    r"""Spread-skill ratio :math:`\sqrt{\overline{\sigma^2}}/\mathrm{RMSE}(\mu)`; 1 is ideal.

    For samples the variance is the unbiased member variance and the ratio is multiplied
    by :math:`\sqrt{(M+1)/M}` so that a reliable ``M``-member ensemble scores 1.
    Below 1: over-confident; above 1: under-confident. ``reduce`` is ``"sample"`` or
    ``"mean"`` (pooled).
    """
    _check_reduce(reduce, ("sample", "mean"))
    p = _as_prediction(pred)
    if p.kind == "point":
        raise ValueError("pred is a point prediction: spread-skill needs a predictive spread")
    t = p.tensors()
    yt = _target(y, p.shape, t["mean"])
    var = p.torch().variance
    se = (t["mean"] - yt).square()
    spread = _reduce_points(var, reduce).sqrt()
    skill = _reduce_points(se, reduce).sqrt()
    r = spread / skill
    if p.kind == "samples":
        m = p.n_samples
        r = r * math.sqrt((m + 1) / m)
    return to_output(r, p.is_numpy)
