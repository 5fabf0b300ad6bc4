"""Argument checks shared by every solver, right-hand-side scaling and the stagnation monitor.

The rule: a malformed argument raises :class:`~pdesurrogates.errors.SolverError` (also a
``ValueError``) naming the argument and, for NaN/Inf, the index. A well-formed system whose
*values* CG cannot handle (not symmetric, a diagonal entry ``<= 0``) is not an error: the
solver returns a :class:`SolveResult` with that status before the first iteration.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, aslinearoperator

from pdesurrogates.errors import SolverError
from pdesurrogates.solvers._result import SolveStatus

__all__ = [
    "NONSYMMETRIC_HINT",
    "SYMMETRY_RTOL",
    "Monitor",
    "System",
    "asymmetry",
    "check_finite_matrix",
    "check_grid_stencil",
    "check_maxiter",
    "check_positive_int",
    "check_symmetric_matrix",
    "check_tolerances",
    "grid_shape_for",
    "unwrap_grid",
]

EPS = float(np.finfo(np.float64).eps)
_SAFE = (2.0**-200, 2.0**200)  # |b| in this range is solved unscaled (bit-identical to before)
FLOOR_FACTOR = 1e3
"""The residual counts as "at the floating-point floor" below this many times
``eps (||b|| + ||A|| ||x||)``."""


@dataclass
class System:
    """A checked system ``A x = b`` in scaled units: ``b / scale`` and ``x0 / scale``."""

    op: LinearOperator
    b: np.ndarray
    x: np.ndarray
    n: int
    scale: float
    defect: tuple[SolveStatus, str] | None = None


def check_tolerances(rtol, atol) -> tuple[float, float]:
    """``(rtol, atol)`` as floats; ``SolverError`` unless both are finite numbers ``>= 0``."""
    out = []
    for name, v in (("rtol", rtol), ("atol", atol)):
        ok = isinstance(v, numbers.Real) and not isinstance(v, bool)
        if not ok or not np.isfinite(float(v)) or float(v) < 0:
            raise SolverError(
                f"{name} must be a finite number >= 0 (0 means: iterate until maxiter or the "
                f"floating-point floor); got {v!r}"
            )
        out.append(float(v))
    return out[0], out[1]


def check_maxiter(maxiter, n: int, default: int | None = None) -> int:
    """The iteration cap: ``default`` (``10 n``) for None, else a checked integer ``>= 0``."""
    if maxiter is None:
        return 10 * n if default is None else default
    ok = isinstance(maxiter, numbers.Real) and not isinstance(maxiter, bool)
    if not ok or not np.isfinite(float(maxiter)) or float(maxiter) != int(maxiter):
        raise SolverError(f"maxiter must be an integer >= 0 or None; got {maxiter!r}")
    if int(maxiter) < 0:
        raise SolverError(f"maxiter must be >= 0 (0 returns x0 unchanged); got {maxiter}")
    return int(maxiter)


def check_positive_int(value, name: str) -> int:
    """``value`` as an int ``>= 1`` (``SolverError`` otherwise)."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok or int(value) < 1:
        raise SolverError(f"{name} must be an integer >= 1; got {value!r}")
    return int(value)


def _operator(A):
    """``(LinearOperator, n, explicit matrix or None)``; ``SolverError`` for a bad ``A``."""
    if A is None:
        raise SolverError("A is None; pass a square matrix or LinearOperator")
    if isinstance(A, LinearOperator):
        explicit = None
    elif sp.issparse(A) or isinstance(A, np.ndarray):
        explicit = A
    else:
        raise SolverError(
            "A must be a 2-D numpy array, a scipy sparse matrix or a LinearOperator; got "
            f"{type(A).__name__}"
        )
    shape = tuple(A.shape)
    if len(shape) != 2:
        raise SolverError(f"A must be 2-D; got shape {shape}")
    if shape[0] != shape[1]:
        raise SolverError(f"A must be square; got shape {shape}")
    kind = np.dtype(A.dtype).kind if A.dtype is not None else "f"
    if kind == "c":
        raise SolverError("A is complex; the solvers take real symmetric matrices")
    if kind not in "biuf":
        raise SolverError(f"A must hold real numbers; got dtype {A.dtype}")
    if explicit is not None:
        if isinstance(explicit, np.ndarray):
            explicit = np.asarray(explicit, dtype=np.float64)
        check_finite_matrix(explicit)
        A = explicit
    return aslinearoperator(A), int(shape[0]), explicit


