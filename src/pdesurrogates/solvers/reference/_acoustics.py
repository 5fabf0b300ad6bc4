"""Acoustics datasets: receivers, the dataset setup, one sample, the HDF5 layout."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from pdesurrogates.solvers.reference._room_fdtd import RHO_AIR, solve_room
from pdesurrogates.solvers.reference._room_geometry import Room, dispersion_error
from pdesurrogates.solvers.reference._wave_common import (
    _AXES,
    C_AIR,
    _broadcast_cells,
    _check_lengths,
    _check_points,
    pulse_width,
)
from pdesurrogates.solvers.reference._wave_fdtd import solve_wave

__all__ = [
    "AcousticsSetup",
    "acoustics_dataset_layout",
    "acoustics_sample",
    "acoustics_setup",
    "default_receivers",
    "grid_receivers",
]


def grid_receivers(room, per_axis: int = 3) -> np.ndarray:
    """Receivers on a regular grid at fractions 0.2 .. 0.8 of each axis, in the air (m).

    Examples
    --------
    >>> grid_receivers(Room.l_shape([2.0, 2.0, 2.0]), 3).shape
    (24, 3)
    """
    room = room if isinstance(room, Room) else Room.box(room)
    frac = np.linspace(0.2, 0.8, per_axis) if per_axis > 1 else np.array([0.5])
    axes = [frac * L for L in room.lengths]
    pts = np.stack([g.reshape(-1) for g in np.meshgrid(*axes, indexing="ij")], axis=-1)
    return pts[room.contains(pts)]


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
    room: Room | None = None
    impedance: float | None = None
    rho: float = RHO_AIR

    @property
    def solver(self) -> str:
        """``fdtd-leapfrog`` (rigid boxes in 1D/2D) or ``fdtd-staggered`` (3D, walls, shapes)."""
        return "fdtd-leapfrog" if self.room is None else "fdtd-staggered"

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
            **(
                {}
                if self.room is None
                else {"room": self.room.to_dict(), "impedance": self.impedance, "rho": self.rho}
            ),
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
    geometry="box",
    impedance: float | None = None,
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
    geometry : {"box", "l-shape"} or Room
        The room; an L-shape removes ``x > L_x/2, y > L_y/2`` (sources keep ``margin``
        from its walls too).
    impedance : float, optional
        Wall impedance (Pa s/m) of every wall; ``None`` is rigid.

    In 3D, or with impedance walls or an L-shape, the data come from the staggered
    solver :func:`~pdesurrogates.solvers.reference.solve_room`, receivers default to a
    3 x 3 x 3 grid (:func:`grid_receivers`) and the stored field to about 5 points per
    wavelength; otherwise from :func:`~pdesurrogates.solvers.reference.solve_wave`.
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
    room = Room.make(geometry, lengths)
    staggered = dim == 3 or impedance is not None or room.kind != "box"
    if staggered:
        rec = grid_receivers(room) if receivers is None else receivers
        rec = room.check_receivers(rec)
    else:
        room = None
        rec = default_receivers(lengths) if receivers is None else receivers
        rec = _check_points("receivers", rec, lengths, single=False)
    if resolution is None:
        h_out = c / (fmax * (5.0 if dim == 3 else 10.0))
        step = 4 if dim == 3 else 8
        resolution = [step * math.ceil(L / h_out / step) for L in lengths]
    resolution = _broadcast_cells(resolution, dim)
    h_out = max(L / n for L, n in zip(lengths, resolution, strict=True))
    stride = max(1, math.ceil(ppw * fmax * h_out / c - 1e-9))
    h = max(L / (n * stride) for L, n in zip(lengths, resolution, strict=True))
    solver_ppw = c / (fmax * h)
    if solver_ppw < 10.0:
        err = dispersion_error(solver_ppw, 0.99, dim)
        warnings.warn(
            f"the solver grid has only {solver_ppw:.1f} points per wavelength at fmax={fmax:g} "
            f"Hz: the scheme's sound speed is {100 * err:.2g}% low along the grid axes there, "
            f"a phase lag of {fmax * duration * err:.2g} periods after {duration:g} s; its "
            "dispersion error will dominate the data. Use ppw >= 20",
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
        room=room,
        impedance=None if impedance is None else float(impedance),
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
    src = _draw_source(setup, np.random.default_rng([int(seed), int(index)]))
    if setup.room is not None:
        sol = solve_room(
            setup.room,
            src,
            duration=setup.duration,
            fmax=setup.fmax,
            impedance=setup.impedance,
            c=setup.c,
            rho=setup.rho,
            cells=setup.cells,
            n_times=setup.n_times,
            receivers=np.asarray(setup.receivers),
            field_stride=setup.stride,
            min_ppw=0.0,
            dtype="float32",
        )
        fields = {"p": sol.field.astype(np.float32), "ir": sol.responses.T.astype(np.float32)}
        return fields, {f"{a}s": float(v) for a, v in zip(_AXES, src, strict=False)}
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


def _draw_source(setup: AcousticsSetup, rng) -> np.ndarray:
    """Uniform in the source box; in an L-shape, also ``margin`` away from the notch."""
    low = np.array([b[0] for b in setup.bounds])
    high = np.array([b[1] for b in setup.bounds])
    room = setup.room
    for _ in range(10_000):
        src = low + (high - low) * rng.random(len(setup.lengths))
        if room is None or room.kind == "box":
            return src
        if room.kind == "l-shape":
            pad = low[:2]  # the margin from the outer walls applies to the notch too
            if not np.all(src[:2] > np.asarray(room.notch) - pad):
                return src
        elif room.contains(src[None])[0]:
            return src
    raise ValueError(f"no source position found in the air of the {room.describe()}")


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
    box = " x ".join(f"[0, {L:g}]" for L in setup.lengths) + " m"
    walls = "rigid walls"
    if setup.room is not None:
        box = setup.room.describe()
        if setup.impedance is not None:
            walls = f"impedance walls Z = {setup.impedance:g} Pa s/m (v_n = p / Z)"
    shaped = setup.room is not None and setup.room.kind != "box"
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
                "dist": "discrete" if shaped else "uniform",
                **({} if shaped else {"bounds": tuple(b)}),
                "units": "m",
                "long_name": f"source {a}"
                + (f" (uniform in {tuple(b)} m, outside the solid part)" if shaped else ""),
            }
            for a, b in zip(axes, setup.bounds, strict=True)
        },
        "units": {"time": "s", **{a: "m" for a in axes}, "component": "1"},
        "dataset_name": f"acoustics{dim}d",
        "pde": (
            f"p_tt = c^2 lap p on {box}, {walls}, c = {setup.c:g} m/s; "
            f"p(x, 0) = exp(-|x - x_s|^2 / sigma^2), sigma = {setup.sigma:.6g} m; p_t(x, 0) = 0"
        ),
    }
