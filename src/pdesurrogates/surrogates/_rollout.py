"""Autoregressive rollout of a step model: ``k`` states in, the next ``m`` states out.

The step model maps a history of ``k`` states, stacked time-major along the channel axis
(``(N, C*k, *grid)``, see :func:`pdesurrogates.datasets.stack_time`), to the next ``m``
states ``(N, C*m, *grid)``, as trained on :class:`pdesurrogates.datasets.TimePairs`.
:func:`rollout` feeds its own predictions back: the next history is the last ``C*k``
channels of ``cat(history, prediction)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pdesurrogates.datasets._time_pairs import stack_time, unstack_time
from pdesurrogates.errors import RolloutError

__all__ = ["rollout"]


def _as_int(name: str, v: Any, low: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ValueError(f"rollout: {name} must be an integer >= {low}, got {v!r}")
    return v


@torch.no_grad()
def rollout(
    model: nn.Module | Any,
    u0: Any,
    steps: int,
    *,
    horizon: int | None = None,
) -> torch.Tensor:
    """Roll a step model out autoregressively for ``steps`` model calls.

    Parameters
    ----------
    model : nn.Module or callable
        Step model ``(N, C*k, *grid) -> (N, C*m, *grid)``. Called in eval mode (its mode
        is restored afterwards) without gradients, on the device and dtype of ``u0``.
    u0 : Tensor or array, shape ``(N, C, k, *grid)``
        The first ``k`` states of each trajectory, channel-first with a time axis, as
        ``FieldDataset.load(field)[:, :, :k]`` reads them.
    steps : int
        Number of model calls; the result holds ``steps * m`` states.
    horizon : int, optional
        States the data holds after ``u0`` (e.g. ``TimePairs.horizon``, ``T - k``): a
        rollout longer than that cannot be scored and is refused.

    Returns
    -------
    Tensor, shape ``(N, C, steps * m, *grid)``
        The predicted states after ``u0`` (compare with ``truth[:, :, k : k + steps*m]``).

    Raises
    ------
    ValueError
        ``steps`` beyond ``horizon`` (naming it), or shapes that do not fit.
    RolloutError
        A model call returned NaN or Inf (the message and ``.step`` name the call).

    Examples
    --------
    >>> import torch
    >>> decay = lambda x: 0.5 * x  # u_{t+1} = u_t / 2
    >>> out = rollout(decay, torch.ones(1, 1, 1, 4), 3)
    >>> out[0, 0, :, 0].tolist()
    [0.5, 0.25, 0.125]
    """
    steps = _as_int("steps", steps, 1)
    u0 = torch.as_tensor(u0)
    if u0.ndim < 3 or not u0.is_floating_point():
        raise ValueError(
            "rollout: u0 must be floating-point states (N, C, k, *grid) with a time axis "
            f"at 2 (use u[:, :, :k] of a (N, C, T, *grid) field), got shape "
            f"{tuple(u0.shape)} and dtype {u0.dtype}"
        )
    channels, k = int(u0.shape[1]), int(u0.shape[2])
    history = stack_time(u0)
    width = channels * k
    was_training = getattr(model, "training", None)
    if was_training:
        model.eval()
    try:
        outs, total = [], 0
        for step in range(1, steps + 1):
            pred = model(history)
            if step == 1:
                m = _states_per_call(pred, history, channels)
                if horizon is not None and steps * m > _as_int("horizon", horizon, 0):
                    raise ValueError(
                        f"rollout: {steps} steps of {m} state(s) need {steps * m} states but "
                        f"the data's horizon is {horizon} states after u0; use at most "
                        f"steps={horizon // m}"
                    )
            if not torch.isfinite(pred).all():
                raise RolloutError(
                    f"rollout diverged at step {step} of {steps} (states {total + 1}.."
                    f"{total + m} after u0): the model returned NaN or Inf; the "
                    f"{total} state(s) before were finite. Train with multi-step "
                    "(pushforward) unrolling or roll out fewer steps",
                    step,
                )
            outs.append(pred)
            total += m
            history = torch.cat([history, pred], dim=1)[:, -width:]
    finally:
        if was_training:
            model.train()
    return unstack_time(torch.cat(outs, dim=1), channels)


def _states_per_call(pred: Any, history: torch.Tensor, channels: int) -> int:
    if not torch.is_tensor(pred) or pred.ndim != history.ndim:
        raise ValueError(
            f"rollout: the model must return (N, C*m, *grid) for input {tuple(history.shape)}, "
            f"got {tuple(getattr(pred, 'shape', ()))}"
        )
    if (
        pred.shape[0] != history.shape[0]
        or pred.shape[2:] != history.shape[2:]
        or pred.shape[1] % channels
    ):
        raise ValueError(
            f"rollout: the model returned shape {tuple(pred.shape)} for input "
            f"{tuple(history.shape)}; it must return a whole number of states of "
            f"{channels} channel(s) on the same grid, (N, {channels}*m, *grid)"
        )
    return int(pred.shape[1]) // channels
