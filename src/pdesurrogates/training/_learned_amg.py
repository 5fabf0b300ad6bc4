"""Training of :class:`~pdesurrogates.surrogates.NeuralAMG` on FEM matrices.

The loss measures the convergence of the cycle that the network's weights define on the
finest level (Luz et al. 2020 train their prolongation on a two-grid cycle): the
aggregation and tentative prolongator of each training matrix are fixed (the standard
aggregation of our :class:`~pdesurrogates.solvers.SmoothedAggregation`), and with the
network's ``w``, ``s`` and ``F``

    ``E = S^* (I - P B_c P^T A) S``,  ``S``: a symmetric SOR sweep,
    ``A_c = P^T A P``, ``P = T - diag(w) D^{-1} F T / rho``

with ``B_c = A_c^{-1}`` (``levels=2``, two-grid) or ``B_c`` one SA V-cycle on ``A_c``
with an exact third level (``levels=3``, the default: closer to the hierarchy that is
used); that V-cycle takes the network's own weights (read from ``A_c``: level-shared
weights, ``shared``, the default for a model with ``levels >= 2``) or plain SA's. It is
applied ``cycles`` times to random probe vectors ``z`` (half of them smoothed, so the low
modes the coarse grid must catch are present). The loss is the mean of
``log(||E^k z||_A^2 / ||z||_A^2)``: the energy-norm error reduction per cycle, which
sets the PCG iteration count. Everything is dense float64 on small matrices (a few
hundred unknowns) and differentiable.

Examples
--------
>>> from pdesurrogates.surrogates import NeuralAMG
>>> from pdesurrogates.training import fem_training_matrices, train_neural_amg
>>> mats = fem_training_matrices(2, sizes=(6, 8), seed=0)
>>> hist = train_neural_amg(NeuralAMG(latent=8, rounds=2, seed=0), mats, steps=2,
...                         progress=False)
>>> len(hist["loss"])
2
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from pdesurrogates._progress import ProgressBar, logger
from pdesurrogates.solvers._aggregation import (
    SmoothedAggregation,
    spectral_radius,
    standard_aggregation,
    strength,
    tentative_prolongator,
)
from pdesurrogates.solvers._factor import check_spd_matrix
from pdesurrogates.surrogates._learned_amg import NeuralAMG
from pdesurrogates.surrogates._neural_if import MatrixGraph, matrix_graph

__all__ = [
    "AMGCycleProblem",
    "amg_cycle_loss",
    "amg_cycle_problem",
    "mean_amg_cycle_loss",
    "train_neural_amg",
]


@dataclass
class AMGCycleProblem:
    """Dense float64 pieces of one training matrix's cycle (all weight-independent)."""

    A: torch.Tensor
    lower: torch.Tensor  # strictly lower triangle of A
    d: torch.Tensor
    T: torch.Tensor
    AT: torch.Tensor  # T / rho: the diagonal part of D^{-1} F T / rho
    Tc: torch.Tensor  # T[col] * a_ij / (d_i rho) per edge: the off-diagonal part
    graph: MatrixGraph
    T1: torch.Tensor | None  # level-1 tentative prolongator (None: exact coarse solve)


def amg_cycle_problem(A, *, levels: int = 3) -> AMGCycleProblem:
    """The fixed parts of ``A``'s cycle: aggregates of the first ``levels - 1`` levels.

    The sparsity of the level-1 matrix does not depend on the weights, so its aggregation
    is that of plain smoothed aggregation.
    """
    A = check_spd_matrix(A, "train_neural_amg")
    if levels not in (2, 3):
        raise ValueError(f"levels must be 2 (two-grid) or 3; got {levels!r}")
    T = tentative_prolongator(standard_aggregation(strength(A)))
    rho = spectral_radius(A)
    g = matrix_graph(A, checked=True)
    Ad = torch.from_numpy(A.toarray())
    Td = torch.from_numpy(T.toarray())
    d = torch.diagonal(Ad).clone()
    a = Ad[g.row, g.col]
    T1 = None
    plain = SmoothedAggregation(A, max_levels=3)
    if levels == 3 and len(plain.levels) == 3:
        T1 = torch.from_numpy(tentative_prolongator(plain.levels[1].agg).toarray())
    Tc = Td[g.col] * (a / (d[g.row] * rho))[:, None]
    return AMGCycleProblem(Ad, torch.tril(Ad, diagonal=-1), d, Td, Td / rho, Tc, g, T1)


