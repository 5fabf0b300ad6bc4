"""Kernel choice of :class:`~pdesurrogates.surrogates.CoKrigingGP`: ARD RBF or additive/ANOVA.

``kernel=`` of the co-kriging model:

* ``"rbf"``: one ARD squared exponential on all inputs at every level (the default kernel
  of :mod:`._cokriging_gp`; exact or full-space-inducing SGPR at the lowest level);
* ``"additive"``: a sum of 1-D squared exponentials, one variance per input;
* ``"anova2"``: ``"additive"`` plus a 2-D product term, with its own variance, for every
  input pair that :func:`~pdesurrogates.surrogates.screen_interactions` finds in the
  lowest-fidelity data (no pair found: additive);
* ``"auto"``: ``"anova2"`` above :data:`AUTO_ANOVA_DIM` inputs, ``"rbf"`` otherwise.

With an additive or ANOVA kernel the lowest level is
:class:`~pdesurrogates.surrogates._sparse_gp.AdditiveSparseGP` (inducing points per
component, any number of points) and every AR(1) discrepancy δ_k is an exact GP with
:func:`anova_kernel`. NARGP levels above the lowest keep their kernel on ``[x, y_{k−1}]``.

Why: in tens of inputs an ARD RBF fitted to a few thousand points sees nearly constant
correlations between far-apart points and learns little more than the mean (at 100-D with
5,000/500 points the RBF co-kriging error was 0.88 of a constant predictor's); most
engineering responses are close to a sum of low-order terms, which the ANOVA kernel
represents with a few hyperparameters per input.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from pdesurrogates.surrogates._cokriging_gp import DTYPE, gp_classes, import_gpytorch
from pdesurrogates.surrogates._sparse_gp import AdditiveSparseGP

__all__ = [
    "AUTO_ANOVA_DIM",
    "KERNELS",
    "anova_kernel",
    "build_level",
    "check_kernel",
    "resolve_kernel",
    "screen_pairs",
]

KERNELS = ("auto", "rbf", "additive", "anova2")
#: ``kernel="auto"`` uses the ANOVA kernel above this many inputs.
AUTO_ANOVA_DIM = 10
_CLASSES: dict = {}
_ROWS = 256  # row chunk of a kernel evaluation without gradients


def check_kernel(kernel: str, pairs=None) -> list[tuple[int, int]] | None:
    """Validate ``kernel`` and ``pairs`` of the co-kriging model; returns the pairs as tuples."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}; got {kernel!r}")
    if pairs is None:
        return None
    try:
        out = [(int(i), int(j)) for i, j in pairs]
    except (TypeError, ValueError):
        raise ValueError(f"pairs must be a list of (i, j) input pairs; got {pairs!r}") from None
    if any(not 0 <= i < j for i, j in out):
        raise ValueError(f"pairs must be (i, j) with 0 <= i < j; got {pairs!r}")
    return out


def resolve_kernel(kernel: str, in_dim: int) -> str:
    """``"rbf"``, ``"additive"`` or ``"anova2"`` for ``kernel`` in ``in_dim`` inputs."""
    if kernel == "auto":
        return "anova2" if in_dim > AUTO_ANOVA_DIM else "rbf"
    return kernel


def screen_pairs(model, x0: np.ndarray, y0: np.ndarray, bounds: np.ndarray):
    """Interacting pairs of the lowest level's data for ``model`` (``None`` for RBF)."""
    from pdesurrogates.surrogates._interactions import screen_interactions

    kind = resolve_kernel(model.kernel, model.in_dim)
    if kind == "rbf":
        return None
    if kind == "additive" or model.in_dim < 2:
        return []
    return [tuple(p) for p in screen_interactions(x0, y0, bounds=bounds)]