def vector(v, name: str, n: int) -> np.ndarray:
    """``v`` as a float64 ``(n,)`` copy-free array; ``SolverError`` naming ``name``."""
    try:
        v = np.asarray(v)
    except Exception as exc:  # ragged lists and the like
        raise SolverError(f"{name} must be an array of {n} numbers; got {type(v)!r}") from exc
    if v.ndim == 2 and 1 in v.shape:
        v = v.reshape(-1)
    if v.ndim != 1 or v.shape[0] != n:
        raise SolverError(
            f"{name} has shape {v.shape}, expected ({n},) to match A of shape ({n}, {n})"
        )
    if v.dtype.kind == "c":
        raise SolverError(f"{name} is complex; split it into real and imaginary parts")
    if v.dtype.kind not in "biuf":
        raise SolverError(f"{name} must hold real numbers; got dtype {v.dtype}")
    v = v.astype(np.float64, copy=False)
    bad = ~np.isfinite(v)
    if bad.any():
        idx = np.flatnonzero(bad)
        more = f" (and {idx.size - 1} more NaN/Inf entries)" if idx.size > 1 else ""
        raise SolverError(
            f"{name} holds NaN or Inf: {name}[{idx[0]}] = {v[idx[0]]}{more}; it must be "
            f"finite: check how {name} was computed"
        )
    return v


def check_finite_matrix(A, name: str = "A") -> None:
    """``SolverError`` naming the first NaN/Inf entry of a dense or sparse matrix."""
    if isinstance(A, np.ndarray):
        bad = ~np.isfinite(A)
        if bad.any():
            i, j = (int(k) for k in np.argwhere(bad)[0])
            raise SolverError(
                f"{name} holds NaN or Inf: {name}[{i}, {j}] = {A[i, j]} ({int(bad.sum())} "
                f"NaN/Inf entries in all); {name} must be finite"
            )
        return
    data = A.data if A.format in ("csr", "csc", "coo", "bsr") else None
    if data is not None and np.isfinite(data).all():
        return
    coo = A.tocoo()
    bad = ~np.isfinite(coo.data)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise SolverError(
            f"{name} holds NaN or Inf: {name}[{int(coo.row[k])}, {int(coo.col[k])}] = "
            f"{coo.data[k]} ({int(bad.sum())} NaN/Inf entries in all); {name} must be finite"
        )


SYMMETRY_RTOL = 1e-10
"""``A`` counts as symmetric when ``max |A_ij - A_ji| <= SYMMETRY_RTOL * max |A|``: the
tolerance of :func:`~pdesurrogates.solvers.cg`'s ``NONSYMMETRIC`` status and of the
preconditioners that refuse a non-symmetric ``A`` (one rule for both)."""

NONSYMMETRIC_HINT = (
    "if the difference is round-off, symmetrise it: A = (A + A.T) / 2; a non-symmetric "
    "system needs gmres with a preconditioner for non-symmetric matrices, e.g. "
    "scipy.sparse.linalg.gmres(A, b, M=pdesurrogates.solvers.AMG(A, "
    "symmetry='nonsymmetric').aspreconditioner()) or M=pdesurrogates.solvers.jacobi(A)"
)


def _dia_exactly_symmetric(A: sp.dia_matrix) -> bool:
    """``A == A^T`` exactly, read off the diagonals: ``A[i, i + k]`` is ``data[+k][i + k]``
    and ``A[i + k, i]`` is ``data[-k][i]``, so each pair of diagonals is compared as two
    contiguous slices (no transpose, no copy)."""
    n = A.shape[0]
    data = A.data
    if data.shape[1] < n:
        return False  # an unusual short layout: let the general test decide
    row = {int(o): d for d, o in enumerate(A.offsets)}
    for k, d in row.items():
        if k == 0 or abs(k) >= n:
            continue
        if -k not in row:  # a diagonal without its mirror must hold zeros only
            if np.any(data[d, k:n] if k > 0 else data[d, : n + k]):
                return False
        elif k > 0 and not np.array_equal(data[d, k:n], data[row[-k], : n - k]):
            return False
    return True


