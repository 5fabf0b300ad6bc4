"""Errors along a trajectory: relative L2 per time step and the time it crosses a threshold.

Both build on :func:`~pdesurrogates.uq.metrics.rel_l2` (defined once, in
``_deterministic``): the error at step ``t`` is ``rel_l2(pred[:, :, t], y[:, :, t])``
over the channels and the grid of that state.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from pdesurrogates.uq._backend import to_output
from pdesurrogates.uq.metrics._common import check_reduction, point, target
from pdesurrogates.uq.metrics._deterministic import rel_l2

__all__ = ["rollout_rel_l2", "time_to_threshold"]


def rollout_rel_l2(
    pred: Any,
    y: Any,
    *,
    time_axis: int = 2,
    spatial_dims: int | None = None,
    reduction: str = "mean",
    eps: float = 0.0,
):
    r"""Relative L2 error of every state of a trajectory, :math:`e_t = \|\hat u_t - u_t\|
    / \|u_t\|`.

    Parameters
    ----------
    pred : array, Tensor or Prediction
        Predicted trajectories, channel-first with a time axis: ``(N, C, T, *grid)`` (what
        :func:`pdesurrogates.surrogates.rollout` returns and ``FieldDataset.load`` reads).
    y : array or Tensor
        True trajectories, same shape.
    time_axis : int
        Position of the time axis (2 for ``(N, C, T, *grid)``).
    spatial_dims : int, optional
        Grid axes after the time axis (default: all of them).
    reduction : {"none", "sample", "mean"}
        ``"none"``/``"sample"``: ``(N, T)``, one error per sample and step; ``"mean"``:
        ``(T,)``, the mean over samples of each step.
    eps : float
        Added to the norm of each true state (see :func:`rel_l2`).

    Examples
    --------
    >>> import numpy as np
    >>> y = np.ones((1, 1, 3, 4, 4))
    >>> pred = y * np.array([1.0, 1.05, 1.2])[None, None, :, None, None]
    >>> np.round(rollout_rel_l2(pred, y), 12).tolist()
    [0.0, 0.05, 0.2]
    """
    check_reduction(reduction)
    m, tout = point(pred)
    yt = target(y, tuple(m.shape), m)
    if not 1 <= time_axis < m.ndim:
        raise ValueError(
            f"time_axis={time_axis} is not an axis after the sample axis of shape {tuple(m.shape)}"
        )
    if spatial_dims is None:
        spatial_dims = m.ndim - 1 - time_axis
    n, t = m.shape[0], m.shape[time_axis]

    def per_state(v: torch.Tensor) -> torch.Tensor:  # (N*T, ..., *grid)
        v = v.movedim(time_axis, 1)
        return v.reshape(n * t, *v.shape[2:])

    err = rel_l2(
        per_state(m), per_state(yt), spatial_dims=spatial_dims, reduction="none", eps=eps
    ).reshape(n, t)
    if reduction == "mean":
        err = err.mean(0)
    return to_output(err, not tout)


def time_to_threshold(
    errors: Any,
    threshold: float = 0.1,
    *,
    times: Any = None,
):
    """Time of the first step whose error exceeds ``threshold`` ("time until the error
    crosses 10 %").

    Parameters
    ----------
    errors : array or Tensor, shape (T,) or (N, T)
        Errors per step (e.g. :func:`rollout_rel_l2`), step 1 first.
    threshold : float
        The crossing level (0.1: 10 % relative error).
    times : array, optional
        Time of each step, shape ``(T,)``; default ``1, 2, ..., T`` (the answer is then a
        number of steps).

    Returns
    -------
    float or ndarray
        The time of the first step with ``error > threshold`` (per sample for ``(N, T)``
        input); ``inf`` where the error stays at or below the threshold over the whole
        trajectory (the trajectory is too short to see it cross).

    Examples
    --------
    >>> time_to_threshold([0.01, 0.05, 0.09, 0.12, 0.3])
    4.0
    >>> time_to_threshold([0.01, 0.05], times=[0.5, 1.0])
    inf
    """
    if not (threshold > 0 and math.isfinite(threshold)):
        raise ValueError(f"threshold must be a positive number, got {threshold!r}")
    e = errors.detach().cpu().numpy() if torch.is_tensor(errors) else np.asarray(errors)
    if not np.issubdtype(e.dtype, np.floating):
        e = e.astype(np.float64)
    if e.ndim not in (1, 2) or e.shape[-1] == 0:
        raise ValueError(f"errors must have shape (T,) or (N, T), got {e.shape}")
    if np.isnan(e).any():
        raise ValueError("errors hold NaN; a rollout that diverged has no crossing time")
    t = np.arange(1, e.shape[-1] + 1, dtype=np.float64) if times is None else np.asarray(times)
    if t.shape != (e.shape[-1],):
        raise ValueError(f"times has shape {t.shape}, errors have {e.shape[-1]} steps")
    above = e > e.dtype.type(threshold)  # in the errors' precision: 0.1 is not above 0.1
    first = np.argmax(above, axis=-1)
    out = np.where(above.any(axis=-1), t[first], np.inf).astype(np.float64)
    return float(out) if out.ndim == 0 else out
