"""Acoustic wave equation: the FDTD leapfrog solver (1D, 2D or 3D).

The problem is the linear wave equation for the acoustic pressure ``p`` (Pa)

.. math::  p_{tt} = c^2 \\nabla^2 p \\quad \\text{in } [0, L_1] \\times \\dots \\times [0, L_D],

with rigid walls (:math:`\\partial p / \\partial n = 0`), a Gaussian pulse
:math:`p(x, 0) = \\exp(-|x - x_0|^2 / \\sigma^2)` (1 Pa peak) as initial condition and zero
initial velocity. The pulse width follows the maximum frequency of interest,
:math:`\\sigma = 2c / (\\pi f_{max})`: its spatial spectrum is down by
:math:`e^{-4}` (-35 dB) at ``fmax``.

:func:`solve_wave` is the standard rectilinear leapfrog scheme (second order in space and
time, vertex-centred grid, mirrored ghost nodes at the walls), vectorised over the grid,
in any dimension. The exact reference it is tested against is
:func:`pdesurrogates.solvers.reference.modal_wave`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from pdesurrogates.solvers.reference._wave_common import (
    C_AIR,
    _broadcast_cells,
    _check_lengths,
    _check_points,
    _fmax_from_sigma,
    gaussian_pulse,
    pulse_width,
    wave_grid,
)

__all__ = ["WaveSolution", "solve_wave"]


@dataclass(frozen=True)
class WaveSolution:
    """Result of :func:`solve_wave`.

    Attributes
    ----------
    times : ndarray, shape (T,)
        Output times (s), uniform from 0.
    coords : tuple of D ndarrays
        Node coordinates of the stored field (m); every ``field_stride``-th solver node.
    field : ndarray, shape (T, n_1, ..., n_D) or None
        Pressure (Pa) at the output times on ``coords``; ``None`` if not stored.
    receivers : ndarray, shape (R, D) or None
        Receiver positions (m).
    responses : ndarray, shape (R, T) or None
        Impulse responses: pressure (Pa) at the receivers (multilinear interpolation).
    dt : float
        Solver time step (s).
    spacing : tuple of float
        Solver grid spacing per axis (m).
    courant : float
        Normalised Courant number ``c dt sqrt(sum 1/h_d^2)`` (stable if <= 1).
    ppw : float
        Points per wavelength at ``fmax`` on the solver grid (coarsest axis).
    n_steps : int
        Number of leapfrog steps taken.
    energy : ndarray, shape (T,) or None
        Discrete acoustic energy (J) at the output times, if recorded
        (:func:`~pdesurrogates.solvers.reference.solve_room` with ``energy=True``).
    active : ndarray of bool or None
        Stored nodes that lie in the air (:func:`~pdesurrogates.solvers.reference.solve_room`);
        ``None`` means every node.
    """

    times: np.ndarray
    coords: tuple[np.ndarray, ...]
    field: np.ndarray | None
    receivers: np.ndarray | None
    responses: np.ndarray | None
    dt: float
    spacing: tuple[float, ...]
    courant: float
    ppw: float
    n_steps: int
    energy: np.ndarray | None = None
    active: np.ndarray | None = None


def _interp_weights(points: np.ndarray, spacing, cells):
    """Corner indices (R, 2^D, D) and weights (R, 2^D) of multilinear interpolation."""
    r, dim = points.shape
    base = np.empty((r, dim), dtype=np.int64)
    frac = np.empty((r, dim))
    for d in range(dim):
        s = points[:, d] / spacing[d]
        i = np.clip(np.floor(s).astype(np.int64), 0, cells[d] - 1)
        base[:, d] = i
        frac[:, d] = s - i
    corners = np.array(np.meshgrid(*[[0, 1]] * dim, indexing="ij")).reshape(dim, -1).T
    idx = base[:, None, :] + corners[None, :, :]
    w = np.prod(np.where(corners[None] == 1, frac[:, None, :], 1.0 - frac[:, None, :]), axis=2)
    return idx, w


def solve_wave(
    lengths,
    source,
    *,
    duration: float,
    fmax: float | None = None,
    sigma: float | None = None,
    c: float = C_AIR,
    ppw: float = 20.0,
    cells=None,
    courant: float = 0.99,
    dt: float | None = None,
    n_times: int | None = None,
    receivers=None,
    store_field: bool = True,
    field_stride: int = 1,
    min_ppw: float = 10.0,
    dtype=np.float64,
) -> WaveSolution:
    """Solve the rigid-walled acoustic wave equation by FDTD (leapfrog, 2nd order).

    The scheme is ``p^{n+1} = 2 p^n - p^{n-1} + (c dt)^2 Δ_h p^n`` with the (2D+1)-point
    Laplacian on a vertex-centred grid; rigid walls mirror the ghost node
    (``p_{-1} = p_1``). The first step is the Taylor start
    ``p^1 = p^0 + (c dt)^2 Δ_h p^0 / 2`` (zero initial velocity). Every update is a
    whole-array numpy expression; there is no Python loop over grid points.

    Parameters
    ----------
    lengths : sequence of float
        Room dimensions ``(L_x[, L_y[, L_z]])`` (m); the domain is ``[0, L_1] x ...``.
    source : (D,) array_like
        Centre of the Gaussian initial pulse (m). Must lie inside the room.
    duration : float
        Final time (s).
    fmax : float, optional
        Maximum frequency of interest (Hz). Sets ``sigma = 2c/(pi fmax)`` if ``sigma`` is
        not given, the grid (``ppw`` points per shortest wavelength) if ``cells`` is not
        given, and the default output rate (2 samples per period of ``fmax``).
    sigma : float, optional
        Pulse width (m). If only ``sigma`` is given, ``fmax = 2c/(pi sigma)``.
    c : float
        Speed of sound (m/s).
    ppw : float
        Points per wavelength at ``fmax`` used to choose the grid when ``cells`` is None.
    cells : int or sequence of int, optional
        Number of grid intervals per axis (overrides ``ppw``).
    courant : float
        Normalised Courant number ``c dt sqrt(sum_d 1/h_d^2)``; the scheme is stable for
        values <= 1 (``dt`` is then shortened so that the output interval is a whole
        number of steps).
    dt : float, optional
        Explicit time step (s). Checked against the CFL limit; the output interval must be
        a whole multiple of it.
    n_times : int, optional
        Number of uniform output times from 0 to ``duration`` inclusive (default
        ``round(2 fmax duration) + 1``).
    receivers : (R, D) array_like, optional
        Receiver positions (m) at which impulse responses are recorded.
    store_field : bool
        Keep the whole pressure field at the output times.
    field_stride : int
        Store every ``field_stride``-th node of the field along each axis.
    min_ppw : float
        Warn when the grid has fewer points per wavelength than this at ``fmax``.
    dtype : numpy dtype
        Floating type of the time stepping (``float64`` or ``float32``).

    Returns
    -------
    WaveSolution

    Raises
    ------
    ValueError
        For a source or receiver outside the room, a CFL violation (Courant number > 1),
        fewer than 2 points per wavelength at ``fmax``, or inconsistent times.

    Warns
    -----
    UserWarning
        If the grid has fewer than ``min_ppw`` points per wavelength at ``fmax``: the
        scheme's dispersion error then grows quickly with propagation distance.

    Examples
    --------
    A pulse in a 2 m tube at the "magic" Courant number 1 (exact propagation):

    >>> import numpy as np
    >>> sol = solve_wave([2.0], [1.0], duration=0.002, fmax=1000.0, courant=1.0,
    ...                  receivers=[[1.5]])
    >>> sol.field.shape, sol.responses.shape
    ((5, 118), (1, 5))
    >>> # at t = 0 the receiver sees the pulse 0.5 m from its centre
    >>> bool(abs(sol.responses[0, 0] - np.exp(-0.25 / pulse_width(1000.0) ** 2)) < 1e-4)
    True
    """
    lengths = _check_lengths(lengths)
    if not (math.isfinite(c) and c > 0):
        raise ValueError(f"c must be a positive speed of sound in m/s; got {c!r}")
    if not (math.isfinite(duration) and duration > 0):
        raise ValueError(f"duration must be a positive time in seconds; got {duration!r}")
    fmax, sigma = _pulse_parameters(fmax, sigma, c)
    src = _check_points("source", source, lengths, single=True)
    rec = (
        None if receivers is None else _check_points("receivers", receivers, lengths, single=False)
    )
    cells, spacing, actual_ppw = _solver_grid(lengths, fmax, c, ppw, cells, min_ppw)
    n_times, out_dt, dt, substeps = _time_step(
        duration, n_times, fmax, c, spacing, courant=courant, dt=dt
    )
    if int(field_stride) != field_stride or field_stride < 1:
        raise ValueError(f"field_stride must be a positive integer; got {field_stride!r}")
    field_stride = int(field_stride)

    coords = wave_grid(lengths, cells)
    scheme = _Leapfrog(gaussian_pulse(coords, src, sigma), spacing, c * dt, np.dtype(dtype))
    out = _Recorder(scheme, n_times, rec, spacing, cells, field_stride if store_field else 0)
    out.record(0)
    scheme.taylor_start()
    n_steps = 1
    for k in range(1, n_times):
        for _ in range(substeps - 1 if k == 1 else substeps):
            scheme.step()
            n_steps += 1
        out.record(k)

    return WaveSolution(
        times=np.arange(n_times) * out_dt,
        coords=tuple(x[::field_stride] for x in coords),
        field=out.field,
        receivers=rec,
        responses=out.responses,
        dt=dt,
        spacing=spacing,
        courant=c * dt * math.sqrt(sum(1.0 / h**2 for h in spacing)),
        ppw=actual_ppw,
        n_steps=n_steps,
    )


def _pulse_parameters(fmax, sigma, c) -> tuple[float, float]:
    """``(fmax, sigma)`` from whichever of the two is given (``sigma = 2c/(pi fmax)``)."""
    if sigma is None and fmax is None:
        raise ValueError("give fmax (Hz) or sigma (m) to set the pulse width")
    if sigma is None:
        sigma = pulse_width(fmax, c)
    if not sigma > 0:
        raise ValueError(f"sigma must be a positive pulse width in metres; got {sigma!r}")
    if fmax is None:
        fmax = _fmax_from_sigma(sigma, c)
    if not fmax > 0:
        raise ValueError(f"fmax must be a positive frequency in Hz; got {fmax!r}")
    return fmax, sigma


def _solver_grid(lengths, fmax, c, ppw, cells, min_ppw):
    """``(cells, spacing, points per wavelength)``; refuse < 2 ppw, warn below ``min_ppw``."""
    if cells is None:
        if not ppw > 0:
            raise ValueError(f"ppw must be positive; got {ppw!r}")
        h_target = c / (fmax * ppw)
        cells = tuple(max(2, math.ceil(L / h_target - 1e-9)) for L in lengths)
    cells = _broadcast_cells(cells, len(lengths))
    spacing = tuple(L / n for L, n in zip(lengths, cells, strict=True))
    actual_ppw = c / (fmax * max(spacing))
    if actual_ppw < 2.0:
        raise ValueError(
            f"the grid has {actual_ppw:.2f} points per wavelength at fmax={fmax:g} Hz "
            f"(spacing {max(spacing):.4g} m); it cannot represent the pulse. Use at least "
            "10 (20 or more for long responses): refine cells or raise ppw"
        )
    if actual_ppw < min_ppw:
        warnings.warn(
            f"the grid has only {actual_ppw:.1f} points per wavelength at fmax={fmax:g} Hz; "
            "the leapfrog scheme's dispersion error grows with distance travelled (about "
            "20% after 50 ms at 10 ppw in a 3 m room). Use ppw >= 20 for reference data",
            UserWarning,
            stacklevel=3,
        )
    return cells, spacing, actual_ppw


def _time_step(duration, n_times, fmax, c, spacing, *, courant, dt):
    """``(n_times, output interval, dt, steps per output interval)`` under the CFL limit."""
    if n_times is None:
        n_times = round(2.0 * fmax * duration) + 1
    if int(n_times) != n_times or n_times < 2:
        raise ValueError(f"n_times must be an integer >= 2; got {n_times!r}")
    n_times = int(n_times)
    out_dt = duration / (n_times - 1)
    inv_h = math.sqrt(sum(1.0 / h**2 for h in spacing))
    if dt is None:
        if not (0 < courant <= 1.0):
            raise ValueError(
                f"courant={courant!r} violates the CFL condition c*dt*sqrt(sum 1/h^2) <= 1 "
                "of the leapfrog scheme; use a value in (0, 1]"
            )
        substeps = math.ceil(out_dt * c * inv_h / courant - 1e-9)
        return n_times, out_dt, out_dt / substeps, substeps
    if not dt > 0:
        raise ValueError(f"dt must be a positive time step in seconds; got {dt!r}")
    lam = c * dt * inv_h
    if lam > 1.0 + 1e-12:
        raise ValueError(
            f"dt={dt:.4g} s violates the CFL condition: c*dt*sqrt(sum 1/h^2) = {lam:.4f} > 1 "
            f"on this grid (spacing {spacing}); use dt <= {1.0 / (c * inv_h):.4g} s "
            "or a coarser grid"
        )
    ratio = out_dt / dt
    substeps = round(ratio)
    if substeps < 1 or abs(ratio - substeps) > 1e-6 * ratio:
        raise ValueError(
            f"the output interval {out_dt:.6g} s is not a whole multiple of dt={dt:.6g} s; "
            "pick dt = duration / ((n_times - 1) * k) for an integer k"
        )
    return n_times, out_dt, dt, substeps


class _Leapfrog:
    """The leapfrog state on padded arrays (one mirrored ghost layer: rigid walls).

    ``p^{n+1} = centre p^n - p^{n-1} + sum_d r_d (p_{+d} + p_{-d})`` with
    ``r_d = (c dt / h_d)^2`` and ``centre = 2 - 2 sum_d r_d``; whole-array updates only.
    """

    def __init__(self, p0: np.ndarray, spacing, cdt: float, dtype: np.dtype):
        dim = p0.ndim
        self.dim = dim
        self.r = [dtype.type((cdt / h) ** 2) for h in spacing]
        self.centre = dtype.type(2.0 - 2.0 * sum(float(v) for v in self.r))
        self.shape = tuple(s + 2 for s in p0.shape)
        self.inner = tuple(slice(1, -1) for _ in range(dim))
        self.cur = np.zeros(self.shape, dtype=dtype)
        self.prev = np.zeros(self.shape, dtype=dtype)
        self.cur[self.inner] = p0
        self.plus = [self._shifted(d, 1) for d in range(dim)]
        self.minus = [self._shifted(d, -1) for d in range(dim)]
        self.buf = np.empty(p0.shape, dtype=dtype)
        self.tmp = np.empty_like(self.buf)

    def _shifted(self, d: int, off: int):
        return tuple(
            slice(1 + off, self.shape[k] - 1 + off) if k == d else slice(1, -1)
            for k in range(self.dim)
        )

    @property
    def pressure(self) -> np.ndarray:
        """The current pressure on the grid nodes (a view)."""
        return self.cur[self.inner]

    def _ghosts(self, a: np.ndarray) -> None:
        for d in range(self.dim):
            lo, src_lo = [slice(None)] * self.dim, [slice(None)] * self.dim
            lo[d], src_lo[d] = 0, 2
            a[tuple(lo)] = a[tuple(src_lo)]
            hi, src_hi = [slice(None)] * self.dim, [slice(None)] * self.dim
            hi[d], src_hi[d] = -1, -3
            a[tuple(hi)] = a[tuple(src_hi)]

    def _neighbours(self, a: np.ndarray) -> np.ndarray:
        """``buf = sum_d r_d (a_{+d} + a_{-d})``."""
        out, tmp = self.buf, self.tmp
        np.add(a[self.plus[0]], a[self.minus[0]], out=out)
        out *= self.r[0]
        for d in range(1, self.dim):
            np.add(a[self.plus[d]], a[self.minus[d]], out=tmp)
            np.multiply(tmp, self.r[d], out=tmp)
            out += tmp
        return out

    def taylor_start(self) -> None:
        """``p^1 = p^0 + (c dt)^2 lap p^0 / 2`` (zero initial velocity)."""
        self._ghosts(self.cur)
        nb = self._neighbours(self.cur)
        self.prev[self.inner] = self.cur[self.inner]
        self.cur[self.inner] = nb * 0.5 + self.cur[self.inner] * (0.5 * self.centre)

    def step(self) -> None:
        """One leapfrog step; ``prev`` becomes ``p^{n+1}`` and the buffers swap."""
        self._ghosts(self.cur)
        nb = self._neighbours(self.cur)
        pv = self.prev[self.inner]
        np.subtract(nb, pv, out=pv)
        pv += self.centre * self.cur[self.inner]
        self.prev, self.cur = self.cur, self.prev


class _Recorder:
    """Stores the field (every ``stride``-th node; none if 0) and receiver pressures."""

    def __init__(self, scheme: _Leapfrog, n_times, rec, spacing, cells, stride: int):
        self.scheme = scheme
        dtype = scheme.cur.dtype
        dim = len(cells)
        self.field = self.responses = None
        if stride:
            self.sl = tuple(slice(None, None, stride) for _ in range(dim))
            fshape = tuple(len(range(0, n + 1, stride)) for n in cells)
            self.field = np.empty((n_times, *fshape), dtype=dtype)
        if rec is not None:
            idx, wts = _interp_weights(rec, spacing, cells)
            grid = tuple(n + 1 for n in cells)
            self.flat_idx = np.ravel_multi_index(tuple(idx[..., d].T for d in range(dim)), grid).T
            self.wts = wts.astype(dtype)
            self.responses = np.empty((len(rec), n_times), dtype=dtype)

    def record(self, k: int) -> None:
        view = self.scheme.pressure
        if self.field is not None:
            self.field[k] = view[self.sl]
        if self.responses is not None:
            self.responses[:, k] = (view.reshape(-1)[self.flat_idx] * self.wts).sum(axis=1)
