"""Fitting one multi-fidelity network: data checks, the ANOVA warm start, and the stages
(level by level, then jointly) of Adam, L-BFGS and Levenberg–Marquardt."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import torch

from pdesurrogates._progress import ProgressBar
from pdesurrogates.errors import TrainingError
from pdesurrogates.surrogates import MultiFidelityNet
from pdesurrogates.surrogates._cokriging_fit import check_levels
from pdesurrogates.training._configs import MultiFidelityConfig
from pdesurrogates.training._mf_optim import minimise_residuals

__all__ = ["check_positive_int", "fit_mfnet", "prepare_mf_data"]

_M = MultiFidelityConfig  # the defaults


def check_positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def prepare_mf_data(xs, ys, in_dim: int, n_levels: int, bounds):
    """Checked float64 tensors per level and the input box ``(d, 2)``
    (:func:`~pdesurrogates.surrogates._cokriging_fit.check_levels`: 2 points a level)."""
    xs_np, ys_np, box = check_levels(
        xs, ys, in_dim, n_levels, bounds, top=2, who="the MF-DNN", stacklevel=5
    )
    return [torch.as_tensor(x) for x in xs_np], [torch.as_tensor(y) for y in ys_np], box


def _warm_start_low(net, x, y, x_val=None, y_val=None) -> None:
    """Output weights of the ANOVA NN_L by ridge least squares, hidden layers as drawn.

    NN_L is linear in the output weights ``c`` of its univariate and pair nets (and in
    the last layer of its MLP branch), so given the random hidden units the best ``c``
    is one linear solve: a random-feature fit that gradient training then refines.
    On the quartic 32-D pair this alone reaches an NN_L error that 5,000 Adam steps
    from ``c = 0`` do not. The ridge weight is chosen on ``(x_val, y_val)`` when
    given (else the smallest of the grid).
    """

    def features(xv):
        xs = (xv - net.x_center) / net.x_half
        n = xs.shape[0]
        cols = [torch.ones(n, 1, dtype=xs.dtype), net.low_additive.hidden(xs).reshape(n, -1)]
        if net.low_pairs is not None:
            cols.append(net.low_pairs.hidden(xs).reshape(n, -1))
        if net.low is not None:
            cols.append(net.low[:-1](xs))
        return torch.cat(cols, 1)

    with torch.no_grad():
        f = features(x)
        t = (y - net.y_center[0]) / net.y_half[0]
        colscale = f.square().mean(0).sqrt().clamp_min(1e-12)
        fs = f / colscale
        evals, evecs = torch.linalg.eigh(fs.T @ fs)
        proj = evecs.T @ (fs.T @ t)
        ridges = [1e-10, 1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]
        fv = features(x_val) / colscale if x_val is not None else None
        tv = (y_val - net.y_center[0]) / net.y_half[0] if x_val is not None else None
        best = (math.inf, None)
        for r in ridges:
            c = evecs @ (proj / (evals.clamp_min(0) + r * len(t)))
            err = float((fv @ c - tv).square().mean()) if fv is not None else r
            if err < best[0]:
                best = (err, c)
        c = best[1] / colscale
        add = net.low_additive
        m = add.c.numel()
        add.bias.copy_(c[:1])
        add.c.copy_(c[1 : 1 + m].reshape(add.c.shape))
        pos = 1 + m
        if net.low_pairs is not None:
            k = net.low_pairs.c.numel()
            net.low_pairs.c.copy_(c[pos : pos + k].reshape(net.low_pairs.c.shape))
            pos += k
        if net.low is not None:
            last = net.low[-1]
            last.weight.copy_(c[pos:].reshape(last.weight.shape))
            last.bias.zero_()


def _check_fit_args(l2, linear_l2, adam_steps, lbfgs_steps, lm_steps, stagewise, joint, hold):
    for name, v in (("l2", l2), ("linear_l2", linear_l2)):
        if not (v >= 0 and math.isfinite(v)):
            raise ValueError(f"{name} must be a finite number >= 0; got {v!r}")
    for name, v in (("adam_steps", adam_steps), ("lbfgs_steps", lbfgs_steps)):
        check_positive_int(name, v, 0)
    check_positive_int("lm_steps", lm_steps, 0)
    if not (stagewise or joint):
        raise ValueError("at least one of stagewise or joint must be True")
    if not (isinstance(hold, int | float) and 0 <= hold < 0.5):
        raise ValueError(f"low_holdout must be a fraction in [0, 0.5); got {hold!r}")


def _split_low_holdout(xs_t, ys_t, low_holdout, seed):
    """Move a ``low_holdout`` fraction of the lowest level out of the data: ``(x, y)``."""
    if low_holdout <= 0:
        return None, None
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
    return x_val, y_val


def _residual_fn(net, xs_t, ys_t, l2: float, linear_l2: float):
    """``residuals(levels, params=None)``: scaled errors of ``levels`` and the penalties
    (when a correction level is among them), whose squares sum to the stage's loss."""
    nl_names = sorted(net.nonlinear_weight_names())
    lin_names = [f"corrections.{k}.linear.weight" for k in range(net.n_levels - 1)]

    def residuals(levels, params=None) -> torch.Tensor:
        parts = []
        for k in levels:
            if params is None:
                pred = net(xs_t[k], level=k)
            else:
                pred = torch.func.functional_call(net, params, (xs_t[k],), {"level": k})
            parts.append((pred - ys_t[k]) / (net.y_half[k] * math.sqrt(len(ys_t[k]))))
        if any(k > 0 for k in levels):
            src = dict(net.named_parameters()) if params is None else params
            if l2 > 0:
                parts += [math.sqrt(l2) * src[n].reshape(-1) for n in nl_names if n in src]
            if linear_l2 > 0:
                parts += [
                    math.sqrt(linear_l2) * src[n][:, : net.in_dim].reshape(-1)
                    for n in lin_names
                    if n in src
                ]
        return torch.cat(parts)

    return residuals


