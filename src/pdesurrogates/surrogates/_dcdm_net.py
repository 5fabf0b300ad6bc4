"""The search-direction network of the deep conjugate-direction method (DCDM).

:class:`ConjugateDirectionNet` maps a normalised residual ``r / ||r||`` on a 2D or 3D grid
to a search direction ``d ~ c * A^{-1} r`` (any positive scale ``c``: the DCDM step size
absorbs it). It is built as a *learned multigrid V-cycle* with as many levels as the grid
allows, so its action approximates the inverse at every scale and one trained network
serves every grid size:

* on each level, ``smoothing_steps`` learned smoothing steps ``e += S (r - K e)`` with a
  learned smoother kernel ``S`` and a learned stencil ``K`` (initialised to Jacobi and
  to the Laplacian), plus a nonlinear residual-block correction (ReLU convolutions; its
  output layer starts at zero);
* a learned stride-2 restriction and a learned transposed-convolution prolongation
  (initialised to cell-centred full weighting / bilinear interpolation) to and from the
  next coarser level, with the *same* weights on every level;
* recursion until the grid is ``coarse_size`` cells wide, where the smoother is iterated.

All weights are shared across levels, so the number of levels follows the input size and
the parameter count does not. Odd sizes are zero-padded by one cell before coarsening.

Examples
--------
>>> import torch
>>> from pdesurrogates.surrogates import ConjugateDirectionNet
>>> net = ConjugateDirectionNet(dim=2)
>>> net(torch.randn(3, 1, 32, 32)).shape
torch.Size([3, 1, 32, 32])
>>> net(torch.randn(1, 1, 20, 28)).shape   # any size: the level count adapts
torch.Size([1, 1, 20, 28])
"""

from __future__ import annotations

import contextlib
import itertools

import torch
import torch.nn.functional as F
from torch import nn

from pdesurrogates.io import register_model
from pdesurrogates.surrogates._dcdm_coeff import StencilVCycle, _bilinear_kernel
from pdesurrogates.surrogates._dense_multigrid import _laplacian_dense, dense_hierarchy
from pdesurrogates.surrogates._limits import MAX_REPEAT, check_at_most

__all__ = ["ConjugateDirectionNet", "LearnedVCycle"]


@contextlib.contextmanager
def _onednn(enabled: bool):
    """Temporarily switch torch's oneDNN (mkldnn) CPU convolutions on or off.

    Single-channel 3x3 convolutions run 2-10x faster on CPU through torch's native kernels
    than through oneDNN, multi-channel ones the other way round; both compute the same
    convolution (to float32 rounding).
    """
    prev = torch.backends.mkldnn.enabled
    if prev == enabled:
        yield
        return
    torch.backends.mkldnn.enabled = enabled
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = prev


