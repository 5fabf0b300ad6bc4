"""Training step models on time series: teacher forcing and multi-step (pushforward) training.

Batches come from :class:`pdesurrogates.datasets.TimePairs`: ``"a"`` is the history
``(B, C*k, *grid)`` and ``"u"`` the next ``unroll`` model outputs, ``(B, C*m*unroll,
*grid)``, both stacked time-major.

* **Teacher forcing** (``unroll=1``): every step is trained from true states. This is
  the :class:`~pdesurrogates.training.Trainer`'s default supervised step on
  ``TimePairs(..., unroll=1)``; :class:`PushforwardStep` with ``unroll=1`` computes the
  same loss.
* **Multi-step / pushforward** (``unroll=n > 1``): the model is unrolled ``n`` calls from
  the true history, each call fed the previous predictions (the next history is the last
  ``C*k`` channels of ``cat(history, prediction)``), so it learns from the inputs it will
  see in a rollout. ``backprop="last"`` (the pushforward trick of Brandstetter, Worrall
  and Welling, 2022) runs calls ``2 .. n - 1`` without gradients and backpropagates
  through the last call only, on its own inputs: as cheap as one step in memory, and the
  model learns to correct its own drift. The loss is the mean of the first call's (from
  the true history, i.e. teacher forcing) and the last call's: without the first term an
  untrained model feeds noise to the last call and does not learn at all.
  ``backprop="all"`` keeps the graph through every call (backpropagation through time)
  and averages the loss of all ``n`` calls.

Give the step to the Trainer: ``Trainer(model, step=PushforwardStep(unroll=4), ...)``.

Examples
--------
>>> import torch
>>> step = PushforwardStep(unroll=2, backprop="all")
>>> batch = {"a": torch.ones(3, 1, 8, 8), "u": torch.cat([0.5 * torch.ones(3, 1, 8, 8),
...                                                       0.25 * torch.ones(3, 1, 8, 8)], 1)}
>>> loss, n = step.loss(lambda x: 0.5 * x, batch)  # the exact step: zero loss
>>> float(loss), n
(0.0, 3)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import nn

from pdesurrogates.errors import TrainingError
from pdesurrogates.training._losses import get_loss, rel_l2
from pdesurrogates.training._steps import TrainingStep, fields_to_channels

__all__ = ["PushforwardStep"]

_BACKPROP = ("last", "all")


class PushforwardStep(TrainingStep):
    """Loss of a step model unrolled ``unroll`` calls on a :class:`TimePairs` batch.

    Parameters
    ----------
    unroll : int
        Model calls per sample; must match the ``unroll`` of the ``TimePairs``.
    backprop : {"last", "all"}
        ``"last"``: gradients through the first and the last call only, each on its own
        (detached) inputs, loss the mean of those two calls' (pushforward). ``"all"``:
        gradient through every call, mean loss of all.
    loss : {"rel_l2", "rel_h1", "mse"} or callable
        Loss of one call's prediction against its true states.
    spatial_dims : int
        Trailing grid axes (for the relative losses).
    input_key, target_key : str
        Batch keys of the history and of the target states.

    Notes
    -----
    Validation (:meth:`evaluate`) unrolls all ``unroll`` calls without gradients and
    reports ``loss`` (mean loss over the calls, whatever ``backprop``, so that runs with
    either mode compare) and ``rel_l2_last`` (relative L2 of the last call).
    """

    metric_names = ("loss", "rel_l2_last")

    def __init__(
        self,
        *,
        unroll: int = 1,
        backprop: str = "last",
        loss: str | Callable = "rel_l2",
        spatial_dims: int = 2,
        input_key: str = "a",
        target_key: str = "u",
    ) -> None:
        if isinstance(unroll, bool) or not isinstance(unroll, int) or unroll < 1:
            raise ValueError(f"PushforwardStep: unroll must be an integer >= 1, got {unroll!r}")
        if backprop not in _BACKPROP:
            raise ValueError(
                f"PushforwardStep: backprop must be one of {_BACKPROP}, got {backprop!r}"
            )
        self.unroll, self.backprop = unroll, backprop
        self.loss_fn = get_loss(loss)
        if loss in ("rel_l2", "rel_h1"):
            self.loss_fn = partial(self.loss_fn, spatial_dims=spatial_dims)
        self.spatial_dims = spatial_dims
        self.input_key, self.target_key = input_key, target_key

    def _targets(self, batch: Any) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = fields_to_channels(batch, self.input_key)
        y = fields_to_channels(batch, self.target_key)
        if y.shape[1] % self.unroll:
            raise TrainingError(
                f"PushforwardStep(unroll={self.unroll}): the target has {y.shape[1]} "
                f"channels, not a multiple of {self.unroll}; build the TimePairs with "
                f"unroll={self.unroll}"
            )
        return x, list(torch.chunk(y, self.unroll, dim=1))

    def _unroll(self, model: nn.Module | Callable, batch: Any, *, train: bool):
        """Predictions of every call and their targets."""
        history, targets = self._targets(batch)
        width = history.shape[1]
        preds = []
        for i, target in enumerate(targets):
            grad = train and (self.backprop == "all" or i in (0, self.unroll - 1))
            with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
                pred = model(history)
            if pred.shape != target.shape:
                raise TrainingError(
                    f"the step model returned {tuple(pred.shape)} for a history of shape "
                    f"{tuple(history.shape)}; the TimePairs targets per call are "
                    f"{tuple(target.shape)} (check the model's in/out channels = C*history "
                    "/ C*steps)"
                )
            preds.append(pred)
            feed = pred.detach() if train and self.backprop == "last" else pred
            history = torch.cat([history, feed], dim=1)[:, -width:]
        return preds, targets

    def loss(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
        preds, targets = self._unroll(model, batch, train=True)
        n = int(targets[0].shape[0])
        if self.backprop == "last":
            if self.unroll == 1:
                return self.loss_fn(preds[0], targets[0]), n
            first, last = self.loss_fn(preds[0], targets[0]), self.loss_fn(preds[-1], targets[-1])
            return 0.5 * (first + last), n
        losses = [self.loss_fn(p, t) for p, t in zip(preds, targets, strict=True)]
        return torch.stack(losses).mean(), n

    def evaluate(self, model: nn.Module, batch: Any) -> tuple[dict[str, float], int]:
        preds, targets = self._unroll(model, batch, train=False)
        n = int(targets[0].shape[0])
        losses = [float(self.loss_fn(p, t)) for p, t in zip(preds, targets, strict=True)]
        last = rel_l2(preds[-1], targets[-1], spatial_dims=self.spatial_dims, reduction="sum")
        return {"loss": sum(losses) / len(losses) * n, "rel_l2_last": float(last)}, n
