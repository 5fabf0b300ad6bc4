"""A learned incomplete Cholesky factorisation on the sparsity of ``tril(A)`` (after NeuralIF).

A small message-passing network runs over the graph of the symmetrically scaled matrix
``S = D^{-1/2} A D^{-1/2}`` (``D = diag(A)``, so the network is blind to the scale of
``A``) and predicts the entries of a lower-triangular factor on ``A``'s own pattern:

* diagonal: ``Lhat_ii = exp(tanh(g_i))`` (positive, so ``L`` is nonsingular);
* below it: ``Lhat_ij = S_ij (1 + tanh(t_ij) / 2) / Lhat_jj``;

and ``L = D^{1/2} Lhat``. With ``g = t = 0`` this is symmetric Gauss-Seidel; IC(0) of
``S`` corresponds to particular ``g, t`` and is what training starts from
(:func:`pdesurrogates.training.train_neural_ic`). ``M = L L^T`` is symmetric positive
definite for **any** weights, and is applied by two sparse triangular solves
(:class:`~pdesurrogates.solvers.FactoredPreconditioner`). Being a graph network, one
model serves matrices of any size and pattern.

Examples
--------
>>> import numpy as np
>>> from pdesurrogates.solvers import gallery
>>> from pdesurrogates.surrogates import NeuralIncompleteCholesky
>>> model = NeuralIncompleteCholesky(seed=0)
>>> A = gallery.poisson2d(16)
>>> P = model.precondition(A)          # an SPD preconditioner for this matrix
>>> res = P.solve(np.ones(256), rtol=1e-8)
>>> res.converged, P.is_spd
(True, True)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from pdesurrogates.errors import SolverError
from pdesurrogates.io import register_model
from pdesurrogates.solvers import FactoredPreconditioner
from pdesurrogates.solvers._factor import check_spd_matrix
from pdesurrogates.surrogates._limits import MAX_REPEAT, check_at_most

__all__ = ["MatrixGraph", "NeuralICPreconditioner", "NeuralIncompleteCholesky", "matrix_graph"]

N_NODE = 5
N_EDGE = 4


@dataclass
class MatrixGraph:
    """The graph of one SPD matrix, as the network reads it (float64 tensors).

    ``row, col``: off-diagonal nonzeros (both triangles); ``lower``: positions of the
    entries with ``row > col`` in that list, in the CSR order of ``tril(A, -1)``;
    ``node``/``edge``: input features; ``sval``: the scaled entries ``S_ij``;
    ``sqrt_d``: ``sqrt(diag(A))``; ``pattern``: ``(indptr, indices)`` of ``tril(A)``.
    """

    n: int
    row: torch.Tensor
    col: torch.Tensor
    sval: torch.Tensor
    lower: torch.Tensor
    node: torch.Tensor
    edge: torch.Tensor
    sqrt_d: np.ndarray
    pattern: tuple[np.ndarray, np.ndarray]


def matrix_graph(A, *, checked: bool = False) -> MatrixGraph:
    """Features of ``A`` (checked square, symmetric, positive diagonal unless ``checked``)."""
    if not checked:
        A = check_spd_matrix(A, "NeuralIncompleteCholesky")
    n = A.shape[0]
    sd = np.sqrt(A.diagonal())
    S = sp.csr_matrix(sp.diags(1 / sd) @ A @ sp.diags(1 / sd))
    S.setdiag(0)
    S.eliminate_zeros()
    S.sort_indices()
    coo = S.tocoo()
    row, col, v = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data
    deg = np.diff(S.indptr).astype(float)
    absrow = np.asarray(abs(S).sum(axis=1)).ravel()
    maxrow = np.asarray(abs(S).max(axis=1).todense()).ravel()
    rowsum = 1.0 + np.asarray(S.sum(axis=1)).ravel()
    node = np.stack([rowsum, absrow, maxrow, np.log1p(deg) / np.log(9.0), np.ones(n)], axis=1)
    safe = np.maximum(absrow, 1e-300)
    edge = np.stack([v, v / safe[row], v / safe[col], np.where(row > col, 1.0, -1.0)], axis=1)
    lower = np.flatnonzero(row > col)  # COO of a sorted CSR is in CSR order
    T = sp.tril(A, format="csr")
    T.sort_indices()
    t = torch.from_numpy
    return MatrixGraph(
        n, t(row), t(col), t(v), t(lower), t(node), t(edge), sd, (T.indptr, T.indices)
    )


def _mlp(i: int, h: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, h), nn.ReLU(), nn.Linear(h, o))


class _EdgeMLP(nn.Module):
    """``MLP([h_i, h_j, e_ij])`` computed without the ``(E, 3 latent)`` concatenation.

    The first layer is split into node and edge parts; the node parts are computed once
    per node and gathered (about 3x cheaper on graphs with ~7 edges per node).
    """

    def __init__(self, latent: int, out: int):
        super().__init__()
        self.src = nn.Linear(latent, latent, bias=False)
        self.dst = nn.Linear(latent, latent, bias=False)
        self.edge = nn.Linear(latent, latent)
        self.out = nn.Linear(latent, out)

    def forward(self, h, e, row, col):
        return self.out(torch.relu(self.src(h)[row] + self.dst(h)[col] + self.edge(e)))


@register_model
class NeuralIncompleteCholesky(nn.Module):
    """Graph network predicting an incomplete Cholesky factor on ``tril(A)``'s pattern.

    Parameters
    ----------
    latent : int
        Width of node and edge states.
    rounds : int
        Message-passing rounds (each round widens the receptive field by one neighbour).
    seed : int, optional
        Seed of the weight initialisation (the output heads start at zero: symmetric
        Gauss-Seidel).
    """

    def __init__(self, *, latent: int = 16, rounds: int = 3, seed: int | None = None):
        super().__init__()
        for name, val in (("latent", latent), ("rounds", rounds)):
            if not isinstance(val, int) or isinstance(val, bool) or val < 1:
                raise ValueError(f"{name} must be an integer >= 1; got {val!r}")
        check_at_most("NeuralIncompleteCholesky", "rounds", rounds, MAX_REPEAT)
        self.latent, self.rounds, self.seed = latent, rounds, seed
        gen = torch.random.fork_rng() if seed is not None else _null()
        with gen:
            if seed is not None:
                torch.manual_seed(seed)
            _build_encoder(self, latent, rounds)
            self.head_diag = _mlp(latent, latent, 1)
            self.head_low = _EdgeMLP(latent, 1)
        for last in (self.head_diag[-1], self.head_low.out):
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def get_config(self) -> dict:
        """JSON-serialisable ``__init__`` keyword arguments."""
        return {"latent": self.latent, "rounds": self.rounds, "seed": self.seed}

    def forward(self, node, edge, row, col, lower) -> torch.Tensor:
        """Raw outputs ``[g (n,), t (n_lower,)]`` concatenated, from the graph tensors.

        ``node (n, 5)`` and ``edge (E, 4)`` features, off-diagonal nonzeros ``row, col
        (E,)`` and the positions ``lower`` of the strictly lower ones (see
        :class:`MatrixGraph`).
        """
        h, e, row, col = _encode(self, node, edge, row, col)
        lower = lower.to(h.device)
        t = self.head_low(h, e[lower], row[lower], col[lower]).squeeze(1)
        return torch.cat([self.head_diag(h).squeeze(1), t])

    def scaled_factor_values(self, g: MatrixGraph) -> tuple[torch.Tensor, torch.Tensor]:
        """``(Lhat_ii (n,), Lhat_ij (n_lower,))`` of the scaled matrix, differentiable."""
        out = self(g.node, g.edge, g.row, g.col, g.lower)
        logd, t = out[: g.n], out[g.n :]
        diag = torch.exp(torch.tanh(logd))  # bounded corrections: in (1/e, e) and (-1/2, 1/2)
        t = 0.5 * torch.tanh(t)
        low = g.lower.to(diag.device)
        sval = g.sval.to(diag.device, diag.dtype)[low]
        lc = g.col.to(diag.device)[low]
        return diag, sval * (1.0 + t) / diag[lc]

    @torch.no_grad()
    def factor(self, A, *, graph: MatrixGraph | None = None) -> sp.csr_matrix:
        """The lower-triangular factor ``L`` (float64 CSR) with ``A ~ L L^T``."""
        g = matrix_graph(A) if graph is None else graph
        diag, off = self.scaled_factor_values(g)
        diag = diag.double().cpu().numpy()
        off = off.double().cpu().numpy()
        indptr, indices = g.pattern
        n = g.n
        rows = np.repeat(np.arange(n), np.diff(indptr))
        is_diag = indices == rows
        vals = np.empty(len(indices))
        vals[is_diag] = diag
        vals[~is_diag] = off
        L = sp.csr_matrix((vals * g.sqrt_d[rows], indices, indptr), shape=(n, n))
        return L

    def precondition(self, A) -> NeuralICPreconditioner:
        """An SPD preconditioner for ``A`` (setup: features, one forward pass, the factor)."""
        return NeuralICPreconditioner(self, A)


class NeuralICPreconditioner(FactoredPreconditioner):
    """:class:`FactoredPreconditioner` whose factor a :class:`NeuralIncompleteCholesky` made.

    ``update(A_new)`` rebuilds the factor for a matrix with the **same** sparsity pattern
    (a sequence of systems); another pattern is refused, naming the mismatch.
    """

    def __init__(self, model: NeuralIncompleteCholesky, A):
        t0 = time.perf_counter()
        A = check_spd_matrix(A, "NeuralIncompleteCholesky")
        self.model = model
        was = model.training
        model.eval()
        try:
            L = model.factor(A, graph=matrix_graph(A, checked=True))
        finally:
            model.train(was)
        super().__init__(L, A=A)
        self.setup_seconds = time.perf_counter() - t0

    def update(self, A) -> NeuralICPreconditioner:
        """Refactor for ``A`` with the same pattern as the matrix this was built for."""
        A = check_spd_matrix(A, "NeuralICPreconditioner.update")
        old = self.A
        if A.shape != old.shape:
            raise SolverError(
                f"update() needs a matrix of the same pattern: A has shape {A.shape}, the "
                f"preconditioner was built for {old.shape}; build a new one with "
                "model.precondition(A)"
            )
        if not (np.array_equal(A.indptr, old.indptr) and np.array_equal(A.indices, old.indices)):
            diff = (A != 0).astype(np.int8) - (old != 0).astype(np.int8)
            diff = diff.tocoo()
            k = int(np.flatnonzero(diff.data)[0]) if diff.nnz else 0
            where = f" (first difference at [{diff.row[k]}, {diff.col[k]}])" if diff.nnz else ""
            raise SolverError(
                f"update() needs a matrix of the same sparsity pattern: A has {A.nnz} "
                f"nonzeros, the preconditioner's matrix {old.nnz}{where}; build a new one "
                "with model.precondition(A)"
            )
        return NeuralICPreconditioner(self.model, A)


def _build_encoder(net: nn.Module, latent: int, rounds: int) -> None:
    """Give ``net`` the message-passing encoder shared by the matrix graph networks.

    Sets ``node_in``, ``edge_in``, ``msg`` and ``upd`` (their names are the saved weights'
    keys) for ``rounds`` rounds of width ``latent``.
    """
    net.node_in = _mlp(N_NODE, latent, latent)
    net.edge_in = _mlp(N_EDGE, latent, latent)
    net.msg = nn.ModuleList(_EdgeMLP(latent, latent) for _ in range(rounds))
    net.upd = nn.ModuleList(_mlp(2 * latent, latent, latent) for _ in range(rounds))


def _encode(net: nn.Module, node, edge, row, col):
    """Node and edge states ``(h, e)`` after ``net``'s message passing, on its device.

    Returns ``(h (n, latent), e (E, latent), row, col)`` with ``row, col`` moved to the
    network's device; messages are averaged over each node's off-diagonal neighbours.
    """
    p = next(net.parameters())
    dev, dt = p.device, p.dtype
    row, col = row.to(dev), col.to(dev)
    h = net.node_in(node.to(dev, dt))
    e = net.edge_in(edge.to(dev, dt))
    deg = torch.zeros(h.shape[0], device=dev, dtype=dt).index_add_(
        0, row, torch.ones_like(row, dtype=dt)
    )
    deg = deg.clamp_min(1.0)[:, None]
    for msg, upd in zip(net.msg, net.upd, strict=True):
        m = msg(h, e, row, col)
        h = h + upd(torch.cat([h, torch.zeros_like(h).index_add_(0, row, m) / deg], dim=1))
        e = e + m
    return h, e, row, col


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None
