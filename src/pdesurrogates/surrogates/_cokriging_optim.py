"""Hyperparameter optimisers of the co-kriging levels (marginal-likelihood fits).

Why this is not :class:`pdesurrogates.training.Trainer`: a Gaussian-process level has a
handful of hyperparameters (length scales, output scale, noise, ρ, β) and is fitted by
maximising the exact marginal likelihood of *all* its points at once: full-batch
L-BFGS with a strong-Wolfe line search (or Adam for the sparse lowest level), with no
epochs, data loader, batches, checkpoints or validation split. These two short loops are
the whole optimiser; progress and the wall-clock budget go through
:mod:`pdesurrogates._progress` like every other long-running task.
"""

from __future__ import annotations

import torch

from pdesurrogates._progress import TimeBudget

__all__ = ["adam", "lbfgs"]


def _trainable(gp) -> list[torch.nn.Parameter]:
    return [p for p in gp.parameters() if p.requires_grad]


def lbfgs(gp, mll, z: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    """Maximise ``mll(gp(z), y)`` by full-batch L-BFGS; returns the final log likelihood.

    One L-BFGS call of at most ``steps`` iterations (``2 steps`` evaluations), so it is
    not interrupted by a time budget: callers check the budget between restarts.
    """
    opt = torch.optim.LBFGS(
        _trainable(gp),
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
            # gradient of the negative marginal likelihood w.r.t. the few hyperparameters
            loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float(mll(gp(z), y))


def adam(
    gp, mll, z: torch.Tensor, y: torch.Tensor, steps: int, lr: float, budget: TimeBudget | None
) -> float:
    """Maximise ``mll(gp(z), y)`` by full-batch Adam; returns the final log likelihood.

    Stops early (with the hyperparameters reached) when ``budget`` is exhausted.
    """
    opt = torch.optim.Adam(_trainable(gp), lr=lr)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = -mll(gp(z), y)
        # gradient of the negative marginal likelihood w.r.t. the few hyperparameters
        loss.backward()
        opt.step()
        if budget is not None and budget.exhausted():
            break
    with torch.no_grad():
        return float(mll(gp(z), y))
