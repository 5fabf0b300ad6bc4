"""Multi-fidelity Gaussian processes (co-kriging) on gpytorch.

:class:`CoKrigingGP` is the recursive Kennedy–O'Hagan AR(1) model of Le Gratiet (2014),
one GP per level, lowest fidelity first::

    y_0(x) = GP_0(x)
    y_k(x) = ρ_k · y_{k−1}(x) + β_k + δ_k(x),      δ_k ~ GP(0, k_δ)

Level ``k`` is an exact GP on the inputs ``[x, y_{k−1}]`` whose mean is
``ρ_k · y_{k−1} + β_k``; ρ_k and β_k are parameters fitted **jointly** with δ_k's kernel
hyperparameters by maximising the exact marginal likelihood (profiling ρ by ordinary least
squares first is badly biased on sparse designs), or the centred link ``m + ρ_k (y_{k−1} − m)``
where its evidence is higher (:mod:`._cokriging_centre`). With nested designs (every level-k
point is also a level-(k−1) point) ``y_{k−1}`` at the training points is the observed
lower-level value and the recursion is exact; otherwise the lower level's posterior mean is
used there (Forrester 2007), which is approximate — pass ``require_nested=False`` for it.

Prediction: mean_k = ρ_k mean_{k−1} + β_k + E[δ_k], var_k = ρ_k² var_{k−1} + var[δ_k].

``kind="nargp"`` replaces the affine link by the nonlinear autoregressive GP of Perdikaris
et al. (2017): level k is a GP on ``[x, y_{k−1}]`` with kernel
``k_y(y, y') k_x(x, x') + k_δ(x, x')`` (ARD squared exponentials); predictions integrate
over the lower level's marginal posterior by Monte Carlo (``n_mc`` draws per point).

Kernels: ARD squared exponentials on inputs scaled to [0, 1]; outputs standardised per level.

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

Layout: level models in :mod:`._cokriging_gp`, the recursive fit in :mod:`._cokriging_fit`,
optimisers in :mod:`._cokriging_optim`, the centred link in :mod:`._cokriging_centre`; here
the model (structure, prediction).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from pdesurrogates.io import register_model
from pdesurrogates.surrogates import _cokriging_fit as _fit
from pdesurrogates.surrogates._cokriging_gp import (
    DTYPE as _DT,
)
from pdesurrogates.surrogates._cokriging_gp import (
    ExactPosterior,
    gp_classes,
    gp_settings,
    holdout_residuals,
    import_gpytorch,
    level_kernel,
    likelihood,
    loo_residuals,
)
from pdesurrogates.surrogates._cokriging_kernels import build_level, check_kernel, screen_pairs
from pdesurrogates.surrogates._limits import MAX_LEVELS, check_at_most
from pdesurrogates.surrogates._mf_checks import check_inputs, check_level

__all__ = ["CoKrigingGP"]

_PRED_CHUNK = 1024
_import_gpytorch = import_gpytorch  # historical name, used by benchmarks

#: Largest number of Monte Carlo draws per point of a NARGP prediction.
MAX_MC = 10**6


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
        Starts of the hyperparameter fit per exact level (doubled at NARGP's upper levels).
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
    kernel : {"auto", "rbf", "additive", "anova2"}
        Kernel on the inputs (:mod:`._cokriging_kernels`): ARD RBF, additive, or additive
        plus the input pairs screened from the lowest-fidelity data (second-order ANOVA;
        sparse, inducing points per component, at the lowest level). ``"auto"``:
        ``"anova2"`` above 10 inputs, ``"rbf"`` otherwise.
    pairs : list of (i, j), optional
        Pairs of the ANOVA kernel; set by :meth:`fit` (used to rebuild a saved model).
    var_scale : list of float, optional
        Per level, the factor on its posterior variance: the leave-one-out ratio of
        squared errors to predicted variances of the fitted exact level, at least 1
        (:func:`~._cokriging_gp.loo_variance_ratio`; 1 for sparse levels); set by
        :meth:`fit`. With a dozen points the likelihood's output scale is often too small
        and the 90 % intervals covered 63–70 % of test points.
    n_train : list of int, optional
        Points per level; set by :meth:`fit` (used to rebuild a saved model).
    quadratic : list of bool, optional
        Per level, whether its NARGP link mean has the quadratic terms; set by :meth:`fit`.
    linear_trend : list of bool, optional
        Per level, whether its link mean has the linear trend; set by :meth:`fit`.
    fixed_mean : list of bool, optional
        Per level, whether its constant mean is fixed at the outputs' mode; set by :meth:`fit`.
    centred : list of bool, optional
        Per level, whether its AR(1) link is centred (:mod:`._cokriging_centre`); set by fit.
    bounds_declared : bool
        Whether :meth:`fit` was given ``bounds``; set by fit. Then inputs outside them
        (to ``predict``, ``forward``, ...) get a ``UserWarning`` naming the dimension.

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
        quadratic: Sequence[bool] | None = None,
        linear_trend: Sequence[bool] | None = None,
        fixed_mean: Sequence[bool] | None = None,
        centred: Sequence[bool] | None = None,
        kernel: str = "auto",
        pairs: Sequence | None = None,
        var_scale: Sequence[float] | None = None,
        bounds_declared: bool = False,
    ) -> None:
        super().__init__()
        import_gpytorch()
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
        check_at_most("CoKrigingGP", "n_levels", n_levels, MAX_LEVELS)
        check_at_most("CoKrigingGP", "n_mc", n_mc, MAX_MC)
        if n_train is not None:
            n_train = _fit.check_n_train(n_train)
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
        self.n_train = n_train
        self.quadratic = _fit.level_flags("quadratic", quadratic, self.n_levels)
        self.linear_trend = _fit.level_flags("linear_trend", linear_trend, self.n_levels)
        self.fixed_mean = _fit.level_flags("fixed_mean", fixed_mean, self.n_levels)
        self.centred = _fit.level_flags("centred", centred, self.n_levels)
        self.kernel, self.pairs = kernel, check_kernel(kernel, pairs)
        self.bounds_declared = bool(bounds_declared)
        self.var_scale = [1.0] * self.n_levels
        if var_scale is not None:
            vs = [float(v) for v in var_scale]
            if len(vs) != self.n_levels or not all(np.isfinite(v) and v > 0 for v in vs):
                raise ValueError(
                    f"var_scale must be {self.n_levels} positive numbers; got {var_scale!r}"
                )
            self.var_scale = vs
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

    @classmethod
    def estimate_parameters(cls, config: dict) -> int:
        """An upper bound of the state-dict elements of ``cls(**config)``, without
        building it (gpytorch modules cannot be built on the meta device)."""
        d = int(config.get("in_dim", 1))
        n_levels = int(config.get("n_levels", 2))
        total = 2 * d + 2 * n_levels
        n_train = config.get("n_train")
        if n_train is None:
            return total
        n_train = _fit.check_n_train(n_train)
        n_inducing = int(config.get("n_inducing", 512))
        total += sum(n * (d + 2) + 8 * (d + 2) + 32 for n in n_train)
        return total + min(n_inducing, n_train[0] if n_train else 0) * d

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
            "quadratic": self.quadratic,
            "linear_trend": self.linear_trend,
            "fixed_mean": self.fixed_mean,
            "centred": self.centred,
            "kernel": self.kernel,
            "pairs": None if self.pairs is None else [list(p) for p in self.pairs],
            "var_scale": list(self.var_scale),
            "bounds_declared": self.bounds_declared,
        }

    def to(self, *args, **kwargs):
        """Move to a device; the GP always computes in float64 (outputs follow the input dtype)."""
        device, _, _, _ = torch._C._nn._parse_to(*args, **kwargs)
        return self if device is None else super().to(device)

    # ------------------------------------------------------------------ structure
    @property
    def is_fitted(self) -> bool:
        return len(self.levels) == self.n_levels

    def _n_trend(self, n: int, k: int | None = None) -> int:
        """Inputs with a linear trend term in the link mean of level ``k`` (0 or in_dim)."""
        if k is not None and self.linear_trend is not None:
            return self.in_dim if self.linear_trend[k] else 0
        if self.trend == "linear" or (self.trend == "auto" and n > self.in_dim + 2):
            return self.in_dim
        return 0

    def _uses_sgpr(self, n0: int) -> bool:
        return self.lf_method == "sgpr" or (self.lf_method == "auto" and n0 > self.exact_max)

    def can_be_quadratic(self, k: int, n: int) -> bool:
        """Whether NARGP level ``k`` with ``n`` points may take the quadratic link mean."""
        return self.kind == "nargp" and k > 0 and n > 2 * self.in_dim + 4

    def make_level(self, k: int, n: int, quadratic: bool = False):
        """A new (unfitted) GP of level ``k`` with ``n`` points and its data buffers."""
        g = import_gpytorch()
        d = self.in_dim
        lik = likelihood(self.noise_floor)
        z = torch.zeros(n, d + (k > 0), dtype=_DT)
        y = torch.zeros(n, dtype=_DT)
        kernel = level_kernel(k, d, self.kind)
        if k == 0:
            mean = g.means.ConstantMean()
            if self._uses_sgpr(n):
                m = min(self.n_inducing, n)
                kernel = g.kernels.InducingPointKernel(
                    kernel, inducing_points=torch.zeros(m, d, dtype=_DT), likelihood=lik
                )
        elif self.centred and self.centred[k]:
            mean = gp_classes()["CentredLinkMean"]()
        else:
            mean = gp_classes()["LinearLinkMean"](self._n_trend(n, k), quadratic=quadratic)
        custom = build_level(self, k, z, y, lik, mean)  # additive/ANOVA kernel, or None
        if custom is not None:
            return custom
        gp = gp_classes()["ExactLevel"](z, y, lik, mean, kernel).to(_DT)
        gp.register_buffer("z_train", z)
        gp.register_buffer("y_train", y)
        gp.fixed_mean = bool(self.fixed_mean and self.fixed_mean[k])  # see mean_basis
        return gp

    def _build(self, xs: list[torch.Tensor]) -> None:
        """Create the level GPs and their data buffers for sizes ``len(xs[k])``."""
        quad = self.quadratic or [False] * len(xs)
        self.fixed_mean = [bool(f) for f in (self.fixed_mean or [False] * len(xs))]
        self.centred = [bool(c) for c in (self.centred or [False] * len(xs))]
        self.levels = nn.ModuleList(
            self.make_level(k, x.shape[0], bool(quad[k])) for k, x in enumerate(xs)
        )
        self.n_train = [int(x.shape[0]) for x in xs]
        self.quadratic = [bool(q) for q in quad]
        self.linear_trend = [
            k > 0 and not self.centred[k] and self._n_trend(len(x), k) > 0 for k, x in enumerate(xs)
        ]

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        X_lo,
        y_lo,
        X_hi,
        y_hi,
        *,
        bounds=None,
        progress: bool = False,
        max_time: float | None = None,
    ):
        """Fit a two-level model; returns ``self``. See :meth:`fit_levels`."""
        if self.n_levels != 2:
            raise ValueError(
                f"fit(X_lo, y_lo, X_hi, y_hi) is for 2 levels; this model has {self.n_levels}: "
                "use fit_levels([X_0, X_1, ...], [y_0, y_1, ...])"
            )
        return self.fit_levels(
            [X_lo, X_hi], [y_lo, y_hi], bounds=bounds, progress=progress, max_time=max_time
        )

    def fit_levels(
        self,
        xs: Sequence,
        ys: Sequence,
        *,
        bounds=None,
        progress: bool = False,
        max_time: float | None = None,
    ):
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
            Show a progress bar over the optimisation starts of every level (one line per
            fitted level also goes to the ``pdesurrogates`` logger).
        max_time : float, optional
            Wall-clock budget (s). Once spent, no further restarts are tried (every level
            is still fitted from at least one start) and the sparse level's Adam stops.

        Raises
        ------
        ValueError
            On shape mismatches, NaN, points outside ``bounds``, too few points at a level
            (fewer than 2, or fewer than 3 at the highest level), or a non-nested design
            when ``require_nested=True``.
        """
        bounds_in = bounds
        xs_np, ys_np, bounds = _fit.check_levels(xs, ys, self.in_dim, self.n_levels, bounds)
        for k in range(1, self.n_levels):
            if self.require_nested and _fit.nested_index(xs_np[k], xs_np[k - 1]) is None:
                raise ValueError(
                    f"level {k} inputs are not a subset of level {k - 1} inputs (non-nested "
                    "design); the recursive co-kriging needs nested designs. Add the missing "
                    "lower-fidelity runs, or pass require_nested=False to use the lower "
                    "level's posterior mean there (approximate)."
                )
        self.bounds_declared = bounds_in is not None
        self.x_lo.copy_(torch.as_tensor(bounds[:, 0]))
        self.x_span.copy_(torch.as_tensor(bounds[:, 1] - bounds[:, 0]))
        for k, y in enumerate(ys_np):
            sd = float(np.std(y))
            self.y_mean[k] = float(np.mean(y))
            self.y_std[k] = sd if sd > 0 else 1.0
        xs_t = [self._scale_x(torch.as_tensor(x)) for x in xs_np]
        ys_t = [(torch.as_tensor(y) - self.y_mean[k]) / self.y_std[k] for k, y in enumerate(ys_np)]
        self.quadratic = self.linear_trend = self.fixed_mean = self.centred = None
        self.var_scale = [1.0] * self.n_levels
        self.pairs = screen_pairs(self, xs_np[0], ys_np[0], bounds)  # ANOVA kernel's pairs
        self._build(xs_t)
        _fit.fit_recursive(self, xs_np, ys_t, xs_t, progress=progress, max_time=max_time)
        self.eval()
        return self

    def _scale_x(self, x: torch.Tensor) -> torch.Tensor:
        return (x.to(_DT) - self.x_lo) / self.x_span

    # ------------------------------------------------------------------ prediction
    @property
    def rho(self) -> list[float]:
        """Fitted ρ_k in physical units (AR(1) only), one per level above the lowest."""
        out = []
        for k in range(1, len(self.levels)):
            mean = self.levels[k].mean_module
            if isinstance(mean, gp_classes()["LinearLinkMean"]):
                out.append(float(mean.rho.detach()) * float(self.y_std[k] / self.y_std[k - 1]))
        return out

    def _level_posterior(self, k: int, z: torch.Tensor):
        gp = self.levels[k]
        if gp.train_inputs[0] is not gp.z_train or gp.train_targets is not gp.y_train:
            gp.set_train_data(gp.z_train, gp.y_train, strict=False)
        gp.eval()
        if hasattr(gp, "fit_level"):  # additive/ANOVA sparse level: its own posterior
            f = gp(z)
            return f.mean, f.variance
        sparse = isinstance(gp.covar_module, import_gpytorch().kernels.InducingPointKernel)
        if not (sparse or torch.is_grad_enabled()):  # gpytorch's own path keeps autograd
            return ExactPosterior(gp)(z)
        means, variances = [], []
        with gp_settings():
            # chunks keep the (lazy) test covariance small: memory O(chunk² + chunk · n)
            for zc in torch.split(z, _PRED_CHUNK):
                f = gp(zc)
                means.append(f.mean)
                variances.append(f.variance.clamp_min(0.0))
        return torch.cat(means), torch.cat(variances)

    def _predict_scaled(self, xs: torch.Tensor, upto: int, calibrated: bool = False):
        """Mean and variance of level ``upto`` in its standardised units (``calibrated``:
        with the cross-validation factors :attr:`var_scale`)."""
        mean, var = self._level_posterior(0, xs)
        gen = torch.Generator().manual_seed(self.seed + 1)
        # calibrated variance (var_scale) of every level; NARGP's draws use the fitted one
        cal = var * self.var_scale[0]
        for k in range(1, upto + 1):
            lower_mean, lower_var = mean, var
            if self.kind == "ar1":
                dm, dv = self._level_posterior(k, torch.cat([xs, lower_mean[:, None]], 1))
                rho = self.levels[k].mean_module.rho
                mean, var = dm, rho.square() * lower_var + dv
                cal = rho.square() * cal + self.var_scale[k] * dv
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
                # the spread of dm scales with the lower level's variance (linearised)
                ratio = (cal / lower_var.clamp_min(1e-300)).clamp(1.0, 100.0)
                cal = self.var_scale[k] * dv.mean(0) + ratio * dm.var(0)
        return mean, (cal if calibrated else var)

    def input_box(self) -> np.ndarray:
        """The input box ``(d, 2)`` of the fit: its ``bounds``, or the data's range."""
        return torch.stack([self.x_lo, self.x_lo + self.x_span], 1).numpy()

    def predict(self, X, *, level: int | None = None):
        """Predictive mean and standard deviation at ``X`` ``(n, d)`` of the highest level
        (or of ``level``: 0 the lowest, -1 the highest; others raise ``ValueError``).

        Returns
        -------
        pdesurrogates.uq.Prediction
            Gaussian prediction, numpy arrays of shape ``(n,)`` in the output's units.
        """
        from pdesurrogates.uq import Prediction

        xt = check_inputs(self, X)
        k = check_level(level, self.n_levels)
        with torch.no_grad():
            mean, var = self._predict_scaled(self._scale_x(xt), k, calibrated=True)
        mean = mean * self.y_std[k] + self.y_mean[k]
        std = var.sqrt() * self.y_std[k]
        return Prediction(mean.numpy(), std=std.numpy())

    def cv_error(self, folds=None, *, all_levels: bool = False) -> float:
        """Cross-validated error of the highest level on its own points, in closed form.

        Leave-one-out (or leave-``folds``-out, a list of index arrays) residuals
        (:meth:`cv_residuals`) of the highest level, their RMS divided by the standard
        deviation of the highest-fidelity outputs (0 = exact, 1 = no better than their
        mean).
        """
        e = self.cv_residuals(folds, all_levels=all_levels)
        return float(e.square().mean().sqrt())

    def cv_residuals(self, folds=None, *, all_levels: bool = False) -> torch.Tensor:
        """Held-out residuals of the highest level at its points (standardised units).

        Kernel hyperparameters stay as fitted; the link coefficients are re-fitted by
        generalised least squares without the left-out points (no refit, closed form:
        :func:`~._cokriging_gp.loo_residuals`, :func:`~._cokriging_gp.holdout_mean`).
        ``folds``: index arrays of the highest level's points (default: one per point).

        ``all_levels=False``: the lower levels stay as fitted, so the held-out point's
        lower-fidelity value is the observed one (nested design): the error of the top
        link alone. ``all_levels=True``: the fold's inputs are also removed from every
        lower level that has them, and the top level is evaluated at the lower levels'
        held-out predictions, as at a new input: the link's error plus the propagated
        low-fidelity emulation error (sparse or additive levels fall back to
        ``all_levels=False``).
        """
        if not self.is_fitted:
            raise ValueError("this CoKrigingGP is not fitted; call fit(...) first")
        top = self.levels[-1]
        exact = all(
            not hasattr(gp, "fit_level")
            and not isinstance(gp.covar_module, import_gpytorch().kernels.InducingPointKernel)
            for gp in self.levels
        )
        if not (all_levels and exact):
            return loo_residuals(top, folds)
        return holdout_residuals(self.levels, self.in_dim, folds)

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
        xs = self._scale_x(check_inputs(self, X))
        with torch.no_grad():
            mean, var = self._level_posterior(0, xs)
            parts = [var * self.var_scale[0]]
            for k in range(1, self.n_levels):
                dm, dv = self._level_posterior(k, torch.cat([xs, mean[:, None]], 1))
                rho2 = self.levels[k].mean_module.rho.square()
                parts = [c * rho2 for c in parts] + [dv * self.var_scale[k]]
                mean = dm
        return (torch.stack(parts) * self.y_std[-1] ** 2).numpy()

    def posterior_covariance(self, X) -> np.ndarray:
        """Joint posterior covariance ``(n, n)`` of the highest level at ``X`` (AR(1))."""
        if self.kind != "ar1":
            raise ValueError("posterior_covariance is defined for kind='ar1' only")
        xs = self._scale_x(check_inputs(self, X))
        with torch.no_grad(), gp_settings():
            gp = self.levels[0]
            self._level_posterior(0, xs[:1])  # make sure the training data are attached
            f = gp(xs)
            mean, cov = f.mean, f.covariance_matrix * self.var_scale[0]
            for k in range(1, self.n_levels):
                gp = self.levels[k]
                self._level_posterior(k, torch.cat([xs[:1], mean[:1, None]], 1))
                f = gp(torch.cat([xs, mean[:, None]], 1))
                rho2 = gp.mean_module.rho.square()
                mean, cov = f.mean, rho2 * cov + self.var_scale[k] * f.covariance_matrix
        return (cov * self.y_std[-1] ** 2).numpy()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior mean of the highest level at ``x`` ``(n, d)``, shape ``(n,)``."""
        xs = self._scale_x(check_inputs(self, x, keep_grad=True))
        mean, _ = self._predict_scaled(xs, self.n_levels - 1)
        return (mean * self.y_std[-1] + self.y_mean[-1]).to(x.dtype)
