"""MgNO: a multigrid neural operator that is resolution-agnostic *and* resolution-consistent.

Each layer is ``GELU(V(u) + W u)``: ``W`` is a pointwise (1x1) linear map with bias and
``V`` is a learned multi-channel V-cycle. Smoothing is ``u <- u + S(f - A u)`` with learned
3x3 convolutions ``A`` and ``S``, restriction is a stride-2 convolution and prolongation a
stride-2 transposed convolution, all with separate weights per level.

Resolution consistency
----------------------
A V-cycle whose 3x3 kernels act on whatever grid it is given represents a *different*
continuous operator at every resolution: its stencils shrink with the mesh size h. Such a
model trained at 64² and evaluated at 128² loses an order of magnitude of accuracy.

Here the learned levels are tied to **fixed physical grids**: level ``l`` always lives on
the ``base_resolution / 2**l`` grid over the unit square, whatever the input resolution.
An input at ``n = base_resolution * 2**k`` is carried onto the base grid by cell averaging
(the L2 projection onto piecewise constants: ``k`` extra, fixed restriction levels) and the
V-cycle's output is carried back by bilinear interpolation; an input coarser than the base
grid is interpolated up and the result averaged back down. Pointwise maps (lifting, the
1x1 paths, GELU, projection) act at the input resolution and are consistent by
construction. Every layer is therefore a consistent discretisation of one continuous
operator: outputs at 64² and 128² of the same smooth input agree up to interpolation error,
and a model trained at 64² keeps its accuracy zero-shot at 128².
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pdesurrogates.io import register_model
from pdesurrogates.surrogates._limits import MAX_LEVELS, MAX_REPEAT, check_at_most

__all__ = ["MgNO"]

_PADDING_MODES = ("zeros", "circular", "reflect")


def _prolong(conv: nn.ConvTranspose2d, u: torch.Tensor, padding_mode: str) -> torch.Tensor:
    """Stride-2 transposed 4x4 convolution that doubles the grid, honouring ``padding_mode``.

    For ``zeros`` this is ``conv_transpose2d(padding=1)``. For the other modes the input is
    padded by one cell with that mode, transposed-convolved without padding and cropped,
    which equals the zero-padded version when the pad is zeros.
    """
    if padding_mode == "zeros":
        return F.conv_transpose2d(u, conv.weight, None, stride=2, padding=1)
    n1, n2 = u.shape[-2:]
    up = F.pad(u, (1, 1, 1, 1), mode=padding_mode)
    out = F.conv_transpose2d(up, conv.weight, None, stride=2, padding=0)
    return out[..., 3 : 3 + 2 * n1, 3 : 3 + 2 * n2]


def _pad_linear(v: torch.Tensor) -> torch.Tensor:
    """Pad the last two axes by one cell with linear extrapolation (constant if a side has
    a single cell)."""
    if v.shape[-2] >= 2:
        v = torch.cat(
            [2 * v[..., :1, :] - v[..., 1:2, :], v, 2 * v[..., -1:, :] - v[..., -2:-1, :]], -2
        )
    else:
        v = torch.cat([v, v, v], -2)
    if v.shape[-1] >= 2:
        v = torch.cat([2 * v[..., :1] - v[..., 1:2], v, 2 * v[..., -1:] - v[..., -2:-1]], -1)
    else:
        v = torch.cat([v, v, v], -1)
    return v


def _bilinear(v: torch.Tensor, factor: int, periodic: bool) -> torch.Tensor:
    """Bilinear refinement of cell-centred data by ``factor``.

    Periodic data wraps around; otherwise the half cell next to the boundary is linearly
    extrapolated (clamping it to a constant would put an O(1) error in the gradient there,
    which dominates the H1 error of a refined smooth field).
    """
    n1, n2 = v.shape[-2:]
    vp = F.pad(v, (1, 1, 1, 1), mode="circular") if periodic else _pad_linear(v)
    up = F.interpolate(
        vp, size=((n1 + 2) * factor, (n2 + 2) * factor), mode="bilinear", align_corners=False
    )
    return up[..., factor : factor * (n1 + 1), factor : factor * (n2 + 1)]


def _conservative_upsample(v: torch.Tensor, factor: int, periodic: bool = False) -> torch.Tensor:
    """Bilinear interpolation corrected so that each coarse cell keeps its mean.

    Two smooth (bilinear) defect corrections bring the cell means to within round-off of
    ``v`` for smooth data; a last piecewise-constant correction makes the identity exact:
    ``avg_pool2d(_conservative_upsample(v, r), r) == v``, so restriction after
    prolongation is the identity and linear terms commute with the change of grid.
    """
    up = _bilinear(v, factor, periodic)
    for _ in range(2):
        up = up + _bilinear(v - F.avg_pool2d(up, factor), factor, periodic)
    defect = v - F.avg_pool2d(up, factor)
    return up + F.interpolate(defect, scale_factor=factor, mode="nearest")


class _VCycle(nn.Module):
    """One learned multi-channel V-cycle on the fixed base grids (levels 0..L-1)."""

    def __init__(
        self,
        channels: list[int],
        pre_smooth: list[int],
        post_smooth: list[int],
        padding_mode: str,
    ):
        super().__init__()
        self.n_levels = len(channels)
        self.pre_smooth = list(pre_smooth)
        self.post_smooth = list(post_smooth)
        self.padding_mode = padding_mode

        def conv3(cin, cout, stride=1):
            return nn.Conv2d(
                cin, cout, 3, stride=stride, padding=1, bias=False, padding_mode=padding_mode
            )

        self.A = nn.ModuleList()  # A_l: u -> f   (per level)
        self.S_pre = nn.ModuleList()  # S_{l,i}: f -> u (per level and step)
        self.S_post = nn.ModuleList()
        self.R = nn.ModuleList()  # restriction of f: level l-1 -> l
        self.Pi = nn.ModuleList()  # restriction of u: level l-1 -> l
        self.P = nn.ModuleList()  # prolongation of u: level l -> l-1
        for lev, c in enumerate(channels):
            needs_a = (
                (lev > 0 and pre_smooth[lev] > 0) or pre_smooth[lev] > 1 or (post_smooth[lev] > 0)
            )
            self.A.append(conv3(c, c) if needs_a else nn.Identity())
            self.S_pre.append(nn.ModuleList(conv3(c, c) for _ in range(pre_smooth[lev])))
            self.S_post.append(nn.ModuleList(conv3(c, c) for _ in range(post_smooth[lev])))
            if lev > 0:
                cprev = channels[lev - 1]
                self.R.append(conv3(cprev, c, stride=2))
                self.Pi.append(conv3(cprev, c, stride=2))
                self.P.append(nn.ConvTranspose2d(c, cprev, 4, stride=2, padding=1, bias=False))

    def _smooth(self, lev, u, f, smoothers, first_from_zero):
        for i, s in enumerate(smoothers):
            if first_from_zero and i == 0 and u is None:
                u = s(f)  # u = 0 + S(f - A 0)
            else:
                u = u + s(f - self.A[lev](u))
        return u

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        us: list[torch.Tensor] = []
        fs: list[torch.Tensor] = [f]
        u = self._smooth(0, None, f, self.S_pre[0], True)
        if u is None:
            u = torch.zeros_like(f)
        us.append(u)
        for lev in range(1, self.n_levels):
            f = self.R[lev - 1](f)
            u = self.Pi[lev - 1](u)
            u = self._smooth(lev, u, f, self.S_pre[lev], False)
            us.append(u)
            fs.append(f)
        for lev in range(self.n_levels - 2, -1, -1):
            u = us[lev] + _prolong(self.P[lev], u, self.padding_mode)
            u = self._smooth(lev, u, fs[lev], self.S_post[lev], False)
        return u


@register_model
class MgNO(nn.Module):
    """Multigrid neural operator for 2-D fields on the unit square (resolution-consistent).

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input function ``a`` and of the output ``u``.
    channels : int or sequence of int
        Channels of the V-cycle per level (finest first); an int uses the same width on
        every level.
    levels : int
        Number of learned multigrid levels, >= 1. Level ``l`` lives on the
        ``base_resolution / 2**l`` grid.
    layers : int
        Number of ``GELU(V-cycle + 1x1)`` layers.
    base_resolution : int
        Grid (points per side) of the finest learned level, normally the training
        resolution. Must be divisible by ``2**(levels - 1)``.
    pre_smooth, post_smooth : int or sequence of int
        Smoothing steps per level on the way down and up. Defaults follow the published
        Darcy set-up: one pre-smoothing step per level, two on the coarsest, none post.
    padding_mode : {"zeros", "circular", "reflect"}
        Boundary handling of every convolution: ``zeros`` for Dirichlet-like data,
        ``circular`` for periodic data, ``reflect`` for Neumann-like data.
    lifting_channels : int or None
        Width of the pointwise lifting (two 1x1 convs with GELU). ``None``: one linear 1x1
        conv from ``in_channels`` to ``channels[0]``.
    projection_channels : int or None
        Width of the pointwise projection MLP. ``None``: one linear 1x1 conv.
    grid_mode : {"physical", "pixel"}
        ``physical`` (default) ties the learned levels to fixed physical grids, which makes
        the model resolution-consistent. ``pixel`` runs the V-cycle directly on the input
        grid, as published: its kernels act in pixels, so the operator changes with the
        resolution (kept for comparison; any size divisible by ``2**(levels-1)`` works).

    Notes
    -----
    Input shape ``(batch, in_channels, n, n)`` (``(batch, n, n)`` is accepted when
    ``in_channels == 1``; the output then has no channel axis either). Valid ``n`` are
    ``base_resolution * 2**k`` for integer ``k >= -(levels - 1)`` ... in practice any power-of-two
    multiple or fraction of the base grid down to the coarsest learned grid; other sizes
    raise a ``ValueError`` listing the sizes that work. The domain is the unit square with
    cell-centred samples, so grids at different resolutions are nested by 2x2 averaging.

    Examples
    --------
    >>> import torch
    >>> from pdesurrogates.surrogates import MgNO
    >>> model = MgNO(channels=8, levels=3, layers=2, base_resolution=16)
    >>> model(torch.randn(2, 1, 16, 16)).shape
    torch.Size([2, 1, 16, 16])
    >>> model(torch.randn(2, 1, 32, 32)).shape   # same operator on a finer grid
    torch.Size([2, 1, 32, 32])
    """

    def __init__(
        self,
        *,
        in_channels: int = 1,
        out_channels: int = 1,
        channels: int | Sequence[int] = 24,
        levels: int = 5,
        layers: int = 5,
        base_resolution: int = 64,
        pre_smooth: int | Sequence[int] | None = None,
        post_smooth: int | Sequence[int] = 0,
        padding_mode: str = "zeros",
        lifting_channels: int | None = None,
        projection_channels: int | None = 64,
        grid_mode: str = "physical",
    ):
        super().__init__()
        chans, pre, post = self._check_args(
            in_channels=in_channels,
            out_channels=out_channels,
            channels=channels,
            levels=levels,
            layers=layers,
            base_resolution=base_resolution,
            pre_smooth=pre_smooth,
            post_smooth=post_smooth,
            padding_mode=padding_mode,
            lifting_channels=lifting_channels,
            projection_channels=projection_channels,
            grid_mode=grid_mode,
        )
        self._config = {
            "in_channels": in_channels,
            "out_channels": out_channels,
            "channels": chans,
            "levels": levels,
            "layers": layers,
            "base_resolution": base_resolution,
            "pre_smooth": pre,
            "post_smooth": post,
            "padding_mode": padding_mode,
            "lifting_channels": lifting_channels,
            "projection_channels": projection_channels,
            "grid_mode": grid_mode,
        }
        self.grid_mode = grid_mode
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.levels = levels
        self.base_resolution = base_resolution
        c0 = chans[0]
        if lifting_channels is None:
            self.lifting = nn.Conv2d(in_channels, c0, 1)
        else:
            self.lifting = nn.Sequential(
                nn.Conv2d(in_channels, lifting_channels, 1),
                nn.GELU(),
                nn.Conv2d(lifting_channels, c0, 1),
            )
        self.cycles = nn.ModuleList(_VCycle(chans, pre, post, padding_mode) for _ in range(layers))
        self.pointwise = nn.ModuleList(nn.Conv2d(c0, c0, 1) for _ in range(layers))
        if projection_channels is None:
            self.projection = nn.Conv2d(c0, out_channels, 1)
        else:
            self.projection = nn.Sequential(
                nn.Conv2d(c0, projection_channels, 1),
                nn.GELU(),
                nn.Conv2d(projection_channels, out_channels, 1),
            )
        # channels-last (NHWC) weights and activations: about 1.35x faster training steps
        # with oneDNN on the CPU; the result is the same operator to round-off.
        self.to(memory_format=torch.channels_last)

    @classmethod
    def _check_args(
        cls,
        *,
        in_channels,
        out_channels,
        channels,
        levels,
        layers,
        base_resolution,
        pre_smooth,
        post_smooth,
        padding_mode,
        lifting_channels,
        projection_channels,
        grid_mode,
    ):
        """Validate the hyper-parameters; returns per-level channels, pre and post smoothing."""
        for name, val, lo in (
            ("in_channels", in_channels, 1),
            ("out_channels", out_channels, 1),
            ("levels", levels, 1),
            ("layers", layers, 1),
            ("base_resolution", base_resolution, 1),
        ):
            if not isinstance(val, int) or isinstance(val, bool) or val < lo:
                raise ValueError(f"MgNO: {name} must be an integer >= {lo}, got {val!r}")
        check_at_most("MgNO", "levels", levels, MAX_LEVELS)
        check_at_most("MgNO", "layers", layers, MAX_REPEAT)
        if base_resolution % (2 ** (levels - 1)) != 0:
            raise ValueError(
                f"MgNO: base_resolution={base_resolution} is not divisible by "
                f"2**(levels-1)={2 ** (levels - 1)}; use fewer levels or a base_resolution "
                f"that is a multiple of {2 ** (levels - 1)}"
            )
        if grid_mode not in ("physical", "pixel"):
            raise ValueError(f"MgNO: grid_mode must be 'physical' or 'pixel', got {grid_mode!r}")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(
                f"MgNO: padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}"
            )
        chans = cls._per_level("channels", channels, levels, lo=1)
        if pre_smooth is None:
            pre = [1] * (levels - 1) + [2]
        else:
            pre = cls._per_level("pre_smooth", pre_smooth, levels, lo=0)
        post = cls._per_level("post_smooth", post_smooth, levels, lo=0)
        for name, vals in (("pre_smooth", pre), ("post_smooth", post)):
            check_at_most("MgNO", f"{name} (per level)", max(vals), MAX_REPEAT)
        if pre[0] == 0 and post[0] == 0 and levels == 1:
            raise ValueError("MgNO: a single level needs at least one smoothing step")
        for name, val in (
            ("lifting_channels", lifting_channels),
            ("projection_channels", projection_channels),
        ):
            if val is not None and (not isinstance(val, int) or isinstance(val, bool) or val < 1):
                raise ValueError(f"MgNO: {name} must be None or an integer >= 1, got {val!r}")
        if base_resolution // 2 ** (levels - 1) < 2 and padding_mode == "reflect":
            raise ValueError(
                "MgNO: with padding_mode='reflect' the coarsest grid needs at least 2 points; "
                "use fewer levels"
            )
        return chans, pre, post

    @staticmethod
    def _per_level(name, value, levels, *, lo):
        if isinstance(value, int) and not isinstance(value, bool):
            vals = [value] * levels
        else:
            try:
                vals = list(value)
            except TypeError:
                raise ValueError(
                    f"MgNO: {name} must be an int or a sequence of {levels} ints, got {value!r}"
                ) from None
        if len(vals) != levels or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= lo for v in vals
        ):
            raise ValueError(
                f"MgNO: {name} must be an int >= {lo} or a sequence of {levels} such ints "
                f"(one per level), got {value!r}"
            )
        return vals

    def get_config(self) -> dict:
        """JSON-serialisable keyword arguments that rebuild this model."""
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self._config.items()}

    # -- resolution handling -------------------------------------------------------------

    def valid_resolutions(self, up_to: int = 1024) -> list[int]:
        """Grid sizes (points per side) this model accepts, up to ``up_to``."""
        coarsest = self.base_resolution // 2 ** (self.levels - 1)
        out, n = [], coarsest
        while n <= up_to:
            out.append(n)
            n *= 2
        return out

    def _scale(self, n: int, axis: str) -> int:
        """log2(n / base_resolution), or a ValueError naming the sizes that work."""
        if self.grid_mode == "pixel":
            m = 2 ** (self.levels - 1)
            if n % m != 0 or n < m:
                raise ValueError(
                    f"MgNO: input size {n} along {axis} is not divisible by 2**(levels-1)={m}; "
                    f"with grid_mode='pixel' and levels={self.levels} the size must be a "
                    f"multiple of {m} (e.g. {m}, {2 * m}, {4 * m}, ...)"
                )
            return 0
        ratio = n / self.base_resolution
        k = round(math.log2(ratio)) if ratio > 0 else 0
        coarsest = self.base_resolution // 2 ** (self.levels - 1)
        if ratio <= 0 or 2.0**k != ratio or n < coarsest:
            sizes = ", ".join(str(s) for s in self.valid_resolutions(max(4 * n, 256)))
            raise ValueError(
                f"MgNO: input size {n} along {axis} is not supported by this model "
                f"(base_resolution={self.base_resolution}, levels={self.levels}); sizes that "
                f"work are power-of-two multiples of the coarsest grid: {sizes}, ... "
                "Resample the input to one of these sizes."
            )
        return k

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """Map input functions ``a`` to output functions.

        Parameters
        ----------
        a : Tensor, shape (batch, in_channels, n_x, n_y) or (batch, n_x, n_y)
            Input function sampled on a cell-centred grid of the unit square. The 3-D form
            is accepted when ``in_channels == 1``.

        Returns
        -------
        Tensor, shape (batch, out_channels, n_x, n_y), or (batch, n_x, n_y) for a 3-D input.
        """
        squeeze = False
        if a.dim() == 3 and self.in_channels == 1:
            a = a.unsqueeze(1)
            squeeze = self.out_channels == 1
        if a.dim() != 4:
            raise ValueError(
                f"MgNO: input must have shape (batch, {self.in_channels}, n_x, n_y)"
                + (" or (batch, n_x, n_y)" if self.in_channels == 1 else "")
                + f"; got shape {tuple(a.shape)}"
            )
        if a.shape[1] != self.in_channels:
            raise ValueError(
                f"MgNO: input has {a.shape[1]} channels (shape {tuple(a.shape)}) but the model "
                f"was built with in_channels={self.in_channels}"
            )
        if not a.is_floating_point():
            raise ValueError(f"MgNO: input must be a floating-point tensor, got {a.dtype}")
        kx = self._scale(a.shape[-2], "x")
        ky = self._scale(a.shape[-1], "y")
        if kx != ky:
            raise ValueError(
                f"MgNO: input grid {tuple(a.shape[-2:])} must be refined equally along x and y "
                f"relative to base_resolution={self.base_resolution}"
            )
        k = kx
        periodic = self._config["padding_mode"] == "circular"

        u = self.lifting(a.contiguous(memory_format=torch.channels_last))
        for cycle, w in zip(self.cycles, self.pointwise, strict=True):
            if k > 0:  # fixed restriction levels: cell averages onto the base grid
                f = F.avg_pool2d(u, 2**k)
                v = _conservative_upsample(cycle(f), 2**k, periodic)
            elif k < 0:  # coarser than the base grid: interpolate up, average back
                f = _bilinear(u, 2 ** (-k), periodic)
                v = F.avg_pool2d(cycle(f), 2 ** (-k))
            else:
                v = cycle(u)
            u = F.gelu(v + w(u))
        out = self.projection(u).contiguous()
        return out.squeeze(1) if squeeze else out
