"""The deep conjugate-direction method (Kaneda et al., ICML 2023), with a safe fallback.

:func:`dcdm` is truncated flexible CG whose preconditioner is a trained network: every
iteration feeds the unit residual ``r / ||r||`` (as a grid image) to the network, makes
the returned direction A-orthogonal to the last ``n_orth`` directions and takes the exact
line-search step ``alpha = d^T r / d^T A d``. The residual is recomputed as ``b - A x``
every iteration, so the stopping test is on the *true* residual.

If the network returns NaN/Inf, or a direction that is not a descent direction
(``d^T r <= 0`` after orthogonalisation), that iteration uses the residual instead; the
result's ``info["fallbacks"]`` counts such iterations and the message says so.

This module does not import :mod:`pdesurrogates.surrogates`: it only calls the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from pdesurrogates.errors import SolverError
from pdesurrogates.solvers._checks import (
    check_maxiter,
    check_positive_int,
    check_tolerances,
    grid_shape_for,
    prepare,
    unwrap_grid,
)
from pdesurrogates.solvers._krylov import _flexible_cg
from pdesurrogates.solvers._result import SolveResult

__all__ = ["dcdm", "network_apply"]


def network_apply(
    model, shape: Sequence[int], *, mask: np.ndarray | None = None
) -> Callable[[np.ndarray], np.ndarray]:
    """Wrap a torch model ``(1, 1, *shape) -> (1, 1, *shape)`` as ``r -> d`` on vectors.

    The model runs in its own dtype and device under ``torch.inference_mode`` (float32
    on the CPU for a plain callable without parameters); the returned direction is
    float64, zeroed outside ``mask`` (solid cells) when given. Models with
    ``accepts_mask = True`` also receive the mask as a second argument.
    """
    import torch

    params = getattr(model, "parameters", None)
    param = next(iter(params()), None) if callable(params) else None
    dtype = param.dtype if param is not None else torch.float32
    device = param.device if param is not None else torch.device("cpu")
    shape = tuple(int(s) for s in shape)
    size = int(np.prod(shape))
    keep = None if mask is None else np.asarray(mask, bool).reshape(-1)
    mask_t = None
    if keep is not None and getattr(model, "accepts_mask", False) and not keep.all():
        mask_t = torch.as_tensor(keep, dtype=dtype, device=device).view(1, 1, *shape)

    def apply(r: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            t = torch.as_tensor(np.ascontiguousarray(r), dtype=dtype, device=device)
            if mask_t is None:
                out = model(t.view(1, 1, *shape))
            else:
                out = model(t.view(1, 1, *shape), mask_t)
            try:
                d = torch.as_tensor(out).reshape(-1).to("cpu", torch.float64).numpy().copy()
            except (TypeError, ValueError, RuntimeError) as exc:
                raise SolverError(
                    f"the model returned {type(out).__name__}, not a tensor of directions"
                ) from exc
        if d.size != size:
            raise SolverError(f"the model returned {d.size} values for a grid of shape {shape}")
        if keep is not None:
            d[~keep] = 0.0
        return d

    return apply


def dcdm(
    A,
    b,
    model,
    *,
    x0=None,
    rtol: float = 1e-6,
    atol: float = 0.0,
    maxiter: int | None = None,
    n_orth: int = 2,
    callback: Callable[[np.ndarray], None] | None = None,
    shape: Sequence[int] | None = None,
    mask: np.ndarray | None = None,
) -> SolveResult:
    """Solve ``A x = b`` with the deep conjugate-direction method.

    Parameters
    ----------
    A : sparse matrix, ndarray, LinearOperator or gallery Problem, shape (n, n)
        Symmetric positive definite; unknowns in C order of the grid. A
        :class:`~pdesurrogates.solvers.gallery.Problem` gives its grid and fluid mask, and
        a matrix from :mod:`~pdesurrogates.solvers.gallery` its grid (``A.grid_shape``).
    b : ndarray, shape (n,)
    model : torch.nn.Module
        Maps ``(1, 1, *grid)`` residual images to directions, e.g. a trained
        :class:`pdesurrogates.surrogates.ConjugateDirectionNet`. Its ``dim`` attribute
        (when present) must match the grid dimension.
    x0 : ndarray, optional
        Initial guess (zeros).
    rtol, atol : float
        Stop when ``||b - A x|| <= max(rtol ||b||, atol)`` (true residual).
    maxiter : int, optional
        Iteration cap (default ``min(n, 1000)``); reaching it returns status ``MAXITER``.
    n_orth : int
        Number of previous directions to A-orthogonalise against (2 in the paper).
    callback : callable, optional
        ``callback(xk)`` after every iteration.
    shape : tuple of int, optional
        Grid shape, needed only for a bare matrix of your own on a grid that is not a
        square/cube (those are inferred from ``n`` and ``model.dim``). The sparsity of a
        sparse ``A`` is checked against a stencil on the grid: a renumbered matrix is
        refused with a ``SolverError`` that names the algebraic alternatives.
    mask : ndarray of bool, optional
        Cells that are unknowns of the PDE (a :class:`~pdesurrogates.solvers.gallery.Problem`
        mask); the direction is zeroed elsewhere.

    Returns
    -------
    SolveResult
        ``info["fallbacks"]`` counts iterations that used the residual direction;
        ``status`` is one of :class:`~pdesurrogates.solvers.SolveStatus` (as for
        :func:`~pdesurrogates.solvers.fcg`); numerical trouble never raises.

    Raises
    ------
    SolverError
        A malformed argument, as for :func:`~pdesurrogates.solvers.cg`, a model whose
        dimension does not match the grid, a grid shape or mask that does not fit ``A``,
        a matrix that is not a stencil on its grid.
    """
    n_orth = check_positive_int(n_orth, "n_orth")
    rtol, atol = check_tolerances(rtol, atol)
    if not callable(model):
        raise SolverError(f"model must be a callable torch module; got {type(model).__name__}")
    A, shape, mask = unwrap_grid(A, shape, mask)
    system = prepare(A, b, x0, check_symmetric=True)
    n = system.n
    dim = getattr(model, "dim", None)
    if dim is None:
        if shape is None:
            raise SolverError(
                "the model has no 'dim' attribute and A carries no grid; pass "
                "shape=<grid array shape>, e.g. shape=(96, 64)"
            )
        dim = len(tuple(shape))
    grid = grid_shape_for(n, int(dim), shape, A=A, who="dcdm")
    if mask is not None and np.asarray(mask).size != n:
        raise SolverError(f"mask has {np.asarray(mask).size} cells, expected {n}")
    apply = network_apply(model, grid, mask=mask)
    return _flexible_cg(
        system,
        apply,
        rtol=rtol,
        atol=atol,
        maxiter=check_maxiter(maxiter, n, default=min(n, 1000)),
        m=n_orth,
        callback=callback,
        true_residual=True,
        method="dcdm",
        normalize_input=True,
    )
