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
_ROWS = 128  # row chunk of a kernel evaluation without a cache
_CACHE_MAX = 3 * 10**8  # largest cached component stack (elements; 2.4 GB)
#: Length scale (inputs in [0, 1]) of the ANOVA discrepancy kernel at each optimisation
#: start; the restarts double as a length-scale search (best marginal likelihood wins).
RESTART_LS = (0.35, 0.7, 0.2, 1.2)


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

    ``k(x, x') = Σ_i λ_i e_i + Σ_{(i,j)} λ_ij e_i e_j`` with ``e_i = exp(−(x_i − x'_i)² /
    2ℓ²)``: one variance per component (fitted by the marginal likelihood), one length
    scale ``ℓ`` fixed per optimisation start (:data:`RESTART_LS`). With ``ℓ`` fixed the
    component matrices at the training points are computed once, ``(C, n, n)`` for
    ``C = d + |pairs|`` components (0.4 GB at n = 500, C = 199), and an evaluation of the
    kernel and of its gradient is two ``C n²`` contractions, without exponentials.
    Other inputs are evaluated in row chunks (memory ``O(128 n₂ C)``).
    """
    return _kernel_class()(in_dim, pairs)


def _kernel_class():
    if _CLASSES:
        return _CLASSES["AnovaKernel"]
    g = import_gpytorch()

    class AnovaKernel(g.kernels.Kernel):
        has_lengthscale = False

        def __init__(self, in_dim: int, pairs) -> None:
            super().__init__()
            self.in_dim = int(in_dim)
            self.pairs = [(int(i), int(j)) for i, j in pairs]
            n_comp = self.in_dim + len(self.pairs)
            self.register_parameter("raw_var", torch.nn.Parameter(torch.zeros(n_comp, dtype=DTYPE)))
            self.register_constraint("raw_var", g.constraints.Interval(1e-10, 1e4))
            self.register_buffer("ls", torch.full((), 0.35, dtype=DTYPE))
            a = torch.tensor([i for i, _ in self.pairs], dtype=torch.long)
            b = torch.tensor([j for _, j in self.pairs], dtype=torch.long)
            self.register_buffer("_a", a, persistent=False)
            self.register_buffer("_b", b, persistent=False)
            self._key, self._stack = None, None
            self.reset_hypers(0, None)

        @property
        def var(self) -> torch.Tensor:
            return self.raw_var_constraint.transform(self.raw_var)

        def reset_hypers(self, restart: int, gen) -> None:
            """Start ``restart``: ℓ from :data:`RESTART_LS`, then log-uniform in [0.1, 1.5]."""
            if restart < len(RESTART_LS) or gen is None:
                ls = RESTART_LS[min(restart, len(RESTART_LS) - 1)]
            else:
                u = float(torch.rand((), generator=gen, dtype=DTYPE))
                ls = math.exp(math.log(0.1) + u * math.log(15.0))
            var = torch.full_like(self.raw_var, 1.0 / self.raw_var.numel())
            with torch.no_grad():
                self.ls.fill_(ls)
                self.raw_var.copy_(self.raw_var_constraint.inverse_transform(var))

        def components(self, x1, x2) -> torch.Tensor:
            """``(C, n1, n2)``: the 1-D and pair correlation matrices (no variances)."""
            dist = (x1.T[:, :, None] - x2.T[:, None, :]).square()
            e = torch.exp(dist.mul_(-0.5 / float(self.ls) ** 2))
            if not self.pairs:
                return e
            return torch.cat([e, e[self._a] * e[self._b]])

        def _train_stack(self, x1, x2):
            """Components at repeated (training) inputs, computed once per length scale."""
            key = (x1.data_ptr(), x1.shape, x1._version, x2.data_ptr(), x2.shape, x2._version)
            key += (float(self.ls),)
            if self._key != key:
                self._key, self._stack = key, self.components(x1, x2)
            return self._stack

        def forward(self, x1, x2, diag: bool = False, **params):
            x1, x2 = x1[..., : self.in_dim], x2[..., : self.in_dim]
            if diag:
                return self.var.sum().expand(x1.shape[:-1])
            size = self.raw_var.numel() * x1.shape[-2] * x2.shape[-2]
            if torch.is_grad_enabled() and x1.ndim == 2 and size <= _CACHE_MAX:
                return torch.tensordot(self.var, self._train_stack(x1, x2), dims=1)
            var = self.var
            rows = [
                torch.tensordot(var, self.components(c, x2), dims=1)
                for c in torch.split(x1, _ROWS, dim=-2)
            ]
            return torch.cat(rows, -2)

    _CLASSES["AnovaKernel"] = AnovaKernel
    return AnovaKernel
