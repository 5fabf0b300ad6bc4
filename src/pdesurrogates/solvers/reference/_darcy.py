"""Darcy flow: −∇·(a ∇u) = f on the unit square, u = 0 on the boundary.

Discretisation: cell-centred finite volumes (the 5-point stencil) on an ``R × R`` grid of
cells of width ``h = 1/R`` with centres ``x_i = (i + 1/2) h``. Face coefficients are the
harmonic means of the two neighbouring cells; a boundary face uses the cell's own
coefficient at distance ``h/2`` from the wall. The scheme is second-order accurate
(verified against a manufactured solution in the tests) and the matrix is symmetric
positive definite. Grids of ``R`` and ``2R`` cells nest, which suits multigrid models.

The coefficient is a Gaussian random field with covariance ``(−Δ + τ² I)^(−α)`` (Neumann
cosine modes), thresholded to 12 where it is non-negative and 3 elsewhere, as in the
FNO and MgNO Darcy benchmarks. ``variant="smooth"`` uses (α, τ) = (2, 3) and ``"rough"``
uses (2, 5), which gives smaller, more numerous inclusions.

``variant="multiscale"`` is the trigonometric multiscale coefficient of the HANO and MgNO
"Darcy multiscale" benchmark (Owhadi's gamblet example with random frequencies)::

    a(x) = Π_{k=1}^{6} (1 + ½ cos(a_k π (x + y))) (1 + ½ sin(a_k π (y − 3x))),
    a_k ~ U[2^(k−1), 2^k]

which spans about 2.4e−4 to 130. Its finest scale (period 1/64) is below a 64² grid, so
the solve runs on a grid ``refine`` (3) times finer, whose cell centres contain the
stored ones, and the stored ``a`` and ``u`` are its values at the stored cell centres.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.fft
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from pdesurrogates.errors import SolverError

__all__ = [
    "DARCY_VARIANTS",
    "MAX_RESOLUTION",
    "MIN_RESOLUTION",
    "cell_centres",
    "darcy_dataset_layout",
    "darcy_matrix",
    "darcy_sample",
    "gaussian_random_field",
    "multiscale_coefficient",
    "solve_darcy",
    "threshold_coefficient",
]

DARCY_VARIANTS: dict[str, dict[str, float]] = {
    "smooth": {"alpha": 2.0, "tau": 3.0},
    "rough": {"alpha": 2.0, "tau": 5.0},
    "multiscale": {"n_scales": 6, "refine": 3},
}
MIN_RESOLUTION = 4
MAX_RESOLUTION = 2048
A_HIGH, A_LOW = 12.0, 3.0


def _check_resolution(resolution: Any) -> int:
    if isinstance(resolution, bool) or not isinstance(resolution, int | np.integer):
        raise ValueError(f"resolution must be an integer, got {resolution!r}")
    if not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise ValueError(
            f"resolution {resolution} is not supported: the Darcy generator works on "
            f"{MIN_RESOLUTION} to {MAX_RESOLUTION} cells per side"
        )
    return int(resolution)


def cell_centres(resolution: int) -> np.ndarray:
    """Cell-centre coordinates ``(i + 1/2) / R`` of an ``R``-cell grid on [0, 1]."""
    r = _check_resolution(resolution)
    return (np.arange(r) + 0.5) / r


def gaussian_random_field(
    resolution: int,
    *,
    alpha: float = 2.0,
    tau: float = 3.0,
    rng: np.random.Generator,
) -> np.ndarray:
    """Sample a zero-mean Gaussian random field with covariance ``(−Δ + τ²)^(−α)``.

    The field is a cosine series (Neumann eigenfunctions of −Δ on the unit square) with
    eigenvalues ``π²|k|² + τ²``, evaluated at the cell centres with a type-II inverse DCT.
    The mean mode is dropped. Modes are drawn in nested shells, so a generator in the
    same state gives the same low modes at every resolution: a field sampled at 128² is
    a refinement of the one sampled at 64².

    Returns
    -------
    ndarray, shape (resolution, resolution)
    """
    r = _check_resolution(resolution)
    if alpha <= 0 or tau <= 0:
        raise ValueError(f"alpha and tau must be > 0, got alpha={alpha}, tau={tau}")
    k = np.arange(r)
    lam = np.pi**2 * (k[:, None] ** 2 + k[None, :] ** 2) + tau**2
    # Draw the modes shell by shell (all of max(k, l) = s before s + 1), so the first
    # m x m modes are the same for every resolution r >= m: one seed gives the same
    # continuous field, sampled on any grid.
    s = np.maximum(k[:, None], k[None, :])
    order = s**2 + np.where(k[:, None] == s, k[None, :], s + 1 + k[:, None])
    coeff = rng.standard_normal(r * r)[order] * lam ** (-alpha / 2)
    coeff[0, 0] = 0.0
    # ψ(x_i, y_j) = Σ c_kl cos(π k x_i) cos(π l y_j), x_i = (i + 1/2)/r: an inverse DCT-II.
    # scipy's idct type 2 with norm=None computes x_i = c_0/N + (2/N) Σ_k c_k cos(...)/... ;
    # rescale so each term has unit amplitude.
    scaled = coeff.copy()
    scaled[1:, :] *= 0.5
    scaled[:, 1:] *= 0.5
    return scipy.fft.idctn(scaled, type=2, norm=None) * (4 * r * r)


def multiscale_coefficient(
    resolution: int, *, n_scales: int = 6, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Sample the trigonometric multiscale coefficient at the cell centres.

    ``a(x) = Π_k (1 + ½cos(a_k π(x + y))) (1 + ½sin(a_k π(y − 3x)))`` with
    ``a_k ~ U[2^(k−1), 2^k]``, ``k = 1..n_scales``. The frequencies are the only random
    numbers, so the same generator state gives the same continuous field on every grid.

    Returns
    -------
    a : ndarray, shape (resolution, resolution)
        The coefficient, ``a[i, j] = a(x_i, y_j)``.
    freqs : ndarray, shape (n_scales,)
        The frequencies ``a_k``.

    Examples
    --------
    >>> a, freqs = multiscale_coefficient(16, rng=np.random.default_rng(0))
    >>> a.shape, bool(a.min() >= 0.5**12 and a.max() <= 1.5**12), freqs.round(2).tolist()[:2]
    ((16, 16), True, [1.64, 2.54])
    """
    if isinstance(n_scales, bool) or not isinstance(n_scales, int) or n_scales < 1:
        raise ValueError(f"n_scales must be a positive integer, got {n_scales!r}")
    x = cell_centres(resolution)
    X, Y = np.meshgrid(x, x, indexing="ij")
    k = np.arange(1, n_scales + 1)
    freqs = rng.uniform(2.0 ** (k - 1), 2.0**k)
    a = np.ones_like(X)
    for f in freqs:
        a *= (1 + 0.5 * np.cos(f * np.pi * (X + Y))) * (1 + 0.5 * np.sin(f * np.pi * (Y - 3 * X)))
    return a, freqs


