"""Multigrid V-cycles on structured grids: learned Galerkin and classical geometric coarsening.

:class:`MultigridHierarchy` is the sparse hierarchy of a ``LearnedVCycle`` (or, with
``model=None``, of the classical parameters that are its initialisation). Its coarse
operators are chosen by ``coarse=``:

* ``"galerkin"``: ``A_{l+1} = P_l^T A_l P_l`` (exact; sees the coefficients).
* ``"compact"``: the Galerkin operator restricted to the ``3^d`` neighbourhood of each
  coarse cell, every dropped coupling ``a_ij`` moved to the diagonal as ``|a_ij|`` (this
  adds a positive semidefinite matrix, so the operator stays SPD and dominates the exact
  one). In 3D the exact operator has up to 125 entries a row; this keeps at most 27.
* ``"geometric"``: rediscretisation from the fine matrix (classical geometric multigrid):
  a coarse face coefficient is half the sum of the fine face coefficients it covers
  (``-A[i, j]`` of a 5-/7-point finite-volume matrix), the boundary part of the diagonal
  (``a_ii - sum_j |a_ij|``) likewise; a coarse cell is solid (identity row) when all its
  children are isolated identity rows. Needs a 5-/7-point matrix.

With equal pre- and post-smoothing and any SPD coarse operators the V-cycle is symmetric
positive definite, so each variant is a valid ``M`` for CG.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.linalg import cho_factor, cho_solve

from pdesurrogates.errors import SolverError
from pdesurrogates.solvers._checks import check_symmetric_matrix, grid_shape_for, unwrap_grid
from pdesurrogates.solvers._precond_base import Preconditioner, square_csr

__all__ = [
    "COARSE_OPERATORS",
    "MultigridHierarchy",
    "geometric_coarse",
    "neumann_rows",
    "prolongation_1d",
]

COARSE_OPERATORS = ("galerkin", "compact", "geometric")
CLASSICAL = {"stencil": (0.75, 0.25), "omega_fraction": (0.8,), "nu": 2, "coarse_cells": 64}
"""The classical cycle (``model=None``): trilinear cell-centred ``P``, Jacobi at 0.8 of
the Gershgorin stability limit, two pre- and post-smoothing steps."""


def prolongation_1d(n_fine: int, weights: Sequence[float]) -> sp.csr_matrix:
    """Cell-centred 1D prolongation ``(n_fine, ceil(n_fine / 2))`` with stencil (b, a, a, b).

    Fine cell ``2I`` takes ``a`` from coarse ``I`` and ``b`` from ``I - 1``; fine ``2I + 1``
    takes ``a`` from ``I`` and ``b`` from ``I + 1``; neighbours beyond the grid are
    dropped (a zero Dirichlet extension).
    """
    a, b = float(weights[0]), float(weights[1])
    nc = (n_fine + 1) // 2
    i = np.arange(n_fine)
    c = i // 2
    nb = np.where(i % 2 == 0, c - 1, c + 1)
    ok = (nb >= 0) & (nb < nc)
    rows = np.concatenate([i, i[ok]])
    cols = np.concatenate([c, nb[ok]])
    vals = np.concatenate([np.full(n_fine, a), np.full(int(ok.sum()), b)])
    return sp.csr_matrix((vals, (rows, cols)), shape=(n_fine, nc))


def _strides(shape) -> list[int]:
    return [int(np.prod(shape[ax + 1 :])) for ax in range(len(shape))]


def _compact(Ac: sp.csr_matrix, shape) -> sp.csr_matrix:
    """Keep couplings within one cell per axis; lump the others (as ``|a_ij|``) on the diagonal."""
    coo = Ac.tocoo()
    far = np.zeros(coo.nnz, bool)
    for ax, s in enumerate(_strides(shape)):
        far |= np.abs((coo.row // s) % shape[ax] - (coo.col // s) % shape[ax]) > 1
    lump = np.bincount(coo.row[far], weights=np.abs(coo.data[far]), minlength=Ac.shape[0])
    keep = ~far
    out = sp.csr_matrix(
        (coo.data[keep], (coo.row[keep], coo.col[keep])), shape=Ac.shape
    ) + sp.diags(lump)
    return sp.csr_matrix(out)


def _banded(A: sp.csr_matrix):
    """``A`` in DIA format when its nonzeros lie on few diagonals (a grid stencil), else
    ``A``: scipy's DIA product streams contiguous diagonals and is several times faster
    than CSR on stencil matrices; the result is the same sum up to its order."""
    if not A.has_canonical_format:  # duplicate entries add up, as in ``A @ x``
        A = A.copy()
        A.sum_duplicates()
    n = A.shape[0]
    itype = np.int32 if 2 * n < 2**31 else np.int64  # offsets: 4 bytes per nonzero
    off = np.repeat(np.arange(-n, 0, dtype=itype), np.diff(A.indptr))
    off = np.subtract(A.indices, off, dtype=itype)  # column - row + n, in [1, 2n - 1]
    present = np.bincount(off, minlength=2 * n) > 0
    offsets = np.flatnonzero(present)
    if n == 0 or offsets.size * n > 1.5 * A.nnz:
        return A
    slot = np.cumsum(present) - 1  # offset + n -> its row in the DIA data
    data = np.zeros((offsets.size, n))
    data[slot[off], A.indices] = A.data
    offsets = offsets - n
    return sp.dia_matrix((data, offsets), shape=A.shape)


def _row_sums(A: sp.csr_matrix, values: np.ndarray) -> np.ndarray:
    """Per-row sums of ``values`` (one per stored entry of CSR ``A``; empty rows give 0)."""
    rows = np.repeat(np.arange(A.shape[0]), np.diff(A.indptr))
    return np.bincount(rows, weights=values, minlength=A.shape[0])


def _isolated_rows(A: sp.csr_matrix) -> np.ndarray:
    """Rows without an off-diagonal nonzero (the identity rows of solid cells)."""
    rows = np.repeat(np.arange(A.shape[0]), np.diff(A.indptr))
    off = (A.data != 0) & (A.indices != rows)
    return np.bincount(rows[off], minlength=A.shape[0]) == 0


def neumann_rows(d, row_sum, rtol: float = 1e-10):
    """Rows without a Dirichlet part: the signed row sum ``sum_j a_ij`` vanishes relative to
    ``a_ii`` (a Neumann wall or obstacle, or an interior cell). Works on numpy arrays and
    torch tensors alike. The signed sum is the test that holds on every level: a Galerkin
    coarse row has positive off-diagonal entries, so ``a_ii - sum_{j!=i} |a_ij| <= 0`` flags
    its Dirichlet boundary rows too."""
    return abs(row_sum) <= rtol * d


def _neumann_prolongation(P, A, isolated, stencil, dim) -> sp.csr_matrix:
    """``P`` for a domain with solid cells (identity rows): nothing is interpolated into a
    solid cell, and a fluid row without a Dirichlet part (:func:`neumann_rows`) is rescaled
    to the interior row sum, so that it reproduces constants as the interior rows do."""
    d = A.diagonal()
    neumann = neumann_rows(d, _row_sums(A, A.data))
    row_sum = np.asarray(P.sum(axis=1)).ravel()
    full = float(np.sum(stencil)) ** dim
    scale = np.where(neumann & (row_sum != 0), full / np.where(row_sum != 0, row_sum, 1.0), 1.0)
    scale[isolated] = 0.0
    if np.all(scale == 1.0):
        return P
    P = P.copy()  # scale the rows in place: no sparse product
    P.data *= np.repeat(scale, np.diff(P.indptr))
    return P


def _pair_sum(x: np.ndarray, axis: int) -> np.ndarray:
    """Sum neighbouring pairs along ``axis`` (an odd length keeps its last entry alone)."""
    if x.shape[axis] % 2:
        pad = [(0, 0)] * x.ndim
        pad[axis] = (0, 1)
        x = np.pad(x, pad)
    new = (*x.shape[:axis], x.shape[axis] // 2, 2, *x.shape[axis + 1 :])
    return x.reshape(new).sum(axis=axis + 1)


def geometric_coarse(A: sp.csr_matrix, shape: Sequence[int]) -> sp.csr_matrix:
    """Rediscretised coarse operator of a 5-/7-point finite-volume matrix (see module doc).

    >>> from pdesurrogates.solvers import gallery
    >>> Ac = geometric_coarse(gallery.laplacian((8, 8, 8)), (8, 8, 8))
    >>> bool(abs(Ac - 2 * gallery.laplacian((4, 4, 4))).max() < 1e-12)
    True
    """
    shape = tuple(int(s) for s in shape)
    n, strides = int(np.prod(shape)), _strides(shape)
    d = A.diagonal()
    faces, off_sum = [], np.zeros(n)
    for ax, s in enumerate(strides):
        w = np.zeros(n)
        w[: n - s] = -A.diagonal(k=s)
        w = w.reshape(shape)
        w = np.take(w, range(shape[ax] - 1), axis=ax)  # face between j and j + 1
        faces.append(w)
        full = np.zeros(shape)
        full[tuple(slice(0, -1) if a == ax else slice(None) for a in range(len(shape)))] += w
        full[tuple(slice(1, None) if a == ax else slice(None) for a in range(len(shape)))] += w
        off_sum += np.abs(full).reshape(-1)
    if abs(A).sum() - np.abs(d).sum() - off_sum.sum() > 1e-10 * abs(A).sum():
        raise SolverError("geometric coarsening needs a 5-/7-point matrix on the grid")
    coupled = off_sum > 0
    excess = np.where(coupled, d - off_sum, 0.0).reshape(shape)
    isolated = ~coupled.reshape(shape)
    cshape = tuple((s + 1) // 2 for s in shape)
    for ax in range(len(shape)):
        excess = _pair_sum(excess, ax)
        isolated = _pair_sum(isolated.astype(int), ax)
    solid = isolated == np.prod([2] * len(shape))  # every child isolated (or padding)
    kids = np.ones(shape, int)
    for ax in range(len(shape)):
        kids = _pair_sum(kids, ax)
    solid = isolated == kids
    cfaces = []
    for ax, w in enumerate(faces):
        w = np.take(w, range(1, w.shape[ax], 2), axis=ax)  # fine faces 2I+1 | 2I+2
        for other in range(len(shape)):
            if other != ax:
                w = _pair_sum(w, other)
        cfaces.append(0.5 * w)
    return _assemble(cshape, cfaces, 0.5 * excess, solid)


def _assemble(shape, faces, excess, solid) -> sp.csr_matrix:
    n, strides = int(np.prod(shape)), _strides(shape)
    diag = excess.copy()
    offs, diags = [], []
    for ax, (s, w) in enumerate(zip(strides, faces, strict=True)):
        if shape[ax] < 2:
            continue
        lo = [slice(None)] * len(shape)
        hi = [slice(None)] * len(shape)
        lo[ax], hi[ax] = slice(0, -1), slice(1, None)
        w = np.where(solid[tuple(lo)] | solid[tuple(hi)], 0.0, w)
        diag[tuple(lo)] += w
        diag[tuple(hi)] += w
        full = np.zeros(shape)
        full[tuple(lo)] = w
        band = -full.reshape(-1)[: n - s]
        offs += [s, -s]
        diags += [band, band]
    diag = np.where(solid | (diag <= 0), 1.0, diag)
    return sp.csr_matrix(sp.diags([diag.reshape(-1), *diags], [0, *offs], shape=(n, n)))


class MultigridHierarchy(Preconditioner):
    """Multigrid V-cycle on a structured grid: a learned or classical SPD preconditioner.

    ``P_l`` is the tensor product of 1D cell-centred stencils ``(b, a, a, b)``,
    ``R_l = P_l^T``, coarse operators as chosen by ``coarse`` (module doc),
    damped-Jacobi smoothing ``omega_l D_l^{-1}`` with ``omega_l = f_l * 2 / g_l`` where
    ``g_l >= lambda_max(D_l^{-1} A_l)`` is the Gershgorin bound and ``f_l in (0, 1)``, and
    an exact (Cholesky) solve on the coarsest level. With the same number of pre- and
    post-smoothing steps the V-cycle ``B`` is symmetric, and ``omega_l < 2 / lambda_max``
    with SPD coarse operators makes it positive definite for *any* SPD ``A``.

    Parameters
    ----------
    model : LearnedVCycle or None
        Supplies ``numpy_parameters()``, ``smoothing_steps`` and ``coarse_cells``; ``None``
        takes the classical cycle :data:`CLASSICAL` (the ``LearnedVCycle`` initialisation).
    A : sparse matrix or gallery Problem, shape (n, n)
        Symmetric positive definite, a stencil on the grid (checked: a renumbered matrix is
        refused). A non-symmetric ``A`` is refused too (``SolverError`` naming its largest
        ``|A_ij - A_ji|``): the V-cycle would not be symmetric, and CG would fail silently.
        The test reads the diagonals of the banded form the smoother uses anyway, so it
        costs well under 1 % of the setup.
    shape : tuple of int, optional
        Grid shape with ``prod(shape) == n`` (C order); taken from a Problem or a gallery
        matrix (``A.grid_shape``), inferred for a square/cube, needed otherwise.
    coarse : {"galerkin", "compact", "geometric"}
        How coarse operators are built (module doc).
    """

    def __init__(self, model, A, shape: Sequence[int] | None = None, *, coarse: str = "galerkin"):
        t0 = time.perf_counter()
        if coarse not in COARSE_OPERATORS:
            raise ValueError(f"coarse must be one of {COARSE_OPERATORS}; got {coarse!r}")
        A, shape, _ = unwrap_grid(A, shape)
        A = square_csr(A)
        if shape is not None and int(np.prod(tuple(int(s) for s in shape))) != A.shape[0]:
            cells = int(np.prod(tuple(shape)))
            raise ValueError(f"grid {tuple(shape)} holds {cells} cells; A is {A.shape}")
        dim = getattr(model, "dim", None) or (len(shape) if shape is not None else 2)
        shape = grid_shape_for(A.shape[0], int(dim), shape, A=A, who="the multigrid V-cycle")
        op = _banded(A)  # the finest smoother's operator; its diagonals show A's symmetry
        who = "MultigridHierarchy" if model is None else "MultigridHierarchy (LearnedVCycle)"
        check_symmetric_matrix(op, who)
        if model is None:
            params = {k: np.asarray(CLASSICAL[k], float) for k in ("stencil", "omega_fraction")}
            self.nu, coarse_cells = CLASSICAL["nu"], CLASSICAL["coarse_cells"]
        else:
            params = model.numpy_parameters()
            self.nu, coarse_cells = int(model.smoothing_steps), int(model.coarse_cells)
        self.coarse = coarse
        self.levels = self._build(A, shape, params, coarse_cells, op)
        self.n = A.shape[0]
        self.operator_complexity = sum(lv["A"].nnz for lv in self.levels) / A.nnz
        self.setup_seconds = time.perf_counter() - t0

    def _build(self, A, shape, params, coarse_cells, op) -> list[dict]:
        levels: list[dict] = []
        cur, cur_shape, lvl = A, tuple(shape), 0
        while True:
            d = cur.diagonal()
            if np.any(d <= 0):
                raise SolverError(f"level {lvl}: non-positive diagonal; A is not SPD")
            g = float(np.max(_row_sums(cur, np.abs(cur.data)) / d))
            frac = params["omega_fraction"][min(lvl, len(params["omega_fraction"]) - 1)]
            level = {"A": cur, "shape": cur_shape, "dinv": 1.0 / d, "omega": frac * 2.0 / g}
            levels.append(level)
            if cur.shape[0] <= coarse_cells or min(cur_shape) < 2:
                level["chol"] = cho_factor(cur.toarray())
                return levels
            level["op"] = op if lvl == 0 else _banded(cur)
            level["w"] = level["omega"] * level["dinv"]
            P = None
            for s in cur_shape:
                p1 = prolongation_1d(s, params["stencil"])
                P = p1 if P is None else sp.kron(P, p1, format="csr")
            isolated = _isolated_rows(cur)
            P = _neumann_prolongation(P, cur, isolated, params["stencil"], len(cur_shape))
            level["P"] = sp.csr_matrix(P)
            level["PT"] = sp.csr_matrix(P.T)
            nxt_shape = tuple((s + 1) // 2 for s in cur_shape)
            if self.coarse == "geometric":
                cur = geometric_coarse(cur, cur_shape)
            else:
                cur = sp.csr_matrix(level["PT"] @ cur @ P)
                if self.coarse == "compact":
                    cur = _compact(cur, nxt_shape)
                if isolated.any():  # coarse cells with only solid children: identity rows
                    cur = sp.csr_matrix(cur + sp.diags((cur.diagonal() == 0).astype(float)))
            cur_shape = nxt_shape
            lvl += 1

    def _cycle(self, lvl: int, r: np.ndarray) -> np.ndarray:
        L = self.levels[lvl]
        if "chol" in L:
            return cho_solve(L["chol"], r)
        A, w = L["op"], L["w"]
        x = w * r
        for _ in range(self.nu - 1):
            t = A @ x
            np.subtract(r, t, out=t)
            t *= w
            x += t
        t = A @ x
        np.subtract(r, t, out=t)
        x += L["P"] @ self._cycle(lvl + 1, L["PT"] @ t)
        for _ in range(self.nu):
            t = A @ x
            np.subtract(r, t, out=t)
            t *= w
            x += t
        return x

    def matvec(self, r: np.ndarray) -> np.ndarray:
        """One V-cycle applied to ``r`` (zero initial guess)."""
        return self._cycle(0, self._vector(r))
