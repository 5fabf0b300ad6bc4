"""Sparse SPD test problems on structured grids: Poisson, smoke domains, variable coefficients.

Every matrix here is *unscaled* (no ``1/h**2`` factor), like ``pyamg.gallery.poisson``:
the 5-point stencil is ``[-1, -1, 4, -1, -1]`` and the 7-point stencil has ``6`` on the
diagonal. Unknowns are numbered in C order of the grid (the last axis varies fastest), so
``grid.reshape(-1)`` is the vector and ``vector.reshape(shape)`` the grid. Every matrix
made here carries that grid as ``A.grid_shape``, so the learned preconditioners take it
from the matrix (a 96 x 64 grid needs no ``shape=``).

Problems that carry more than a matrix (a grid shape, a fluid mask) are returned as a
:class:`Problem`. Solid cells of a smoke domain keep an identity row (``A[i, i] = 1`` and no
coupling), so the system stays symmetric positive definite on the full grid and a network
sees an ordinary image; :meth:`Problem.to_vector` zeroes them.

Examples
--------
>>> from pdesurrogates.solvers import gallery
>>> A = gallery.poisson2d(3)
>>> A.shape, A.grid_shape
((9, 9), (3, 3))
>>> A.toarray()[4].tolist()
[0.0, -1.0, 0.0, -1.0, 4.0, -1.0, 0.0, -1.0, 0.0]
>>> p = gallery.smoke_domain((8, 8), obstacles=[((0.5, 0.5), 0.2)])
>>> p.shape, int(p.mask.sum())
((8, 8), 52)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

__all__ = [
    "PROBLEM_NAMES",
    "Problem",
    "circle_obstacle",
    "dirichlet_box",
    "drifting_coefficients",
    "grid_to_vector",
    "laplacian",
    "moving_obstacles",
    "named_problem",
    "poisson2d",
    "poisson3d",
    "random_coefficient",
    "random_rhs",
    "smoke_domain",
    "smooth_rhs",
    "variable_coefficient",
    "vector_to_grid",
    "with_grid",
]


@dataclass
class Problem:
    """A sparse SPD system on a structured grid.

    Attributes
    ----------
    A : scipy.sparse.csr_matrix, shape (n, n)
        The matrix, ``n = prod(shape)``; unknowns in C order of the grid.
    shape : tuple of int
        Grid shape ``(nx, ny)`` or ``(nx, ny, nz)``.
    mask : ndarray of bool, shape ``shape``
        True on unknowns that take part in the PDE (fluid cells); False on solid cells,
        whose rows are identity rows.
    name : str
        Short description (``"dirichlet_box"``, ``"smoke_domain"``, ...).
    meta : dict
        Anything else that describes the problem (obstacles, coefficient range).
    """

    A: sp.csr_matrix
    shape: tuple[int, ...]
    mask: np.ndarray
    name: str = "problem"
    meta: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of unknowns (grid cells, solid ones included)."""
        return int(np.prod(self.shape))

    @property
    def dim(self) -> int:
        """Spatial dimension (2 or 3)."""
        return len(self.shape)

    def __post_init__(self) -> None:
        if sp.issparse(self.A) and getattr(self.A, "grid_shape", None) is None:
            with_grid(self.A, self.shape)

    def to_vector(self, grid: np.ndarray) -> np.ndarray:
        """Grid values ``shape`` -> vector ``(n,)``, zero on solid cells."""
        v = grid_to_vector(grid, self.shape).copy()
        v[~self.mask.reshape(-1)] = 0.0
        return v

    def to_grid(self, vector: np.ndarray) -> np.ndarray:
        """Vector ``(n,)`` -> grid ``shape`` (a view when possible)."""
        return vector_to_grid(vector, self.shape)


def _check_shape(shape, name="shape") -> tuple[int, ...]:
    if isinstance(shape, int | np.integer):
        raise ValueError(f"{name} must be a tuple like (64, 64); got the integer {shape}")
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (1, 2, 3) or any(s < 1 for s in shape):
        raise ValueError(f"{name} must have 1 to 3 positive entries; got {shape}")
    return shape


