"""A learned smoothed-aggregation AMG: a graph network sets each level's weights.

After Luz et al. (2020), "Learning algebraic multigrid using graph neural networks": the
aggregation, tentative prolongator and Galerkin coarse operators are those of our own
:class:`~pdesurrogates.solvers.SmoothedAggregation`; a small message-passing network
reads each level's matrix (the scale-free features of
:func:`~pdesurrogates.surrogates._neural_if.matrix_graph`: normalised entries, row sums,
degrees) and predicts, per node,

* the prolongation-smoothing weight ``w_i = 4/3 exp(tanh(g_i) / 2)`` in
  ``P = (I - diag(w) D^{-1} A / rho) T`` (``4/3``: pyamg's default);
* a factor ``f_ij = 1 + tanh(.)/2`` per off-diagonal entry, reweighting ``A`` into the
  matrix ``F`` of that smoother (``P = (I - diag(w) D^{-1} F / rho) T``);
* the SOR relaxation weight ``s_i = 0.05 + 1.9 sigmoid(h_i + c)`` (``1``: Gauss-Seidel)
  of the symmetric smoothing sweep.

``s`` in ``(0, 2)`` keeps ``M + M^T - A`` positive definite, so the symmetric V-cycle is
an SPD preconditioner for **any** weights (valid as ``M=`` for CG). The output head
starts at zero: the untrained network *is* plain smoothed aggregation with symmetric
Gauss-Seidel. A graph network serves matrices of any size and pattern.

Examples
--------
>>> import numpy as np
>>> from pdesurrogates.solvers import gallery
>>> from pdesurrogates.surrogates import NeuralAMG
>>> model = NeuralAMG(seed=0)              # untrained: plain smoothed aggregation
>>> A = gallery.poisson2d(32)
>>> P = model.precondition(A)
>>> res = P.solve(np.ones(A.shape[0]), rtol=1e-8)
>>> res.converged, res.n_iter <= 12, P.is_spd
(True, True, True)
"""

from __future__ import annotations

import math
import time

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from pdesurrogates.io import register_model
from pdesurrogates.solvers import SmoothedAggregation
from pdesurrogates.solvers._factor import check_spd_matrix
from pdesurrogates.surrogates._limits import MAX_REPEAT, check_at_most
from pdesurrogates.surrogates._neural_if import (
    MatrixGraph,
    _build_encoder,
    _EdgeMLP,
    _encode,
    _mlp,
    _null,
    matrix_graph,
)

__all__ = ["NeuralAMG"]

_S_LO, _S_SPAN = 0.05, 1.9
_S_BIAS = math.log((1.0 - _S_LO) / (_S_LO + _S_SPAN - 1.0))  # s = 1 at zero output


