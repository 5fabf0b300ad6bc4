"""Multi-fidelity Gaussian processes (co-kriging) on gpytorch.

:class:`CoKrigingGP` is the recursive Kennedy–O'Hagan AR(1) model of Le Gratiet (2014),
one GP per level, lowest fidelity first::

    y_0(x) = GP_0(x)
    y_k(x) = ρ_k · y_{k−1}(x) + β_k + δ_k(x),      δ_k ~ GP(0, k_δ)

Level ``k`` is an exact GP on the inputs ``[x, y_{k−1}]`` whose mean is
``ρ_k · y_{k−1} + β_k``; ρ_k and β_k are parameters fitted **jointly** with δ_k's kernel
hyperparameters by maximising the exact marginal likelihood (profiling ρ by ordinary least
squares first is badly biased on sparse designs). With nested designs (every level-k
point is also a level-(k−1) point) ``y_{k−1}`` at the training points is the observed
lower-level value and the recursion is exact; otherwise the lower level's posterior mean is
used there (Forrester 2007), which is approximate — pass ``require_nested=False`` for it.

Prediction: mean_k = ρ_k mean_{k−1} + β_k + E[δ_k], var_k = ρ_k² var_{k−1} + var[δ_k].

``kind="nargp"`` replaces the affine link by the nonlinear autoregressive GP of Perdikaris
et al. (2017): level k is a GP on ``[x, y_{k−1}]`` with kernel
``k_y(y, y') k_x(x, x') + k_δ(x, x')`` (ARD squared exponentials); predictions integrate
over the lower level's marginal posterior by Monte Carlo (``n_mc`` draws per point).

Kernels are ARD squared exponentials on inputs scaled to [0, 1]; outputs are standardised
per level. All computations are in float64.

Memory model
------------
With ``n`` points at a level and ``m`` inducing points (d inputs, 8-byte floats):

* exact level: the kernel matrix and its Cholesky factor, plus their autograd copies
  during fitting, about ``4 · 8 n²`` bytes (0.8 GB at n = 5,000; 3.2 GB at n = 10,000).
  No ``n² × d`` array is ever formed (SMT's kriging builds one: 3 GB at n = 5,000, d = 32).
* sparse level (``lf_method="sgpr"``, Titsias' inducing-point approximation): about
  ``6 · 8 n m + 4 · 8 m²`` bytes (0.13 GB at n = 5,000, m = 512), and ``O(n m²)`` time per
  likelihood evaluation.

``lf_method="auto"`` uses the exact GP up to ``exact_max`` points (default 2,000) and the
sparse one above; higher levels are always exact (they hold the few expensive points).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from pdesurrogates.errors import TrainingError
from pdesurrogates.io import register_model

__all__ = ["CoKrigingGP"]

_DT = torch.float64
_PRED_CHUNK = 1024


def _import_gpytorch():
    """Import gpytorch lazily (its import emits a torch.jit deprecation notice)."""
    global gpytorch
    if gpytorch is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            import gpytorch as _g
        gpytorch = _g
    return gpytorch


gpytorch = None  # set by _import_gpytorch()
_CLASSES: dict = {}


def _rbf(ard: int, active_dims=None, prior_ls: float = 0.3):
    base = gpytorch.kernels.RBFKernel(
        ard_num_dims=ard,
        active_dims=active_dims,
        lengthscale_constraint=gpytorch.constraints.Interval(1e-3, 1e4),
    )
    base.lengthscale = torch.full((1, ard), prior_ls)
    k = gpytorch.kernels.ScaleKernel(
        base, outputscale_constraint=gpytorch.constraints.Interval(1e-6, 1e7)
    )
    return k


def _gp_classes() -> dict:
    """The gpytorch subclasses, defined on first use."""
    if _CLASSES:
        return _CLASSES
    g = _import_gpytorch()

    class _LinearLinkMean(g.means.Mean):
        """``ρ · z[:, -1] + β`` (the AR(1) link on the lower level's value)."""

        def __init__(self, n_trend: int = 0) -> None:
            super().__init__()
            self.rho = nn.Parameter(torch.ones(1, dtype=_DT))
            self.beta = nn.Parameter(torch.zeros(1, dtype=_DT))
            self.n_trend = n_trend
            if n_trend:
                self.gamma = nn.Parameter(torch.zeros(n_trend, dtype=_DT))

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


def _likelihood(noise_floor: float):
    lik = gpytorch.likelihoods.GaussianLikelihood(
        noise_constraint=gpytorch.constraints.Interval(noise_floor, 1.0)
    )
    lik.noise = max(1e-6, 10 * noise_floor)
    return lik


def _is_nested(x_hi: np.ndarray, x_lo: np.ndarray, tol: float = 1e-10) -> np.ndarray | None:
    """Row indices of ``x_hi`` in ``x_lo`` (or None when some row is missing)."""
    idx = np.empty(len(x_hi), dtype=np.int64)
    for i, row in enumerate(x_hi):
        d = np.abs(x_lo - row).max(1)
        j = int(np.argmin(d))
        if d[j] > tol:
            return None
        idx[i] = j
    return idx


@register_model
class CoKrigingGP(nn.Module):
    """Recursive AR(1) co-kriging (or NARGP) with ARD kernels; ``predict`` → ``Prediction``.

    Parameters
    ----------
    in_dim : int
        Number of inputs d.
    n_levels : int
        Number of fidelity levels (>= 2).
    kind : {"ar1", "nargp"}
        Affine (Kennedy–O'Hagan) or nonlinear autoregressive link between levels.
    lf_method : {"auto", "exact", "sgpr"}
        GP of the lowest level: exact, or the inducing-point (SGPR) approximation for large
        low-fidelity sets. ``"auto"`` switches to SGPR above ``exact_max`` points.
    n_inducing : int
        Inducing points of the SGPR level (capped at the number of points).
    exact_max : int
        Largest lowest-level set fitted exactly under ``lf_method="auto"``.
    require_nested : bool
        Raise on non-nested designs (``True``) or use the lower level's posterior mean at
        the higher level's points (``False``).
    n_restarts : int
        Random restarts of the hyperparameter optimisation per exact level.
    noise_floor : float
        Lower bound of the noise variance in standardised units (1e-14: interpolation).
    n_mc : int
        Monte Carlo draws per point for NARGP predictions.
    trend : {"auto", "constant", "linear"}
        Regression part of the AR(1) link mean: ``ρ y_{k−1} + β`` (constant) or
        ``ρ y_{k−1} + β + γᵀx`` (linear, universal kriging of the discrepancy). ``"auto"``
        uses the linear trend when a level has more than ``in_dim + 2`` points.
    seed : int
        Seed of the restarts, the inducing-point initialisation and NARGP draws.
    n_train : list of int, optional
        Points per level; set by :meth:`fit` (used to rebuild a saved model).

    Examples
    --------
    >>> import numpy as np
    >>> from pdesurrogates.solvers.reference import forrester
    >>> p = forrester()
    >>> x_lo = np.linspace(0, 1, 11)[:, None]; x_hi = x_lo[[0, 4, 6, 10]]
    >>> gp = CoKrigingGP(n_restarts=2).fit(x_lo, p.low(x_lo), x_hi, p.high(x_hi))
    >>> x = np.linspace(0, 1, 200)[:, None]
    >>> pred = gp.predict(x)
    >>> bool(np.linalg.norm(pred.mean - p.high(x)) / np.linalg.norm(p.high(x)) < 0.05)
    True
    """

    def __init__(
        self,
        *,
        in_dim: int = 1,
        n_levels: int = 2,
        kind: str = "ar1",
        lf_method: str = "auto",
        n_inducing: int = 512,
        exact_max: int = 2000,
        require_nested: bool = True,
        n_restarts: int = 4,
        noise_floor: float = 1e-14,
        n_mc: int = 200,
        trend: str = "auto",
        seed: int = 0,
        n_train: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        _import_gpytorch()
        for name, val, lo in (
            ("in_dim", in_dim, 1),
            ("n_levels", n_levels, 2),
            ("n_inducing", n_inducing, 1),
            ("exact_max", exact_max, 1),
            ("n_restarts", n_restarts, 1),
            ("n_mc", n_mc, 2),
        ):
            if isinstance(val, bool) or not isinstance(val, int | np.integer) or val < lo:
                raise ValueError(f"{name} must be an integer >= {lo}; got {val!r}")
        if trend not in ("auto", "constant", "linear"):
            raise ValueError(f"trend must be 'auto', 'constant' or 'linear'; got {trend!r}")
        self.trend = trend
        if kind not in ("ar1", "nargp"):
            raise ValueError(f"kind must be 'ar1' or 'nargp'; got {kind!r}")
        if lf_method not in ("auto", "exact", "sgpr"):
            raise ValueError(f"lf_method must be 'auto', 'exact' or 'sgpr'; got {lf_method!r}")
        if not (0 < noise_floor < 1):
            raise ValueError(f"noise_floor must be in (0, 1); got {noise_floor!r}")
        self.in_dim, self.n_levels, self.kind = int(in_dim), int(n_levels), kind
        self.lf_method, self.n_inducing, self.exact_max = lf_method, int(n_inducing), int(exact_max)
        self.require_nested, self.n_restarts = bool(require_nested), int(n_restarts)
        self.noise_floor, self.n_mc, self.seed = float(noise_floor), int(n_mc), int(seed)
        self.n_train = None if n_train is None else [int(n) for n in n_train]
        self.levels = nn.ModuleList()
        self.register_buffer("x_lo", torch.zeros(self.in_dim, dtype=_DT))
        self.register_buffer("x_span", torch.ones(self.in_dim, dtype=_DT))
        self.register_buffer("y_mean", torch.zeros(self.n_levels, dtype=_DT))
        self.register_buffer("y_std", torch.ones(self.n_levels, dtype=_DT))
        self.fit_seconds: list[float] = []
        if self.n_train is not None:
            if len(self.n_train) != self.n_levels:
                raise ValueError(f"n_train must have {self.n_levels} entries; got {n_train}")
            self._build([torch.zeros(n, self.in_dim, dtype=_DT) for n in self.n_train])

    def get_config(self) -> dict:
        return {
            "in_dim": self.in_dim,
            "n_levels": self.n_levels,
            "kind": self.kind,
            "lf_method": self.lf_method,
            "n_inducing": self.n_inducing,
            "exact_max": self.exact_max,
            "require_nested": self.require_nested,
            "n_restarts": self.n_restarts,
            "noise_floor": self.noise_floor,
            "n_mc": self.n_mc,
            "trend": self.trend,
            "seed": self.seed,
            "n_train": self.n_train,
        }

    def to(self, *args, **kwargs):
        """Move to a device; the GP always computes in float64 (outputs follow the input dtype)."""
        device, _, _, _ = torch._C._nn._parse_to(*args, **kwargs)
        return self if device is None else super().to(device)

    # ------------------------------------------------------------------ structure
    @property
    def is_fitted(self) -> bool:
        return len(self.levels) == self.n_levels

    def _n_trend(self, n: int) -> int:
        """Inputs with a linear trend term in the AR(1) link mean (0 or in_dim)."""
        if self.trend == "linear" or (self.trend == "auto" and n > self.in_dim + 2):
            return self.in_dim
        return 0

    def _uses_sgpr(self, n0: int) -> bool:
        return self.lf_method == "sgpr" or (self.lf_method == "auto" and n0 > self.exact_max)

    def _level_kernel(self, k: int):
        d = self.in_dim
        if k == 0:
            return _rbf(d)
        xdims = tuple(range(d))
        if self.kind == "ar1":
            return _rbf(d, active_dims=xdims)
        k_y = gpytorch.kernels.RBFKernel(
            active_dims=(d,), lengthscale_constraint=gpytorch.constraints.Interval(1e-2, 1e3)
        )
        k_y.lengthscale = torch.ones(1, 1)
        k_x = _rbf(d, active_dims=xdims)
        k_delta = _rbf(d, active_dims=xdims)
        return gpytorch.kernels.ProductKernel(k_y, k_x) + k_delta

    def _build(self, xs: list[torch.Tensor]) -> None:
        """Create the level GPs and their data buffers for sizes ``len(xs[k])``."""
        self.levels = nn.ModuleList()
        d = self.in_dim
        for k, x in enumerate(xs):
            n = x.shape[0]
            lik = _likelihood(self.noise_floor)
            z = torch.zeros(n, d + (k > 0), dtype=_DT)
            y = torch.zeros(n, dtype=_DT)
            kernel = self._level_kernel(k)
            if k == 0:
                mean = gpytorch.means.ConstantMean()
                if self._uses_sgpr(n):
                    m = min(self.n_inducing, n)
                    kernel = gpytorch.kernels.InducingPointKernel(
                        kernel, inducing_points=torch.zeros(m, d, dtype=_DT), likelihood=lik
                    )
            elif self.kind == "ar1":
                mean = _gp_classes()["LinearLinkMean"](self._n_trend(x.shape[0]))
            else:
                mean = gpytorch.means.ConstantMean()
            gp = _gp_classes()["ExactLevel"](z, y, lik, mean, kernel).to(_DT)
            gp.register_buffer("z_train", z)
            gp.register_buffer("y_train", y)
            self.levels.append(gp)
        self.n_train = [int(x.shape[0]) for x in xs]

    # ------------------------------------------------------------------ fitting
    def fit(self, X_lo, y_lo, X_hi, y_hi, *, bounds=None, progress: bool = False):
        """Fit a two-level model; returns ``self``. See :meth:`fit_levels`."""
        if self.n_levels != 2:
            raise ValueError(
                f"fit(X_lo, y_lo, X_hi, y_hi) is for 2 levels; this model has {self.n_levels}: "
                "use fit_levels([X_0, X_1, ...], [y_0, y_1, ...])"
            )
        return self.fit_levels([X_lo, X_hi], [y_lo, y_hi], bounds=bounds, progress=progress)

    def fit_levels(self, xs: Sequence, ys: Sequence, *, bounds=None, progress: bool = False):
        """Fit every level, lowest fidelity first; returns ``self``.

        Parameters
        ----------
        xs : sequence of arrays ``(n_k, d)``
            Inputs per level (physical units), lowest fidelity first.
        ys : sequence of arrays ``(n_k,)``
            Outputs per level.
        bounds : array ``(d, 2)``, optional
            Input box: inputs are scaled to [0, 1] with it and must lie inside it. Default:
            the range of the data.
        progress : bool
            Print one line per fitted level.

        Raises
        ------
        ValueError
            On shape mismatches, NaN, points outside ``bounds``, too few points at a level
            (fewer than 2, or fewer than 3 at the highest level), or a non-nested design
            when ``require_nested=True``.
        """
        xs_np, ys_np, bounds = _check_levels(xs, ys, self.in_dim, self.n_levels, bounds)
        for k in range(1, self.n_levels):
            if self.require_nested and _is_nested(xs_np[k], xs_np[k - 1]) is None:
                raise ValueError(
                    f"level {k} inputs are not a subset of level {k - 1} inputs (non-nested "
                    "design); the recursive co-kriging needs nested designs. Add the missing "
                    "lower-fidelity runs, or pass require_nested=False to use the lower "
                    "level's posterior mean there (approximate)."
                )
        self.x_lo.copy_(torch.as_tensor(bounds[:, 0]))
        self.x_span.copy_(torch.as_tensor(bounds[:, 1] - bounds[:, 0]))
        for k, y in enumerate(ys_np):
            sd = float(np.std(y))
            self.y_mean[k] = float(np.mean(y))
            self.y_std[k] = sd if sd > 0 else 1.0
        xs_t = [self._scale_x(torch.as_tensor(x)) for x in xs_np]
        ys_t = [(torch.as_tensor(y) - self.y_mean[k]) / self.y_std[k] for k, y in enumerate(ys_np)]
        self._build(xs_t)
        gen = torch.Generator().manual_seed(self.seed)
        self.fit_seconds = []
        for k in range(self.n_levels):
            t0 = time.perf_counter()
            if k == 0:
                z = xs_t[0]
            else:
                idx = _is_nested(xs_np[k], xs_np[k - 1])
                if idx is not None:
                    col = ys_t[k - 1][idx]
                else:
                    with torch.no_grad():
                        col = self._predict_scaled(xs_t[k], k - 1)[0].detach()
                z = torch.cat([xs_t[k], col[:, None]], dim=1)
            gp = self.levels[k]
            gp.z_train.copy_(z)
            gp.y_train.copy_(ys_t[k])
            self._fit_level(k, gp.z_train, gp.y_train, gen)
            self.fit_seconds.append(time.perf_counter() - t0)
            if progress:
                from rich.console import Console

                Console(stderr=True).print(
                    f"co-kriging level {k}: n={len(ys_t[k])}, "
                    f"{'SGPR' if k == 0 and self._uses_sgpr(len(ys_t[0])) else 'exact'}, "
                    f"{self.fit_seconds[-1]:.1f} s"
                    + (f", rho={self.rho[k - 1]:.4g}" if k and self.kind == "ar1" else "")
                )
        self.eval()
        return self

    def _scale_x(self, x: torch.Tensor) -> torch.Tensor:
        return (x.to(_DT) - self.x_lo) / self.x_span

    def _init_hypers(self, k: int, gp, z, y, gen, restart: int) -> None:
        def rand(lo, hi, shape):
            u = torch.rand(shape, generator=gen, dtype=_DT)
            return torch.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))

        d = self.in_dim
        for mod in gp.covar_module.modules():
            if isinstance(mod, gpytorch.kernels.RBFKernel):
                shape = mod.lengthscale.shape
                if mod.active_dims is not None and len(mod.active_dims) == 1 and k > 0:
                    mod.lengthscale = rand(0.3, 3.0, shape) if restart else torch.ones(shape)
                else:
                    # restart 0: a short, 1: a long length scale; then log-uniform draws
                    if restart < 2:
                        mod.lengthscale = torch.full(shape, (0.3, 2.0)[restart] * math.sqrt(d))
                    else:
                        mod.lengthscale = rand(0.1 * math.sqrt(d), 2.0 * math.sqrt(d), shape)
            if isinstance(mod, gpytorch.kernels.ScaleKernel):
                mod.outputscale = rand(0.3, 3.0, ()) if restart > 1 else torch.tensor(1.0)
        gp.likelihood.noise = max(1e-6, 10 * self.noise_floor)
        if isinstance(gp.mean_module, _gp_classes()["LinearLinkMean"]):
            # least-squares start for rho and beta (then fitted jointly with the kernel)
            nt = gp.mean_module.n_trend
            a = torch.cat([z[:, -1:], torch.ones_like(y)[:, None], z[:, :nt]], 1)
            sol = torch.linalg.lstsq(a, y[:, None]).solution[:, 0]
            shrink = 1.0 if restart < 2 else 0.5
            with torch.no_grad():
                gp.mean_module.rho.fill_(float(sol[0]) * shrink)
                gp.mean_module.beta.fill_(float(sol[1]) if restart < 2 else 0.0)
                if nt:
                    gp.mean_module.gamma.copy_(sol[2:] if restart < 2 else torch.zeros(nt))
        elif isinstance(gp.mean_module, gpytorch.means.ConstantMean):
            with torch.no_grad():
                gp.mean_module.constant.fill_(float(y.mean()))

    def _fit_level(self, k: int, z: torch.Tensor, y: torch.Tensor, gen) -> None:
        gp = self.levels[k]
        gp.set_train_data(z, y, strict=False)
        sparse = isinstance(gp.covar_module, gpytorch.kernels.InducingPointKernel)
        if sparse:
            m = gp.covar_module.inducing_points.shape[0]
            perm = torch.randperm(z.shape[0], generator=gen)[:m]
            with torch.no_grad():
                gp.covar_module.inducing_points.copy_(z[perm])
        mll = gpytorch.mlls.ExactMarginalLogLikelihood(gp.likelihood, gp)
        best, best_state, last_error = -math.inf, None, None
        restarts = 1 if sparse else self.n_restarts
        for r in range(restarts):
            self._init_hypers(k, gp, z, y, gen, r)
            gp.train()
            try:
                with _gp_settings():
                    if sparse:
                        value = _adam(gp, mll, z, y, steps=150, lr=0.05)
                    else:
                        value = _lbfgs(gp, mll, z, y, steps=200)
            except (RuntimeError, ValueError, np.linalg.LinAlgError) as exc:
                last_error = exc
                continue
            if math.isfinite(value) and value > best:
                best = value
                best_state = {n: t.detach().clone() for n, t in gp.state_dict().items()}
        if best_state is None:
            raise TrainingError(
                f"co-kriging level {k}: every hyperparameter optimisation failed (the kernel "
                f"matrix stayed singular: {last_error}); check for duplicated points or raise "
                "noise_floor"
            )
        gp.load_state_dict(best_state)
        gp.eval()

    # ------------------------------------------------------------------ prediction
    @property
    def rho(self) -> list[float]:
        """Fitted ρ_k in physical units (AR(1) only), one per level above the lowest."""
        out = []
        for k in range(1, len(self.levels)):
            mean = self.levels[k].mean_module
            if isinstance(mean, _gp_classes()["LinearLinkMean"]):
                out.append(float(mean.rho.detach()) * float(self.y_std[k] / self.y_std[k - 1]))
        return out

    def _level_posterior(self, k: int, z: torch.Tensor):
        gp = self.levels[k]
        if gp.train_inputs[0] is not gp.z_train or gp.train_targets is not gp.y_train:
            gp.set_train_data(gp.z_train, gp.y_train, strict=False)
        gp.eval()
        means, variances = [], []
        with _gp_settings():
            # chunks keep the (lazy) test covariance small: memory O(chunk² + chunk · n)
            for zc in torch.split(z, _PRED_CHUNK):
                f = gp(zc)
                means.append(f.mean)
                variances.append(f.variance.clamp_min(0.0))
        return torch.cat(means), torch.cat(variances)

    def _predict_scaled(self, xs: torch.Tensor, upto: int):
        """Mean and variance of level ``upto`` in its standardised units."""
        mean, var = self._level_posterior(0, xs)
        gen = torch.Generator().manual_seed(self.seed + 1)
        for k in range(1, upto + 1):
            lower_mean, lower_var = mean, var
            if self.kind == "ar1":
                dm, dv = self._level_posterior(k, torch.cat([xs, lower_mean[:, None]], 1))
                rho = self.levels[k].mean_module.rho
                mean, var = dm, rho.square() * lower_var + dv
            else:
                s = self.n_mc
                eps = torch.randn(s, xs.shape[0], generator=gen, dtype=_DT)
                draws = lower_mean + lower_var.sqrt() * eps
                z = torch.cat([xs.expand(s, -1, -1), draws[..., None]], dim=-1).reshape(
                    s * xs.shape[0], -1
                )
                dm, dv = self._level_posterior(k, z)
                dm = dm.reshape(s, -1)
                dv = dv.reshape(s, -1)
                mean = dm.mean(0)
                var = dv.mean(0) + dm.var(0)
        return mean, var

    def _check_x(self, x) -> torch.Tensor:
        if not self.is_fitted:
            raise ValueError("this CoKrigingGP is not fitted; call fit(...) first")
        xt = torch.as_tensor(np.asarray(x, dtype=np.float64)) if not torch.is_tensor(x) else x
        xt = xt.detach().to(_DT)
        if xt.ndim == 1 and self.in_dim == 1:
            xt = xt[:, None]
        if xt.ndim != 2 or xt.shape[1] != self.in_dim:
            raise ValueError(f"X must have shape (n, {self.in_dim}); got {tuple(xt.shape)}")
        if not torch.isfinite(xt).all():
            raise ValueError("X contains NaN or infinite values")
        return xt

    def predict(self, X, *, level: int | None = None):
        """Predictive mean and standard deviation at ``X`` ``(n, d)``.

        Returns
        -------
        pdesurrogates.uq.Prediction
            Gaussian prediction, numpy arrays of shape ``(n,)`` in the output's units.
        """
        from pdesurrogates.uq import Prediction

        xt = self._check_x(X)
        k = self.n_levels - 1 if level is None else level % self.n_levels
        with torch.no_grad():
            mean, var = self._predict_scaled(self._scale_x(xt), k)
        mean = mean * self.y_std[k] + self.y_mean[k]
        std = var.sqrt() * self.y_std[k]
        return Prediction(mean.numpy(), std=std.numpy())

    def variance_contributions(self, X) -> np.ndarray:
        """Share of each level in the predictive variance of the highest level (AR(1)).

        ``var_top(x) = Σ_l (Π_{j>l} ρ_j²) · v_l(x)`` where ``v_0`` is the lowest level's
        posterior variance and ``v_l`` that of the discrepancy δ_l.

        Returns
        -------
        ndarray, shape (n_levels, n)
            Contributions in squared output units; they sum to ``predict(X).std ** 2``.
        """
        if self.kind != "ar1":
            raise ValueError("variance_contributions is defined for kind='ar1' only")
        xs = self._scale_x(self._check_x(X))
        with torch.no_grad():
            mean, var = self._level_posterior(0, xs)
            parts = [var]
            for k in range(1, self.n_levels):
                dm, dv = self._level_posterior(k, torch.cat([xs, mean[:, None]], 1))
                rho2 = self.levels[k].mean_module.rho.square()
                parts = [c * rho2 for c in parts] + [dv]
                mean = dm
        return (torch.stack(parts) * self.y_std[-1] ** 2).numpy()

    def posterior_covariance(self, X) -> np.ndarray:
        """Joint posterior covariance ``(n, n)`` of the highest level at ``X`` (AR(1))."""
        if self.kind != "ar1":
            raise ValueError("posterior_covariance is defined for kind='ar1' only")
        xs = self._scale_x(self._check_x(X))
        with torch.no_grad(), _gp_settings():
            gp = self.levels[0]
            self._level_posterior(0, xs[:1])  # make sure the training data are attached
            f = gp(xs)
            mean, cov = f.mean, f.covariance_matrix
            for k in range(1, self.n_levels):
                gp = self.levels[k]
                self._level_posterior(k, torch.cat([xs[:1], mean[:1, None]], 1))
                f = gp(torch.cat([xs, mean[:, None]], 1))
                rho2 = gp.mean_module.rho.square()
                mean, cov = f.mean, rho2 * cov + f.covariance_matrix
        return (cov * self.y_std[-1] ** 2).numpy()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior mean of the highest level at ``x`` ``(n, d)``, shape ``(n,)``."""
        if not self.is_fitted:
            raise ValueError("this CoKrigingGP is not fitted; call fit(...) first")
        mean, _ = self._predict_scaled(self._scale_x(x), self.n_levels - 1)
        return (mean * self.y_std[-1] + self.y_mean[-1]).to(x.dtype)


# ---------------------------------------------------------------------- helpers


class _gp_settings:
    """Exact Cholesky solves in float64, tiny jitter, and gpytorch's notices silenced."""

    def __enter__(self):
        self._stack = [
            gpytorch.settings.max_cholesky_size(10**6),
            gpytorch.settings.cholesky_jitter(float_value=1e-6, double_value=1e-10),
            gpytorch.settings.fast_pred_var(False),
            gpytorch.settings.cholesky_max_tries(6),
            gpytorch.settings.detach_test_caches(False),
        ]
        for s in self._stack:
            s.__enter__()
        self._warn = warnings.catch_warnings()
        self._warn.__enter__()
        warnings.simplefilter("ignore", gpytorch.utils.warnings.NumericalWarning)
        warnings.simplefilter("ignore", gpytorch.utils.warnings.GPInputWarning)
        return self

    def __exit__(self, *exc):
        self._warn.__exit__(*exc)
        for s in reversed(self._stack):
            s.__exit__(*exc)
        return False