def grid_to_vector(grid: np.ndarray, shape: Sequence[int] | None = None) -> np.ndarray:
    """Flatten a grid of values to the unknown vector (C order).

    Parameters
    ----------
    grid : array_like, shape ``shape``
    shape : tuple of int, optional
        Expected grid shape; a mismatch raises ``ValueError``.
    """
    grid = np.asarray(grid)
    if shape is not None and tuple(grid.shape) != tuple(shape):
        raise ValueError(f"grid has shape {grid.shape}, expected {tuple(shape)}")
    return grid.reshape(-1)


def vector_to_grid(vector: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Reshape an unknown vector ``(prod(shape),)`` to the grid (C order)."""
    vector = np.asarray(vector)
    shape = tuple(int(s) for s in shape)
    if vector.ndim != 1 or vector.size != int(np.prod(shape)):
        raise ValueError(
            f"vector of shape {vector.shape} does not hold a grid of shape {shape} "
            f"({int(np.prod(shape))} values)"
        )
    return vector.reshape(shape)


def _laplace_1d(n: int) -> sp.csr_matrix:
    return sp.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1], format="csr")


def laplacian(shape: Sequence[int]) -> sp.csr_matrix:
    """Unscaled Dirichlet Laplacian (3-, 5- or 7-point) on a grid of ``shape`` interior nodes.

    Equal to ``pyamg.gallery.poisson(shape)``: ``2 * len(shape)`` on the diagonal, ``-1`` for
    each grid neighbour, homogeneous Dirichlet values one node beyond every side.
    """
    shape = _check_shape(shape)
    A = None
    for axis, n in enumerate(shape):
        mats = [sp.identity(m, format="csr") for m in shape]
        mats[axis] = _laplace_1d(n)
        term = mats[0]
        for m in mats[1:]:
            term = sp.kron(term, m, format="csr")
        A = term if A is None else A + term
    A = sp.csr_matrix(A)
    A.sort_indices()
    return with_grid(A, shape)


def with_grid(A: sp.csr_matrix, shape: Sequence[int]) -> sp.csr_matrix:
    """Tag ``A`` with the grid it was assembled on: ``A.grid_shape = shape``; returns ``A``.

    Every matrix of this gallery carries its grid this way, so the learned
    preconditioners (:func:`~pdesurrogates.solvers.dcdm`,
    :class:`~pdesurrogates.solvers.LearnedPreconditioner`,
    :class:`~pdesurrogates.solvers.MultigridHierarchy`) need no ``shape=`` for it. The tag
    is a plain attribute: a matrix derived from ``A`` (``A.copy()``, ``A + B``,
    ``sp.csr_matrix(A)``) does not carry it; pass ``shape=`` or tag it again.

    Examples
    --------
    >>> A = poisson2d(96, 64)
    >>> A.grid_shape
    (96, 64)
    """
    A.grid_shape = tuple(int(s) for s in shape)
    return A


def poisson2d(n: int, m: int | None = None) -> sp.csr_matrix:
    """5-point Dirichlet Poisson matrix on an ``n x m`` grid (``m = n`` by default).

    The matrix carries its grid, ``A.grid_shape == (n, m)`` (see :func:`with_grid`).
    """
    return laplacian((n, n if m is None else m))


def poisson3d(n: int, m: int | None = None, k: int | None = None) -> sp.csr_matrix:
    """7-point Dirichlet Poisson matrix on an ``n x m x k`` grid (cube by default).

    The matrix carries its grid, ``A.grid_shape == (n, m, k)`` (see :func:`with_grid`).
    """
    return laplacian((n, n if m is None else m, n if k is None else k))


def dirichlet_box(shape: Sequence[int]) -> Problem:
    """The Dirichlet box: :func:`laplacian` on ``shape`` wrapped as a :class:`Problem`."""
    shape = _check_shape(shape)
    return Problem(laplacian(shape), shape, np.ones(shape, bool), "dirichlet_box")


def circle_obstacle(shape: Sequence[int], center: Sequence[float], radius: float) -> np.ndarray:
    """Boolean solid mask of a disc/ball in unit coordinates (cell centres in ``(0, 1)``)."""
    shape = _check_shape(shape)
    if len(center) != len(shape):
        raise ValueError(f"center {tuple(center)} has {len(center)} entries, grid is {len(shape)}D")
    axes = [(np.arange(s) + 0.5) / s for s in shape]
    mesh = np.meshgrid(*axes, indexing="ij")
    d2 = sum((g - c) ** 2 for g, c in zip(mesh, center, strict=True))
    return d2 <= radius**2


def _face_system(shape, coeff_faces, dirichlet_sides, solid) -> sp.csr_matrix:
    """Assemble a cell-centred finite-volume operator from face coefficients.

    ``coeff_faces[axis]`` has the grid shape with that axis one longer (face values).
    Faces between two fluid cells couple them; a face to a Dirichlet side or to an open
    boundary adds its coefficient to the diagonal; faces to walls/solids add nothing.
    """
    n = int(np.prod(shape))
    idx = np.arange(n).reshape(shape)
    fluid = ~solid
    diag = np.zeros(shape)
    rows, cols, vals = [], [], []
    for axis, nax in enumerate(shape):
        k = coeff_faces[axis]
        # interior faces between cell j and j+1 along axis
        sl_lo = [slice(None)] * len(shape)
        sl_hi = [slice(None)] * len(shape)
        sl_lo[axis] = slice(0, nax - 1)
        sl_hi[axis] = slice(1, nax)
        sl_face = [slice(None)] * len(shape)
        sl_face[axis] = slice(1, nax)
        kf = k[tuple(sl_face)]
        both = fluid[tuple(sl_lo)] & fluid[tuple(sl_hi)]
        kf = np.where(both, kf, 0.0)
        a, b = idx[tuple(sl_lo)][both], idx[tuple(sl_hi)][both]
        w = kf[both]
        rows += [a, b]
        cols += [b, a]
        vals += [-w, -w]
        diag[tuple(sl_lo)] += kf
        diag[tuple(sl_hi)] += kf
        # boundary faces
        for side, j_cell, j_face in (("lo", 0, 0), ("hi", nax - 1, nax)):
            if (axis, side) in dirichlet_sides:
                sc = [slice(None)] * len(shape)
                sf = [slice(None)] * len(shape)
                sc[axis] = j_cell
                sf[axis] = j_face
                diag[tuple(sc)] += np.where(fluid[tuple(sc)], k[tuple(sf)], 0.0)
    diag = np.where(fluid, diag, 1.0)
    rows.append(idx.reshape(-1))
    cols.append(idx.reshape(-1))
    vals.append(diag.reshape(-1))
    A = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    A.sum_duplicates()
    A.sort_indices()
    return with_grid(A, shape)


def smoke_domain(
    shape: Sequence[int],
    *,
    obstacles: Sequence[tuple[Sequence[float], float]] = (),
    solid: np.ndarray | None = None,
    open_axis: int = -1,
) -> Problem:
    """Pressure Poisson matrix of a smoke box: Neumann walls, a Dirichlet open top, obstacles.

    Cell-centred 5-/7-point finite volumes (unscaled). Walls (both ends of every axis except
    the high end of ``open_axis``) are solid: zero normal flux. The open top has pressure 0
    half a cell beyond the last cells, which counts 1 on the diagonal of those cells.
    Obstacle cells are solid: their rows are identity rows and they do not couple to fluid.

    Parameters
    ----------
    shape : tuple of int
        Grid shape, 2 or 3 entries.
    obstacles : sequence of (center, radius)
        Discs/balls in unit coordinates, e.g. ``[((0.5, 0.4), 0.1)]``.
    solid : ndarray of bool, optional
        An extra solid mask of ``shape``.
    open_axis : int
        The axis whose high end is open (default the last axis, "up").

    Returns
    -------
    Problem
        With ``mask`` True on fluid cells.

    Notes
    -----
    A fluid region sealed off from the open top by solids would make the matrix singular;
    this raises ``ValueError``.
    """
    shape = _check_shape(shape)
    if len(shape) not in (2, 3):
        raise ValueError(f"smoke_domain needs a 2D or 3D shape; got {shape}")
    solid_mask = np.zeros(shape, bool)
    for ob in obstacles:
        try:
            center, radius = ob
        except (TypeError, ValueError):
            raise ValueError(
                f"each obstacle must be (center, radius), e.g. ((0.5, 0.5), 0.1); got {ob!r}"
            ) from None
        solid_mask |= circle_obstacle(shape, center, float(radius))
    if solid is not None:
        solid = np.asarray(solid, bool)
        if solid.shape != shape:
            raise ValueError(f"solid mask has shape {solid.shape}, expected {shape}")
        solid_mask |= solid
    axis = open_axis % len(shape)
    faces = []
    for ax, nax in enumerate(shape):
        fshape = list(shape)
        fshape[ax] = nax + 1
        faces.append(np.ones(fshape))
    A = _face_system(shape, faces, {(axis, "hi")}, solid_mask)
    fluid = ~solid_mask
    if fluid.any():
        _check_connected_to_top(A, fluid, axis)
    meta = {"obstacles": [[list(map(float, c)), float(r)] for c, r in obstacles]}
    return Problem(A, shape, fluid, "smoke_domain", meta)


def _check_connected_to_top(A, fluid, axis) -> None:
    from scipy.sparse.csgraph import connected_components

    _, labels = connected_components(A, directed=False)
    labels = labels.reshape(fluid.shape)
    sl = [slice(None)] * fluid.ndim
    sl[axis] = -1
    top = labels[tuple(sl)][fluid[tuple(sl)]]
    sealed = fluid & ~np.isin(labels, top)
    if sealed.any():
        raise ValueError(
            f"{int(sealed.sum())} fluid cells are sealed off from the open top by solids; "
            "the pressure system would be singular. Move or shrink the obstacles."
        )


def variable_coefficient(coeff: np.ndarray) -> Problem:
    """Dirichlet diffusion ``-div(k grad u)`` with cell coefficients ``k > 0`` (unscaled FV).

    Face coefficients are harmonic means of the two cells; boundary faces use the cell
    value, with the Dirichlet value (zero) one cell beyond. A constant ``k = 1`` gives
    exactly :func:`laplacian`.

    Parameters
    ----------
    coeff : ndarray, shape (nx, ny) or (nx, ny, nz)
        Positive, finite cell coefficients.
    """
    k = np.asarray(coeff, dtype=float)
    if k.ndim not in (2, 3):
        raise ValueError(f"coeff must be a 2D or 3D array; got shape {k.shape}")
    if not np.all(np.isfinite(k)) or np.any(k <= 0):
        raise ValueError("coeff must be finite and strictly positive everywhere")
    shape = k.shape
    faces = []
    for ax in range(k.ndim):
        lo = np.take(k, range(0, shape[ax] - 1), axis=ax)
        hi = np.take(k, range(1, shape[ax]), axis=ax)
        inner = 2 * lo * hi / (lo + hi)
        first = np.take(k, [0], axis=ax)
        last = np.take(k, [shape[ax] - 1], axis=ax)
        faces.append(np.concatenate([first, inner, last], axis=ax))
    sides = {(ax, s) for ax in range(k.ndim) for s in ("lo", "hi")}
    A = _face_system(shape, faces, sides, np.zeros(shape, bool))
    meta = {"coeff_min": float(k.min()), "coeff_max": float(k.max())}
    return Problem(A, tuple(shape), np.ones(shape, bool), "variable_coefficient", meta)


def _smooth_field(shape, correlation, rng) -> np.ndarray:
    """Zero-mean unit-variance Gaussian field, smoothed over ``correlation`` cells (periodic)."""
    from scipy.ndimage import gaussian_filter

    g = gaussian_filter(rng.standard_normal(shape), float(correlation), mode="wrap")
    return (g - g.mean()) / g.std()


def _contrast_scale(contrast) -> float:
    contrast = float(contrast)
    if not np.isfinite(contrast) or contrast < 1:
        raise ValueError(f"contrast must be a finite number >= 1 (max/min of k); got {contrast}")
    return float(np.log(contrast))


def random_coefficient(
    shape: Sequence[int], *, contrast: float = 1e4, correlation: float = 3.0, seed: int = 0
) -> Problem:
    """:func:`variable_coefficient` with a log-normal field of exactly ``contrast`` = max/min.

    ``k = exp(s g)``, ``g`` a Gaussian field smoothed over ``correlation`` cells, ``s``
    chosen so that ``k.max() / k.min() == contrast`` on this grid (2D or 3D).

    >>> p = random_coefficient((16, 16, 16), contrast=1e4)
    >>> round(p.meta["coeff_max"] / p.meta["coeff_min"])
    10000
    """
    shape = _check_shape(shape)
    g = _smooth_field(shape, correlation, np.random.default_rng(seed))
    s = _contrast_scale(contrast) / float(g.max() - g.min())
    return variable_coefficient(np.exp(s * (g - g.mean())))


def drifting_coefficients(
    shape: Sequence[int],
    steps: int,
    *,
    contrast: float = 1e4,
    correlation: float = 3.0,
    drift: float = 0.5,
    seed: int = 0,
):
    """``steps`` variable-coefficient problems whose log-coefficient drifts smoothly.

    Step ``t`` has ``log k_t = s_t (cos(phi_t) g_1 + sin(phi_t) g_2)`` with two independent
    smoothed Gaussian fields and ``phi_t = drift * t / (steps - 1)`` (radians); ``s_t``
    holds the contrast max/min at ``contrast`` on every step. Consecutive matrices differ
    a little, the first and the last by ``drift`` radians in field space (``pi / 2``:
    unrelated fields).

    Yields
    ------
    Problem
        With ``meta["step"]`` and ``meta["phi"]``.
    """
    shape = _check_shape(shape)
    if int(steps) < 1:
        raise ValueError(f"steps must be >= 1; got {steps}")
    log_c = _contrast_scale(contrast)
    rng = np.random.default_rng(seed)
    g1, g2 = _smooth_field(shape, correlation, rng), _smooth_field(shape, correlation, rng)
    for t in range(int(steps)):
        phi = float(drift) * t / max(int(steps) - 1, 1)
        g = np.cos(phi) * g1 + np.sin(phi) * g2
        p = variable_coefficient(np.exp(log_c * (g - g.mean()) / float(g.max() - g.min())))
        p.meta.update(step=t, phi=phi)
        yield p


def moving_obstacles(
    shape: Sequence[int], steps: int, *, radius: float = 0.1, height: float = 0.35
):
    """``steps`` smoke domains whose disc/ball obstacle moves across the box.

    The centre goes from 0.25 to 0.75 along the first axis at ``height`` along the last
    (the open top is the high end of the last axis), other axes at 0.5.

    Yields
    ------
    Problem
        :func:`smoke_domain` problems, ``meta["step"]`` set.
    """
    shape = _check_shape(shape)
    if int(steps) < 1:
        raise ValueError(f"steps must be >= 1; got {steps}")
    for t in range(int(steps)):
        c = [0.5] * len(shape)
        c[0] = 0.25 + 0.5 * t / max(int(steps) - 1, 1)
        c[-1] = float(height)
        p = smoke_domain(shape, obstacles=[(tuple(c), radius)])
        p.meta["step"] = t
        yield p


PROBLEM_NAMES = ("poisson2d", "poisson3d", "smoke2d", "smoke3d", "varcoef2d")
"""Names accepted by :func:`named_problem` (and ``pdesurrogates solve --problem``)."""


def named_problem(name: str, n: int, *, obstacle: bool = True, seed: int = 0) -> Problem:
    """A gallery problem by name, with ``n`` cells per side.

    Parameters
    ----------
    name : {"poisson2d", "poisson3d", "smoke2d", "smoke3d", "varcoef2d"}
        Dirichlet box (2D/3D), smoke domain (Neumann walls, open top; 2D/3D) or the 2D
        variable-coefficient diffusion with a log-normal, smoothed coefficient field.
    n : int
        Cells per side (>= 4).
    obstacle : bool
        Put a circular (spherical) obstacle in the smoke domains.
    seed : int
        Seed of the coefficient field (``varcoef2d``).

    Examples
    --------
    >>> p = named_problem("smoke2d", 16)
    >>> p.name, p.shape, p.n
    ('smoke_domain', (16, 16), 256)
    """
    if int(n) < 4:
        raise ValueError(f"n must be >= 4 cells per side; got {n}")
    n = int(n)
    if name == "poisson2d":
        return dirichlet_box((n, n))
    if name == "poisson3d":
        return dirichlet_box((n, n, n))
    if name == "smoke2d":
        return smoke_domain((n, n), obstacles=[((0.5, 0.35), 0.12)] if obstacle else [])
    if name == "smoke3d":
        return smoke_domain((n, n, n), obstacles=[((0.5, 0.5, 0.35), 0.15)] if obstacle else [])
    if name == "varcoef2d":
        from scipy.ndimage import gaussian_filter

        rng = np.random.default_rng(seed)
        k = np.exp(6.0 * gaussian_filter(rng.standard_normal((n, n)), 2.0, mode="wrap"))
        return variable_coefficient(k)
    raise ValueError(f"unknown problem {name!r}; choose one of {', '.join(PROBLEM_NAMES)}")


def random_rhs(problem: Problem, *, seed: int = 0) -> np.ndarray:
    """Standard normal right-hand side, zero on solid cells."""
    rng = np.random.default_rng(seed)
    return problem.to_vector(rng.standard_normal(problem.shape))


def smooth_rhs(problem: Problem, *, n_modes: int = 20, max_freq: int = 4, seed: int = 0):
    """Sum of ``n_modes`` random low-order cosine modes, zero on solid cells."""
    rng = np.random.default_rng(seed)
    axes = [(np.arange(s) + 0.5) / s for s in problem.shape]
    mesh = np.meshgrid(*axes, indexing="ij")
    g = np.zeros(problem.shape)
    for _ in range(n_modes):
        ks = rng.integers(0, max_freq + 1, size=len(problem.shape))
        term = rng.standard_normal()
        for x, kk in zip(mesh, ks, strict=True):
            term = term * np.cos(np.pi * kk * x)
        g += term
    return problem.to_vector(g)


def anisotropic_diffusion(shape: Sequence[int], *, eps: float = 1e-3, theta: float = 0.0):
    """Rotated anisotropic diffusion ``-div(K grad u)`` on a 2D Dirichlet box (9-point FD).

    ``K = R(theta) diag(1, eps) R(theta)^T``; second differences for ``K_xx u_xx`` and
    ``K_yy u_yy``, the centred 4-point difference for the mixed term (unscaled, so the
    stencil is ``h``-independent; zero Dirichlet values one cell beyond the grid). The
    matrix is symmetric positive definite; for ``theta`` off the axes it is not an
    M-matrix (positive corner entries).

    Examples
    --------
    >>> p = anisotropic_diffusion((8, 8), eps=1.0)  # isotropic: the 5-point Laplacian
    >>> bool(abs(p.A - laplacian((8, 8))).max() < 1e-12)
    True
    """
    shape = _check_shape(shape)
    if len(shape) != 2:
        raise ValueError(f"anisotropic_diffusion needs a 2D shape; got {shape}")
    if not (np.isfinite(eps) and 0 < eps) or not np.isfinite(theta):
        raise ValueError(f"eps must be > 0 and theta finite; got eps={eps!r}, theta={theta!r}")
    c, s = np.cos(theta), np.sin(theta)
    kxx, kyy, kxy = c * c + eps * s * s, s * s + eps * c * c, (1 - eps) * c * s
    taps = {
        (0, 0): 2 * kxx + 2 * kyy,
        (-1, 0): -kxx, (1, 0): -kxx, (0, -1): -kyy, (0, 1): -kyy,
        (1, 1): -kxy / 2, (-1, -1): -kxy / 2, (1, -1): kxy / 2, (-1, 1): kxy / 2,
    }  # fmt: skip
    n = int(np.prod(shape))
    idx = np.arange(n).reshape(shape)
    rows, cols, vals = [], [], []
    for (dx, dy), v in taps.items():
        if v == 0:
            continue
        src = idx[max(0, -dx) : shape[0] - max(0, dx), max(0, -dy) : shape[1] - max(0, dy)]
        dst = idx[max(0, dx) : shape[0] + min(0, dx), max(0, dy) : shape[1] + min(0, dy)]
        rows.append(src.ravel())
        cols.append(dst.ravel())
        vals.append(np.full(src.size, v))
    A = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    A.sum_duplicates()
    A.sort_indices()
    meta = {"eps": float(eps), "theta": float(theta)}
    return Problem(with_grid(A, shape), shape, np.ones(shape, bool), "anisotropic_diffusion", meta)
