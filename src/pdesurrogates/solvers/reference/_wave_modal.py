"""Exact modal solution of the rigid-walled wave equation: the reference FDTD is tested against.

In a rectangular room with rigid walls, a Gaussian initial pressure and zero initial
velocity, the pressure is a cosine-mode sum; :func:`modal_wave` evaluates it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from pdesurrogates.solvers.reference._wave_common import C_AIR, _check_lengths, _check_points

__all__ = ["modal_wave"]


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