def asymmetry(A) -> tuple[int, int, float, float, float, float] | None:
    """The worst pair of a matrix that is not symmetric, or None.

    Returns ``(i, j, A[i, j], A[j, i], |A[i, j] - A[j, i]|, max |A|)`` for the largest
    ``|A_ij - A_ji|`` when it exceeds :data:`SYMMETRY_RTOL` ``* max |A|``; None for a
    symmetric matrix. Exact (every entry is compared), and cheap on the common case of an
    exactly symmetric matrix: a DIA matrix (the form the grid multigrid builds) compares
    its diagonal ``+k`` with ``-k`` shifted; a canonical CSR one is transposed in one C
    pass and compared array by array. Only a matrix that is not exactly symmetric pays
    for locating the worst pair. Dense arrays are compared with their transpose.
    """
    if not sp.issparse(A):
        A = np.asarray(A, dtype=np.float64)
        if not A.size:
            return None
        diff = np.abs(A - A.T)
        i, j = (int(k) for k in np.unravel_index(int(np.argmax(diff)), diff.shape))
        return _worst(i, j, float(A[i, j]), float(A[j, i]), float(np.max(np.abs(A))))
    if A.format == "dia" and _dia_exactly_symmetric(A):
        return None
    csr = A.tocsr()  # no copy for CSR
    if csr.dtype != np.float64:
        csr = csr.astype(np.float64)
    if not csr.has_canonical_format:  # duplicates add up, unsorted indices get sorted
        csr = csr.copy()
        csr.sum_duplicates()
    if not csr.nnz:
        return None
    t = csr.T.tocsr()  # one pass in C; its rows come out sorted
    data = t.data
    same = np.array_equal(t.indptr, csr.indptr) and np.array_equal(t.indices, csr.indices)
    if same and np.array_equal(data, csr.data):
        return None
    scale = float(max(csr.data.max(), -csr.data.min()))
    if same:
        np.subtract(data, csr.data, out=data)  # same pattern: A^T - A entry by entry
        np.abs(data, out=data)
        k = int(np.argmax(data))
        i = int(np.searchsorted(csr.indptr, k, side="right")) - 1
        j = int(csr.indices[k])
        return _worst(i, j, float(csr.data[k]), float(csr[j, i]), scale)
    d = (csr - csr.T).tocoo()  # another pattern (or explicit zeros on one side)
    d.eliminate_zeros()
    if not d.nnz:
        return None
    k = int(np.argmax(np.abs(d.data)))
    i, j = int(d.row[k]), int(d.col[k])
    return _worst(i, j, float(csr[i, j]), float(csr[j, i]), scale)


def _worst(i, j, aij, aji, scale):
    asym = abs(aij - aji)
    if asym <= SYMMETRY_RTOL * max(scale, 1e-300):
        return None
    return i, j, aij, aji, asym, scale


def _describe(worst) -> str:
    i, j, aij, aji, asym, scale = worst
    return (
        f"A is not symmetric: A[{i}, {j}] = {aij:.6g} but A[{j}, {i}] = {aji:.6g} "
        f"(max |A - A^T| = {asym:.3g}, max |A| = {scale:.3g})"
    )


def check_symmetric_matrix(A, who: str) -> None:
    """``SolverError`` for a matrix that is not symmetric (:func:`asymmetry`): it names
    ``who`` needs a symmetric ``A``, the worst pair, and what to do instead."""
    worst = asymmetry(A)
    if worst is not None:
        raise SolverError(
            f"{who} needs a symmetric A (it builds a symmetric positive definite "
            f"preconditioner for CG, which needs a symmetric A), but {_describe(worst)}; "
            f"{NONSYMMETRIC_HINT}"
        )


