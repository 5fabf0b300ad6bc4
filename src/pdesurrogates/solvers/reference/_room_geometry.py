"""Rooms for the staggered FDTD solver: a box, an L-shaped room or any voxel mask.

A :class:`Room` is a bounding box ``[0, L_1] x ... x [0, L_D]`` with an optional solid
part. It answers two questions: is a point in the air (:meth:`Room.contains`), and which
cells of a grid are air (:meth:`Room.air_cells`, by cell centre, so a wall of the solid
part lies on cell faces when the grid is aligned with it). It also checks sources and
receivers with messages that name the offending points, and estimates the dispersion
error a grid implies (:func:`dispersion_error`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pdesurrogates.solvers.reference._wave_common import _check_lengths, _check_points

__all__ = ["Room", "dispersion_error"]

_KINDS = ("box", "l-shape", "mask")


@dataclass(frozen=True)
class Room:
    """Geometry of a room: a box, an L-shape (a box with a notch) or a voxel mask.

    Use the constructors :meth:`box`, :meth:`l_shape` and :meth:`from_mask`.

    Attributes
    ----------
    lengths : tuple of float
        Bounding box ``(L_x[, L_y[, L_z]])`` (m).
    kind : {"box", "l-shape", "mask"}
    notch : tuple of float or None
        L-shape: the solid part is ``x >= notch[0] and y >= notch[1]`` (all ``z``).
    mask : ndarray of bool or None
        Voxel mask: ``True`` for air cells of a regular grid over the bounding box.

    Examples
    --------
    >>> room = Room.l_shape([2.0, 2.0, 2.0], notch=(1.0, 1.0))
    >>> room.contains([[0.5, 0.5, 1.0], [1.5, 1.5, 1.0]]).tolist()
    [True, False]
    >>> room.volume
    6.0
    """

    lengths: tuple[float, ...]
    kind: str = "box"
    notch: tuple[float, float] | None = None
    mask: np.ndarray | None = None

    # -- constructors ------------------------------------------------------------------
    @classmethod
    def box(cls, lengths) -> Room:
        """A rectangular room ``[0, L_1] x ... x [0, L_D]``."""
        return cls(_check_lengths(lengths), "box")

    @classmethod
    def l_shape(cls, lengths, notch=None) -> Room:
        """An L-shaped room: the box minus ``{x >= notch[0], y >= notch[1]}``.

        ``notch`` defaults to half the room along x and y (a quarter of the floor removed).
        """
        lengths = _check_lengths(lengths)
        if len(lengths) < 2:
            raise ValueError("an L-shaped room needs at least 2 dimensions (lengths x, y[, z])")
        if notch is None:
            notch = (lengths[0] / 2, lengths[1] / 2)
        notch = tuple(float(v) for v in notch)
        if len(notch) != 2 or not all(0 < v < L for v, L in zip(notch, lengths, strict=False)):
            raise ValueError(
                f"notch must be 2 coordinates (x, y) strictly inside the room {lengths[:2]} m; "
                f"got {notch}"
            )
        return cls(lengths, "l-shape", notch=notch)

    @classmethod
    def from_mask(cls, lengths, mask) -> Room:
        """A room given as a voxel mask: ``mask[i, j, k]`` is True for air cells.

        The mask covers the bounding box with ``mask.shape`` equal cells; a solver grid
        must have a whole multiple of these cells per axis.
        """
        lengths = _check_lengths(lengths)
        mask = np.asarray(mask)
        if mask.ndim != len(lengths) or mask.dtype != bool:
            raise ValueError(
                f"mask must be a boolean array with {len(lengths)} axes (True = air); got "
                f"dtype {mask.dtype} and shape {mask.shape}"
            )
        if not mask.any():
            raise ValueError("mask has no air cell: the room is solid")
        return cls(lengths, "mask", mask=mask.copy())

    @classmethod
    def make(cls, geometry, lengths) -> Room:
        """``geometry`` as a Room: a Room, ``"box"``, ``"l-shape"`` or a boolean mask."""
        if isinstance(geometry, Room):
            return geometry
        if geometry is None or geometry == "box":
            return cls.box(lengths)
        if isinstance(geometry, str):
            if geometry in ("l-shape", "l_shape", "L"):
                return cls.l_shape(lengths)
            raise ValueError(
                f"geometry must be one of {_KINDS}, a Room or a mask; got {geometry!r}"
            )
        return cls.from_mask(lengths, geometry)

    # -- queries -----------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return len(self.lengths)

    @property
    def volume(self) -> float:
        """Air volume (m^3; m^2 in 2D)."""
        full = math.prod(self.lengths)
        if self.kind == "box":
            return full
        if self.kind == "l-shape":
            cut = (self.lengths[0] - self.notch[0]) * (self.lengths[1] - self.notch[1])
            return full - cut * math.prod(self.lengths[2:])
        return full * float(self.mask.mean())

    def contains(self, points) -> np.ndarray:
        """True for points in the air or on its boundary (bool array, one per point)."""
        pts = np.atleast_2d(np.asarray(points, dtype=float))
        inside = np.all((pts >= 0) & (pts <= np.asarray(self.lengths)), axis=1)
        if self.kind == "l-shape":
            inside &= ~((pts[:, 0] > self.notch[0]) & (pts[:, 1] > self.notch[1]))
        elif self.kind == "mask":
            shape = np.asarray(self.mask.shape)
            s = pts / np.asarray(self.lengths) * shape
            # a point on a cell face is in the air if any cell it touches is
            ok = np.zeros(len(pts), dtype=bool)
            for shift in (-1e-9, 1e-9):
                idx = np.clip(np.floor(s + shift).astype(int), 0, shape - 1)
                ok |= self.mask[tuple(idx.T)]
            inside &= ok
        return inside

    def air_cells(self, cells) -> np.ndarray:
        """Boolean array of shape ``cells``: True where the cell centre is in the air."""
        cells = tuple(int(n) for n in cells)
        if self.kind == "mask":
            ratio = [n // m for n, m in zip(cells, self.mask.shape, strict=True)]
            if any(r * m != n for r, m, n in zip(ratio, self.mask.shape, cells, strict=True)):
                raise ValueError(
                    f"the solver grid {cells} must have a whole multiple of the mask's "
                    f"{self.mask.shape} cells per axis"
                )
            out = self.mask
            for d, r in enumerate(ratio):
                out = np.repeat(out, r, axis=d)
            return out
        centres = [(np.arange(n) + 0.5) * L / n for n, L in zip(cells, self.lengths, strict=True)]
        grids = np.meshgrid(*centres, indexing="ij")
        pts = np.stack([g.reshape(-1) for g in grids], axis=-1)
        return self.contains(pts).reshape(cells)

    def check_source(self, source) -> np.ndarray:
        """The source position as a (D,) array, or a ValueError if it is not in the air."""
        src = _check_points("source", source, self.lengths, single=True)
        if not self.contains(src[None])[0]:
            raise ValueError(
                f"source {src.tolist()} lies inside the solid part of the {self.kind} room "
                f"(an obstacle); place it in the air: {self.describe()}"
            )
        return src

    def check_receivers(self, receivers) -> np.ndarray:
        """Receivers (R, D), or a ValueError naming every receiver outside the air."""
        arr = np.asarray(receivers, dtype=float)
        if arr.ndim == 1 and self.dim == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise ValueError(
                f"receivers must have shape (R, {self.dim}) (positions in m); got {arr.shape}"
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError("receivers contain NaN or Inf")
        bad = np.flatnonzero(~self.contains(arr))
        if len(bad):
            listed = ", ".join(f"#{i} {arr[i].tolist()}" for i in bad[:10])
            more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
            raise ValueError(
                f"receivers outside the room: {listed}{more}; every receiver must lie in the "
                f"air of the {self.describe()}"
            )
        return arr

    def describe(self) -> str:
        box = " x ".join(f"[0, {v:g}]" for v in self.lengths)
        if self.kind == "l-shape":
            return f"L-shaped room {box} m without x > {self.notch[0]:g}, y > {self.notch[1]:g}"
        if self.kind == "mask":
            return f"voxel room {box} m ({self.mask.mean():.0%} air)"
        return f"box {box} m"

    def to_dict(self) -> dict:
        out: dict = {"kind": self.kind, "lengths": list(self.lengths)}
        if self.notch is not None:
            out["notch"] = list(self.notch)
        if self.mask is not None:
            out["mask_shape"] = list(self.mask.shape)
        return out


def dispersion_error(ppw: float, courant: float = 0.99, dim: int = 3) -> float:
    """Relative phase-speed error of the leapfrog scheme along a grid axis.

    On a cubic grid with ``ppw`` points per wavelength and normalised Courant number
    ``courant`` (``c dt sqrt(dim) / h``), a plane wave along an axis travels at
    ``c_num = 2 arcsin(lam sin(pi / ppw)) / (lam 2 pi / ppw) * c`` with
    ``lam = courant / sqrt(dim)``: slower than ``c``. Returns ``1 - c_num / c``, the
    worst direction (the diagonal is exact at ``courant = 1``).

    Examples
    --------
    >>> round(100 * dispersion_error(10.0, 0.99, 3), 2)
    1.12
    >>> dispersion_error(20.0) < dispersion_error(10.0) / 3.5
    True
    """
    if not ppw > 2:
        raise ValueError(f"ppw must exceed 2 points per wavelength; got {ppw!r}")
    lam = courant / math.sqrt(dim)
    kh = 2.0 * math.pi / ppw
    return 1.0 - 2.0 * math.asin(lam * math.sin(kh / 2.0)) / (lam * kh)
