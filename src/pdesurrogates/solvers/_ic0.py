"""IC(0) factorisation kernels: level-scheduled (vectorised) and a plain row loop."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__: list[str] = []


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