def _sgs(A: torch.Tensor, M: torch.Tensor):
    """The symmetric SOR sweep ``e -> (I - M^{-T} A)(I - M^{-1} A) e``."""

    def sweep(e):
        e = e - torch.linalg.solve_triangular(M, A @ e, upper=False)
        return e - torch.linalg.solve_triangular(M.T, A @ e, upper=True)

    return sweep


def _coarse_solver(Ac: torch.Tensor, T1: torch.Tensor | None, model: NeuralAMG | None = None):
    """``r -> Ac^{-1} r`` (exact), or one SA V-cycle with an exact level 2: plain, or with
    ``model``'s weights (read from the detached ``Ac``; gradients reach the weights)."""
    Ac = 0.5 * (Ac + Ac.T)
    if T1 is None:
        Lc = torch.linalg.cholesky(Ac)
        return lambda r: torch.cholesky_solve(r, Lc)
    d1 = torch.diagonal(Ac)
    Anp = sp.csr_matrix(Ac.detach().cpu().numpy())
    rho1 = spectral_radius(Anp)  # as the numpy hierarchy computes it (no gradient)
    if model is None:
        P1 = T1 - (4.0 / 3.0 / rho1) * (Ac @ T1) / d1[:, None]
        M = torch.tril(Ac)  # Gauss-Seidel: s = 1
    else:
        g1 = matrix_graph(Anp, checked=True)
        w1, s1, f1 = (t.double() for t in model.level_weights(g1))
        F1 = torch.diag(d1).index_put((g1.row, g1.col), Ac[g1.row, g1.col] * f1)
        P1 = T1 - (w1 / (rho1 * d1))[:, None] * (F1 @ T1)
        M = torch.tril(Ac, diagonal=-1) + torch.diag(d1 / s1)
    L2 = torch.linalg.cholesky(P1.T @ Ac @ P1)

    def solve(r):
        x = torch.linalg.solve_triangular(M, r, upper=False)
        x = x + torch.linalg.solve_triangular(M.T, r - Ac @ x, upper=True)
        x = x + P1 @ torch.cholesky_solve(P1.T @ (r - Ac @ x), L2)
        x = x + torch.linalg.solve_triangular(M, r - Ac @ x, upper=False)
        return x + torch.linalg.solve_triangular(M.T, r - Ac @ x, upper=True)

    return solve


def _cycle_parts(model: NeuralAMG, prob: AMGCycleProblem, shared: bool = False):
    """``(P, coarse solver, smoother factor M)`` of the finest level, differentiable;
    ``shared``: level 1 takes the network's weights too."""
    w, s, f = (t.double() for t in model.level_weights(prob.graph))
    A = prob.A
    G = prob.AT + torch.zeros_like(prob.T).index_add_(0, prob.graph.row, f[:, None] * prob.Tc)
    P = prob.T - w[:, None] * G
    coarse = _coarse_solver(P.T @ A @ P, prob.T1, model if shared else None)
    return P, coarse, prob.lower + torch.diag(prob.d / s)


def amg_cycle_loss(
    model: NeuralAMG,
    prob: AMGCycleProblem,
    Z: torch.Tensor,
    cycles: int,
    *,
    pcg: bool = True,
    shared: bool = False,
):
    """Mean ``log`` relative energy-norm error left on the probes ``Z``.

    ``pcg=True``: after ``cycles`` steps of CG preconditioned by the cycle on ``A x = A z``
    (the quantity whose decay sets the iteration count); ``False``: after ``cycles``
    stationary cycles ``e <- E e``. The finest level takes the network's weights; the
    coarse problem is solved exactly (two-grid) or, with ``prob.T1``, by a plain SA
    V-cycle as in the real hierarchy (``shared=True``: with the network's weights on that
    level too, as a model with ``levels >= 2`` uses them).
    """
    A = prob.A
    P, coarse, M = _cycle_parts(model, prob, shared)

    def smooth(x, r):
        x = x + torch.linalg.solve_triangular(M, r - A @ x, upper=False)
        return x + torch.linalg.solve_triangular(M.T, r - A @ x, upper=True)

    def vcycle(r):
        x = smooth(torch.zeros_like(r), r)
        x = x + P @ coarse(P.T @ (r - A @ x))
        return smooth(x, r)

    if pcg:
        x = torch.zeros_like(Z)
        r = A @ Z
        z = vcycle(r)
        p, rz = z, (r * z).sum(0)
        for _ in range(cycles):
            Ap = A @ p
            alpha = rz / (p * Ap).sum(0)
            x, r = x + alpha * p, r - alpha * Ap
            z = vcycle(r)
            rz_new = (r * z).sum(0)
            p, rz = z + (rz_new / rz) * p, rz_new
        e = x - Z
    else:
        e = Z
        for _ in range(cycles):
            e = e - vcycle(A @ e)
    ratio = (e * (A @ e)).sum(0) / (Z * (A @ Z)).sum(0)
    return torch.log(ratio + 1e-30).mean()


