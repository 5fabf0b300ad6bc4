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

import itertools
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from pdesurrogates.errors import SolverError
from pdesurrogates.solvers._checks import (
    ALGEBRAIC_HINT,
    check_grid_stencil,
    check_maxiter,
    check_positive_int,
    check_tolerances,
    grid_shape_for,
    prepare,
    unwrap_grid,
)
from pdesurrogates.solvers._krylov import _flexible_cg
from pdesurrogates.solvers._multigrid import _strides
from pdesurrogates.solvers._result import SolveResult

__all__ = ["dcdm", "grid_stencil", "network_apply"]


def stencil_offsets(dim: int) -> list[tuple[int, ...]]:
    """The ``3**dim`` neighbour offsets of :func:`grid_stencil`, in its channel order."""
    return list(itertools.product((-1, 0, 1), repeat=int(dim)))


def grid_stencil(
    A, shape: Sequence[int], *, who: str = "the coefficient-aware model", checked: bool = False
):
    """The stencil coefficients of a grid matrix ``A`` as images, ``(3**dim, *shape)``.

    Channel ``k`` holds ``A[i, i + offset_k]`` at cell ``i`` (zero where that neighbour is
    outside the grid), for the offsets of :func:`stencil_offsets` (``itertools.product((-1,
    0, 1), repeat=dim)``: channel ``(3**dim - 1) // 2`` is the diagonal). The 5-point (2D)
    and 7-point (3D) stencils fill the axis channels; 9-/27-point ones (mixed derivatives)
    fill the rest.

    Raises
    ------
    SolverError
        ``A`` is not sparse, its size is not the grid's, or a nonzero couples cells that
        are not grid neighbours (a renumbered matrix, another grid, a periodic wrap). The
        nonzeros are sorted by their offset ``j - i`` in one pass that also checks them;
        only a matrix failing it is checked cell by cell (:func:`check_grid_stencil`, which
        ``checked=True`` skips) to name the offending entry.

    Examples
    --------
    >>> from pdesurrogates.solvers import gallery
    >>> S = grid_stencil(gallery.poisson2d(4), (4, 4))
    >>> S.shape, S[:, 1, 1].tolist()  # cell (1, 1): its 3x3 neighbourhood, row by row
    ((9, 4, 4), [0.0, -1.0, 0.0, -1.0, 4.0, -1.0, 0.0, -1.0, 0.0])
    >>> S[1, 0, 1]  # the neighbour (-1, 0) of cell (0, 1) is outside the grid
    np.float64(0.0)
    """
    shape = tuple(int(s) for s in shape)
    if not sp.issparse(A):
        raise SolverError(
            f"{who} reads the stencil coefficients of a sparse A; got {type(A).__name__}: "
            "pass A as a scipy sparse matrix"
        )
    n = int(np.prod(shape))
    if A.shape != (n, n):
        raise SolverError(f"A is {A.shape[0]}x{A.shape[1]} but the grid {shape} has {n} cells")
    csr = sp.csr_matrix(A)
    if not csr.has_canonical_format:
        csr = csr.copy()
        csr.sum_duplicates()
    out = _stencil_by_offset(csr, shape) if min(shape[1:], default=3) >= 3 else None
    if out is None:  # a nonzero off the stencil, or a tiny grid: find and name it
        out = _stencil_by_cell(csr, shape, who, checked)
    return out.reshape(3 ** len(shape), *shape)


def _stencil_by_offset(csr, shape):
    """:func:`grid_stencil` from the diagonals ``A[i, i + f]`` of the flat offsets ``f``
    (distinct when every axis but the first has at least 3 cells); ``None`` if a nonzero
    lies elsewhere or wraps around a grid edge."""
    n = csr.shape[0]
    strides = _strides(shape)
    offs = stencil_offsets(len(shape))
    out = np.zeros((len(offs), n))
    found = 0
    for k, o in enumerate(offs):
        f = sum(a * b for a, b in zip(o, strides, strict=True))
        if abs(f) >= n:
            continue
        band = csr.diagonal(f)
        found += int(np.count_nonzero(band))
        if f >= 0:
            out[k, : n - f] = band
        else:
            out[k, -f:] = band
    if found != int(np.count_nonzero(csr.data)):
        return None
    img = out.reshape(len(offs), *shape)
    for k, o in enumerate(offs):  # a flat offset that wraps to the next row/plane
        for ax, d in enumerate(o):
            edge = (slice(None),) * ax + ((0 if d < 0 else -1),)
            if d and np.any(img[k][edge]):
                return None
    return out


