"""Checks of the inputs shared by the multi-fidelity models (co-kriging, MF-DNN): the
fidelity level asked for, and prediction inputs outside the declared input box."""

from __future__ import annotations

import contextvars
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

__all__ = ["check_inputs", "check_level", "quiet_box", "warn_outside", "warn_outside_box"]

_QUIET = contextvars.ContextVar("pdesurrogates_quiet_box", default=None)


class _Seen:
    """The inputs :func:`warn_outside_box` was given within a :func:`quiet_box` block:
    the model and the range of every input dimension."""

    def __init__(self) -> None:
        self.model, self.lo, self.hi = None, None, None

    def add(self, model, xa: np.ndarray) -> None:
        lo, hi = xa.min(0), xa.max(0)
        if self.model is None:
            self.model, self.lo, self.hi = model, lo, hi
        elif len(lo) == len(self.lo):
            self.lo, self.hi = np.minimum(self.lo, lo), np.maximum(self.hi, hi)

    def warn(self, *, stacklevel: int = 3) -> None:
        """One warning for everything seen (nothing if it stayed in the box)."""
        if self.model is not None:
            box = torch.as_tensor(np.stack([self.lo, self.hi]))
            warn_outside_box(self.model, box, stacklevel=stacklevel + 1)


@contextmanager
def quiet_box() -> Iterator[_Seen]:
    """Within the block, :func:`warn_outside_box` says nothing (in this thread or task
    only) but records the range it was given: the members of an ensemble after the
    first share its check, and a caller evaluating a model in many batches warns once,
    for the whole range, with ``seen.warn()`` after the block."""
    seen = _Seen()
    token = _QUIET.set(seen)
    try:
        yield seen
    finally:
        _QUIET.reset(token)


def warn_outside(
    x: np.ndarray, bounds: np.ndarray, what: str, *, stacklevel: int = 3, eps: float = 0.0
) -> None:
    """``UserWarning`` naming each input dimension where ``x`` leaves the declared box.

    A point on the box's edge is inside: the edge is widened by ``1e-9`` of the span and
    by ``4 eps |bound|`` for a box stored at machine epsilon ``eps`` (float32 nets)."""
    span = bounds[:, 1] - bounds[:, 0]
    slack = 1e-9 * span + 4 * eps * np.abs(bounds).max(1)
    below = (x < bounds[:, 0] - slack).any(0)
    above = (x > bounds[:, 1] + slack).any(0)
    for j in np.flatnonzero(below | above):
        col = x[:, j]
        warnings.warn(
            f"{what} dimension {j} has values in [{col.min():g}, {col.max():g}], outside the "
            f"declared bounds [{bounds[j, 0]:g}, {bounds[j, 1]:g}]; the model extrapolates "
            "there (widen bounds if that range is intended)",
            UserWarning,
            stacklevel=stacklevel,
        )


def warn_outside_box(model, x: torch.Tensor, *, stacklevel: int = 4) -> None:
    """:func:`warn_outside` for a multi-fidelity model's prediction input ``x`` ``(n, d)``:
    ``model.input_box()`` is its input box ``(d, 2)``, checked when
    ``model.bounds_declared`` (the box of undeclared bounds is the training data's range),
    stored in ``model.box_dtype`` (default float64); nothing within :func:`quiet_box`."""
    if not getattr(model, "bounds_declared", False) or x.ndim != 2 or not len(x):
        return
    if torch._C._functorch.is_functorch_wrapped_tensor(x):  # under torch.func: no values
        return
    xa = x.detach().cpu().to(torch.float64).numpy()
    seen = _QUIET.get()
    if seen is not None:
        seen.add(model, xa)
        return
    eps = float(torch.finfo(getattr(model, "box_dtype", torch.float64)).eps)
    warn_outside(xa, model.input_box(), "prediction input", stacklevel=stacklevel + 1, eps=eps)


def check_level(level, n_levels: int) -> int:
    """Index in ``[0, n_levels)`` of fidelity ``level`` (None: the highest; negative:
    counted from the highest, -1 the highest); ``ValueError`` naming it otherwise."""
    if level is None:
        return n_levels - 1
    ok = isinstance(level, int | np.integer) and not isinstance(level, bool)
    if not (ok and -n_levels <= level < n_levels):
        raise ValueError(
            f"level={level!r} is not a level of this {n_levels}-level model; give an "
            f"integer in [{-n_levels}, {n_levels - 1}]: 0 .. {n_levels - 1} from the lowest "
            f"fidelity, -1 .. {-n_levels} from the highest"
        )
    return int(level) % n_levels


def check_inputs(gp, x, *, keep_grad: bool = False) -> torch.Tensor:
    """Prediction input of a fitted co-kriging model ``gp`` as a float64 tensor ``(n, d)``
    (detached unless ``keep_grad``); ``ValueError`` on a bad shape or NaN, and a
    ``UserWarning`` where it leaves declared bounds (:func:`warn_outside_box`)."""
    if not gp.is_fitted:
        raise ValueError("this CoKrigingGP is not fitted; call fit(...) first")
    xt = torch.as_tensor(np.asarray(x, dtype=np.float64)) if not torch.is_tensor(x) else x
    xt = (xt if keep_grad else xt.detach()).to(torch.float64)
    if xt.ndim == 1 and gp.in_dim == 1:
        xt = xt[:, None]
    if xt.ndim != 2 or xt.shape[1] != gp.in_dim:
        raise ValueError(f"X must have shape (n, {gp.in_dim}); got {tuple(xt.shape)}")
    if not torch.isfinite(xt.detach()).all():
        raise ValueError("X contains NaN or infinite values")
    warn_outside_box(gp, xt, stacklevel=4)
    return xt
