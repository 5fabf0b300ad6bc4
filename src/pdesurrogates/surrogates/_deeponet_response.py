"""Impulse responses and fields from a trained :class:`~pdesurrogates.surrogates.DeepONet`.

:meth:`DeepONetResponses.impulse_response` is the user-facing evaluation: physical
source and receiver positions (m) and times (s) in, pressures (Pa) out, checked against
the room and the trained horizon, on the lean path of
:mod:`pdesurrogates.surrogates._deeponet_lean`. :meth:`DeepONetResponses.response_basis`
keeps the trunk outputs for fixed receivers and times so further sources cost a branch
pass and a small product.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from pdesurrogates.surrogates._deeponet_trunk import contract_separable, pair_coords, sum_rank

__all__ = ["DeepONetResponses", "ResponseBasis"]


@dataclass(frozen=True)
class ResponseBasis:
    """Trunk outputs of a :class:`DeepONet` at fixed receivers and times.

    Attributes
    ----------
    values : Tensor, shape (R*T, p)
        Trunk outputs, receiver-major.
    receivers : ndarray, shape (R, D)
        Receiver positions (m).
    times : ndarray, shape (T,)
        Times (s).
    """

    values: torch.Tensor
    receivers: np.ndarray
    times: np.ndarray


class DeepONetResponses:
    """Mix-in of :class:`~pdesurrogates.surrogates.DeepONet`: evaluation in physical units."""

    def query_points(self, points, times) -> torch.Tensor:
        """Trunk coordinates ``(P*T, D+1)`` of every (point, time) pair, point-major."""
        ref = self.sensor_points
        p = torch.as_tensor(np.ascontiguousarray(points, dtype=float), device=ref.device)
        t = torch.as_tensor(np.ascontiguousarray(times, dtype=float), device=ref.device)
        return pair_coords(p.to(ref.dtype), t.to(ref.dtype))

    @torch.no_grad()
    def response_basis(self, receivers, times) -> ResponseBasis:
        """Evaluate the trunk once at fixed receivers and times.

        The trunk does not depend on the source, so for a fixed set of receivers and
        times its outputs can be kept and every further impulse response costs only the
        branch net and a small matrix product (``impulse_response(src, basis=basis)``).
        Recompute the basis after changing the weights.

        Parameters
        ----------
        receivers : (R, D) array_like
            Receiver positions (m).
        times : (T,) array_like
            Times (s).

        Returns
        -------
        ResponseBasis
        """
        rec = self._as_points("receivers", receivers)
        t = self._check_times(times)
        if self.trunk_kind == "joint":
            values = self.trunk(self.encode_coords(self.query_points(rec, t)))
        else:
            plan = self._lean_plan()
            phi = self._lean_space(plan, rec)
            psi = self._time_basis(t, plan)
            values = sum_rank(phi[:, None, :] * psi[None, :, :], rank=self.rank)
            values = values.reshape(len(rec) * len(t), self.latent)
        return ResponseBasis(values=values, receivers=rec, times=t)

    def impulse_response(self, source, receivers=None, times=None, *, basis=None) -> np.ndarray:
        """Impulse responses (Pa) at receivers for one or several sources.

        Parameters
        ----------
        source : (D,) or (S, D) array_like
            Source position(s) (m).
        receivers : (R, D) array_like
            Receiver positions (m). Not needed with ``basis``.
        times : (T,) array_like
            Times (s), within the trained horizon ``[0, duration]``. Not needed with
            ``basis``.
        basis : ResponseBasis, optional
            Trunk outputs from :meth:`response_basis` for fixed receivers and times.

        Returns
        -------
        ndarray, shape (R, T) for one source or (S, R, T)

        Raises
        ------
        ValueError
            A source or receiver outside the room, or negative times.

        Warns
        -----
        UserWarning
            Times beyond the trained horizon, or a source outside the training region.
        """
        plan = self._lean_plan()
        if plan.get("numpy") is not None and basis is None and self.trunk_kind == "separable":
            # the CPU cold path: checks and the lean arithmetic in numpy, no autograd state
            if receivers is None or times is None:
                raise ValueError("give receivers and times, or a basis from response_basis()")
            out = self._numpy_response(plan, source, receivers, times)
            return out[0] if self.one_point(source) else out
        with torch.no_grad():
            out = self._lean_response(plan, source, receivers, times, basis)
        return out[0] if self.one_point(source) else out

    def _lean_response(self, plan, source, receivers, times, basis) -> np.ndarray:
        """:meth:`impulse_response` (S, R, T) with a basis, or on the torch lean path."""
        src = self._fast_sources(source)
        if basis is None:
            if receivers is None or times is None:
                raise ValueError("give receivers and times, or a basis from response_basis()")
            if self.trunk_kind == "joint":
                basis = self.response_basis(receivers, times)
        elif receivers is not None or times is not None:
            raise ValueError("give either receivers and times, or basis, not both")
        if basis is not None:
            if plan.get("numpy") is not None and not basis.values.is_cuda:
                out = (
                    self.branch.lean_numpy(
                        plan["numpy"]["branch"], self._branch_input_np(plan, src)
                    )
                    @ basis.values.numpy().T
                )
                out += plan["numpy"]["bias"]
            else:
                b = self._lean_branch(plan, src)
                out = torch.addmm(self.bias, b, basis.values.transpose(0, 1)).cpu().numpy()
            return out.reshape(len(src), len(basis.receivers), len(basis.times))
        # separable trunk: space net at the receivers, time basis from the cache,
        # no pass over the receivers x times pairs
        b = self._lean_branch(plan, src)
        rec = self._fast_points("receivers", receivers)
        t = self._fast_times(times)
        phi = self._lean_space(plan, rec)
        psi = self._time_basis(t, plan)
        return contract_separable(b, phi, psi, self.bias, rank=self.rank).cpu().numpy()

    @torch.no_grad()
    def predict_field(self, source, coords: Sequence, times) -> np.ndarray:
        """Pressure (Pa) on a tensor grid, shape ``(T, n_1, ..., n_D)`` for one source.

        In a room that is not a box, grid points in its solid part are 0 (as in the data).
        """
        grids = np.meshgrid(*[np.asarray(c, dtype=float) for c in coords], indexing="ij")
        pts = np.stack([g.reshape(-1) for g in grids], axis=-1)
        shape = getattr(self, "_room_shape", None)
        air = np.ones(len(pts), dtype=bool) if shape is None else shape.contains(pts)
        out = np.zeros((len(pts), len(np.atleast_1d(times))))
        src = np.asarray(source, dtype=float).reshape(-1)
        out[air] = self.impulse_response(src, pts[air], times)
        return out.T.reshape((len(np.atleast_1d(times)), *grids[0].shape))
