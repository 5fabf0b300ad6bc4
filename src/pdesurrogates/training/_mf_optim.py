"""Least-squares optimisation of a multi-fidelity network stage: Adam, then L-BFGS (both
driven by the :class:`~pdesurrogates.training.Trainer`), then a Levenberg–Marquardt
polish, with the best validation state kept across the three."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from pdesurrogates._progress import ProgressBar
from pdesurrogates.training._looptools import state_copy
from pdesurrogates.training._steps import FullBatch, TrainingStep
from pdesurrogates.training._trainer import Trainer

__all__ = ["minimise_residuals"]

#: Levenberg–Marquardt only when residuals × parameters is at most this (Jacobian size)
LM_MAX_JACOBIAN = 20_000_000

# the residual closure holds the data: the Trainer's one batch per epoch is a placeholder
_ONE_BATCH = FullBatch(None)


class _ResidualStep(TrainingStep):
    """Loss ``Σ residuals()²``; validation score ``val_fn()``."""

    def __init__(self, residuals: Callable[..., torch.Tensor], val_fn=None) -> None:
        self.residuals = residuals
        self.val_fn = val_fn

    def loss(self, model, batch) -> tuple[torch.Tensor, int]:
        return self.residuals().square().sum(), 1

    def evaluate(self, model, batch) -> tuple[dict[str, float], int]:
        return {"loss": float(self.val_fn())}, 1


def minimise_residuals(
    model: nn.Module,
    residuals: Callable[..., torch.Tensor],
    names: Sequence[str],
    *,
    adam_steps: int,
    lbfgs_steps: int,
    lm_steps: int,
    lr: float,
    val_fn: Callable[[], float] | None = None,
    progress: bool | ProgressBar = False,
) -> None:
    """Minimise ``Σ residuals()²`` over the parameters ``names`` of ``model`` (the others
    stay frozen): Adam (cosine learning rate from ``lr`` to ``lr / 20``), then L-BFGS
    (strong Wolfe), then Levenberg–Marquardt when the Jacobian is small enough.

    ``residuals(params=None)`` returns the residual vector; with a dict ``params`` (name
    -> tensor) it must evaluate the model with those parameters
    (:func:`torch.func.functional_call`), as Levenberg–Marquardt needs. With ``val_fn``
    (a validation error), the state of lowest ``val_fn()`` seen (at the start, 100 times
    during Adam, after L-BFGS and after Levenberg–Marquardt) is restored at the end.
    """
    named = dict(model.named_parameters())
    params = [named[n] for n in names]
    step = _ResidualStep(residuals, val_fn)
    valid = _ONE_BATCH if val_fn is not None else None
    best = (val_fn(), state_copy(model)) if val_fn is not None else (math.inf, None)
    device = params[0].device if params else torch.device("cpu")
    common = dict(step=step, params=params, device=device, progress=progress)
    common.update(restore_best=False, scheduler=None)
    phases = []
    if adam_steps:
        every = max(1, adam_steps // 100)
        phases.append(dict(lr=lr, epochs=adam_steps, valid_every=every, min_lr=lr / 20))
        phases[-1]["scheduler"] = "cosine"
    if lbfgs_steps:
        kw = dict(max_iter=lbfgs_steps, max_eval=2 * lbfgs_steps, tolerance_grad=1e-14)
        kw.update(tolerance_change=1e-20, history_size=50)
        phases.append(dict(optimizer="lbfgs", lr=1.0, epochs=1, optimizer_kwargs=kw))
    for phase in phases:
        trainer = Trainer(model, **{**common, **phase})
        trainer.fit(_ONE_BATCH, valid)
        if trainer.best_loss < best[0]:
            best = (trainer.best_loss, trainer.best_state)
    if lm_steps:
        n_par = sum(p.numel() for p in params)
        with torch.no_grad():
            n_res = residuals().numel()
        if n_res * n_par <= LM_MAX_JACOBIAN:
            _levenberg_marquardt(residuals, names, params, lm_steps)
            if val_fn is not None:
                v = val_fn()
                if v < best[0]:
                    best = (v, state_copy(model))
    if best[1] is not None:
        model.load_state_dict(best[1])


# Levenberg–Marquardt is not a gradient step and so no Trainer phase: it needs the whole
# residual vector and its Jacobian (torch.func.jacrev), not a scalar loss, and solves the
# damped normal equations itself. It is kept here as MF-DNN's last polish because on the
# few-point designs it drives the residuals to round-off in float64, which Adam and L-BFGS
# do not (Forrester 21/4: relative L2 3e-4).
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
