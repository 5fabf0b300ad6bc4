"""The discrete grid behind relative L2 and H1: spatial axes, spacing, quadrature, gradient.

The convention (stated once, used by :func:`rel_l2`, :func:`rel_h1` and the training
losses):

* **Spatial axes** are the last ``spatial_dims`` axes of ``y``. Default: the number of
  ``coords`` arrays or of ``spacing`` values when those are sequences, else every axis
  after the sample axis 0 except a channel axis of length 1 right after it (the
  channel-first ``(N, 1, X, Y)`` of one field has the spatial axes ``X, Y``). Axes
  between the sample axis and the spatial axes (channels, components, time) are summed
  in the norm: one value per sample for the whole field.
  A 1-D array is a single 1-D field (no sample axis).
* **Grid**: per spatial axis either 1-D coordinates (strictly increasing) or a uniform
  spacing ``h``. Default ``h = 1/n`` for ``n`` points: the unit interval cut into ``n``
  cells, one sample per cell (the cell-centred / periodic grid of neural-operator data).
* **Quadrature**: every point carries the width of its cell. On a uniform grid all
  weights are ``h`` (the midpoint rule for cell-centred samples, the trapezoid rule of a
  periodic grid), so the weights cancel in a relative error and relative L2 is the plain
  Euclidean ratio. With non-uniform ``coords`` the weight of point ``i`` is
  ``(x[i+1] - x[i-1]) / 2``, and a full gap at the two ends.
* **Derivatives**: second-order finite differences in physical units: central inside
  (the non-uniform three-point formula with ``coords``), second-order one-sided at the
  ends of non-periodic axes (``numpy.gradient(..., edge_order=2)``), central with
  wrap-around on periodic axes. At least 3 points per spatial axis.
* ``||v||_{H1}^2 = sum_i w_i (v_i^2 + |grad v|_i^2)``, summed over components; the
  relative H1 error is ``||pred - y||_{H1} / ||y||_{H1}`` per sample. For smooth fields
  sampled at cell centres it converges at second order to the continuous ratio.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pdesurrogates.uq._backend import as_tensor, check_finite

__all__ = ["Grid", "field_norm", "grid_gradient", "make_grid"]


@dataclass
class Grid:
    """Spatial axes of an array and, per axis, its spacing and quadrature weights."""

    axes: tuple[int, ...]
    has_sample_axis: bool
    steps: list[Any]  # float h, or the coordinate tensor
    weights: list[torch.Tensor]
    periodic: list[bool]

    @property
    def norm_axes(self) -> tuple[int, ...]:
        ndim = self.axes[-1] + 1
        return tuple(range(1 if self.has_sample_axis else 0, ndim))


def _n_spatial(shape: Sequence[int], spatial_dims: Any, spacing: Any, coords: Any) -> int:
    ndim = len(shape)
    given = None
    if coords is not None:
        given = len(coords)
    elif spacing is not None and np.ndim(spacing) == 1:
        given = len(spacing)
    if spatial_dims is not None:
        if isinstance(spatial_dims, bool) or not isinstance(spatial_dims, int | np.integer):
            raise ValueError(f"spatial_dims must be an integer >= 1, got {spatial_dims!r}")
        if spatial_dims < 1:
            raise ValueError(f"spatial_dims must be an integer >= 1, got {spatial_dims!r}")
        if given is not None and given != spatial_dims:
            what = "coords" if coords is not None else "spacing"
            raise ValueError(
                f"spatial_dims={spatial_dims} but {what} has {given} entries; give one per "
                "spatial axis"
            )
        return int(spatial_dims)
    if given is not None:
        return given
    if ndim >= 3 and shape[1] == 1:  # channel-first (N, 1, *grid): one channel
        return ndim - 2
    return max(ndim - 1, 1)


def _periodic_list(periodic: Any, n: int) -> list[bool]:
    if isinstance(periodic, bool | np.bool_):
        return [bool(periodic)] * n
    out = [bool(p) for p in periodic]
    if len(out) != n:
        raise ValueError(f"periodic needs one flag per spatial axis ({n}), got {len(out)}")
    return out


def _spacing_list(spacing: Any, shape: Sequence[int]) -> list[float]:
    if spacing is None:
        return [1.0 / max(n, 1) for n in shape]
    vals = [float(spacing)] * len(shape) if np.ndim(spacing) == 0 else [float(s) for s in spacing]
    if any(not (s > 0 and math.isfinite(s)) for s in vals):
        raise ValueError(f"spacing must be positive and finite, got {vals}")
    return vals


def _coord_axis(c: Any, k: int, n: int, periodic: bool, like: torch.Tensor):
    """(step for torch.gradient, quadrature weights) of one axis from its coordinates."""
    ct = as_tensor(c, f"coords[{k}]", like=like).reshape(-1).to(like.dtype)
    check_finite(ct, f"coords[{k}]")
    if ct.numel() != n:
        raise ValueError(f"coords[{k}] has {ct.numel()} points but spatial axis {k} has {n}")
    gaps = ct[1:] - ct[:-1]
    if n > 1 and bool((gaps <= 0).any()):
        raise ValueError(f"coords[{k}] must be strictly increasing")
    if n == 1:
        return 1.0, torch.ones(1, dtype=like.dtype, device=like.device)
    if periodic:
        h = float(gaps.mean())
        if float((gaps - h).abs().max()) > 1e-6 * h:
            raise ValueError(f"periodic axis {k} needs uniformly spaced coords[{k}]")
        return h, torch.full((n,), h, dtype=like.dtype, device=like.device)
    w = torch.empty_like(ct)
    w[0], w[-1] = gaps[0], gaps[-1]
    if n > 2:
        w[1:-1] = (gaps[1:] + gaps[:-1]) / 2
    return ct, w


def make_grid(
    shape: Sequence[int],
    *,
    spatial_dims: int | None = None,
    spacing: float | Sequence[float] | None = None,
    coords: Sequence[Any] | None = None,
    periodic: bool | Sequence[bool] = False,
    like: torch.Tensor,
) -> Grid:
    """Resolve the spatial axes, steps and weights of arrays of ``shape`` (see module doc)."""
    ndim = len(shape)
    if coords is not None and spacing is not None:
        raise ValueError("give spacing or coords, not both")
    n_sp = _n_spatial(shape, spatial_dims, spacing, coords)
    single = ndim == 1 and n_sp == 1
    if not single and n_sp > ndim - 1:
        raise ValueError(
            f"expected arrays (N, ..., {n_sp} spatial axes) with the sample axis first; got "
            f"shape {tuple(shape)} (set spatial_dims to the number of grid axes)"
        )
    axes = tuple(range(ndim - n_sp, ndim))
    per = _periodic_list(periodic, n_sp)
    if coords is None:
        hs = _spacing_list(spacing, [shape[a] for a in axes])
        weights = [
            torch.full((shape[a],), h, dtype=like.dtype, device=like.device)
            for a, h in zip(axes, hs, strict=True)
        ]
        return Grid(axes, not single, list(hs), weights, per)
    steps, weights = [], []
    for k, (a, c) in enumerate(zip(axes, coords, strict=True)):
        s, w = _coord_axis(c, k, shape[a], per[k], like)
        steps.append(s)
        weights.append(w)
    return Grid(axes, not single, steps, weights, per)


def _derivatives(u: torch.Tensor, grid: Grid) -> list[torch.Tensor]:
    out = []
    for a, h, per in zip(grid.axes, grid.steps, grid.periodic, strict=True):
        n = u.shape[a]
        if n < 3:
            raise ValueError(
                f"need at least 3 points along spatial axis {a} for the second-order "
                f"derivative, got {n} (if axis {a} is a channel axis, lower spatial_dims)"
            )
        if per:
            out.append((torch.roll(u, -1, dims=a) - torch.roll(u, 1, dims=a)) / (2 * h))
        else:
            sp = (h,) if isinstance(h, torch.Tensor) else h
            out.append(torch.gradient(u, spacing=sp, dim=a, edge_order=2)[0])
    return out


def _sqrt_weights(grid: Grid, ndim: int) -> torch.Tensor | float:
    w: torch.Tensor | float = 1.0
    for a, wa in zip(grid.axes, grid.weights, strict=True):
        shp = [1] * ndim
        shp[a] = -1
        w = w * wa.sqrt().reshape(shp)
    return w


def field_norm(v: torch.Tensor, grid: Grid, *, h1: bool) -> torch.Tensor:
    """Discrete L2 (``h1=False``) or H1 norm of every field: shape ``(N,)`` or ``()``."""
    sw = _sqrt_weights(grid, v.ndim)
    dims = grid.norm_axes
    terms = [v] + (_derivatives(v, grid) if h1 else [])
    norms = [torch.linalg.vector_norm(t * sw, dim=dims) for t in terms]
    if len(norms) == 1:
        return norms[0]
    return torch.linalg.vector_norm(torch.stack(norms, 0), dim=0)


def grid_gradient(
    u: Any,
    *,
    spatial_dims: int | None = None,
    spacing: float | Sequence[float] | None = None,
    coords: Sequence[Any] | None = None,
    periodic: bool | Sequence[bool] = False,
) -> list[torch.Tensor]:
    """Second-order finite-difference gradient of ``u`` along its spatial axes.

    The derivative used by :func:`rel_h1` (see :mod:`pdesurrogates.uq.metrics` for the
    grid convention): central inside, second-order one-sided at non-periodic ends, wrapped
    on periodic axes; in physical units given by ``spacing`` (default ``1/n``) or
    ``coords``.

    Parameters
    ----------
    u : array or Tensor, shape ``(N, ..., n_1, ..., n_d)``
    spatial_dims, spacing, coords, periodic
        As in :func:`rel_h1`.

    Returns
    -------
    list of Tensor
        ``d`` tensors shaped like ``u``: the partial derivatives (tensors also for numpy
        input).

    Examples
    --------
    >>> import numpy as np
    >>> x = (np.arange(8) + 0.5) / 8
    >>> (g,) = grid_gradient(3 * x[None], spatial_dims=1)
    >>> [round(v, 12) for v in g[0].tolist()] == [3.0] * 8
    True
    """
    t = as_tensor(u, "u")
    grid = make_grid(
        t.shape,
        spatial_dims=spatial_dims,
        spacing=spacing,
        coords=coords,
        periodic=periodic,
        like=t,
    )
    return _derivatives(t, grid)