def _stages(net, stagewise: bool, joint: bool, top_only: bool):
    """``[(levels, parameter names)]`` of every stage, in training order."""
    stages: list[tuple[list[int], list[str]]] = []
    names = [n for n, _ in net.named_parameters()]
    top = f"corrections.{net.n_levels - 2}."
    if top_only:
        return [([net.n_levels - 1], [n for n in names if n.startswith(top)])]
    if stagewise:
        stages.append(([0], [n for n in names if n.startswith("low")]))
        for k in range(1, net.n_levels):
            pre = f"corrections.{k - 1}."
            stages.append(([k], [n for n in names if n.startswith(pre)]))
    if joint:
        stages.append((list(range(net.n_levels)), names))
    return stages


def fit_mfnet(
    net: MultiFidelityNet,
    xs: Sequence,
    ys: Sequence,
    *,
    bounds=None,
    l2: float = _M.l2,
    linear_l2: float = _M.linear_l2,
    adam_steps: int = _M.adam_steps,
    lbfgs_steps: int = _M.lbfgs_steps,
    lm_steps: int = _M.lm_steps,
    lr: float = _M.lr,
    stagewise: bool = _M.stagewise,
    joint: bool = _M.joint,
    seed: int = 0,
    low_holdout: float = _M.low_holdout,
    progress: bool | ProgressBar = False,
    top_only: bool = False,
) -> dict:
    """Fit a :class:`~pdesurrogates.surrogates.MultiFidelityNet` (in place) on data ordered
    lowest fidelity first; returns a history dict.

    Each stage runs Adam (cosine-decayed learning rate), then L-BFGS (strong Wolfe line
    search), then — when the Jacobian is small enough (residuals × parameters ≤ 2·10⁷,
    i.e. the few-point designs where interpolation accuracy matters most) — a
    Levenberg–Marquardt polish that drives the residuals to round-off in float64.

    The defaults are those of :class:`~pdesurrogates.training.MultiFidelityConfig`. Adam
    and L-BFGS run in the :class:`~pdesurrogates.training.Trainer`.

    Parameters
    ----------
    net : MultiFidelityNet
        The network; its scalings are set from the data (or ``bounds``) and its weights
        drawn from ``seed`` first.
    xs : sequence of arrays, each ``(n_k, in_dim)``
        Inputs of each level, lowest fidelity first (physical units).
    ys : sequence of arrays, each ``(n_k,)``
        Outputs of each level.
    bounds : array (in_dim, 2), optional
        Input box used for the [−1, 1] scaling; default the range of all ``xs``. When
        given, the net's predictions at inputs outside it warn (``bounds_declared``).
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
    progress : bool or ProgressBar
        Show a progress bar (or add this fit's bars to a running one).
    top_only : bool
        Refit only the top correction (redrawn from ``seed``); the lower levels and the
        scalings stay as they are (used to score held-out points).

    Returns
    -------
    dict
        ``{"loss": final total loss, "level_mse": [...], "seconds": ...,
        "low_val_rmse": ...}`` (errors in scaled units; ``low_val_rmse`` is NN_L's RMS
        error on the held-out points, ``nan`` without a hold-out).
    """
    declared = net.bounds_declared if top_only else bounds is not None
    xs_t, ys_t, bounds = prepare_mf_data(xs, ys, net.in_dim, net.n_levels, bounds)
    _check_fit_args(l2, linear_l2, adam_steps, lbfgs_steps, lm_steps, stagewise, joint, low_holdout)
    dtype = next(net.parameters()).dtype
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(int(seed))
    if not top_only:
        net.set_scaling(bounds, [y.numpy() for y in ys_t])
    net.bounds_declared = False  # the fit's own calls check no bounds (set again below)
    net.reset_parameters(gen, top_only=top_only)
    xs_t = [x.to(dtype) for x in xs_t]
    ys_t = [y.to(dtype) for y in ys_t]
    x_val, y_val = _split_low_holdout(xs_t, ys_t, low_holdout, seed)

    def low_val() -> float:
        with torch.no_grad():
            e = (net(x_val, level=0) - y_val) / net.y_half[0]
        return float(e.square().mean().sqrt())

    if not top_only and net.low_additive is not None:
        _warm_start_low(net, xs_t[0], ys_t[0], x_val, y_val)
    residuals = _residual_fn(net, xs_t, ys_t, l2, linear_l2)
    net.train()
    for levels, names in _stages(net, stagewise, joint, top_only):
        minimise_residuals(
            net,
            lambda params=None, lv=levels: residuals(lv, params),
            names,
            adam_steps=adam_steps,
            lbfgs_steps=lbfgs_steps,
            lm_steps=lm_steps,
            lr=lr,
            val_fn=low_val if (x_val is not None and levels == [0]) else None,
            progress=progress,
        )
    net.eval()
    with torch.no_grad():
        mse = [
            float(((net(xs_t[k], level=k) - ys_t[k]) / net.y_half[k]).square().mean())
            for k in range(net.n_levels)
        ]
        total = float(residuals(list(range(net.n_levels))).square().sum())
    net.bounds_declared = declared  # from now on predictions outside declared bounds warn
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