def _asymmetry(A) -> tuple[SolveStatus, str] | None:
    """A NONSYMMETRIC defect naming the worst pair, or None."""
    worst = asymmetry(A)
    if worst is None:
        return None
    return SolveStatus.NONSYMMETRIC, (
        f"{_describe(worst)}; CG needs a symmetric positive definite matrix: use "
        "gmres/bicgstab for non-symmetric systems, or pass check_symmetric=False"
    )


def _diagonal(A) -> tuple[SolveStatus, str] | None:
    diag = A.diagonal()
    bad = np.flatnonzero(diag <= 0)
    if not bad.size:
        return None
    i = int(bad[0])
    return SolveStatus.INDEFINITE, (
        f"A is not positive definite: diagonal entry A[{i}, {i}] = {diag[i]:g} <= 0; CG "
        "needs a symmetric positive definite matrix"
    )


def prepare(A, b, x0, *, check_symmetric: bool) -> System:
    """Check ``A``, ``b`` and ``x0``; scale ``b`` and ``x0`` by one power of two.

    Raises ``SolverError`` for malformed arguments; records a non-symmetric matrix or a
    non-positive diagonal entry (explicit matrices only) as ``System.defect``.
    """
    op, n, explicit = _operator(A)
    b = vector(b, "b", n)
    x = np.zeros(n) if x0 is None else vector(x0, "x0", n).copy()
    defect = None
    if explicit is not None:
        defect = _asymmetry(explicit) if check_symmetric else None
        defect = defect or _diagonal(explicit)
    big = max(float(np.max(np.abs(b), initial=0.0)), float(np.max(np.abs(x), initial=0.0)))
    scale = 1.0
    if big > 0 and not _SAFE[0] <= big <= _SAFE[1]:
        scale = float(np.ldexp(1.0, int(np.frexp(big)[1]) - 1))  # exact: max |b / scale| in [1, 2)
    if scale != 1.0:
        b, x = b / scale, x / scale
    return System(op, b, x, n, scale, defect)


def safe_norm(v: np.ndarray) -> float:
    """``||v||_2`` without overflow or underflow of the squares."""
    m = float(np.max(np.abs(v), initial=0.0))
    if m == 0 or not np.isfinite(m):
        return m
    if 1e-150 < m < 1e150:
        return float(np.linalg.norm(v))
    return m * float(np.linalg.norm(v / m))


class Monitor:
    """Stop a solve whose residual no longer decreases (``STAGNATED``).

    Two tests, in scaled units:

    * the best residual so far is within ``FLOOR_FACTOR`` of the floating-point floor
      ``eps (||b|| + ||A|| ||x||)`` and has not halved for ``floor_window`` iterations;
    * the best residual has not decreased by 1 % for ``long_window`` iterations
      (``2 n`` clipped to 100 .. 1000; CG converges in ``n`` steps in exact arithmetic).

    ``||A||`` is estimated from the largest ``||A p|| / ||p||`` seen; :meth:`flat` tells a
    direction with ``p^T A p`` at rounding level (a singular ``A``: the step would be
    huge).
    """

    floor_window = 25

    def __init__(self, n: int, bnorm: float):
        self.long_window = int(min(max(2 * n, 100), 1000))
        self.bnorm = bnorm
        self.norm_a = 0.0
        self.best = self.half_ref = self.pct_ref = np.inf
        self.half_it = self.pct_it = 0

    def see(self, p: np.ndarray, Ap: np.ndarray) -> None:
        """Update the ``||A||`` estimate from one product."""
        pn = safe_norm(p)
        if pn > 0:
            self.norm_a = max(self.norm_a, safe_norm(Ap) / pn)

    def flat(self, p: np.ndarray, pAp: float) -> bool:
        """``0 < p^T A p <= eps ||A|| ||p||^2``: no curvature left along ``p`` (singular A)."""
        pn = safe_norm(p)
        return 0 < pAp <= EPS * self.norm_a * pn * pn

    def floor(self, x: np.ndarray) -> float:
        """``eps (||b|| + ||A|| ||x||)``."""
        return EPS * (self.bnorm + self.norm_a * safe_norm(x))

    def update(self, it: int, rnorm: float, x: np.ndarray) -> str | None:
        """Record the residual of iteration ``it``; a reason to stop, or None."""
        self.best = min(self.best, rnorm)
        if self.best < 0.5 * self.half_ref:
            self.half_ref, self.half_it = self.best, it
        if self.best < 0.99 * self.pct_ref:
            self.pct_ref, self.pct_it = self.best, it
        if it - self.half_it >= self.floor_window:
            floor = self.floor(x)
            if self.best <= FLOOR_FACTOR * floor:
                return (
                    f"the residual stopped decreasing at the floating-point floor (best "
                    f"{self.best / self.bnorm:.2e} relative; eps (||b|| + ||A|| ||x||) = "
                    f"{floor / self.bnorm:.2e} relative): no solver can reach a smaller rtol"
                )
        if it - self.pct_it >= self.long_window:
            return (
                f"the residual did not decrease in the last {self.long_window} iterations "
                "(a singular, inconsistent or very ill-conditioned system)"
            )
        return None