def build_level(model, k: int, z: torch.Tensor, y: torch.Tensor, lik, mean):
    """The level-``k`` GP of ``model`` for a non-RBF kernel, or ``None`` (the default one)."""
    kind = resolve_kernel(model.kernel, model.in_dim)
    if kind == "rbf":
        return None
    pairs = model.pairs or []
    d = model.in_dim
    if k == 0:
        gp = AdditiveSparseGP(d, pairs, z.shape[0], noise_floor=model.noise_floor)
        gp.covar_module = None  # no gpytorch kernel: fitted by its own ``fit_level``
        return gp
    if model.kind != "ar1":
        return None
    kernel = anova_kernel(d, pairs)
    gp = gp_classes()["ExactLevel"](z, y, lik, mean, kernel).to(DTYPE)
    gp.register_buffer("z_train", z)
    gp.register_buffer("y_train", y)
    return gp


def anova_kernel(in_dim: int, pairs):
    """Additive (+ pair) squared-exponential kernel on the first ``in_dim`` columns.

    ``k(x, x') = Σ_i λ_i e_i + Σ_{(i,j)} λ_ij e'_i e'_j`` with ``e_i = exp(−(x_i − x'_i)² /
    2ℓ₁²)`` and ``e'_i`` the same at ``ℓ₂``: one variance per component, one length scale
    per order. Dense: memory ``O(n₁ n₂ d)`` (evaluated in row chunks without gradients).
    """
    return _kernel_class()(in_dim, pairs)


def _kernel_class():
    if _CLASSES:
        return _CLASSES["AnovaKernel"]
    g = import_gpytorch()

    class AnovaKernel(g.kernels.Kernel):
        has_lengthscale = False

        def __init__(self, in_dim: int, pairs) -> None:
            super().__init__(active_dims=torch.arange(in_dim))
            self.in_dim = int(in_dim)
            self.pairs = [(int(i), int(j)) for i, j in pairs]
            n_comp = self.in_dim + len(self.pairs)
            self.register_parameter("raw_ls", torch.nn.Parameter(torch.zeros(2, dtype=DTYPE)))
            self.register_parameter("raw_var", torch.nn.Parameter(torch.zeros(n_comp, dtype=DTYPE)))
            self.register_constraint("raw_ls", g.constraints.Interval(1e-2, 1e2))
            self.register_constraint("raw_var", g.constraints.Interval(1e-10, 1e4))
            self.reset_hypers(0, None)

        @property
        def ls(self) -> torch.Tensor:
            return self.raw_ls_constraint.transform(self.raw_ls)

        @property
        def var(self) -> torch.Tensor:
            return self.raw_var_constraint.transform(self.raw_var)

        def reset_hypers(self, restart: int, gen) -> None:
            """Start ``restart``: ℓ = 0.3, then 0.6, then log-uniform in [0.1, 1.5]."""
            if restart < 2 or gen is None:
                ls = torch.full((2,), (0.3, 0.6)[min(restart, 1)], dtype=DTYPE)
            else:
                u = torch.rand(2, generator=gen, dtype=DTYPE)
                ls = torch.exp(math.log(0.1) + u * math.log(15.0))
            var = torch.full_like(self.raw_var, 1.0 / self.raw_var.numel())
            with torch.no_grad():
                self.raw_ls.copy_(self.raw_ls_constraint.inverse_transform(ls))
                self.raw_var.copy_(self.raw_var_constraint.inverse_transform(var))

        def _block(self, x1, x2):
            diff2 = (x1[..., :, None, :] - x2[..., None, :, :]).square()
            ls, var = self.ls, self.var
            d = self.in_dim
            out = torch.exp(diff2 * (-0.5 / ls[0] ** 2)) @ var[:d]
            if self.pairs:
                a = torch.tensor([i for i, _ in self.pairs], device=x1.device)
                b = torch.tensor([j for _, j in self.pairs], device=x1.device)
                e2 = torch.exp(diff2 * (-0.5 / ls[1] ** 2))
                out = out + (e2[..., a] * e2[..., b]) @ var[d:]
            return out

        def forward(self, x1, x2, diag: bool = False, **params):
            if diag:
                return self.var.sum().expand(x1.shape[:-1])
            if torch.is_grad_enabled() and (self.raw_var.requires_grad or x1.requires_grad):
                return self._block(x1, x2)
            return torch.cat([self._block(c, x2) for c in torch.split(x1, _ROWS, dim=-2)], -2)

    _CLASSES["AnovaKernel"] = AnovaKernel
    return AnovaKernel
