"""The lean inference path of :class:`~pdesurrogates.surrogates.DeepONet`.

Impulse responses run without autograd and without module calls: the weights of each
net are transposed and fused once (with the first-layer input scaling folded in) and,
for the separable trunk, the time-net outputs ``psi`` on the native time grid are
cached. This *plan* is derived from the weights and rebuilt after any parameter change
(optimizer step, ``load_state_dict``, ``.to()``, ``train()``); training and ``forward``
never use it.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["DeepONetLeanPath"]


class DeepONetLeanPath:
    """Mix-in of :class:`~pdesurrogates.surrogates.DeepONet`: the cached inference plan.

    The model sets ``self._lean = None`` whenever the plan must be rebuilt.
    """

    def native_times(self) -> np.ndarray:
        """The model's native output times ``linspace(0, duration, time_samples)`` (s)."""
        return np.linspace(0.0, self.duration, self.time_samples)

    def _lean_plan(self) -> dict:
        """Weight-derived tensors of the lean inference path, rebuilt when weights change.

        Holds the nets' weights transposed and fused
        (:meth:`~pdesurrogates.surrogates._deeponet_mlp.DeepONetMLP.lean_weights`) and,
        for the separable trunk, the time-net outputs ``psi`` on the native time grid
        (:meth:`native_times`). It is keyed on every parameter's storage and version
        counter, so an optimizer step, ``load_state_dict`` or ``.to()`` invalidates it;
        it is only used outside autograd.
        """
        lean = self._lean
        if lean is not None:
            if lean[0] == tuple([(q.data_ptr(), q._version) for q in lean[2]]):
                return lean[1]
        params = list(self.parameters())
        key = tuple([(q.data_ptr(), q._version) for q in params])
        ref = self.sensor_points
        with torch.no_grad():
            if self.source_input == "pulse":
                scale = torch.full((self.n_branch,), 2.0)
            else:
                scale = 2.0 / self.length_vec.cpu()
            plan = {"branch": self.branch.lean_weights(scale, -torch.ones(self.n_branch))}
            if self.trunk_kind == "separable":
                plan.update(self._separable_plan(ref))
        plan["sensors_np"] = ref.detach().cpu().double().numpy()
        plan["np_dtype"] = torch.empty((), dtype=ref.dtype).numpy().dtype
        plan["device"] = ref.device
        self._lean = (key, plan, params)
        return plan

    def _separable_plan(self, ref: torch.Tensor) -> dict:
        plan = {"space": self.space_net.lean_weights(), "time": self.time_net.lean_weights()}
        grid = torch.linspace(0.0, self.duration, self.time_samples, dtype=torch.float64)
        plan["psi"] = self.time_net(self.encode_time(grid.to(ref)[:, None]))
        if self.encoding == "periodic":
            scale = math.pi * self.space_m / self.space_len.to(self.space_m)
            plan["space_scale"] = scale.cpu().numpy()
            plan["space_axis"] = self.space_axis.cpu().numpy()
        return plan

    def _time_basis(self, t: np.ndarray, plan: dict) -> torch.Tensor:
        """Time-net outputs ``psi`` (T, p*rank) at times ``t`` (s), no autograd.

        Times on the native grid are read from the cached ``plan["psi"]``; other times
        evaluate the time net.
        """
        psi = plan["psi"]
        n = self.time_samples
        last = plan.get("last_times")
        if last is not None and last[0].shape == t.shape and np.array_equal(last[0], t):
            return psi[last[1]]
        dt = self.duration / (n - 1)
        k = np.rint(t / dt)
        if not (
            len(t)
            and k.min() >= 0
            and k.max() < n
            and np.all(np.abs(k * dt - t) <= 1e-9 * self.duration)
        ):
            feat = self.encode_time(torch.as_tensor(t).to(psi)[:, None])
            return self.time_net.lean(plan["time"], feat)
        idx = k.astype(np.int64)
        if idx[0] == 0 and np.all(np.diff(idx) == 1):
            sel = slice(0, len(idx))
        else:
            sel = torch.from_numpy(idx).to(psi.device)
        plan["last_times"] = (t.copy(), sel)
        return psi[sel]

    def _lean_branch(self, plan, src: np.ndarray) -> torch.Tensor:
        # the encodings of a few points are cheaper in numpy than as torch calls
        if self.source_input == "pulse":
            d2 = np.square(src[:, None, :] - plan["sensors_np"]).sum(-1)
            src = np.exp(d2 * (-1.0 / self.sigma**2))
        z = torch.from_numpy(src.astype(plan["np_dtype"])).to(plan["device"])
        return self.branch.lean(plan["branch"], z)

    def _lean_space(self, plan, rec: np.ndarray) -> torch.Tensor:
        if "space_scale" in plan:
            feat = np.cos(rec[:, plan["space_axis"]] * plan["space_scale"])
            feat = torch.from_numpy(feat.astype(plan["np_dtype"])).to(plan["device"])
        else:
            ref = self.sensor_points
            feat = self.encode_space(torch.from_numpy(rec).to(ref))
        return self.space_net.lean(plan["space"], feat)
