"""P1 finite elements on random unstructured 2D triangle meshes: SPD test matrices.

The meshes are Delaunay triangulations (``scipy.spatial.Delaunay``) of a jittered
lattice on the unit square or the L-shape ``[0, 1]^2 minus (1/2, 1]^2``; lattice nodes on
the boundary stay in place and carry a homogeneous Dirichlet condition, which is
eliminated, so the stiffness matrix of the interior nodes is symmetric positive definite.
The coefficient is a scalar per triangle (Poisson: 1; diffusion: a lognormal random
field built from random Fourier features), or a 2x2 SPD tensor per triangle.

Examples
--------
>>> import numpy as np
>>> from pdesurrogates.solvers.reference import fem_mesh, fem_system
>>> mesh = fem_mesh(8, seed=0)
>>> sysm = fem_system(mesh)
>>> sysm.A.shape == (mesh.n_interior, mesh.n_interior), bool(abs(sysm.A - sysm.A.T).max() == 0)
(True, True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.spatial import Delaunay

__all__ = [
    "FEM_FAMILIES",
    "FEMSystem",
    "Mesh",
    "elasticity_system",
    "fem_family",
    "fem_l2_error",
    "fem_mesh",
    "fem_sequence",
    "fem_system",
    "lognormal_field",
    "p1_assemble",
]

DOMAINS = ("square", "lshape")


@dataclass
class Mesh:
    """A triangle mesh: ``points (N, 2)``, ``triangles (T, 3)``, ``boundary (N,)`` bool."""

    points: np.ndarray
    triangles: np.ndarray
    boundary: np.ndarray
    domain: str = "square"

    @property
    def interior(self) -> np.ndarray:
        """Indices of the free (non-Dirichlet) nodes, the unknowns."""
        return np.flatnonzero(~self.boundary)

    @property
    def n_interior(self) -> int:
        """Number of unknowns."""
        return int((~self.boundary).sum())

    @property
    def centroids(self) -> np.ndarray:
        """Triangle centroids ``(T, 2)``."""
        return self.points[self.triangles].mean(axis=1)

    @property
    def h(self) -> float:
        """Longest edge of the mesh."""
        p = self.points[self.triangles]
        e = np.linalg.norm(p - np.roll(p, 1, axis=1), axis=2)
        return float(e.max())


def fem_mesh(m: int, *, domain: str = "square", jitter: float = 0.35, seed=None) -> Mesh:
    """A random unstructured mesh: Delaunay of an ``(m+1) x (m+1)`` jittered lattice.

    Interior lattice nodes move by up to ``jitter * h`` (``h = 1/m``) in each direction;
    boundary nodes stay on the boundary. ``domain='lshape'`` removes ``(1/2, 1]^2``
    (``m`` must then be even).
    """
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}; got {domain!r}")
    if not isinstance(m, (int, np.integer)) or m < 2 or (domain == "lshape" and m % 2):
        raise ValueError(f"m must be an integer >= 2 (even for an L-shape); got {m!r}")
    if not 0 <= jitter < 0.5:
        raise ValueError(f"jitter must be in [0, 0.5) (a fraction of the spacing); got {jitter}")
    rng = np.random.default_rng(seed)
    ij = np.stack(np.meshgrid(np.arange(m + 1), np.arange(m + 1), indexing="ij"), -1)
    ij = ij.reshape(-1, 2)
    if domain == "lshape":
        ij = ij[~((ij[:, 0] > m // 2) & (ij[:, 1] > m // 2))]
    on_edge = (ij == 0) | (ij == m)
    boundary = on_edge.any(axis=1)
    if domain == "lshape":
        re = ((ij[:, 0] == m // 2) & (ij[:, 1] >= m // 2)) | (
            (ij[:, 1] == m // 2) & (ij[:, 0] >= m // 2)
        )
        boundary |= re
    h = 1.0 / m
    pts = ij * h + ~boundary[:, None] * rng.uniform(-jitter, jitter, ij.shape) * h
    tri = Delaunay(pts).simplices
    if domain == "lshape":
        c = pts[tri].mean(axis=1)
        tri = tri[~((c[:, 0] > 0.5) & (c[:, 1] > 0.5))]
    # counter-clockwise orientation
    p = pts[tri]
    det = (p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1]) - (p[:, 2, 0] - p[:, 0, 0]) * (
        p[:, 1, 1] - p[:, 0, 1]
    )
    tri = np.where((det < 0)[:, None], tri[:, [0, 2, 1]], tri)
    return Mesh(pts, np.ascontiguousarray(tri), boundary, domain)


def p1_assemble(mesh: Mesh, kappa=None) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Full P1 stiffness and consistent mass matrices ``(K, M)`` of size ``(N, N)``.

    ``kappa``: None (1), a scalar, an array ``(T,)`` of values per triangle, an array
    ``(T, 2, 2)`` of SPD tensors, or a callable of the centroids ``(T, 2) -> (T,)``.
    """
    p = mesh.points[mesh.triangles]  # (T, 3, 2)
    J = np.stack([p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]], axis=2)  # columns = edge vectors
    det = J[:, 0, 0] * J[:, 1, 1] - J[:, 0, 1] * J[:, 1, 0]
    area = 0.5 * np.abs(det)
    Jinv_t = (
        np.stack(
            [np.stack([J[:, 1, 1], -J[:, 1, 0]], -1), np.stack([-J[:, 0, 1], J[:, 0, 0]], -1)], 1
        )
        / det[:, None, None]
    )  # inverse transpose, (T, 2, 2)
    ref = np.array([[-1.0, -1.0], [1.0, 0.0], [0.0, 1.0]])
    G = np.einsum("tij,kj->tki", Jinv_t, ref)  # gradients of the 3 hat functions, (T, 3, 2)
    if callable(kappa):
        kappa = np.asarray(kappa(mesh.centroids), dtype=float)
    if kappa is None:
        kappa = np.ones(len(area))
    kappa = np.asarray(kappa, dtype=float)
    if kappa.ndim == 0:
        kappa = np.full(len(area), float(kappa))
    if kappa.ndim == 1:
        Ke = kappa[:, None, None] * np.einsum("tai,tbi->tab", G, G)
    else:
        Ke = np.einsum("tai,tij,tbj->tab", G, kappa, G)
    Ke *= area[:, None, None]
    Me = area[:, None, None] * (np.ones((3, 3)) + np.eye(3)) / 12.0
    rows = np.repeat(mesh.triangles, 3, axis=1).ravel()
    cols = np.tile(mesh.triangles, (1, 3)).ravel()
    N = len(mesh.points)
    K = sp.csr_matrix((Ke.ravel(), (rows, cols)), shape=(N, N))
    M = sp.csr_matrix((np.broadcast_to(Me, Ke.shape).ravel(), (rows, cols)), shape=(N, N))
    return K, M


