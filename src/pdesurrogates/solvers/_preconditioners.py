"""Preconditioners: classical ones (Jacobi, IC(0), pyamg AMG) and learned ones.

A preconditioner is built once from ``A`` (the setup) and applied many times. Every class
here offers ``matvec(r)`` and ``.aslinearoperator()``, a
:class:`scipy.sparse.linalg.LinearOperator` (float64, no probe call) usable as ``M=`` in
scipy's Krylov solvers and in :func:`pdesurrogates.solvers.cg` / ``fcg``.

Which one goes where:

* ``scipy.sparse.linalg.cg`` and our :func:`~pdesurrogates.solvers.cg` need a **fixed,
  linear, symmetric positive definite** ``M``: :func:`jacobi`, :class:`IncompleteCholesky`,
  :func:`amg`, and a :class:`LearnedPreconditioner` around a
  :class:`~pdesurrogates.surrogates.LearnedVCycle` (SPD by construction).
* A nonlinear network (:class:`~pdesurrogates.surrogates.ConjugateDirectionNet`) is not a
  valid CG preconditioner: wrap it in :class:`LearnedPreconditioner` and call
  :meth:`LearnedPreconditioner.solve` (flexible CG / DCDM), or :func:`dcdm` directly.
  Its ``aslinearoperator()`` refuses unless ``allow_nonlinear=True`` (e.g. for GMRES
  experiments, where a changing ``M`` is also formally invalid).

Examples
--------
>>> import numpy as np, scipy.sparse.linalg as sla
>>> from pdesurrogates.solvers import gallery, IncompleteCholesky
>>> A = gallery.poisson2d(32)
>>> b = np.ones(A.shape[0])
>>> it = []
>>> x, info = sla.cg(A, b, rtol=1e-8, M=IncompleteCholesky(A).aslinearoperator(),
...                  callback=lambda xk: it.append(1))
>>> info, len(it) < 60
(0, True)
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as sla
from scipy.linalg import cho_factor, cho_solve

from pdesurrogates.errors import SolverError
from pdesurrogates.solvers._dcdm import dcdm, grid_shape_for, network_apply
from pdesurrogates.solvers._krylov import SolveResult, cg, fcg

__all__ = [
    "IncompleteCholesky",
    "LearnedPreconditioner",
    "MultigridHierarchy",
    "amg",
    "jacobi",
]


def _square_csr(A, name="A") -> sp.csr_matrix:
    if not sp.issparse(A) and not isinstance(A, np.ndarray):
        raise ValueError(f"{name} must be a sparse matrix or ndarray; got {type(A).__name__}")
    A = sp.csr_matrix(A, dtype=np.float64)
    if A.shape[0] != A.shape[1]:
        raise SolverError(f"{name} must be square; got shape {A.shape}")
    return A


def _operator(n, fn) -> sla.LinearOperator:
    return sla.LinearOperator((n, n), matvec=fn, rmatvec=fn, dtype=np.float64)


def jacobi(A) -> sla.LinearOperator:
    """Diagonal (Jacobi) preconditioner ``M = diag(A)^{-1}`` as a LinearOperator."""
    A = _square_csr(A)
    d = A.diagonal()
    if np.any(d <= 0):
        raise SolverError("Jacobi needs a positive diagonal; A has entries <= 0 on it")
    inv = 1.0 / d
    return _operator(A.shape[0], lambda r: inv * np.ravel(r))


class IncompleteCholesky:
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
        Symmetric positive definite.
    shift : float
        Diagonal shift ``A + shift * diag(A)`` used if a pivot becomes non-positive
        (retried with a growing shift; the shift used is ``self.shift``).
    """

    def __init__(self, A, *, shift: float = 0.0):
        A = _square_csr(A)
        self.n = A.shape[0]
        t0 = time.perf_counter()
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
        y = self._lu.solve(np.asarray(r, dtype=np.float64).ravel())
        return self._lu.solve(y, trans="T")

    def aslinearoperator(self) -> sla.LinearOperator:
        """The SPD preconditioner as a LinearOperator."""
        return _operator(self.n, self.matvec)


class _PivotError(Exception):
    pass


