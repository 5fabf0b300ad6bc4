"""Training step of the learned V-cycle: a smooth estimate of its contraction factor.

For random vectors ``e`` the loss is the mean of ``log(||E^k e||_A^2 / ||e||_A^2)``, where
``E = I - B A`` is the V-cycle's error propagation and ``k = power``. Every step draws
fresh vectors, so a step is an epoch of the :class:`~pdesurrogates.training.Trainer`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from pdesurrogates.training._configs import VCycleConfig
from pdesurrogates.training._steps import BatchSource, TrainingStep
from pdesurrogates.training._trainer import Trainer

__all__ = ["VCycleStep", "train_vcycle"]


class VCycleStep(TrainingStep):
    """``mean log(||E^k e||_A^2 / ||e||_A^2)`` over a batch of vectors ``e`` (rows).

    Parameters
    ----------
    A : Tensor, shape (n, n)
        Dense training matrix.
    shape : tuple of int
        Its grid.
    power : int
        V-cycles ``k`` applied to each vector.
    """

    def __init__(self, A: torch.Tensor, shape: Sequence[int], power: int) -> None:
        self.A = A
        self.shape = tuple(shape)
        self.power = power

    def loss(self, model, batch) -> tuple[torch.Tensor, int]:
        levels = model.hierarchy(self.A, self.shape)
        e0 = ((batch @ self.A) * batch).sum(1)
        x = batch
        for _ in range(self.power):
            x = x - model.apply(levels, x @ self.A)
        return torch.log(((x @ self.A) * x).sum(1) / e0).mean(), len(batch)


class _RandomVectors(BatchSource):
    """One batch of standard normal vectors per epoch, drawn from ``(seed, epoch)``."""

    def __init__(self, n: int, batch_size: int, seed: int, dtype: torch.dtype) -> None:
        self.n, self.batch_size, self.seed, self.dtype = n, batch_size, seed, dtype

    def __len__(self) -> int:
        return 1

    def batches(self, epoch: int) -> list[torch.Tensor]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return [torch.randn(self.batch_size, self.n, generator=gen, dtype=self.dtype)]


_V = VCycleConfig  # the defaults


def train_vcycle(
    model: torch.nn.Module,
    shape: Sequence[int],
    *,
    steps: int = _V.steps,
    batch_size: int = _V.batch_size,
    power: int = _V.power,
    lr: float = _V.lr,
    seed: int = _V.seed,
    progress: bool = True,
) -> list[dict]:
    """Train a :class:`~pdesurrogates.surrogates.LearnedVCycle` on the Dirichlet Laplacian.

    Minimises the mean of ``log(||E^k e||_A^2 / ||e||_A^2)`` over random vectors ``e``,
    where ``E = I - B A`` is the V-cycle's error propagation and ``k = power``: a smooth
    estimate of the spectral radius of ``E``, which sets the PCG condition number
    ``1 / (1 - rho(E))``. The training grid should be small (dense algebra), e.g. 32x32.
    The loop is the :class:`~pdesurrogates.training.Trainer`'s (Adam, constant learning
    rate), with :class:`VCycleStep`; the defaults are those of
    :class:`~pdesurrogates.training.VCycleConfig`.

    Returns
    -------
    list of dict
        ``step`` and ``loss`` every 10 steps (and the last), with ``rho`` the estimated
        contraction factor per V-cycle ``exp(loss / (2 k))``.
    """
    from pdesurrogates.surrogates._dcdm_net import _laplacian_dense

    cfg = VCycleConfig(shape=shape, steps=steps, batch_size=batch_size, power=power, lr=lr)
    shape = tuple(int(s) for s in cfg.shape)
    n = int(np.prod(shape))
    if n > 40_000:
        raise ValueError(f"train_vcycle uses dense algebra; grid {shape} is too large (<= 200^2)")
    dtype = torch.float64
    model.to(dtype)
    A = _laplacian_dense(shape, dtype, "cpu")
    trainer = Trainer(
        model,
        step=VCycleStep(A, shape, power),
        lr=lr,
        epochs=steps,
        scheduler=None,
        seed=seed,
        device="cpu",
        progress=progress,
    )
    history = trainer.fit(_RandomVectors(n, batch_size, seed, dtype))
    model.eval()
    return [
        {
            "step": r["epoch"],
            "loss": r["train_loss"],
            "rho": math.exp(r["train_loss"] / (2 * power)),
        }
        for r in history
        if (r["epoch"] - 1) % 10 == 0 or r["epoch"] == len(history)
    ]
