"""Kernels and per-level GP models of :class:`~pdesurrogates.surrogates.CoKrigingGP`.

Everything here is gpytorch: the lazy import (gpytorch's import emits a torch.jit
deprecation notice), the ARD squared-exponential kernels of each level, the AR(1) link
mean ``ρ · y_{k−1} + β (+ γᵀx)``, the exact GP of one level, the Gaussian likelihood with
a noise floor, and the numerical settings every solve runs under (:class:`gp_settings`).
All computations are in float64 (:data:`DTYPE`).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from torch import nn

__all__ = [
    "DTYPE",
    "ExactPosterior",
    "gp_classes",
    "gp_settings",
    "holdout_mean",
    "holdout_residuals",
    "import_gpytorch",
    "level_kernel",
    "likelihood",
    "loo_residuals",
    "loo_variance_ratio",
    "mean_basis",
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
        """``ρ y + β (+ γᵀx)`` on ``z = [x, y]`` (the AR(1) link on the lower level's value
        ``y``); with ``quadratic`` also ``ρ₂ y² (+ ηᵀx y²)`` (a NARGP link mean)."""

        def __init__(self, n_trend: int = 0, quadratic: bool = False) -> None:
            super().__init__()
            self.rho = nn.Parameter(torch.ones(1, dtype=DTYPE))
            self.beta = nn.Parameter(torch.zeros(1, dtype=DTYPE))
            self.n_trend = n_trend
            self.quadratic = quadratic
            if n_trend:
                self.gamma = nn.Parameter(torch.zeros(n_trend, dtype=DTYPE))
            if quadratic:
                self.rho2 = nn.Parameter(torch.zeros(1, dtype=DTYPE))
                if n_trend:
                    self.eta = nn.Parameter(torch.zeros(n_trend, dtype=DTYPE))

        def basis(self, z: torch.Tensor) -> torch.Tensor:
            """Columns multiplying ``[ρ, β, γ, ρ₂, η]``, shape ``(..., n_basis)``."""
            y = z[..., -1:]
            cols = [y, torch.ones_like(y), z[..., : self.n_trend]]
            if self.quadratic:
                cols += [y.square(), z[..., : self.n_trend] * y.square()]
            return torch.cat(cols, -1)

        def coefficients(self) -> list[torch.Tensor]:
            names = ["rho", "beta"] + ["gamma"] * bool(self.n_trend)
            names += (["rho2"] + ["eta"] * bool(self.n_trend)) * self.quadratic
            return [getattr(self, n) for n in names]

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return self.basis(z) @ torch.cat(self.coefficients())

    class _CentredLinkMean(_LinearLinkMean):
        """``m_k + ρ (y − m_{k−1})`` on ``z = [x, y]``: the AR(1) link centred at a common
        level ``m`` (the lowest level's constant mean, in the standardised units of level
        ``k − 1`` and ``k``: the buffer ``centre = [m_{k−1}, m_k]``); only ρ is fitted."""

        def __init__(self) -> None:
            super().__init__(0, quadratic=False)
            del self.beta
            self.register_buffer("centre", torch.zeros(2, dtype=DTYPE))

        def basis(self, z: torch.Tensor) -> torch.Tensor:
            return z[..., -1:] - self.centre[0]

        def coefficients(self) -> list[torch.Tensor]:
            return [self.rho]

        def offset(self, z: torch.Tensor) -> torch.Tensor:
            """The part of the mean that is not re-estimated: ``m_k``."""
            return self.centre[1].expand(z.shape[:-1])

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return self.offset(z) + self.basis(z) @ self.rho

    class _ExactLevel(g.models.ExactGP):
        def __init__(self, x, y, likelihood, mean, kernel) -> None:
            super().__init__(x, y, likelihood)
            self.mean_module = mean
            self.covar_module = kernel

        def forward(self, x):
            return g.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))

    _CLASSES.update(
        LinearLinkMean=_LinearLinkMean, CentredLinkMean=_CentredLinkMean, ExactLevel=_ExactLevel
    )
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


class ExactPosterior:
    """Latent posterior of one fitted exact level at many points, in chunks of the cross
    covariance only (gpytorch's own call also forms the test-test covariance of a product
    kernel, quadratic in the chunk; NARGP pushes ``n_mc`` draws per point through it).

    The mean uses gpytorch's cached weights (identical to ``gp(z).mean``); the variance a
    Cholesky factor of the training covariance plus noise (jittered if needed). Both stay
    differentiable in the hyperparameters (``forward``); ``predict`` runs without autograd.
    """

    def __init__(self, gp, chunk_elems: int = 2**21) -> None:
        self.gp = gp
        z, y = gp.z_train, gp.y_train
        with gp_settings():
            gp(z[:1])  # builds gpytorch's prediction cache
            self.alpha = gp.prediction_strategy.mean_cache
            k = gp.covar_module(z).to_dense()
            noise = gp.likelihood.noise.reshape(()).to(k.dtype)
            eye = torch.eye(len(y), dtype=k.dtype)
            scale = float(k.diagonal().mean())
            for rel in (0.0, 1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4):
                chol, info = torch.linalg.cholesky_ex(k + (noise + rel * scale) * eye)
                if int(info) == 0:
                    break
            self.chol = chol
        self.z = z
        self.chunk = max(1, chunk_elems // max(1, len(y)))

    def __call__(self, zq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance (latent, no noise) at ``zq`` ``(m, p)``."""
        gp = self.gp
        means, variances = [], []
        with gp_settings():
            for zc in torch.split(zq, self.chunk):
                ks = gp.covar_module(zc, self.z).to_dense()
                kss = gp.covar_module(zc, diag=True)
                v = torch.linalg.solve_triangular(self.chol, ks.T, upper=False)
                means.append(gp.mean_module(zc) + ks @ self.alpha)
                variances.append((kss - v.square().sum(0)).clamp_min(0.0))
        return torch.cat(means), torch.cat(variances)