def threshold_coefficient(psi: np.ndarray) -> np.ndarray:
    """Piecewise-constant coefficient: 12 where ``psi >= 0``, 3 elsewhere."""
    return np.where(psi >= 0, A_HIGH, A_LOW)


def darcy_matrix(a: np.ndarray) -> sp.csr_matrix:
    """Sparse SPD matrix of −∇·(a∇·) with zero Dirichlet walls, cell-centred, 5-point.

    Parameters
    ----------
    a : ndarray, shape (R, R)
        Positive coefficient at the cell centres, indexed ``a[i, j]`` = a(x_i, y_j).

    Returns
    -------
    scipy.sparse.csr_matrix, shape (R², R²)
        Unknowns ordered as ``a.ravel()`` (C order: index ``i * R + j``).
    """
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"coefficient a must be a square 2-D array, got shape {a.shape}")
    if not np.isfinite(a).all() or (a <= 0).any():
        raise SolverError("coefficient a must be finite and strictly positive everywhere")
    r = a.shape[0]
    h2 = (1.0 / r) ** 2
    idx = np.arange(r * r).reshape(r, r)
    # harmonic means on interior faces
    fx = 2 * a[1:, :] * a[:-1, :] / (a[1:, :] + a[:-1, :])  # faces between i and i+1
    fy = 2 * a[:, 1:] * a[:, :-1] / (a[:, 1:] + a[:, :-1])  # faces between j and j+1
    diag = np.zeros((r, r))
    diag[1:, :] += fx
    diag[:-1, :] += fx
    diag[:, 1:] += fy
    diag[:, :-1] += fy
    # boundary faces: coefficient of the cell, distance h/2 -> weight 2a
    diag[0, :] += 2 * a[0, :]
    diag[-1, :] += 2 * a[-1, :]
    diag[:, 0] += 2 * a[:, 0]
    diag[:, -1] += 2 * a[:, -1]
    rows = np.concatenate(
        [
            idx.ravel(),
            idx[1:, :].ravel(),
            idx[:-1, :].ravel(),
            idx[:, 1:].ravel(),
            idx[:, :-1].ravel(),
        ]
    )
    cols = np.concatenate(
        [
            idx.ravel(),
            idx[:-1, :].ravel(),
            idx[1:, :].ravel(),
            idx[:, :-1].ravel(),
            idx[:, 1:].ravel(),
        ]
    )
    vals = np.concatenate([diag.ravel(), -fx.ravel(), -fx.ravel(), -fy.ravel(), -fy.ravel()])
    return sp.csr_matrix((vals / h2, (rows, cols)), shape=(r * r, r * r))