def _stencil_by_cell(csr, shape, who, checked):
    if not checked:
        check_grid_stencil(csr, shape, who=who)
    n = csr.shape[0]
    coo = csr.tocoo()
    keep = coo.data != 0
    row, col, val = coo.row[keep], coo.col[keep], coo.data[keep].astype(np.float64)
    ri, ci = np.unravel_index(row, shape), np.unravel_index(col, shape)
    code = np.zeros(row.size, dtype=np.int64)
    for a, b in zip(ri, ci, strict=True):
        d = b.astype(np.int64) - a.astype(np.int64)
        if np.any(np.abs(d) > 1):  # check_grid_stencil let a periodic wrap through
            k = int(np.flatnonzero(np.abs(d) > 1)[0])
            raise SolverError(
                f"{who} needs a stencil without periodic wrap, but A[{int(row[k])}, "
                f"{int(col[k])}] couples cells on opposite sides of the grid {shape}; "
                f"{ALGEBRAIC_HINT}"
            )
        code = 3 * code + (d + 1)
    out = np.zeros((3 ** len(shape), n))
    out.reshape(-1)[code * n + row] = val  # no duplicates: the CSR copy is canonical
    return out


def network_apply(
    model,
    shape: Sequence[int],
    *,
    mask: np.ndarray | None = None,
    stencil: np.ndarray | None = None,
) -> Callable[[np.ndarray], np.ndarray]:
    """Wrap a torch model ``(1, 1, *shape) -> (1, 1, *shape)`` as ``r -> d`` on vectors.

    The model runs in its own dtype and device under ``torch.inference_mode`` (float32
    on the CPU for a plain callable without parameters); the returned direction is
    float64, zeroed outside ``mask`` (solid cells) when given. Models with
    ``accepts_mask = True`` also receive the mask as a second argument. A
    coefficient-aware model (``model.coefficients``) gets ``stencil``
    (:func:`grid_stencil` of ``A``), prepared once by ``model.prepare``; when it offers
    ``model.numpy_cycle`` (a :class:`~pdesurrogates.surrogates.ConjugateDirectionNet`),
    its cycle is compiled once to sparse matrices and applied in numpy every iteration,
    in the model's dtype, with no torch call in the loop.
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
    kw, compiled = {}, None
    if getattr(model, "coefficients", False):
        if stencil is None:
            raise SolverError("a coefficient-aware model needs stencil=grid_stencil(A, shape)")
        st = torch.as_tensor(stencil, device=device)[None]
        # the compiled numpy cycle runs in float32/float64; half precision stays in torch
        if callable(getattr(model, "numpy_cycle", None)) and dtype in (
            torch.float32,
            torch.float64,
        ):
            compiled = model.numpy_cycle(st)
        else:
            with torch.inference_mode():
                kw["coefficients"] = model.prepare(st)

    def apply(r: np.ndarray) -> np.ndarray:
        if compiled is not None:
            d = compiled(r)
            if keep is not None:
                d[~keep] = 0.0
            return d
        with torch.inference_mode():
            t = torch.as_tensor(np.ascontiguousarray(r), dtype=dtype, device=device)
            if mask_t is None:
                out = model(t.view(1, 1, *shape), **kw)
            else:
                out = model(t.view(1, 1, *shape), mask_t, **kw)
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
    coeff = getattr(model, "coefficients", False) and sp.issparse(A)
    # a coefficient-aware model checks the pattern while reading the stencil (one pass)
    grid = grid_shape_for(n, int(dim), shape, A=None if coeff else A, who="dcdm")
    stencil = None
    if getattr(model, "coefficients", False):
        try:
            stencil = grid_stencil(A, grid, who="dcdm (coefficient-aware model)")
        except SolverError:
            if coeff:  # the grid check's message (it says whether the grid was guessed)
                grid_shape_for(n, int(dim), shape, A=A, who="dcdm")
            raise
    apply = network_apply(model, grid, mask=mask, stencil=stencil)
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