def _ic0(A: sp.csr_matrix, shift: float) -> sp.csr_matrix:
    n = A.shape[0]
    Lpat = sp.tril(A, k=-1, format="csr")
    Lpat.sort_indices()
    diag = A.diagonal() * (1.0 + shift)
    indptr, indices, data = Lpat.indptr, Lpat.indices, Lpat.data
    rows = np.repeat(np.arange(n), np.diff(indptr))
    # triangle check: does some row i hold j > k with (j, k) in the pattern?
    S = sp.csr_matrix((np.ones_like(data), indices, indptr), shape=(n, n))
    has_triangles = (S.multiply(S @ S.T)).nnz > 0 if S.nnz else False
    if has_triangles:
        return _ic0_rowloop(A, shift)
    # level scheduling: rows of one wavefront depend only on rows of earlier ones
    level = _levels(indptr, indices, n)
    row_order = np.argsort(level, kind="stable")
    row_bounds = np.searchsorted(level[row_order], np.arange(level.max() + 2))
    ent_level = level[rows]
    ent_order = np.argsort(ent_level, kind="stable")
    ent_bounds = np.searchsorted(ent_level[ent_order], np.arange(level.max() + 2))
    Ld = np.zeros(n)
    acc = np.zeros(n)
    Lval = np.zeros_like(data)
    for lv in range(level.max() + 1):
        es = ent_order[ent_bounds[lv] : ent_bounds[lv + 1]]
        rs = row_order[row_bounds[lv] : row_bounds[lv + 1]]
        if len(es):
            v = data[es] / Ld[indices[es]]
            Lval[es] = v
            np.add.at(acc, rows[es], v * v)
        piv = diag[rs] - acc[rs]
        if np.any(piv <= 0):
            raise _PivotError
        Ld[rs] = np.sqrt(piv)
    L = sp.csr_matrix((Lval, indices, indptr), shape=(n, n)) + sp.diags(Ld)
    return sp.csr_matrix(L)


def _levels(indptr, indices, n) -> np.ndarray:
    """Wavefront level of each row of a strictly lower-triangular pattern."""
    ip = indptr.tolist()
    ind = indices.tolist()
    lvl = [0] * n
    for i in range(n):
        s, e = ip[i], ip[i + 1]
        if e > s:
            lvl[i] = 1 + max([lvl[j] for j in ind[s:e]])
    return np.asarray(lvl, dtype=np.int64)


def _ic0_rowloop(A: sp.csr_matrix, shift: float) -> sp.csr_matrix:
    n = A.shape[0]
    Lpat = sp.tril(A, format="csr")
    Lpat.sort_indices()
    indptr, indices = Lpat.indptr, Lpat.indices
    vals = Lpat.data.copy()
    rowmap: list[dict[int, int]] = [
        {int(indices[k]): k for k in range(indptr[i], indptr[i + 1])} for i in range(n)
    ]
    for i in range(n):
        for k in range(indptr[i], indptr[i + 1]):
            j = int(indices[k])
            s = 0.0
            for c, kk in rowmap[i].items():
                if c < j and c in rowmap[j]:
                    s += vals[kk] * vals[rowmap[j][c]]
            if j < i:
                vals[k] = (vals[k] - s) / vals[rowmap[j][j]]
            else:
                piv = vals[k] * (1 + shift) - s
                if piv <= 0:
                    raise _PivotError
                vals[k] = np.sqrt(piv)
    return sp.csr_matrix((vals, indices, indptr), shape=(n, n))


def amg(A, **kwargs):
    """pyamg smoothed-aggregation V-cycle as a LinearOperator (pyamg must be installed).

    ``kwargs`` go to ``pyamg.smoothed_aggregation_solver``. The V-cycle uses symmetric
    Gauss-Seidel smoothing, so it is a valid SPD preconditioner for CG.
    """
    try:
        import pyamg
    except ImportError as exc:  # pragma: no cover
        raise SolverError("the 'amg' preconditioner needs pyamg: pip install pyamg") from exc
    A = _square_csr(A)
    ml = pyamg.smoothed_aggregation_solver(A, **kwargs)
    return ml.aspreconditioner(cycle="V")


# --------------------------------------------------------------------------------------
# Learned SPD multigrid: sparse assembly of a LearnedVCycle's hierarchy
# --------------------------------------------------------------------------------------


