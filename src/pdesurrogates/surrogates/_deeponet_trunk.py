"""The separable space x time trunk of :class:`~pdesurrogates.surrogates.DeepONet`.

With a separable trunk ``tau_k(x, t) = sum_r phi_kr(x) psi_kr(t)`` the pressure on a
product of ``P`` points and ``T`` times is a contraction of three small factors: the
branch outputs ``b`` (S, p), the space-net outputs ``phi`` (P, p*rank) and the time-net
outputs ``psi`` (T, p*rank). These pure functions hold that algebra.

Examples
--------
>>> import numpy as np
>>> import torch
>>> b, phi, psi = torch.randn(2, 3), torch.randn(4, 6), torch.randn(5, 6)
>>> out = contract_separable(b, phi, psi, torch.tensor(0.5), rank=2)
>>> out_np = contract_separable(b.numpy(), phi.numpy(), psi.numpy(), 0.5, rank=2)
>>> tau = sum_rank(phi[:, None, :] * psi[None, :, :], rank=2)  # (P, T, p)
>>> bool(torch.allclose(out, torch.einsum("sk,ptk->spt", b, tau) + 0.5, atol=1e-5))
True
>>> bool(np.allclose(out_np, out.numpy(), atol=1e-5))
True
"""

from __future__ import annotations

import torch

__all__ = ["contract_separable", "pair_coords", "sum_rank"]


def pair_coords(points: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """Every (point, time) pair ``(P*T, D+1)``, point-major, from ``(P, D)`` and ``(T,)``."""
    n_p, n_t, dim = points.shape[0], times.shape[0], points.shape[1]
    return torch.cat(
        [points[:, None, :].expand(n_p, n_t, dim), times[None, :, None].expand(n_p, n_t, 1)],
        dim=-1,
    ).reshape(n_p * n_t, dim + 1)


def sum_rank(prod: torch.Tensor, *, rank: int) -> torch.Tensor:
    """``(..., p*rank) -> (..., p)``: sum the ``rank`` space x time terms of each basis."""
    if rank == 1:
        return prod
    return prod.unflatten(-1, (prod.shape[-1] // rank, rank)).sum(-1)


def contract_separable(b, phi, psi, bias, *, rank: int):
    """``sum_{k,r} b_sk phi_pkr psi_tkr + b0`` -> (S, P, T), for tensors or numpy arrays.

    Parameters
    ----------
    b : Tensor or ndarray, shape (S, p)
    phi : Tensor or ndarray, shape (P, p*rank)
    psi : Tensor or ndarray, shape (T, p*rank)
    bias : Tensor of shape () or float
    rank : int
    """
    n_s, n_p = b.shape[0], phi.shape[0]
    if rank == 1:
        bp = b[:, None, :] * phi[None, :, :]
    else:
        latent = b.shape[1]
        bp = (b[:, None, :, None] * phi.reshape(n_p, latent, rank)[None]).reshape(n_s, n_p, -1)
    out = bp.reshape(n_s * n_p, -1) @ psi.T
    out += bias
    return out.reshape(n_s, n_p, psi.shape[0])