@dataclass
class FEMSystem:
    """The interior system: ``A`` (SPD, unknowns = ``mesh.interior``), load ``b``."""

    A: sp.csr_matrix
    b: np.ndarray
    mesh: Mesh
    kappa: np.ndarray

    def full(self, u_interior: np.ndarray) -> np.ndarray:
        """Nodal values on the whole mesh (zero on the Dirichlet boundary)."""
        u = np.zeros(len(self.mesh.points))
        u[self.mesh.interior] = u_interior
        return u


def fem_system(mesh: Mesh, kappa=None, f: Callable | None = None) -> FEMSystem:
    """``-div(kappa grad u) = f`` with ``u = 0`` on the boundary: the eliminated system.

    The load is the consistent mass matrix times the nodal interpolant of ``f``
    (``f=None``: ``f = 1``).
    """
    if callable(kappa):
        kappa = np.asarray(kappa(mesh.centroids), dtype=float)
    K, M = p1_assemble(mesh, kappa)
    fn = np.ones(len(mesh.points)) if f is None else np.asarray(f(mesh.points), dtype=float)
    free = mesh.interior
    A = sp.csr_matrix(K[free][:, free])
    A.sort_indices()
    A = (A + A.T) * 0.5  # exact symmetry (assembly sums in different orders)
    b = (M @ fn)[free]
    k = np.ones(len(mesh.triangles)) if kappa is None else np.asarray(kappa, dtype=float)
    return FEMSystem(sp.csr_matrix(A), b, mesh, k)


def fem_l2_error(mesh: Mesh, u_nodal: np.ndarray, exact: Callable) -> float:
    """``||u_h - u||_L2`` by the edge-midpoint rule (exact for quadratics) per triangle."""
    p = mesh.points[mesh.triangles]
    u = u_nodal[mesh.triangles]
    err = np.zeros(len(p))
    for a in range(3):
        b = (a + 1) % 3
        mid = 0.5 * (p[:, a] + p[:, b])
        err += (0.5 * (u[:, a] + u[:, b]) - exact(mid)) ** 2 / 3.0
    d = p[:, 1:] - p[:, :1]
    area = 0.5 * np.abs(d[:, 0, 0] * d[:, 1, 1] - d[:, 0, 1] * d[:, 1, 0])
    return float(np.sqrt(np.sum(area * err)))


def lognormal_field(
    x: np.ndarray, *, sigma: float = 1.0, length: float = 0.1, modes: int = 64, seed=None, t=0.0
) -> np.ndarray:
    """``exp(sigma g(x))`` with ``g`` a unit-variance Gaussian field (random Fourier features).

    ``length`` is the correlation length; ``t`` shifts every phase by ``t`` times its own
    random speed, so ``t = 0, 0.05, 0.1, ...`` gives a field that drifts smoothly.
    """
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(modes, 2)) / length
    phase = rng.uniform(0, 2 * np.pi, modes)
    speed = rng.normal(size=modes)
    g = np.sqrt(2.0 / modes) * np.cos(x @ w.T + phase + t * speed).sum(axis=1)
    return np.exp(sigma * g)


def fem_sequence(
    mesh: Mesh, steps: int = 20, *, sigma: float = 1.5, length: float = 0.1, drift=0.1, seed=None
) -> list[FEMSystem]:
    """``steps`` diffusion systems on one mesh (one sparsity pattern); the field drifts."""
    c = mesh.centroids
    return [
        fem_system(mesh, lognormal_field(c, sigma=sigma, length=length, seed=seed, t=drift * k))
        for k in range(steps)
    ]


