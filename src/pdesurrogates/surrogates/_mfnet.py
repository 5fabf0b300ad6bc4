"""Multi-fidelity neural network (Meng & Karniadakis, J. Comput. Phys. 401, 2020).

The lowest level is a plain MLP ``NN_L(x)``. Each higher level ``k`` is a correction of the
level below, taking ``z = [x, y_{k-1}(x)]``::

    y_k(x) = linear_k(z) + nonlinear_k(z)

where ``linear_k`` is one affine layer (the linear correlation, as in AR(1) co-kriging) and
``nonlinear_k`` a small tanh MLP (the nonlinear correlation), whose weights carry an L2
penalty so that it explains only what the linear part cannot. Optionally (``linear_l2``)
the linear part's weights on ``x`` (not the one on ``y_{k-1}``) carry a penalty too: with
few high-fidelity points in many inputs an unpenalised linear part fits the data through
``x`` and ignores the lower level. :func:`fit_multifidelity_net` tries each λ with the
linear part free and penalised, and keeps the better on held-out points (100-D quartic
pair, 500/50 points: relative L2 0.20 without the linear penalty, 0.093 with).

Inputs ``x`` and the lower level's output are min–max scaled to [−1, 1]; outputs are scaled
likewise. The scalings are buffers, fixed by :meth:`MultiFidelityNet.fit` from the training
data (or bounds).

Training (:meth:`MultiFidelityNet.fit`) minimises
``Σ_k MSE_k + λ Σ‖W_nonlinear‖²`` in scaled units, level by level (each level with the
levels below it frozen) and then jointly, each stage with Adam followed by L-BFGS.

One net is sensitive to its initialisation (one seed in three can land in a bad minimum on
a four-point design). :func:`fit_multifidelity_net` therefore trains several members and
keeps the ones that pass a validation criterion that never sees test data: a held-out part
of the highest-fidelity data when there is enough of it (on which the top correction's L2
weight is also chosen from a grid), otherwise agreement with the other members on
unlabelled probe points. The kept members form an
:class:`~pdesurrogates.surrogates.Ensemble` (mean and spread).

In many dimensions NN_L is the bottleneck: an MLP memorises a few thousand low-fidelity
points in 32 or 100 inputs and generalises worse than a constant. NN_L can therefore also
be a first-order ANOVA (additive) net, an additive net plus an MLP, or an additive net plus
two-input nets on the interacting input pairs that
:func:`~pdesurrogates.surrogates.screen_interactions` finds in the low-fidelity data (a
second-order ANOVA on the active pairs only). The ANOVA forms start from a least-squares
solve for their output weights given the random hidden units, which gradient training then
refines. With ``low_arch="auto"`` the form is chosen by NN_L's error on a held-out slice of
the low-fidelity data, and ``low_holdout`` early-stops NN_L on that slice.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from pdesurrogates.errors import TrainingError
from pdesurrogates.io import register_model
from pdesurrogates.surrogates._interactions import screen_interactions

__all__ = ["MultiFidelityFit", "MultiFidelityNet", "fit_multifidelity_net"]


class _Sin(nn.Module):
    """``sin(x)``: smooth, band-limited hidden units (interpolate sparse data far better)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)


_ACTIVATIONS = {"sin": _Sin, "tanh": nn.Tanh, "silu": nn.SiLU, "gelu": nn.GELU}
_LOW_ARCHS = ("mlp", "additive", "additive+mlp", "additive+pairs")
_DEFAULT_L2 = 1e-5


def _mlp(in_dim: int, width: int, depth: int, out_dim: int, act: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    d = in_dim
    for _ in range(depth):
        layers += [nn.Linear(d, width), _ACTIVATIONS[act]()]
        d = width
    layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)


def _xavier_(module: nn.Module, generator: torch.Generator) -> None:
    """Xavier-normal weights, zero biases, drawn from ``generator`` (additive branches too)."""
    for m in module.modules():
        if isinstance(m, _Additive | _Pairs):
            m.reset_(generator)
        if isinstance(m, nn.Linear):
            fan_in, fan_out = m.weight.shape[1], m.weight.shape[0]
            std = math.sqrt(2.0 / (fan_in + fan_out))
            with torch.no_grad():
                m.weight.copy_(
                    torch.randn(m.weight.shape, generator=generator, dtype=m.weight.dtype) * std
                )
                m.bias.zero_()


class _Additive(nn.Module):
    """First-order ANOVA branch ``Σ_i g_i(x_i)``: one small univariate net per input.

    ``g_i(t) = Σ_k c_ik tanh(a_ik t + b_ik)`` with ``units`` hidden units per input, all inputs
    evaluated at once (``(n, d, units)`` tensor). In many dimensions this generalises from a
    few thousand points far better than an MLP on the full input, which memorises them.
    """

    def __init__(self, in_dim: int, units: int) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.ones(in_dim, units))
        self.b = nn.Parameter(torch.zeros(in_dim, units))
        self.c = nn.Parameter(torch.zeros(in_dim, units))
        self.bias = nn.Parameter(torch.zeros(1))

    def reset_(self, generator: torch.Generator) -> None:
        with torch.no_grad():
            dt = self.a.dtype
            self.a.copy_(2.0 * torch.randn(self.a.shape, generator=generator, dtype=dt))
            self.b.copy_(torch.randn(self.b.shape, generator=generator, dtype=dt))
            self.c.zero_()
            self.bias.zero_()

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden units ``(n, in_dim, units)``; the output is linear in them."""
        return torch.tanh(x[..., :, None] * self.a + self.b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.hidden(x) * self.c).sum((-2, -1))[..., None] + self.bias


class _Pairs(nn.Module):
    """Second-order ANOVA branch ``Σ_(i,j) h_ij(x_i, x_j)`` over the given input pairs.

    ``h_ij(s, t) = Σ_k c_ijk tanh(a_ijk s + a'_ijk t + b_ijk)`` with ``units`` hidden units
    per pair, all pairs evaluated at once (``(n, n_pairs, units)`` tensor).
    """

    def __init__(self, pairs: Sequence[tuple[int, int]], units: int) -> None:
        super().__init__()
        k = len(pairs)
        self.register_buffer("index", torch.as_tensor(pairs, dtype=torch.long).reshape(k, 2))
        self.a = nn.Parameter(torch.ones(k, units, 2))
        self.b = nn.Parameter(torch.zeros(k, units))
        self.c = nn.Parameter(torch.zeros(k, units))

    def reset_(self, generator: torch.Generator) -> None:
        with torch.no_grad():
            dt = self.a.dtype
            self.a.copy_(1.5 * torch.randn(self.a.shape, generator=generator, dtype=dt))
            self.b.copy_(torch.randn(self.b.shape, generator=generator, dtype=dt))
            self.c.zero_()

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden units ``(n, n_pairs, units)``; the output is linear in them."""
        return torch.tanh(torch.einsum("nkt,kut->nku", x[..., self.index], self.a) + self.b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.hidden(x) * self.c).sum((-2, -1))[..., None]


class _Correction(nn.Module):
    """``y = linear(z) + nonlinear(z)`` on ``z = [x, y_lower]`` (scaled units)."""

    def __init__(self, in_dim: int, width: int, depth: int, act: str) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim + 1, 1)
        self.nonlinear = _mlp(in_dim + 1, width, depth, 1, act)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.linear(z) + self.nonlinear(z)


