"""Split-conformal prediction intervals for point and probabilistic field predictors."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pdesurrogates.uq._backend import as_tensor, check_finite, check_levels
from pdesurrogates.uq._prediction import Prediction, match_channel_axis

__all__ = ["ConformalCalibrator", "conformalize"]

_SCORES = ("auto", "abs", "normalized", "cqr")


def _as_pred(pred: Any, name: str) -> Prediction:
    if isinstance(pred, Prediction):
        return pred
    return Prediction(pred)


def _scores(p: Prediction, y: torch.Tensor, score: str, level: float, scale: Any):
    """Nonconformity scores per point and the pieces needed to build the band."""
    t = p.torch()
    mu = t.tensors()["mean"]
    if score == "cqr":
        lo, hi = t.interval(level)
        return torch.maximum(lo - y, y - hi), (lo, hi, None)
    if score == "normalized":
        sd = t.std if scale is None else as_tensor(scale, "scale", like=mu).expand_as(mu)
        if bool((sd <= 0).any()):
            raise ValueError("the predictive std (or scale) must be strictly positive")
        return (y - mu).abs() / sd, (mu, mu, sd)
    sd = torch.ones_like(mu) if scale is None else as_tensor(scale, "scale", like=mu).expand_as(mu)
    return (y - mu).abs() / sd, (mu, mu, sd)


def _order_stat(sorted_scores: torch.Tensor, n: int, level: float) -> torch.Tensor:
    k = math.ceil((n + 1) * level)
    if k > n:
        need = math.ceil(level / (1 - level))
        raise ValueError(
            f"y_cal holds {n} calibration samples; level={level} needs at least {need} "
            "for a finite conformal quantile"
        )
    return sorted_scores[k - 1]


@dataclass
class ConformalCalibrator:
    """A calibrated split-conformal band; apply it to new predictions of the same model.

    Attributes
    ----------
    level : float
        Target coverage ``1 - α``.
    mode : str
        ``"pointwise"``: one quantile per grid point, ``P(y_j ∈ band_j) ≥ level`` at every
        point ``j``; ``"field"``: one quantile for whole fields, ``P(field inside the band
        on at least field_fraction of its points) ≥ level`` (simultaneous for 1.0).
    score : str
        ``"abs"`` ``|y - μ|/s``, ``"normalized"`` ``|y - μ|/σ``, or ``"cqr"``
        ``max(l - y, y - u)`` (conformalised quantile regression on the model's own
        interval at ``level``).
    quantile : ndarray
        The conformal quantile (field shape for pointwise mode, a scalar for field mode).
    n_calibration : int
        Number of calibration fields.
    field_fraction : float
        Fraction of points a covered field must have inside the band (field mode).
    """

    level: float
    mode: str
    score: str
    quantile: np.ndarray
    n_calibration: int
    field_fraction: float = 1.0
    scale: Any = None

    def interval(self, pred: Prediction | Any):
        """Calibrated band ``(lower, upper)`` for ``pred`` (same array type as ``pred``).

        A pointwise calibration done on ``(n, X, Y)`` fields applies to ``(N, 1, X, Y)``
        predictions and the reverse (a channel axis of length 1 may be left out).
        """
        p = _as_pred(pred, "pred")
        if self.score != "abs" and p.kind == "point":
            raise ValueError(f"score={self.score!r} needs a probabilistic pred, got a point one")
        dummy = p.tensors()["mean"]
        q = torch.as_tensor(self.quantile, dtype=dummy.dtype, device=dummy.device)
        if self.mode == "pointwise":
            q = match_channel_axis(q[None], (1, *p.shape[1:]))[0]
        if self.mode == "pointwise" and tuple(q.shape) != tuple(p.shape[1:]):
            raise ValueError(
                f"pred fields have shape {p.shape[1:]} but the calibration was done on "
                f"fields of shape {tuple(q.shape)}"
            )
        _, (lo, hi, sd) = _scores(p, dummy, self.score, self.level, self.scale)
        if self.score == "cqr":
            lower, upper = lo - q, hi + q
        else:
            lower, upper = lo - q * sd, hi + q * sd
        upper = torch.maximum(upper, lower)
        if p.is_numpy:
            return lower.detach().cpu().numpy(), upper.detach().cpu().numpy()
        return lower, upper

    def apply(self, pred: Prediction | Any) -> Prediction:
        """``pred`` as a quantile Prediction holding the calibrated central band.

        The result has ``quantiles = [lower, upper]`` at levels ``((1-a)/2, (1+a)/2)`` with
        ``a = level``, so ``metrics.coverage(result, y, level)`` checks the band, and
        ``uq.evaluate(result, y)`` scores it at its own level ``a`` by default.
        """
        p = _as_pred(pred, "pred")
        lo, hi = self.interval(p)
        a = self.level
        stack = np.stack if p.is_numpy else torch.stack
        return Prediction(p.mean, quantiles=stack([lo, hi], 0), levels=[(1 - a) / 2, (1 + a) / 2])


def conformalize(
    pred_cal: Prediction | Any,
    y_cal: Any,
    *,
    level: float = 0.9,
    mode: str = "pointwise",
    score: str = "auto",
    field_fraction: float = 1.0,
    scale: Any = None,
) -> ConformalCalibrator:
    """Calibrate split-conformal intervals on a held-out calibration split.

    Parameters
    ----------
    pred_cal : Prediction or array, shape ``(n, ...)``
        The model's predictions on ``n`` calibration fields not used for training. A plain
        array is a point prediction.
    y_cal : array or Tensor, shape ``(n, ...)``
        The true calibration fields. A channel axis of length 1 may be left out
        (``(n, X, Y)`` for a prediction of shape ``(n, 1, X, Y)``, and the reverse).
    level : float in (0, 1)
        Target coverage. With ``k = ⌈(n+1)·level⌉`` the band uses the ``k``-th smallest
        score, which guarantees coverage ``≥ level`` (and ``< level + 1/(n+1)`` without
        ties) for an exchangeable test field.
    mode : {"pointwise", "field"}
        Per-grid-point quantiles (marginal coverage at each point) or one quantile of a
        per-field score (whole-field coverage).
    score : {"auto", "abs", "normalized", "cqr"}
        ``auto``: ``normalized`` for Gaussian and sample predictions, ``cqr`` for
        quantile predictions, ``abs`` for point predictions.
    field_fraction : float in (0, 1]
        Field mode: the per-field score is this quantile of the pointwise scores (1.0: the
        maximum, i.e. simultaneous coverage of the whole field).
    scale : array, optional
        Fixed positive scale for ``abs`` scores (e.g. a per-point residual scale estimated
        on *another* split); default 1.

    Returns
    -------
    ConformalCalibrator
    """
    a = float(check_levels(level, "level")[0])
    if mode not in ("pointwise", "field"):
        raise ValueError(f"mode must be 'pointwise' or 'field', got {mode!r}")
    if score not in _SCORES:
        raise ValueError(f"score must be one of {', '.join(map(repr, _SCORES))}, got {score!r}")
    if not 0.0 < float(field_fraction) <= 1.0:
        raise ValueError(f"field_fraction must be in (0, 1], got {field_fraction}")
    p = _as_pred(pred_cal, "pred_cal")
    if score == "auto":
        score = {"gaussian": "normalized", "samples": "normalized", "quantiles": "cqr"}.get(
            p.kind, "abs"
        )
    if score in ("normalized", "cqr") and p.kind == "point":
        raise ValueError(f"score={score!r} needs std, samples or quantiles in pred_cal")
    mu = p.tensors()["mean"]
    y = as_tensor(y_cal, "y_cal", like=mu)
    check_finite(y, "y_cal")
    y = match_channel_axis(y, p.shape)
    if tuple(y.shape) != p.shape:
        raise ValueError(
            f"y_cal has shape {tuple(y.shape)} but pred_cal has shape {p.shape}; both must be "
            "(n, C, *spatial) (a channel axis of length 1 may be left out of either)"
        )
    if y.ndim < 1:
        raise ValueError("y_cal needs a leading axis of calibration samples")
    n = y.shape[0]
    s, _ = _scores(p, y, score, a, scale)
    s = s.detach().to(torch.float64).cpu()
    if mode == "pointwise":
        srt = torch.sort(s, dim=0).values
        q = _order_stat(srt, n, a)
    else:
        flat = s.reshape(n, -1)
        if field_fraction >= 1.0:
            per_field = flat.amax(1)
        else:
            j = math.ceil(field_fraction * flat.shape[1])
            per_field = torch.sort(flat, dim=1).values[:, j - 1]
        q = _order_stat(torch.sort(per_field).values, n, a)
    return ConformalCalibrator(
        level=a,
        mode=mode,
        score=score,
        quantile=q.cpu().numpy(),
        n_calibration=int(n),
        field_fraction=float(field_fraction),
        scale=scale,
    )
