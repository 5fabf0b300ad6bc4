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

The contract (shared with :func:`~pdesurrogates.solvers.dcdm` and
:func:`~pdesurrogates.solvers.solve_with`):

* a malformed argument raises :class:`~pdesurrogates.errors.SolverError` (also a
  ``ValueError``): wrong type, shape or dtype, NaN/Inf in ``A``, ``b`` or ``x0`` (the
  message names the index), ``rtol``/``atol`` negative or not finite, ``maxiter < 0``;
* numerical trouble never raises: a non-symmetric matrix, a diagonal entry ``<= 0``,
  indefiniteness, breakdown, NaN/Inf from the preconditioner or from ``A @ p``, overflow,
  ``maxiter`` and stagnation return a :class:`SolveResult` with ``converged=False`` and a
  :class:`SolveStatus`;
* ``converged=True`` only after the true residual of the returned ``x`` was checked;
* ``b`` and ``x0`` far from 1 (beyond ``2**±200``: ``1e308`` or subnormal) are divided
  by a power of two while solving, so they converge to the correctly scaled solution;
* ``rtol=0`` is allowed: the solve runs until ``maxiter`` or until the residual stops
  decreasing at the floating-point floor (``STAGNATED``).

Examples
--------
>>> import numpy as np
>>> from pdesurrogates.solvers import gallery, krylov
>>> A = gallery.poisson2d(16)
>>> b = np.ones(A.shape[0])
>>> res = krylov.cg(A, b, rtol=1e-8)
>>> res.converged, bool(np.linalg.norm(b - A @ res.x) <= 1e-8 * np.linalg.norm(b))
(True, True)
>>> krylov.cg(A, b, rtol=0).status.value
'stagnated'
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, aslinearoperator

from pdesurrogates.errors import SolverError
from pdesurrogates.solvers._checks import (
    FLOOR_FACTOR,
    Monitor,
    System,
    check_maxiter,
    check_positive_int,
    check_tolerances,
    prepare,
)
from pdesurrogates.solvers._result import SolveResult, SolveStatus, message

__all__ = ["SolveResult", "SolveStatus", "cg", "fcg"]

_norm = np.linalg.norm


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
                raise SolverError(f"preconditioner M is set up for n={M.n}, expected n={n}")
            return M.matvec
        M = M.aspreconditioner()
    if isinstance(M, LinearOperator) or sp.issparse(M) or isinstance(M, np.ndarray):
        if M.shape != (n, n):
            raise SolverError(f"preconditioner M has shape {M.shape}, expected {(n, n)}")
        op = aslinearoperator(M)
        return op.matvec
    if callable(M):
        return M
    raise SolverError(
        f"M must be a matrix, a LinearOperator or a callable r -> z; got {type(M).__name__}"
    )


