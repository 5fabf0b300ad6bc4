"""The coefficient-aware V-cycle in sparse numpy form (see :mod:`._dcdm_coeff`).

A hierarchy's stencils and smoothers become DIA matrices, restriction and interpolation
CSR matrices, the coarsest inverse a dense one; :class:`CompiledVCycle` applies the cycle
with them. The smoother's setup-time safeguard estimates ``lambda_max(W A)`` on the same
DIA matrices (:func:`_lambda_max`), which the compiled cycle then reuses.
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import torch

from pdesurrogates.solvers._multigrid import _strides

__all__ = ["CompiledVCycle"]


def _numpy(t: torch.Tensor, dtype) -> np.ndarray:
    """``t`` on the CPU as a numpy array of ``dtype`` (half precision through float32)."""
    t = t.detach().cpu()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    return t.numpy().astype(dtype, copy=False)


def _dia(S: torch.Tensor, taps, offs, dtype) -> sp.dia_matrix:
    """The matrix ``x -> sum_k S_k(i) x(i + o_k)`` of :func:`_taps_apply` in DIA format
    (entries reaching outside the grid dropped, as the zero padding does)."""
    spatial = tuple(S.shape[2:])
    n = int(np.prod(spatial))
    taps = list(taps)
    img = _numpy(S[0, taps], dtype)  # (T, *grid), a copy (advanced indexing)
    strides = _strides(spatial)
    offsets = []
    for row, k in enumerate(taps):
        for ax, o in enumerate(offs[k]):
            if o:
                edge = slice(None, -o) if o < 0 else slice(-o, None)
                img[(row,) + (slice(None),) * ax + (edge,)] = 0
        offsets.append(sum(o * st for o, st in zip(offs[k], strides, strict=True)))
    flat = img.reshape(len(taps), n)
    data = np.zeros((len(taps), n), dtype=dtype)
    for row, f in enumerate(offsets):  # v[i] = A[i, i + f]; DIA keeps it in column i + f
        if f >= 0:
            data[row, f:] = flat[row, : n - f]
        else:
            data[row, : n + f] = flat[row, -f:]
    if offsets == sorted(set(offsets)) and all(abs(f) < n for f in offsets):
        return sp.dia_matrix((data, offsets), shape=(n, n))
    # on a narrow grid two taps can share a flat offset (e.g. (0, 1) and (1, -1) on a
    # 2-cell axis); their entries fill different rows after the edges are zeroed, so
    # summing them is exact. Offsets beyond the matrix hold no entries.
    offsets = np.asarray(offsets)
    inside = np.abs(offsets) < n
    uniq, inv = np.unique(offsets[inside], return_inverse=True)
    merged = np.zeros((len(uniq), n), dtype=dtype)
    np.add.at(merged, inv, data[inside])
    return sp.dia_matrix((merged, uniq), shape=(n, n))


def _transfers(kernels, fine: tuple[int, ...], dtype) -> list[sp.csr_matrix]:
    """Interpolations ``(n_fine, n_coarse)``, one per kernel, on one index structure: fine
    cell ``2 I + a - 1`` takes ``kernel[a]`` of coarse cell ``I`` (the stride-2 transposed
    convolution of ``_prolong``; its transpose with the restriction kernel is the stride-2
    convolution of ``_restrict``). A fine cell has two coarse candidates per axis; those
    outside the grid are stored as explicit zeros, so every row has ``2**dim`` entries."""
    dim = len(fine)
    coarse = tuple((s + 1) // 2 for s in fine)
    axes = []  # per axis: candidates (s, 2), valid, flat kernel index part
    for ax, (s, c, st) in enumerate(zip(fine, coarse, _strides(coarse), strict=True)):
        i = np.arange(s)
        cand = np.stack([(i + 1) // 2 - 1, (i + 1) // 2], axis=1)  # (s, 2) coarse cells
        ok = (cand >= 0) & (cand < c)
        tap = (i[:, None] - 2 * cand + 1).clip(0, 3) * 4 ** (dim - 1 - ax)
        view = [1] * dim
        view[ax] = s
        axes.append([(a[:, p].reshape(view)) for a in (np.where(ok, cand, 0) * st, ok, tap)
                     for p in (0, 1)])  # fmt: skip
    cols, valid, taps = [], [], []
    for pick in itertools.product((0, 1), repeat=dim):  # the 2**dim entries of a row
        col, ok, tap = 0, True, 0
        for a, p in zip(axes, pick, strict=True):
            col, ok, tap = col + a[p], ok & a[2 + p], tap + a[4 + p]
        cols.append(np.broadcast_to(col, fine).reshape(-1))
        valid.append(np.broadcast_to(ok, fine).reshape(-1))
        taps.append(np.broadcast_to(tap, fine).reshape(-1))
    n_f, per = int(np.prod(fine)), 2**dim
    indices = np.stack(cols, 1).reshape(-1)
    valid, taps = np.stack(valid, 1).reshape(-1), np.stack(taps, 1).reshape(-1)
    indptr = np.arange(n_f + 1, dtype=np.int64) * per
    out = []
    for kernel in kernels:
        k = _numpy(kernel, dtype).reshape(-1)
        vals = k[taps] * valid
        out.append(sp.csr_matrix((vals, indices.copy(), indptr), (n_f, int(np.prod(coarse)))))
    return out


def _lambda_max(A: sp.spmatrix, W, x: np.ndarray, steps: int) -> float:
    """Largest Ritz value of ``W A`` after ``steps`` Lanczos steps from
    ``x`` in the A-inner product (``W``: a callable, ``W A`` self-adjoint there; an
    estimate from below of ``lambda_max(W A)``)."""
    Ax = A @ x
    nrm = float(x @ Ax) ** 0.5
    if not nrm > 0:
        return 0.0
    q, Aq, q_prev = x / nrm, Ax / nrm, np.zeros_like(x)
    alpha, beta = [], [0.0]
    for _ in range(steps):
        w = W(Aq)  # W A q
        alpha.append(float(Aq @ w))
        w -= alpha[-1] * q + beta[-1] * q_prev
        Aw = A @ w
        b = max(float(w @ Aw), 0.0) ** 0.5
        if b <= 1e-6 * abs(alpha[-1]):
            break
        beta.append(b)
        q_prev, q, Aq = q, w / b, Aw / b
    return float(scipy.linalg.eigvalsh_tridiagonal(alpha, beta[1 : len(alpha)])[-1])


class CompiledVCycle:
    """The V-cycle of one :class:`StencilHierarchy` as sparse matrices, applied in numpy.

    Made by :meth:`StencilVCycle.compile_cycle`; calling it on a flat float64 residual
    returns the flat float64 direction, computed in the network's dtype (float32 for a
    float32 network, as the torch cycle does), equal to the torch cycle's to round-off.
    """

    def __init__(self, levels: list[dict], nu: int, diag, active, dtype):
        self.levels, self.nu, self.dtype = levels, nu, dtype
        self.inactive = (1 - active) / diag  # r_i / a_ii on identity rows

    def _cycle(self, lvl: int, r: np.ndarray) -> np.ndarray:
        L = self.levels[lvl]
        if "inv" in L:
            return L["inv"] @ r
        A, W = L["A"], L["W"]
        e = W @ r
        steps = self.nu if "P" in L else 4 * self.nu
        for _ in range(steps - 1):
            e += W @ (r - A @ e)
        if "P" not in L:
            return e
        e += L["P"] @ self._cycle(lvl + 1, L["R"] @ (r - A @ e))
        for _ in range(self.nu):
            e += W @ (r - A @ e)
        return e

    def __call__(self, r: np.ndarray) -> np.ndarray:
        r = np.asarray(r).reshape(-1).astype(self.dtype)
        e = self._cycle(0, r)
        e += self.inactive * r
        return e.astype(np.float64)
