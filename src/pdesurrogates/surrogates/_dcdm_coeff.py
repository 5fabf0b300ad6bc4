"""The coefficient-aware V-cycle of :class:`ConjugateDirectionNet` (``coefficients=True``).

The network sees the matrix: it takes ``A``'s stencil on its grid as images
(:func:`pdesurrogates.solvers.grid_stencil`, ``3**dim`` channels, the 5-/7-point stencils
filling the axis channels) and builds, once per matrix,

* a hierarchy of stencils: level ``l + 1`` is the Galerkin product ``P^T A_l P / 2`` with
  ``P`` the piecewise-constant interpolation from ``2**dim`` blocks (for the Poisson
  stencil this is the rediscretised coarse operator; the factor 1/2 is the classical
  over-correction of aggregation multigrid); and
* on every level a smoother ``W`` on A's pattern, from a small CNN ``g`` of the
  *row-normalised* stencil (off-diagonals divided by the diagonal), of
  ``log(a_ii / mean a_ii)`` and of the row's diagonal excess; ``g`` starts at zero. Its
  centre channel sets the l1-Jacobi weight ``D = 2 f(x) / sum_j |a_ij|`` with
  ``f = sigmoid(w + g_c)`` in (0, 1). With ``smoother="spd"`` (the default)
  ``W = D + D^1/2 K^T K D^1/2``, ``K`` a per-cell kernel of the channels on A's own
  pattern within ``smoother_reach / 2`` cells (``smoother_reach=2``: 3x3, its centre the
  channel ``g_c`` of ``f``, so ``W`` has taps on the pattern of ``A^2``, 5x5 in 2D;
  ``smoother_reach=1``: the centre alone, a diagonal ``W = D (1 + g_c^2)``): symmetric
  positive definite for any weights. At setup without gradients (inference, validation)
  the learned part is scaled so that the Lanczos estimate of ``lambda_max(W A)`` is at
  most :data:`SPD_CAP` < 2 (or removed where ``D`` alone reaches it; ``lambda(D A) < 2``
  always), so every smoothing step contracts the error in the A-norm, also on fields
  unlike the training ones. Training's loss uses the unscaled ``W`` (with the scale in
  the loss, measured, the network learned far less). ``smoother="free"`` is the
  earlier per-cell kernel (centre ``D``, the other taps ``D tanh(g_k) / 2``): not
  symmetric, measured to amplify the error on rough high-contrast fields it never saw.
  Taps beyond ``A``'s own pattern start at zero and are left out of the compiled cycle
  while they are zero everywhere, so the untrained cycle and its cost are those of
  ``smoother_reach=1``, for both smoothers.

The residual path is linear in ``r``: smoothing ``e += W * (r - A_l e)``, learned
stride-2 restriction and transposed-convolution prolongation (initialised to full
weighting / bilinear; the interpolation reads active coarse cells only, so walls and
obstacles act as Neumann boundaries), recursion to a coarsest grid of at most 256 cells,
solved exactly. Untrained, it is a geometric multigrid V-cycle with aggregation coarse
operators and l1-Jacobi smoothing.
The matrix is divided by its mean diagonal first, so scaling ``A`` changes nothing.

Since the residual path is linear, :meth:`StencilVCycle.compile_cycle` turns a hierarchy
into sparse matrices (the stencils and smoothers as DIA matrices, restriction and
interpolation as CSR, the coarsest inverse dense; ``_dcdm_sparse``): :class:`CompiledVCycle`
applies the same cycle in numpy, in the network's dtype, without torch in the loop; this
is what :func:`~pdesurrogates.solvers.dcdm` runs every iteration. The smoother's
safeguard estimates on the same DIA matrices, which the compiled cycle reuses.

Rows without off-diagonal entries (the identity rows of solid cells) are inactive: the
cycle returns ``r_i / a_ii`` there and they do not enter the coarse operators.
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from pdesurrogates.errors import SolverError
from pdesurrogates.surrogates._dcdm_sparse import (
    CompiledVCycle,
    _dia,
    _lambda_max,
    _numpy,
    _transfers,
)

__all__ = ["CompiledVCycle", "StencilHierarchy", "StencilVCycle"]

SMOOTHERS = ("spd", "free")

_EXACT_COARSE = 256  # solve the coarsest level exactly up to this many cells
SPD_LANCZOS_STEPS = 12  # Lanczos steps of the spd smoother's setup-time safeguard ...
SPD_CAP = 1.7  # ... which keeps the estimated lambda_max(W A) at most this (< 2),


def _bilinear_kernel(dim: int) -> torch.Tensor:
    w1 = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 4.0
    k = w1
    for _ in range(dim - 1):
        k = k[..., None] * w1
    return k


def _offsets(dim: int, reach: int = 1) -> list[tuple[int, ...]]:
    return list(itertools.product(range(-reach, reach + 1), repeat=dim))


def _taps_apply(x: torch.Tensor, S: torch.Tensor, taps, offs) -> torch.Tensor:
    """``sum_k S_k(i) x(i + o_k)`` with zero outside the grid (``x``: ``(B, 1, *grid)``)."""
    dim = x.dim() - 2
    w = max((abs(o) for k in taps for o in offs[k]), default=0)
    xp = F.pad(x, [w] * (2 * dim)) if w else x
    spatial = x.shape[2:]
    out = None
    inplace = not torch.is_grad_enabled()
    for k in taps:
        sl = tuple(slice(w + o, w + o + n) for o, n in zip(offs[k], spatial, strict=True))
        if out is None:
            out = S[:, k : k + 1] * xp[(..., *sl)]
        elif inplace:
            out.addcmul_(S[:, k : k + 1], xp[(..., *sl)])
        else:
            out = torch.addcmul(out, S[:, k : k + 1], xp[(..., *sl)])
    return out


def _coarsen(S: torch.Tensor, offs) -> torch.Tensor:
    """``P^T A P / 2`` of a stencil ``(1, T, *grid)`` with ``2**dim``-cell aggregates."""
    dim = S.dim() - 2
    pad = []
    for s in reversed(S.shape[2:]):
        pad += [0, s % 2]
    if any(pad):
        S = F.pad(S, pad)
    index = {o: k for k, o in enumerate(offs)}
    coarse = [None] * len(offs)
    for k, o in enumerate(offs):
        for par in itertools.product((0, 1), repeat=dim):
            sub = S[(slice(None), slice(k, k + 1), *(slice(p, None, 2) for p in par))]
            c = index[tuple((p + oo) // 2 for p, oo in zip(par, o, strict=True))]
            coarse[c] = sub if coarse[c] is None else coarse[c] + sub
    return 0.5 * torch.cat(coarse, dim=1)


def _masked_inverse(L: dict, offs) -> torch.Tensor:
    """The inverse of a coarsest level's matrix on its active cells (zero elsewhere), in
    float64."""
    M = _dense(L["S"], offs).double()
    act = L["active"].reshape(-1).double()
    M = M + torch.diag(1.0 - act)
    return torch.linalg.inv(M) * act[:, None] * act[None, :]


def _nonzero_taps(W: torch.Tensor) -> list[bool]:
    """Per channel of ``W`` (batch 1): is it nonzero (or NaN) anywhere?"""
    flat = W[0].reshape(W.shape[1], -1)
    return ((flat.amax(dim=1) != 0) | (flat.amin(dim=1) != 0)).tolist()


def _dense(S: torch.Tensor, offs) -> torch.Tensor:
    """The matrix of a stencil ``(1, T, *grid)``, rows and columns in C order."""
    spatial = S.shape[2:]
    n = 1
    for s in spatial:
        n *= s
    eye = torch.eye(n, dtype=S.dtype, device=S.device).view(n, 1, *spatial)
    taps = range(len(offs))
    return _taps_apply(eye, S, taps, offs).reshape(n, n).T


class StencilHierarchy:
    """Per-matrix setup of :class:`StencilVCycle`: stencils and smoothers on every level."""

    def __init__(self, levels: list[dict], diag: torch.Tensor, active: torch.Tensor):
        self.levels = levels
        self.diag = diag
        self.active = active

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.levels[0]["S"].shape[2:])


class StencilVCycle(nn.Module):
    """Learned V-cycle driven by the stencil of ``A`` (see the module docstring)."""

    def __init__(
        self,
        dim: int,
        *,
        hidden: int = 8,
        smoothing_steps: int = 2,
        coarse_size: int = 2,
        omega_fraction: float = 0.8,
        smoother_reach: int = 1,
        smoother: str = "spd",
    ):
        super().__init__()
        if smoother_reach not in (1, 2):
            raise ValueError(f"smoother_reach must be 1 or 2; got {smoother_reach!r}")
        if smoother not in SMOOTHERS:
            raise ValueError(f"smoother must be one of {SMOOTHERS}; got {smoother!r}")
        self.smoother = smoother
        self.dim = dim
        self.smoother_reach = smoother_reach
        # smoother taps: offsets up to smoother_reach cells away along every axis
        self.woffs = _offsets(dim, smoother_reach)
        self.wcentre = (len(self.woffs) - 1) // 2
        self.smoothing_steps = smoothing_steps
        self.coarse_size = coarse_size
        self.offs = _offsets(dim)
        self.centre = (len(self.offs) - 1) // 2
        n_taps = len(self.offs)
        conv = nn.Conv2d if dim == 2 else nn.Conv3d
        self.gen = nn.Sequential(
            conv(n_taps + 1, hidden, 1),
            nn.ReLU(),
            conv(hidden, hidden, 3, padding=1),
            nn.ReLU(),
            conv(hidden, len(self.woffs), 1),
        )
        nn.init.zeros_(self.gen[-1].weight)
        nn.init.zeros_(self.gen[-1].bias)
        f = torch.tensor(float(omega_fraction))
        self.omega_logit = nn.Parameter(torch.log(f / (1 - f)))
        bil = _bilinear_kernel(dim)[None, None]
        self.restrict = nn.Parameter(bil * 2.0 ** (2 - dim))
        self.prolong = nn.Parameter(bil.clone())
        self.level_scale = nn.Parameter(torch.ones(()))

    # -- setup (once per matrix) -------------------------------------------------------
    def _features(self, S: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        c = self.centre
        d = S[:, c : c + 1]
        safe = torch.where(active > 0, d, torch.ones_like(d))
        off = torch.cat([S[:, :c], S[:, c + 1 :]], dim=1) / safe * active
        mean = (d * active).sum() / active.sum().clamp_min(1)
        logd = torch.log((safe / mean).clamp_min(1e-30)).clamp(-12, 12) * active
        excess = (d + off.sum(dim=1, keepdim=True) * safe) / safe * active  # row sum / diag
        return torch.cat([off, logd, excess], dim=1)

    def _level(self, S: torch.Tensor, smooth: bool = True) -> dict:
        """A level of the hierarchy: its stencil, active cells and (``smooth``) smoother."""
        c = self.centre
        absrow = S.abs().sum(dim=1, keepdim=True)
        d = S[:, c : c + 1]
        active = ((absrow - d.abs() > 0) & (d > 0)).to(S.dtype)
        S = S * active  # inactive rows leave the hierarchy (their columns are zero: SPD)
        taps = [k for k in range(len(self.offs)) if bool(S[:, k].abs().sum() > 0)]
        if not smooth:
            return {"S": S, "active": active, "taps": taps}
        l1 = torch.where(active > 0, S.abs().sum(dim=1, keepdim=True), torch.ones_like(d))
        g = self.gen(self._features(S, active))
        # bounded: the centre weight stays a fraction in (0, 1) of the l1-Jacobi limit
        # 2 / sum_j |a_ij| (unbounded, it was learned above 1 and diverged on unseen
        # high-contrast cells)
        wc = self.wcentre
        frac = torch.sigmoid(self.omega_logit + g[:, wc : wc + 1])
        pattern = pattern0 = {self.offs[k] for k in taps}
        if self.smoother_reach > 1:  # the pattern of A^2
            pattern = {
                tuple(a + b for a, b in zip(p, q, strict=True)) for p in pattern for q in pattern
            }
        wtaps = [k for k, o in enumerate(self.woffs) if o in pattern]
        level = {"S": S, "active": active, "taps": taps, "wtaps": wtaps}
        if self.smoother == "spd":
            W = self._spd_smoother(S, g, 2 * frac / l1, active, pattern0, taps)
            if isinstance(W, tuple):  # (D, learned part): W once _safeguard has checked it
                level["parts"] = W
            else:
                level["W"] = W
            return level
        # "free": the other taps within +-1/2 of the centre, cell by cell (not symmetric,
        # measured to amplify the error on unseen rough high-contrast fields)
        if not torch.is_grad_enabled():  # the same numbers, on the smoother's taps only
            scale = (2 * frac / l1) * active
            W = S.new_zeros(S.shape[0], len(self.woffs), *S.shape[2:])
            off = [k for k in wtaps if k != wc]
            W[:, off] = (0.5 * torch.tanh(g[:, off])) * scale
            if wc in wtaps:
                W[:, wc : wc + 1] = scale
            level["W"] = W
            return level
        mix = 0.5 * torch.tanh(g)
        mix = torch.cat([mix[:, :wc], torch.ones_like(frac), mix[:, wc + 1 :]], dim=1)
        on = torch.zeros(1, len(self.woffs), *([1] * self.dim), dtype=S.dtype, device=S.device)
        on[:, wtaps] = 1.0  # the smoother lives on A's own stencil pattern (or A^2's)
        level["W"] = (2 * frac / l1) * (mix * on) * active
        return level

    def _shift(self, x: torch.Tensor, o) -> torch.Tensor:
        """``x(i + o)``, zero outside the grid."""
        w = self.smoother_reach
        xp = F.pad(x, [w] * (2 * self.dim))
        sl = tuple(slice(w + oo, w + oo + n) for oo, n in zip(o, x.shape[2:], strict=True))
        return xp[(..., *sl)]

    def _spd_smoother(self, S, g, jacobi, active, own, taps) -> torch.Tensor:
        """The smoother ``W = D + D^1/2 K^T K D^1/2`` of ``smoother="spd"``.

        ``D`` is the l1-Jacobi diagonal ``jacobi`` and ``K`` a per-cell kernel on ``A``'s
        own pattern within ``smoother_reach / 2`` cells (``k_a(m) = g_a(m)``, zero
        untrained), so ``W`` is symmetric positive definite for every weight and can
        boost smooth error far beyond Jacobi (a line-smoother-like gain). At setup
        (without gradients) the learned part is scaled so that ``lambda_max(W A)``, estimated
        by Lanczos, is at most :data:`SPD_CAP` < 2 (``D`` alone has
        ``lambda(D A) <= 2 f < 2`` by Gershgorin): with ``W`` SPD, every smoothing step then
        contracts the error in the A-norm. Untrained: ``W = D`` bit for bit, no check.
        """
        wc = self.wcentre
        index = {o: k for k, o in enumerate(self.woffs)}
        kt = [a for a in own if 2 * max(abs(v) for v in a) <= self.smoother_reach]
        k = {a: g[:, index[a] : index[a] + 1] * active * self._shift(active, a) for a in kt}
        L = {}
        for a in kt:
            for b in kt:  # (K^T K)_{i, i + b - a} += k_a(i - a) k_b(i - a)
                o = tuple(y - x for x, y in zip(a, b, strict=True))
                term = self._shift(k[a] * k[b], tuple(-x for x in a))
                L[o] = term if o not in L else L[o] + term
        D = jacobi * active
        chans = [torch.zeros_like(D)] * len(self.woffs)
        chans[wc] = D
        learned = [torch.zeros_like(D)] * len(self.woffs)
        for o, v in L.items():
            if o == self.woffs[wc]:
                learned[wc] = D * v
            else:
                dd = torch.clamp_min(D * self._shift(D, o), 1e-30)
                learned[index[o]] = torch.sqrt(dd) * v
        Wl = torch.cat(learned, dim=1)
        if torch.is_grad_enabled():  # training: unscaled (with the scale, it learned less)
            return torch.cat(chans, dim=1) + Wl
        if not any(_nonzero_taps(Wl)):
            return torch.cat(chans, dim=1)
        return D, Wl  # scaled by _safeguard

    def _safeguard(self, L: dict) -> torch.Tensor:
        """The spd smoother ``D + t (W - D)`` of a smoothing level (see _spd_smoother).

        Its estimates run on the level's sparse matrices, which are kept (``L["sparse"]``)
        for :meth:`compile_cycle`: the safeguard costs a few sparse products.
        """
        D, Wl = L.pop("parts")
        dtype = np.float64 if Wl.dtype == torch.float64 else np.float32
        A = _dia(L["S"], L["taps"], self.offs, dtype)
        Wl_m = _dia(Wl, self._compiled_wtaps(L, Wl), self.woffs, dtype)
        d = _numpy(D, dtype).reshape(-1)
        if not (np.isfinite(Wl_m.data).all() and np.isfinite(d).all()):
            half = Wl.dtype in (torch.float16, torch.bfloat16)
            raise SolverError(
                f"the learned smoother is not finite on this matrix in {Wl.dtype}: "
                + (
                    "half precision overflows on high-contrast coefficients; use the network "
                    "in float32 or float64"
                    if half
                    else "check that the matrix (its stencil) is finite"
                )
            )
        # the safeguard: lambda_max(W A) by Lanczos steps in the A-inner product (W A is
        # self-adjoint there). lambda_max(W_t A) with W_t = D + t (W - D) is convex in t
        # (a maximum of Rayleigh quotients linear in t), so it stays below the chord
        # (1 - t) lambda_max(D A) + t lambda_max(W A): t is chosen where the chord of the
        # two estimates meets SPD_CAP.
        gen = torch.Generator().manual_seed(0)  # a fixed start: deterministic
        x = torch.rand(A.shape[0], generator=gen, dtype=torch.float64).numpy().astype(dtype)
        x *= _numpy(L["active"], dtype).reshape(-1)
        t = 1.0
        lam1 = _lambda_max(A, lambda y: d * y + Wl_m @ y, x, SPD_LANCZOS_STEPS)
        if lam1 > SPD_CAP:
            lam0 = _lambda_max(A, lambda y: d * y, x, SPD_LANCZOS_STEPS)
            t = 0.0 if lam0 >= SPD_CAP else (SPD_CAP - lam0) / (lam1 - lam0)
        if t == 0:  # the learned part removed: the compiled smoother keeps A's taps only
            keep = np.isin(Wl_m.offsets, A.offsets)
            Wl_m = sp.dia_matrix((Wl_m.data[keep], Wl_m.offsets[keep]), shape=Wl_m.shape)
        Wl_m.data *= dtype(t)
        Wl_m.data[np.flatnonzero(Wl_m.offsets == 0)[0]] += d  # the centre: always a tap
        L["sparse"] = {"A": A, "W": Wl_m}
        W = Wl.mul_(t) if t < 1 else Wl  # in place: D + t (W - D)
        W[:, self.wcentre : self.wcentre + 1] += D
        return W

    def _compiled_wtaps(self, L: dict, W: torch.Tensor) -> list[int]:
        """The smoother taps of the compiled cycle: ``A``'s own pattern, and the wider taps
        that are not zero everywhere (all of them untrained), so the untrained wide smoother
        costs what the 3x3 one does."""
        own = {self.offs[k] for k in L["taps"]}
        nonzero = _nonzero_taps(W)
        return [k for k in L["wtaps"] if self.woffs[k] in own or nonzero[k]]

    def setup(self, stencil: torch.Tensor) -> StencilHierarchy:
        """The hierarchy of a stencil ``(1, 3**dim, *grid)`` (float64 is kept to the end).

        The stencil is divided by its mean active diagonal in its own dtype, then cast to
        the network's.
        """
        dtype = self.omega_logit.dtype
        c = self.centre
        d = stencil[:, c : c + 1]
        off_abs = stencil.abs().sum(dim=1, keepdim=True) - d.abs()
        act = (off_abs > 0) & (d > 0)
        mean = d[act].mean() if bool(act.any()) else d.abs().max().clamp_min(1e-300)
        S = (stencil / mean).to(dtype)
        diag = torch.where(d > 0, d / mean, torch.ones_like(d)).to(dtype)
        levels = []
        while True:  # a finest level wider than coarse_size smooths even when small
            cells = S[0, 0].numel()
            last = min(S.shape[2:]) <= self.coarse_size or (bool(levels) and cells <= _EXACT_COARSE)
            levels.append(self._level(S, smooth=not (last and cells <= _EXACT_COARSE)))
            if last:
                break
            with torch.no_grad():
                S = _coarsen(S * levels[-1]["active"], self.offs)
        if "W" not in levels[-1] and "parts" not in levels[-1]:  # solved exactly
            with torch.no_grad():
                levels[-1]["inv"] = _masked_inverse(levels[-1], self.offs).to(dtype)
        for L in levels:
            if "parts" in L:
                L["W"] = self._safeguard(L)
        return StencilHierarchy(levels, diag, levels[0]["active"])

    def prepare(self, stencil) -> StencilHierarchy:
        """:meth:`setup` of a stencil array/tensor, checked; a hierarchy passes through."""
        if isinstance(stencil, StencilHierarchy):
            return stencil
        t = torch.as_tensor(stencil)
        if t.dim() == self.dim + 1:
            t = t[None]
        n_taps = len(self.offs)
        if t.dim() != self.dim + 2 or t.shape[0] != 1 or t.shape[1] != n_taps:
            raise ValueError(
                f"stencil must have shape (1, {n_taps}, {', '.join('n' * self.dim)}) "
                f"(grid_stencil of A on a {self.dim}D grid); got {tuple(t.shape)}"
            )
        return self.setup(t.to(self.omega_logit.device))

    @torch.no_grad()
    def compile_cycle(self, h: StencilHierarchy) -> CompiledVCycle:
        """The cycle of ``h`` as sparse numpy matrices (see :class:`CompiledVCycle`)."""
        dtype = np.dtype(str(self.omega_logit.dtype).removeprefix("torch."))
        out = []
        for lvl, L in enumerate(h.levels):
            C = {}
            if "inv" in L:
                C["inv"] = L["inv"].cpu().numpy().astype(dtype)
                out.append(C)
                break
            kept = L.get("sparse", {})  # the safeguard's matrices, when in this dtype
            if kept and kept["A"].dtype == dtype:
                C["A"], C["W"] = kept["A"], kept["W"]
            else:
                C["A"] = _dia(L["S"], L["taps"], self.offs, dtype)
                C["W"] = _dia(L["W"], self._compiled_wtaps(L, L["W"]), self.woffs, dtype)
            if lvl + 1 < len(h.levels):
                spatial = tuple(L["S"].shape[2:])
                nxt = h.levels[lvl + 1]["active"]
                weight = self._prolong(nxt, spatial).clamp_min(1e-3)
                scale = (self.level_scale * L["active"] / weight).reshape(-1)
                P, R = _transfers((self.prolong, self.restrict), spatial, np.float64)
                P.data *= np.repeat(scale.double().cpu().numpy(), 2**self.dim)
                P.data *= nxt.reshape(-1).double().cpu().numpy()[P.indices]
                C["P"] = P.astype(dtype)
                C["R"] = R.astype(dtype).T  # CSC: a scatter product
            out.append(C)
        flat = [t.reshape(-1).cpu().numpy().astype(dtype) for t in (h.diag, h.active)]
        return CompiledVCycle(out, self.smoothing_steps, flat[0], flat[1], dtype)

    # -- application (every iteration) ----------------------------------------------------
    def _smooth(self, L, r, e):
        res = r if e is None else r - _taps_apply(e, L["S"], L["taps"], self.offs)
        de = _taps_apply(res, L["W"], L["wtaps"], self.woffs)
        return de if e is None else e + de

    def _restrict(self, res):
        pad = []
        for s in reversed(res.shape[2:]):
            pad += [0, s % 2]
        if any(pad):
            res = F.pad(res, pad)
        fn = F.conv2d if self.dim == 2 else F.conv3d
        return fn(F.pad(res, [1] * (2 * self.dim)), self.restrict, stride=2)

    def _prolong(self, ec, spatial):
        fn = F.conv_transpose2d if self.dim == 2 else F.conv_transpose3d
        full = fn(F.pad(ec, [1] * (2 * self.dim)), self.prolong, stride=2)
        return full[(..., *(slice(3, 3 + s) for s in spatial))]

    def _vcycle(self, h: StencilHierarchy, r: torch.Tensor, lvl: int) -> torch.Tensor:
        L = h.levels[lvl]
        if lvl == len(h.levels) - 1:
            if "inv" in L:
                flat = r.reshape(r.shape[0], -1) @ L["inv"].T
                return flat.reshape(r.shape)
            e = None
            for _ in range(4 * self.smoothing_steps):
                e = self._smooth(L, r, e)
            return e
        e = None
        for _ in range(self.smoothing_steps):
            e = self._smooth(L, r, e)
        res = r - _taps_apply(e, L["S"], L["taps"], self.offs)
        ec = self._vcycle(h, self._restrict(res), lvl + 1)
        nxt = h.levels[lvl + 1]
        if "weight" not in L:  # interpolate from active cells only (measured: better on
            # smoke domains, 15 against 27 iterations at 256^2, slightly worse on boxes)
            L["weight"] = self._prolong(nxt["active"], r.shape[2:]).clamp_min(1e-3)
        corr = self._prolong(ec * nxt["active"], r.shape[2:]) / L["weight"] * L["active"]
        e = e + self.level_scale * corr
        for _ in range(self.smoothing_steps):
            e = self._smooth(L, r, e)
        return e

    def forward(self, r: torch.Tensor, h: StencilHierarchy) -> torch.Tensor:
        if tuple(r.shape[2:]) != h.shape:
            raise ValueError(f"residual grid {tuple(r.shape[2:])} != stencil grid {h.shape}")
        e = self._vcycle(h, r, 0)
        return e + (1 - h.active) * r / h.diag
