"""Argument checks and reductions shared by every metric (one vocabulary for all of them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from pdesurrogates.uq._backend import as_tensor, check_finite, is_torch
from pdesurrogates.uq._prediction import Prediction

__all__ = [
    "REDUCTIONS",
    "as_prediction",
    "check_reduction",
    "gaussian_args",
    "point",
    "reduce_fields",
    "reduce_points",
    "target",
]

REDUCTIONS = ("none", "sample", "mean")


def check_reduction(reduction: str, allowed: Sequence[str] = REDUCTIONS) -> None:
    if reduction not in allowed:
        raise ValueError(
            f"reduction must be one of {', '.join(map(repr, allowed))}; got {reduction!r}"
        )


def _check_finite(t: torch.Tensor, name: str) -> None:
    # A tensor that carries autograd history is a training prediction: a non-finite value
    # then shows in the loss, which the training loop reports with its own context.
    if not t.requires_grad:
        check_finite(t, name)


def target(y: Any, shape: tuple[int, ...] | None, like: torch.Tensor | None) -> torch.Tensor:
    """The truth as a tensor of the prediction's shape (a clear error otherwise)."""
    t = as_tensor(y, "y", like=like)
    check_finite(t, "y")
    if shape is not None and tuple(t.shape) != tuple(shape):
        raise ValueError(
            f"y has shape {tuple(t.shape)} but the prediction has shape {tuple(shape)}; "
            "they must match"
        )
    return t


def point(pred: Any, name: str = "pred") -> tuple[torch.Tensor, bool]:
    """Mean of a Prediction or an array, plus the 'torch output' flag."""
    if isinstance(pred, Prediction):
        return pred.tensors()["mean"], not pred.is_numpy
    t = as_tensor(pred, name)
    _check_finite(t, name)
    return t, is_torch(pred)


def reduce_points(v: torch.Tensor, reduction: str, *, sq: bool = False) -> torch.Tensor:
    """Reduce per-point values; ``sq=True`` means RMS-style (sqrt of the mean of squares)."""
    if reduction == "none":
        return v
    if reduction == "sample":
        if v.ndim == 0:
            raise ValueError("reduction='sample' needs a sample axis 0; y is a scalar")
        w = v.reshape(v.shape[0], -1)
        m = (w * w if sq else w).mean(1, dtype=torch.float64).to(v.dtype)
    else:
        m = (v * v if sq else v).mean(dtype=torch.float64).to(v.dtype)
    return m.sqrt() if sq else m


def reduce_fields(v: torch.Tensor, reduction: str) -> torch.Tensor:
    """Reduce one value per field (shape ``(N,)``, or ``()`` without a sample axis)."""
    if reduction == "mean":
        return v.mean()
    if reduction == "sample" and v.ndim == 0:
        raise ValueError("reduction='sample' needs a sample axis 0; y is a single 1-D field")
    return v


def gaussian_args(mean: Any, std: Any, y: Any, *, positive: bool = False):
    """Broadcast (mean, std, y) to one shape; the 'torch output' flag last."""
    out_torch = is_torch(mean, std, y)
    mu = as_tensor(mean, "mean")
    _check_finite(mu, "mean")
    sd = as_tensor(std, "std", like=mu)
    _check_finite(sd, "std")
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


def as_prediction(pred: Any, name: str = "pred") -> Prediction:
    if not isinstance(pred, Prediction):
        raise ValueError(
            f"{name} must be a pdesurrogates.uq.Prediction (mean with std, samples or "
            f"quantiles), got {type(pred).__name__}"
        )
    return pred
