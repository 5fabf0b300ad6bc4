"""Our own smoothed-aggregation AMG for sparse SPD matrices (plain numpy/scipy).

The hierarchy follows Vanek, Mandel and Brezina's smoothed aggregation, with the same
defaults as pyamg's ``smoothed_aggregation_solver``:

* strength of connection: ``|a_ij| >= theta sqrt(a_ii a_jj)`` (``theta = 0``: every
  nonzero is strong);
* standard aggregation (three passes: root nodes with all their neighbours, then
  neighbours join an aggregate, then leftovers form new aggregates);
* tentative prolongator ``T`` with the constant near-null space (columns normalised);
* Jacobi-smoothed prolongator ``P = (I - diag(w) D^{-1} F / rho) T`` with ``F = A``,
  ``w = 4/3`` and ``rho`` the spectral radius of ``D^{-1} A``;
* Galerkin coarse operators ``A_c = P^T A P``, down to at most ``max_coarse`` unknowns,
  solved there by a dense Cholesky factorisation;
* a symmetric V-cycle: the pre-smoother is a symmetric SOR sweep (forward, then
  backward; ``s = 1`` is symmetric Gauss-Seidel), the post-smoother the same sweep, so
  the cycle is the adjoint of itself and an SPD preconditioner for CG.

The per-node weights ``w`` (prolongation smoothing) and ``s`` (SOR relaxation, kept in
``(0, 2)``, which makes ``M + M^T - A = D (2/s - 1)`` positive definite and the cycle
SPD for any weights) can come from a callable: that is where
:class:`~pdesurrogates.surrogates.NeuralAMG` plugs its graph network in.

Examples
--------
>>> import numpy as np
>>> from pdesurrogates.solvers import SmoothedAggregation, gallery
>>> A = gallery.poisson2d(32)
>>> P = SmoothedAggregation(A)
>>> res = P.solve(np.ones(A.shape[0]), rtol=1e-8)
>>> res.converged, res.n_iter <= 12, len(P.levels) >= 2
(True, True, True)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla_dense
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from pdesurrogates.errors import SolverError
from pdesurrogates.solvers._factor import check_spd_matrix
from pdesurrogates.solvers._krylov import SolveResult, cg
from pdesurrogates.solvers._precond_base import Preconditioner

__all__ = [
    "SmoothedAggregation",
    "WeightFn",
    "spectral_radius",
    "standard_aggregation",
    "strength",
    "tentative_prolongator",
]

PROLONGATION_OMEGA = 4.0 / 3.0
WeightFn = Callable[[sp.csr_matrix], tuple]
"""``weights(A_level) -> (w (n,), s (n,)[, F])``: prolongation-smoothing and SOR weights,
and optionally the matrix ``F`` (``A``'s pattern) smoothed with in place of ``A``."""


def strength(A: sp.csr_matrix, theta: float = 0.0) -> sp.csr_matrix:
    """Symmetric strength graph: off-diagonal ``|a_ij| >= theta sqrt(|a_ii a_jj|)``."""
    C = sp.coo_matrix(A)
    d = np.sqrt(np.abs(A.diagonal()))
    keep = (C.row != C.col) & (np.abs(C.data) >= theta * d[C.row] * d[C.col]) & (C.data != 0)
    n = A.shape[0]
    return sp.csr_matrix((np.ones(int(keep.sum())), (C.row[keep], C.col[keep])), shape=(n, n))


def standard_aggregation(C: sp.csr_matrix) -> np.ndarray:
    """Aggregate index per node (``0 .. n_agg - 1``) from a symmetric strength graph.

    Pass 1: a node whose neighbours are all free roots an aggregate with them. Pass 2: a
    free node joins the pass-1 aggregate of a neighbour. Pass 3: a node still free roots
    an aggregate with its free neighbours (an isolated node is its own aggregate).
    """
    n = C.shape[0]
    ptr, idx = C.indptr.tolist(), C.indices.tolist()  # plain lists: fast scalar access
    nbrs = [idx[ptr[i] : ptr[i + 1]] for i in range(n)]
    agg = [-1] * n
    count = 0
    for i in range(n):  # pass 1
        nb = nbrs[i]
        if agg[i] < 0 and nb and all(agg[j] < 0 for j in nb):
            agg[i] = count
            for j in nb:
                agg[j] = count
            count += 1
    first = list(agg)
    for i in range(n):  # pass 2: join a pass-1 aggregate
        if agg[i] < 0:
            for j in nbrs[i]:
                if first[j] >= 0:
                    agg[i] = first[j]
                    break
    for i in range(n):  # pass 3
        if agg[i] < 0:
            agg[i] = count
            for j in nbrs[i]:
                if agg[j] < 0:
                    agg[j] = count
            count += 1
    return np.asarray(agg, dtype=np.int64)


def tentative_prolongator(agg: np.ndarray) -> sp.csr_matrix:
    """``T`` (n x n_agg): the constant on each aggregate, columns of unit 2-norm."""
    n, nc = agg.size, int(agg.max()) + 1
    size = np.bincount(agg, minlength=nc).astype(float)
    return sp.csr_matrix((1.0 / np.sqrt(size[agg]), (np.arange(n), agg)), shape=(n, nc))


def spectral_radius(A: sp.csr_matrix, iters: int = 20, seed: int = 0) -> float:
    """``rho(D^{-1} A)`` for SPD ``A``, by Lanczos-free power iteration (slight upper bias).

    The symmetric form ``D^{-1/2} A D^{-1/2}`` is iterated and the Rayleigh quotient is
    raised by 5 % (the power method approaches ``rho`` from below; an overestimate only
    damps the prolongation smoother slightly).
    """
    n = A.shape[0]
    s = 1.0 / np.sqrt(A.diagonal())
    S = sp.diags(s) @ A @ sp.diags(s)
    v = np.random.default_rng(seed).uniform(-1, 1, n)
    lam = 1.0
    for _ in range(iters):
        w = S @ v
        lam = float(v @ w) / float(v @ v)
        v = w / np.linalg.norm(w)
    return 1.05 * lam


@dataclass
class Level:
    """One level: its matrix, smoother factor and (above the coarsest) the prolongator."""

    A: sp.csr_matrix
    agg: np.ndarray | None = None
    P: sp.csr_matrix | None = None
    R: sp.csr_matrix | None = None
    lu: object = None
    w: np.ndarray | None = None
    s: np.ndarray | None = None


def _sor_factor(A: sp.csr_matrix, s: np.ndarray):
    """SuperLU of the lower-triangular ``D / s + L`` (natural order: used as it is)."""
    M = sp.tril(A, k=-1, format="csc") + sp.diags(A.diagonal() / s, format="csc")
    return sla.splu(
        sp.csc_matrix(M), permc_spec="NATURAL", diag_pivot_thresh=0.0,
        options={"SymmetricMode": False},
    )  # fmt: skip


class SmoothedAggregation(Preconditioner):
    """A smoothed-aggregation hierarchy for an SPD matrix; one V-cycle per application.

    Parameters
    ----------
    A : sparse matrix, shape (n, n)
        Symmetric with a positive diagonal (checked; a matrix that is not positive
        definite shows as a coarse factorisation that fails, ``SolverError``).
    weights : callable, optional
        ``weights(A_level) -> (w, s[, F])`` per level: prolongation-smoothing weights
        ``w`` (``(n_level,)``, multiplying ``D^{-1} F / rho``), SOR weights ``s`` in
        ``(0, 2)`` and optionally the smoothing matrix ``F`` (default ``A``; a learned
        reweighting of its off-diagonal entries). Default: ``w = 4/3``, ``s = 1``
        (pyamg's smoothed aggregation with symmetric Gauss-Seidel).
    theta : float
        Strength threshold (0: every nonzero is strong).
    max_coarse : int
        Size at which coarsening stops (dense Cholesky there).
    max_levels : int
        Cap on the number of levels.
    """

    def __init__(
        self,
        A,
        *,
        weights: WeightFn | None = None,
        theta: float = 0.0,
        max_coarse: int = 10,
        max_levels: int = 10,
        _aggregates: list[np.ndarray] | None = None,
        _checked: bool = False,
    ):
        t0 = time.perf_counter()
        if not _checked:  # (update() and NeuralAMG's guard pass a matrix checked already)
            A = check_spd_matrix(A, "SmoothedAggregation")
        if not (isinstance(max_coarse, int) and max_coarse >= 1):
            raise ValueError(f"max_coarse must be an integer >= 1; got {max_coarse!r}")
        if not (isinstance(max_levels, int) and max_levels >= 1):
            raise ValueError(f"max_levels must be an integer >= 1; got {max_levels!r}")
        self.n = A.shape[0]
        self.A = A
        self.weights, self.theta = weights, float(theta)
        self.max_coarse, self.max_levels = max_coarse, max_levels
        self.levels: list[Level] = []
        self._build(A, _aggregates)
        self.setup_seconds = time.perf_counter() - t0

    def _build(self, A: sp.csr_matrix, aggregates) -> None:
        k = 0
        while True:
            lev = Level(A)
            self.levels.append(lev)
            last = A.shape[0] <= self.max_coarse or len(self.levels) >= self.max_levels
            if aggregates is not None:
                last = k >= len(aggregates)
            if last:
                break
            agg = aggregates[k] if aggregates is not None else None
            if agg is None:
                agg = standard_aggregation(strength(A, self.theta))
            if int(agg.max()) + 1 >= A.shape[0]:  # no coarsening possible
                break
            if k and not (A.diagonal() > 0).all():
                raise SolverError(
                    f"SmoothedAggregation: the level-{k} Galerkin matrix has a diagonal entry "
                    "<= 0, so A is not symmetric positive definite; use a solver for "
                    "indefinite systems"
                )
            w, s, F = self._weights(A)
            lev.agg, lev.w, lev.s = agg, w, s
            T = tentative_prolongator(agg)
            dinv = 1.0 / A.diagonal()
            rho = spectral_radius(A)
            lev.P = sp.csr_matrix(T - sp.diags(w * dinv / rho) @ (F @ T))
            lev.R = sp.csr_matrix(lev.P.T)
            lev.lu = _sor_factor(A, s)
            A = sp.csr_matrix(lev.R @ A @ lev.P)
            A.sort_indices()
            k += 1
        coarse = self.levels[-1].A.toarray()
        try:
            self._coarse = sla_dense.cho_factor(coarse, lower=True)
        except np.linalg.LinAlgError as exc:
            raise SolverError(
                f"SmoothedAggregation: the coarsest matrix ({coarse.shape[0]} unknowns, level "
                f"{len(self.levels) - 1}) is not positive definite, so A is not symmetric "
                "positive definite; use a solver for indefinite systems"
            ) from exc

    def _weights(self, A: sp.csr_matrix):
        n = A.shape[0]
        if self.weights is None:
            return np.full(n, PROLONGATION_OMEGA), np.ones(n), A
        out = self.weights(A)
        w = np.asarray(out[0], dtype=np.float64).reshape(-1)
        s = np.asarray(out[1], dtype=np.float64).reshape(-1)
        F = sp.csr_matrix(out[2]) if len(out) > 2 else A
        if w.shape != (n,) or s.shape != (n,) or F.shape != A.shape:
            raise SolverError(
                f"weights(A) must return two arrays of shape ({n},) (and optionally a matrix "
                f"of A's shape); got {w.shape}, {s.shape} and {F.shape}"
            )
        if not (np.isfinite(w).all() and np.isfinite(F.data).all() and ((s > 0) & (s < 2)).all()):
            raise SolverError(
                "weights(A) must return finite prolongation weights and SOR weights in (0, 2) "
                "(outside, the V-cycle is not SPD)"
            )
        return w, s, F

    @property
    def aggregates(self) -> list[np.ndarray]:
        """The aggregation of every level but the coarsest (reused by :meth:`update`)."""
        return [lev.agg for lev in self.levels[:-1]]

    def update(self, A) -> SmoothedAggregation:
        """A hierarchy for ``A`` with the same sparsity pattern, reusing the aggregates.

        Prolongators, Galerkin operators, smoothers and weights are recomputed; strength
        and aggregation (the pattern-only, sequential part of the setup) are not.
        """
        A = check_spd_matrix(A, "SmoothedAggregation.update")
        old = self.A
        if A.shape != old.shape or not (
            np.array_equal(A.indptr, old.indptr) and np.array_equal(A.indices, old.indices)
        ):
            raise SolverError(
                f"update() needs a matrix of the same sparsity pattern: A has shape {A.shape} "
                f"and {A.nnz} nonzeros, the hierarchy's matrix {old.shape} and {old.nnz}; "
                "build a new hierarchy for a new pattern"
            )
        return type(self)(
            A,
            weights=self.weights,
            theta=self.theta,
            max_coarse=self.max_coarse,
            max_levels=self.max_levels,
            _aggregates=self.aggregates,
            _checked=True,
        )

    def _sweep(self, lev: Level, x: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Symmetric SOR: forward ``(D/s + L)`` then backward ``(D/s + L)^T``."""
        x = x + lev.lu.solve(b - lev.A @ x)
        return x + lev.lu.solve(b - lev.A @ x, trans="T")

    def _cycle(self, k: int, b: np.ndarray) -> np.ndarray:
        if k == len(self.levels) - 1:
            return sla_dense.cho_solve(self._coarse, b)
        lev = self.levels[k]
        x = lev.lu.solve(b)
        x = x + lev.lu.solve(b - lev.A @ x, trans="T")
        x = x + lev.P @ self._cycle(k + 1, lev.R @ (b - lev.A @ x))
        return self._sweep(lev, x, b)

    def matvec(self, r: np.ndarray) -> np.ndarray:
        """One V-cycle from a zero initial guess: ``M^{-1} r``."""
        return self._cycle(0, self._vector(r))

    @property
    def operator_complexity(self) -> float:
        """``sum nnz(A_k) / nnz(A)``."""
        return sum(lev.A.nnz for lev in self.levels) / self.levels[0].A.nnz

    def solve(
        self, b, x0=None, *, rtol: float = 1e-6, atol: float = 0.0, maxiter=None, callback=None
    ) -> SolveResult:
        """PCG on ``A x = b`` with this V-cycle as the preconditioner."""
        return cg(
            self.A, b, x0, rtol=rtol, atol=atol, maxiter=maxiter, M=self.matvec, callback=callback
        )

    def __repr__(self) -> str:
        sizes = ", ".join(str(lev.A.shape[0]) for lev in self.levels)
        return (
            f"{type(self).__name__}(n={self.n}, levels [{sizes}], operator complexity "
            f"{self.operator_complexity:.2f}, setup={self.setup_seconds:.3g} s)"
        )
