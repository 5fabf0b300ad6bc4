"""The preconditioner object every class in :mod:`pdesurrogates.solvers` follows.

Like pyamg's ``MultilevelSolver``: build once for a matrix ``A`` of shape ``(n, n)``
(the setup), apply many times (``matvec``), and hand scipy a
:class:`~scipy.sparse.linalg.LinearOperator` of the matrix's shape with
``aspreconditioner()``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from pdesurrogates.errors import SolverError
from pdesurrogates.solvers._checks import check_finite_matrix

__all__ = ["Preconditioner"]


def square_csr(A, name: str = "A") -> sp.csr_matrix:
    """``A`` as float64 CSR; ``SolverError`` for a non-matrix, a complex, non-square or
    non-finite one (naming the first NaN/Inf entry)."""
    if not sp.issparse(A) and not isinstance(A, np.ndarray):
        raise SolverError(f"{name} must be a sparse matrix or ndarray; got {type(A).__name__}")
    if np.iscomplexobj(A):
        raise SolverError(f"{name} is complex; the preconditioners are built for real matrices")
    A = sp.csr_matrix(A, dtype=np.float64)
    if A.shape[0] != A.shape[1]:
        raise SolverError(f"{name} must be square; got shape {A.shape}")
    check_finite_matrix(A, name)
    return A


class Preconditioner:
    """Base class: a map ``r -> M r`` approximating ``A^{-1}`` for one ``(n, n)`` matrix.

    Subclasses set ``n`` (and ``setup_seconds``) in ``__init__`` and implement
    :meth:`matvec`.

    Attributes
    ----------
    n : int
        Number of unknowns; ``shape`` is ``(n, n)``, the matrix's shape.
    is_linear : bool
        ``M`` is a fixed linear map.
    is_symmetric : bool
        ``M`` is symmetric positive definite (meaningful when ``is_linear``). True of the
        map that was built: a class whose map is SPD only for a symmetric ``A`` refuses a
        non-symmetric one (``solvers._checks.check_symmetric_matrix``)
        or, if meant for it (``AMG``), sets this False.
    setup_seconds : float
        Wall-clock time of the setup.
    """

    is_linear: bool = True
    is_symmetric: bool = True
    n: int = 0
    setup_seconds: float = 0.0
    dtype = np.dtype(np.float64)

    @property
    def shape(self) -> tuple[int, int]:
        """``(n, n)``: the shape of the matrix the preconditioner was built for."""
        return (self.n, self.n)

    @property
    def is_spd(self) -> bool:
        """A fixed, linear, symmetric positive definite map: valid for CG."""
        return bool(self.is_linear and self.is_symmetric)

    def _vector(self, r) -> np.ndarray:
        if np.iscomplexobj(r):
            raise SolverError(
                "r is complex; apply the preconditioner to its real and imaginary parts "
                "(aspreconditioner() does so for a linear one)"
            )
        r = np.asarray(r, dtype=np.float64).reshape(-1)
        if r.shape[0] != self.n:
            raise SolverError(
                f"r has {r.shape[0]} entries, expected {self.n} (the preconditioner was set "
                f"up for a {self.n}x{self.n} matrix)"
            )
        return r

    def matvec(self, r: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """Apply the preconditioner to a residual vector ``(n,)``; returns ``(n,)``."""
        raise NotImplementedError

    def __call__(self, r: np.ndarray) -> np.ndarray:
        return self.matvec(r)

    def aspreconditioner(self) -> sla.LinearOperator:
        """A float64 ``LinearOperator`` of shape ``(n, n)`` for ``M=`` in scipy's solvers.

        A linear preconditioner applied to a complex vector (a complex ``b``) acts on its
        real and imaginary parts; a nonlinear one refuses it.
        """
        rmatvec = self._split_complex if self.is_spd else None
        return sla.LinearOperator(
            self.shape, matvec=self._split_complex, rmatvec=rmatvec, dtype=float
        )

    def _split_complex(self, r: np.ndarray) -> np.ndarray:
        if not np.iscomplexobj(r):
            return self.matvec(r)
        if not self.is_linear:
            raise SolverError(
                f"{type(self).__name__} is nonlinear: it cannot act on a complex vector; "
                "solve for the real and imaginary parts of b separately"
            )
        return self.matvec(r.real) + 1j * self.matvec(r.imag)

    def aslinearoperator(self, **kwargs) -> sla.LinearOperator:
        """Alias of :meth:`aspreconditioner`."""
        return self.aspreconditioner(**kwargs)

    def __repr__(self) -> str:
        kind = "SPD" if self.is_spd else ("linear" if self.is_linear else "nonlinear")
        return f"{type(self).__name__}(n={self.n}, {kind}, setup={self.setup_seconds:.3g} s)"