def _apply_m(psolve, r: np.ndarray, n: int) -> np.ndarray:
    """``M(r)`` as a float64 ``(n,)`` array; ``SolverError`` if M returns another shape."""
    with np.errstate(all="ignore"):
        out = psolve(r)
    try:
        z = np.asarray(out, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise SolverError(
            f"the preconditioner M returned {type(out).__name__}, not an array of numbers"
        ) from exc
    if z.shape[0] != n:
        raise SolverError(f"the preconditioner M returned {z.shape[0]} values, expected {n}")
    return z


def _where(what: str, v: np.ndarray) -> str:
    """``"<what> NaN or Inf at index i"`` for the first non-finite entry of ``v``."""
    bad = np.flatnonzero(~np.isfinite(v))
    if not bad.size:
        return f"{what} values whose products overflow float64"
    return f"{what} {v[bad[0]]} at index {int(bad[0])} ({bad.size} NaN/Inf entries)"


def _curvature(pq: float) -> str:
    if pq > 0:
        return (
            f"p^T A p = {pq:.3g} is at rounding level (<= eps ||A|| ||p||^2): A is singular "
            "or not positive definite along p"
        )
    return f"p^T A p = {pq:.3g} <= 0: A is not positive definite"


def _start(system: System, method: str, rtol: float, atol: float):
    """``(tol, bnorm, info, early)``: scaled tolerance and ``||b||``, and a result when the
    solve is over before it starts (``b = 0``, or a defect found in ``A``)."""
    s, n = system.scale, system.n
    bnorm = float(_norm(system.b))
    with np.errstate(over="ignore"):
        tol = max(atol / s, rtol * bnorm)
    info = {"tol": tol * s, "bnorm": bnorm * s, "method": method, "scale": s}
    if bnorm == 0:
        info["relative_residual"] = 0.0
        return (
            tol,
            bnorm,
            info,
            SolveResult(np.zeros(n), True, 0, np.zeros(1), "b is zero; x = 0", info),
        )
    if system.defect is None:
        return tol, bnorm, info, None
    status, why = system.defect
    with np.errstate(all="ignore"):
        r0 = float(_norm(system.b - system.op.matvec(system.x)))
        x = system.x * s
    info["relative_residual"] = r0 / bnorm
    msg = f"not solved ({status.value}), found before the first iteration: {why}"
    return tol, bnorm, info, SolveResult(x, False, 0, np.array([r0 * s]), msg, info, status)


def _finish(system, x, k, hist, info, tol, bnorm, maxiter, status, why, note="", true=None):
    """Unscale ``x``, check its true residual, and build the result."""
    s = system.scale
    with np.errstate(all="ignore"):
        x_out = x * s if s != 1.0 else x
        if not np.all(np.isfinite(x_out)):
            if status is not SolveStatus.NONFINITE:
                status = SolveStatus.NONFINITE
                why = _where("the solution overflows float64: x =", x_out)
            true = np.inf
        elif true is None or s != 1.0:
            true = float(_norm(system.b - system.op.matvec(x_out / s if s != 1.0 else x)))
        hist = np.asarray(hist, dtype=np.float64) * s
    if status is SolveStatus.CONVERGED and not true <= tol:
        status = SolveStatus.INACCURATE
        why = "the returned x lost digits in float64 (subnormal values)"
    info["true_residual"] = true * s
    info["relative_residual"] = true / bnorm
    msg = message(status, k, maxiter, true / bnorm, tol / bnorm, why, note)
    return SolveResult(x_out, status is SolveStatus.CONVERGED, k, hist, msg, info, status)


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
        Stop when ``||r|| <= max(rtol * ||b||, atol)`` for the recursively updated
        residual, exactly as in scipy, *and* for the true residual ``b - A x`` (if only the
        recursive one meets it, CG restarts from the true residual). ``rtol=0`` is
        allowed: CG then runs until ``maxiter`` or until the residual stagnates at the
        floating-point floor.
    maxiter : int, optional
        Iteration cap (``10 n`` by default). Reaching it returns status ``MAXITER``.
    M : matrix, LinearOperator or callable, optional
        Preconditioner approximating ``A^{-1}``; it must be linear, fixed and SPD (use
        :func:`fcg` for a nonlinear one).
    callback : callable, optional
        ``callback(xk)`` after every iteration.
    true_residual : bool
        Record ``||b - A x_k||`` in the history (one extra product with ``A`` per
        iteration); with False the recursive residual norms are recorded.
    check_symmetric : bool
        Check an explicit matrix for symmetry first (status ``NONSYMMETRIC`` if it is
        not).

    Returns
    -------
    SolveResult
        ``status`` is ``CONVERGED``, ``MAXITER``, ``STAGNATED`` (the residual stopped
        decreasing), ``INACCURATE``, ``NONSYMMETRIC`` or ``INDEFINITE`` (found before the
        first iteration for an explicit matrix, or ``p^T A p <= 0`` / ``r^T M r <= 0``
        during it) or ``NONFINITE`` (NaN/Inf from ``M`` or ``A @ p``, or overflow; the
        message names the index). None of these raises.

    Raises
    ------
    SolverError
        A malformed argument: ``A`` not a square real matrix or LinearOperator, ``b`` or
        ``x0`` of the wrong shape, NaN/Inf in ``A``, ``b`` or ``x0`` (the message names
        the index), bad ``rtol``/``atol``/``maxiter``, a preconditioner of the wrong shape
        or a preconditioner object that is not a fixed SPD map. ``SolverError`` is a
        ``ValueError``.
    """
    rtol, atol = check_tolerances(rtol, atol)
    system = prepare(A, b, x0, check_symmetric=check_symmetric)
    psolve = _as_apply(M, system.n, flexible=False)
    maxiter = check_maxiter(maxiter, system.n)
    tol, bnorm, info, early = _start(system, "cg", rtol, atol)
    if early is not None:
        return early
    with np.errstate(all="ignore"):
        return _pcg(system, psolve, tol, bnorm, info, maxiter, callback, true_residual)


def _pcg(system, psolve, tol, bnorm, info, maxiter, callback, true_residual) -> SolveResult:
    op, b, x, s, n = system.op, system.b, system.x, system.scale, system.n
    r = b - op.matvec(x) if x.any() else b.copy()
    rnorm = true = float(_norm(r))
    hist = [rnorm]
    mon = Monitor(n, bnorm)
    watch_true, have_true, met_recursive = true_residual, True, False
    rho_prev, p, k = None, None, 0
    status, why = SolveStatus.MAXITER, ""
    if not np.isfinite(rnorm):
        status, why = SolveStatus.NONFINITE, _where("b - A @ x0 holds", r)
    while status is SolveStatus.MAXITER:
        if rnorm <= tol:
            if not have_true:
                true, have_true = float(_norm(b - op.matvec(x))), True
            if true <= tol:
                status = SolveStatus.CONVERGED
                break
            # only the recursive residual met the tolerance: restart from the true one
            met_recursive = watch_true = True
            r, rnorm, rho_prev = b - op.matvec(x), true, None
        if k >= maxiter:
            break
        z = _apply_m(psolve, r, n) if psolve is not None else r
        rho = float(np.dot(r, z))
        if not np.isfinite(rho):
            status, why = SolveStatus.NONFINITE, _where("the preconditioner M returned", z)
            break
        if not rho > 0:
            status = SolveStatus.INDEFINITE
            why = f"r^T M r = {rho:.3g} <= 0: the preconditioner M is not positive definite"
            break
        if rho_prev is not None:
            p *= rho / rho_prev
            p += z
        else:
            p = z.copy()
        q = op.matvec(p)
        pq = float(np.dot(p, q))
        if not np.isfinite(pq):
            status, why = SolveStatus.NONFINITE, _where("A @ p holds", q)
            break
        mon.see(p, q)
        if not pq > 0 or mon.flat(p, pq):
            status, why = SolveStatus.INDEFINITE, _curvature(pq)
            break
        alpha = rho / pq
        x += alpha * p
        r -= alpha * q
        rho_prev, k = rho, k + 1
        rnorm, have_true = float(_norm(r)), watch_true
        if watch_true:
            true = float(_norm(b - op.matvec(x)))
        hist.append(true if true_residual else rnorm)
        if not (np.isfinite(rnorm) and np.isfinite(true)):
            status, why = SolveStatus.NONFINITE, _where("the iterate x holds", x)
            break
        if callback is not None:
            callback(x * s if s != 1.0 else x)
        if not watch_true and rnorm < 1e-6 * bnorm:
            watch_true = rnorm <= FLOOR_FACTOR * mon.floor(x)
        reason = mon.update(k, true if watch_true else rnorm, x)
        if reason:
            status = SolveStatus.INACCURATE if met_recursive else SolveStatus.STAGNATED
            why = reason
    return _finish(system, x, k, hist, info, tol, bnorm, maxiter, status, why)


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
    A, b, x0, rtol, atol, maxiter, callback, check_symmetric
        As in :func:`cg`. The stopping test uses the true residual ``b - A x`` when
        ``true_residual`` is True (one extra product with ``A`` per iteration).
    M : LinearOperator, matrix or callable, optional
        Any map ``r -> z``; need not be linear or symmetric. If it returns NaN/Inf or a
        direction with ``p^T r <= 0`` after orthogonalisation, the step falls back to the
        residual direction; ``info["fallbacks"]`` counts those steps and
        ``info["nonfinite_preconditioner"]`` holds ``(iteration, index)`` of the first
        NaN/Inf it returned.
    m : int
        Number of previous directions to orthogonalise against (``m >= 1``).

    Returns
    -------
    SolveResult
        With the statuses of :func:`cg` (plus ``BREAKDOWN``: a zero search direction).

    Raises
    ------
    SolverError
        As :func:`cg`, and for ``m < 1``.
    """
    m = check_positive_int(m, "m (number of kept directions)")
    rtol, atol = check_tolerances(rtol, atol)
    system = prepare(A, b, x0, check_symmetric=check_symmetric)
    psolve = _as_apply(M, system.n, flexible=True)
    return _flexible_cg(
        system,
        psolve,
        rtol=rtol,
        atol=atol,
        maxiter=check_maxiter(maxiter, system.n),
        m=m,
        callback=callback,
        true_residual=true_residual,
        method="fcg",
    )


def _flexible_cg(
    system: System,
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
    tol, bnorm, info, early = _start(system, method, rtol, atol)
    if early is not None:
        return early
    info.update(fallbacks=0, fallback_iters=[])
    with np.errstate(all="ignore"):
        x, k, hist, status, why, true = _fcg_loop(
            system, psolve, tol, bnorm, info, maxiter, m, callback, true_residual, normalize_input
        )
    fb = info["fallbacks"]
    note = f"; fell back to the residual direction in {fb} iterations" if fb else ""
    if "nonfinite_preconditioner" in info:
        it, idx = info["nonfinite_preconditioner"]
        note += f" (the preconditioner returned NaN/Inf, first at index {idx} in iteration {it})"
    return _finish(system, x, k, hist, info, tol, bnorm, maxiter, status, why, note, true)


def _fcg_loop(system, psolve, tol, bnorm, info, maxiter, m, callback, true_residual, norm_in):
    op, b, x, s, n = system.op, system.b, system.x, system.scale, system.n
    r = b - op.matvec(x) if x.any() else b.copy()
    rnorm = true = float(_norm(r))
    hist = [rnorm]
    dirs: list[tuple[np.ndarray, np.ndarray, float]] = []  # (p, Ap, p^T A p)
    mon = Monitor(n, bnorm)
    have_true, met_recursive, k = True, False, 0
    status, why = SolveStatus.MAXITER, ""
    if not np.isfinite(rnorm):
        status, why = SolveStatus.NONFINITE, _where("b - A @ x0 holds", r)
    while status is SolveStatus.MAXITER:
        if rnorm <= tol:
            if not have_true:
                true, have_true = float(_norm(b - op.matvec(x))), True
            if true <= tol:
                status = SolveStatus.CONVERGED
                break
            met_recursive = true_residual = True  # go on with the true residual
            r, rnorm = b - op.matvec(x), true
        if k >= maxiter:
            break
        p = _direction(psolve, r, rnorm, dirs, info, k, norm_in)
        Ap = op.matvec(p)
        pAp = float(np.dot(p, Ap))
        if not pAp > 0:
            if not np.isfinite(pAp):
                status, why = SolveStatus.NONFINITE, _where("A @ p holds", Ap)
            elif not np.any(p):
                status, why = SolveStatus.BREAKDOWN, "the search direction is zero"
            else:
                status, why = SolveStatus.INDEFINITE, _curvature(pAp)
            break
        mon.see(p, Ap)
        if mon.flat(p, pAp):
            status, why = SolveStatus.INDEFINITE, _curvature(pAp)
            break
        alpha = float(np.dot(p, r)) / pAp
        x += alpha * p
        k += 1
        r = b - op.matvec(x) if true_residual else r - alpha * Ap
        rnorm, have_true = float(_norm(r)), true_residual
        true = rnorm if true_residual else true
        hist.append(rnorm)
        if not np.isfinite(rnorm):
            status, why = SolveStatus.NONFINITE, _where("the iterate x holds", x)
            break
        dirs.append((p, Ap, pAp))
        if len(dirs) > m:
            dirs.pop(0)
        if callback is not None:
            callback(x * s if s != 1.0 else x)
        if not true_residual and rnorm < 1e-6 * bnorm:
            true_residual = rnorm <= FLOOR_FACTOR * mon.floor(x)
        reason = mon.update(k, rnorm, x)
        if reason:
            status = SolveStatus.INACCURATE if met_recursive else SolveStatus.STAGNATED
            why = reason
    return x, k, hist, status, why, (true if have_true else None)


def _direction(psolve, r, rnorm, dirs, info, it, normalize_input) -> np.ndarray:
    """The preconditioned direction, A-orthogonalised; the residual when it is unusable."""
    if psolve is not None:
        z = _apply_m(psolve, r / rnorm if normalize_input else r, r.shape[0])
        p = _orthogonalise(z, dirs)
        if p is not None and np.all(np.isfinite(p)) and float(np.dot(p, r)) > 0:
            return p
        bad = np.flatnonzero(~np.isfinite(z))
        if bad.size and "nonfinite_preconditioner" not in info:
            info["nonfinite_preconditioner"] = (it + 1, int(bad[0]))
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
