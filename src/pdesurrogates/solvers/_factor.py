"""A preconditioner from a lower-triangular factor: ``M^{-1} = (L L^T)^{-1}``.

Any ``L`` with a positive diagonal is nonsingular, so ``M = L L^T`` is symmetric positive
definite and valid for CG whatever produced ``L`` (IC(0), or a network that predicts
the entries). The two triangular solves run in SuperLU with natural ordering and no
pivoting, so the factor is used as it is (no fill).

Examples
--------
>>> import numpy as np, scipy.sparse as sp
>>> from pdesurrogates.solvers import FactoredPreconditioner, gallery
>>> A = gallery.poisson2d(8)
>>> L = sp.tril(A).tocsr() @ sp.diags(1 / np.sqrt(A.diagonal()))   # symmetric Gauss-Seidel
>>> P = FactoredPreconditioner(L, A=A)
>>> res = P.solve(np.ones(64), rtol=1e-8)
>>> res.converged, res.n_iter < 20
(True, True)
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from pdesurrogates.errors import SolverError
from pdesurrogates.solvers._checks import check_symmetric_matrix
from pdesurrogates.solvers._krylov import SolveResult, cg
from pdesurrogates.solvers._precond_base import Preconditioner, square_csr

__all__ = ["FactoredPreconditioner", "check_spd_matrix"]


def check_spd_matrix(A, who: str = "the preconditioner") -> sp.csr_matrix:
    """``A`` as float64 CSR with sorted indices, or ``SolverError``.

    Refused: a non-square matrix, NaN/Inf, a non-symmetric matrix (naming the worst
    pair) and a diagonal entry ``<= 0`` (naming it): cheap necessary conditions of SPD.
    """
    A = square_csr(A)  # also refuses NaN/Inf, naming the entry
    check_symmetric_matrix(A, who)
    d = A.diagonal()
    bad = np.flatnonzero(d <= 0)
    if bad.size:
        i = int(bad[0])
        raise SolverError(
            f"{who} needs a symmetric positive definite A, but A[{i}, {i}] = {d[i]:g} <= 0"
        )
    A.sort_indices()
    return A


class FactoredPreconditioner(Preconditioner):
    """``M^{-1} r = L^{-T} L^{-1} r`` for a sparse lower-triangular ``L`` with ``L_ii > 0``.

    Parameters
    ----------
    L : sparse matrix, shape (n, n)
        Lower triangular with a positive finite diagonal (checked).
    A : sparse matrix, optional
        The system matrix, needed only by :meth:`solve`.
    """

    def __init__(self, L, *, A=None):
        t0 = time.perf_counter()
        L = square_csr(L, "L")
        if sp.triu(L, k=1).nnz and np.any(sp.triu(L, k=1).data != 0):
            raise SolverError("L must be lower triangular; it has entries above the diagonal")
        d = L.diagonal()
        if not np.isfinite(L.data).all() or np.any(d <= 0):
            raise SolverError(
                "L must have a positive finite diagonal (then L L^T is SPD); it has "
                f"{int(np.sum(~(d > 0)))} diagonal entries <= 0 or NaN"
            )
        if A is not None and square_csr(A).shape != L.shape:
            raise SolverError(f"A has shape {A.shape} but L has shape {L.shape}")
        self.n = L.shape[0]
        self.L = L
        self.A = None if A is None else square_csr(A)
        self._lu = sla.splu(
            L.tocsc(), permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": False}
        )
        self.setup_seconds = time.perf_counter() - t0

    def matvec(self, r: np.ndarray) -> np.ndarray:
        """``(L L^T)^{-1} r``."""
        y = self._lu.solve(self._vector(r))
        return self._lu.solve(y, trans="T")

    def solve(
        self, b, x0=None, *, rtol: float = 1e-6, atol: float = 0.0, maxiter=None, callback=None
    ) -> SolveResult:
        """PCG on ``A x = b`` with this preconditioner (``A`` given at construction)."""
        if self.A is None:
            raise SolverError("solve() needs the matrix: build the preconditioner with A=...")
        return cg(
            self.A, b, x0, rtol=rtol, atol=atol, maxiter=maxiter, M=self.matvec, callback=callback
        )
