"""What a family gives the :class:`~pdesurrogates.training.Trainer`: a step and its batches.

The Trainer owns the loop (optimiser, schedule, early stopping, checkpoints, progress,
wall-clock budget); a family only says what the loss of one batch is. That is a
:class:`TrainingStep`:

- :meth:`TrainingStep.loss` returns the differentiable mean loss of a batch and the number
  of samples in it (the weight of the batch in the epoch's mean);
- :meth:`TrainingStep.evaluate` returns *sums* over the batch of the validation metrics
  named in :attr:`TrainingStep.metric_names` (``"loss"`` first), and the sample count.

Operators on field datasets use :class:`SupervisedStep` (``model(inputs)`` against a
target field under a loss such as relative L2). DCDM, the learned V-cycle and MF-DNN have
their own steps beside their training functions.

Batches come from a map-style :class:`torch.utils.data.Dataset` (the Trainer builds the
``DataLoader`` and shards it under DDP) or from a :class:`BatchSource`, which draws its
own batches, in memory, for epoch ``e`` (deterministically from its seed and ``e``, so a
resumed run sees the same batches). :class:`FullBatch` is the full-batch case: one batch,
one optimisation step per epoch.

Examples
--------
>>> import torch
>>> class Mean(TrainingStep):
...     def loss(self, model, batch):
...         return (model(batch) - 1.0).square().mean(), len(batch)
>>> source = FullBatch(torch.zeros(4, 1))
>>> len(source), [b.shape for b in source.batches(0)]
(1, [torch.Size([4, 1])])
>>> loss, n = Mean().loss(torch.nn.Linear(1, 1), torch.zeros(4, 1))
>>> n
4
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from pdesurrogates.errors import TrainingError

__all__ = [
    "BatchSource",
    "FullBatch",
    "SupervisedStep",
    "TrainingStep",
    "default_step",
    "fields_to_channels",
]


class TrainingStep:
    """A family's loss on one batch; subclass and implement :meth:`loss`."""

    #: Names of the validation sums :meth:`evaluate` returns (``"loss"`` first).
    metric_names: tuple[str, ...] = ("loss",)

    def loss(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
        """``(mean loss over the batch, number of samples)``; the loss is differentiable."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module, batch: Any) -> tuple[dict[str, float], int]:
        """Sums over the batch of every metric in :attr:`metric_names`, and the sample count.

        Called in eval mode without gradients. The default scores the training loss.
        """
        loss, n = self.loss(model, batch)
        return {"loss": float(loss) * n}, n


class BatchSource:
    """Batches a family draws itself, in memory (instead of a map-style ``Dataset``).

    Subclasses implement ``__len__`` (batches per epoch) and :meth:`batches`. The batches
    of epoch ``e`` must depend only on the source's own settings and ``e``, so that a
    resumed run sees the same ones. Under DDP every process draws the same batches.
    """

    def __len__(self) -> int:
        raise NotImplementedError

    def batches(self, epoch: int) -> Iterable[Any]:
        """The batches of epoch ``epoch`` (0-based), in training order."""
        raise NotImplementedError


class FullBatch(BatchSource):
    """One batch for every epoch: full-batch training, one optimisation step per epoch."""

    def __init__(self, batch: Any) -> None:
        self.batch = batch

    def __len__(self) -> int:
        return 1

    def batches(self, epoch: int) -> list[Any]:
        return [self.batch]


def fields_to_channels(batch: Mapping[str, Any], keys: str | Sequence[str]) -> torch.Tensor:
    """The fields ``keys`` of a batch as one channel-first tensor ``(B, C, *grid)``.

    Batches of a :class:`~pdesurrogates.datasets.FieldDataset` are already channel-first
    (``(B, 1, X, Y)`` for a scalar field, ``(B, C, X, Y)`` for one with a ``component``
    dim); several keys are concatenated along the channel axis.
    """
    if isinstance(keys, str):
        keys = [keys]
    parts = []
    for k in keys:
        if k not in batch:
            raise TrainingError(
                f"batch has no field {k!r} (fields: {sorted(x for x in batch if x != 'params')}); "
                "set input_key/target_key to field names of the dataset"
            )
        parts.append(batch[k])
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


def default_step(
    model: nn.Module,
    batch: Mapping[str, Any],
    *,
    input_key: str | Sequence[str] = "a",
    target_key: str = "u",
) -> tuple[torch.Tensor, torch.Tensor]:
    """``model(inputs), target`` for a channel-first batch: the input fields concatenated
    along the channel axis (see :func:`fields_to_channels`)."""
    x = fields_to_channels(batch, input_key)
    y = fields_to_channels(batch, target_key)
    return model(x), y


class SupervisedStep(TrainingStep):
    """``loss(*predict(model, batch))``: a prediction against a target.

    Parameters
    ----------
    predict : callable
        ``predict(model, batch) -> (prediction, target)``, both with the samples first
        (e.g. :func:`default_step`, or DeepONet's ``FieldPointStep``).
    loss : callable
        ``loss(prediction, target) -> scalar`` (the batch mean).
    metrics : mapping of name to callable
        Extra validation metrics ``fn(prediction, target) -> per-batch sum``.
    """

    def __init__(
        self,
        predict: Callable[[nn.Module, Any], tuple[torch.Tensor, torch.Tensor]],
        loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        metrics: Mapping[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] | None = None,
    ) -> None:
        self.predict = predict
        self.loss_fn = loss
        self.metrics = dict(metrics or {})
        self.metric_names = ("loss", *self.metrics)

    def loss(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
        pred, target = self.predict(model, batch)
        return self.loss_fn(pred, target), int(target.shape[0])

    def evaluate(self, model: nn.Module, batch: Any) -> tuple[dict[str, float], int]:
        pred, target = self.predict(model, batch)
        n = int(target.shape[0])
        out = {"loss": float(self.loss_fn(pred, target)) * n}
        for name, fn in self.metrics.items():
            out[name] = float(fn(pred, target))
        return out, n
