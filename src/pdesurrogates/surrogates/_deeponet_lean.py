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

from pdesurrogates.surrogates._deeponet_trunk import contract_separable

__all__ = ["DeepONetLeanPath"]


#: a parameter's in-place version counter (bumped by optimizer steps, ``copy_``)
def _weights_key(params) -> list:
    """Version counter and storage of every parameter: an in-place update bumps the
    first, ``p.data = ...`` (and ``vector_to_parameters``) changes the second."""
    return [(q._version, q.data_ptr()) for q in params]


class DeepONetLeanPath:
    """Mix-in of :class:`~pdesurrogates.surrogates.DeepONet`: the cached inference plan.

    The model sets ``self._lean = None`` whenever the plan must be rebuilt.
    """

    def _apply(self, fn, *args, **kwargs):
        # .to(), .double(), .cuda(), ...: new parameter storage, so rebuild the plan
        self.__dict__["_lean"] = None
        return super()._apply(fn, *args, **kwargs)

    def native_times(self) -> np.ndarray:
        """The model's native output times ``linspace(0, duration, time_samples)`` (s)."""
        return np.linspace(0.0, self.duration, self.time_samples)

    def _lean_plan(self) -> dict:
        """Weight-derived tensors of the lean inference path, rebuilt when weights change.

        Holds the nets' weights transposed and fused
        (:meth:`~pdesurrogates.surrogates._deeponet_mlp.DeepONetMLP.lean_weights`) and,
        for the separable trunk, the time-net outputs ``psi`` on the native time grid
        (:meth:`native_times`). It is keyed on every parameter's version counter and
        storage, so an optimizer step, ``load_state_dict`` or ``p.data = ...`` invalidates
        it; ``.to()`` and friends (:meth:`_apply`), a replaced parameter or net and
        ``train()`` drop it. It is only used outside autograd.
        """
        lean = self._lean
        if lean is not None and _weights_key(lean[2]) == lean[0]:
            return lean[1]
        params = list(self.parameters())
        key = _weights_key(params)
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
        plan["sensor_axes"] = self._sensor_axes(plan["sensors_np"])
        plan["np_dtype"] = torch.empty((), dtype=ref.dtype).numpy().dtype
        plan["device"] = ref.device
        if "space_scale" in plan and ref.device.type == "cpu":
            plan["numpy"] = self._numpy_plan(plan)
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

    def _numpy_plan(self, plan: dict) -> dict | None:
        """CPU copies of the separable plan for the numpy cold path, if all nets allow it."""
        nets = {"branch": self.branch, "space": self.space_net}
        out = {key: net.numpy_weights(plan[key]) for key, net in nets.items()}
        if any(v is None for v in out.values()):
            return None
        out["psi"] = plan["psi"].numpy()
        out["bias"] = float(self.bias.detach())
        # cos(x[:, axis] * scale) as cos(x @ A): one nonzero per column of A, so exact
        axis, scale = plan["space_axis"], plan["space_scale"]
        out["space_map"] = np.zeros((self.dim, len(axis)))
        out["space_map"][axis, np.arange(len(axis))] = scale
        return out

    def _numpy_response(self, plan: dict, source, receivers, times) -> np.ndarray:
        """Impulse responses (S, R, T) in numpy, arguments checked: the CPU cold path.

        Branch net, space net at the receivers, cached time basis (the time net runs only
        for times off the native grid), contraction. Same arithmetic as the torch lean
        path; a few rows through small nets cost mostly per-call dispatch, which numpy
        does in a fraction of torch's time.
        """
        npl = plan["numpy"]
        src = self._fast_sources(source)
        rec = self._fast_points("receivers", receivers)
        t, sel = self._fast_time_rows(times, plan)
        b = self.branch.lean_numpy(npl["branch"], self._branch_input_np(plan, src))
        feat = rec @ npl["space_map"]
        np.cos(feat, out=feat)
        phi = self.space_net.lean_numpy(npl["space"], feat.astype(plan["np_dtype"]))
        if sel is None:
            with torch.no_grad():
                psi = self._time_basis(t, plan).numpy()
        else:
            psi = npl["psi"][sel]
        return contract_separable(b, phi, psi, npl["bias"], rank=self.rank)

    def _sensor_axes(self, sensors: np.ndarray):
        """Per-axis sensor coordinates if the sensors are their ``ij`` tensor grid.

        An array (D, n) if every axis has ``n`` sensors, else a list of D arrays; None if
        the sensors are not a tensor grid.

        The pulse ``exp(-|x - s|^2 / sigma^2)`` at a tensor grid is the outer product of
        one small Gaussian per axis, which costs ``sum(n_d)`` exponentials instead of
        ``prod(n_d)``.
        """
        shape = tuple(self.sensors)
        if int(np.prod(shape)) != len(sensors):
            return None
        grid = sensors.reshape(*shape, self.dim)
        axes = [
            grid[(0,) * d + (slice(None),) + (0,) * (self.dim - d - 1)][:, d]
            for d in range(self.dim)
        ]
        rebuilt = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, self.dim)
        if not np.array_equal(rebuilt, sensors):
            return None
        return np.stack(axes) if len(set(shape)) == 1 else [a.copy() for a in axes]

    def _time_basis(self, t: np.ndarray, plan: dict) -> torch.Tensor:
        """Time-net outputs ``psi`` (T, p*rank) at times ``t`` (s), no autograd.

        Times on the native grid are read from the cached ``plan["psi"]``; other times
        evaluate the time net.
        """
        psi = plan["psi"]
        sel = self._time_rows(t, plan)
        if sel is None:
            feat = self.encode_time(torch.as_tensor(t).to(psi)[:, None])
            return self.time_net.lean(plan["time"], feat)
        if isinstance(sel, np.ndarray):
            sel = torch.from_numpy(sel).to(psi.device)
        return psi[sel]

    def _time_rows(self, t: np.ndarray, plan: dict):
        """Rows of the native time grid at times ``t``: a slice, an index array, or None."""
        last = plan.get("last_times")
        if last is not None and last[0].shape == t.shape and (last[0] == t).all():
            return last[1]
        n = self.time_samples
        dt = self.duration / (n - 1)
        k = np.rint(t / dt)
        if not (
            len(t)
            and k.min() >= 0
            and k.max() < n
            and np.all(np.abs(k * dt - t) <= 1e-9 * self.duration)
        ):
            return None
        idx = k.astype(np.int64)
        sel = slice(0, len(idx)) if idx[0] == 0 and np.all(np.diff(idx) == 1) else idx
        plan["last_times"] = (t.copy(), sel)
        return sel

    def _fast_time_rows(self, times, plan: dict):
        """Checked times ``t`` (s) and their native-grid rows (:meth:`_time_rows`).

        The last native-grid times are kept with their rows, so a repeated time vector
        (fixed times, moving source and receivers) costs one comparison.
        """
        last = plan.get("last_times")
        if last is not None and type(times) is np.ndarray and times.shape == last[0].shape:
            if (times == last[0]).all():
                return last[0], last[1]
        t = self._fast_times(times)
        return t, self._time_rows(t, plan)

    def _lean_branch(self, plan, src: np.ndarray) -> torch.Tensor:
        # the encodings of a few points are cheaper in numpy than as torch calls
        z = torch.from_numpy(self._branch_input_np(plan, src)).to(plan["device"])
        return self.branch.lean(plan["branch"], z)

    def _branch_input_np(self, plan, src: np.ndarray) -> np.ndarray:
        """Branch input (S, m) in the plan's dtype, before the folded ``2 z - 1`` map."""
        if self.source_input != "pulse":
            return src.astype(plan["np_dtype"])
        axes = plan["sensor_axes"]
        scale = -1.0 / self.sigma**2
        if axes is None:
            return np.exp(np.square(src[:, None, :] - plan["sensors_np"]).sum(-1) * scale).astype(
                plan["np_dtype"]
            )
        # exp(-|x - s|^2 / sigma^2) on a tensor grid: an outer product of 1D pulses
        if isinstance(axes, np.ndarray):  # n sensors on every axis: one (S, D, n) pass
            g = src[:, :, None] - axes
            g *= g
            g *= scale
            np.exp(g, out=g)
            g = [g[:, d] for d in range(self.dim)]
        else:
            g = [np.exp(np.square(src[:, d, None] - a) * scale) for d, a in enumerate(axes)]
        n_s = len(src)
        z = g[0]
        for gd in g[1:]:  # (S, a) x (S, b) -> (S, a*b), in float64 like the 1D pulses
            z = (z[:, :, None] * gd[:, None, :]).reshape(n_s, -1)
        return z.astype(plan["np_dtype"])

    def _lean_space(self, plan, rec: np.ndarray) -> torch.Tensor:
        if "space_scale" in plan:
            feat = np.cos(rec[:, plan["space_axis"]] * plan["space_scale"])
            feat = torch.from_numpy(feat.astype(plan["np_dtype"])).to(plan["device"])
        else:
            ref = self.sensor_points
            feat = self.encode_space(torch.from_numpy(rec).to(ref))
        return self.space_net.lean(plan["space"], feat)
