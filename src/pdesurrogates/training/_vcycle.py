"""Training step of the learned V-cycle: a smooth estimate of its contraction factor.

For random vectors ``e`` the loss is the mean of ``log(||E^k e||_A^2 / ||e||_A^2)``, where
``E = I - B A`` is the V-cycle's error propagation and ``k = power``. Every step draws
fresh vectors, so a step is an epoch of the :class:`~pdesurrogates.training.Trainer`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
import torch

from pdesurrogates.surrogates._dense_multigrid import dense_hierarchy
from pdesurrogates.training._configs import VCycleConfig
from pdesurrogates.training._steps import BatchSource, TrainingStep
from pdesurrogates.training._trainer import Trainer

__all__ = ["VCycleStep", "train_vcycle"]


class VCycleStep(TrainingStep):
    """``mean log(||E^k e||_A^2 / ||e||_A^2)`` over a batch of vectors ``e`` (rows).

    The mean runs over the vectors and over the training matrices: each matrix weighs the
    same (so a hard coefficient family is not drowned by an easy one), or as ``weights``
    say (e.g. more weight on the families where the cycle contracts least).

    Parameters
    ----------
    A : Tensor, shape (n, n), or list of them
        Dense training matrices, all on one grid.
    shape : tuple of int
        Their grid.
    power : int
        V-cycles ``k`` applied to each vector.
    coarse : {"galerkin", "geometric"}
        Coarse operators of the hierarchy, as in
        :class:`~pdesurrogates.solvers.MultigridHierarchy`: Galerkin ``P^T A P`` (they
        depend on the learned ``P``), or rediscretised from ``A`` (fixed; the learned
        parameters then fit the smoother and the transfer to them).
    weights : sequence of float, optional
        One positive weight per training matrix (normalised to sum 1); equal by default.
    coarse_cells : int, optional
        Exact solve from this many unknowns (default: the model's ``coarse_cells``). A
        smaller value trains on a deeper hierarchy, closer to the cycle on a large grid,
        where the coarse correction is itself a V-cycle.
    """

    def __init__(
        self,
        A,
        shape: Sequence[int],
        power: int,
        coarse: str = "galerkin",
        weights: Sequence[float] | None = None,
        coarse_cells: int | None = None,
    ) -> None:
        from pdesurrogates.solvers._multigrid import COARSE_OPERATORS

        if coarse not in COARSE_OPERATORS or coarse == "compact":
            raise ValueError(f"coarse must be 'galerkin' or 'geometric'; got {coarse!r}")
        self.mats = list(A) if isinstance(A, list | tuple) else [A]
        self.A = self.mats[0]
        if isinstance(weights, str):
            raise ValueError(
                f"VCycleStep takes one number per training matrix; got {weights!r} "
                "(train_vcycle resolves weights='relative' into numbers)"
            )
        self.weights = _loss_weights(weights, len(self.mats))
        self.coarse_cells = coarse_cells
        self.shape = tuple(shape)
        self.power = power
        self.coarse = coarse
        self._geo = [
            _geometric_ops(M, self.shape) if coarse == "geometric" else None for M in self.mats
        ]

    def loss(self, model, batch) -> tuple[torch.Tensor, int]:
        total = 0.0
        for A, geo, w in zip(self.mats, self._geo, self.weights, strict=True):
            levels = dense_hierarchy(model, A, self.shape, geo, self.coarse_cells)
            e0 = ((batch @ A) * batch).sum(1)
            x = batch
            for _ in range(self.power):
                x = x - model.apply(levels, x @ A)
            total = total + w * torch.log(((x @ A) * x).sum(1) / e0).mean()
        return total, len(batch)


def _loss_weights(weights, n: int) -> list[float]:
    """``weights`` normalised to sum 1 (checked: ``n`` finite positive numbers), else equal."""
    if weights is None or isinstance(weights, str):
        if weights not in (None, "relative"):
            raise ValueError(f"weights: a list of numbers or 'relative'; got {weights!r}")
        return [1.0 / n] * n
    w = np.asarray(weights, dtype=float).ravel()
    if w.size != n or not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError(
            f"weights: need {n} finite positive numbers, one per training matrix; got {weights!r}"
        )
    return [float(v) for v in w / w.sum()]


def _geometric_ops(A: torch.Tensor, shape) -> list[torch.Tensor]:
    """Rediscretised coarse operators of ``A`` (fixed, from the sparse assembly)."""
    import scipy.sparse as sp

    from pdesurrogates.solvers._multigrid import geometric_coarse

    ops, cur, cur_shape = [], sp.csr_matrix(A.detach().cpu().numpy()), tuple(shape)
    while min(cur_shape) >= 2 and cur.shape[0] > 1:
        cur = geometric_coarse(cur, cur_shape)
        cur_shape = tuple((s + 1) // 2 for s in cur_shape)
        ops.append(torch.as_tensor(cur.toarray(), dtype=A.dtype, device=A.device))
    return ops


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
    from pdesurrogates.surrogates._dense_multigrid import _laplacian_dense

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
    coarse: str = "galerkin",
    steps: int = _V.steps,
    batch_size: int = _V.batch_size,
    power: int = _V.power,
    lr: float = _V.lr,
    seed: int = _V.seed,
    weights: Sequence[float] | str | None = None,
    coarse_cells: int | None = None,
    progress: bool = True,
) -> list[dict]:
    """Train a :class:`~pdesurrogates.surrogates.LearnedVCycle` on SPD grid matrices.

    The training matrix is ``A`` (a :class:`~pdesurrogates.solvers.gallery.Problem` or
    a gallery matrix, which carry their grid; a bare matrix of your own needs ``shape=``
    unless its grid is a square or cube), else the unscaled Dirichlet Laplacian on
    ``shape`` (default ``VCycleConfig.shape``). ``A`` may also be a list of them on one
    grid (a training distribution, e.g. Poisson, high-contrast coefficients, anisotropy
    and smoke domains): the loss is their mean, each family weighing the same, or the
    ``weights`` (one positive number per matrix) to favour the hard families;
    ``weights="relative"`` divides each matrix's loss by its value at the start, so that
    every family's relative gain counts the same and the families where the cycle
    contracts least (a small ``|log rho|``) weigh the most. ``coarse_cells`` below the
    model's trains on a deeper hierarchy than the model will use on the training grid:
    its parameters then see the cycle as it runs on large grids, with every level's
    coarse correction approximate (use ``n_level_params=1`` for one set of parameters
    shared by all levels).

    Minimises the mean of ``log(||E^k e||_A^2 / ||e||_A^2)`` over random vectors ``e``,
    where ``E = I - B A`` is the V-cycle's error propagation and ``k = power``: a smooth
    estimate of the spectral radius of ``E``, which sets the PCG condition number
    ``1 / (1 - rho(E))``. The hierarchy is the one
    :class:`~pdesurrogates.solvers.MultigridHierarchy` builds with the same ``coarse``
    (``"galerkin"`` or ``"geometric"``); use the trained model with that ``coarse=``.
    The training grid should be small (dense algebra), e.g. 32x32 or 12x12x12.
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
    if coarse_cells is not None and (
        isinstance(coarse_cells, bool)
        or not isinstance(coarse_cells, numbers.Integral)
        or coarse_cells < 1
    ):
        raise ValueError(f"coarse_cells must be an integer >= 1; got {coarse_cells!r}")
    coarse_cells = None if coarse_cells is None else int(coarse_cells)
    dtype = torch.float64
    if isinstance(A, list | tuple):
        if not A:
            raise ValueError("train_vcycle: A is an empty list; pass at least one matrix")
        pairs = [_training_matrix(model, M, shape, dtype) for M in A]
        grids = {g for _, g in pairs}
        if len(grids) > 1:
            raise ValueError(
                f"train_vcycle: the training matrices lie on different grids {sorted(grids)}; "
                "use one grid for all of them"
            )
        mats, shape = [M for M, _ in pairs], pairs[0][1]
    else:
        M, shape = _training_matrix(model, A, shape, dtype)
        mats = [M]
    _loss_weights(weights, len(mats))  # refuse bad weights before any work
    n = int(np.prod(shape))
    model.to(dtype)
    trainer = Trainer(
        model,
        step=VCycleStep(
            mats, shape, power, coarse, None if isinstance(weights, str) else weights, coarse_cells
        ),
        lr=lr,
        epochs=steps,
        scheduler=None,
        seed=seed,
        device="cpu",
        progress=progress,
    )
    if isinstance(weights, str):  # "relative": each matrix's loss at the start counts as 1
        step = trainer.step
        with torch.no_grad():
            batch = _RandomVectors(n, batch_size, seed, dtype).batches(0)[0]
            start = [
                VCycleStep([M], shape, power, coarse, None, coarse_cells).loss(model, batch)[0]
                for M in mats
            ]
        step.weights = _loss_weights([1.0 / max(-float(v), 1e-12) for v in start], len(mats))
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