def solve_darcy(a: np.ndarray, f: float | np.ndarray = 1.0) -> np.ndarray:
    """Solve −∇·(a∇u) = f, u = 0 on the walls, with a sparse direct solver.

    Parameters
    ----------
    a : ndarray, shape (R, R)
        Coefficient at the cell centres.
    f : float or ndarray, shape (R, R)
        Right-hand side at the cell centres (default 1).

    Returns
    -------
    ndarray, shape (R, R)
        ``u`` at the cell centres.

    Examples
    --------
    >>> u = solve_darcy(np.ones((32, 32)))
    >>> round(float(u.max()), 3)  # the peak of the unit-square torsion problem is 0.0737
    0.074
    """
    a = np.asarray(a, dtype=np.float64)
    mat = darcy_matrix(a)
    rhs = np.broadcast_to(np.asarray(f, dtype=np.float64), a.shape).ravel()
    if not np.isfinite(rhs).all():
        raise SolverError("right-hand side f holds NaN or Inf")
    u = spla.spsolve(mat.tocsc(), rhs, permc_spec="MMD_AT_PLUS_A")
    return u.reshape(a.shape)


def darcy_sample(
    index: int, seed: int, *, resolution: int, variant: str = "smooth"
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """One Darcy sample, with randomness drawn only from ``(seed, index)``.

    Returns ``({"a": coefficient, "u": solution}, {})`` (no per-sample scalar parameters).
    """
    if variant not in DARCY_VARIANTS:
        raise ValueError(f"variant must be one of {sorted(DARCY_VARIANTS)}, got {variant!r}")
    rng = np.random.default_rng([int(seed), int(index)])
    if variant == "multiscale":
        m = int(DARCY_VARIANTS[variant]["refine"])  # odd: coarse centres are fine centres
        if _check_resolution(resolution) * m > MAX_RESOLUTION:
            raise ValueError(
                f"resolution {resolution} is too fine for the multiscale variant, which "
                f"solves on a {m}x finer grid: use at most {MAX_RESOLUTION // m}"
            )
        fine, _ = multiscale_coefficient(
            _check_resolution(resolution) * m,
            n_scales=int(DARCY_VARIANTS[variant]["n_scales"]),
            rng=rng,
        )
        keep = slice(m // 2, None, m)
        a, u = fine[keep, keep], solve_darcy(fine, 1.0)[keep, keep]
    else:
        psi = gaussian_random_field(resolution, rng=rng, **DARCY_VARIANTS[variant])
        a = threshold_coefficient(psi)
        u = solve_darcy(a, 1.0)
    return {"a": a.astype(np.float32), "u": u.astype(np.float32)}, {}


_COEFFICIENT = {
    "smooth": "a in {3, 12}",
    "rough": "a in {3, 12}",
    "multiscale": (
        "a = prod_k (1 + cos(a_k pi (x + y))/2)(1 + sin(a_k pi (y - 3x))/2), "
        "a_k ~ U[2^(k-1), 2^k], k = 1..6"
    ),
}


def darcy_dataset_layout(resolution: int, variant: str = "smooth") -> dict[str, Any]:
    """Keyword arguments for :func:`pdesurrogates.datasets.generate_dataset`.

    Plain dictionaries (coords, field and parameter specs, names), so this module does not
    depend on the dataset layer.
    """
    x = cell_centres(resolution)
    if variant not in DARCY_VARIANTS:
        raise ValueError(f"variant must be one of {sorted(DARCY_VARIANTS)}, got {variant!r}")
    return {
        "coords": {"x": x, "y": x},
        "fields": {
            "a": {
                "dims": ("sample", "x", "y"),
                "role": "input",
                "units": "1",
                "long_name": "permeability a",
            },
            "u": {
                "dims": ("sample", "x", "y"),
                "role": "output",
                "units": "1",
                "long_name": "pressure u",
            },
        },
        "units": {"x": "1", "y": "1"},
        "dataset_name": f"darcy-{variant}-{resolution}",
        "pde": "-div(a grad u) = 1 on (0,1)^2, u = 0 on the boundary; " + _COEFFICIENT[variant],
    }
