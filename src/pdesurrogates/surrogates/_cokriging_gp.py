"""Kernels and per-level GP models of :class:`~pdesurrogates.surrogates.CoKrigingGP`.

Everything here is gpytorch: the lazy import (gpytorch's import emits a torch.jit
deprecation notice), the ARD squared-exponential kernels of each level, the AR(1) link
mean ``ρ · y_{k−1} + β (+ γᵀx)``, the exact GP of one level, the Gaussian likelihood with
a noise floor, and the numerical settings every solve runs under (:class:`gp_settings`).
All computations are in float64 (:data:`DTYPE`).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

__all__ = [
    "DTYPE",
    "gp_classes",
    "gp_settings",
    "import_gpytorch",
    "level_kernel",
    "likelihood",
    "rbf",
]

DTYPE = torch.float64

_GPYTORCH = []  # the module, once imported
_CLASSES: dict = {}


def import_gpytorch():
    """Import gpytorch lazily (its import emits a torch.jit deprecation notice)."""
    if not _GPYTORCH:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            import gpytorch

        _GPYTORCH.append(gpytorch)
    return _GPYTORCH[0]


def rbf(ard: int, active_dims=None, prior_ls: float = 0.3):
    """Scaled ARD squared-exponential kernel with bounded length and output scales."""
    g = import_gpytorch()
    base = g.kernels.RBFKernel(
        ard_num_dims=ard,
        active_dims=active_dims,
        lengthscale_constraint=g.constraints.Interval(1e-3, 1e4),
    )
    base.lengthscale = torch.full((1, ard), prior_ls)
    return g.kernels.ScaleKernel(base, outputscale_constraint=g.constraints.Interval(1e-6, 1e7))


def level_kernel(k: int, in_dim: int, kind: str):
    """Kernel of level ``k`` on ``[x, y_{k−1}]`` (on ``x`` only at level 0).

    AR(1): an RBF on ``x`` (the link mean carries ``y_{k−1}``). NARGP:
    ``k_y(y, y') k_x(x, x') + k_δ(x, x')`` (Perdikaris et al. 2017).
    """
    g = import_gpytorch()
    if k == 0:
        return rbf(in_dim)
    xdims = tuple(range(in_dim))
    if kind == "ar1":
        return rbf(in_dim, active_dims=xdims)
    k_y = g.kernels.RBFKernel(
        active_dims=(in_dim,), lengthscale_constraint=g.constraints.Interval(1e-2, 1e3)
    )
    k_y.lengthscale = torch.ones(1, 1)
    k_x = rbf(in_dim, active_dims=xdims)
    k_delta = rbf(in_dim, active_dims=xdims)
    return g.kernels.ProductKernel(k_y, k_x) + k_delta


def gp_classes() -> dict:
    """The gpytorch subclasses ``LinearLinkMean`` and ``ExactLevel``, defined on first use."""
    if _CLASSES:
        return _CLASSES
    g = import_gpytorch()

    class _LinearLinkMean(g.means.Mean):
        """``ρ · z[:, -1] + β`` (the AR(1) link on the lower level's value)."""

        def __init__(self, n_trend: int = 0) -> None:
            super().__init__()
            self.rho = nn.Parameter(torch.ones(1, dtype=DTYPE))
            self.beta = nn.Parameter(torch.zeros(1, dtype=DTYPE))
            self.n_trend = n_trend
            if n_trend:
                self.gamma = nn.Parameter(torch.zeros(n_trend, dtype=DTYPE))

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            out = self.rho * z[..., -1] + self.beta
            if self.n_trend:
                out = out + z[..., : self.n_trend] @ self.gamma
            return out

    class _ExactLevel(g.models.ExactGP):
        def __init__(self, x, y, likelihood, mean, kernel) -> None:
            super().__init__(x, y, likelihood)
            self.mean_module = mean
            self.covar_module = kernel

        def forward(self, x):
            return g.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))

    _CLASSES.update(LinearLinkMean=_LinearLinkMean, ExactLevel=_ExactLevel)
    return _CLASSES


def likelihood(noise_floor: float):
    """Gaussian likelihood with the noise variance bounded below by ``noise_floor``."""
    g = import_gpytorch()
    lik = g.likelihoods.GaussianLikelihood(
        noise_constraint=g.constraints.Interval(noise_floor, 1.0)
    )
    lik.noise = max(1e-6, 10 * noise_floor)
    return lik


class gp_settings:
    """Exact Cholesky solves in float64, tiny jitter, and gpytorch's notices silenced."""

    def __enter__(self):
        g = import_gpytorch()
        self._stack = [
            g.settings.max_cholesky_size(10**6),
            g.settings.cholesky_jitter(float_value=1e-6, double_value=1e-10),
            g.settings.fast_pred_var(False),
            g.settings.cholesky_max_tries(6),
            g.settings.detach_test_caches(False),
        ]
        for s in self._stack:
            s.__enter__()
        self._warn = warnings.catch_warnings()
        self._warn.__enter__()
        warnings.simplefilter("ignore", g.utils.warnings.NumericalWarning)
        warnings.simplefilter("ignore", g.utils.warnings.GPInputWarning)
        return self

    def __exit__(self, *exc):
        self._warn.__exit__(*exc)
        for s in reversed(self._stack):
            s.__exit__(*exc)
        return False