def _check_pairs(pairs, in_dim: int, low_arch: str) -> list[tuple[int, int]]:
    """Validated ``pairs`` as a list of ``(i, j)`` tuples, ``i < j``, no repeats."""
    if "pairs" not in low_arch:
        if pairs:
            raise ValueError(
                f"pairs are used only with low_arch='additive+pairs'; got {low_arch!r}"
            )
        return []
    if not pairs:
        raise ValueError(
            "low_arch='additive+pairs' needs a non-empty list of input pairs; find them with "
            "pdesurrogates.surrogates.screen_interactions(x, y)"
        )
    out: list[tuple[int, int]] = []
    for q in pairs:
        q = tuple(q)
        if len(q) != 2 or not all(
            isinstance(v, int | np.integer) and not isinstance(v, bool) and 0 <= v < in_dim
            for v in q
        ):
            raise ValueError(f"each pair must be two input indices in [0, {in_dim}); got {q!r}")
        i, j = sorted(int(v) for v in q)
        if i == j:
            raise ValueError(f"a pair needs two different inputs; got {q!r}")
        if (i, j) in out:
            raise ValueError(f"pair {(i, j)} is listed twice")
        out.append((i, j))
    return out


def _check_positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


@register_model
class MultiFidelityNet(nn.Module):
    """Composite multi-fidelity network: NN_L plus a linear + nonlinear correction per level.

    Parameters
    ----------
    in_dim : int
        Number of inputs d.
    n_levels : int
        Number of fidelity levels (>= 2); levels above the second are chained corrections.
    low_width, low_depth : int
        Width and number of hidden layers of the lowest-fidelity net NN_L.
    corr_width, corr_depth : int
        Width and number of hidden layers of each nonlinear correction net.
    activation : {"sin", "tanh", "silu", "gelu"}
        Hidden activation of NN_L. ``"sin"`` (default) interpolates sparse low-fidelity
        data about ten times more accurately than ``"tanh"`` (Meng & Karniadakis' choice)
        on the Forrester 21-point design.
    corr_activation : {"silu", "tanh", "sin", "gelu"}
        Hidden activation of the nonlinear corrections (silu generalises better than tanh
        from a dozen high-fidelity points on the nonlinear sin pair).
    low_arch : {"mlp", "additive", "additive+mlp", "additive+pairs"}
        Form of NN_L. ``"mlp"`` (default) is the plain MLP. ``"additive"`` is a first-order
        ANOVA net ``Σ_i g_i(x_i)`` (one univariate net of ``additive_units`` tanh units per
        input): in many dimensions it generalises from a few thousand points where an MLP
        memorises them. ``"additive+mlp"`` sums both. ``"additive+pairs"`` adds a
        second-order term ``Σ h_ij(x_i, x_j)`` over the input ``pairs`` (one two-input net
        of ``pair_units`` tanh units per pair; find them with
        :func:`~pdesurrogates.surrogates.screen_interactions`).
        :func:`fit_multifidelity_net` with ``low_arch="auto"`` screens for the pairs and
        picks the form by its error on held-out low-fidelity points.
    additive_units : int
        Hidden units of each univariate net of the additive branch.
    pairs : sequence of (int, int)
        Interacting input pairs of the ``"additive+pairs"`` form (required there, and
        only there).
    pair_units : int
        Hidden units of each two-input net of the pairs branch.

    Notes
    -----
    ``forward(x)`` maps ``x`` of shape ``(n, in_dim)`` (physical units) to the highest
    fidelity ``(n,)``; ``forward(x, level=k)`` gives level ``k`` and :meth:`forward_levels`
    every level. The input and output scalings are buffers set by :meth:`fit` (identity
    until then).

    Examples
    --------
    >>> import torch
    >>> net = MultiFidelityNet(in_dim=2, n_levels=3)
    >>> net(torch.zeros(5, 2)).shape
    torch.Size([5])
    >>> [y.shape[0] for y in net.forward_levels(torch.zeros(5, 2))]
    [5, 5, 5]
    """

    def __init__(
        self,
        *,
        in_dim: int = 1,
        n_levels: int = 2,
        low_width: int = 20,
        low_depth: int = 2,
        corr_width: int = 10,
        corr_depth: int = 2,
        activation: str = "sin",
        corr_activation: str = "silu",
        low_arch: str = "mlp",
        additive_units: int = 8,
        pairs: Sequence[Sequence[int]] | None = None,
        pair_units: int = 24,
    ) -> None:
        super().__init__()
        self.in_dim = _check_positive_int("in_dim", in_dim)
        self.n_levels = _check_positive_int("n_levels", n_levels, 2)
        self.low_width = _check_positive_int("low_width", low_width)
        self.low_depth = _check_positive_int("low_depth", low_depth)
        self.corr_width = _check_positive_int("corr_width", corr_width)
        self.corr_depth = _check_positive_int("corr_depth", corr_depth, 0)
        for name, act in (("activation", activation), ("corr_activation", corr_activation)):
            if act not in _ACTIVATIONS:
                raise ValueError(f"{name} must be one of {sorted(_ACTIVATIONS)}; got {act!r}")
        if low_arch not in _LOW_ARCHS:
            raise ValueError(f"low_arch must be one of {list(_LOW_ARCHS)}; got {low_arch!r}")
        self.activation = activation
        self.corr_activation = corr_activation
        self.low_arch = low_arch
        self.additive_units = _check_positive_int("additive_units", additive_units)
        self.pair_units = _check_positive_int("pair_units", pair_units)
        self.pairs = _check_pairs(pairs, self.in_dim, low_arch)
        # NN_L = low (MLP) and/or low_additive (first-order ANOVA branch), summed
        self.low = (
            _mlp(self.in_dim, self.low_width, self.low_depth, 1, activation)
            if "mlp" in low_arch
            else None
        )
        self.low_additive = (
            _Additive(self.in_dim, self.additive_units) if "additive" in low_arch else None
        )
        self.low_pairs = _Pairs(self.pairs, self.pair_units) if "pairs" in low_arch else None
        self.corrections = nn.ModuleList(
            _Correction(self.in_dim, self.corr_width, self.corr_depth, corr_activation)
            for _ in range(self.n_levels - 1)
        )
        # x_scaled = (x - x_center) / x_half ; y_scaled = (y - y_center) / y_half
        self.register_buffer("x_center", torch.zeros(self.in_dim))
        self.register_buffer("x_half", torch.ones(self.in_dim))
        self.register_buffer("y_center", torch.zeros(self.n_levels))
        self.register_buffer("y_half", torch.ones(self.n_levels))

    def get_config(self) -> dict:
        return {
            "in_dim": self.in_dim,
            "n_levels": self.n_levels,
            "low_width": self.low_width,
            "low_depth": self.low_depth,
            "corr_width": self.corr_width,
            "corr_depth": self.corr_depth,
            "activation": self.activation,
            "corr_activation": self.corr_activation,
            "low_arch": self.low_arch,
            "additive_units": self.additive_units,
            "pairs": [list(q) for q in self.pairs] or None,
            "pair_units": self.pair_units,
        }

    # ------------------------------------------------------------------ math
    def _low(self, xs: torch.Tensor) -> torch.Tensor:
        out = self.low(xs) if self.low is not None else None
        if self.low_additive is not None:
            add = self.low_additive(xs)
            out = add if out is None else out + add
        if self.low_pairs is not None:
            out = out + self.low_pairs(xs)
        return out

    def _scaled_levels(self, x: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        xs = (x - self.x_center) / self.x_half
        out = [self._low(xs)]
        top = self.n_levels if upto is None else upto + 1
        for k in range(1, top):
            out.append(self.corrections[k - 1](torch.cat([xs, out[-1]], dim=-1)))
        return out

    def forward_levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every level's prediction, lowest first: list of ``n_levels`` tensors ``(n,)``."""
        scaled = self._scaled_levels(x)
        return [s[..., 0] * self.y_half[k] + self.y_center[k] for k, s in enumerate(scaled)]

    def forward(self, x: torch.Tensor, level: int | None = None) -> torch.Tensor:
        """Prediction ``(n,)`` of the highest level (or of ``level``) at ``x`` ``(n, in_dim)``."""
        k = self.n_levels - 1 if level is None else level % self.n_levels
        s = self._scaled_levels(x, upto=k)[k]
        return s[..., 0] * self.y_half[k] + self.y_center[k]

    def nonlinear_l2(self) -> torch.Tensor:
        """Σ w² over the weights (not biases) of every nonlinear correction net."""
        terms = [
            m.weight.square().sum()
            for c in self.corrections
            for m in c.nonlinear.modules()
            if isinstance(m, nn.Linear)
        ]
        return torch.stack(terms).sum()

    def _nonlinear_weight_names(self) -> list[str]:
        return [
            n
            for n, _ in self.named_parameters()
            if n.startswith("corrections.") and ".nonlinear." in n and n.endswith("weight")
        ]

    # ------------------------------------------------------------------ training
    def _warm_start_low(self, x, y, x_val=None, y_val=None) -> None:
        """Output weights of the ANOVA NN_L by ridge least squares, hidden layers as drawn.

        NN_L is linear in the output weights ``c`` of its univariate and pair nets (and in
        the last layer of its MLP branch), so given the random hidden units the best ``c``
        is one linear solve: a random-feature fit that gradient training then refines.
        On the quartic 32-D pair this alone reaches an NN_L error that 5,000 Adam steps
        from ``c = 0`` do not. The ridge weight is chosen on ``(x_val, y_val)`` when
        given (else the smallest of the grid).
        """

        def features(xv):
            xs = (xv - self.x_center) / self.x_half
            n = xs.shape[0]
            cols = [torch.ones(n, 1, dtype=xs.dtype), self.low_additive.hidden(xs).reshape(n, -1)]
            if self.low_pairs is not None:
                cols.append(self.low_pairs.hidden(xs).reshape(n, -1))
            if self.low is not None:
                cols.append(self.low[:-1](xs))
            return torch.cat(cols, 1)

        with torch.no_grad():
            f = features(x)
            t = (y - self.y_center[0]) / self.y_half[0]
            colscale = f.square().mean(0).sqrt().clamp_min(1e-12)
            fs = f / colscale
            evals, evecs = torch.linalg.eigh(fs.T @ fs)
            proj = evecs.T @ (fs.T @ t)
            ridges = [1e-10, 1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]
            fv = features(x_val) / colscale if x_val is not None else None
            tv = (y_val - self.y_center[0]) / self.y_half[0] if x_val is not None else None
            best = (math.inf, None)
            for r in ridges:
                c = evecs @ (proj / (evals.clamp_min(0) + r * len(t)))
                err = float((fv @ c - tv).square().mean()) if fv is not None else r
                if err < best[0]:
                    best = (err, c)
            c = best[1] / colscale
            add = self.low_additive
            m = add.c.numel()
            add.bias.copy_(c[:1])
            add.c.copy_(c[1 : 1 + m].reshape(add.c.shape))
            pos = 1 + m
            if self.low_pairs is not None:
                k = self.low_pairs.c.numel()
                self.low_pairs.c.copy_(c[pos : pos + k].reshape(self.low_pairs.c.shape))
                pos += k
            if self.low is not None:
                last = self.low[-1]
                last.weight.copy_(c[pos:].reshape(last.weight.shape))
                last.bias.zero_()

    def set_scaling(self, bounds: np.ndarray, ys: Sequence[np.ndarray]) -> None:
        """Fix the [−1, 1] scalings from input ``bounds`` (d, 2) and per-level outputs."""
        b = torch.as_tensor(np.asarray(bounds, dtype=np.float64))
        self.x_center.copy_((b[:, 0] + b[:, 1]) / 2)
        self.x_half.copy_(((b[:, 1] - b[:, 0]) / 2).clamp_min(1e-300))
        for k, y in enumerate(ys):
            lo, hi = float(np.min(y)), float(np.max(y))
            half = (hi - lo) / 2 if hi > lo else max(abs(hi), 1.0)
            self.y_center[k] = (hi + lo) / 2
            self.y_half[k] = half

    def fit(
        self,
        xs: Sequence,
        ys: Sequence,
        *,
        bounds=None,
        l2: float = _DEFAULT_L2,
        linear_l2: float = 0.0,
        adam_steps: int = 1000,
        lbfgs_steps: int = 200,
        lm_steps: int = 100,
        lr: float = 3e-3,
        stagewise: bool = True,
        joint: bool = True,
        seed: int = 0,
        low_holdout: float = 0.0,
        progress: bool = False,
        _top_only: bool = False,
    ) -> dict:
        """Train on data ordered lowest fidelity first; returns a history dict.

        Each stage runs Adam (cosine-decayed learning rate), then L-BFGS (strong Wolfe line
        search), then — when the Jacobian is small enough (residuals × parameters ≤ 2·10⁷,
        i.e. the few-point designs where interpolation accuracy matters most) — a
        Levenberg–Marquardt polish that drives the residuals to round-off in float64.

        Parameters
        ----------
        xs : sequence of arrays, each ``(n_k, in_dim)``
            Inputs of each level, lowest fidelity first (physical units).
        ys : sequence of arrays, each ``(n_k,)``
            Outputs of each level.
        bounds : array (in_dim, 2), optional
            Input box used for the [−1, 1] scaling; default the range of all ``xs``.
        l2 : float
            Weight λ of the L2 penalty on the nonlinear corrections' weights (scaled units).
        linear_l2 : float
            Weight of an L2 penalty on the linear parts' weights on ``x`` (the weight on
            the lower level's output stays free). 0 (default) is Meng & Karniadakis'
            unpenalised linear part; with few high-fidelity points in many inputs a
            penalty keeps the linear part from fitting the data through ``x`` alone.
        adam_steps, lbfgs_steps, lm_steps : int
            Steps of Adam (learning rate ``lr``), then iterations of L-BFGS, then of
            Levenberg–Marquardt, per stage (0 skips a phase).
        stagewise : bool
            First train level by level (lower levels frozen), then ...
        joint : bool
            ... fine-tune all levels together on the summed loss.
        seed : int
            Seed of the Xavier-normal initialisation (and of the hold-out split).
        low_holdout : float
            Fraction in [0, 0.5) of the lowest-fidelity points held out of training to stop
            NN_L early: its stage keeps the parameters of lowest error on them (checked 100
            times during Adam, and after L-BFGS and Levenberg–Marquardt). 0 (default) trains
            on every point; use 0.1 when the low-fidelity data are many and NN_L can
            memorise them (thousands of points in tens of dimensions).
        progress : bool
            Show a progress bar.

        Returns
        -------
        dict
            ``{"loss": final total loss, "level_mse": [...], "seconds": ...,
            "low_val_rmse": ...}`` (errors in scaled units; ``low_val_rmse`` is NN_L's RMS
            error on the held-out points, ``nan`` without a hold-out).
        """
        xs_t, ys_t, bounds = _prepare_data(xs, ys, self.in_dim, self.n_levels, bounds)
        for name, v in (("l2", l2), ("linear_l2", linear_l2)):
            if not (v >= 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a finite number >= 0; got {v!r}")
        adam_steps = _check_positive_int("adam_steps", adam_steps, 0)
        lbfgs_steps = _check_positive_int("lbfgs_steps", lbfgs_steps, 0)
        lm_steps = _check_positive_int("lm_steps", lm_steps, 0)
        if not (stagewise or joint):
            raise ValueError("at least one of stagewise or joint must be True")
        if not (isinstance(low_holdout, int | float) and 0 <= low_holdout < 0.5):
            raise ValueError(f"low_holdout must be a fraction in [0, 0.5); got {low_holdout!r}")
        dtype = next(self.parameters()).dtype
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(int(seed))
        if _top_only:  # refit the top correction only; lower levels and scalings stay
            _xavier_(self.corrections[-1], gen)
        else:
            self.set_scaling(bounds, [y.numpy() for y in ys_t])
            _xavier_(self, gen)
        xs_t = [x.to(dtype) for x in xs_t]
        ys_t = [y.to(dtype) for y in ys_t]
        x_val = y_val = None
        if low_holdout > 0:
            n0 = len(ys_t[0])
            n_val = round(low_holdout * n0)
            if n_val < 1 or n0 - n_val < 2:
                raise ValueError(
                    f"low_holdout={low_holdout} leaves no validation or training points "
                    f"among the {n0} lowest-fidelity points"
                )
            perm = torch.randperm(n0, generator=torch.Generator().manual_seed(int(seed) + 7919))
            x_val, y_val = xs_t[0][perm[:n_val]], ys_t[0][perm[:n_val]]
            xs_t[0], ys_t[0] = xs_t[0][perm[n_val:]], ys_t[0][perm[n_val:]]

        def low_val() -> float:
            with torch.no_grad():
                e = (self(x_val, level=0) - y_val) / self.y_half[0]
            return float(e.square().mean().sqrt())

        if not _top_only and self.low_additive is not None:
            self._warm_start_low(xs_t[0], ys_t[0], x_val, y_val)

        nl_names = set(self._nonlinear_weight_names())
        lin_names = [f"corrections.{k}.linear.weight" for k in range(self.n_levels - 1)]

        def residuals(levels, params=None) -> torch.Tensor:
            parts = []
            for k in levels:
                if params is None:
                    pred = self(xs_t[k], level=k)
                else:
                    pred = torch.func.functional_call(self, params, (xs_t[k],), {"level": k})
                parts.append((pred - ys_t[k]) / (self.y_half[k] * math.sqrt(len(ys_t[k]))))
            if any(k > 0 for k in levels):
                src = dict(self.named_parameters()) if params is None else params
                if l2 > 0:
                    parts += [
                        math.sqrt(l2) * src[n].reshape(-1) for n in sorted(nl_names) if n in src
                    ]
                if linear_l2 > 0:
                    parts += [
                        math.sqrt(linear_l2) * src[n][:, : self.in_dim].reshape(-1)
                        for n in lin_names
                        if n in src
                    ]
            return torch.cat(parts)

        stages: list[tuple[list[int], list[str]]] = []
        names = [n for n, _ in self.named_parameters()]
        top = f"corrections.{self.n_levels - 2}."
        if _top_only:
            stages.append(([self.n_levels - 1], [n for n in names if n.startswith(top)]))
        elif stagewise:
            stages.append(([0], [n for n in names if n.startswith("low")]))
            for k in range(1, self.n_levels):
                pre = f"corrections.{k - 1}."
                stages.append(([k], [n for n in names if n.startswith(pre)]))
        if joint and not _top_only:
            stages.append((list(range(self.n_levels)), names))
        bar = _progress(progress, len(stages) * (adam_steps + lbfgs_steps + lm_steps), "MF-DNN")
        self.train()
        for levels, pnames in stages:
            _optimise(
                self,
                lambda params=None, lv=levels: residuals(lv, params),
                pnames,
                adam_steps,
                lbfgs_steps,
                lm_steps,
                lr,
                bar,
                val_fn=low_val if (x_val is not None and levels == [0]) else None,
            )
        if bar is not None:
            bar.close()
        self.eval()
        with torch.no_grad():
            mse = [
                float(((self(xs_t[k], level=k) - ys_t[k]) / self.y_half[k]).square().mean())
                for k in range(self.n_levels)
            ]
            total = float(residuals(list(range(self.n_levels))).square().sum())
        if not math.isfinite(total):
            raise TrainingError(
                "MultiFidelityNet training diverged (non-finite loss); lower lr or check the data"
            )
        return {
            "loss": total,
            "level_mse": mse,
            "seconds": time.perf_counter() - t0,
            "low_val_rmse": low_val() if x_val is not None else float("nan"),
        }


_LM_MAX_JACOBIAN = 20_000_000


def _optimise(
    model, residuals, pnames, adam_steps, lbfgs_steps, lm_steps, lr, bar, val_fn=None
) -> None:
    """Adam, then L-BFGS, then Levenberg–Marquardt on ``Σ residuals²`` over ``pnames``.

    With ``val_fn`` (a validation error), the parameters of lowest ``val_fn()`` seen (100
    checks during Adam, one after each later phase) are restored at the end.
    """
    named = dict(model.named_parameters())
    params = [named[n] for n in pnames]
    ids = {id(p) for p in params}
    best = [math.inf, None]

    def check() -> None:
        if val_fn is None:
            return
        v = val_fn()
        if v < best[0]:
            best[0], best[1] = v, [p.detach().clone() for p in params]

    check_every = max(1, adam_steps // 100)
    check()  # the starting point (a warm start) is a candidate too
    # freeze the rest so that stage-wise training leaves the other levels untouched
    frozen = [p for p in model.parameters() if id(p) not in ids and p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)

    def loss_fn():
        return residuals().square().sum()

    try:
        if adam_steps:
            opt = torch.optim.Adam(params, lr=lr)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, adam_steps, eta_min=lr / 20)
            for step in range(adam_steps):
                opt.zero_grad(set_to_none=True)
                loss = loss_fn()
                loss.backward()
                opt.step()
                sched.step()
                if (step + 1) % check_every == 0:
                    check()
                if bar is not None:
                    bar.update(1)
        if lbfgs_steps:
            opt = torch.optim.LBFGS(
                params,
                lr=1.0,
                max_iter=lbfgs_steps,
                max_eval=2 * lbfgs_steps,
                tolerance_grad=1e-14,
                tolerance_change=1e-20,
                history_size=50,
                line_search_fn="strong_wolfe",
            )

            def closure():
                opt.zero_grad(set_to_none=True)
                loss = loss_fn()
                if torch.isfinite(loss):
                    loss.backward()
                return loss

            opt.step(closure)
            check()
            if bar is not None:
                bar.update(lbfgs_steps)
        if lm_steps:
            n_res = residuals().numel()
            n_par = sum(p.numel() for p in params)
            if n_res * n_par <= _LM_MAX_JACOBIAN:
                _levenberg_marquardt(residuals, pnames, params, lm_steps)
                check()
            if bar is not None:
                bar.update(lm_steps)
        if best[1] is not None:
            with torch.no_grad():
                for p, b in zip(params, best[1], strict=True):
                    p.copy_(b)
    finally:
        for p in frozen:
            p.requires_grad_(True)


def _levenberg_marquardt(residuals, pnames, params, steps: int) -> None:
    """Damped Gauss–Newton on the flattened ``params`` (updated in place)."""
    sizes = [p.numel() for p in params]
    shapes = [p.shape for p in params]
    theta = torch.cat([p.detach().reshape(-1) for p in params])

    def res(th):
        chunks = torch.split(th, sizes)
        return residuals({n: c.reshape(s) for n, c, s in zip(pnames, chunks, shapes, strict=True)})

    with torch.no_grad():
        r = res(theta)
    cost = r.square().sum()
    mu = 1e-3
    eye_cache: dict[int, torch.Tensor] = {}
    for _ in range(steps):
        jac = torch.func.jacrev(res)(theta)
        m, n = jac.shape
        small = min(m, n)
        eye = eye_cache.setdefault(small, torch.eye(small, dtype=theta.dtype))
        gram = jac @ jac.T if m < n else jac.T @ jac
        rhs = r if m < n else jac.T @ r
        improved = False
        while mu < 1e12:
            try:
                sol = torch.linalg.solve(gram + mu * eye, rhs)
            except RuntimeError:
                mu *= 4
                continue
            step = jac.T @ sol if m < n else sol
            trial = theta - step
            with torch.no_grad():
                r_new = res(trial)
            c_new = r_new.square().sum()
            if torch.isfinite(c_new) and c_new < cost:
                theta, r, cost = trial, r_new, c_new
                mu = max(mu / 3, 1e-15)
                improved = True
                break
            mu *= 2
        if not improved or cost < 1e-28:
            break
    with torch.no_grad():
        for p, c in zip(params, torch.split(theta, sizes), strict=True):
            p.copy_(c.reshape(p.shape))


def _progress(enabled: bool, total: int, desc: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False)


def _prepare_data(xs, ys, in_dim: int, n_levels: int, bounds):
    if not isinstance(xs, list | tuple) or not isinstance(ys, list | tuple):
        raise ValueError("xs and ys must be lists with one array per fidelity level, lowest first")
    if len(xs) != n_levels or len(ys) != n_levels:
        raise ValueError(
            f"expected {n_levels} levels of data (lowest fidelity first); got {len(xs)} "
            f"input arrays and {len(ys)} output arrays"
        )
    xs_t, ys_t = [], []
    for k, (x, y) in enumerate(zip(xs, ys, strict=True)):
        x = torch.as_tensor(np.asarray(x, dtype=np.float64) if not torch.is_tensor(x) else x)
        y = torch.as_tensor(np.asarray(y, dtype=np.float64) if not torch.is_tensor(y) else y)
        x = x.detach().cpu().to(torch.float64)
        y = y.detach().cpu().to(torch.float64)
        if x.ndim == 1 and in_dim == 1:
            x = x[:, None]
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if x.ndim != 2 or x.shape[1] != in_dim:
            raise ValueError(f"xs[{k}] must have shape (n, {in_dim}); got {tuple(x.shape)}")
        if y.ndim != 1 or y.shape[0] != x.shape[0]:
            raise ValueError(
                f"ys[{k}] must have shape ({x.shape[0]},) to match xs[{k}]; got {tuple(y.shape)}"
            )
        if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
            raise ValueError(f"level {k} data contain NaN or infinite values; remove them")
        if x.shape[0] < 2:
            raise ValueError(
                f"level {k} has {x.shape[0]} point(s); at least 2 are needed per level"
            )
        xs_t.append(x)
        ys_t.append(y)
    allx = torch.cat(xs_t)
    if bounds is None:
        bounds = torch.stack([allx.min(0).values, allx.max(0).values], 1).numpy()
    else:
        bounds = np.asarray(bounds, dtype=np.float64)
        if bounds.shape != (in_dim, 2) or not np.all(bounds[:, 1] > bounds[:, 0]):
            raise ValueError(
                f"bounds must have shape ({in_dim}, 2) with lower < upper; got {bounds.tolist()}"
            )
        span = bounds[:, 1] - bounds[:, 0]
        outside = (allx.numpy() < bounds[:, 0] - 1e-9 * span) | (
            allx.numpy() > bounds[:, 1] + 1e-9 * span
        )
        if outside.any():
            i, j = np.argwhere(outside)[0]
            raise ValueError(
                f"training input {allx[i, j].item():g} (row {i}, input {j}) is outside the "
                f"declared bounds [{bounds[j, 0]:g}, {bounds[j, 1]:g}]"
            )
    return xs_t, ys_t, bounds


# ---------------------------------------------------------------------- robust fitting


@dataclass
class MultiFidelityFit:
    """Result of :func:`fit_multifidelity_net`.

    Attributes
    ----------
    model : torch.nn.Module
        An :class:`~pdesurrogates.surrogates.Ensemble` of the kept members (or the single
        best member when only one is kept or ``Ensemble`` is unavailable).
    members : list of MultiFidelityNet
        The kept members, best first.
    scores : list of float
        Validation score of every trained member (lower is better), in training order.
    kept : list of int
        Indices (into ``scores``) of the kept members.
    criterion : str
        ``"holdout"``, ``"kfold"`` or ``"consensus"``.
    seconds : float
        Wall time of the whole fit.
    histories : list of dict
        :meth:`MultiFidelityNet.fit` history of every trained member.
    low_arch : str
        NN_L form used by the members.
    low_arch_scores : dict
        With ``low_arch="auto"`` in several dimensions: NN_L's held-out low-fidelity RMS
        error (scaled units) for each form tried.
    pairs : list of (int, int)
        Interacting input pairs found by
        :func:`~pdesurrogates.surrogates.screen_interactions` on the low-fidelity data
        (used by the ``"additive+pairs"`` form; empty when none were screened or found).
    """

    model: nn.Module
    members: list
    scores: list
    kept: list
    criterion: str
    seconds: float
    histories: list = field(default_factory=list)
    low_arch: str = "mlp"
    low_arch_scores: dict = field(default_factory=dict)
    pairs: list = field(default_factory=list)

    def predict(self, x):
        """Mean (and spread over members) at ``x``: a :class:`pdesurrogates.uq.Prediction`."""
        from pdesurrogates.uq import Prediction

        xt = torch.as_tensor(np.asarray(x, dtype=np.float64))
        if xt.ndim == 1:
            xt = xt[:, None]
        with torch.no_grad():
            outs = torch.stack([m(xt.to(_dtype_of(m))).double() for m in self.members])
        if len(self.members) == 1:
            return Prediction(outs[0].numpy())
        return Prediction(None, samples=outs.numpy())


def _dtype_of(m: nn.Module) -> torch.dtype:
    return next(m.parameters()).dtype


def fit_multifidelity_net(
    xs: Sequence,
    ys: Sequence,
    *,
    bounds=None,
    n_members: int = 6,
    keep: int | None = None,
    criterion: str = "auto",
    holdout: float = 0.2,
    folds: int = 5,
    low_arch: str = "auto",
    l2_grid: Sequence[float] | None = (1e-5, 1e-3, 1e-1),
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    progress: bool = False,
    net_kwargs: dict | None = None,
    fit_kwargs: dict | None = None,
) -> MultiFidelityFit:
    """Train several :class:`MultiFidelityNet` members and keep the validated ones.

    Parameters
    ----------
    xs, ys : sequences of arrays
        Data per level, lowest fidelity first (see :meth:`MultiFidelityNet.fit`).
    bounds : array (d, 2), optional
        Input box (for scaling, and checked against the data).
    n_members : int
        Members trained (different seeds; with ``low_holdout`` also different hold-outs).
    keep : int, optional
        Members kept (best validation scores). Default ``max(1, n_members // 2)``.
    criterion : {"auto", "holdout", "kfold", "consensus"}
        How members are scored; none looks at test data. Each member is first trained on
        all data. ``"holdout"``: its top correction is retrained (lower levels frozen, same
        seed) without a random ``holdout`` fraction of the highest-fidelity points and
        scored by its error on them. ``"kfold"``: the same over ``folds`` folds covering
        every highest-fidelity point once (a cross-validated error of the correction
        given this member's NN_L and initialisation). ``"consensus"``: RMS deviation from
        the members' median on 512 unlabelled probe points in the box (plus the training
        loss), which flags members that swing wildly between sparse points. ``"auto"``:
        holdout from 20 highest-fidelity points, consensus below. (On the 13-point
        nonlinear sin design, kfold scores did not rank members by their test error: the
        best member scored worst, since dropping a fifth of so few points leaves gaps the
        full fit does not have.)
    holdout : float
        Fraction of the highest-fidelity points held out by ``"holdout"``.
    folds : int
        Folds of ``"kfold"`` (at most the number of highest-fidelity points).
    low_arch : {"auto", "mlp", "additive", "additive+mlp", "additive+pairs"}
        NN_L form (see :class:`MultiFidelityNet`). ``"auto"``: ``"mlp"`` in one dimension;
        otherwise the low-fidelity data are screened for interacting input pairs
        (:func:`~pdesurrogates.surrogates.screen_interactions`), the first member is
        trained with each form (``"additive+pairs"`` only when pairs were found), holding
        out a tenth of the low-fidelity points (``fit_kwargs["low_holdout"]`` if set), and
        the form with the lowest NN_L error on them is used for every member (when
        ``fit_kwargs`` sets ``low_holdout`` the winning trial net is member 0; otherwise
        members retrain on every point). Overridden by ``net_kwargs["low_arch"]``;
        ``net_kwargs["pairs"]`` skips the screen.
    l2_grid : sequence of float, optional
        Candidate weights λ of the top correction's L2 penalty on its nonlinear part. With
        ``"holdout"`` or ``"kfold"``, each λ is tried with the linear part's x-weights free
        (``linear_l2=0``) and penalised by the same λ, each member's top correction is
        refitted with the pair of lowest validation error (that error is then the
        member's score; ``histories[i]["l2_scores"]`` maps every ``(l2, linear_l2)`` to
        its error). ``None`` keeps ``fit_kwargs["l2"]`` and ``fit_kwargs["linear_l2"]``.
        The default spans the near-interpolating to the almost-linear correction;
        validation chooses per problem.
    seed : int
        Base seed; member i uses ``seed + i``.
    dtype : torch.dtype
        Precision of the members (float64 by default: cheap on CPU, and L-BFGS then
        converges much further).
    net_kwargs, fit_kwargs : dict, optional
        Passed to :class:`MultiFidelityNet` and :meth:`MultiFidelityNet.fit`.

    Returns
    -------
    MultiFidelityFit
    """
    t0 = time.perf_counter()
    n_members = _check_positive_int("n_members", n_members)
    keep = max(1, n_members // 2) if keep is None else _check_positive_int("keep", keep)
    if keep > n_members:
        raise ValueError(f"keep ({keep}) cannot exceed n_members ({n_members})")
    if criterion not in ("auto", "holdout", "kfold", "consensus"):
        raise ValueError(
            f"criterion must be 'auto', 'holdout', 'kfold' or 'consensus'; got {criterion!r}"
        )
    if not 0 < holdout < 0.5:
        raise ValueError(f"holdout must be a fraction in (0, 0.5); got {holdout!r}")
    folds = _check_positive_int("folds", folds, 2)
    if low_arch != "auto" and low_arch not in _LOW_ARCHS:
        raise ValueError(f"low_arch must be 'auto' or one of {list(_LOW_ARCHS)}; got {low_arch!r}")
    net_kwargs = dict(net_kwargs or {})
    fit_kwargs = dict(fit_kwargs or {})
    n_levels = len(xs)
    x0 = np.asarray(xs[0])
    in_dim = 1 if x0.ndim == 1 else x0.shape[1]
    xs_t, ys_t, bounds = _prepare_data(list(xs), list(ys), in_dim, n_levels, bounds)
    xs_np = [x.numpy() for x in xs_t]
    ys_np = [y.numpy() for y in ys_t]
    n_hi = len(ys_np[-1])
    if criterion == "auto":
        criterion = "holdout" if n_hi >= 20 else "consensus"
    if criterion == "holdout" and n_hi < 10:
        raise ValueError(
            f"criterion='holdout' needs at least 10 highest-fidelity points; got {n_hi}. "
            "Use criterion='kfold' or 'consensus'."
        )
    if criterion == "kfold" and n_hi < 6:
        raise ValueError(
            f"criterion='kfold' needs at least 6 highest-fidelity points; got {n_hi}. "
            "Use criterion='consensus'."
        )
    folds = min(folds, n_hi)
    scale_hi = float(np.std(ys_np[-1])) + 1e-300

    # ---- interacting input pairs (for the "additive+pairs" NN_L), screened on the LF data
    pairs = net_kwargs.pop("pairs", None)
    requested = net_kwargs.get("low_arch", low_arch)
    if pairs is None and in_dim > 1 and requested in ("auto", "additive+pairs"):
        pairs = screen_interactions(xs_np[0], ys_np[0], bounds=bounds)
        if requested == "additive+pairs" and not pairs:
            raise ValueError(
                "low_arch='additive+pairs' but screen_interactions found no interacting input "
                "pairs in the low-fidelity data; pass net_kwargs={'pairs': [...]} or use "
                "low_arch='auto'"
            )

    def new_net(arch):
        kw = dict(net_kwargs, pairs=pairs) if "pairs" in arch else net_kwargs
        return MultiFidelityNet(in_dim=in_dim, n_levels=n_levels, low_arch=arch, **kw).to(dtype)

    def fit_net(arch, s, fk):
        net = new_net(arch)
        hist = net.fit(xs_np, ys_np, bounds=bounds, seed=s, progress=progress, **fk)
        return net, hist

    # ---- NN_L form
    trials: dict[str, tuple] = {}
    arch_scores: dict[str, float] = {}
    if "low_arch" in net_kwargs:
        arch = net_kwargs.pop("low_arch")
    elif low_arch != "auto":
        arch = low_arch
    elif in_dim == 1:
        arch = "mlp"
    else:
        fk = dict(fit_kwargs)
        fk.setdefault("low_holdout", 0.1)
        if fk["low_holdout"] <= 0:
            fk["low_holdout"] = 0.1
        for a in _LOW_ARCHS:
            if "pairs" in a and not pairs:
                continue
            trials[a] = fit_net(a, seed, fk)
            arch_scores[a] = trials[a][1]["low_val_rmse"]
        arch = min(arch_scores, key=arch_scores.get)
        if fit_kwargs.get("low_holdout", 0) <= 0:
            trials = {}  # members train on every point: the trial net is not reused

    if l2_grid is not None:
        l2_grid = [float(v) for v in l2_grid]
        if not l2_grid or not all(v >= 0 and math.isfinite(v) for v in l2_grid):
            raise ValueError(f"l2_grid must be finite numbers >= 0; got {l2_grid!r}")

    base_fk = {k: v for k, v in fit_kwargs.items() if k != "low_holdout"}
    given = (float(fit_kwargs.get("l2", _DEFAULT_L2)), float(fit_kwargs.get("linear_l2", 0.0)))

    # candidate (l2, linear_l2) penalties of the top correction
    candidates = [given]
    if l2_grid is not None:
        candidates = [(v, 0.0) for v in l2_grid] + [(v, v) for v in l2_grid]

    def penalties(pen: tuple[float, float]) -> dict:
        return dict(base_fk, l2=pen[0], linear_l2=pen[1])

    def refit_top(net, s, pen) -> None:
        net.fit(xs_np, ys_np, bounds=bounds, seed=s, _top_only=True, **penalties(pen))

    def top_score(net, s, val_idx_sets, pen) -> float:
        """RMS error over held-out HF points of the top correction refitted without them."""
        fk = penalties(pen)
        errs = []
        for val in val_idx_sets:
            tr = np.setdiff1d(np.arange(n_hi), val)
            clone = copy.deepcopy(net)
            clone.fit(
                [*xs_np[:-1], xs_np[-1][tr]],
                [*ys_np[:-1], ys_np[-1][tr]],
                bounds=bounds,
                seed=s,
                _top_only=True,
                **fk,
            )
            with torch.no_grad():
                pred = clone(torch.as_tensor(xs_np[-1][val]).to(dtype)).double().numpy()
            errs.append((pred - ys_np[-1][val]) ** 2)
        return float(np.sqrt(np.mean(np.concatenate(errs))) / scale_hi)

    scores, members, histories = [], [], []
    for i in range(n_members):
        s = seed + i
        if i == 0 and arch in trials:
            net, hist = trials[arch]
        else:
            net, hist = fit_net(arch, s, fit_kwargs)
        rng = np.random.default_rng(s)
        perm = rng.permutation(n_hi)
        score = float("nan")
        if criterion in ("holdout", "kfold"):
            if criterion == "holdout":
                val_sets = [perm[: max(2, round(holdout * n_hi))]]
            else:
                val_sets = np.array_split(perm, folds)
            pen_scores = {pen: top_score(net, s, val_sets, pen) for pen in candidates}
            best = min(pen_scores, key=pen_scores.get)
            score = pen_scores[best]
            if best != given:
                refit_top(net, s, best)
            hist = dict(hist, l2=best[0], linear_l2=best[1], l2_scores=pen_scores)
        members.append(net)
        histories.append(hist)
        scores.append(score)
    if criterion == "consensus":
        probe = np.random.default_rng(seed).random((512, in_dim))
        probe = bounds[:, 0] + probe * (bounds[:, 1] - bounds[:, 0])
        pt = torch.as_tensor(probe)
        with torch.no_grad():
            preds = np.stack([m(pt.to(dtype)).double().numpy() for m in members])
        med = np.median(preds, axis=0)
        for i in range(n_members):
            dev = float(np.sqrt(np.mean((preds[i] - med) ** 2)) / scale_hi)
            scores[i] = dev + math.sqrt(max(histories[i]["loss"], 0.0))
    order = [int(i) for i in np.argsort(scores)]
    kept = order[:keep]
    kept_members = [members[i] for i in kept]
    for m in kept_members:
        m.eval()
    model: nn.Module = kept_members[0]
    if len(kept_members) > 1:
        try:
            from pdesurrogates.surrogates import Ensemble

            model = Ensemble(kept_members)
        except ImportError:  # pragma: no cover - Ensemble ships with the package
            model = kept_members[0]
    return MultiFidelityFit(
        model=model,
        members=kept_members,
        scores=scores,
        kept=kept,
        criterion=criterion,
        seconds=time.perf_counter() - t0,
        histories=histories,
        low_arch=arch,
        low_arch_scores=arch_scores,
        pairs=list(pairs or []),
    )
