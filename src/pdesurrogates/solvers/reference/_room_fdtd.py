"""Room acoustics by a staggered pressure-velocity FDTD: impedance walls, voxel rooms.

The linear acoustic equations

.. math::  \\rho\\, v_t = -\\nabla p, \\qquad p_t = -\\rho c^2 \\nabla\\cdot v,

are discretised by a finite-volume leapfrog scheme (second order in space and time) on
a regular grid over the room's bounding box: pressures on the grid nodes, each with the
air part of its dual cell as control volume; velocities on the grid edges, each with the
air part of its dual face as flux area. The room is a set of air cells
(:class:`~pdesurrogates.solvers.reference.Room`: box, L-shape or a voxel mask).

Walls are locally reacting with a frequency-independent impedance ``Z`` (Pa s/m):
the normal velocity into a wall is ``v_n = p / Z`` with the pressure averaged over the
step, the standard semi-implicit FDTD form, so the update stays explicit. A box face
node then obeys ``p^{n+1} (1 + lam beta) = ...`` with ``beta = rho c / Z``, an edge
``2 lam beta`` and a corner ``3 lam beta`` (Kowalczyk & van Walstijn 2008). Rigid
walls (``Z = inf``) close the edges, and the discrete energy is then conserved to
round-off; with impedance walls it decreases monotonically. At normal incidence the
wall reflects ``R = (Z - rho c) / (Z + rho c)``, absorbing ``alpha = 1 - R^2``.

Everything runs as whole-array torch operations on any device (``device="cuda"``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from pdesurrogates.solvers.reference._room_geometry import Room, dispersion_error
from pdesurrogates.solvers.reference._wave_common import (
    C_AIR,
    _broadcast_cells,
    gaussian_pulse,
    wave_grid,
)
from pdesurrogates.solvers.reference._wave_fdtd import (
    WaveSolution,
    _interp_weights,
    _pulse_parameters,
    _time_step,
)

__all__ = ["RHO_AIR", "absorption_coefficient", "solve_room"]

RHO_AIR = 1.2
"""Density of air (kg/m^3)."""

_FACES = ("x0", "x1", "y0", "y1", "z0", "z1")


def absorption_coefficient(impedance: float, rho: float = RHO_AIR, c: float = C_AIR) -> float:
    """Normal-incidence absorption ``1 - |(Z - rho c) / (Z + rho c)|^2`` of a wall.

    Examples
    --------
    >>> round(absorption_coefficient(7400.0), 4)
    0.1997
    """
    if not impedance > 0:
        raise ValueError(f"impedance must be a positive value in Pa s/m; got {impedance!r}")
    r = (impedance - rho * c) / (impedance + rho * c)
    return 1.0 - r * r


def _admittances(impedance, dim: int, rho: float, c: float) -> dict[str, float]:
    """Normalised admittance ``beta = rho c / Z`` per box face and for obstacle walls."""
    if impedance is None or isinstance(impedance, (int, float)):
        spec = {"default": impedance}
    elif isinstance(impedance, dict):
        spec = dict(impedance)
        allowed = {*_FACES[: 2 * dim], "obstacle", "default"}
        bad = sorted(set(spec) - allowed)
        if bad:
            raise ValueError(f"impedance keys {bad} unknown; use {sorted(allowed)}")
    else:
        raise ValueError(
            "impedance must be None (rigid), a number (Pa s/m) or a dict of them per wall "
            f"({', '.join(_FACES[: 2 * dim])}, obstacle, default); got {impedance!r}"
        )
    out = {}
    for key in (*_FACES[: 2 * dim], "obstacle"):
        z = spec.get(key, spec.get("default"))
        if z is None or z == math.inf:
            out[key] = 0.0
        elif isinstance(z, (int, float)) and math.isfinite(z) and z > 0:
            out[key] = rho * c / float(z)
        else:
            raise ValueError(f"impedance[{key!r}] must be positive (Pa s/m) or None; got {z!r}")
    return out


def _corner_mean(a: np.ndarray, axes) -> np.ndarray:
    """Mean of ``a`` over index pairs (k, k+1) along ``axes`` (each such axis shrinks by 1)."""
    for d in axes:
        lo = [slice(None)] * a.ndim
        hi = [slice(None)] * a.ndim
        lo[d], hi[d] = slice(0, -1), slice(1, None)
        a = 0.5 * (a[tuple(lo)] + a[tuple(hi)])
    return a


def _operators(air: np.ndarray, spacing, beta: dict[str, float]):
    """Node volume fractions, edge open fractions and admittance-weighted wall areas.

    ``vol`` (nodes): air fraction of the node's dual cell. ``open[d]`` (edges along d):
    air fraction of the edge's dual face. ``wall``: sum over the wall faces touching a
    node of ``(face share) * beta / h_d``, in 1/m.
    """
    dim = air.ndim
    pad = np.pad(air.astype(float), 1)
    vol = _corner_mean(pad, range(dim))
    opens, wall = [], np.zeros(vol.shape)
    for d in range(dim):
        others = [k for k in range(dim) if k != d]
        opens.append(_corner_mean(pad[_inner(d, dim)], others))
        lo = [slice(None)] * dim
        hi = [slice(None)] * dim
        lo[d], hi[d] = slice(0, -1), slice(1, None)
        faces = pad[tuple(lo)] != pad[tuple(hi)]  # (N_d + 1 node planes, padded others)
        weight = np.full(faces.shape, beta["obstacle"])
        first = [slice(None)] * dim
        first[d] = 0
        weight[tuple(first)] = beta[_FACES[2 * d]]
        first[d] = -1
        weight[tuple(first)] = beta[_FACES[2 * d + 1]]
        wall += _corner_mean(faces * weight, others) / spacing[d]
    return vol, opens, wall


def _inner(d: int, dim: int):
    """Edges along axis ``d`` are between padded cells 1..N_d: drop the pad on axis d."""
    sl = [slice(None)] * dim
    sl[d] = slice(1, -1)
    return tuple(sl)


def solve_room(
    room,
    source,
    *,
    duration: float,
    fmax: float | None = None,
    sigma: float | None = None,
    impedance=None,
    c: float = C_AIR,
    rho: float = RHO_AIR,
    ppw: float = 20.0,
    cells=None,
    courant: float = 0.99,
    n_times: int | None = None,
    receivers=None,
    store_field: bool = True,
    field_stride: int = 1,
    energy: bool = False,
    min_ppw: float = 10.0,
    dtype=None,
    device=None,
) -> WaveSolution:
    """Pressure in a room with rigid or impedance walls, by staggered p-v FDTD.

    Parameters
    ----------
    room : Room or sequence of float
        The room (:class:`Room`), or the dimensions (m) of a box.
    source : (D,) array_like
        Centre of the Gaussian initial pulse ``exp(-|x - x_s|^2 / sigma^2)`` (1 Pa
        peak, zero initial velocity) (m). Must lie in the air.
    duration : float
        Final time (s).
    fmax, sigma : float, optional
        Maximum frequency (Hz) and pulse width ``sigma = 2c/(pi fmax)`` (m): give one.
    impedance : None, float or dict
        Wall impedance (Pa s/m): ``None`` for rigid walls, a number for every wall, or a
        dict per wall with keys ``x0, x1, y0, y1, z0, z1`` (faces of the bounding box),
        ``obstacle`` (walls of the solid part) and ``default``; a missing key takes
        ``default``, ``None`` is rigid.
    c, rho : float
        Speed of sound (m/s) and density (kg/m^3).
    ppw : float
        Points per wavelength at ``fmax`` used to choose the grid when ``cells`` is None.
    cells : int or sequence of int, optional
        Grid intervals per axis (overrides ``ppw``).
    courant : float
        Normalised Courant number ``c dt sqrt(sum 1/h_d^2)`` in (0, 1].
    n_times : int, optional
        Uniform output times from 0 to ``duration`` (default ``2 fmax duration + 1``).
    receivers : (R, D) array_like, optional
        Receiver positions (m), in the air; impulse responses by multilinear
        interpolation of the node pressures.
    store_field, field_stride : bool, int
        Keep the node pressures (every ``field_stride``-th node) at the output times.
    energy : bool
        Record the discrete acoustic energy (J, or J/m in 2D) at the output times.
    min_ppw : float
        Warn (with the implied dispersion error) below this many points per wavelength.
    dtype, device : torch dtype (or its name) and device, optional
        Default ``torch.float64`` on the CPU.

    Returns
    -------
    WaveSolution
        With ``active`` (stored nodes in the air) and ``energy`` if requested.

    Raises
    ------
    ValueError
        A source outside the room or inside its solid part (named), receivers outside
        the air (every one named), a CFL violation, fewer than 2 points per wavelength.

    Warns
    -----
    UserWarning
        Fewer than ``min_ppw`` points per wavelength, with the phase-speed error it
        implies at ``fmax`` and the phase lag it accumulates over ``duration``.

    Examples
    --------
    >>> import numpy as np
    >>> sol = solve_room(Room.l_shape([2.0, 2.0, 2.0]), [0.6, 0.6, 1.0], duration=0.004,
    ...                  fmax=500.0, ppw=8, min_ppw=0, receivers=[[0.5, 1.5, 1.0]],
    ...                  impedance=7400.0, energy=True, store_field=False)
    >>> sol.responses.shape, bool(np.all(np.diff(sol.energy) <= 0))
    ((1, 5), True)
    """
    import torch

    room = room if isinstance(room, Room) else Room.box(room)
    lengths, dim = room.lengths, room.dim
    if not (math.isfinite(c) and c > 0 and math.isfinite(rho) and rho > 0):
        raise ValueError(f"c and rho must be positive; got c={c!r}, rho={rho!r}")
    if not (math.isfinite(duration) and duration > 0):
        raise ValueError(f"duration must be a positive time in seconds; got {duration!r}")
    fmax, sigma = _pulse_parameters(fmax, sigma, c)
    src = room.check_source(source)
    rec = None if receivers is None else room.check_receivers(receivers)
    beta = _admittances(impedance, dim, rho, c)
    cells, spacing, actual_ppw = _grid(lengths, fmax, c, ppw, cells)
    if n_times is None:
        n_times = round(2.0 * fmax * duration) + 1
    n_times, out_dt, dt, substeps = _time_step(
        duration, n_times, fmax, c, spacing, courant=courant, dt=None
    )
    lam = c * dt * math.sqrt(sum(1.0 / h**2 for h in spacing))
    if actual_ppw < min_ppw:
        err = dispersion_error(actual_ppw, lam, dim)
        warnings.warn(
            f"the grid has only {actual_ppw:.1f} points per wavelength at fmax={fmax:g} Hz: "
            f"the scheme's sound speed is {100 * err:.2g}% low along the grid axes there, a "
            f"phase lag of {fmax * duration * err:.2g} periods after {duration:g} s. Use "
            f"ppw >= {min_ppw:g} (20 or more for reference data)",
            UserWarning,
            stacklevel=2,
        )
    if int(field_stride) != field_stride or field_stride < 1:
        raise ValueError(f"field_stride must be a positive integer; got {field_stride!r}")
    stride = int(field_stride)
    tdtype = torch.float64 if dtype is None else dtype
    if isinstance(tdtype, str):
        tdtype = getattr(torch, tdtype)
    dev = torch.device("cpu") if device is None else torch.device(device)

    vol, opens, wall = _operators(room.air_cells(cells), spacing, beta)
    coords = wave_grid(lengths, cells)
    active = vol > 0
    p0 = np.where(active, gaussian_pulse(coords, src, sigma), 0.0)
    scheme = _Staggered(p0, vol, opens, wall, spacing, dt, c, rho, tdtype, dev)
    keep = store_field
    field = np.empty((n_times, *p0[(slice(None, None, stride),) * dim].shape)) if keep else None
    responses = None if rec is None else np.empty((len(rec), n_times))
    energies = np.empty(n_times) if energy else None
    if rec is not None:
        idx, wts = _interp_weights(rec, spacing, cells)
        grid = tuple(n + 1 for n in cells)
        flat = np.ravel_multi_index(tuple(idx[..., d].T for d in range(dim)), grid).T
        flat_t = torch.as_tensor(flat, device=dev)
        wts_t = torch.as_tensor(wts, dtype=tdtype, device=dev)
    for k in range(n_times):
        if k:
            for _ in range(substeps):
                scheme.step()
        if keep:
            field[k] = scheme.p[(slice(None, None, stride),) * dim].cpu().numpy()
        if rec is not None:
            responses[:, k] = (scheme.p.reshape(-1)[flat_t] * wts_t).sum(1).cpu().numpy()
        if energy:
            energies[k] = scheme.energy()
    return WaveSolution(
        times=np.arange(n_times) * out_dt,
        coords=tuple(x[::stride] for x in coords),
        field=field,
        receivers=rec,
        responses=responses,
        dt=dt,
        spacing=spacing,
        courant=lam,
        ppw=actual_ppw,
        n_steps=(n_times - 1) * substeps,
        energy=energies,
        active=active[(slice(None, None, stride),) * dim],
    )


def _grid(lengths, fmax, c, ppw, cells):
    """``(cells, spacing, points per wavelength)``; refuse fewer than 2 ppw."""
    if cells is None:
        if not ppw > 0:
            raise ValueError(f"ppw must be positive; got {ppw!r}")
        h_target = c / (fmax * ppw)
        cells = tuple(max(2, math.ceil(L / h_target - 1e-9)) for L in lengths)
    cells = _broadcast_cells(cells, len(lengths))
    spacing = tuple(L / n for L, n in zip(lengths, cells, strict=True))
    actual = c / (fmax * max(spacing))
    if actual <= 2.0:
        raise ValueError(
            f"the grid has {actual:.2f} points per wavelength at fmax={fmax:g} Hz (spacing "
            f"{max(spacing):.4g} m); it cannot represent the pulse: refine cells or raise ppw"
        )
    return cells, spacing, actual


class _Staggered:
    """Leapfrog state: node pressures ``p`` at step n, edge velocities at n - 1/2."""

    def __init__(self, p0, vol, opens, wall, spacing, dt, c, rho, dtype, device):
        import torch

        def t(a):
            return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)

        self.dim = p0.ndim
        safe = np.where(vol > 0, vol, 1.0)
        g = 0.5 * c * dt * wall / safe  # semi-implicit wall loss per step
        self.a = t((1.0 - g) / (1.0 + g) * (vol > 0))
        self.b = t(rho * c * c * dt / (safe * (1.0 + g)) * (vol > 0))
        self.open_h = [t(o / h) for o, h in zip(opens, spacing, strict=True)]
        self.vcoef = [t((o > 0) * dt / (rho * h)) for o, h in zip(opens, spacing, strict=True)]
        self.p = t(p0)
        # v^{-1/2} = +dt/(2 rho) grad p0, so the first step gives v^{1/2} = -dt/(2 rho) grad p0
        self.v = [0.5 * vc * torch_diff(self.p, d) for d, vc in enumerate(self.vcoef)]
        self.buf = [torch.empty_like(v) for v in self.v]
        self.div = torch.empty_like(self.p)
        # energy weights: node volumes / (2 rho c^2) and edge volumes rho / 2 (m^3)
        cell = math.prod(spacing)
        self.w_p = t(vol * cell / (2 * rho * c * c))
        self.w_v = [t(o * cell * rho / 2) for o in opens]

    def step(self) -> None:
        """One leapfrog step: velocities to n + 1/2, then pressures to n + 1 (in place)."""
        import torch

        div, p = self.div, self.p
        div.zero_()
        for d in range(self.dim):
            n = p.shape[d] - 1
            g = self.buf[d]
            torch.sub(p.narrow(d, 1, n), p.narrow(d, 0, n), out=g)
            g.mul_(self.vcoef[d])
            self.v[d].sub_(g)
            torch.mul(self.open_h[d], self.v[d], out=g)  # flux through the dual faces
            div.narrow(d, 0, n).add_(g)
            div.narrow(d, 1, n).sub_(g)
        div.mul_(self.b)
        p.mul_(self.a).sub_(div)

    def energy(self) -> float:
        """Conserved discrete energy ``sum V p^2/(2 rho c^2) + sum rho A h v^- v^+ / 2``."""
        total = float((self.w_p * self.p * self.p).sum())
        for d in range(self.dim):
            v_next = self.v[d] - self.vcoef[d] * torch_diff(self.p, d)
            total += float((self.w_v[d] * self.v[d] * v_next).sum())
        return total


def torch_diff(p, d: int):
    """Forward difference ``p[i+1] - p[i]`` along axis ``d`` (torch)."""
    n = p.shape[d]
    return p.narrow(d, 1, n - 1) - p.narrow(d, 0, n - 1)
