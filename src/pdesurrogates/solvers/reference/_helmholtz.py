"""Helmholtz: −Δu − (ω/c(x))² u = f on the unit square, ∂u/∂n = g on the walls.

The data set-up of de Hoop, Huang, Qian and Stuart (arXiv 2203.13181), used by MgNO
(Table 3): frequency ω = 1000, no source (f = 0), Neumann data ``g = 1`` on the part
``|x − ½| ≤ 0.15`` of the top wall (y = 1) and ``g = 0`` elsewhere, and a wavespeed

    c(x) = 20 + tanh(ã(x)),  ã = Σ_{l=1}^{100} θ_l √λ_l φ_l,  θ_l ~ N(0, 1),
    λ_l = (π²|l|² + τ²)^(−2), τ = 3,

with φ_l the Neumann cosine modes of the unit square (√2 cos(πl₁x), √2 cos(πl₂y) or
2 cos(πl₁x) cos(πl₂y)) taken in increasing order of |l|². The map learned is c ↦ u.
The wavelength is about 2π·20/1000 ≈ 0.126, i.e. 12.6 points per wavelength at 101².

Discretisation: the 5-point finite-difference (finite-volume on the dual cells) scheme on
the ``n × n`` nodes ``x_i = i/(n − 1)``, walls included: with the 1-D stiffness ``S``
(``tridiag(−1, 2, −1)/h``, Neumann ends) and lumped mass ``M = h·diag(½, 1, …, 1, ½)``,

    (S ⊗ M + M ⊗ S − diag(k²) (M ⊗ M)) u = (M ⊗ M) f + boundary flux of g,

which is the ghost-point Neumann scheme, second-order accurate (verified against a
manufactured solution in the tests). The sparse system is symmetric and indefinite and
is solved directly. With Neumann walls and no damping, a sample close to a resonance
has a large solution: this is the benchmark's set-up, kept as it is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from pdesurrogates.errors import SolverError

__all__ = [
    "HELMHOLTZ_DEFAULTS",
    "helmholtz_dataset_layout",
    "helmholtz_matrix",
    "helmholtz_nodes",
    "helmholtz_sample",
    "solve_helmholtz",
    "wavespeed_field",
]

#: The benchmark's constants: frequency (rad/s), mean and spread of the wavespeed, the
#: number of random modes and the field's length-scale parameter.
HELMHOLTZ_DEFAULTS: dict[str, float] = {
    "omega": 1000.0,
    "c_mean": 20.0,
    "n_modes": 100,
    "tau": 3.0,
    "source_centre": 0.5,
    "source_width": 0.3,
}
MIN_POINTS, MAX_POINTS = 3, 4097
_SIDES = ("left", "right", "bottom", "top")


def helmholtz_nodes(n_points: int) -> np.ndarray:
    """The ``n`` node coordinates ``i/(n − 1)`` on [0, 1], walls included."""
    if isinstance(n_points, bool) or not isinstance(n_points, int | np.integer):
        raise ValueError(f"resolution must be an integer, got {n_points!r}")
    if not MIN_POINTS <= n_points <= MAX_POINTS:
        raise ValueError(
            f"resolution {n_points} is not supported: the Helmholtz generator works on "
            f"{MIN_POINTS} to {MAX_POINTS} grid points per side"
        )
    return np.linspace(0.0, 1.0, int(n_points))


def _mode_indices(n_modes: int) -> np.ndarray:
    """The first ``n_modes`` pairs (l1, l2) != (0, 0), by |l|² then l1."""
    m = int(np.ceil(np.sqrt(n_modes))) + 2
    pairs = [(i, j) for i in range(m) for j in range(m) if (i, j) != (0, 0)]
    pairs.sort(key=lambda p: (p[0] ** 2 + p[1] ** 2, p[0]))
    return np.array(pairs[:n_modes])


def wavespeed_field(
    n_points: int,
    *,
    rng: np.random.Generator,
    c_mean: float = 20.0,
    n_modes: int = 100,
    tau: float = 3.0,
) -> np.ndarray:
    """Sample ``c = c_mean + tanh(ã)`` at the nodes (see the module docstring).

    The ``n_modes`` standard normals are the only random numbers, so one generator state
    gives the same continuous field at every resolution.

    Examples
    --------
    >>> c = wavespeed_field(101, rng=np.random.default_rng(0))
    >>> c.shape, bool(19 < c.min() and c.max() < 21)
    ((101, 101), True)
    """
    x = helmholtz_nodes(n_points)
    if n_modes < 1 or tau <= 0:
        raise ValueError(f"n_modes must be >= 1 and tau > 0, got {n_modes}, {tau}")
    lm = _mode_indices(int(n_modes))
    theta = rng.standard_normal(len(lm))
    sqrt_lam = 1.0 / (np.pi**2 * (lm**2).sum(axis=1) + tau**2)  # √((π²|l|² + τ²)^(−2))
    cx = np.cos(np.pi * lm[:, 0, None] * x[None, :])  # (modes, n)
    cy = np.cos(np.pi * lm[:, 1, None] * x[None, :])
    norm = np.where((lm == 0).any(axis=1), np.sqrt(2.0), 2.0)
    a = np.einsum("m,mi,mj->ij", theta * sqrt_lam * norm, cx, cy)
    return c_mean + np.tanh(a)


def _stiffness_mass(n: int) -> tuple[sp.csr_matrix, np.ndarray]:
    h = 1.0 / (n - 1)
    main = np.full(n, 2.0)
    main[[0, -1]] = 1.0
    stiff = sp.diags([-np.ones(n - 1), main, -np.ones(n - 1)], [-1, 0, 1]) / h
    mass = np.full(n, h)
    mass[[0, -1]] = h / 2
    return sp.csr_matrix(stiff), mass


def helmholtz_matrix(c: np.ndarray, omega: float) -> sp.csr_matrix:
    """The sparse symmetric matrix of −Δ − (ω/c)² with Neumann walls (5-point, nodal).

    Parameters
    ----------
    c : ndarray, shape (n, n)
        Wavespeed at the nodes, ``c[i, j] = c(x_i, y_j)``; positive.
    omega : float
        Angular frequency (rad/s).

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n², n²)
        Unknowns in C order (index ``i * n + j``); rows are scaled by the dual-cell areas.
    """
    c = np.asarray(c, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] < MIN_POINTS:
        raise ValueError(f"wavespeed c must be a square 2-D array (n >= 3), got {c.shape}")
    if not np.isfinite(c).all() or (c <= 0).any():
        raise SolverError("wavespeed c must be finite and strictly positive everywhere")
    if not np.isfinite(omega) or omega < 0:
        raise ValueError(f"omega must be a finite frequency >= 0, got {omega}")
    stiff, mass = _stiffness_mass(c.shape[0])
    mm = np.outer(mass, mass).ravel()
    m_diag = sp.diags(mass)
    lap = sp.kron(stiff, m_diag) + sp.kron(m_diag, stiff)
    return sp.csr_matrix(lap - sp.diags(mm * (omega / c.ravel()) ** 2))


def solve_helmholtz(
    c: np.ndarray,
    omega: float,
    f: float | np.ndarray = 0.0,
    neumann: dict[str, Any] | None = None,
) -> np.ndarray:
    """Solve −Δu − (ω/c)² u = f, ∂u/∂n = g on the walls, with a sparse direct solver.

    Parameters
    ----------
    c : ndarray, shape (n, n)
        Wavespeed at the nodes ``(i/(n−1), j/(n−1))``.
    omega : float
        Angular frequency (rad/s).
    f : float or ndarray, shape (n, n)
        Source at the nodes (default 0).
    neumann : dict, optional
        Outward normal derivative per wall, ``{"left"|"right"|"bottom"|"top": g}`` with
        ``g`` a number or the ``n`` values at that wall's nodes (left/right walls are
        ``x = 0``/``x = 1`` and run along y; bottom/top are ``y = 0``/``y = 1``). A wall
        left out has ``g = 0``.

    Returns
    -------
    ndarray, shape (n, n)
        ``u`` at the nodes.

    Examples
    --------
    >>> n = 65
    >>> x = np.linspace(0, 1, n)
    >>> exact = np.cos(np.pi * x)[:, None] * np.ones(n)  # ∂u/∂n = 0 on every wall
    >>> u = solve_helmholtz(np.ones((n, n)), 2.0, f=(np.pi**2 - 4.0) * exact)
    >>> bool(np.abs(u - exact).max() < 1e-3)
    True
    """
    c = np.asarray(c, dtype=np.float64)
    mat = helmholtz_matrix(c, omega)
    n = c.shape[0]
    _, mass = _stiffness_mass(n)
    rhs = np.broadcast_to(np.asarray(f, dtype=np.float64), c.shape) * np.outer(mass, mass)
    rhs = rhs.copy()
    for side, g in (neumann or {}).items():
        if side not in _SIDES:
            raise ValueError(f"neumann keys must be among {_SIDES}, got {side!r}")
        vals = np.broadcast_to(np.asarray(g, dtype=np.float64), (n,)) * mass
        index = {"left": (0, slice(None)), "right": (-1, slice(None))}.get(side)
        index = index or {"bottom": (slice(None), 0), "top": (slice(None), -1)}[side]
        rhs[index] += vals
    if not np.isfinite(rhs).all():
        raise SolverError("the source f or the Neumann data hold NaN or Inf")
    u = spla.spsolve(mat.tocsc(), rhs.ravel())
    if not np.isfinite(u).all():
        raise SolverError(
            f"the Helmholtz system is singular at omega = {omega:g}: the frequency is a "
            "resonance of this wavespeed; change omega or the field"
        )
    return u.reshape(c.shape)


def helmholtz_sample(
    index: int, seed: int, *, resolution: int, omega: float = 1000.0, refine: int = 1
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """One Helmholtz sample, with randomness drawn only from ``(seed, index)``.

    ``refine > 1`` solves on the nested grid of ``refine·(resolution − 1) + 1`` points and
    keeps every ``refine``-th node: the stored ``u`` is then closer to the PDE's solution
    (the 5-point scheme's phase error grows with ``(ωh/c)²`` times the number of
    wavelengths, and the Neumann box has no damping). ``refine = 1`` is the benchmark's
    set-up, the discrete solution on the stored grid itself.

    Returns ``({"c": wavespeed, "u": solution}, {})``.
    """
    d = HELMHOLTZ_DEFAULTS
    if isinstance(refine, bool) or not isinstance(refine, int | np.integer) or refine < 1:
        raise ValueError(f"refine must be a positive integer, got {refine!r}")
    helmholtz_nodes(resolution)
    fine = int(refine) * (int(resolution) - 1) + 1
    rng = np.random.default_rng([int(seed), int(index)])
    c = wavespeed_field(fine, rng=rng, c_mean=d["c_mean"], n_modes=int(d["n_modes"]), tau=d["tau"])
    x = helmholtz_nodes(fine)
    bump = (np.abs(x - d["source_centre"]) <= d["source_width"] / 2 + 1e-12).astype(float)
    u = solve_helmholtz(c, omega, 0.0, neumann={"top": bump})
    keep = slice(None, None, int(refine))
    return {"c": c[keep, keep].astype(np.float32), "u": u[keep, keep].astype(np.float32)}, {}


def helmholtz_dataset_layout(resolution: int, omega: float = 1000.0) -> dict[str, Any]:
    """Keyword arguments for :func:`pdesurrogates.datasets.generate_dataset` (plain dicts)."""
    x = helmholtz_nodes(resolution)
    return {
        "coords": {"x": x, "y": x},
        "fields": {
            "c": {
                "dims": ("sample", "x", "y"),
                "role": "input",
                "units": "m/s",
                "long_name": "wavespeed c",
            },
            "u": {
                "dims": ("sample", "x", "y"),
                "role": "output",
                "units": "1",
                "long_name": "wavefield u",
            },
        },
        "units": {"x": "m", "y": "m"},
        "dataset_name": f"helmholtz-{resolution}",
        "pde": (
            f"-lap u - (omega/c)^2 u = 0 on (0,1)^2, omega = {omega:g} rad/s; du/dn = 1 on "
            "{y = 1, |x - 0.5| <= 0.15}, du/dn = 0 on the rest of the walls; "
            "c = 20 + tanh(sum of 100 cosine modes, tau = 3)"
        ),
    }
