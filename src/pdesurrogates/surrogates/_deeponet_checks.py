"""Argument and query checks of :class:`~pdesurrogates.surrogates.DeepONet`.

Hyper-parameters are checked eagerly (:func:`positive`, :func:`int_at_least`); query
positions, times and sources are checked by :class:`DeepONetChecks`, whose messages name
the argument, the room and the trained horizon.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import torch

__all__ = ["DeepONetChecks", "int_at_least", "one_of", "positive"]


def positive(name: str, value) -> float:
    """``value`` as a positive finite float, or a ``ValueError`` naming ``name``."""
    if not (isinstance(value, (int, float)) and not isinstance(value, bool)):
        raise ValueError(f"{name} must be a number; got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be positive and finite; got {value!r}")
    return float(value)


def int_at_least(name: str, value, low: int) -> int:
    """``value`` as an integer ``>= low``, or a ``ValueError`` naming ``name``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
    return value


def one_of(name: str, value, choices: tuple) -> str:
    """``value`` if it is one of ``choices``, or a ``ValueError`` naming ``name``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}; got {value!r}")
    return value


class DeepONetChecks:
    """Mix-in of :class:`~pdesurrogates.surrogates.DeepONet`: query checks.

    Uses the model's ``dim``, ``lengths``, ``duration`` and ``source_bounds``. The
    ``_fast_*`` methods accept well-formed numpy input after one vectorised test and
    fall back to the full checks (with their messages) otherwise.
    """

    def one_point(self, value) -> bool:
        """Whether ``value`` is one point (a scalar in 1D, or shape ``(dim,)``), not a list
        of them: one source gives an ``(R, T)`` response, several ``(S, R, T)``."""
        shape = np.shape(value)
        return len(shape) == 0 or (len(shape) == 1 and shape[0] == self.dim)

    def _as_points(self, name, value) -> np.ndarray:
        if torch.is_tensor(value):
            value = value.detach().cpu().numpy()
        arr = np.ascontiguousarray(value, dtype=float)
        given = arr.shape
        if arr.ndim <= 1:  # one point (dim,), or in 1D a scalar or a list of positions
            arr = arr.reshape(1, -1) if self.one_point(arr) and arr.ndim else arr.reshape(-1, 1)
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise ValueError(f"{name} must have shape (n, {self.dim}) in m; got {given}")
        if not len(arr):
            raise ValueError(f"{name} is empty: give at least one position, shape (n, {self.dim})")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or Inf")
        bad = np.any((arr < 0) | (arr > np.asarray(self.lengths)), axis=1)
        if np.any(bad):
            box = " x ".join(f"[0, {v:g}]" for v in self.lengths)
            raise ValueError(
                f"{name} {arr[np.argmax(bad)].tolist()} is outside the room {box} m the model "
                "was trained on"
            )
        shape = self._room_shape
        if shape is not None:
            solid = np.flatnonzero(~shape.contains(arr))
            if len(solid):
                listed = ", ".join(f"#{i} {arr[i].tolist()}" for i in solid[:10])
                raise ValueError(
                    f"{name} inside the solid part of the room the model was trained on: "
                    f"{listed} ({shape.describe()})"
                )
        return arr

    @functools.cached_property
    def _room_shape(self):
        """The trained room as a :class:`~pdesurrogates.solvers.reference.Room`, if not a box."""
        room = getattr(self, "room", None)
        if not room or room.get("kind", "box") == "box":
            return None
        from pdesurrogates.solvers.reference import Room

        if room["kind"] == "l-shape":
            return Room.l_shape(self.lengths, notch=room["notch"])
        raise ValueError(f"room kind {room['kind']!r} cannot be checked by the model")

    @functools.cached_property
    def _in_air(self):
        """``f(points) -> bool``: are all points (inside the box) in the air? None for a box.

        The fast paths' test; :meth:`_as_points` names the points that fail it.
        """
        shape = self._room_shape
        if shape is None:
            return None
        if shape.kind == "l-shape":  # the notch x > nx, y > ny is solid
            nx, ny = shape.notch
            return lambda p: not ((p[:, 0] > nx) & (p[:, 1] > ny)).any()
        return lambda p: bool(shape.contains(p).all())

    def _check_times(self, times) -> np.ndarray:
        if torch.is_tensor(times):
            times = times.detach().cpu().numpy()
        t = np.atleast_1d(np.ascontiguousarray(times, dtype=float))
        if t.ndim != 1 or not np.all(np.isfinite(t)):
            raise ValueError("times must be a 1-D array of finite times in seconds")
        if np.any(t < 0):
            raise ValueError(f"times must be >= 0 s; got min {t.min():g}")
        if np.any(t > self.duration * (1 + 1e-9)):
            warnings.warn(
                f"times up to {t.max():g} s go beyond the trained horizon {self.duration:g} s; "
                "the DeepONet extrapolates there and its error is not controlled",
                UserWarning,
                stacklevel=3,
            )
        return t

    def _check_bounds(self, src: np.ndarray) -> None:
        lo, hi, _ = self._bounds_np
        outside = np.any((src < lo) | (src > hi), axis=1)
        if np.any(outside):
            warnings.warn(
                f"source {src[np.argmax(outside)].tolist()} lies outside the training source "
                f"region {self.source_bounds} m; the prediction extrapolates",
                UserWarning,
                stacklevel=3,
            )

    @functools.cached_property
    def _bounds_np(self):
        b = np.asarray(self.source_bounds)
        tol = 1e-9 * max(self.lengths)
        return b[:, 0] - tol, b[:, 1] + tol, np.asarray(self.lengths)

    # -- fast paths: one vectorised test, full checks only when it fails -----------------
    def _fast_sources(self, source) -> np.ndarray:
        if not torch.is_tensor(source):
            arr = np.ascontiguousarray(source, dtype=float)
            if arr.ndim == 1 and arr.shape[0] == self.dim:
                arr = arr[None, :]
            lo, hi, _ = self._bounds_np
            ok = arr.ndim == 2 and arr.shape[1] == self.dim and len(arr)
            if ok and ((arr >= lo) & (arr <= hi)).all():
                if self._in_air is None or self._in_air(arr):
                    return arr
        src = self._as_points("source", source)
        self._check_bounds(src)
        return src

    def _fast_points(self, name, value) -> np.ndarray:
        if not torch.is_tensor(value):
            arr = np.ascontiguousarray(value, dtype=float)
            if arr.ndim == 2 and arr.shape[1] == self.dim and len(arr):
                if ((arr >= 0.0) & (arr <= self._bounds_np[2])).all():
                    if self._in_air is None or self._in_air(arr):
                        return arr
        return self._as_points(name, value)

    def _fast_times(self, times) -> np.ndarray:
        if not torch.is_tensor(times):
            t = np.ascontiguousarray(times, dtype=float)
            if t.ndim == 1 and len(t) and ((t >= 0.0) & (t <= self.duration)).all():
                return t
        return self._check_times(times)
