"""Dense (differentiable) multigrid hierarchies on cell-centred grids, in torch.

One construction, shared by :class:`~pdesurrogates.surrogates.LearnedVCycle` (its
``forward`` and its training) and equal to the sparse
:class:`~pdesurrogates.solvers.MultigridHierarchy` on small grids.
"""

from __future__ import annotations

import torch

from pdesurrogates.solvers._multigrid import neumann_rows

__all__ = ["dense_hierarchy"]


def _prolongation_1d_torch(n_fine: int, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Dense cell-centred 1D prolongation ``(n_fine, ceil(n_fine/2))``, stencil (b, a, a, b)."""
    nc = (n_fine + 1) // 2
    i = torch.arange(n_fine)
    c = i // 2
    nb = torch.where(i % 2 == 0, c - 1, c + 1)
    P = torch.zeros(n_fine, nc, dtype=a.dtype, device=a.device)
    P = P.index_put((i, c), a.expand(n_fine))
    ok = (nb >= 0) & (nb < nc)
    P = P.index_put((i[ok], nb[ok]), b.expand(int(ok.sum())), accumulate=True)
    return P


def _laplacian_dense(shape, dtype, device) -> torch.Tensor:
    """Dense Dirichlet Laplacian (``2·dim`` on the diagonal) on the cell-centred grid ``shape``."""
    A = None
    for ax, n in enumerate(shape):
        T = 2 * torch.eye(n, dtype=dtype, device=device)
        T = T - torch.diag(torch.ones(n - 1, dtype=dtype, device=device), 1)
        T = T - torch.diag(torch.ones(n - 1, dtype=dtype, device=device), -1)
        mats = [torch.eye(m, dtype=dtype, device=device) for m in shape]
        mats[ax] = T
        term = mats[0]
        for m in mats[1:]:
            term = torch.kron(term, m)
        A = term if A is None else A + term
    return A


def dense_hierarchy(
    model, A: torch.Tensor, shape, geometric=None, coarse_cells: int | None = None
) -> list[dict]:
    """Dense (differentiable) hierarchy of ``model`` for ``A``, as the sparse
    :class:`~pdesurrogates.solvers.MultigridHierarchy` builds it: no interpolation into
    solid (identity-row) cells, Neumann rows of ``P`` (a vanishing signed row sum of ``A``,
    ``solvers._multigrid.neumann_rows``) rescaled to the interior row sum,
    Galerkin coarse operators or the fixed rediscretised ones ``geometric``;
    ``coarse_cells`` (default ``model.coarse_cells``) sets where the exact solve starts
    (a smaller value gives a deeper hierarchy on the same grid)."""
    levels, cur, cur_shape, lvl = [], A, tuple(shape), 0
    coarse_cells = model.coarse_cells if coarse_cells is None else int(coarse_cells)
    frac = model.omega_fraction().to(A.dtype)
    a, b = model.stencil.to(A.dtype)
    while True:
        d = torch.diagonal(cur)
        g = (cur.abs().sum(dim=1) / d).max()
        level = {"A": cur, "dinv": 1.0 / d, "omega": frac[min(lvl, len(frac) - 1)] * 2.0 / g}
        levels.append(level)
        if cur.shape[0] <= coarse_cells or min(cur_shape) < 2:
            level["chol"] = torch.linalg.cholesky(cur)
            return levels
        P = None
        for s in cur_shape:
            p1 = _prolongation_1d_torch(s, a, b)
            P = p1 if P is None else torch.kron(P, p1)
        with torch.no_grad():
            off = cur.abs().sum(dim=1) - d.abs()
            isolated = off == 0
            neumann = neumann_rows(d, cur.sum(dim=1))
        row_sum = P.sum(dim=1)
        safe = torch.where(row_sum != 0, row_sum, torch.ones_like(row_sum))
        full = (a + b) ** len(cur_shape)
        scale = torch.where(neumann & (row_sum != 0), full / safe, torch.ones_like(row_sum))
        scale = torch.where(isolated, torch.zeros_like(scale), scale)
        P = scale[:, None] * P
        level["P"] = P
        if geometric is not None and lvl < len(geometric):
            cur = geometric[lvl]
        else:
            cur = P.T @ cur @ P
            empty = torch.diagonal(cur) == 0
            cur = cur + torch.diag(empty.to(cur.dtype))
        cur_shape = tuple((s + 1) // 2 for s in cur_shape)
        lvl += 1