FEM_FAMILIES = ("poisson", "lognormal", "anisotropic", "elasticity")


def fem_family(kind: str, m: int, *, domain: str = "square", seed=None, sigma=None) -> FEMSystem:
    """One random system of a family, on a fresh random mesh of ``(m+1)^2`` lattice nodes.

    ``poisson``: ``kappa = 1``; ``lognormal``: a lognormal field (``sigma`` random in
    ``[0.5, 2]`` unless given, correlation length in ``[0.05, 0.3]``); ``anisotropic``:
    per-triangle tensors ``R diag(1, eps) R^T`` with ``eps`` in ``[1e-2, 1]`` and an angle
    field that varies smoothly; ``elasticity``: plane-strain linear elasticity
    (:func:`elasticity_system`) with a lognormal Young's modulus and Poisson ratio in
    ``[0.2, 0.45]``.
    """
    if kind not in FEM_FAMILIES:
        raise ValueError(f"kind must be one of {FEM_FAMILIES}; got {kind!r}")
    rng = np.random.default_rng(seed)
    mesh = fem_mesh(m, domain=domain, seed=rng.integers(2**31))
    c = mesh.centroids
    if kind == "poisson":
        return fem_system(mesh)
    if kind == "elasticity":
        E = lognormal_field(c, sigma=rng.uniform(0, 1.5), length=0.2, seed=rng.integers(2**31))
        return elasticity_system(mesh, E, rng.uniform(0.2, 0.45))
    if kind == "lognormal":
        s = rng.uniform(0.5, 2.0) if sigma is None else float(sigma)
        ell = rng.uniform(0.05, 0.3)
        return fem_system(mesh, lognormal_field(c, sigma=s, length=ell, seed=rng.integers(2**31)))
    eps = 10 ** rng.uniform(-2, 0)
    theta = rng.uniform(0, np.pi) + np.log(lognormal_field(c, seed=rng.integers(2**31)))
    R = np.stack(
        [
            np.stack([np.cos(theta), -np.sin(theta)], -1),
            np.stack([np.sin(theta), np.cos(theta)], -1),
        ],
        1,
    )
    K = np.einsum("tij,j,tkj->tik", R, np.array([1.0, eps]), R)
    return fem_system(mesh, K)


def elasticity_system(mesh: Mesh, young=1.0, poisson_ratio: float = 0.3) -> FEMSystem:
    """Plane-strain P1 linear elasticity, both displacements fixed on the boundary.

    Unknowns are interleaved ``(u_x, u_y)`` per interior node; ``young`` is a scalar or
    one value per triangle; the load is a unit body force in ``-y``. The matrix is SPD,
    with positive off-diagonal entries and 2x2 blocks: unlike a diffusion matrix.
    """
    if not 0 <= poisson_ratio < 0.5:
        raise ValueError(f"poisson_ratio must be in [0, 0.5); got {poisson_ratio}")
    p = mesh.points[mesh.triangles]
    d1, d2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    det = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
    # gradients of the hat functions: rows of inv(J)^T applied to the reference gradients
    gx = np.stack([d1[:, 1] - d2[:, 1], d2[:, 1], -d1[:, 1]], 1) / det[:, None]
    gy = np.stack([d2[:, 0] - d1[:, 0], -d2[:, 0], d1[:, 0]], 1) / det[:, None]
    T = len(det)
    B = np.zeros((T, 3, 6))
    B[:, 0, 0::2], B[:, 1, 1::2] = gx, gy
    B[:, 2, 0::2], B[:, 2, 1::2] = gy, gx
    nu = float(poisson_ratio)
    D = np.array([[1 - nu, nu, 0], [nu, 1 - nu, 0], [0, 0, (1 - 2 * nu) / 2]])
    D = D / ((1 + nu) * (1 - 2 * nu))
    E = np.broadcast_to(np.asarray(young, dtype=float), (T,))
    Ke = (0.5 * np.abs(det) * E)[:, None, None] * np.einsum("tia,ij,tjb->tab", B, D, B)
    dof = np.stack([2 * mesh.triangles, 2 * mesh.triangles + 1], axis=2).reshape(T, 6)
    rows = np.repeat(dof, 6, axis=1).ravel()
    cols = np.tile(dof, (1, 6)).ravel()
    N = 2 * len(mesh.points)
    K = sp.csr_matrix((Ke.ravel(), (rows, cols)), shape=(N, N))
    free = np.stack([2 * mesh.interior, 2 * mesh.interior + 1], 1).ravel()
    A = sp.csr_matrix(K[free][:, free])
    A = sp.csr_matrix((A + A.T) * 0.5)
    A.sort_indices()
    area = 0.5 * np.abs(det)
    f = np.zeros(N)
    np.add.at(f, 2 * mesh.triangles.ravel() + 1, -np.repeat(area / 3, 3))
    return FEMSystem(A, f[free], mesh, np.array(E))
