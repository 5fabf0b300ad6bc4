"""Conjugate gradients (:func:`cg`) and flexible CG (:func:`fcg`) with scipy-style signatures.

Both accept a dense array, a scipy sparse matrix/array or a
:class:`scipy.sparse.linalg.LinearOperator`, and return a :class:`SolveResult`.

* :func:`cg` is preconditioned CG with the Fletcher-Reeves ``beta = rho_k / rho_{k-1}``.
  It performs the same arithmetic as :func:`scipy.sparse.linalg.cg`, so its iterates
  match scipy's one for one. The preconditioner must be a fixed, linear, symmetric
  positive definite map.
* :func:`fcg` is Notay's flexible CG with truncated A-orthogonalisation against the last
  ``m`` search directions. It stays convergent with a *nonlinear* or changing
  preconditioner (a neural network, a noisy V-cycle) where plain CG diverges.

Examples
--------
>>> import numpy as np
>>> from pdesurrogates.solvers import gallery, krylov
>>> A = gallery.poisson2d(16)
>>> b = np.ones(A.shape[0])
>>> res = krylov.cg(A, b, rtol=1e-8)
>>> res.converged, bool(np.linalg.norm(b - A @ res.x) <= 1e-8 * np.linalg.norm(b))
(True, True)
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, aslinearoperator

from pdesurrogates.errors import SolverError

__all__ = ["SolveResult", "SolveStatus", "cg", "fcg"]


class SolveStatus(enum.StrEnum):
    """Why an iterative solve stopped (``SolveResult.status``).

    The members compare equal to their lower-case names (``status == "converged"``).

    Attributes
    ----------
    CONVERGED
        The stopping test ``||b - A x|| <= max(rtol ||b||, atol)`` holds.
    MAXITER
        The iteration cap was reached first.
    INACCURATE
        The recursive residual met the tolerance but the true residual did not
        (loss of accuracy in floating point).
    INDEFINITE
        A curvature ``p^T A p <= 0`` (``A`` not positive definite) or ``r^T M r <= 0``
        (the preconditioner not positive definite) was met.
    BREAKDOWN
        No usable search direction was left (a zero or non-finite direction built from
        the residual).
    NONFINITE
        The preconditioner or the iteration produced NaN or Inf.
    """

    CONVERGED = "converged"
    MAXITER = "maxiter"
    INACCURATE = "inaccurate"
    INDEFINITE = "indefinite"
    BREAKDOWN = "breakdown"
    NONFINITE = "nonfinite"


@dataclass
class SolveResult:
    """Outcome of an iterative solve.

    Attributes
    ----------
    x : ndarray, shape (n,)
        The last iterate.
    converged : bool
        True when the stopping test ``||b - A x|| <= max(rtol * ||b||, atol)`` holds.
    n_iter : int
        Number of iterations (solution updates) performed.
    residuals : ndarray, shape (n_iter + 1,)
        Residual norms ``||b - A x_k||`` for ``k = 0 .. n_iter`` (true residuals unless
        the solver was asked for the recursive ones).
    message : str
        What happened, in one sentence.
    info : dict
        Extra facts: ``tol`` (the absolute threshold), ``fallbacks`` (iterations where a
        learned direction was replaced by the residual), timing when measured.
    status : SolveStatus
        Why the solve stopped; ``converged`` is ``status is SolveStatus.CONVERGED``.
        When not given it is ``CONVERGED`` or ``MAXITER`` from ``converged``.
    """

    x: np.ndarray
    converged: bool
    n_iter: int
    residuals: np.ndarray
    message: str
    info: dict = field(default_factory=dict)
    status: SolveStatus | None = None

    def __post_init__(self) -> None:
        if self.status is None:
            self.status = SolveStatus.CONVERGED if self.converged else SolveStatus.MAXITER
        self.status = SolveStatus(self.status)
        if bool(self.converged) != (self.status is SolveStatus.CONVERGED):
            raise ValueError(
                f"SolveResult: converged={self.converged} contradicts status={self.status.value}"
            )

    @property
    def relative_residual(self) -> float:
        """Final ``||b - A x|| / ||b||`` (from the history)."""
        b0 = self.info.get("bnorm", 0.0)
        return float(self.residuals[-1] / b0) if b0 > 0 else float(self.residuals[-1])

    def __repr__(self) -> str:  # short: x can be huge
        return (
            f"SolveResult(status={self.status.value}, n_iter={self.n_iter}, "
            f"residual={self.residuals[-1]:.3e}, message={self.message!r})"
        )


def _prepare(A, b, x0, *, check_symmetric: bool):
    """Validate inputs; return (LinearOperator, b float64, x float64 copy, n)."""
    if A is None:
        raise ValueError("A is None; pass a square matrix or LinearOperator")
    shape = getattr(A, "shape", None)
    if shape is None or len(shape) != 2:
        raise ValueError(f"A must be a 2-D matrix or LinearOperator; got {type(A).__name__}")
    if shape[0] != shape[1]:
        raise SolverError(f"A must be square; got shape {tuple(shape)}")
    n = int(shape[0])
    b = np.asarray(b)
    if b.ndim == 2 and 1 in b.shape:
        b = b.reshape(-1)
    if b.ndim != 1 or b.shape[0] != n:
        raise ValueError(f"b has shape {b.shape}, expected ({n},) to match A of shape {shape}")
    if np.iscomplexobj(b):
        raise ValueError("complex right-hand sides are not supported; split real/imag parts")
    b = b.astype(np.float64, copy=False)
    if not np.all(np.isfinite(b)):
        raise ValueError("b contains NaN or Inf; check the right-hand side")
    if x0 is None:
        x = np.zeros(n)
    else:
        x = np.array(x0, dtype=np.float64).reshape(-1)
        if x.shape[0] != n:
            raise ValueError(f"x0 has {x.shape[0]} entries, expected {n}")
        if not np.all(np.isfinite(x)):
            raise ValueError("x0 contains NaN or Inf")
    if sp.issparse(A) or isinstance(A, np.ndarray):
        if check_symmetric:
            _check_symmetric(A)
        diag = A.diagonal()
        if np.any(diag <= 0):
            i = int(np.flatnonzero(diag <= 0)[0])
            raise SolverError(
                f"A is not positive definite: diagonal entry A[{i}, {i}] = {diag[i]:g} <= 0; "
                "CG needs a symmetric positive definite matrix"
            )
    op = aslinearoperator(A)
    return op, b, x, n


def _check_symmetric(A) -> None:
    if sp.issparse(A):
        d = (A - A.T).tocsr()
        asym = abs(d).max() if d.nnz else 0.0
        scale = abs(A).max() if A.nnz else 1.0
    else:
        asym = float(np.max(np.abs(A - A.T))) if A.size else 0.0
        scale = float(np.max(np.abs(A))) if A.size else 1.0
    if asym > 1e-10 * max(scale, 1e-300):
        raise SolverError(
            f"A is not symmetric (max |A - A^T| = {asym:.3g}, max |A| = {scale:.3g}); "
            "CG needs a symmetric positive definite matrix: use gmres/bicgstab for "
            "non-symmetric systems"
        )


def _as_apply(M, n: int, *, flexible: bool) -> Callable[[np.ndarray], np.ndarray] | None:
    """``r -> M r`` for a matrix, LinearOperator, preconditioner object or callable.

    A preconditioner object (anything with ``aspreconditioner()``, ours or pyamg's) is
    turned into its LinearOperator for CG, which refuses a nonlinear map; flexible
    methods (``flexible=True``) call its ``matvec`` directly, nonlinear or not.
    """
    if M is None:
        return None
    if hasattr(M, "aspreconditioner") and not isinstance(M, LinearOperator):
        if flexible and hasattr(M, "matvec"):
            if getattr(M, "n", n) != n:
                raise ValueError(f"preconditioner M is set up for n={M.n}, expected n={n}")
            return M.matvec
        M = M.aspreconditioner()
    if isinstance(M, LinearOperator) or sp.issparse(M) or isinstance(M, np.ndarray):
        if M.shape != (n, n):
            raise ValueError(f"preconditioner M has shape {M.shape}, expected {(n, n)}")
        op = aslinearoperator(M)
        return op.matvec
    if callable(M):
        return M
    raise ValueError(
        f"M must be a matrix, a LinearOperator or a callable r -> z; got {type(M).__name__}"
    )


def _tolerance(bnorm: float, rtol: float, atol: float) -> float:
    if rtol is None or not np.isfinite(rtol) or rtol < 0:
        raise ValueError(f"rtol must be a non-negative number; got {rtol!r}")
    if atol is None or not np.isfinite(atol) or atol < 0:
        raise ValueError(f"atol must be a non-negative number; got {atol!r}")
    return max(float(atol), float(rtol) * bnorm)


def _maxiter(maxiter, n):
    if maxiter is None:
        return 10 * n
    if int(maxiter) < 0:
        raise ValueError(f"maxiter must be >= 0; got {maxiter}")
    return int(maxiter)


def cg(
    A,
    b,
    x0=None,
    *,
    rtol: float = 1e-5,
    atol: float = 0.0,
    maxiter: int | None = None,
    M=None,
    callback: Callable[[np.ndarray], None] | None = None,
    true_residual: bool = True,
    check_symmetric: bool = True,
) -> SolveResult:
    """Preconditioned conjugate gradients, iterate for iterate equal to scipy's ``cg``.

    Parameters
    ----------
    A : ndarray, sparse matrix or LinearOperator, shape (n, n)
        Symmetric positive definite.
    b : ndarray, shape (n,)
    x0 : ndarray, shape (n,), optional
        Initial guess (zeros by default).
    rtol, atol : float
        Stop when ``||r|| < max(rtol * ||b||, atol)``; ``r`` is the recursively updated
        residual, exactly as in scipy.
    maxiter : int, optional
        Iteration cap (``10 n`` by default). Reaching it returns ``converged=False``.
    M : matrix, LinearOperator or callable, optional
        Preconditioner approximating ``A^{-1}``; it must be linear, fixed and SPD (use
        :func:`fcg` for a nonlinear one).
    callback : callable, optional
        ``callback(xk)`` after every iteration.
    true_residual : bool
        Record ``||b - A x_k||`` in the history (one extra product with ``A`` per
        iteration); with False the recursive residual norms are recorded.
    check_symmetric : bool
        Check an explicit matrix for symmetry first (a ``SolverError`` if it is not).

    Returns
    -------
    SolveResult
        ``status`` is ``CONVERGED``, ``MAXITER``, ``INACCURATE`` (true residual above the
        tolerance), ``INDEFINITE`` (``p^T A p <= 0`` or ``r^T M r <= 0``) or ``NONFINITE``.

    Raises
    ------
    SolverError
        Non-square or non-symmetric ``A``, a non-positive diagonal entry, or a
        preconditioner object that is not a fixed SPD map.
    ValueError
        Shape mismatch, NaN/Inf in ``b``, bad tolerances.
    """
    op, b, x, n = _prepare(A, b, x0, check_symmetric=check_symmetric)
    psolve = _as_apply(M, n, flexible=False)
    maxiter = _maxiter(maxiter, n)
    bnorm = float(np.linalg.norm(b))
    tol = _tolerance(bnorm, rtol, atol)
    info = {"tol": tol, "bnorm": bnorm, "method": "cg"}
    if bnorm == 0:
        return SolveResult(np.zeros(n), True, 0, np.zeros(1), "b is zero; x = 0", info)
    r = b - op.matvec(x) if x.any() else b.copy()
    hist = [float(np.linalg.norm(r))]
    rho_prev, p = None, None
    it = 0
    status, why = SolveStatus.MAXITER, ""
    for it in range(maxiter + 1):
        if np.linalg.norm(r) < tol:
            status = SolveStatus.CONVERGED
            break
        if it == maxiter:
            break
        with np.errstate(all="ignore"):
            z = psolve(r) if psolve is not None else r
        z = np.asarray(z, dtype=np.float64).reshape(-1)
        rho = float(np.dot(r, z))
        if not np.isfinite(rho):
            status, why = SolveStatus.NONFINITE, "the preconditioner returned NaN or Inf"
            break
        if not rho > 0:
            status = SolveStatus.INDEFINITE
            why = f"r^T M r = {rho:.3g} <= 0: the preconditioner M is not positive definite"
            break
        if it > 0:
            p *= rho / rho_prev
            p += z
        else:
            p = z.copy()
        q = op.matvec(p)
        pq = float(np.dot(p, q))
        if not pq > 0:
            status = SolveStatus.INDEFINITE if np.isfinite(pq) else SolveStatus.NONFINITE
            why = f"p^T A p = {pq:.3g} <= 0: A is not positive definite"
            break
        alpha = rho / pq
        x += alpha * p
        r -= alpha * q
        rho_prev = rho
        if true_residual:
            hist.append(float(np.linalg.norm(b - op.matvec(x))))
        else:
            hist.append(float(np.linalg.norm(r)))
        if callback is not None:
            callback(x)
    true_norm = float(np.linalg.norm(b - op.matvec(x)))
    if status is SolveStatus.CONVERGED and true_norm > 10 * tol:
        status = SolveStatus.INACCURATE
    info["true_residual"] = true_norm
    msg = _message(status, it, maxiter, true_norm / bnorm, tol / bnorm, why)
    return SolveResult(x, status is SolveStatus.CONVERGED, it, np.asarray(hist), msg, info, status)


def _message(status, n_iter, maxiter, rel, rel_tol, why="", note="") -> str:
    """One sentence saying why a solve stopped."""
    if status is SolveStatus.CONVERGED:
        return f"converged in {n_iter} iterations (relative residual {rel:.2e}){note}"
    if status is SolveStatus.MAXITER:
        return (
            f"not converged: reached maxiter={maxiter} with relative residual "
            f"{rel:.2e} > {rel_tol:.2e}{note}"
        )
    if status is SolveStatus.INACCURATE:
        return (
            f"recursive residual met the tolerance after {n_iter} iterations but the true "
            f"relative residual {rel:.2e} is above {rel_tol:.2e} (loss of accuracy; tighten "
            f"rtol){note}"
        )
    return (
        f"not converged ({status.value}) at iteration {n_iter + 1}: {why}; relative "
        f"residual {rel:.2e}{note}"
    )


def fcg(
    A,
    b,
    x0=None,
    *,
    rtol: float = 1e-5,
    atol: float = 0.0,
    maxiter: int | None = None,
    M=None,
    callback: Callable[[np.ndarray], None] | None = None,
    m: int = 1,
    true_residual: bool = True,
    check_symmetric: bool = True,
) -> SolveResult:
    """Flexible CG with truncated A-orthogonalisation (Notay 2000), for nonlinear ``M``.

    Each step takes ``z = M(r)``, makes it A-orthogonal to the last ``m`` search
    directions, and moves along it with the exact line search ``alpha = p^T r / p^T A p``.
    With a fixed SPD ``M`` and ``m >= 1`` it reproduces PCG in exact arithmetic; with a
    nonlinear ``M`` it still decreases the A-norm of the error at every step.

    Parameters
    ----------
    A, b, x0, rtol, atol, maxiter, callback
        As in :func:`cg`. The stopping test uses the true residual ``b - A x`` when
        ``true_residual`` is True (one extra product with ``A`` per iteration).
    M : LinearOperator, matrix or callable, optional
        Any map ``r -> z``; need not be linear or symmetric. If it returns NaN/Inf or a
        direction with ``p^T r <= 0`` after orthogonalisation, the step falls back to the
        residual direction; ``info["fallbacks"]`` counts those steps.
    m : int
        Number of previous directions to orthogonalise against (``m >= 1``).

    Returns
    -------
    SolveResult
    """
    if int(m) < 1:
        raise ValueError(f"m (number of kept directions) must be >= 1; got {m}")
    op, b, x, n = _prepare(A, b, x0, check_symmetric=check_symmetric)
    psolve = _as_apply(M, n, flexible=True)
    return _flexible_cg(
        op,
        b,
        x,
        psolve,
        rtol=rtol,
        atol=atol,
        maxiter=_maxiter(maxiter, n),
        m=int(m),
        callback=callback,
        true_residual=true_residual,
        method="fcg",
    )


def _flexible_cg(
    op,
    b,
    x,
    psolve,
    *,
    rtol,
    atol,
    maxiter,
    m,
    callback,
    true_residual,
    method,
    normalize_input: bool = False,
) -> SolveResult:
    n = b.shape[0]
    bnorm = float(np.linalg.norm(b))
    tol = _tolerance(bnorm, rtol, atol)
    info = {"tol": tol, "bnorm": bnorm, "method": method, "fallbacks": 0, "fallback_iters": []}
    if bnorm == 0:
        return SolveResult(np.zeros(n), True, 0, np.zeros(1), "b is zero; x = 0", info)
    r = b - op.matvec(x) if x.any() else b.copy()
    rnorm = float(np.linalg.norm(r))
    hist = [rnorm]
    dirs: list[tuple[np.ndarray, np.ndarray, float]] = []  # (p, Ap, p^T A p)
    it = 0
    status = SolveStatus.CONVERGED if rnorm <= tol else SolveStatus.MAXITER
    why = ""
    while status is SolveStatus.MAXITER and it < maxiter:
        p = _direction(psolve, r, rnorm, dirs, info, it, normalize_input)
        Ap = op.matvec(p)
        pAp = float(np.dot(p, Ap))
        if not pAp > 0:
            if not np.all(np.isfinite(p)) or not np.isfinite(pAp):
                status, why = SolveStatus.NONFINITE, "the search direction holds NaN or Inf"
            elif not np.any(p):
                status, why = SolveStatus.BREAKDOWN, "the search direction is zero"
            else:
                status = SolveStatus.INDEFINITE
                why = f"p^T A p = {pAp:.3g} <= 0: A is not positive definite"
            break
        alpha = float(np.dot(p, r)) / pAp
        x += alpha * p
        it += 1
        r = b - op.matvec(x) if true_residual else r - alpha * Ap
        rnorm = float(np.linalg.norm(r))
        hist.append(rnorm)
        dirs.append((p, Ap, pAp))
        if len(dirs) > m:
            dirs.pop(0)
        if callback is not None:
            callback(x)
        if rnorm <= tol:
            status = SolveStatus.CONVERGED
    true_norm = float(np.linalg.norm(b - op.matvec(x))) if not true_residual else rnorm
    if status is SolveStatus.CONVERGED and true_norm > 10 * tol:
        status = SolveStatus.INACCURATE
    info["true_residual"] = true_norm
    fb = info["fallbacks"]
    note = f"; fell back to the residual direction in {fb} iterations" if fb else ""
    msg = _message(status, it, maxiter, true_norm / bnorm, tol / bnorm, why, note)
    return SolveResult(x, status is SolveStatus.CONVERGED, it, np.asarray(hist), msg, info, status)


def _direction(psolve, r, rnorm, dirs, info, it, normalize_input) -> np.ndarray:
    """The preconditioned direction, A-orthogonalised; the residual when it is unusable."""
    n = r.shape[0]
    if psolve is not None:
        rin = r / rnorm if normalize_input else r
        with np.errstate(all="ignore"):
            z = np.asarray(psolve(rin), dtype=np.float64).reshape(-1)
        if z.shape[0] != n:
            raise SolverError(f"preconditioner returned {z.shape[0]} values, expected {n}")
        p = _orthogonalise(z, dirs)
        if p is not None and np.all(np.isfinite(p)) and float(np.dot(p, r)) > 0:
            return p
        info["fallbacks"] += 1
        info["fallback_iters"].append(it + 1)
    p = _orthogonalise(r, dirs)
    return r.copy() if p is None else p


def _orthogonalise(z: np.ndarray, dirs) -> np.ndarray | None:
    if not np.all(np.isfinite(z)):
        return None
    p = z.copy()
    for q, Aq, qAq in dirs:
        p -= (float(np.dot(z, Aq)) / qAq) * q
    return p