@register_model
class NeuralAMG(nn.Module):
    """Graph network setting the prolongation and smoother weights of an SA hierarchy.

    Parameters
    ----------
    latent : int
        Width of node and edge states.
    rounds : int
        Message-passing rounds.
    seed : int, optional
        Seed of the weight initialisation (the output head starts at zero: plain SA).
    levels : int
        How many levels (from the finest) take the network's weights; the coarser ones
        use the defaults ``w = 4/3, s = 1, F = A``. ``0``: plain SA whatever the weights.
        Default 10: every level, with the same (level-shared) network, as the training
        loss (:func:`~pdesurrogates.training.train_neural_amg`) learns them on the two
        finest levels of each training matrix. ``1``: the finest level only (the loss then
        keeps plain SA below); it transfers worse to the deep hierarchies of large meshes.
    guard : bool
        Safeguard of :meth:`precondition`: also build the plain hierarchy on the same
        aggregates and keep whichever cycle reduces the energy-norm error of a few PCG
        steps more (:func:`cycle_estimate`), so learning never costs iterations where it
        does not transfer. Costs a second hierarchy (without aggregation) and a few cycles.
    """

    solve_method = "neural_amg"  # the name of its method in solve_with / the CLI

    def __init__(
        self,
        *,
        latent: int = 16,
        rounds: int = 3,
        seed: int | None = None,
        levels: int = 10,
        guard: bool = False,
    ):
        super().__init__()
        for name, val, lo in (("latent", latent, 1), ("rounds", rounds, 1), ("levels", levels, 0)):
            if not isinstance(val, int) or isinstance(val, bool) or val < lo:
                raise ValueError(f"{name} must be an integer >= {lo}; got {val!r}")
        check_at_most("NeuralAMG", "rounds", rounds, MAX_REPEAT)
        if not isinstance(guard, bool):
            raise ValueError(f"guard must be True or False; got {guard!r}")
        self.latent, self.rounds, self.seed, self.levels = latent, rounds, seed, levels
        self.guard = guard
        gen = torch.random.fork_rng() if seed is not None else _null()
        with gen:
            if seed is not None:
                torch.manual_seed(seed)
            _build_encoder(self, latent, rounds)
            self.head = _mlp(latent, latent, 2)
            self.head_edge = _EdgeMLP(latent, 1)
        for last in (self.head[-1], self.head_edge.out):
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def get_config(self) -> dict:
        """JSON-serialisable ``__init__`` keyword arguments."""
        return {
            "latent": self.latent,
            "rounds": self.rounds,
            "seed": self.seed,
            "levels": self.levels,
            "guard": self.guard,
        }

    def forward(self, node, edge, row, col) -> torch.Tensor:
        """Raw outputs ``[g (n,), h (n,), t (E,)]`` concatenated, from node ``(n, 5)`` /
        edge ``(E, 4)`` features and the off-diagonal nonzeros ``row, col (E,)``."""
        h, e, row, col = _encode(self, node, edge, row, col)
        out = self.head(h)
        return torch.cat([out[:, 0], out[:, 1], self.head_edge(h, e, row, col).squeeze(1)])

    def level_weights(self, g: MatrixGraph):
        """``(w (n,), s (n,), f (E,))`` for the matrix of graph ``g``, differentiable.

        ``f = 1 + tanh(.) / 2`` multiplies the off-diagonal entry ``a_ij`` (edges in the
        order of ``g.row, g.col``) in the prolongation smoother's matrix ``F``.
        """
        out = self(g.node, g.edge, g.row, g.col).double()  # exact defaults at zero output
        n = g.n
        w = (4.0 / 3.0) * torch.exp(0.5 * torch.tanh(out[:n]))
        s = _S_LO + _S_SPAN * torch.sigmoid(out[n : 2 * n] + _S_BIAS)
        return w, s, 1.0 + 0.5 * torch.tanh(out[2 * n :])

    def _numpy_weights(self, A: sp.csr_matrix, level: int):
        n = A.shape[0]
        if level >= self.levels:
            return np.full(n, 4.0 / 3.0), np.ones(n), A
        g = matrix_graph(A, checked=True)
        with torch.no_grad():
            w, s, f = (t.double().cpu().numpy() for t in self.level_weights(g))
        row, col = g.row.numpy(), g.col.numpy()
        off = g.sval.numpy() * g.sqrt_d[row] * g.sqrt_d[col] * f
        F = sp.csr_matrix((off, (row, col)), shape=(n, n)) + sp.diags(A.diagonal())
        return w, s, F

    def weights_fn(self):
        """``weights(A_level)`` for :class:`SmoothedAggregation` (counts the levels)."""
        state = {"level": 0, "n": None}

        def weights(A):
            if state["n"] is not None and A.shape[0] >= state["n"]:
                state["level"] = 0  # a new hierarchy (update) starts from the finest level
            state["n"] = A.shape[0]
            out = self._numpy_weights(A, state["level"])
            state["level"] += 1
            return out

        return weights

    def precondition(self, A) -> SmoothedAggregation:
        """The SPD V-cycle of ``A``'s hierarchy with this network's weights (the setup).

        With ``guard=True``, the plain SA hierarchy on the same aggregates is built too and
        the one of smaller :func:`cycle_estimate` is returned (``.learned`` tells which).
        """
        t0 = time.perf_counter()
        A = check_spd_matrix(A, "NeuralAMG")
        was = self.training
        self.eval()
        try:
            P = SmoothedAggregation(A, weights=self.weights_fn(), _checked=True)
        finally:
            self.train(was)
        P.learned = True
        if self.guard and self.levels > 0:
            plain = SmoothedAggregation(A, _aggregates=P.aggregates, _checked=True)
            if cycle_estimate(plain) <= cycle_estimate(P):
                P, plain.learned = plain, False
        P.setup_seconds = time.perf_counter() - t0
        return P


def cycle_estimate(P: SmoothedAggregation, *, steps: int = 8, probes: int = 2) -> float:
    """Estimated ``log`` of the V-cycle's asymptotic convergence factor (lower is better).

    ``steps`` stationary cycles ``e <- (I - B A) e`` from random probes (seed 0) act as a
    power iteration: the energy-norm contraction of the last three sets the estimate of
    ``rho(I - B A) = 1 - lambda_min(B A)``, hence of PCG's condition number ``1 / lambda_min``.

    >>> from pdesurrogates.solvers import SmoothedAggregation, gallery
    >>> A = gallery.poisson2d(16)
    >>> -3.0 < cycle_estimate(SmoothedAggregation(A)) < -0.5   # rho about 0.05-0.6
    True
    """
    A = P.A
    rng = np.random.default_rng(0)
    out = []
    for _ in range(probes):
        e = rng.standard_normal(A.shape[0])
        norms = []
        for _ in range(steps):
            e = e - P.matvec(A @ e)
            norms.append(math.sqrt(max(float(e @ (A @ e)), 1e-300)))
        out.append(math.log(norms[-1] / norms[-4]) / 3.0)
    return float(np.mean(out))