def _probes(prob: AMGCycleProblem, n_probes: int, gen: torch.Generator) -> torch.Tensor:
    """Random vectors, half of them smoothed by damped Jacobi (low modes dominate)."""
    Z = torch.randn(prob.A.shape[0], n_probes, generator=gen, dtype=torch.float64)
    half = n_probes // 2
    for _ in range(10):
        Z[:, :half] = Z[:, :half] - 0.6 * (prob.A @ Z[:, :half]) / prob.d[:, None]
    return Z / Z.norm(dim=0)


def train_neural_amg(
    model: NeuralAMG,
    matrices: Sequence,
    *,
    steps: int = 200,
    lr: float = 3e-3,
    batch: int = 4,
    cycles: int = 4,
    levels: int = 3,
    pcg: bool = True,
    n_probes: int = 8,
    seed: int = 0,
    shared: bool | None = None,
    progress: bool = True,
) -> dict:
    """Minimise :func:`amg_cycle_loss` over ``matrices`` (Adam, ``batch`` a step).

    Training runs in float64; the model is returned in its original dtype and eval mode.
    ``matrices``: small SPD sparse matrices (a few hundred unknowns each; dense algebra).
    ``shared=True`` trains the weights of levels 0 and 1 at once (level-shared weights);
    default: when the model uses its weights on more than one level (``levels >= 2``).
    Returns ``{"loss": [...]}`` (per step, batch means).
    """
    if not matrices:
        raise ValueError("matrices is empty: pass at least one SPD matrix to train on")
    for name, val in (("steps", steps), ("batch", batch), ("cycles", cycles)):
        if not isinstance(val, int) or val < (0 if name == "steps" else 1):
            raise ValueError(f"{name} must be a non-negative integer (>= 1 for batch, cycles)")
    probs = [amg_cycle_problem(A, levels=levels) for A in matrices]
    shared = model.levels >= 2 if shared is None else bool(shared)
    dtype = next(model.parameters()).dtype
    model.double().train()
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    hist: dict[str, list[float]] = {"loss": []}
    with ProgressBar(enabled=progress) as bar:
        task = bar.add_task("neural AMG: cycle loss", total=steps)
        for _ in range(steps):
            idx = torch.randint(len(probs), (min(batch, len(probs)),), generator=gen)
            opt.zero_grad()
            total = torch.zeros((), dtype=torch.float64)
            for i in idx.tolist():
                Z = _probes(probs[i], n_probes, gen)
                total = total + amg_cycle_loss(model, probs[i], Z, cycles, pcg=pcg, shared=shared)
            loss = total / len(idx)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            hist["loss"].append(float(loss.detach()))
            bar.advance(task, info=f"loss {hist['loss'][-1]:.4g}")
    if steps:
        logger.info("neural AMG cycle loss: %.4g after %d steps", hist["loss"][-1], steps)
    model.to(dtype).eval()
    return hist


def mean_amg_cycle_loss(
    model: NeuralAMG, matrices: Sequence, *, cycles: int = 4, pcg: bool = True, seed=0
):
    """:func:`amg_cycle_loss` averaged over ``matrices`` (no gradient): for validation."""
    gen = torch.Generator().manual_seed(seed)
    dtype = next(model.parameters()).dtype
    model.double()
    try:
        with torch.no_grad():
            vals = [
                float(amg_cycle_loss(model, p, _probes(p, 8, gen), cycles, pcg=pcg))
                for p in (amg_cycle_problem(A) for A in matrices)
            ]
    finally:
        model.to(dtype)
    return float(np.mean(vals))
