"""Training of :class:`~pdesurrogates.surrogates.NeuralIncompleteCholesky` on FEM matrices.

Two phases, both on small matrices (dense float64 linear algebra, a few hundred unknowns):

1. **Initialisation at IC(0).** The network is fitted to the IC(0) factors of the
   training matrices (least squares on the entries of the scaled factor ``Lhat``),
   so the untrained-by-PCG model reproduces IC(0).
2. **PCG proxy.** ``cg_steps`` iterations of preconditioned CG are unrolled (dense
   triangular solves, differentiable) for right-hand sides ``b = S z`` and the loss is the
   mean ``log(||x_k - z||_S^2 / ||z||_S^2)``: the energy-norm error left after ``k``
   PCG steps, the quantity whose decay sets the iteration count.

Examples
--------
>>> from pdesurrogates.surrogates import NeuralIncompleteCholesky
>>> from pdesurrogates.training import fem_training_matrices, train_neural_ic
>>> mats = fem_training_matrices(4, sizes=(6, 8), seed=0)
>>> model = NeuralIncompleteCholesky(latent=8, rounds=2, seed=0)
>>> hist = train_neural_ic(model, mats, steps=2, init_steps=2, progress=False)
>>> sorted(hist)
['init_loss', 'loss']
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch

from pdesurrogates._progress import ProgressBar, logger
from pdesurrogates.solvers import IncompleteCholesky
from pdesurrogates.solvers.reference import FEM_FAMILIES, fem_family
from pdesurrogates.surrogates._neural_if import MatrixGraph, NeuralIncompleteCholesky, matrix_graph

__all__ = ["fem_training_matrices", "ic0_targets", "pcg_proxy_loss", "train_neural_ic"]


def fem_training_matrices(
    count: int, *, sizes: tuple[int, int] = (10, 22), families=FEM_FAMILIES, seed=None
) -> list[sp.csr_matrix]:
    """``count`` random FEM matrices: families and domains in turn, mesh size ``m`` random."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        kind = families[k % len(families)]
        domain = "lshape" if (k // len(families)) % 3 == 2 else "square"
        m = int(rng.integers(sizes[0], sizes[1] + 1))
        m += m % 2
        out.append(fem_family(kind, m, domain=domain, seed=rng.integers(2**31)).A)
    return out


def ic0_targets(A: sp.csr_matrix, g: MatrixGraph) -> tuple[torch.Tensor, torch.Tensor]:
    """IC(0) of the scaled matrix as the network's factor values ``(Lhat_ii, Lhat_ij)``."""
    Dm = sp.diags(1 / g.sqrt_d)
    S = sp.csr_matrix(Dm @ A @ Dm)
    L0 = sp.csr_matrix(IncompleteCholesky(S).L)
    L0.sort_indices()
    rows = np.repeat(np.arange(g.n), np.diff(L0.indptr))
    is_diag = L0.indices == rows
    return torch.from_numpy(L0.data[is_diag]), torch.from_numpy(L0.data[~is_diag])


def _dense_factor(model, g: MatrixGraph) -> torch.Tensor:
    diag, off = model.scaled_factor_values(g)
    L = torch.diag(diag)
    low = g.lower
    return L.index_put((g.row[low], g.col[low]), off)


def pcg_proxy_loss(
    model: NeuralIncompleteCholesky, g: MatrixGraph, S: torch.Tensor, Z: torch.Tensor, k: int
) -> torch.Tensor:
    """Mean ``log`` of the relative energy-norm error after ``k`` unrolled PCG steps."""
    L = _dense_factor(model, g).to(S.dtype)

    def minv(r):
        y = torch.linalg.solve_triangular(L, r, upper=False)
        return torch.linalg.solve_triangular(L.T, y, upper=True)

    r = S @ Z
    x = torch.zeros_like(Z)
    z = minv(r)
    p = z
    rz = (r * z).sum(0)
    for _ in range(k):
        Ap = S @ p
        alpha = rz / (p * Ap).sum(0)
        x = x + alpha * p
        r = r - alpha * Ap
        z = minv(r)
        rz_new = (r * z).sum(0)
        p = z + (rz_new / rz) * p
        rz = rz_new
    e = x - Z
    ratio = (e * (S @ e)).sum(0) / (Z * (S @ Z)).sum(0)
    return torch.log(ratio + 1e-30).mean()


def _probes(S: torch.Tensor, n_probes: int, gen: torch.Generator) -> torch.Tensor:
    """Random vectors, half of them smoothed by damped Jacobi (low modes dominate)."""
    Z = torch.randn(S.shape[0], n_probes, generator=gen, dtype=S.dtype)
    half = n_probes // 2
    if half:
        W = Z[:, :half]
        for _ in range(10):
            W = W - 0.6 * (S @ W)  # diag(S) = 1
        Z = torch.cat([W / W.norm(dim=0), Z[:, half:] / Z[:, half:].norm(dim=0)], dim=1)
    return Z


def train_neural_ic(
    model: NeuralIncompleteCholesky,
    matrices: Sequence,
    *,
    steps: int = 300,
    init_steps: int = 200,
    lr: float = 3e-3,
    batch: int = 4,
    cg_steps: int = 6,
    n_probes: int = 8,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Fit ``model`` to IC(0) (``init_steps``), then minimise the PCG proxy (``steps``).

    Training runs in float64; the model is returned in its original dtype and eval mode.

    ``matrices``: small SPD sparse matrices (a few hundred unknowns each; dense algebra).
    Returns ``{"init_loss": [...], "loss": [...]}`` (per step, batch means).
    """
    if not matrices:
        raise ValueError("matrices is empty: pass at least one SPD matrix to train on")
    graphs = [matrix_graph(A) for A in matrices]
    targets = [ic0_targets(sp.csr_matrix(A), g) for A, g in zip(matrices, graphs, strict=True)]
    dense = []
    for A, g in zip(matrices, graphs, strict=True):
        Dm = sp.diags(1 / g.sqrt_d)
        dense.append(torch.from_numpy((Dm @ A @ Dm).toarray()))
    dtype = next(model.parameters()).dtype
    model.double().train()
    gen = torch.Generator().manual_seed(seed)
    hist: dict[str, list[float]] = {"init_loss": [], "loss": []}
    with ProgressBar(enabled=progress) as bar:
        for phase, n_steps in (("init_loss", init_steps), ("loss", steps)):
            if n_steps <= 0:
                continue
            opt = torch.optim.Adam(model.parameters(), lr=lr)
            name = "neural IC: IC(0) fit" if phase == "init_loss" else "neural IC: PCG proxy"
            task = bar.add_task(name, total=n_steps)
            for _ in range(n_steps):
                idx = torch.randint(len(graphs), (min(batch, len(graphs)),), generator=gen)
                opt.zero_grad()
                total = torch.zeros((), dtype=torch.float64)
                for i in idx.tolist():
                    g = graphs[i]
                    if phase == "init_loss":
                        diag, off = model.scaled_factor_values(g)
                        td, to = targets[i]
                        total = total + ((diag - td) ** 2).mean() + ((off - to) ** 2).mean()
                    else:
                        Z = _probes(dense[i], n_probes, gen)
                        total = total + pcg_proxy_loss(model, g, dense[i], Z, cg_steps)
                loss = total / len(idx)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                hist[phase].append(float(loss.detach()))
                bar.advance(task, info=f"loss {hist[phase][-1]:.4g}")
            logger.info("neural IC %s: %.4g after %d steps", phase, hist[phase][-1], n_steps)
    model.to(dtype).eval()  # trained in float64, used in its own dtype (float32: faster setup)
    return hist
