"""Multigrid V-cycles: Galerkin, compact and geometric coarse operators."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from pdesurrogates.errors import SolverError
from pdesurrogates.solvers import gallery
from pdesurrogates.solvers._multigrid import MultigridHierarchy, geometric_coarse


def _dense(h, n):
    return np.column_stack([h.matvec(e) for e in np.eye(n)])


@pytest.mark.parametrize("shape", [(8, 8), (6, 10), (8, 8, 8), (4, 6, 8)])
def test_geometric_coarse_of_the_laplacian_is_the_coarse_laplacian(shape):
    # unscaled FV: coarse operator = 2^(d-2) x the Laplacian on the coarse grid
    Ac = geometric_coarse(gallery.laplacian(shape), shape)
    coarse = tuple((s + 1) // 2 for s in shape)
    ref = 2.0 ** (len(shape) - 2) * gallery.laplacian(coarse)
    assert abs(Ac - ref).max() < 1e-12


def test_geometric_coarse_keeps_solid_cells_and_sums_faces():
    p = gallery.smoke_domain((8, 8), solid=np.pad(np.ones((2, 2), bool), ((0, 6), (0, 6))))
    Ac = geometric_coarse(p.A, p.shape).toarray()
    assert Ac[0, 0] == 1 and np.count_nonzero(Ac[0]) == 1  # all four children solid
    # a coarse face of the empty interior covers two unit fine faces: 0.5 * 2 = 1
    assert Ac[5, 6] == pytest.approx(-1.0)
    assert np.allclose(Ac, Ac.T)
    assert np.linalg.eigvalsh(Ac).min() > 0


@pytest.mark.parametrize("coarse", ["galerkin", "compact", "geometric"])
@pytest.mark.parametrize("kind", ["poisson", "varcoef", "smoke"])
def test_every_cycle_is_spd_in_3d(coarse, kind):
    shape = (6, 6, 6)
    p = {
        "poisson": gallery.dirichlet_box(shape),
        "varcoef": gallery.random_coefficient(shape, contrast=1e4, correlation=1.0),
        "smoke": gallery.smoke_domain(shape, obstacles=[((0.5, 0.5, 0.4), 0.25)]),
    }[kind]
    h = MultigridHierarchy(None, p, coarse=coarse)
    assert len(h.levels) >= 2
    B = _dense(h, p.n)
    assert np.abs(B - B.T).max() < 1e-12 * np.abs(B).max()
    assert np.linalg.eigvalsh((B + B.T) / 2).min() > 0


def _rho(h, A, steps=25, seed=0):
    """A-norm contraction of E = I - B A by power iteration."""
    e = np.random.default_rng(seed).standard_normal(A.shape[0])
    rho = 0.0
    for _ in range(steps):
        nrm = np.sqrt(e @ (A @ e))
        e = e / nrm
        e = e - h.matvec(A @ e)
        rho = np.sqrt(e @ (A @ e))
    return rho


def test_convergence_factor_is_mesh_independent_in_3d():
    rhos = {}
    for coarse in ("galerkin", "geometric"):
        for n in (8, 16, 32):
            p = gallery.dirichlet_box((n, n, n))
            rhos[coarse, n] = _rho(MultigridHierarchy(None, p, coarse=coarse), p.A)
    gal = [rhos["galerkin", n] for n in (8, 16, 32)]
    assert max(gal) < 0.3 and max(gal) - min(gal) < 0.1, rhos
    # rediscretised cell-centred coarse operators: bounded, but creeping up with n
    geo = [rhos["geometric", n] for n in (8, 16, 32)]
    assert max(geo) < 0.45 and geo[0] < geo[1] < geo[2], rhos


def test_neumann_rows_interpolate_constants_and_solid_rows_nothing():
    p = gallery.smoke_domain((16, 16), obstacles=[((0.5, 0.4), 0.2)])
    P = MultigridHierarchy(None, p).levels[0]["P"]
    rows = np.asarray(P.sum(axis=1)).ravel()
    solid = ~p.mask.reshape(-1)
    assert np.all(rows[solid] == 0)
    top = np.zeros(p.shape, bool)
    top[:, -1] = True  # the open (Dirichlet) side keeps the zero extension
    neumann = p.mask.reshape(-1) & ~top.reshape(-1)
    assert np.allclose(rows[neumann], 1.0)


def test_neumann_prolongation_cuts_smoke_iterations():
    p = gallery.smoke_domain((128, 128), obstacles=[((0.5, 0.35), 0.12)])
    b = gallery.random_rhs(p, seed=1)
    its = {}
    for coarse in ("galerkin", "geometric"):
        res = []
        M = MultigridHierarchy(None, p, coarse=coarse).aspreconditioner()
        _, info = sla.cg(p.A, b, rtol=1e-6, M=M, callback=res.append)
        assert info == 0
        its[coarse] = len(res)
    # with the plain zero-extension P at walls this took 25-30 iterations (Galerkin)
    assert its["galerkin"] <= 16 and its["geometric"] <= 14, its


def test_classical_cycle_equals_the_untrained_learned_vcycle():
    from pdesurrogates.surrogates import LearnedVCycle

    p = gallery.random_coefficient((12, 12, 12), contrast=100.0)
    r = np.random.default_rng(0).standard_normal(p.n)
    a = MultigridHierarchy(None, p).matvec(r)
    b = MultigridHierarchy(LearnedVCycle(dim=3), p).matvec(r)
    assert np.allclose(a, b, rtol=1e-6, atol=1e-9)


def test_bad_input():
    p = gallery.dirichlet_box((8, 8))
    with pytest.raises(ValueError, match="coarse must be one of"):
        MultigridHierarchy(None, p, coarse="algebraic")
    nine = sp.csr_matrix(
        p.A + 0.1 * sp.diags([-np.ones(64 - 9)], [9]) + 0.1 * sp.diags([-np.ones(64 - 9)], [-9])
    )
    nine = nine + sp.diags(np.full(64, 0.5))
    with pytest.raises(SolverError, match="5-/7-point"):
        geometric_coarse(sp.csr_matrix(nine), (8, 8))


def test_a_2d_model_is_refused_on_a_3d_problem():
    from pdesurrogates.surrogates import LearnedVCycle

    with pytest.raises(SolverError, match="model is 2D"):
        MultigridHierarchy(LearnedVCycle(dim=2), gallery.dirichlet_box((8, 8, 8)))


def test_neumann_rows_use_the_signed_row_sum_on_3d_galerkin_levels():
    from pdesurrogates.solvers._multigrid import neumann_rows, prolongation_1d

    p = gallery.dirichlet_box((16, 16, 16))
    h = MultigridHierarchy(None, p)
    Ac = h.levels[1]["A"]  # 8^3 Galerkin operator: positive off-diagonal entries
    d = Ac.diagonal()
    off = Ac - sp.diags(d)
    assert off.max() > 0
    row_sum = np.asarray(Ac.sum(axis=1)).ravel()
    # the absolute-value test 2 a_ii - sum_j |a_ij| <= 0 flags rows with a Dirichlet part
    abs_test = 2 * d - np.asarray(abs(Ac).sum(axis=1)).ravel() <= 1e-12 * d
    assert np.any(abs_test & (row_sum > 1e-3 * d))
    # the signed sum: no Dirichlet part exactly where the coarse stencil (two cells wide)
    # does not reach the boundary, the 4^3 inner cells
    flags = neumann_rows(d, row_sum)
    inner = np.zeros((8, 8, 8), bool)
    inner[2:-2, 2:-2, 2:-2] = True
    assert np.array_equal(flags, inner.reshape(-1))
    # a Dirichlet box has no Neumann rows to rescale: every level's P is the plain product
    for lv in h.levels[:-1]:
        P1 = prolongation_1d(lv["shape"][0], (0.75, 0.25))
        plain = sp.kron(sp.kron(P1, P1), P1)
        assert abs(lv["P"] - plain).max() < 1e-15


def test_dense_hierarchy_matches_the_sparse_one_in_3d():
    import torch

    from pdesurrogates.surrogates import LearnedVCycle
    from pdesurrogates.surrogates._dense_multigrid import dense_hierarchy

    p = gallery.smoke_domain((12, 12, 12), obstacles=[((0.5, 0.5, 0.4), 0.25)])
    m = LearnedVCycle(dim=3).double()
    sparse = MultigridHierarchy(m, p).levels
    dense = dense_hierarchy(m, torch.from_numpy(p.A.toarray()), p.shape)
    assert len(dense) == len(sparse) >= 2
    for s, dl in zip(sparse[:-1], dense[:-1], strict=True):
        assert np.abs(s["P"].toarray() - dl["P"].detach().numpy()).max() < 1e-12
        assert np.abs(s["A"].toarray() - dl["A"].detach().numpy()).max() < 1e-10


def test_duplicate_csr_entries_add_up_as_in_a_matvec():
    """A CSR matrix that stores each entry as two halves is the same operator."""
    shape = (12, 12)
    A = gallery.poisson2d(*shape)
    counts = np.diff(A.indptr)
    rows = np.repeat(np.arange(A.shape[0]), counts)
    order = np.argsort(np.concatenate([rows, rows]), kind="stable")
    halves = sp.csr_matrix(
        (
            np.concatenate([A.data, A.data])[order] / 2,
            np.concatenate([A.indices, A.indices])[order],
            2 * A.indptr,
        ),
        shape=A.shape,
    )
    assert not halves.has_canonical_format and halves.nnz == 2 * A.nnz
    r = np.random.default_rng(0).standard_normal(A.shape[0])
    np.testing.assert_allclose(halves @ r, A @ r, rtol=1e-14)
    expected = MultigridHierarchy(None, A, shape).matvec(r)
    np.testing.assert_allclose(MultigridHierarchy(None, halves, shape).matvec(r), expected, 1e-12)