# --- the grid behind a matrix: learned preconditioners see vectors as grids ---------------

ALGEBRAIC_HINT = (
    "for a general sparse SPD matrix use an algebraic preconditioner instead: "
    "pdesurrogates.solvers.AMG (pyamg smoothed aggregation) or IncompleteCholesky (IC(0)), "
    "e.g. pdesurrogates.solvers.cg(A, b, M=AMG(A).aspreconditioner()), or the learned "
    "pdesurrogates.surrogates.NeuralIncompleteCholesky (M = model.precondition(A); "
    "solve_with(A, b, 'neural_ic', model=model); 'pdesurrogates solve --method neural_ic')"
)


def _is_problem(A) -> bool:
    return hasattr(A, "A") and hasattr(A, "shape") and hasattr(A, "mask") and not hasattr(A, "nnz")


def unwrap_grid(A, shape=None, mask=None):
    """``(matrix, shape, mask)`` of a gallery Problem or of a matrix the gallery made.

    A :class:`~pdesurrogates.solvers.gallery.Problem` gives its matrix, grid and fluid
    mask; a matrix from :mod:`~pdesurrogates.solvers.gallery` carries its grid as
    ``A.grid_shape``. An explicit ``shape``/``mask`` wins.
    """
    if _is_problem(A):
        shape = A.shape if shape is None else shape
        mask = A.mask if mask is None else mask
        A = A.A
    if shape is None:
        shape = getattr(A, "grid_shape", None)
    n = getattr(A, "shape", (None,))[0]
    if mask is not None and n is not None and np.asarray(mask).size != n:
        raise SolverError(f"mask has {np.asarray(mask).size} cells, expected {n} (one per unknown)")
    return A, shape, mask


def grid_shape_for(
    n: int, dim: int, shape=None, *, A=None, who: str = "the learned preconditioner"
) -> tuple[int, ...]:
    """The grid of an ``n``-vector: ``shape`` if given (checked), else a square/cube.

    With a sparse ``A``, its sparsity pattern is checked against a stencil on that grid
    (:func:`check_grid_stencil`), so a wrong guess or a renumbered matrix is refused.
    """
    guessed = shape is None
    if shape is not None:
        shape = tuple(int(s) for s in shape)
        if len(shape) != dim:
            raise SolverError(
                f"the model is {dim}D but the problem grid {shape} is {len(shape)}D; "
                f"use a {len(shape)}D model"
            )
        if int(np.prod(shape)) != n:
            raise SolverError(f"shape {shape} holds {int(np.prod(shape))} cells, but A is {n}x{n}")
    else:
        side = round(n ** (1.0 / dim))
        fits = [s for s in (side - 1, side, side + 1) if s > 0 and s**dim == n]
        if not fits:
            example = "(96, 64)" if dim == 2 else "(48, 32, 16)"
            raise SolverError(
                f"{who} needs the grid of A ({n} unknowns), and a bare matrix does not say it "
                f"(it is not a perfect {'square' if dim == 2 else 'cube'}); pass "
                f"shape=<grid array shape>, e.g. shape={example}, the shape whose C-order "
                "flattening numbers the unknowns. Matrices and Problems from "
                "pdesurrogates.solvers.gallery carry their grid and need no shape="
            )
        shape = (fits[0],) * dim
    if A is not None:
        check_grid_stencil(A, shape, guessed=guessed, who=who)
    return shape


