"""Preconditioners: classical ones (Jacobi, IC(0), pyamg AMG) and learned ones.

Every class here is a :class:`Preconditioner`: built once from ``A`` (the setup) and
applied many times with ``matvec(r)``. ``shape`` is the matrix's shape ``(n, n)`` and
``aspreconditioner()`` returns a :class:`scipy.sparse.linalg.LinearOperator` of that
shape (float64, no probe call), usable as ``M=`` in scipy's Krylov solvers, exactly like
pyamg's ``ml.aspreconditioner()``. Our :func:`~pdesurrogates.solvers.cg` and ``fcg``
take the object itself as ``M=``.

Which one goes where:

* ``scipy.sparse.linalg.cg`` and our :func:`~pdesurrogates.solvers.cg` need a **fixed,
  linear, symmetric positive definite** ``M`` (``P.is_spd``): :class:`Jacobi`,
  :class:`IncompleteCholesky`, :class:`AMG`, :class:`MultigridHierarchy` and a
  :class:`LearnedPreconditioner` around a :class:`~pdesurrogates.surrogates.LearnedVCycle`
  (SPD by construction). Those that are SPD only for a symmetric ``A`` refuse a
  non-symmetric one, naming its largest ``|A_ij - A_ji|``; :class:`Jacobi` (SPD for any
  ``A``) and :class:`AMG` (``is_spd`` False then) accept it for ``gmres``.
* A nonlinear network (:class:`~pdesurrogates.surrogates.ConjugateDirectionNet`) is not a
  valid CG preconditioner: wrap it in :class:`LearnedPreconditioner` and call
  :meth:`LearnedPreconditioner.solve` (flexible CG / DCDM), ``fcg(A, b, M=P)``, or
  :func:`dcdm` directly. Its ``aspreconditioner()`` refuses unless
  ``allow_nonlinear=True`` (e.g. for GMRES experiments, where a changing ``M`` is also
  formally invalid).

Examples
--------
>>> import numpy as np, scipy.sparse.linalg as sla
>>> from pdesurrogates.solvers import gallery, IncompleteCholesky
>>> A = gallery.poisson2d(32)
>>> b = np.ones(A.shape[0])
>>> P = IncompleteCholesky(A)
>>> P.shape, P.aspreconditioner().shape
((1024, 1024), (1024, 1024))
>>> it = []
>>> x, info = sla.cg(A, b, rtol=1e-8, M=P.aspreconditioner(),
...                  callback=lambda xk: it.append(1))
>>> info, len(it) < 60
(0, True)
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence

import numpy as np
import scipy.sparse.linalg as sla

from pdesurrogates.errors import SolverError
from pdesurrogates.solvers._checks import (
    asymmetry,
    check_symmetric_matrix,
    grid_shape_for,
    unwrap_grid,
)
from pdesurrogates.solvers._dcdm import dcdm, grid_stencil, network_apply
from pdesurrogates.solvers._ic0 import _ic0, _PivotError
from pdesurrogates.solvers._krylov import SolveResult, cg, fcg
from pdesurrogates.solvers._multigrid import MultigridHierarchy
from pdesurrogates.solvers._precond_base import Preconditioner, square_csr

__all__ = [
    "AMG",
    "IncompleteCholesky",
    "Jacobi",
    "LearnedPreconditioner",
    "amg",
    "jacobi",
]


class Jacobi(Preconditioner):
    """Diagonal (Jacobi) preconditioner ``M = diag(A)^{-1}``: SPD for a positive diagonal.

    ``M`` is SPD whether or not ``A`` is symmetric, so a non-symmetric ``A`` is accepted
    (for ``gmres``; CG itself needs a symmetric ``A``).

    Examples
    --------
    >>> from pdesurrogates.solvers import gallery
    >>> P = Jacobi(gallery.poisson2d(4))
    >>> P.shape, P.matvec([4.0] * 16)[:2].tolist()
    ((16, 16), [1.0, 1.0])
    """

    def __init__(self, A):
        t0 = time.perf_counter()
        A = square_csr(A)
        d = A.diagonal()
        if np.any(d <= 0):
            raise SolverError("Jacobi needs a positive diagonal; A has entries <= 0 on it")
        self.n = A.shape[0]
        self.inv_diagonal = 1.0 / d
        self.setup_seconds = time.perf_counter() - t0

    def matvec(self, r: np.ndarray) -> np.ndarray:
        """``diag(A)^{-1} r``."""
        return self.inv_diagonal * self._vector(r)


def jacobi(A) -> sla.LinearOperator:
    """``Jacobi(A).aspreconditioner()``: the diagonal preconditioner as a LinearOperator."""
    return Jacobi(A).aspreconditioner()


class IncompleteCholesky(Preconditioner):
    """IC(0): ``A ~ L L^T`` with ``L`` on the sparsity pattern of ``tril(A)``.

    Our own implementation (no fill-in, natural ordering). For matrices whose
    lower-triangular pattern has no "triangles" (all 5-/7-point stencils and their
    subsets: Dirichlet, Neumann, obstacles, variable coefficients) the factor is computed
    with level scheduling, vectorised over each wavefront; other patterns use a plain row
    loop. The triangular solves run in SuperLU (C). The preconditioner is symmetric
    positive definite whenever the factorisation exists.

    Parameters
    ----------
    A : sparse matrix, shape (n, n)
        Symmetric positive definite. A non-symmetric ``A`` is refused (``SolverError``
        naming its largest ``|A_ij - A_ji|``): IC(0) reads only its lower triangle, so it
        would silently factor another matrix.
    shift : float
        Diagonal shift ``A + shift * diag(A)`` used if a pivot becomes non-positive
        (retried with a growing shift; the shift used is ``self.shift``).
    """

    def __init__(self, A, *, shift: float = 0.0):
        t0 = time.perf_counter()
        A = square_csr(A)
        check_symmetric_matrix(A, "IncompleteCholesky (IC(0) reads only the lower triangle)")
        self.n = A.shape[0]
        s = float(shift)
        for _ in range(8):
            try:
                L = _ic0(A, s)
                break
            except _PivotError:
                s = max(1e-3, 10 * s)
        else:  # pragma: no cover
            raise SolverError("IC(0) failed: A is far from positive definite")
        self.shift = s
        self.L = L
        # SuperLU on the triangular factor: natural order, no pivoting -> no fill
        self._lu = sla.splu(
            L.tocsc(),
            permc_spec="NATURAL",
            diag_pivot_thresh=0.0,
            options={"SymmetricMode": False},
        )
        self.setup_seconds = time.perf_counter() - t0

    def matvec(self, r: np.ndarray) -> np.ndarray:
        """``(L L^T)^{-1} r``."""
        y = self._lu.solve(self._vector(r))
        return self._lu.solve(y, trans="T")


class AMG(Preconditioner):
    """pyamg smoothed-aggregation multigrid, one cycle per application (needs pyamg).

    ``kwargs`` go to ``pyamg.smoothed_aggregation_solver``; the hierarchy is kept as
    ``self.ml``. pyamg's default smoother is symmetric Gauss-Seidel, so for a symmetric
    ``A`` the V-cycle is a valid SPD preconditioner for CG (``is_spd``). A non-symmetric
    ``A`` is accepted for ``gmres`` (pass ``symmetry="nonsymmetric"`` to pyamg); the
    cycle is then not symmetric and ``is_spd`` is False, as it is with
    ``symmetry="nonsymmetric"`` on any ``A``.
    """

    def __init__(self, A, *, cycle: str = "V", **kwargs):
        try:
            import pyamg
        except ImportError as exc:  # pragma: no cover
            raise SolverError("the 'amg' preconditioner needs pyamg: pip install pyamg") from exc
        t0 = time.perf_counter()
        A = square_csr(A)
        self.n = A.shape[0]
        self._A, self._symmetry = A, kwargs.get("symmetry", "hermitian")
        self.ml = pyamg.smoothed_aggregation_solver(A, **kwargs)
        self._op = self.ml.aspreconditioner(cycle=cycle)
        self.setup_seconds = time.perf_counter() - t0

    @functools.cached_property
    def is_symmetric(self) -> bool:
        """The cycle is symmetric: ``A`` is (``asymmetry(A)`` is None) and pyamg was not told
        ``symmetry="nonsymmetric"``. Found on first use, not in the setup."""
        return self._symmetry != "nonsymmetric" and asymmetry(self._A) is None

    def matvec(self, r: np.ndarray) -> np.ndarray:
        """One multigrid cycle applied to ``r`` (zero initial guess)."""
        return np.asarray(self._op.matvec(self._vector(r)), dtype=np.float64).reshape(-1)


def amg(A, **kwargs) -> sla.LinearOperator:
    """``AMG(A, **kwargs).aspreconditioner()``: a pyamg SA V-cycle as a LinearOperator."""
    return AMG(A, **kwargs).aspreconditioner()


class LearnedPreconditioner(Preconditioner):
    """A trained model set up for one matrix ``A``: build once, apply many times.

    Parameters
    ----------
    model : torch.nn.Module
        Either a :class:`~pdesurrogates.surrogates.LearnedVCycle` (linear, SPD by
        construction: its Galerkin hierarchy for ``A`` is assembled here, once) or a
        direction network such as :class:`~pdesurrogates.surrogates.ConjugateDirectionNet`
        (nonlinear: use :meth:`solve`, :func:`fcg` or :func:`dcdm`).
    A : sparse matrix or gallery Problem, shape (n, n)
        A :class:`~pdesurrogates.solvers.gallery.Problem` or a matrix from
        :mod:`~pdesurrogates.solvers.gallery` carries its grid (``A.grid_shape``).
    shape : tuple of int, optional
        Grid shape, needed only for a bare matrix of your own whose grid is not a
        square/cube (inferred then). ``A``'s sparsity is checked against a stencil on the
        grid; a renumbered matrix is refused (use :class:`AMG` or
        :class:`IncompleteCholesky`, which need no grid).
    mask : ndarray of bool, optional
        Fluid cells (from a Problem); a network's output is zeroed elsewhere.

    Attributes
    ----------
    grid_shape : tuple of int
        The grid the model sees.
    is_linear, is_symmetric : bool
        Whether ``M`` is a fixed linear map, and a symmetric positive definite one
        (CG-valid when both).
    setup_seconds : float
    """

    def __init__(self, model, A, *, shape: Sequence[int] | None = None, mask=None):
        A, shape, mask = unwrap_grid(A, shape, mask)
        self.A = square_csr(A)
        self.n = self.A.shape[0]
        dim = getattr(model, "dim", None) or (len(shape) if shape is not None else 2)
        who = f"LearnedPreconditioner({type(model).__name__})"
        self.grid_shape = grid_shape_for(self.n, int(dim), shape, A=self.A, who=who)
        self.model = model
        self.mask = mask
        t0 = time.perf_counter()
        if hasattr(model, "numpy_parameters"):
            self._hier = MultigridHierarchy(model, self.A, self.grid_shape)
            self._apply = self._hier.matvec
            self.is_linear = self.is_symmetric = True
        else:
            self._hier = None
            model.eval()
            stencil = None
            if getattr(model, "coefficients", False):  # it reads A's stencil, once
                stencil = grid_stencil(self.A, self.grid_shape, who=who, checked=True)
            self._apply = network_apply(model, self.grid_shape, mask=mask, stencil=stencil)
            self.is_linear = bool(getattr(model, "is_linear", False))
            self.is_symmetric = False
        self.setup_seconds = time.perf_counter() - t0

    def matvec(self, r: np.ndarray) -> np.ndarray:
        """Apply the preconditioner to a residual vector ``(n,)``."""
        return self._apply(self._vector(r))

    def aspreconditioner(self, *, allow_nonlinear: bool = False) -> sla.LinearOperator:
        """A float64 ``LinearOperator`` of shape ``(n, n)`` for ``M=`` in scipy's solvers.

        Raises ``SolverError`` for a nonlinear network unless ``allow_nonlinear=True``:
        scipy's CG assumes a fixed SPD ``M`` and can diverge otherwise (use
        :meth:`solve`, :func:`fcg` or :func:`dcdm` instead).
        """
        if not self.is_spd and not allow_nonlinear:
            raise SolverError(
                f"{type(self.model).__name__} is a nonlinear preconditioner: scipy's cg "
                "would be invalid (it can diverge). Use LearnedPreconditioner.solve(), "
                "pdesurrogates.solvers.fcg(A, b, M=...) or dcdm(), or pass "
                "allow_nonlinear=True if you know what you are doing"
            )
        return super().aspreconditioner()

    def solve(
        self, b, x0=None, *, rtol: float = 1e-6, atol: float = 0.0, maxiter=None, callback=None
    ) -> SolveResult:
        """Solve ``A x = b``: PCG for an SPD model, DCDM (flexible CG) for a network."""
        kw = {"rtol": rtol, "atol": atol, "maxiter": maxiter, "callback": callback}
        if self.is_spd:
            return cg(self.A, b, x0, M=self.matvec, **kw)
        if hasattr(self.model, "dim"):
            return dcdm(self.A, b, self.model, x0=x0, shape=self.grid_shape, mask=self.mask, **kw)
        return fcg(self.A, b, x0, M=self.matvec, m=2, **kw)