def prolongation_1d(n_fine: int, weights: Sequence[float]) -> sp.csr_matrix:
    """Cell-centred 1D prolongation ``(n_fine, ceil(n_fine / 2))`` with stencil (b, a, a, b).

    Fine cell ``2I`` takes ``a`` from coarse ``I`` and ``b`` from ``I - 1``; fine ``2I + 1``
    takes ``a`` from ``I`` and ``b`` from ``I + 1``; neighbours beyond the grid are
    dropped (a zero Dirichlet extension).
    """
    a, b = float(weights[0]), float(weights[1])
    nc = (n_fine + 1) // 2
    rows, cols, vals = [], [], []
    for i in range(n_fine):
        c = i // 2
        rows.append(i)
        cols.append(c)
        vals.append(a)
        nb = c - 1 if i % 2 == 0 else c + 1
        if 0 <= nb < nc:
            rows.append(i)
            cols.append(nb)
            vals.append(b)
    return sp.csr_matrix((vals, (rows, cols)), shape=(n_fine, nc))


class MultigridHierarchy:
    """Galerkin multigrid hierarchy of a :class:`~pdesurrogates.surrogates.LearnedVCycle`.

    ``P_l`` is the tensor product of learned 1D cell-centred stencils, ``R_l = P_l^T``,
    ``A_{l+1} = P_l^T A_l P_l``, damped-Jacobi smoothing ``omega_l D_l^{-1}`` with
    ``omega_l = f_l * 2 / g_l`` where ``g_l >= lambda_max(D_l^{-1} A_l)`` is the
    Gershgorin bound and ``f_l in (0, 1)`` the learned fraction, and an exact (Cholesky)
    solve on the coarsest level. With the same number of pre- and post-smoothing steps
    the V-cycle ``B`` is symmetric, and ``omega_l < 2 / lambda_max`` makes it positive
    definite for *any* SPD ``A``: SPD by construction.
    """

    def __init__(self, model, A, shape: Sequence[int]):
        A = _square_csr(A)
        shape = tuple(int(s) for s in shape)
        if int(np.prod(shape)) != A.shape[0]:
            raise ValueError(f"grid {shape} holds {int(np.prod(shape))} cells; A is {A.shape}")
        params = model.numpy_parameters()
        self.nu = int(model.smoothing_steps)
        self.levels: list[dict] = []
        cur, cur_shape = A, shape
        lvl = 0
        while True:
            d = cur.diagonal()
            if np.any(d <= 0):
                raise SolverError(f"level {lvl}: non-positive diagonal; A is not SPD")
            g = float(np.max(abs(cur).sum(axis=1).A1 / d))
            frac = params["omega_fraction"][min(lvl, len(params["omega_fraction"]) - 1)]
            level = {"A": cur, "shape": cur_shape, "dinv": 1.0 / d, "omega": frac * 2.0 / g}
            self.levels.append(level)
            if cur.shape[0] <= model.coarse_cells or min(cur_shape) < 2:
                level["chol"] = cho_factor(cur.toarray())
                break
            P = None
            for s in cur_shape:
                p1 = prolongation_1d(s, params["stencil"])
                P = p1 if P is None else sp.kron(P, p1, format="csr")
            level["P"] = sp.csr_matrix(P)
            cur = sp.csr_matrix(P.T @ cur @ P)
            cur_shape = tuple((s + 1) // 2 for s in cur_shape)
            lvl += 1
        self.n = A.shape[0]
        self.operator_complexity = sum(lv["A"].nnz for lv in self.levels) / A.nnz

    def _cycle(self, lvl: int, r: np.ndarray) -> np.ndarray:
        L = self.levels[lvl]
        if "chol" in L:
            return cho_solve(L["chol"], r)
        A, w = L["A"], L["omega"] * L["dinv"]
        x = w * r
        for _ in range(self.nu - 1):
            x += w * (r - A @ x)
        P = L["P"]
        x += P @ self._cycle(lvl + 1, P.T @ (r - A @ x))
        for _ in range(self.nu):
            x += w * (r - A @ x)
        return x

    def matvec(self, r: np.ndarray) -> np.ndarray:
        """One V-cycle applied to ``r`` (zero initial guess)."""
        return self._cycle(0, np.asarray(r, dtype=np.float64).ravel())


class LearnedPreconditioner:
    """A trained model set up for one matrix ``A``: build once, apply many times.

    Parameters
    ----------
    model : torch.nn.Module
        Either a :class:`~pdesurrogates.surrogates.LearnedVCycle` (linear, SPD by
        construction: its Galerkin hierarchy for ``A`` is assembled here, once) or a
        direction network such as :class:`~pdesurrogates.surrogates.ConjugateDirectionNet`
        (nonlinear: use :meth:`solve`, :func:`fcg` or :func:`dcdm`).
    A : sparse matrix or gallery Problem, shape (n, n)
    shape : tuple of int, optional
        Grid shape (inferred for squares/cubes and from a Problem).
    mask : ndarray of bool, optional
        Fluid cells (from a Problem); a network's output is zeroed elsewhere.

    Attributes
    ----------
    is_linear, is_symmetric : bool
        Whether ``M`` is a fixed linear map, and a symmetric one (CG-valid when both).
    setup_seconds : float
    """

    def __init__(self, model, A, *, shape: Sequence[int] | None = None, mask=None):
        if hasattr(A, "mask") and hasattr(A, "A") and not sp.issparse(A):
            shape = A.shape if shape is None else shape
            mask = A.mask if mask is None else mask
            A = A.A
        self.A = _square_csr(A)
        n = self.A.shape[0]
        dim = getattr(model, "dim", None) or (len(shape) if shape is not None else 2)
        self.shape = grid_shape_for(n, int(dim), shape)
        self.model = model
        self.mask = mask
        t0 = time.perf_counter()
        if hasattr(model, "numpy_parameters"):
            self._hier = MultigridHierarchy(model, self.A, self.shape)
            self._apply = self._hier.matvec
            self.is_linear = self.is_symmetric = True
        else:
            self._hier = None
            model.eval()
            self._apply = network_apply(model, self.shape, mask=mask)
            self.is_linear = bool(getattr(model, "is_linear", False))
            self.is_symmetric = False
        self.setup_seconds = time.perf_counter() - t0

    @property
    def n(self) -> int:
        return self.A.shape[0]

    def matvec(self, r: np.ndarray) -> np.ndarray:
        """Apply the preconditioner to a residual vector ``(n,)``."""
        r = np.asarray(r, dtype=np.float64).ravel()
        if r.shape[0] != self.n:
            raise ValueError(f"r has {r.shape[0]} entries, expected {self.n}")
        return self._apply(r)

    __call__ = matvec

    def aslinearoperator(self, *, allow_nonlinear: bool = False) -> sla.LinearOperator:
        """A float64 ``LinearOperator`` for ``M=`` in scipy's ``cg`` / ``gmres``.

        Raises ``SolverError`` for a nonlinear network unless ``allow_nonlinear=True``:
        scipy's CG assumes a fixed SPD ``M`` and can diverge otherwise (use
        :meth:`solve`, :func:`fcg` or :func:`dcdm` instead).
        """
        if not (self.is_linear and self.is_symmetric) and not allow_nonlinear:
            raise SolverError(
                f"{type(self.model).__name__} is a nonlinear preconditioner: scipy's cg "
                "would be invalid (it can diverge). Use LearnedPreconditioner.solve(), "
                "pdesurrogates.solvers.fcg(A, b, M=...) or dcdm(), or pass "
                "allow_nonlinear=True if you know what you are doing"
            )
        return _operator(self.n, self.matvec)

    def solve(
        self, b, x0=None, *, rtol: float = 1e-6, atol: float = 0.0, maxiter=None, callback=None
    ) -> SolveResult:
        """Solve ``A x = b``: PCG for an SPD model, DCDM (flexible CG) for a network."""
        if self.is_linear and self.is_symmetric:
            return cg(
                self.A,
                b,
                x0,
                rtol=rtol,
                atol=atol,
                maxiter=maxiter,
                M=self.matvec,
                callback=callback,
            )
        if hasattr(self.model, "dim"):
            return dcdm(
                self.A,
                b,
                self.model,
                x0=x0,
                rtol=rtol,
                atol=atol,
                maxiter=maxiter,
                callback=callback,
                shape=self.shape,
                mask=self.mask,
            )
        return fcg(
            self.A,
            b,
            x0,
            rtol=rtol,
            atol=atol,
            maxiter=maxiter,
            M=self.matvec,
            m=2,
            callback=callback,
        )
