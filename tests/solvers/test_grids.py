"""Grids known where they were made: gallery matrices carry their grid, and the learned
preconditioners check that a matrix is a stencil on the grid they assume."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from pdesurrogates.errors import SolverError
from pdesurrogates.solvers import (
    LearnedPreconditioner,
    MultigridHierarchy,
    cg,
    dcdm,
    gallery,
)
from pdesurrogates.solvers._checks import check_grid_stencil
from pdesurrogates.surrogates import ConjugateDirectionNet, LearnedVCycle


def _permuted(A, seed=1):
    perm = np.random.default_rng(seed).permutation(A.shape[0])
    return sp.csr_matrix(A[perm][:, perm])


def test_gallery_matrices_and_problems_carry_their_grid():
    assert gallery.poisson2d(96, 64).grid_shape == (96, 64)
    assert gallery.poisson3d(6, 5, 4).grid_shape == (6, 5, 4)
    assert gallery.laplacian((7,)).grid_shape == (7,)
    p = gallery.smoke_domain((12, 10))
    assert p.A.grid_shape == (12, 10) == p.shape
    assert gallery.variable_coefficient(np.ones((9, 7))).A.grid_shape == (9, 7)


def test_96x64_gallery_grid_needs_no_shape_and_converges():
    A = gallery.poisson2d(96, 64)
    b = np.random.default_rng(0).normal(size=A.shape[0])
    P = LearnedPreconditioner(LearnedVCycle(dim=2), A)
    assert P.grid_shape == (96, 64)
    res = P.solve(b, rtol=1e-8)
    assert res.converged
    assert np.linalg.norm(b - A @ res.x) <= 1e-8 * np.linalg.norm(b) * (1 + 1e-6)
    plain = cg(A, b, rtol=1e-8)
    assert res.n_iter < plain.n_iter / 5  # the V-cycle sees the 96 x 64 grid, not a guess
    torch.manual_seed(0)
    net = ConjugateDirectionNet(dim=2, width=4)
    d = dcdm(A, b, net, rtol=1e-6, maxiter=2000)
    assert d.converged
    assert np.linalg.norm(b - A @ d.x) <= 1e-6 * np.linalg.norm(b) * (1 + 1e-6)
    assert MultigridHierarchy(LearnedVCycle(dim=2), A).levels[0]["shape"] == (96, 64)


def test_bare_matrix_of_unknown_grid_asks_for_shape():
    A = sp.csr_matrix(gallery.poisson2d(96, 64))  # the grid tag is lost on conversion
    assert getattr(A, "grid_shape", None) is None
    with pytest.raises(SolverError, match=r"pass shape=<grid array shape>"):
        LearnedPreconditioner(LearnedVCycle(dim=2), A)
    P = LearnedPreconditioner(LearnedVCycle(dim=2), A, shape=(96, 64))
    assert P.grid_shape == (96, 64)


@pytest.mark.parametrize("make", ["vcycle", "dcdm_net", "dcdm", "hierarchy"])
def test_permuted_poisson_matrix_is_refused_with_the_algebraic_alternative(make):
    A = _permuted(gallery.poisson2d(16))  # a perfect square: the 16 x 16 guess is checked
    with pytest.raises(SolverError, match="not neighbours") as err:
        if make == "vcycle":
            LearnedPreconditioner(LearnedVCycle(dim=2), A)
        elif make == "dcdm_net":
            LearnedPreconditioner(ConjugateDirectionNet(dim=2, width=0), A, shape=(16, 16))
        elif make == "dcdm":
            dcdm(A, np.ones(256), ConjugateDirectionNet(dim=2, width=0))
        else:
            MultigridHierarchy(LearnedVCycle(dim=2), A, (16, 16))
    assert "AMG (pyamg smoothed aggregation)" in str(err.value)
    assert "IncompleteCholesky (IC(0))" in str(err.value)


def test_wrong_grid_shape_of_the_right_size_is_refused():
    A = sp.csr_matrix(gallery.poisson2d(128, 32))  # 4096 unknowns: guessed 64 x 64
    with pytest.raises(SolverError, match=r"\(64, 64\) \(guessed from its size\)"):
        dcdm(A, np.ones(4096), ConjugateDirectionNet(dim=2, width=0))
    with pytest.raises(SolverError, match="A\\[0, 32\\] couples cells \\(0, 0\\) and \\(0, 32\\)"):
        check_grid_stencil(A, (64, 64))


def test_stencil_check_accepts_every_gallery_stencil_and_periodic_wraps():
    for A, shape in (
        (gallery.poisson3d(5, 4, 3), (5, 4, 3)),
        (gallery.smoke_domain((10, 8), obstacles=[((0.5, 0.5), 0.2)]).A, (10, 8)),
        (gallery.laplacian((9,)), (9,)),
    ):
        check_grid_stencil(A, shape)
    # a periodic 1D Laplacian couples the two ends: a neighbour across the wrap
    n = 8
    P = sp.lil_matrix(gallery.laplacian((n,)))
    P[0, n - 1] = P[n - 1, 0] = -1.0
    check_grid_stencil(sp.csr_matrix(P), (n,))
    # a 9-point stencil (diagonal neighbours) is a stencil too
    nine = sp.kron(
        sp.diags([1.0, 1.0, 1.0], [-1, 0, 1], (6, 6)), sp.diags([1.0, 1.0, 1.0], [-1, 0, 1], (5, 5))
    )
    check_grid_stencil(sp.csr_matrix(nine), (6, 5))
    with pytest.raises(SolverError):
        check_grid_stencil(sp.csr_matrix(nine), (5, 6))


@pytest.mark.parametrize("model_dim, shape", [(2, (6, 5, 4)), (3, (12, 10))])
def test_a_model_of_the_other_dimension_is_refused(model_dim, shape):
    A = gallery.poisson3d(*shape) if len(shape) == 3 else gallery.poisson2d(*shape)
    b = np.ones(A.shape[0])
    want = f"{model_dim}D but the problem grid {shape} is {len(shape)}D; use a {len(shape)}D"
    with pytest.raises(SolverError, match=want.replace("(", r"\(").replace(")", r"\)")):
        LearnedPreconditioner(LearnedVCycle(dim=model_dim), A)
    with pytest.raises(SolverError, match=f"{model_dim}D"):
        dcdm(A, b, ConjugateDirectionNet(dim=model_dim, width=0))
    with pytest.raises(SolverError, match=f"{model_dim}D"):
        LearnedPreconditioner(ConjugateDirectionNet(dim=model_dim, width=0), A)


def _neighbours(i, j, shape) -> bool:
    """Cells ``i`` and ``j`` (C-order) are grid neighbours, wraps across an axis included."""
    for a, b, s in zip(np.unravel_index(i, shape), np.unravel_index(j, shape), shape, strict=True):
        d = abs(int(a) - int(b))
        if d > 1 and not (d == s - 1 and s > 2):
            return False
    return True


@pytest.mark.parametrize("shape", [(7, 5), (4, 3, 5), (2, 6, 3)])
def test_stencil_check_counts_the_bad_couplings_of_a_random_pattern(shape, monkeypatch):
    from pdesurrogates.solvers import _checks

    monkeypatch.setattr(_checks, "_CHUNK", 7)  # many row blocks
    n = int(np.prod(shape))
    A = sp.random(n, n, density=0.15, format="csr", random_state=3) + sp.eye(n, format="csr")
    A.data[::5] = 0.0  # explicit zeros couple nothing
    coo = sp.coo_matrix(A)
    ok = np.array([_neighbours(i, j, shape) for i, j in zip(coo.row, coo.col, strict=True)])
    expected = int(np.count_nonzero(~ok & (coo.data != 0)))
    assert expected > 0
    with pytest.raises(SolverError, match=rf" {expected} of its {A.count_nonzero()} nonzeros"):
        check_grid_stencil(A, shape)
    # the same pattern restricted to its neighbour couplings passes
    check_grid_stencil(sp.csr_matrix((coo.data[ok], (coo.row[ok], coo.col[ok])), A.shape), shape)
