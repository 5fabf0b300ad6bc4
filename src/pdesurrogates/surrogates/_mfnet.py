"""Multi-fidelity neural network (Meng & Karniadakis, J. Comput. Phys. 401, 2020).

The lowest level is a plain MLP ``NN_L(x)``. Each higher level ``k`` is a correction of the
level below, taking ``z = [x, y_{k-1}(x)]``::

    y_k(x) = linear_k(z) + nonlinear_k(z)

where ``linear_k`` is one affine layer (the linear correlation, as in AR(1) co-kriging) and
``nonlinear_k`` a small tanh MLP (the nonlinear correlation), whose weights carry an L2
penalty so that it explains only what the linear part cannot. Optionally (``linear_l2``)
the linear part's weights on ``x`` (not the one on ``y_{k-1}``) carry a penalty too: with
few high-fidelity points in many inputs an unpenalised linear part fits the data through
``x`` and ignores the lower level.
:func:`~pdesurrogates.training.fit_multifidelity_net` tries each λ with the
linear part free and penalised, and keeps the better on held-out points (100-D quartic
pair, 500/50 points: relative L2 0.20 without the linear penalty, 0.093 with).

Inputs ``x`` and the lower level's output are min–max scaled to [−1, 1]; outputs are scaled
likewise. The scalings are buffers (:meth:`MultiFidelityNet.set_scaling`), fixed from the
training data (or bounds) when the net is fitted.

This module holds the network only. Fitting it (Adam, L-BFGS and Levenberg–Marquardt,
level by level and then jointly: :func:`pdesurrogates.training.fit_mfnet`) and the
validated ensemble of several nets (:func:`pdesurrogates.training.fit_multifidelity_net`)
live in :mod:`pdesurrogates.training`.

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

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from pdesurrogates.io import register_model
from pdesurrogates.surrogates._limits import MAX_LEVELS, MAX_REPEAT, check_at_most
from pdesurrogates.surrogates._mf_checks import check_level, warn_outside_box

__all__ = ["LOW_ARCHS", "MultiFidelityNet"]


class _Sin(nn.Module):
    """``sin(x)``: smooth, band-limited hidden units (interpolate sparse data far better)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)


_ACTIVATIONS = {"sin": _Sin, "tanh": nn.Tanh, "silu": nn.SiLU, "gelu": nn.GELU}
LOW_ARCHS = ("mlp", "additive", "additive+mlp", "additive+pairs")


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
        :func:`~pdesurrogates.training.fit_multifidelity_net` with ``low_arch="auto"``
        screens for the pairs and picks the form by its error on held-out low-fidelity
        points.
    additive_units : int
        Hidden units of each univariate net of the additive branch.
    pairs : sequence of (int, int)
        Interacting input pairs of the ``"additive+pairs"`` form (required there, and
        only there).
    pair_units : int
        Hidden units of each two-input net of the pairs branch.
    bounds_declared : bool
        Whether the input box of :meth:`set_scaling` was declared (not the training data's
        range); set when fitted. Then inputs outside it get a ``UserWarning`` naming the
        dimension from :meth:`forward` (an :class:`Ensemble` of nets warns once).

    Notes
    -----
    ``forward(x)`` maps ``x`` of shape ``(n, in_dim)`` (physical units) to the highest
    fidelity ``(n,)``; ``forward(x, level=k)`` gives level ``k`` and :meth:`forward_levels`
    every level. The input and output scalings are buffers set by
    :meth:`set_scaling` (identity
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
        bounds_declared: bool = False,
    ) -> None:
        super().__init__()
        self.in_dim = _check_positive_int("in_dim", in_dim)
        self.n_levels = _check_positive_int("n_levels", n_levels, 2)
        self.low_width = _check_positive_int("low_width", low_width)
        self.low_depth = _check_positive_int("low_depth", low_depth)
        self.corr_width = _check_positive_int("corr_width", corr_width)
        self.corr_depth = _check_positive_int("corr_depth", corr_depth, 0)
        check_at_most("MultiFidelityNet", "n_levels", self.n_levels, MAX_LEVELS)
        check_at_most("MultiFidelityNet", "low_depth", self.low_depth, MAX_REPEAT)
        check_at_most("MultiFidelityNet", "corr_depth", self.corr_depth, MAX_REPEAT)
        for name, act in (("activation", activation), ("corr_activation", corr_activation)):
            if act not in _ACTIVATIONS:
                raise ValueError(f"{name} must be one of {sorted(_ACTIVATIONS)}; got {act!r}")
        if low_arch not in LOW_ARCHS:
            raise ValueError(f"low_arch must be one of {list(LOW_ARCHS)}; got {low_arch!r}")
        self.activation = activation
        self.corr_activation = corr_activation
        self.low_arch = low_arch
        self.additive_units = _check_positive_int("additive_units", additive_units)
        self.pair_units = _check_positive_int("pair_units", pair_units)
        self.pairs = _check_pairs(pairs, self.in_dim, low_arch)
        self.bounds_declared = bool(bounds_declared)
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
            "bounds_declared": self.bounds_declared,
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

    @property
    def box_dtype(self) -> torch.dtype:
        """The dtype :meth:`input_box` is stored in (the net's)."""
        return self.x_center.dtype

    def input_box(self) -> np.ndarray:
        """The input box ``(d, 2)`` of :meth:`set_scaling` (declared bounds or data range)."""
        lo, hi = self.x_center - self.x_half, self.x_center + self.x_half
        return torch.stack([lo, hi], 1).detach().cpu().double().numpy()

    def forward_levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every level's prediction, lowest first: list of ``n_levels`` tensors ``(n,)``."""
        warn_outside_box(self, x, stacklevel=3)
        scaled = self._scaled_levels(x)
        return [s[..., 0] * self.y_half[k] + self.y_center[k] for k, s in enumerate(scaled)]

    def forward(self, x: torch.Tensor, level: int | None = None) -> torch.Tensor:
        """Prediction ``(n,)`` of the highest level (or of ``level``: 0 the lowest, -1 the
        highest; others raise ``ValueError``) at ``x`` ``(n, in_dim)``."""
        k = check_level(level, self.n_levels)
        warn_outside_box(self, x, stacklevel=3)
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

    def nonlinear_weight_names(self) -> list[str]:
        """Names of the weights (not biases) of every nonlinear correction net."""
        return [
            n
            for n, _ in self.named_parameters()
            if n.startswith("corrections.") and ".nonlinear." in n and n.endswith("weight")
        ]

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

    def reset_parameters(self, generator: torch.Generator, *, top_only: bool = False) -> None:
        """Xavier-normal weights and zero biases drawn from ``generator`` (the ANOVA
        branches redraw their hidden units and zero their output weights); with
        ``top_only`` only the top correction is redrawn."""
        _xavier_(self.corrections[-1] if top_only else self, generator)