def _lbfgs(gp, mll, z, y, steps: int) -> float:
    params = [p for p in gp.parameters() if p.requires_grad]
    opt = torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=steps,
        max_eval=2 * steps,
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
        history_size=30,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = -mll(gp(z), y)
        if torch.isfinite(loss):
            loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float(mll(gp(z), y))


def _adam(gp, mll, z, y, steps: int, lr: float) -> float:
    opt = torch.optim.Adam([p for p in gp.parameters() if p.requires_grad], lr=lr)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = -mll(gp(z), y)
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(mll(gp(z), y))


def _check_levels(xs, ys, in_dim: int, n_levels: int, bounds):
    if not isinstance(xs, list | tuple) or not isinstance(ys, list | tuple):
        raise ValueError("xs and ys must be lists with one array per level, lowest fidelity first")
    if len(xs) != n_levels or len(ys) != n_levels:
        raise ValueError(
            f"expected {n_levels} levels of data; got {len(xs)} input and {len(ys)} output arrays"
        )
    xs_np, ys_np = [], []
    for k, (x, y) in enumerate(zip(xs, ys, strict=True)):
        x = np.asarray(x.detach().cpu() if torch.is_tensor(x) else x, dtype=np.float64)
        y = np.asarray(y.detach().cpu() if torch.is_tensor(y) else y, dtype=np.float64)
        if x.ndim == 1 and in_dim == 1:
            x = x[:, None]
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if x.ndim != 2 or x.shape[1] != in_dim:
            raise ValueError(f"X of level {k} must have shape (n, {in_dim}); got {x.shape}")
        if y.ndim != 1 or len(y) != len(x):
            raise ValueError(
                f"y of level {k} must have shape ({len(x)},) to match its X; got {y.shape}"
            )
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ValueError(f"level {k} data contain NaN or infinite values; remove them")
        need = 3 if k == n_levels - 1 else 2
        if len(x) < need:
            raise ValueError(
                f"level {k} has {len(x)} point(s); co-kriging needs at least {need} there"
            )
        xs_np.append(x)
        ys_np.append(y)
    allx = np.concatenate(xs_np)
    if bounds is None:
        lo, hi = allx.min(0), allx.max(0)
        hi = np.where(hi > lo, hi, lo + 1.0)
        bounds = np.stack([lo, hi], 1)
    else:
        bounds = np.asarray(bounds, dtype=np.float64)
        if bounds.shape != (in_dim, 2) or not np.all(bounds[:, 1] > bounds[:, 0]):
            raise ValueError(f"bounds must have shape ({in_dim}, 2) with lower < upper")
        span = bounds[:, 1] - bounds[:, 0]
        bad = (allx < bounds[:, 0] - 1e-9 * span) | (allx > bounds[:, 1] + 1e-9 * span)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise ValueError(
                f"training input {allx[i, j]:g} (input {j}) is outside the declared bounds "
                f"[{bounds[j, 0]:g}, {bounds[j, 1]:g}]"
            )
    return xs_np, ys_np, bounds