_CHUNK = 1 << 20  # nonzeros per block of check_grid_stencil


def _bad_couplings(rows, cols, shape) -> np.ndarray:
    """Mask of the pairs ``(rows[k], cols[k])`` (flat C-order cell indices) that are not
    grid neighbours: an index difference above one along some axis, other than a wrap
    across a periodic axis (``|d| == s - 1``, ``s > 2``)."""
    bad = np.zeros(rows.size, dtype=bool)
    stride = int(np.prod(shape))
    for ax, s in enumerate(shape):
        stride //= s
        ri, ci = rows // stride, cols // stride
        if ax > 0:  # the first axis needs no modulo
            ri %= s
            ci %= s
        ri -= ci
        np.abs(ri, out=ri)
        bad |= (ri > 1) & ~((ri == s - 1) & (s > 2))
    return bad


def check_grid_stencil(A, shape, *, guessed: bool = False, who: str = "a grid model") -> None:
    """Refuse a matrix whose nonzeros couple cells that are not grid neighbours.

    Learned grid preconditioners (DCDM networks, the learned V-cycle) read a vector as a
    grid of ``shape`` in C order, so ``A`` must be a stencil on that grid: every nonzero
    ``A[i, j]`` joins cells whose indices differ by at most one along each axis (a wrap
    across a periodic axis is allowed). One pass over the nonzeros, ``O(nnz)``, in blocks
    of rows with 32-bit coordinates (bounded memory). Dense
    arrays and operators without a sparsity pattern are not checked.

    Examples
    --------
    >>> from pdesurrogates.solvers import gallery
    >>> check_grid_stencil(gallery.poisson2d(6, 4), (6, 4))
    >>> check_grid_stencil(gallery.poisson2d(6, 4), (4, 6))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pdesurrogates.errors.SolverError: a grid model assumes A is a stencil on a grid ...
    """
    if not sp.issparse(A):
        return
    shape = tuple(int(s) for s in shape)
    csr = A.tocsr()  # no copy for a CSR matrix
    if csr.nnz == 0 or int(np.prod(shape)) != A.shape[0]:
        return
    n_bad, first, n_nonzero = 0, None, 0
    itype = np.int32 if csr.shape[0] < 2**31 - 1 else np.int64  # coordinates: 4 bytes each
    step = max(1, _CHUNK * csr.shape[0] // csr.nnz)
    for r0 in range(0, csr.shape[0], step):  # blocks of rows: bounded memory on 10^7 nonzeros
        r1 = min(r0 + step, csr.shape[0])
        lo, hi = csr.indptr[r0], csr.indptr[r1]
        row = np.repeat(np.arange(r0, r1, dtype=itype), np.diff(csr.indptr[r0 : r1 + 1]))
        col = csr.indices[lo:hi].astype(itype, copy=False)
        keep = csr.data[lo:hi] != 0
        if not keep.all():  # explicit zeros couple nothing
            row, col = row[keep], col[keep]
        n_nonzero += row.size
        bad = _bad_couplings(row, col, shape)
        n_bad += int(np.count_nonzero(bad))
        if first is None and bad.any():
            k = int(np.flatnonzero(bad)[0])
            first = (int(row[k]), int(col[k]))
    if first is None:
        return
    i, j = first
    cell_i = tuple(int(v) for v in np.unravel_index(i, shape))
    cell_j = tuple(int(v) for v in np.unravel_index(j, shape))
    how = "guessed from its size" if guessed else "given"
    raise SolverError(
        f"{who} assumes A is a stencil on a grid of shape {shape} ({how}), but "
        f"{n_bad} of its {n_nonzero} nonzeros couple cells that are not neighbours "
        f"(A[{i}, {j}] couples cells {cell_i} and {cell_j}): A is not numbered in C order of "
        f"that grid (a renumbered/permuted matrix, or another grid shape). Pass the grid's "
        f"shape=(...) if it is another grid; {ALGEBRAIC_HINT}"
    )
