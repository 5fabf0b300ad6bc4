"""The Helmholtz reference solver: second-order convergence, symmetry, the benchmark's
wavespeed field and samples."""

from __future__ import annotations

import numpy as np
import pytest

from pdesurrogates.errors import SolverError
from pdesurrogates.solvers.reference import (
    helmholtz_matrix,
    helmholtz_nodes,
    helmholtz_sample,
    solve_helmholtz,
    wavespeed_field,
)

A, B, PHI, OMEGA = 2.3, 1.7, 0.4, 2.0


def _manufactured(n):
    """u = cos(a x + b y + φ) with c = 1 + 0.3 sin(πx) cos(πy): f and the wall fluxes."""
    x = helmholtz_nodes(n)
    X, Y = np.meshgrid(x, x, indexing="ij")
    u = np.cos(A * X + B * Y + PHI)
    c = 1 + 0.3 * np.sin(np.pi * X) * np.cos(np.pi * Y)
    f = (A**2 + B**2) * u - (OMEGA / c) ** 2 * u
    neumann = {  # outward normal derivatives
        "left": A * np.sin(B * x + PHI),
        "right": -A * np.sin(A + B * x + PHI),
        "bottom": B * np.sin(A * x + PHI),
        "top": -B * np.sin(A * x + B + PHI),
    }
    return c, f, neumann, u


def test_second_order_convergence_on_a_manufactured_solution():
    errors = []
    for n in (17, 33, 65):
        c, f, neumann, exact = _manufactured(n)
        u = solve_helmholtz(c, OMEGA, f, neumann)
        errors.append(np.abs(u - exact).max())
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(orders - 2) < 0.15), orders
    assert errors[-1] < 1e-3, errors


def test_wall_fluxes_matter():
    # dropping the Neumann data changes the solution by O(1), not O(h²)
    c, f, _, exact = _manufactured(33)
    assert np.abs(solve_helmholtz(c, OMEGA, f) - exact).max() > 0.1


def test_matrix_is_symmetric_and_matches_the_five_point_stencil():
    n = 9
    c = np.full((n, n), 2.0)
    mat = helmholtz_matrix(c, 4.0)
    assert abs(mat - mat.T).max() < 1e-12
    h = 1 / (n - 1)
    i = 4 * n + 4  # an interior node: h² (4/h² − k²) on the diagonal, −1 off it
    assert mat[i, i] == pytest.approx(4 - h**2 * 4.0)
    assert mat[i, i + 1] == pytest.approx(-1) and mat[i, i + n] == pytest.approx(-1)
    assert mat[0, 0] == pytest.approx(1 - h**2 * 4.0 / 4)  # corner: quarter cell


def test_wavespeed_field_is_the_benchmarks_and_nests():
    c = wavespeed_field(101, rng=np.random.default_rng(0))
    assert c.shape == (101, 101) and 19 < c.min() and c.max() < 21
    assert 0.02 < c.std() < 0.5  # tanh of a field of std about 0.1
    fine = wavespeed_field(201, rng=np.random.default_rng(0))
    np.testing.assert_allclose(fine[::2, ::2], c, rtol=0, atol=1e-12)


def test_sample_is_reproducible_and_refinement_keeps_the_stored_nodes():
    fields, params = helmholtz_sample(3, 1, resolution=21, omega=100.0)
    again, _ = helmholtz_sample(3, 1, resolution=21, omega=100.0)
    assert params == {} and set(fields) == {"c", "u"}
    assert np.array_equal(fields["u"], again["u"]) and fields["u"].shape == (21, 21)
    fine, _ = helmholtz_sample(3, 1, resolution=21, omega=100.0, refine=4)
    np.testing.assert_allclose(fine["c"], fields["c"], atol=1e-5)
    # at ω = 100 (25 points per wavelength at 21²) the error is the bump's jumps at the
    # wall (first order): refining 4x changes u by about 12 % at 21², 6 % at 41²
    rel = [
        np.linalg.norm(b["u"] - a["u"]) / np.linalg.norm(b["u"])
        for a, b in [(fields, fine), *_pair(41)]
    ]
    assert 0.05 < rel[0] < 0.2 and 1.6 < rel[0] / rel[1] < 2.4, rel


def _pair(n):
    return [tuple(helmholtz_sample(3, 1, resolution=n, omega=100.0, refine=m)[0] for m in (1, 4))]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: solve_helmholtz(np.zeros((5, 5)), 1.0), SolverError, "strictly positive"),
        (lambda: solve_helmholtz(np.ones((5, 4)), 1.0), ValueError, "square"),
        (lambda: solve_helmholtz(np.ones((5, 5)), 1.0, neumann={"up": 1}), ValueError, "keys"),
        (lambda: helmholtz_nodes(2), ValueError, "3 to 4097"),
        (lambda: helmholtz_sample(0, 0, resolution=9, refine=0), ValueError, "refine"),
    ],
)
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()
