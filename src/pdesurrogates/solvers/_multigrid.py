"""Learned SPD multigrid: the sparse Galerkin hierarchy of a ``LearnedVCycle``."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.linalg import cho_factor, cho_solve

from pdesurrogates.errors import SolverError
from pdesurrogates.solvers._checks import grid_shape_for, unwrap_grid
from pdesurrogates.solvers._precond_base import Preconditioner, square_csr

__all__ = ["MultigridHierarchy", "prolongation_1d"]


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


class MultigridHierarchy(Preconditioner):
    """Galerkin multigrid hierarchy of a :class:`~pdesurrogates.surrogates.LearnedVCycle`.

    ``P_l`` is the tensor product of learned 1D cell-centred stencils, ``R_l = P_l^T``,
    ``A_{l+1} = P_l^T A_l P_l``, damped-Jacobi smoothing ``omega_l D_l^{-1}`` with
    ``omega_l = f_l * 2 / g_l`` where ``g_l >= lambda_max(D_l^{-1} A_l)`` is the
    Gershgorin bound and ``f_l in (0, 1)`` the learned fraction, and an exact (Cholesky)
    solve on the coarsest level. With the same number of pre- and post-smoothing steps
    the V-cycle ``B`` is symmetric, and ``omega_l < 2 / lambda_max`` makes it positive
    definite for *any* SPD ``A``: SPD by construction.

    Parameters
    ----------
    model : LearnedVCycle
        Supplies ``numpy_parameters()``, ``smoothing_steps`` and ``coarse_cells``.
    A : sparse matrix or gallery Problem, shape (n, n)
        Symmetric positive definite, a stencil on the grid (checked: a renumbered matrix is
        refused).
    shape : tuple of int, optional
        Grid shape with ``prod(shape) == n`` (C order); taken from a Problem or a gallery
        matrix (``A.grid_shape``), inferred for a square/cube, needed otherwise.
    """

    def __init__(self, model, A, shape: Sequence[int] | None = None):
        t0 = time.perf_counter()
        A, shape, _ = unwrap_grid(A, shape)
        A = square_csr(A)
        if shape is not None and int(np.prod(tuple(int(s) for s in shape))) != A.shape[0]:
            cells = int(np.prod(tuple(shape)))
            raise ValueError(f"grid {tuple(shape)} holds {cells} cells; A is {A.shape}")
        dim = getattr(model, "dim", None) or (len(shape) if shape is not None else 2)
        shape = grid_shape_for(A.shape[0], int(dim), shape, A=A, who="the learned V-cycle")
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
        self.setup_seconds = time.perf_counter() - t0

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
        return self._cycle(0, self._vector(r))
