"""P1 FEM matrices on random unstructured meshes: convergence order and SPD."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
import scipy.sparse.linalg as spla

from pdesurrogates.solvers.reference import (
    FEM_FAMILIES,
    elasticity_system,
    fem_family,
    fem_l2_error,
    fem_mesh,
    fem_sequence,
    fem_system,
    p1_assemble,
)

PI = np.pi


def _orders(domain, exact, kappa, f):
    errs, hs = [], []
    for m in (8, 16, 32):
        mesh = fem_mesh(m, domain=domain, seed=3)
        s = fem_system(mesh, kappa, f)
        x = spla.spsolve(s.A.tocsc(), s.b)
        errs.append(fem_l2_error(mesh, s.full(x), exact))
        hs.append(1.0 / m)  # lattice spacing (the longest edge is random)
    return np.diff(np.log(errs)) / np.diff(np.log(hs)), errs


def test_variable_coefficient_square_converges_at_order_two():
    def u(x):
        return np.sin(PI * x[:, 0]) * np.sin(PI * x[:, 1])

    def f(x):  # -div((1 + x) grad u)
        return (1 + x[:, 0]) * 2 * PI**2 * u(x) - PI * np.cos(PI * x[:, 0]) * np.sin(PI * x[:, 1])

    orders, errs = _orders("square", u, lambda c: 1 + c[:, 0], f)
    assert np.all(np.abs(orders - 2) < 0.25), orders
    assert errs[-1] < 3e-3


def test_poisson_lshape_converges_at_order_two():
    def u(x):  # zero on the whole L-shape boundary, re-entrant edges included
        return np.sin(2 * PI * x[:, 0]) * np.sin(2 * PI * x[:, 1])

    orders, _ = _orders("lshape", u, None, lambda x: 8 * PI**2 * u(x))
    assert np.all(np.abs(orders - 2) < 0.3), orders


def test_stiffness_annihilates_constants_and_mass_integrates_to_area():
    mesh = fem_mesh(10, domain="lshape", seed=0)
    K, M = p1_assemble(mesh, 2.5)
    assert np.abs(K @ np.ones(K.shape[0])).max() < 1e-12
    assert M.sum() == pytest.approx(0.75, rel=1e-12)


@pytest.mark.parametrize("kind", FEM_FAMILIES)
@pytest.mark.parametrize("domain", ["square", "lshape"])
def test_families_are_symmetric_positive_definite(kind, domain):
    A = fem_family(kind, 8, domain=domain, seed=1).A.toarray()
    assert np.array_equal(A, A.T)
    sla.cholesky(A)  # raises LinAlgError unless positive definite
    lam = np.linalg.eigvalsh(A)
    assert lam[0] > 1e-8 * lam[-1]


def test_elasticity_has_rigid_body_kernel_without_boundary():
    mesh = fem_mesh(5, seed=2)
    mesh.boundary[:] = False
    A = elasticity_system(mesh, 1.0, 0.3).A
    x = mesh.points
    rot = np.stack([-x[:, 1], x[:, 0]], 1).ravel()
    for v in (np.tile([1.0, 0.0], len(x)), np.tile([0.0, 1.0], len(x)), rot):
        assert np.abs(A @ v).max() < 1e-12


def test_sequence_shares_one_pattern_and_drifts():
    seq = fem_sequence(fem_mesh(12, seed=4), 3, seed=5)
    a, b = seq[0].A, seq[2].A
    assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
    assert 0 < abs(a - b).max() < abs(a).max()


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="domain must be one of"):
        fem_mesh(8, domain="disc")
    with pytest.raises(ValueError, match="even for an L-shape"):
        fem_mesh(7, domain="lshape")
    with pytest.raises(ValueError, match="jitter"):
        fem_mesh(8, jitter=0.6)
    with pytest.raises(ValueError, match="kind must be one of"):
        fem_family("stokes", 8)