def loo_residuals(gp, folds=None) -> torch.Tensor:
    """Leave-one-out (or ``folds``-out) residuals ``y_i − ŷ_{−i}`` of a fitted exact level,
    in closed form.

    Kernel hyperparameters stay fixed; the coefficients of a link mean are re-estimated by
    generalised least squares without the left-out point (Dubrule 1983):
    ``e = Q y / diag(Q)`` with ``Q = A⁻¹ − A⁻¹H (HᵀA⁻¹H)⁻¹ HᵀA⁻¹``, ``A = K + σ²I``.
    A fitted constant mean counts as the basis ``H = 1``, a fixed one as no basis
    (:func:`mean_basis`; ``Q = A⁻¹`` on ``y − m``). With ``folds`` (index arrays covering
    the points once) each fold is left out together: ``e_S = Q_SS⁻¹ (Q y)_S``.
    """
    with torch.no_grad(), gp_settings():
        q = _loo_matrix(gp)
        qy = q @ (gp.y_train - gp.mean_module(gp.z_train))  # QH = 0: the fitted part drops
        if folds is None:
            return qy / q.diagonal().clamp_min(1e-300)
        e = torch.empty_like(qy)
        for f in folds:
            f = torch.as_tensor(np.asarray(f), dtype=torch.long)
            e[f] = torch.linalg.lstsq(q[f][:, f], qy[f, None]).solution[:, 0]
        return e


def holdout_mean(gp, drop, zq: torch.Tensor) -> torch.Tensor:
    """Posterior mean at ``zq`` of a fitted exact level conditioned on its training points
    except the rows ``drop`` (kernel hyperparameters fixed, the link coefficients
    re-estimated by generalised least squares without them, as in :func:`loo_residuals`).

    At the dropped rows themselves, ``y − holdout_mean(gp, rows, z[rows])`` are the
    residuals of :func:`loo_residuals` for that fold; ``zq`` may be any points.
    """
    z, y = gp.z_train, gp.y_train
    keep = torch.ones(len(y), dtype=torch.bool)
    keep[torch.as_tensor(np.asarray(drop), dtype=torch.long)] = False
    zk, yk = z[keep], y[keep]
    fixed = getattr(gp, "fixed_mean", False)  # a fixed constant: the prior mean, not refitted

    def prior(v):
        if fixed:
            return gp.mean_module(v)
        offset = getattr(gp.mean_module, "offset", None)  # a centred link's fixed part
        return offset(v) if offset is not None else torch.zeros(len(v), dtype=v.dtype)

    with torch.no_grad(), gp_settings():
        k = gp.covar_module(zk).to_dense()
        noise = gp.likelihood.noise.reshape(()).to(k.dtype)
        eye = torch.eye(len(yk), dtype=k.dtype)
        scale = float(k.diagonal().mean())
        for rel in (0.0, 1e-12, 1e-10, 1e-8, 1e-6, 1e-4):
            chol, info = torch.linalg.cholesky_ex(k + (noise + rel * scale) * eye)
            if int(info) == 0:
                break
        h, r = mean_basis(gp, zk), (yk - prior(zk))[:, None]
        beta = torch.zeros(h.shape[1], 1, dtype=k.dtype)
        if h.shape[1]:
            ai_h = torch.cholesky_solve(h, chol)
            beta = torch.linalg.lstsq(h.T @ ai_h, h.T @ torch.cholesky_solve(r, chol)).solution
        alpha = torch.cholesky_solve(r - h @ beta, chol)
        ks = gp.covar_module(zq, zk).to_dense()
        return prior(zq) + (mean_basis(gp, zq) @ beta + ks @ alpha)[:, 0]


