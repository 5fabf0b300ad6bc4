"""Problem gallery: matrices against pyamg, closed-form eigenvalues, exact solutions."""

from __future__ import annotations

import numpy as np
import pyamg
import pytest
import scipy.sparse.linalg as sla

from pdesurrogates.solvers import gallery


@pytest.mark.parametrize("shape", [(7,), (5, 6), (4, 3, 5)])
def test_laplacian_equals_pyamg(shape):
    A = gallery.laplacian(shape)
    B = pyamg.gallery.poisson(shape, format="csr")
    assert abs(A - B).max() == 0
    assert A.shape == (int(np.prod(shape)),) * 2


def test_poisson2d_eigenvalues_closed_form():
    n = 9
    A = gallery.poisson2d(n).toarray()
    k = np.arange(1, n + 1)
    lam1 = 2 - 2 * np.cos(np.pi * k / (n + 1))
    expected = np.sort((lam1[:, None] + lam1[None, :]).ravel())
    np.testing.assert_allclose(np.linalg.eigvalsh(A), expected, atol=1e-12)


def test_poisson3d_shape_and_stencil():
    A = gallery.poisson3d(4)
    assert A.shape == (64, 64)
    assert np.all(A.diagonal() == 6)
    # an interior node has six neighbours
    i = np.ravel_multi_index((1, 2, 1), (4, 4, 4))
    assert A[i].nnz == 7


def test_poisson_solution_is_second_order():
    # -u'' = f with u = sin(pi x) sin(pi y) on the unit square, h = 1/(n+1)
    errs = []
    for n in (15, 31):
        h = 1.0 / (n + 1)
        x = np.arange(1, n + 1) * h
        X, Y = np.meshgrid(x, x, indexing="ij")
        u = np.sin(np.pi * X) * np.sin(np.pi * Y)
        f = 2 * np.pi**2 * u * h**2
        sol = sla.spsolve(gallery.poisson2d(n).tocsc(), gallery.grid_to_vector(f))
        errs.append(np.abs(gallery.vector_to_grid(sol, (n, n)) - u).max())
    order = np.log2(errs[0] / errs[1])
    assert 1.8 < order < 2.2


def test_smoke_domain_structure():
    p = gallery.smoke_domain((6, 5))
    A = p.A.toarray()
    np.testing.assert_allclose(A, A.T)
    grid_diag = p.to_grid(np.diag(A).copy())
    # corner at the bottom (first cell): two fluid neighbours, walls elsewhere
    assert grid_diag[0, 0] == 2
    # cell in the top row (last axis high end is open): open face adds 1
    assert grid_diag[0, -1] == 3
    assert grid_diag[3, 2] == 4
    assert np.linalg.eigvalsh(A).min() > 0  # the open top makes it SPD
    # constant pressure is harmonic away from the open top: rows sum to zero there
    rows = A.sum(axis=1).reshape(6, 5)
    assert np.all(rows[:, :-1] == 0) and np.all(rows[:, -1] == 1)


def test_smoke_domain_obstacle_rows_are_identity():
    p = gallery.smoke_domain((16, 16), obstacles=[((0.5, 0.5), 0.2)])
    solid = ~p.mask.reshape(-1)
    assert solid.sum() > 0
    A = p.A.tocsr()
    sub = A[solid][:, solid].toarray()
    np.testing.assert_array_equal(sub, np.eye(solid.sum()))
    assert A[solid][:, ~solid].nnz == 0
    b = gallery.random_rhs(p)
    assert np.all(b[solid] == 0)
    x = sla.spsolve(A.tocsc(), b)
    assert np.all(x[solid] == 0)


def test_smoke_domain_3d_and_sealed_pocket_error():
    p = gallery.smoke_domain((4, 4, 4))
    assert p.A.shape == (64, 64) and p.dim == 3
    solid = np.zeros((8, 8), bool)
    solid[2:6, 2] = solid[2:6, 5] = solid[2, 2:6] = solid[5, 2:6] = True  # closed ring
    with pytest.raises(ValueError, match="sealed off"):
        gallery.smoke_domain((8, 8), solid=solid)


def test_variable_coefficient_constant_equals_laplacian():
    p = gallery.variable_coefficient(np.ones((5, 7)))
    assert abs(p.A - gallery.laplacian((5, 7))).max() < 1e-14


def test_variable_coefficient_harmonic_faces_and_spd():
    k = np.array([[1.0, 3.0], [2.0, 5.0]])
    A = gallery.variable_coefficient(k).A.toarray()
    # coupling between cells (0,0) and (0,1) is the harmonic mean 2*1*3/(1+3)
    assert A[0, 1] == pytest.approx(-1.5)
    assert A[0, 2] == pytest.approx(-2 * 1 * 2 / 3)
    # diagonal of cell (0,0): two boundary faces (k=1) + two interior faces
    assert A[0, 0] == pytest.approx(1 + 1 + 1.5 + 4 / 3)
    assert np.linalg.eigvalsh(A).min() > 0


@pytest.mark.parametrize(
    "bad", [np.zeros((3, 3)), -np.ones((3, 3)), np.full((3, 3), np.nan), np.ones(4)]
)
def test_variable_coefficient_rejects_bad_coefficients(bad):
    with pytest.raises(ValueError, match="coeff"):
        gallery.variable_coefficient(bad)


def test_grid_vector_round_trip_and_errors():
    g = np.arange(12.0).reshape(3, 4)
    v = gallery.grid_to_vector(g)
    np.testing.assert_array_equal(gallery.vector_to_grid(v, (3, 4)), g)
    with pytest.raises(ValueError, match="does not hold"):
        gallery.vector_to_grid(v, (5, 4))
    with pytest.raises(ValueError, match="expected"):
        gallery.grid_to_vector(g, (4, 3))
    with pytest.raises(ValueError, match="tuple"):
        gallery.laplacian(5)


def test_rhs_helpers_are_seeded():
    p = gallery.dirichlet_box((8, 8))
    np.testing.assert_array_equal(gallery.random_rhs(p, seed=3), gallery.random_rhs(p, seed=3))
    s = gallery.smooth_rhs(p, seed=1)
    assert s.shape == (64,) and np.linalg.norm(s) > 0
