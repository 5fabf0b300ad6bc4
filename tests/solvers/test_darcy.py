"""The Darcy reference solver: convergence order, SPD operator, random fields."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg as spla

from pdesurrogates.errors import SolverError
from pdesurrogates.solvers.reference import (
    cell_centres,
    darcy_matrix,
    darcy_sample,
    gaussian_random_field,
    solve_darcy,
    threshold_coefficient,
)


def _manufactured(r):
    """u = sin(πx) sin(πy) with a = 2 + sin(πx) cos(2πy): exact u and matching f."""
    x = cell_centres(r)
    X, Y = np.meshgrid(x, x, indexing="ij")
    pi = np.pi
    u = np.sin(pi * X) * np.sin(pi * Y)
    a = 2 + np.sin(pi * X) * np.cos(2 * pi * Y)
    ax = pi * np.cos(pi * X) * np.cos(2 * pi * Y)
    ay = -2 * pi * np.sin(pi * X) * np.sin(2 * pi * Y)
    ux = pi * np.cos(pi * X) * np.sin(pi * Y)
    uy = pi * np.sin(pi * X) * np.cos(pi * Y)
    f = -(ax * ux + ay * uy) + 2 * pi**2 * a * u
    return a, f, u


def test_second_order_convergence_on_manufactured_solution():
    errors = []
    resolutions = [16, 32, 64, 128]
    for r in resolutions:
        a, f, exact = _manufactured(r)
        u = solve_darcy(a, f)
        errors.append(np.sqrt(np.mean((u - exact) ** 2)))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert errors[-1] < 1e-4
    assert np.all(np.abs(orders - 2) <= 0.2), orders


def test_constant_coefficient_matches_the_torsion_series():
    # -Δu = 1 on the unit square:
    # u(1/2, 1/2) = Σ_{k,l odd} 16 sin(kπ/2) sin(lπ/2) / (π⁴ k l (k² + l²))
    k = np.arange(1, 400, 2)
    K, L = np.meshgrid(k, k, indexing="ij")
    s = np.sin(K * np.pi / 2) * np.sin(L * np.pi / 2)
    centre = float(np.sum(16 * s / (np.pi**4 * K * L * (K**2 + L**2))))
    u = solve_darcy(np.ones((64, 64)))
    centre_h = u[31:33, 31:33].mean()  # the centre lies between four cells
    assert abs(centre_h - centre) < 2e-4 * 4  # O(h²) discretisation + averaging
    assert abs(centre - 0.07367) < 1e-4


def test_operator_is_symmetric_positive_definite():
    rng = np.random.default_rng(3)
    a = threshold_coefficient(gaussian_random_field(12, rng=rng))
    A = darcy_matrix(a)
    assert abs(A - A.T).max() == 0
    lam_min = spla.eigsh(A.tocsc(), k=1, sigma=0, which="LM", return_eigenvectors=False)[0]
    assert lam_min > 0
    # scaling a scales the solution inversely
    np.testing.assert_allclose(solve_darcy(2 * a), solve_darcy(a) / 2, rtol=1e-12)


def test_grf_covariance_matches_the_spectrum():
    r, n = 8, 4000
    rng = np.random.default_rng(0)
    fields = np.stack([gaussian_random_field(r, alpha=2.0, tau=3.0, rng=rng) for _ in range(n)])
    k = np.arange(r)
    lam = np.pi**2 * (k[:, None] ** 2 + k[None, :] ** 2) + 9.0
    x = cell_centres(r)
    phi = np.cos(np.pi * k[None, :] * x[:, None])  # (i, k)
    var = np.einsum("ik,jl,kl->ij", phi**2, phi**2, lam**-2.0) - lam[0, 0] ** -2.0
    emp = fields.var(axis=0)
    # Monte Carlo: the variance estimate has relative standard error sqrt(2/n) ≈ 2.2 %
    np.testing.assert_allclose(emp, var, rtol=0.1)
    assert abs(emp.mean() / var.mean() - 1) < 0.05


def test_grf_is_nested_across_resolutions():
    coarse = gaussian_random_field(32, rng=np.random.default_rng(5))
    fine = gaussian_random_field(64, rng=np.random.default_rng(5))
    restricted = 0.25 * (fine[::2, ::2] + fine[1::2, ::2] + fine[::2, 1::2] + fine[1::2, 1::2])
    assert np.abs(restricted - coarse).max() < 0.05 * np.abs(coarse).max()


def test_darcy_sample_is_deterministic_and_thresholded():
    (f1, _), (f2, _) = darcy_sample(3, 7, resolution=16), darcy_sample(3, 7, resolution=16)
    np.testing.assert_array_equal(f1["a"], f2["a"])
    assert set(np.unique(f1["a"])) <= {3.0, 12.0}
    assert (f1["u"] > 0).all()
    other, _ = darcy_sample(4, 7, resolution=16)
    assert not np.array_equal(other["a"], f1["a"])
    rough, _ = darcy_sample(3, 7, resolution=64, variant="rough")
    smooth, _ = darcy_sample(3, 7, resolution=64, variant="smooth")
    # the rough field switches value more often along grid lines
    assert np.abs(np.diff(rough["a"], axis=0)).mean() > np.abs(np.diff(smooth["a"], axis=0)).mean()


@pytest.mark.parametrize("bad", [2, 3, 5000, 16.5, "64", True])
def test_unsupported_resolution(bad):
    with pytest.raises(ValueError, match="resolution"):
        darcy_sample(0, 0, resolution=bad)


def test_bad_coefficient():
    with pytest.raises(SolverError, match="strictly positive"):
        solve_darcy(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="square"):
        solve_darcy(np.ones((8, 4)))
    with pytest.raises(ValueError, match="variant"):
        darcy_sample(0, 0, resolution=8, variant="bumpy")


def test_multiscale_coefficient_follows_its_formula():
    from pdesurrogates.solvers.reference import multiscale_coefficient

    a, freqs = multiscale_coefficient(16, rng=np.random.default_rng(0))
    again, _ = multiscale_coefficient(16, rng=np.random.default_rng(0))
    assert np.array_equal(a, again)
    k = np.arange(1, 7)
    assert np.all((2.0 ** (k - 1) <= freqs) & (freqs <= 2.0**k))
    x, y = cell_centres(16)[5], cell_centres(16)[11]
    expected = np.prod(
        (1 + 0.5 * np.cos(freqs * np.pi * (x + y)))
        * (1 + 0.5 * np.sin(freqs * np.pi * (y - 3 * x)))
    )
    assert a[5, 11] == pytest.approx(expected, rel=1e-12)


def test_multiscale_sample_is_solved_on_a_finer_grid():
    # refine = 3 nests cell centres: the 21² sample is the 63² solve at the shared centres,
    # and it is close to the 63² sample (itself solved on 189²).
    coarse, _ = darcy_sample(2, 5, resolution=21, variant="multiscale")
    fine, _ = darcy_sample(2, 5, resolution=63, variant="multiscale")
    np.testing.assert_allclose(fine["a"][1::3, 1::3], coarse["a"], rtol=1e-6)
    rel = np.linalg.norm(fine["u"][1::3, 1::3] - coarse["u"]) / np.linalg.norm(fine["u"])
    assert rel < 0.05
    a = coarse["a"]
    assert a.min() > 0.5**12 and a.max() < 1.5**12 and a.max() / a.min() > 10