def holdout_residuals(levels, in_dim: int, folds=None) -> torch.Tensor:
    """Residuals at the highest level's points with each fold removed from every level.

    For each fold the lowest level predicts the fold's inputs without them
    (:func:`holdout_mean`), each higher level (also without them where it has them) at
    ``[x, held-out prediction of the level below]``, up to the highest level, whose
    residuals are returned (standardised units). ``folds``: index arrays of the highest
    level's points (default: one per point).
    """
    top = levels[-1]
    n = len(top.y_train)
    folds = [[i] for i in range(n)] if folds is None else folds
    x_top = top.z_train[:, :in_dim]
    e = torch.empty(n, dtype=top.y_train.dtype)
    for f in folds:
        f = torch.as_tensor(np.asarray(f), dtype=torch.long)
        xf, m = x_top[f], None
        for k, gp in enumerate(levels):
            xk = gp.z_train[:, :in_dim]
            dist = (xk[:, None, :] - xf[None, :, :]).abs().amax(-1).amin(1)
            drop = torch.nonzero(dist <= 1e-10).reshape(-1)
            zq = xf if k == 0 else torch.cat([xf, m[:, None]], 1)
            m = holdout_mean(gp, drop, zq)
        e[f] = top.y_train[f] - m
    return e


#: Bounds of :func:`loo_variance_ratio` as a variance factor (at most a 10× wider std).
VAR_SCALE_BOUNDS = (1.0, 100.0)
#: Nominal coverage the variance factor of :func:`loo_variance_ratio` targets.
COVERAGE = 0.9


def loo_variance_ratio(gp, coverage: float = COVERAGE) -> float:
    """Variance factor of a fitted exact level from its leave-one-out residuals ``e_i``
    and their predictive variances ``s_i² = 1 / Q_ii`` (:func:`loo_residuals`; the link
    coefficients re-estimated without the point, their uncertainty included).

    The larger of two cross-validation estimates: the mean of ``e_i² / s_i²`` (the
    cross-validation estimate of the process variance, Bachoc 2013), and the squared
    ratio ``(q / z)²`` of the split-conformal ``coverage`` quantile ``q`` of
    ``|e_i| / s_i`` (the ``⌈(n + 1) coverage⌉``-th smallest) to the Gaussian one ``z``,
    which makes the central ``coverage`` interval cover that fraction of the left-out
    points. The mean alone is dominated by the few largest ratios: on Currin's 40
    low-fidelity points it was 1.17 while the 90 % interval covered 57 % of the test
    points (an RBF kernel is too smooth for that function's steep corner, so most
    leave-one-out errors exceed their std a little). Clamped to
    :data:`VAR_SCALE_BOUNDS` (only widens).
    """
    with torch.no_grad(), gp_settings():
        q = _loo_matrix(gp)
        diag = q.diagonal()
        ok = diag > 0
        if not bool(ok.any()):
            return 1.0
        r2 = (q @ (gp.y_train - gp.mean_module(gp.z_train)))[ok].square() / diag[ok]
    r2 = np.sort(r2.numpy())
    n = len(r2)
    rank = min(n, math.ceil((n + 1) * coverage)) - 1
    z = math.sqrt(2.0) * float(torch.erfinv(torch.tensor(coverage, dtype=DTYPE)))
    ratio = max(float(r2.mean()), float(r2[rank]) / z**2)
    if not math.isfinite(ratio):
        return 1.0
    lo, hi = VAR_SCALE_BOUNDS
    return min(max(ratio, lo), hi)


def mean_basis(gp, z: torch.Tensor) -> torch.Tensor:
    """Columns of ``gp``'s mean that the closed-form leave-one-out / hold-out quantities
    re-estimate by generalised least squares: a link mean's basis, a column of ones for a
    fitted constant mean, none for a constant fixed at a robust location
    (``gp.fixed_mean``, set by the fit's mean choice at the lowest level)."""
    mean = gp.mean_module
    if hasattr(mean, "basis"):
        return mean.basis(z)
    return torch.ones(len(z), 0 if getattr(gp, "fixed_mean", False) else 1, dtype=z.dtype)


def _loo_matrix(gp):
    """``Q = A⁻¹ − A⁻¹H (HᵀA⁻¹H)⁻¹ HᵀA⁻¹`` with ``A = K + σ²I`` and ``H`` the mean's basis
    (:func:`mean_basis`): the matrix behind every closed-form leave-one-out / hold-out
    quantity of ``gp``, applied to ``y − m(z)`` (call inside ``no_grad`` and ``gp_settings``)."""
    z, n = gp.z_train, len(gp.y_train)
    k = gp.covar_module(z).to_dense()
    a = k + gp.likelihood.noise.reshape(()).to(k.dtype) * torch.eye(n, dtype=k.dtype)
    h = mean_basis(gp, z)
    a_inv = torch.linalg.pinv(a, hermitian=True)
    if not h.shape[1]:
        return a_inv
    ah = a_inv @ h
    return a_inv - ah @ torch.linalg.pinv(h.T @ ah) @ ah.T
