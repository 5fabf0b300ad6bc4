"""What every solver returns: :class:`SolveResult` with a :class:`SolveStatus`."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

__all__ = ["SolveResult", "SolveStatus"]


class SolveStatus(enum.StrEnum):
    """Why an iterative solve stopped (``SolveResult.status``).

    The members compare equal to their lower-case names (``status == "converged"``).
    Only ``CONVERGED`` has ``converged=True``, and it is given only after the true
    residual of the returned ``x`` was checked: ``||b - A x|| <= max(rtol ||b||, atol)``.

    Attributes
    ----------
    CONVERGED
        The stopping test holds for the true residual of the returned ``x``.
    MAXITER
        The iteration cap was reached first (``maxiter=0`` returns ``x0``).
    STAGNATED
        The residual stopped decreasing: it sits at the floating-point floor
        (about ``eps (||b|| + ||A|| ||x||)``, below which no solver can go), e.g. with
        ``rtol=0``, or it made no progress for many iterations (a singular, inconsistent
        system).
    INACCURATE
        The recursive residual met the tolerance but the true residual of the returned
        ``x`` did not, and stopped decreasing (loss of accuracy in floating point).
    INDEFINITE
        ``A`` is not positive definite: a diagonal entry ``A[i, i] <= 0`` (checked before
        the first iteration for an explicit matrix), a curvature ``p^T A p <= 0``, or
        ``r^T M r <= 0`` (the preconditioner is not positive definite), or a
        preconditioner could not be built because of it.
    NONSYMMETRIC
        The explicit matrix ``A`` is not symmetric (checked before the first iteration;
        CG needs a symmetric matrix: use gmres or bicgstab).
    BREAKDOWN
        No usable search direction was left (a zero direction built from the residual).
    NONFINITE
        NaN or Inf arose while solving: from the preconditioner, from ``A @ p`` (a
        LinearOperator, or overflow), or the solution overflows float64. The message
        names the index.
    """

    CONVERGED = "converged"
    MAXITER = "maxiter"
    STAGNATED = "stagnated"
    INACCURATE = "inaccurate"
    INDEFINITE = "indefinite"
    NONSYMMETRIC = "nonsymmetric"
    BREAKDOWN = "breakdown"
    NONFINITE = "nonfinite"


@dataclass
class SolveResult:
    """Outcome of an iterative solve.

    Attributes
    ----------
    x : ndarray, shape (n,)
        The last iterate (``x0``, or zeros, when the solve stopped before the first step).
    converged : bool
        True exactly when ``status`` is ``CONVERGED``.
    n_iter : int
        Number of iterations (solution updates) performed.
    residuals : ndarray, shape (n_iter + 1,)
        Residual norms ``||b - A x_k||`` for ``k = 0 .. n_iter`` (true residuals unless
        the solver was asked for the recursive ones). They may overflow to Inf for a
        right-hand side near the float64 limit; ``relative_residual`` does not.
    message : str
        What happened, in one sentence.
    info : dict
        Extra facts: ``tol`` (the absolute threshold), ``bnorm``, ``relative_residual``
        (of the returned ``x``), ``scale`` (the power of two ``b`` was divided by while
        solving), ``fallbacks`` (iterations where a learned direction was replaced by the
        residual), timing when measured.
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
        """Final ``||b - A x|| / ||b||``."""
        if "relative_residual" in self.info:
            return float(self.info["relative_residual"])
        b0 = self.info.get("bnorm", 0.0)
        return float(self.residuals[-1] / b0) if b0 > 0 else float(self.residuals[-1])

    def __repr__(self) -> str:  # short: x can be huge
        return (
            f"SolveResult(status={self.status.value}, n_iter={self.n_iter}, "
            f"residual={self.residuals[-1]:.3e}, message={self.message!r})"
        )


def message(status, n_iter, maxiter, rel, rel_tol, why="", note="") -> str:
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
            f"relative residual {rel:.2e} is above {rel_tol:.2e} and stopped decreasing "
            f"(loss of accuracy; {why or 'tighten rtol'}){note}"
        )
    return (
        f"not converged ({status.value}) after {n_iter} iterations: {why}; relative "
        f"residual {rel:.2e}{note}"
    )
