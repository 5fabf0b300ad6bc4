"""Accuracy of the predictive mean: relative L2 and H1, RMSE, MAE, normalised RMSE."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pdesurrogates.uq._backend import to_output
from pdesurrogates.uq.metrics._common import (
    check_reduction,
    point,
    reduce_fields,
    reduce_points,
    target,
)
from pdesurrogates.uq.metrics._grid import field_norm, make_grid

__all__ = ["mae", "nrmse", "rel_h1", "rel_l2", "rmse"]


def _relative(pred, y, *, h1, spatial_dims, spacing, coords, periodic, reduction, eps):
    check_reduction(reduction)
    if not (eps >= 0):
        raise ValueError(f"eps must be >= 0, got {eps!r}")
    m, tout = point(pred)
    yt = target(y, tuple(m.shape), m)
    grid = make_grid(
        yt.shape,
        spatial_dims=spatial_dims,
        spacing=spacing,
        coords=coords,
        periodic=periodic,
        like=yt,
    )
    num = field_norm(m - yt, grid, h1=h1)
    den = field_norm(yt, grid, h1=h1)
    if eps == 0 and bool((den == 0).any()):
        raise ValueError(
            "y has a field that is identically zero; its relative error is undefined "
            "(pass eps > 0 to add a floor to the denominator)"
        )
    return to_output(reduce_fields(num / (den + eps), reduction), not tout)


def rel_l2(
    pred: Any,
    y: Any,
    *,
    spatial_dims: int | None = None,
    spacing: float | Sequence[float] | None = None,
    coords: Sequence[Any] | None = None,
    reduction: str = "mean",
    eps: float = 0.0,
):
    r"""Relative L2 error :math:`\|\hat y - y\|_{L^2} / \|y\|_{L^2}` per sample.

    The norm is taken over every axis after the sample axis 0 (channels included), with
    the quadrature of :mod:`pdesurrogates.uq.metrics` (each point weighs its cell width).
    On a uniform grid the weights cancel, so this is the plain Euclidean ratio
    ``||pred - y|| / ||y||`` (neuraloperator's ``LpLoss``, PDEBench's nRMSE); ``coords``
    only matter for non-uniform grids. Works on numpy arrays and on torch tensors with
    autograd (the training losses are this function).

    Parameters
    ----------
    pred : array, Tensor or Prediction
        Prediction (its mean is used), shape ``(N, ...)``.
    y : array or Tensor
        Truth, same shape. A 1-D array is a single field.
    spatial_dims : int, optional
        Number of trailing spatial (grid) axes; default from ``coords``/``spacing``, else
        every axis after axis 0 but a channel axis of length 1 at axis 1.
    spacing : float or sequence of float, optional
        Uniform grid spacing per spatial axis (cancels on uniform grids).
    coords : sequence of 1-D arrays, optional
        Coordinates per spatial axis (instead of ``spacing``).
    reduction : {"none", "sample", "mean"}
        ``"none"`` and ``"sample"``: one value per sample, shape ``(N,)``; ``"mean"``: the
        mean over samples (not pooled).
    eps : float
        Added to the norm of ``y``; with the default 0 an identically zero ``y`` raises.

    Examples
    --------
    >>> import numpy as np
    >>> float(rel_l2(np.array([[1.0, 1.0]]), np.array([[1.0, 2.0]])))
    0.4472135954999579
    """
    return _relative(
        pred,
        y,
        h1=False,
        spatial_dims=spatial_dims,
        spacing=spacing,
        coords=coords,
        periodic=False,
        reduction=reduction,
        eps=eps,
    )


def rel_h1(
    pred: Any,
    y: Any,
    *,
    spatial_dims: int | None = None,
    spacing: float | Sequence[float] | None = None,
    coords: Sequence[Any] | None = None,
    periodic: bool | Sequence[bool] = False,
    reduction: str = "mean",
    eps: float = 0.0,
):
    r"""Relative H1 error :math:`\|\hat y - y\|_{H^1} / \|y\|_{H^1}` per sample, grid-aware.

    :math:`\|u\|_{H^1}^2 = \int u^2 + |\nabla u|^2\,dx`, discretised as stated in
    :mod:`pdesurrogates.uq.metrics`: each point weighs its cell width (uniform grids:
    ``h``), derivatives by second-order finite differences in physical units (central
    inside, second-order one-sided at non-periodic ends, wrapped on periodic axes). The
    default grid is the unit interval per axis with ``n`` cells (``h = 1/n``). For smooth
    fields on cell-centred grids the value converges at second order to the continuous
    ratio. Works on numpy arrays and on torch tensors with autograd.

    Parameters
    ----------
    pred, y : array, Tensor or Prediction; array or Tensor
        Shape ``(N, [components...,] n_1, ..., n_d)``, at least 3 points per spatial axis.
    spatial_dims : int, optional
        Number ``d`` of trailing spatial axes; default from ``coords``/``spacing``, else
        every axis after axis 0 but a channel axis of length 1 at axis 1 (``(N, 1, X, Y)``
        has ``d = 2``). Axes between 0 and the spatial ones are components.
    spacing : float or sequence of float, optional
        Uniform spacing per spatial axis in physical units (default ``1/n``).
    coords : sequence of 1-D arrays, optional
        Coordinates per spatial axis, for non-uniform grids (instead of ``spacing``).
    periodic : bool or sequence of bool
        Periodic axes (the last point is not a copy of the first).
    reduction : {"none", "sample", "mean"}
        As in :func:`rel_l2`.
    eps : float
        Added to the norm of ``y``.

    Examples
    --------
    >>> import numpy as np
    >>> x = (np.arange(64) + 0.5) / 64
    >>> u = np.sin(np.pi * x)[None]
    >>> round(float(rel_h1(1.1 * u, u)), 6)
    0.1
    """
    return _relative(
        pred,
        y,
        h1=True,
        spatial_dims=spatial_dims,
        spacing=spacing,
        coords=coords,
        periodic=periodic,
        reduction=reduction,
        eps=eps,
    )


def rmse(pred: Any, y: Any, *, reduction: str = "mean"):
    """Root mean squared error.

    ``"none"`` gives the absolute error per point, ``"sample"`` the RMSE of each field and
    ``"mean"`` the RMSE pooled over all points (sqrt of the pooled mean squared error).

    Examples
    --------
    >>> import numpy as np
    >>> float(rmse(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]])))
    3.5355339059327378
    """
    check_reduction(reduction)
    m, tout = point(pred)
    yt = target(y, tuple(m.shape), m)
    return to_output(reduce_points((m - yt).abs(), reduction, sq=True), not tout)


def mae(pred: Any, y: Any, *, reduction: str = "mean"):
    """Mean absolute error (``"none"``: absolute error per point)."""
    check_reduction(reduction)
    m, tout = point(pred)
    yt = target(y, tuple(m.shape), m)
    return to_output(reduce_points((m - yt).abs(), reduction), not tout)


def nrmse(pred: Any, y: Any, *, norm: str = "std", reduction: str = "mean"):
    r"""Normalised RMSE per sample: RMSE over the field divided by a scale of the true field.

    ``norm="std"`` divides by the standard deviation of ``y`` over the field (The Well's
    VRMSE, :math:`\sqrt{\mathrm{MSE}/\mathrm{Var}(y)}`), ``"rms"`` by its root mean square
    (PDEBench's nRMSE, equal to :func:`rel_l2` on a uniform grid), ``"range"`` by
    ``max(y) - min(y)``. The field is every axis after the sample axis 0 (a 1-D array is a
    single field). ``reduction`` as in :func:`rel_l2`.
    """
    check_reduction(reduction)
    if norm not in ("std", "rms", "range"):
        raise ValueError(f"norm must be 'std', 'rms' or 'range', got {norm!r}")
    m, tout = point(pred)
    yt = target(y, tuple(m.shape), m)
    fd = tuple(range(1, yt.ndim)) if yt.ndim >= 2 else tuple(range(yt.ndim))
    err = (m - yt).square().mean(fd).sqrt()
    if norm == "std":
        scale = yt.std(fd, correction=0)
    elif norm == "rms":
        scale = yt.square().mean(fd).sqrt()
    else:
        scale = yt.amax(fd) - yt.amin(fd)
    if bool((scale == 0).any()):
        raise ValueError(f"y has a constant field, so its {norm} is zero and nrmse is undefined")
    return to_output(reduce_fields(err / scale, reduction), not tout)
