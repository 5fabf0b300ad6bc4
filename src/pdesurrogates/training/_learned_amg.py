"""Training of :class:`~pdesurrogates.surrogates.NeuralAMG` on FEM matrices.

The loss measures the convergence of the two-grid cycle that the network's weights
define on the finest level (as Luz et al. 2020 train their prolongation): the aggregation
and tentative prolongator of each training matrix are fixed (pyamg-style standard
aggregation of our :class:`~pdesurrogates.solvers.SmoothedAggregation`), and with the
network's ``w``, ``s`` and ``F``

    ``E = S^* (I - P A_c^{-1} P^T A) S``,  ``S``: a symmetric SOR sweep,
    ``A_c = P^T A P``, ``P = T - diag(w) D^{-1} F T / rho``

is applied ``cycles`` times to random probe vectors ``z`` (half of them smoothed, so the
low modes the coarse grid must catch are present). The loss is the mean of
``log(||E^k z||_A^2 / ||z||_A^2)``: the energy-norm error reduction per cycle, which sets
the PCG iteration count. Everything is dense float64 on small matrices (a few hundred
unknowns) and differentiable.

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
import torch

from pdesurrogates._progress import ProgressBar, logger
from pdesurrogates.solvers._aggregation import (
    spectral_radius,
    standard_aggregation,
    strength,
    tentative_prolongator,
)
from pdesurrogates.solvers._factor import check_spd_matrix
from pdesurrogates.surrogates._learned_amg import NeuralAMG
from pdesurrogates.surrogates._neural_if import MatrixGraph, matrix_graph

__all__ = ["TwoGridProblem", "train_neural_amg", "two_grid_loss", "two_grid_problem"]


@dataclass
class TwoGridProblem:
    """Dense float64 pieces of one training matrix's two-grid cycle."""

    A: torch.Tensor
    lower: torch.Tensor  # strictly lower triangle of A
    d: torch.Tensor
    T: torch.Tensor
    AT: torch.Tensor  # D^{-1} T / rho: the diagonal part of F T, row-scaled
    Tc: torch.Tensor  # T[col] * a_ij / (d_i rho) per edge: the off-diagonal part
    graph: MatrixGraph


def two_grid_problem(A) -> TwoGridProblem:
    """The fixed (weight-independent) parts of ``A``'s two-grid cycle."""
    A = check_spd_matrix(A, "train_neural_amg")
    T = tentative_prolongator(standard_aggregation(strength(A)))
    rho = spectral_radius(A)
    g = matrix_graph(A, checked=True)
    Ad = torch.from_numpy(A.toarray())
    Td = torch.from_numpy(T.toarray())
    d = torch.diagonal(Ad).clone()
    row, col = g.row, g.col
    a = Ad[row, col]
    return TwoGridProblem(
        Ad,
        torch.tril(Ad, diagonal=-1),
        d,
        Td,
        Td / rho,
        Td[col] * (a / (d[row] * rho))[:, None],
        g,
    )


def two_grid_loss(model: NeuralAMG, prob: TwoGridProblem, Z: torch.Tensor, cycles: int):
    """Mean ``log`` energy-norm error reduction of ``cycles`` two-grid cycles on ``Z``."""
    w, s, f = (t.double() for t in model.level_weights(prob.graph))
    A = prob.A
    G = prob.AT + torch.zeros_like(prob.T).index_add_(0, prob.graph.row, f[:, None] * prob.Tc)
    P = prob.T - w[:, None] * G
    Ac = P.T @ A @ P
    Lc = torch.linalg.cholesky(0.5 * (Ac + Ac.T))
    M = prob.lower + torch.diag(prob.d / s)

    def sweep(e):
        e = e - torch.linalg.solve_triangular(M, A @ e, upper=False)
        return e - torch.linalg.solve_triangular(M.T, A @ e, upper=True)

    e = Z
    for _ in range(cycles):
        e = sweep(e)
        e = e - P @ torch.cholesky_solve(P.T @ (A @ e), Lc)
        e = sweep(e)
    ratio = (e * (A @ e)).sum(0) / (Z * (A @ Z)).sum(0)
    return torch.log(ratio + 1e-30).mean()


def _probes(prob: TwoGridProblem, n_probes: int, gen: torch.Generator) -> torch.Tensor:
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
    cycles: int = 2,
    n_probes: int = 8,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Minimise the two-grid loss over ``matrices`` (Adam, ``batch`` matrices a step).

    Training runs in float64; the model is returned in its original dtype and eval mode.
    ``matrices``: small SPD sparse matrices (a few hundred unknowns each; dense algebra).
    Returns ``{"loss": [...]}`` (per step, batch means).
    """
    if not matrices:
        raise ValueError("matrices is empty: pass at least one SPD matrix to train on")
    for name, val in (("steps", steps), ("batch", batch), ("cycles", cycles)):
        if not isinstance(val, int) or val < (0 if name == "steps" else 1):
            raise ValueError(f"{name} must be a non-negative integer (>= 1 for batch, cycles)")
    probs = [two_grid_problem(A) for A in matrices]
    dtype = next(model.parameters()).dtype
    model.double().train()
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    hist: dict[str, list[float]] = {"loss": []}
    with ProgressBar(enabled=progress) as bar:
        task = bar.add_task("neural AMG: two-grid loss", total=steps)
        for _ in range(steps):
            idx = torch.randint(len(probs), (min(batch, len(probs)),), generator=gen)
            opt.zero_grad()
            total = torch.zeros((), dtype=torch.float64)
            for i in idx.tolist():
                Z = _probes(probs[i], n_probes, gen)
                total = total + two_grid_loss(model, probs[i], Z, cycles)
            loss = total / len(idx)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            hist["loss"].append(float(loss.detach()))
            bar.advance(task, info=f"loss {hist['loss'][-1]:.4g}")
    if steps:
        logger.info("neural AMG two-grid loss: %.4g after %d steps", hist["loss"][-1], steps)
    model.to(dtype).eval()
    return hist


def mean_two_grid_loss(model: NeuralAMG, matrices: Sequence, *, cycles: int = 2, seed=0):
    """The two-grid loss averaged over ``matrices`` (no gradient): a validation figure."""
    gen = torch.Generator().manual_seed(seed)
    dtype = next(model.parameters()).dtype
    model.double()
    try:
        with torch.no_grad():
            vals = [
                float(two_grid_loss(model, p, _probes(p, 8, gen), cycles))
                for p in (two_grid_problem(A) for A in matrices)
            ]
    finally:
        model.to(dtype)
    return float(np.mean(vals))
