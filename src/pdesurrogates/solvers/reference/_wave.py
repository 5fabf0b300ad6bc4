"""Acoustic wave equation: an FDTD leapfrog solver and exact modal solutions.

The problem is the linear wave equation for the acoustic pressure ``p`` (Pa)

.. math::  p_{tt} = c^2 \\nabla^2 p \\quad \\text{in } [0, L_1] \\times \\dots \\times [0, L_D],

with rigid walls (:math:`\\partial p / \\partial n = 0`), a Gaussian pulse
:math:`p(x, 0) = \\exp(-|x - x_0|^2 / \\sigma^2)` (1 Pa peak) as initial condition and zero
initial velocity. The pulse width follows the maximum frequency of interest,
:math:`\\sigma = 2c / (\\pi f_{max})`: its spatial spectrum is down by
:math:`e^{-4}` (-35 dB) at ``fmax``.

:func:`solve_wave` is the standard rectilinear leapfrog scheme (second order in space and
time, vertex-centred grid, mirrored ghost nodes at the walls), vectorised over the grid.
:func:`modal_wave` is the exact solution of the same problem in a rectangular room as a
cosine-mode sum; it is the reference the solver is tested against.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "C_AIR",
    "AcousticsSetup",
    "WaveSolution",
    "acoustics_dataset_layout",
    "acoustics_sample",
    "acoustics_setup",
    "default_receivers",
    "gaussian_pulse",
    "modal_wave",
    "pulse_width",
    "solve_wave",
    "wave_grid",
]

C_AIR = 343.0
"""Speed of sound in air at 20 °C, m/s."""

_AXES = ("x", "y", "z")


def pulse_width(fmax: float, c: float = C_AIR) -> float:
    """Width ``sigma = 2 c / (pi fmax)`` (m) of the Gaussian pulse band-limited to ``fmax``.

    Examples
    --------
    >>> round(pulse_width(1000.0), 4)
    0.2184
    """
    if not fmax > 0:
        raise ValueError(f"fmax must be a positive frequency in Hz; got {fmax!r}")
    return 2.0 * c / (math.pi * fmax)


def _fmax_from_sigma(sigma: float, c: float) -> float:
    return 2.0 * c / (math.pi * sigma)


def gaussian_pulse(coords: Sequence[np.ndarray], source: Sequence[float], sigma: float):
    """The pulse ``exp(-|x - source|^2 / sigma^2)`` on the tensor grid ``coords``.

    Parameters
    ----------
    coords : sequence of D 1-D arrays
        Node coordinates along each axis (m).
    source : (D,) array_like
        Pulse centre (m).
    sigma : float
        Pulse width (m).

    Returns
    -------
    ndarray, shape (len(coords[0]), ..., len(coords[D-1]))
        ``ij``-indexed grid values (Pa).

    Examples
    --------
    >>> import numpy as np
    >>> gaussian_pulse([np.array([0.0, 1.0])], [1.0], 1.0).tolist()
    [0.36787944117144233, 1.0]
    """
    source = np.asarray(source, dtype=float)
    out = np.ones([len(c) for c in coords])
    for d, c in enumerate(coords):
        shape = [1] * len(coords)
        shape[d] = len(c)
        out = out * np.exp(-((np.asarray(c, dtype=float) - source[d]) ** 2) / sigma**2).reshape(
            shape
        )
    return out


def _check_lengths(lengths) -> tuple[float, ...]:
    lengths = tuple(float(v) for v in np.atleast_1d(np.asarray(lengths, dtype=float)))
    if not 1 <= len(lengths) <= 3:
        raise ValueError(f"lengths must have 1, 2 or 3 entries (m); got {len(lengths)}")
    if not all(math.isfinite(v) and v > 0 for v in lengths):
        raise ValueError(f"lengths must be positive room dimensions in metres; got {lengths}")
    return lengths


def _check_points(name: str, points, lengths: tuple[float, ...], *, single: bool) -> np.ndarray:
    arr = np.asarray(points, dtype=float)
    dim = len(lengths)
    if single:
        arr = arr.reshape(-1)
        if arr.shape != (dim,):
            raise ValueError(f"{name} must be a position with {dim} coordinates (m); got {arr}")
        check = arr[None, :]
    else:
        if arr.ndim == 1 and dim == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[1] != dim:
            raise ValueError(
                f"{name} must have shape (n, {dim}) (positions in m); got shape {arr.shape}"
            )
        check = arr
    if not np.all(np.isfinite(check)):
        raise ValueError(f"{name} contains NaN or Inf")
    upper = np.asarray(lengths)
    bad = np.any((check < 0) | (check > upper), axis=1)
    if np.any(bad):
        box = " x ".join(f"[0, {v:g}]" for v in lengths)
        first = check[np.argmax(bad)]
        raise ValueError(
            f"{name} {first.tolist()} is outside the domain {box} m; place it inside the room"
        )
    return arr


def wave_grid(lengths, cells) -> tuple[np.ndarray, ...]:
    """Node coordinates of the vertex-centred grid with ``cells`` intervals per axis.

    Examples
    --------
    >>> [c.tolist() for c in wave_grid([1.0, 2.0], [2, 2])]
    [[0.0, 0.5, 1.0], [0.0, 1.0, 2.0]]
    """
    lengths = _check_lengths(lengths)
    cells = _broadcast_cells(cells, len(lengths))
    return tuple(np.linspace(0.0, L, n + 1) for L, n in zip(lengths, cells, strict=True))


def _broadcast_cells(cells, dim: int) -> tuple[int, ...]:
    arr = np.atleast_1d(np.asarray(cells))
    if arr.size == 1:
        arr = np.repeat(arr, dim)
    if arr.shape != (dim,) or not np.all(arr == np.round(arr)) or np.any(arr < 2):
        raise ValueError(f"cells must be {dim} integers >= 2 (intervals per axis); got {cells!r}")
    return tuple(int(v) for v in arr)


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
    dim = len(lengths)
    if not (math.isfinite(c) and c > 0):
        raise ValueError(f"c must be a positive speed of sound in m/s; got {c!r}")
    if not (math.isfinite(duration) and duration > 0):
        raise ValueError(f"duration must be a positive time in seconds; got {duration!r}")
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
    src = _check_points("source", source, lengths, single=True)
    rec = (
        None if receivers is None else _check_points("receivers", receivers, lengths, single=False)
    )

    if cells is None:
        if not ppw > 0:
            raise ValueError(f"ppw must be positive; got {ppw!r}")
        h_target = c / (fmax * ppw)
        cells = tuple(max(2, math.ceil(L / h_target - 1e-9)) for L in lengths)
    cells = _broadcast_cells(cells, dim)
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
            stacklevel=2,
        )

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
        dt = out_dt / substeps
    else:
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
    lam_total = c * dt * inv_h
    if int(field_stride) != field_stride or field_stride < 1:
        raise ValueError(f"field_stride must be a positive integer; got {field_stride!r}")
    field_stride = int(field_stride)

    dtype = np.dtype(dtype)
    coords = wave_grid(lengths, cells)
    r = [dtype.type((c * dt / h) ** 2) for h in spacing]
    centre = dtype.type(2.0 - 2.0 * sum(float(v) for v in r))

    # Padded arrays: one ghost layer each side, mirrored (rigid wall, p_{-1} = p_1).
    shape = tuple(n + 3 for n in cells)
    inner = tuple(slice(1, -1) for _ in range(dim))
    cur = np.zeros(shape, dtype=dtype)
    prev = np.zeros(shape, dtype=dtype)
    cur[inner] = gaussian_pulse(coords, src, sigma)

    def shifted(d: int, off: int):
        return tuple(
            slice(1 + off, shape[k] - 1 + off) if k == d else slice(1, -1) for k in range(dim)
        )

    def ghosts(a: np.ndarray) -> None:
        for d in range(dim):
            lo = [slice(None)] * dim
            src_lo = [slice(None)] * dim
            lo[d], src_lo[d] = 0, 2
            a[tuple(lo)] = a[tuple(src_lo)]
            hi = [slice(None)] * dim
            src_hi = [slice(None)] * dim
            hi[d], src_hi[d] = -1, -3
            a[tuple(hi)] = a[tuple(src_hi)]

    plus = [shifted(d, 1) for d in range(dim)]
    minus = [shifted(d, -1) for d in range(dim)]
    buf = np.empty(tuple(n + 1 for n in cells), dtype=dtype)
    tmp = np.empty_like(buf)

    def neighbours(a: np.ndarray, out: np.ndarray) -> None:
        """out = sum_d r_d (a_{+d} + a_{-d})"""
        np.add(a[plus[0]], a[minus[0]], out=out)
        out *= r[0]
        for d in range(1, dim):
            np.add(a[plus[d]], a[minus[d]], out=tmp)
            np.multiply(tmp, r[d], out=tmp)
            out += tmp

    if rec is not None:
        idx, wts = _interp_weights(rec, spacing, cells)
        flat_idx = np.ravel_multi_index(tuple(idx[..., d].T for d in range(dim)), buf.shape).T
        wts = wts.astype(dtype)
        responses = np.empty((len(rec), n_times), dtype=dtype)
    field_sl = tuple(slice(None, None, field_stride) for _ in range(dim))
    field = None
    if store_field:
        fshape = tuple(len(range(0, n + 1, field_stride)) for n in cells)
        field = np.empty((n_times, *fshape), dtype=dtype)

    def record(k: int) -> None:
        view = cur[inner]
        if field is not None:
            field[k] = view[field_sl]
        if rec is not None:
            responses[:, k] = (view.reshape(-1)[flat_idx] * wts).sum(axis=1)

    record(0)
    # Taylor start: p^1 = p^0 + (Δ p^0)/2 with zero initial velocity.
    ghosts(cur)
    neighbours(cur, buf)
    prev[inner] = cur[inner]
    cur[inner] = buf * 0.5 + cur[inner] * (0.5 * centre)
    n_steps = 1
    for k in range(1, n_times):
        n_here = substeps - 1 if k == 1 else substeps
        for _ in range(n_here):
            ghosts(cur)
            neighbours(cur, buf)
            pv = prev[inner]
            # prev <- centre * cur - prev + neighbours  (becomes p^{n+1})
            np.subtract(buf, pv, out=pv)
            pv += centre * cur[inner]
            prev, cur = cur, prev
            n_steps += 1
        record(k)

    return WaveSolution(
        times=np.arange(n_times) * out_dt,
        coords=tuple(x[::field_stride] for x in coords),
        field=field,
        receivers=rec,
        responses=None if rec is None else responses,
        dt=dt,
        spacing=spacing,
        courant=lam_total,
        ppw=actual_ppw,
        n_steps=n_steps,
    )


def _gauss_legendre(a: float, b: float, n: int):
    """Composite 32-point Gauss-Legendre rule with at least ``n`` nodes on [a, b]."""
    x, w = np.polynomial.legendre.leggauss(32)
    panels = max(1, math.ceil(n / 32))
    edges = np.linspace(a, b, panels + 1)
    half = 0.5 * np.diff(edges)[:, None]
    mid = 0.5 * (edges[:-1] + edges[1:])[:, None]
    return (mid + half * x).ravel(), (half * w).ravel()


def _mode_coefficients(L: float, x0: float, sigma: float, n_modes: int) -> np.ndarray:
    """(eps_m / L) * int_0^L exp(-(x-x0)^2/sigma^2) cos(m pi x / L) dx, m = 0..n_modes-1."""
    nq = int(2 * n_modes + 40 * L / sigma + 200)
    xq, wq = _gauss_legendre(0.0, L, nq)
    g = np.exp(-((xq - x0) ** 2) / sigma**2) * wq
    m = np.arange(n_modes)
    coef = np.cos(np.outer(m, xq) * (math.pi / L)) @ g / L
    coef[1:] *= 2.0
    return coef


def modal_wave(
    lengths,
    source,
    *,
    sigma: float,
    times,
    coords: Sequence[np.ndarray] | None = None,
    points=None,
    c: float = C_AIR,
    n_modes: int | Sequence[int] | None = None,
):
    """Exact pressure in a rigid rectangular room by a cosine-mode sum.

    With the Gaussian pulse as initial pressure and zero initial velocity,

    .. math::  p(x, t) = \\sum_{m} A_m \\prod_d \\cos(m_d \\pi x_d / L_d) \\cos(\\omega_m t),
       \\qquad \\omega_m = c\\pi \\sqrt{\\textstyle\\sum_d (m_d / L_d)^2},

    where ``A_m`` is the cosine projection of the pulse restricted to the room (separable,
    computed by Gauss-Legendre quadrature, so pulses truncated by a wall are handled
    exactly). The series is truncated where the pulse spectrum ``exp(-k^2 sigma^2/4)``
    falls below 1e-14 unless ``n_modes`` is given. A pulse that is not negligible at a
    wall has a kink in its even extension there, and the series then converges only like
    ``1/n_modes`` near that wall: pass a larger ``n_modes`` for such sources.

    Parameters
    ----------
    lengths : sequence of float
        Room dimensions (m), 1 to 3 entries.
    source : (D,) array_like
        Pulse centre (m).
    sigma : float
        Pulse width (m).
    times : (T,) array_like
        Times (s).
    coords : sequence of D 1-D arrays, optional
        Evaluate on this tensor grid; returns shape (T, n_1, ..., n_D).
    points : (P, D) array_like, optional
        Evaluate at these points instead; returns shape (P, T).
    c : float
        Speed of sound (m/s).
    n_modes : int or sequence of int, optional
        Number of cosine modes per axis (including the constant mode).

    Returns
    -------
    ndarray
        Pressure (Pa), shape (T, n_1, ..., n_D) for ``coords`` or (P, T) for ``points``.

    Examples
    --------
    At t = 0 the series reproduces the pulse:

    >>> import numpy as np
    >>> p = modal_wave([2.0], [1.0], sigma=0.2, times=[0.0], points=[[1.0], [1.2]])
    >>> np.round(p[:, 0], 10).tolist()
    [1.0, 0.3678794412]
    """
    lengths = _check_lengths(lengths)
    dim = len(lengths)
    src = _check_points("source", source, lengths, single=True)
    if not sigma > 0:
        raise ValueError(f"sigma must be a positive pulse width in metres; got {sigma!r}")
    times = np.atleast_1d(np.asarray(times, dtype=float))
    if (coords is None) == (points is None):
        raise ValueError("give exactly one of coords (a tensor grid) or points (P, D)")
    if n_modes is None:
        kmax = 2.0 * math.sqrt(math.log(1e14)) / sigma
        n_modes = [math.ceil(kmax * L / math.pi) + 2 for L in lengths]
    n_modes = [int(v) for v in np.broadcast_to(np.asarray(n_modes), (dim,))]
    coefs = [
        _mode_coefficients(L, x0, sigma, n) for L, x0, n in zip(lengths, src, n_modes, strict=True)
    ]
    ks = [np.arange(n) * math.pi / L for n, L in zip(n_modes, lengths, strict=True)]
    # omega over the mode lattice, shape (M_1, ..., M_D)
    k2 = np.zeros(n_modes)
    amp = np.ones(n_modes)
    for d in range(dim):
        shape = [1] * dim
        shape[d] = n_modes[d]
        k2 = k2 + ks[d].reshape(shape) ** 2
        amp = amp * coefs[d].reshape(shape)
    omega = c * np.sqrt(k2)
    temporal = np.cos(omega[None] * times.reshape((-1,) + (1,) * dim)) * amp[None]  # (T, M...)
    letters = "abc"[:dim]
    if coords is not None:
        if len(coords) != dim:
            raise ValueError(f"coords must hold {dim} axes; got {len(coords)}")
        basis = [np.cos(np.outer(np.asarray(x, float), k)) for x, k in zip(coords, ks, strict=True)]
        spec = "t" + letters + "," + ",".join(f"{a.upper()}{a}" for a in letters)
        spec += "->t" + letters.upper()
        return np.einsum(spec, temporal, *basis, optimize=True)
    pts = _check_points("points", points, lengths, single=False)
    basis = [np.cos(np.outer(pts[:, d], ks[d])) for d in range(dim)]  # (P, M_d)
    spec = "t" + letters + "," + ",".join(f"p{a}" for a in letters) + "->pt"
    return np.einsum(spec, temporal, *basis, optimize=True)


# --------------------------------------------------------------------------- datasets
def default_receivers(lengths) -> np.ndarray:
    """Five receiver positions (m) spread over the room, away from the centre line.

    Examples
    --------
    >>> default_receivers([2.0]).ravel().tolist()
    [0.2, 0.6, 1.0, 1.4, 1.8]
    """
    lengths = np.asarray(_check_lengths(lengths))
    if len(lengths) == 1:
        frac = np.array([[0.1], [0.3], [0.5], [0.7], [0.9]])
    elif len(lengths) == 2:
        frac = np.array([[0.2, 0.2], [0.8, 0.25], [0.5, 0.5], [0.25, 0.85], [0.85, 0.75]])
    else:
        frac = np.array(
            [
                [0.2, 0.2, 0.3],
                [0.8, 0.25, 0.6],
                [0.5, 0.5, 0.5],
                [0.25, 0.85, 0.7],
                [0.85, 0.75, 0.2],
            ]
        )
    return frac * lengths


@dataclass(frozen=True)
class AcousticsSetup:
    """Everything that defines an acoustics dataset; see :func:`acoustics_setup`."""

    lengths: tuple[float, ...]
    fmax: float
    duration: float
    c: float
    sigma: float
    bounds: tuple[tuple[float, float], ...]
    receivers: tuple[tuple[float, ...], ...]
    resolution: tuple[int, ...]
    stride: int
    n_times: int
    ppw: float

    @property
    def cells(self) -> tuple[int, ...]:
        return tuple(n * self.stride for n in self.resolution)

    def to_dict(self) -> dict:
        return {
            "lengths": list(self.lengths),
            "fmax": self.fmax,
            "duration": self.duration,
            "c": self.c,
            "sigma": self.sigma,
            "source_bounds": [list(b) for b in self.bounds],
            "receivers": [list(r) for r in self.receivers],
            "resolution": list(self.resolution),
            "solver_cells": list(self.cells),
            "n_times": self.n_times,
            "solver_ppw": self.ppw,
        }


def acoustics_setup(
    lengths,
    *,
    fmax: float,
    duration: float,
    c: float = C_AIR,
    margin: float | None = None,
    receivers=None,
    resolution=None,
    ppw: float = 20.0,
    n_times: int | None = None,
) -> AcousticsSetup:
    """Choose grids and source region for an acoustics dataset, validating everything.

    Parameters
    ----------
    lengths : sequence of float
        Room dimensions (m).
    fmax : float
        Maximum frequency (Hz); the pulse width is ``2c/(pi fmax)``.
    duration : float
        Length of the responses (s).
    margin : float, optional
        Sources are drawn uniformly at least ``margin`` m from every wall (default
        ``min(0.6, 0.3 L)`` per axis).
    receivers : (R, D) array_like, optional
        Receiver positions (m); default :func:`default_receivers`.
    resolution : int or sequence of int, optional
        Cells per axis of the stored field (default: about 10 points per wavelength at
        ``fmax``, rounded up to a multiple of 8).
    ppw : float
        Points per wavelength of the solver grid (a whole multiple of ``resolution``).
    n_times : int, optional
        Output samples from 0 to ``duration`` (default ``4 fmax duration + 1``).
    """
    lengths = _check_lengths(lengths)
    dim = len(lengths)
    sigma = pulse_width(fmax, c)
    if not ppw >= 2.0:
        raise ValueError(
            f"ppw={ppw!r} points per wavelength cannot represent fmax={fmax:g} Hz; use at "
            "least 10 (20 or more for 50 ms responses)"
        )
    if not (math.isfinite(duration) and duration > 0):
        raise ValueError(f"duration must be positive (s); got {duration!r}")
    if margin is None:
        pads = [min(0.6, 0.3 * L) for L in lengths]
    else:
        pads = [float(margin)] * dim
    bounds = []
    for L, pad in zip(lengths, pads, strict=True):
        if not 0 <= pad < L / 2:
            raise ValueError(
                f"margin={pad:g} m leaves no room for sources in a {L:g} m room; use a "
                f"margin below {L / 2:g} m"
            )
        bounds.append((pad, L - pad))
    rec = default_receivers(lengths) if receivers is None else receivers
    rec = _check_points("receivers", rec, lengths, single=False)
    if resolution is None:
        h_out = c / (fmax * 10.0)
        resolution = [8 * math.ceil(L / h_out / 8) for L in lengths]
    resolution = _broadcast_cells(resolution, dim)
    h_out = max(L / n for L, n in zip(lengths, resolution, strict=True))
    stride = max(1, math.ceil(ppw * fmax * h_out / c - 1e-9))
    h = max(L / (n * stride) for L, n in zip(lengths, resolution, strict=True))
    solver_ppw = c / (fmax * h)
    if solver_ppw < 10.0:
        warnings.warn(
            f"the solver grid has only {solver_ppw:.1f} points per wavelength at fmax={fmax:g} "
            "Hz; its dispersion error will dominate the data. Use ppw >= 20",
            UserWarning,
            stacklevel=2,
        )
    if n_times is None:
        n_times = round(4.0 * fmax * duration) + 1
    return AcousticsSetup(
        lengths=lengths,
        fmax=float(fmax),
        duration=float(duration),
        c=float(c),
        sigma=sigma,
        bounds=tuple(bounds),
        receivers=tuple(tuple(float(v) for v in r) for r in rec),
        resolution=resolution,
        stride=stride,
        n_times=int(n_times),
        ppw=solver_ppw,
    )


def acoustics_sample(index: int, seed: int, *, setup: AcousticsSetup):
    """One source of an acoustics dataset, its randomness drawn only from ``(seed, index)``.

    Returns
    -------
    fields : dict
        ``"p"``: pressure (Pa) of shape (T, n_x[, n_y]) on the stored grid; ``"ir"``:
        impulse responses (Pa) of shape (T, R) at the receivers. Both float32.
    params : dict
        Source coordinates ``xs`` (and ``ys``, ``zs``) in m.
    """
    rng = np.random.default_rng([int(seed), int(index)])
    low = np.array([b[0] for b in setup.bounds])
    high = np.array([b[1] for b in setup.bounds])
    src = low + (high - low) * rng.random(len(setup.lengths))
    sol = solve_wave(
        setup.lengths,
        src,
        duration=setup.duration,
        fmax=setup.fmax,
        c=setup.c,
        cells=setup.cells,
        n_times=setup.n_times,
        receivers=np.asarray(setup.receivers),
        field_stride=setup.stride,
        min_ppw=0.0,
    )
    fields = {"p": sol.field.astype(np.float32), "ir": sol.responses.T.astype(np.float32)}
    params = {f"{a}s": float(v) for a, v in zip(_AXES, src, strict=False)}
    return fields, params


def acoustics_dataset_layout(setup: AcousticsSetup) -> dict:
    """Keyword arguments for :func:`pdesurrogates.datasets.generate_dataset` (plain dicts)."""
    dim = len(setup.lengths)
    axes = _AXES[:dim]
    coords = {
        "time": np.linspace(0.0, setup.duration, setup.n_times),
        **{
            a: np.linspace(0.0, L, n + 1)
            for a, L, n in zip(axes, setup.lengths, setup.resolution, strict=True)
        },
        "component": np.arange(len(setup.receivers)),
    }
    box = " x ".join(f"[0, {L:g}]" for L in setup.lengths)
    return {
        "coords": coords,
        "fields": {
            "p": {
                "dims": ("sample", "time", *axes),
                "role": "output",
                "units": "Pa",
                "long_name": "acoustic pressure",
            },
            "ir": {
                "dims": ("sample", "time", "component"),
                "role": "output",
                "units": "Pa",
                "long_name": "impulse responses at the receivers (component = receiver index)",
            },
        },
        "params": {
            f"{a}s": {
                "dist": "uniform",
                "bounds": tuple(b),
                "units": "m",
                "long_name": f"source {a}",
            }
            for a, b in zip(axes, setup.bounds, strict=True)
        },
        "units": {"time": "s", **{a: "m" for a in axes}, "component": "1"},
        "dataset_name": f"acoustics{dim}d",
        "pde": (
            f"p_tt = c^2 lap p on {box} m, rigid walls, c = {setup.c:g} m/s; "
            f"p(x, 0) = exp(-|x - x_s|^2 / sigma^2), sigma = {setup.sigma:.6g} m; p_t(x, 0) = 0"
        ),
    }
