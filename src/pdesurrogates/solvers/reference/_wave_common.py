"""Shared pieces of the acoustic wave solvers: constants, the Gaussian pulse, grids, checks."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["C_AIR", "gaussian_pulse", "pulse_width", "wave_grid"]

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
