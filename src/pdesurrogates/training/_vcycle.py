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


def _training_matrix(model, A, shape, dtype) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Dense training matrix and its grid: ``A`` (a gallery Problem or matrix, whose grid
    it carries, or a bare matrix with ``shape``), else the Dirichlet Laplacian on
    ``shape`` (default :attr:`VCycleConfig.shape`)."""
    from pdesurrogates.solvers._checks import grid_shape_for, unwrap_grid
    from pdesurrogates.surrogates._dcdm_net import _laplacian_dense

    if A is None:
        shape = tuple(int(s) for s in (_V.shape if shape is None else shape))
        _check_size(shape)
        return _laplacian_dense(shape, dtype, "cpu"), shape
    A, grid, _ = unwrap_grid(A, shape)
    dim = getattr(model, "dim", None) or (len(grid) if grid is not None else 2)
    grid = grid_shape_for(A.shape[0], int(dim), grid, A=A, who="train_vcycle")
    _check_size(grid)
    dense = A.toarray() if hasattr(A, "toarray") else np.asarray(A)
    return torch.as_tensor(dense, dtype=dtype), grid


def _check_size(shape) -> None:
    if int(np.prod(shape)) > 40_000:
        raise ValueError(f"train_vcycle uses dense algebra; grid {shape} is too large (<= 200^2)")


def train_vcycle(
    model: torch.nn.Module,
    shape: Sequence[int] | None = None,
    *,
    A=None,
    steps: int = _V.steps,
    batch_size: int = _V.batch_size,
    power: int = _V.power,
    lr: float = _V.lr,
    seed: int = _V.seed,
    progress: bool = True,
) -> list[dict]:
    """Train a :class:`~pdesurrogates.surrogates.LearnedVCycle` on an SPD grid matrix.

    The training matrix is ``A`` (a :class:`~pdesurrogates.solvers.gallery.Problem` or
    a gallery matrix, which carry their grid; a bare matrix of your own needs ``shape=``
    unless its grid is a square or cube), else the unscaled Dirichlet Laplacian on
    ``shape`` (default ``VCycleConfig.shape``).

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
    VCycleConfig(steps=steps, batch_size=batch_size, power=power, lr=lr, seed=seed)
    dtype = torch.float64
    A, shape = _training_matrix(model, A, shape, dtype)
    n = int(np.prod(shape))
    model.to(dtype)
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