def _shift_conv(x: torch.Tensor, w: torch.Tensor, stride: int, padding: int) -> torch.Tensor:
    """Single-channel cross-correlation as a sum of shifted copies.

    Same result as ``F.conv{2,3}d`` for ``(1, 1, *k)`` kernels; its backward pass is far
    cheaper on CPU than the generic convolution backward for one channel.
    """
    dim = w.dim() - 2
    k = w.shape[2:]
    xp = F.pad(x, [padding] * (2 * dim))
    out_sz = [(xp.shape[2 + a] - k[a]) // stride + 1 for a in range(dim)]
    out = None
    for off in itertools.product(*(range(kk) for kk in k)):
        sl = tuple(
            slice(o, o + stride * (m - 1) + 1, stride) for o, m in zip(off, out_sz, strict=True)
        )
        term = w[(0, 0, *off)] * xp[(..., *sl)]
        out = term if out is None else out + term
    return out


def _shift_conv_transpose(
    x: torch.Tensor, w: torch.Tensor, stride: int, padding: int
) -> torch.Tensor:
    """Single-channel transposed convolution (as ``F.conv_transpose{2,3}d``) by shifts."""
    k = w.shape[2:]
    n_in = x.shape[2:]
    full = [(n - 1) * stride + kk for n, kk in zip(n_in, k, strict=True)]
    out = x.new_zeros((*x.shape[:2], *full))
    for off in itertools.product(*(range(kk) for kk in k)):
        sl = tuple(
            slice(o, o + stride * (n - 1) + 1, stride) for o, n in zip(off, n_in, strict=True)
        )
        out[(..., *sl)] = out[(..., *sl)] + w[(0, 0, *off)] * x
    crop = tuple(slice(padding, f - padding) for f in full)
    return out[(..., *crop)]


def _boundary_sides(boundary, dim: int) -> tuple[str, ...]:
    """Per-side boundary kinds ``(axis0_lo, axis0_hi, axis1_lo, ...)``."""
    if boundary == "dirichlet":
        return ("dirichlet",) * (2 * dim)
    if boundary == "smoke":  # Neumann walls, open (Dirichlet) top = high end of last axis
        return ("neumann",) * (2 * dim - 1) + ("dirichlet",)
    sides = tuple(boundary) if isinstance(boundary, list | tuple) else ()
    if len(sides) != 2 * dim or any(b not in ("dirichlet", "neumann") for b in sides):
        raise ValueError(
            "boundary must be 'dirichlet', 'smoke' or a list of "
            f"{2 * dim} entries 'dirichlet'/'neumann' (low, high side per axis); got {boundary!r}"
        )
    return sides


@register_model
class ConjugateDirectionNet(nn.Module):
    """Learned multigrid V-cycle network for DCDM search directions (2D or 3D).

    Parameters
    ----------
    dim : {2, 3}
        Spatial dimension.
    width : int
        Channels of the nonlinear residual-block correction (0 disables it: the network
        is then a linear map).
    n_blocks : int
        Residual blocks ``h + conv(relu(conv(h)))`` in the nonlinear correction.
    smoothing_steps : int
        Pre- and post-smoothing steps per level (>= 1).
    coarse_size : int
        Stop coarsening when the smallest grid side is at most this (>= 2).
    coarse_steps : int
        Smoothing iterations on the coarsest grid.
    boundary : str or list of str
        How the V-cycle pads the grid: ``"dirichlet"`` (zeros on every side, the
        Dirichlet box), ``"smoke"`` (copies on the walls = zero normal flux, zeros on the
        high end of the last axis = the open top), or one of ``"dirichlet"`` /
        ``"neumann"`` per side ``[axis0_low, axis0_high, axis1_low, ...]``.
    coefficients : bool
        Coefficient-aware: the network also takes ``A``'s stencil and builds a V-cycle
        from it (:mod:`pdesurrogates.surrogates._dcdm_coeff`); ``width`` must be 0.
    hidden : int
        Channels of the coefficient-aware network's smoother CNN.
    smoother_reach : {1, 2}
        Coefficient-aware smoother taps up to this many cells away: 1 on ``A``'s own
        3x3 pattern, 2 on the pattern of ``A^2`` (5x5); the extra taps start at zero, so
        the untrained cycle is the same for both.
    smoother : {"spd", "free"}
        Coefficient-aware smoother: ``"spd"`` (symmetric positive definite for any
        weights, its learned part scaled at setup so that every smoothing step contracts
        the error in the A-norm) or ``"free"`` (per-cell taps, not symmetric: it can
        amplify the error on coefficient fields unlike the training ones). Both start as
        the same l1-Jacobi smoother. Models saved before this key existed load as
        ``"free"``, the smoother they were trained with.

    Notes
    -----
    Input and output have shape ``(batch, 1, *grid)``; the grid may have any size.
    ``forward(r, mask)`` takes an optional fluid mask (solid cells act as walls). The
    map is positively homogeneous only when ``width == 0``; DCDM therefore feeds it unit
    residuals.
    """

    accepts_mask = True
    direction_network = True  # maps residuals to search directions (solve_with 'dcdm')

    def __init__(
        self,
        *,
        dim: int = 2,
        width: int | None = None,
        n_blocks: int = 1,
        smoothing_steps: int = 2,
        coarse_size: int = 2,
        coarse_steps: int = 8,
        boundary: str | list[str] = "dirichlet",
        coefficients: bool = False,
        hidden: int = 8,
        smoother_reach: int = 1,
        smoother: str = "spd",
    ):
        super().__init__()
        if dim not in (2, 3):
            raise ValueError(f"dim must be 2 or 3; got {dim!r}")
        if not isinstance(coefficients, bool):
            raise ValueError(f"coefficients must be True or False; got {coefficients!r}")
        self.coefficients = coefficients
        if width is None:
            width = 0 if coefficients else 8
        if coefficients and width != 0:
            raise ValueError(
                "the coefficient-aware network (coefficients=True) is linear in the residual: "
                f"width must be 0; got {width!r}"
            )
        self.boundary = _boundary_sides(boundary, dim)
        for name, val, lo in (
            ("width", width, 0),
            ("n_blocks", n_blocks, 0),
            ("smoothing_steps", smoothing_steps, 1),
            ("coarse_size", coarse_size, 2),
            ("coarse_steps", coarse_steps, 1),
        ):
            if not isinstance(val, int) or isinstance(val, bool) or val < lo:
                raise ValueError(f"{name} must be an integer >= {lo}; got {val!r}")
            if name != "width" and name != "coarse_size":
                check_at_most("ConjugateDirectionNet", name, val, MAX_REPEAT)
        self.dim = dim
        self.width = width
        self.n_blocks = n_blocks
        self.smoothing_steps = smoothing_steps
        self.coarse_size = coarse_size
        self.coarse_steps = coarse_steps
        self.hidden = hidden
        if coefficients:
            if not isinstance(hidden, int) or isinstance(hidden, bool) or hidden < 1:
                raise ValueError(f"hidden must be an integer >= 1; got {hidden!r}")
            if smoother_reach not in (1, 2) or isinstance(smoother_reach, bool):
                raise ValueError(f"smoother_reach must be 1 or 2; got {smoother_reach!r}")
            self.smoother_reach = smoother_reach
            self.cycle = StencilVCycle(
                dim,
                hidden=hidden,
                smoothing_steps=smoothing_steps,
                coarse_size=coarse_size,
                smoother_reach=smoother_reach,
                smoother=smoother,
            )
            self._native_convs = False
            return

        k3 = (3,) * dim
        centre = (1,) * dim
        stencil = torch.zeros(1, 1, *k3)
        stencil[(0, 0, *centre)] = 2.0 * dim
        for ax in range(dim):
            for off in (0, 2):
                idx = list(centre)
                idx[ax] = off
                stencil[(0, 0, *idx)] = -1.0
        smoother = torch.zeros(1, 1, *k3)
        smoother[(0, 0, *centre)] = 0.8 / (2.0 * dim)  # damped Jacobi, omega = 0.8
        bil = _bilinear_kernel(dim)[None, None]
        self.stencil = nn.Parameter(stencil)
        self.smoother = nn.Parameter(smoother)
        self.restrict = nn.Parameter(bil * 2.0 ** (2 - dim))
        self.prolong = nn.Parameter(bil.clone())
        self.coarse_smoother = nn.Parameter(smoother.clone())
        if width > 0:
            conv = nn.Conv2d if dim == 2 else nn.Conv3d
            self.lift = conv(1, width, 3, padding=1)
            self.blocks = nn.ModuleList(
                nn.ModuleList([conv(width, width, 3, padding=1), conv(width, width, 3, padding=1)])
                for _ in range(n_blocks)
            )
            self.project = conv(width, 1, 3, padding=1, bias=False)
            nn.init.zeros_(self.project.weight)
        self.level_scale = nn.Parameter(torch.ones(()))
        self._native_convs = False

    @classmethod
    def from_config(cls, config: dict) -> ConjugateDirectionNet:
        """Rebuild from :meth:`get_config` (a coefficient-aware model saved without a
        ``smoother`` key had the ``"free"`` one)."""
        if config.get("coefficients") and "smoother" not in config:
            config = {**config, "smoother": "free"}
        return cls(**config)

    def get_config(self) -> dict:
        """JSON-serialisable ``__init__`` keyword arguments.

        Models saved before ``coefficients`` existed have no such key and load as
        ``coefficients=False`` (the matrix-blind network they were).
        """
        cfg = {
            "dim": self.dim,
            "width": self.width,
            "n_blocks": self.n_blocks,
            "smoothing_steps": self.smoothing_steps,
            "coarse_size": self.coarse_size,
            "coarse_steps": self.coarse_steps,
            "boundary": list(self.boundary),
        }
        if self.coefficients:
            cfg.update(coefficients=True, hidden=self.hidden)
            if self.smoother_reach != 1:  # models saved before it existed have reach 1
                cfg.update(smoother_reach=self.smoother_reach)
            cfg.update(smoother=self.cycle.smoother)
        return cfg

    def prepare(self, stencil):
        """Per-matrix setup of a coefficient-aware network (``coefficients=True``).

        ``stencil``: :func:`pdesurrogates.solvers.grid_stencil` of ``A`` as a tensor
        ``(1, 3**dim, *grid)`` (or that array); pass the result to ``forward`` as
        ``coefficients=`` to reuse it for every residual of the same matrix.
        """
        if not self.coefficients:
            raise ValueError("prepare() is for a network built with coefficients=True")
        return self.cycle.prepare(stencil)

    def numpy_cycle(self, stencil):
        """The coefficient-aware cycle of one matrix compiled to sparse numpy matrices.

        ``stencil`` as for :meth:`prepare` (or its result). Returns a callable mapping a
        flat float64 residual to the flat float64 direction of ``forward``, computed in
        the network's dtype without torch (the inference path of
        :func:`~pdesurrogates.solvers.dcdm`).
        """
        with torch.inference_mode():
            h = self.prepare(stencil)
        return self.cycle.compile_cycle(h)

    # -- building blocks -------------------------------------------------------------
    def _pad(self, x, width: int = 1):
        """Pad every side by ``width`` cells: zeros (Dirichlet) or copies (Neumann).

        A ghost cell next to two sides is a copy only if both sides are Neumann.
        """
        if not torch.is_grad_enabled():
            # inference: one replicate pad, then zero the Dirichlet ghost slabs in place
            if all(b == "dirichlet" for b in self.boundary):
                return F.pad(x, [width] * (2 * self.dim))
            xp = F.pad(x, [width] * (2 * self.dim), mode="replicate")
            for ax in range(self.dim):
                for side in (0, 1):
                    if self.boundary[2 * ax + side] == "dirichlet":
                        n = xp.shape[2 + ax]
                        xp.narrow(2 + ax, 0 if side == 0 else n - width, width).zero_()
            return xp
        for ax in range(self.dim):
            d = 2 + ax
            n = x.shape[d]
            parts = []
            for side in (0, 1):
                if self.boundary[2 * ax + side] == "neumann":
                    edge = x.narrow(d, 0 if side == 0 else n - 1, 1)
                    parts.append(edge.expand(*x.shape[:d], width, *x.shape[d + 1 :]))
                else:
                    shape = list(x.shape)
                    shape[d] = width
                    parts.append(x.new_zeros(shape))
            x = torch.cat([parts[0], x, parts[1]], dim=d)
        return x

    def _conv(self, x, w, stride=1):
        xp = self._pad(x, 1)
        if torch.is_grad_enabled():
            return _shift_conv(xp, w, stride, 0)
        out = (F.conv2d if self.dim == 2 else F.conv3d)(xp, w)
        if stride > 1:  # a strided single-channel convolution is several times slower on CPU
            out = out[(..., *(slice(None, None, stride),) * self.dim)]
        return out

    def _prolong(self, ec, spatial):
        """Transposed-convolution prolongation with boundary-aware ghost cells."""
        ep = self._pad(ec, 1)
        if torch.is_grad_enabled():
            full = _shift_conv_transpose(ep, self.prolong, 2, 0)
        else:
            fn = F.conv_transpose2d if self.dim == 2 else F.conv_transpose3d
            full = fn(ep, self.prolong, stride=2)
        return full[(..., *(slice(3, 3 + s) for s in spatial))]

    def _nonlinear(self, r):
        if self._native_convs:  # the multi-channel convolutions are faster with oneDNN
            with _onednn(True):
                return self._nonlinear_branch(r)
        return self._nonlinear_branch(r)

    def _nonlinear_branch(self, r):
        h = self.lift(r)
        for c1, c2 in self.blocks:
            h = h + c2(F.relu(c1(h)))
        return self.project(F.relu(h))

    def _K(self, e, mask, c):
        """The internal stencil; with a fluid mask, solid neighbours act as Neumann walls."""
        if mask is None:
            return self._conv(e, self.stencil)
        return mask * (self._conv(mask * e, self.stencil) + c * e)

    def _smooth(self, r, e, kernel, mask, c):
        """One step ``e += S (r - K e)`` (``e`` may be None = zero)."""
        res = r if e is None else r - self._K(e, mask, c)
        de = self._conv(res, kernel)
        if mask is not None:
            de = mask * de
        return de if e is None else e + de

    def _vcycle(self, r: torch.Tensor, depth: int, mask=None) -> torch.Tensor:
        spatial = r.shape[2:]
        c = None
        if mask is not None:
            off = self.stencil.clone()
            off[(0, 0, *(1,) * self.dim)] = 0.0  # off-centre taps
            c = self._conv(1 - mask, off)
        if min(spatial) <= self.coarse_size:
            e = None
            for _ in range(self.coarse_steps):
                e = self._smooth(r, e, self.coarse_smoother, mask, c)
            return e
        e = None
        for _ in range(self.smoothing_steps):
            e = self._smooth(r, e, self.smoother, mask, c)
        if self.width > 0:
            nl = self._nonlinear(r)
            e = e + (nl if mask is None else mask * nl)
        res = r - self._K(e, mask, c)
        pad = []
        for s in reversed(spatial):
            pad += [0, s % 2]
        if any(pad):
            res = F.pad(res, pad)
        rc = self._conv(res, self.restrict, stride=2)
        # coarse levels see the obstacle as fluid: masking them too was measured to be worse
        ec = self._vcycle(rc, depth + 1)
        corr = self._prolong(ec, spatial)
        if mask is not None:
            corr = mask * corr
        e = e + self.level_scale * corr
        for _ in range(self.smoothing_steps):
            e = self._smooth(r, e, self.smoother, mask, c)
        return e

    def forward(
        self, r: torch.Tensor, mask: torch.Tensor | None = None, coefficients=None
    ) -> torch.Tensor:
        """Search direction for residual(s) ``r`` of shape ``(batch, 1, *grid)``.

        ``mask`` (optional, same shape or batch 1; 1 on fluid cells, 0 on solid ones)
        makes the finest level of the V-cycle treat solid cells as walls (zero normal
        flux); the output is zero on solid cells. A coefficient-aware network needs
        ``coefficients``: the stencil of ``A`` or its :meth:`prepare` result (the
        matrix's identity rows play the role of the mask).
        """
        if r.dim() != self.dim + 2 or r.shape[1] != 1:
            raise ValueError(
                f"expected input of shape (batch, 1, {', '.join('n' * self.dim)}); "
                f"got {tuple(r.shape)}"
            )
        if self.coefficients:
            if coefficients is None:
                raise ValueError(
                    "this network was built with coefficients=True: pass "
                    "coefficients=grid_stencil(A, shape) (or model.prepare(...) of it)"
                )
            out = self.cycle(r, self.prepare(coefficients))
            if mask is not None:
                out = out * mask.to(out.dtype)
            return out
        if mask is not None:
            mask = mask.to(r.dtype)
            if mask.dim() != r.dim() or mask.shape[2:] != r.shape[2:]:
                raise ValueError(f"mask has shape {tuple(mask.shape)}, r {tuple(r.shape)}")
            r = r * mask
        if torch.is_grad_enabled() or r.device.type != "cpu" or not torch.backends.mkldnn.enabled:
            return self._vcycle(r, 0, mask)
        # CPU inference: the single-channel V-cycle convolutions use torch's native kernels
        self._native_convs = True
        try:
            with _onednn(False):
                return self._vcycle(r, 0, mask)
        finally:
            self._native_convs = False


@register_model
class LearnedVCycle(nn.Module):
    """A learned multigrid V-cycle that is symmetric positive definite by construction.

    Learned parameters: the cell-centred 1D prolongation stencil ``(b, a, a, b)`` (the
    ``d``-dimensional ``P`` is its tensor product; restriction is ``R = P^T``; coarse
    operators are Galerkin ``P^T A P``) and, per level, the damped-Jacobi weight as a
    fraction ``f in (0, 1)`` of the stability limit: ``omega = f * 2 / g`` with ``g`` the
    Gershgorin bound of ``D^{-1} A`` on that level. Equal pre- and post-smoothing and an
    exact coarsest solve make the V-cycle ``B`` symmetric, and ``omega < 2/lambda_max``
    makes it positive definite, for any SPD matrix and any parameter values.

    ``forward(r)`` applies the V-cycle built for the Dirichlet Laplacian on the grid of
    ``r`` (the training operator; dense, for small training grids). For any other matrix,
    :class:`pdesurrogates.solvers.LearnedPreconditioner` assembles the sparse hierarchy
    from the same parameters.

    Parameters
    ----------
    dim : {2, 3}
    smoothing_steps : int
        Jacobi steps before and after the coarse correction (>= 1).
    coarse_cells : int
        Levels are added until a level has at most this many unknowns (solved exactly).
    n_level_params : int
        Number of per-level smoother weights; deeper levels reuse the last one.

    Examples
    --------
    >>> import torch
    >>> m = LearnedVCycle(dim=2).double()
    >>> r = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    >>> s = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    >>> lhs = (m(r) * s).sum(); rhs = (r * m(s)).sum()   # symmetric
    >>> bool(torch.isclose(lhs, rhs))
    True
    """

    is_linear = True
    accepts_mask = False

    def __init__(
        self,
        *,
        dim: int = 2,
        smoothing_steps: int = 2,
        coarse_cells: int = 64,
        n_level_params: int = 4,
    ):
        super().__init__()
        if dim not in (2, 3):
            raise ValueError(f"dim must be 2 or 3; got {dim!r}")
        for name, val, lo in (
            ("smoothing_steps", smoothing_steps, 1),
            ("coarse_cells", coarse_cells, 1),
            ("n_level_params", n_level_params, 1),
        ):
            if not isinstance(val, int) or isinstance(val, bool) or val < lo:
                raise ValueError(f"{name} must be an integer >= {lo}; got {val!r}")
            if name != "coarse_cells":
                check_at_most("LearnedVCycle", name, val, MAX_REPEAT)
        self.dim = dim
        self.smoothing_steps = smoothing_steps
        self.coarse_cells = coarse_cells
        self.n_level_params = n_level_params
        self.stencil = nn.Parameter(torch.tensor([0.75, 0.25]))
        frac = torch.full((n_level_params,), 0.8)
        self.omega_logit = nn.Parameter(torch.log(frac / (1 - frac)))

    def get_config(self) -> dict:
        """JSON-serialisable ``__init__`` keyword arguments."""
        return {
            "dim": self.dim,
            "smoothing_steps": self.smoothing_steps,
            "coarse_cells": self.coarse_cells,
            "n_level_params": self.n_level_params,
        }

    def omega_fraction(self) -> torch.Tensor:
        """Per-level smoother weights as fractions of the stability limit, in (0, 1)."""
        return torch.sigmoid(self.omega_logit)

    def numpy_parameters(self) -> dict:
        """Parameters as float64 numpy arrays (for the sparse assembly)."""
        return {
            "stencil": self.stencil.detach().double().cpu().numpy(),
            "omega_fraction": self.omega_fraction().detach().double().cpu().numpy(),
        }

    def hierarchy(self, A: torch.Tensor, shape, geometric=None) -> list[dict]:
        """Dense (differentiable) hierarchy of ``A`` (``(n, n)`` tensor) on grid ``shape``.

        The same cycle as the sparse :class:`~pdesurrogates.solvers.MultigridHierarchy`
        (see :func:`dense_hierarchy`); ``geometric``: fixed coarse operators, else Galerkin.
        """
        return dense_hierarchy(self, A, shape, geometric)

    def apply(self, levels: list[dict], r: torch.Tensor, lvl: int = 0) -> torch.Tensor:
        """V-cycle on rows of ``r`` (``(batch, n)``), zero initial guess."""
        L = levels[lvl]
        if "chol" in L:
            return torch.cholesky_solve(r.T, L["chol"]).T
        A, w = L["A"], L["omega"] * L["dinv"]
        x = w * r
        for _ in range(self.smoothing_steps - 1):
            x = x + w * (r - x @ A)
        P = L["P"]
        x = x + self.apply(levels, (r - x @ A) @ P, lvl + 1) @ P.T
        for _ in range(self.smoothing_steps):
            x = x + w * (r - x @ A)
        return x

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """V-cycle of the Dirichlet Laplacian on the grid of ``r`` ``(batch, 1, *grid)``."""
        if r.dim() != self.dim + 2 or r.shape[1] != 1:
            raise ValueError(
                f"expected input of shape (batch, 1, {', '.join('n' * self.dim)}); "
                f"got {tuple(r.shape)}"
            )
        shape = tuple(r.shape[2:])
        A = _laplacian_dense(shape, r.dtype, r.device)
        levels = self.hierarchy(A, shape)
        out = self.apply(levels, r.reshape(r.shape[0], -1))
        return out.reshape(r.shape)
