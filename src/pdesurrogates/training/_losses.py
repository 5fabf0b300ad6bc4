"""Training losses: thin wrappers over the relative L2 / H1 of :mod:`pdesurrogates.uq.metrics`.

There is one definition of each error (see :mod:`pdesurrogates.uq.metrics` for the grid
convention: cell widths as quadrature weights, second-order finite differences, default
spacing ``1/n``), so a training loss and a UQ report can never disagree. The wrappers
only keep the training vocabulary: the number of trailing spatial axes ``spatial_dims``
(default 2), the domain ``lengths`` (spacing ``L/n``), a small ``eps`` in the
denominator, and ``reduction="sum"`` over the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from pdesurrogates.uq import metrics as _metrics

__all__ = ["RelH1Loss", "RelL2Loss", "get_loss", "grid_gradient", "rel_h1", "rel_l2"]


def _batch_reduction(reduction: str) -> str:
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return "mean" if reduction == "mean" else "none"


def _spacing(shape: Sequence[int], spatial_dims: int, lengths, periodic, cell_centred=True):
    """Per-axis spacing ``L/n`` (``L/(n-1)`` for vertex grids) of the last ``spatial_dims`` axes."""
    if not isinstance(spatial_dims, int) or spatial_dims < 1:
        raise ValueError(f"spatial_dims must be an integer >= 1, got {spatial_dims!r}")
    d = spatial_dims
    lengths = [float(lengths)] * d if isinstance(lengths, (int, float)) else list(lengths)
    periodic = [bool(periodic)] * d if isinstance(periodic, bool) else list(periodic)
    if len(lengths) != d or len(periodic) != d:
        raise ValueError(f"lengths and periodic need {d} entries (one per spatial axis)")
    if len(shape) < d + 1:
        raise ValueError(f"expected (batch, ..., {d} spatial axes); got shape {tuple(shape)}")
    ns = shape[len(shape) - d :]
    return [
        length / (n if (cell_centred or per) else max(n - 1, 1))
        for length, n, per in zip(lengths, ns, periodic, strict=True)
    ], periodic


def rel_l2(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    spatial_dims: int = 2,
    reduction: str = "mean",
    eps: float = 1e-12,
) -> torch.Tensor:
    """Relative L2 error per sample: :func:`pdesurrogates.uq.metrics.rel_l2`.

    Parameters
    ----------
    pred, target : Tensor, shape (batch, ..., n_1, ..., n_d)
        The norm is taken over every axis after the batch axis (channels included).
    spatial_dims : int
        Number ``d`` of trailing spatial axes.
    reduction : {"mean", "sum", "none"}
        Reduction over the batch.
    eps : float
        Added to the denominator.

    Examples
    --------
    >>> import torch
    >>> y = torch.ones(2, 8, 8)
    >>> round(float(rel_l2(1.1 * y, y)), 6)
    0.1
    """
    red = _batch_reduction(reduction)
    out = _metrics.rel_l2(pred, target, spatial_dims=spatial_dims, reduction=red, eps=eps)
    return out.sum() if reduction == "sum" else out


def grid_gradient(
    u: torch.Tensor,
    *,
    spatial_dims: int = 2,
    lengths: float | Sequence[float] = 1.0,
    periodic: bool | Sequence[bool] = False,
    cell_centred: bool = True,
) -> list[torch.Tensor]:
    """Gradient of ``u`` along its last ``spatial_dims`` axes on a domain of ``lengths``.

    :func:`pdesurrogates.uq.metrics.grid_gradient` with spacing ``h = L / n``
    (cell-centred or periodic samples) or ``h = L / (n - 1)`` with
    ``cell_centred=False`` (samples including both end points).
    """
    spacing, per = _spacing(u.shape, spatial_dims, lengths, periodic, cell_centred)
    return _metrics.grid_gradient(u, spatial_dims=spatial_dims, spacing=spacing, periodic=per)


def rel_h1(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    spatial_dims: int = 2,
    lengths: float | Sequence[float] = 1.0,
    periodic: bool | Sequence[bool] = False,
    reduction: str = "mean",
    eps: float = 1e-12,
) -> torch.Tensor:
    """Relative H1 error per sample: :func:`pdesurrogates.uq.metrics.rel_h1`.

    Parameters
    ----------
    pred, target : Tensor, shape (batch, [channels,] n_1, ..., n_d)
    spatial_dims : int
        Number of trailing spatial axes ``d``.
    lengths, periodic
        Domain length (spacing ``L / n``) and periodicity per spatial axis.
    reduction : {"mean", "sum", "none"}
    eps : float
        Added to the denominator.

    Examples
    --------
    >>> import torch
    >>> y = torch.rand(2, 16, 16)
    >>> float(rel_h1(y, y))
    0.0
    """
    red = _batch_reduction(reduction)
    spacing, per = _spacing(target.shape, spatial_dims, lengths, periodic)
    out = _metrics.rel_h1(
        pred,
        target,
        spatial_dims=spatial_dims,
        spacing=spacing,
        periodic=per,
        reduction=red,
        eps=eps,
    )
    return out.sum() if reduction == "sum" else out


class RelL2Loss(torch.nn.Module):
    """Module form of :func:`rel_l2` (batch mean)."""

    def __init__(self, *, spatial_dims: int = 2):
        super().__init__()
        self.spatial_dims = spatial_dims

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return rel_l2(pred, target, spatial_dims=self.spatial_dims)


class RelH1Loss(torch.nn.Module):
    """Module form of :func:`rel_h1` (batch mean)."""

    def __init__(self, *, spatial_dims: int = 2, lengths=1.0, periodic=False):
        super().__init__()
        self.spatial_dims = spatial_dims
        self.lengths = lengths
        self.periodic = periodic

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return rel_h1(
            pred,
            target,
            spatial_dims=self.spatial_dims,
            lengths=self.lengths,
            periodic=self.periodic,
        )


def _mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if pred.shape != target.shape:
        raise ValueError(
            f"mse: prediction shape {tuple(pred.shape)} differs from target shape "
            f"{tuple(target.shape)}"
        )
    return torch.mean((pred - target) ** 2)


_LOSSES = {"rel_l2": rel_l2, "rel_h1": rel_h1, "mse": _mse}


def get_loss(loss: str | Callable) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Resolve a loss name (``"rel_l2"``, ``"rel_h1"``, ``"mse"``) or pass a callable through."""
    if callable(loss):
        return loss
    if loss not in _LOSSES:
        raise ValueError(f"loss must be one of {sorted(_LOSSES)} or a callable, got {loss!r}")
    return _LOSSES[loss]
