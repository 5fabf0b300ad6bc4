"""Relative L2 and H1 losses for fields on regular grids (any number of spatial dims).

Unlike ``neuralop.losses.LpLoss`` / ``H1Loss`` (which default to ``d=1`` and sum over the
batch), these take the number of spatial dimensions explicitly (default 2), reduce over
*all* spatial axes of every sample and average over the batch. The H1 norm uses the
physical grid spacing, so ``||u||_{H1}^2 = ∫ u² + |∇u|² dx`` is approximated on the
domain ``[0, L_1] x ... x [0, L_d]`` (unit square by default).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = ["RelH1Loss", "RelL2Loss", "get_loss", "grid_gradient", "rel_h1", "rel_l2"]


def _check(pred: torch.Tensor, target: torch.Tensor, spatial_dims: int, name: str) -> None:
    if not (torch.is_tensor(pred) and torch.is_tensor(target)):
        raise ValueError(f"{name}: pred and target must be tensors")
    if pred.shape != target.shape:
        raise ValueError(
            f"{name}: prediction shape {tuple(pred.shape)} differs from target shape "
            f"{tuple(target.shape)}; check the model's out_channels and output layout"
        )
    if not isinstance(spatial_dims, int) or spatial_dims < 1:
        raise ValueError(f"{name}: spatial_dims must be an integer >= 1, got {spatial_dims!r}")
    if pred.dim() < spatial_dims + 1:
        raise ValueError(
            f"{name}: expected (batch, ..., {spatial_dims} spatial axes); got shape "
            f"{tuple(pred.shape)}"
        )


def rel_l2(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    spatial_dims: int = 2,
    reduction: str = "mean",
    eps: float = 1e-12,
) -> torch.Tensor:
    """Relative L2 error ``||pred - target|| / ||target||`` per sample.

    Parameters
    ----------
    pred, target : Tensor, shape (batch, ...)
        The norm is taken over every axis after the batch axis (channels included), so
        the grid spacing cancels.
    spatial_dims : int
        Number of trailing spatial axes (checked against the rank only).
    reduction : {"mean", "sum", "none"}
        Reduction over the batch.
    eps : float
        Added to the denominator.

    Returns
    -------
    Tensor
        Scalar, or shape (batch,) with ``reduction="none"``.

    Examples
    --------
    >>> import torch
    >>> y = torch.ones(2, 8, 8)
    >>> round(float(rel_l2(1.1 * y, y)), 6)
    0.1
    """
    _check(pred, target, spatial_dims, "rel_l2")
    diff = (pred - target).flatten(1).norm(dim=1)
    ref = target.flatten(1).norm(dim=1)
    return _reduce(diff / (ref + eps), reduction)


def grid_gradient(
    u: torch.Tensor,
    *,
    spatial_dims: int = 2,
    lengths: float | Sequence[float] = 1.0,
    periodic: bool | Sequence[bool] = False,
    cell_centred: bool = True,
) -> list[torch.Tensor]:
    """Second-order finite-difference gradient of ``u`` along its last ``spatial_dims`` axes.

    Central differences inside; at non-periodic boundaries the one-sided second-order
    stencils of :func:`numpy.gradient` with ``edge_order=2``; periodic axes wrap around.

    Parameters
    ----------
    u : Tensor, shape (..., n_1, ..., n_d)
    lengths : float or sequence
        Physical length of the domain along each axis.
    periodic : bool or sequence of bool
        Whether each axis is periodic.
    cell_centred : bool
        Spacing ``h = L / n`` (cell-centred or periodic samples) when true, else
        ``h = L / (n - 1)`` (samples including both end points).

    Returns
    -------
    list of Tensor
        ``d`` tensors shaped like ``u``: the partial derivatives in physical units.
    """
    d = spatial_dims
    lengths = [float(lengths)] * d if isinstance(lengths, (int, float)) else list(lengths)
    periodic = [bool(periodic)] * d if isinstance(periodic, bool) else list(periodic)
    if len(lengths) != d or len(periodic) != d:
        raise ValueError(f"grid_gradient: lengths and periodic need {d} entries (one per axis)")
    grads = []
    for i in range(d):
        axis = u.dim() - d + i
        n = u.shape[axis]
        if n < 3:
            raise ValueError(f"grid_gradient: need at least 3 points along axis {axis}, got {n}")
        h = lengths[i] / (n if (cell_centred or periodic[i]) else n - 1)
        if periodic[i]:
            g = (torch.roll(u, -1, dims=axis) - torch.roll(u, 1, dims=axis)) / (2 * h)
        else:
            (g,) = torch.gradient(u, spacing=h, dim=axis, edge_order=2)
        grads.append(g)
    return grads


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
    """Relative H1 error ``||e||_{H1} / ||target||_{H1}`` with ``e = pred - target``.

    ``||v||_{H1}^2 = Σ_grid (v² + |∇v|²)`` with gradients in physical units (see
    :func:`grid_gradient`); the quadrature weight cancels in the ratio.

    Parameters
    ----------
    pred, target : Tensor, shape (batch, [channels,] n_1, ..., n_d)
    spatial_dims : int
        Number of trailing spatial axes ``d``.
    lengths, periodic
        Domain size and periodicity per axis, as in :func:`grid_gradient`.
    reduction : {"mean", "sum", "none"}

    Examples
    --------
    >>> import torch
    >>> y = torch.rand(2, 16, 16)
    >>> float(rel_h1(y, y))
    0.0
    """
    _check(pred, target, spatial_dims, "rel_h1")
    e = pred - target
    ge = grid_gradient(e, spatial_dims=spatial_dims, lengths=lengths, periodic=periodic)
    gt = grid_gradient(target, spatial_dims=spatial_dims, lengths=lengths, periodic=periodic)
    num = e.flatten(1).square().sum(1) + sum(g.flatten(1).square().sum(1) for g in ge)
    den = target.flatten(1).square().sum(1) + sum(g.flatten(1).square().sum(1) for g in gt)
    return _reduce(num.sqrt() / (den.sqrt() + eps), reduction)


def _reduce(x: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return x.mean()
    if reduction == "sum":
        return x.sum()
    if reduction == "none":
        return x
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


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
