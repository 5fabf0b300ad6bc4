"""Preconditioners: IC(0), Jacobi, the SPD learned V-cycle, LearnedPreconditioner."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla
import torch

from pdesurrogates.errors import SolverError
from pdesurrogates.solvers import (
    AMG,
    IncompleteCholesky,
    Jacobi,
    LearnedPreconditioner,
    amg,
    cg,
    fcg,
    gallery,
    jacobi,
)
from pdesurrogates.solvers._ic0 import _ic0_rowloop
from pdesurrogates.surrogates import ConjugateDirectionNet, LearnedVCycle


def _cg_iters(A, b, M=None, rtol=1e-8):
    it = []
    _, info = sla.cg(A, b, rtol=rtol, M=M, callback=lambda xk: it.append(1))
    assert info == 0
    return len(it)


def _dense(op, n):
    return np.column_stack([op.matvec(e) for e in np.eye(n)])


PROBLEMS = {
    "dirichlet": lambda: gallery.dirichlet_box((12, 10)),
    "smoke": lambda: gallery.smoke_domain((12, 12), obstacles=[((0.5, 0.4), 0.2)]),
    "varcoef": lambda: gallery.variable_coefficient(
        np.exp(2 * np.random.default_rng(0).standard_normal((10, 12)))
    ),
    "smoke3d": lambda: gallery.smoke_domain((6, 6, 6)),
}


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_ic0_matches_reference_factorisation(name):
    A = PROBLEMS[name]().A
    ic = IncompleteCholesky(A)
    ref = _ic0_rowloop(sp.csr_matrix(A), 0.0)
    assert abs(ic.L - ref).max() < 1e-12
    # IC(0) reproduces A exactly on the sparsity pattern of A
    LLt = (ic.L @ ic.L.T).tocsr()
    assert abs((LLt - A).multiply(A != 0)).max() < 1e-12
    M = _dense(ic.aspreconditioner(), A.shape[0])
    np.testing.assert_allclose(M, np.linalg.inv((ic.L @ ic.L.T).toarray()), atol=1e-10)


def test_ic0_and_jacobi_reduce_cg_iterations():
    p = gallery.variable_coefficient(np.exp(np.random.default_rng(1).standard_normal((40, 40))))
    b = gallery.random_rhs(p)
    plain = _cg_iters(p.A, b)
    jac = _cg_iters(p.A, b, jacobi(p.A))
    ic = _cg_iters(p.A, b, IncompleteCholesky(p.A).aspreconditioner())
    assert ic < 0.5 * plain and jac < plain


@pytest.mark.parametrize("name", list(PROBLEMS))
@pytest.mark.parametrize("seed", [0, 1])
def test_learned_vcycle_is_spd_for_any_parameters(name, seed):
    p = PROBLEMS[name]()
    m = LearnedVCycle(dim=p.dim, coarse_cells=8, smoothing_steps=1 + seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # arbitrary parameters, including weights near the limit
        m.stencil.copy_(torch.tensor([0.5, 0.5]) + torch.randn(2, generator=g))
        m.omega_logit.copy_(4 * torch.randn(m.omega_logit.shape, generator=g))
    pre = LearnedPreconditioner(m, p)
    assert pre.is_linear and pre.is_symmetric
    B = _dense(pre.aspreconditioner(), p.n)
    np.testing.assert_allclose(B, B.T, atol=1e-12 * np.abs(B).max())
    assert np.linalg.eigvalsh((B + B.T) / 2).min() > 0


def test_sparse_hierarchy_equals_torch_vcycle():
    m = LearnedVCycle(dim=2, coarse_cells=16)
    with torch.no_grad():
        m.stencil.copy_(torch.tensor([0.7, 0.3]))
    m = m.double()
    r = np.random.default_rng(0).standard_normal(16 * 16)
    pre = LearnedPreconditioner(m, gallery.dirichlet_box((16, 16)))
    with torch.no_grad():
        t = m(torch.from_numpy(r).view(1, 1, 16, 16)).reshape(-1).numpy()
    np.testing.assert_allclose(pre.matvec(r), t, atol=1e-12)


def test_learned_preconditioner_reduces_scipy_cg_iterations():
    p = gallery.dirichlet_box((64, 64))
    b = gallery.random_rhs(p, seed=0)
    plain = _cg_iters(p.A, b, rtol=1e-6)
    m = LearnedVCycle(dim=2)
    M = LearnedPreconditioner(m, p).aspreconditioner()
    learned = _cg_iters(p.A, b, M, rtol=1e-6)
    assert learned <= 10 and learned < plain / 10  # plain CG: ~165 iterations
    x, info = sla.gmres(p.A, b, rtol=1e-6, M=M)
    assert info == 0 and np.linalg.norm(b - p.A @ x) <= 1e-6 * np.linalg.norm(b) * 1.01


def test_scipy_cg_takes_the_object_and_its_operator_at_the_matrix_shape():
    # the reported failure: "r has 128 entries, expected 16384" (shape was the grid's)
    A = gallery.poisson2d(128)
    b = gallery.random_rhs(gallery.dirichlet_box((128, 128)), seed=0)
    P = LearnedPreconditioner(LearnedVCycle(dim=2), A)
    assert P.shape == (16384, 16384) and P.grid_shape == (128, 128)
    ref = sla.spsolve(A.tocsc(), b)
    for M in (P.aspreconditioner(), P, P.aslinearoperator()):
        x, info = sla.cg(A, b, rtol=1e-10, M=M)
        assert info == 0
        np.testing.assert_allclose(x, ref, rtol=0, atol=1e-7 * np.abs(ref).max())


def test_legacy_functions_return_operators_at_the_matrix_shape():
    A = gallery.poisson2d(10)
    r = np.arange(100.0)
    for op in (jacobi(A), amg(A), AMG(A).aspreconditioner(), Jacobi(A).aspreconditioner()):
        assert isinstance(op, sla.LinearOperator) and op.shape == (100, 100)
        x, info = sla.cg(A, r, rtol=1e-10, M=op)
        assert info == 0 and np.linalg.norm(r - A @ x) <= 1e-10 * np.linalg.norm(r)
    np.testing.assert_allclose(jacobi(A).matvec(r), r / 4)


def test_nonlinear_network_is_refused_by_aspreconditioner():
    net = ConjugateDirectionNet(dim=2, width=2)
    p = gallery.dirichlet_box((16, 16))
    pre = LearnedPreconditioner(net, p)
    assert not pre.is_linear and not pre.is_spd
    with pytest.raises(SolverError, match="nonlinear"):
        pre.aspreconditioner()
    with pytest.raises(SolverError, match="nonlinear"):
        pre.aslinearoperator()
    with pytest.raises(SolverError, match="nonlinear"):
        cg(p.A, np.ones(p.n), M=pre)  # our cg refuses it too; fcg takes it
    assert fcg(p.A, np.ones(p.n), rtol=1e-8, M=pre, m=2).converged
    op = pre.aspreconditioner(allow_nonlinear=True)
    assert op.shape == (256, 256) and op.dtype == np.float64
    b = gallery.random_rhs(p)
    res = pre.solve(b, rtol=1e-8)
    assert res.converged and res.info["method"] == "dcdm"
    assert np.linalg.norm(b - p.A @ res.x) <= 1e-8 * np.linalg.norm(b)


def test_a_coefficient_aware_network_reads_the_matrix_stencil_itself():
    """``LearnedPreconditioner`` builds the stencil a coefficient-aware network needs; its
    flexible-CG solve equals ``dcdm``'s on the same anisotropic matrix."""
    from pdesurrogates.solvers import dcdm

    torch.manual_seed(0)
    net = ConjugateDirectionNet(dim=2, coefficients=True).double()
    p = gallery.anisotropic_diffusion((24, 20), eps=1e-2, theta=0.3)
    b = gallery.random_rhs(p)
    res = LearnedPreconditioner(net, p).solve(b, rtol=1e-8)
    ref = dcdm(p.A, b, net, shape=(24, 20), rtol=1e-8)
    assert res.converged and res.n_iter == ref.n_iter > 1
    assert np.allclose(res.x, ref.x, rtol=0, atol=1e-10 * np.abs(ref.x).max())


def test_bad_input():
    with pytest.raises(SolverError, match="square"):
        jacobi(sp.random(3, 4, density=1.0, random_state=0))
    with pytest.raises(SolverError, match="diagonal"):
        jacobi(-gallery.poisson2d(3))
    with pytest.raises(SolverError, match="3D"):
        LearnedPreconditioner(ConjugateDirectionNet(dim=3), gallery.poisson2d(8), shape=(8, 8))
    pre = LearnedPreconditioner(LearnedVCycle(dim=2), gallery.dirichlet_box((8, 8)))
    with pytest.raises(SolverError, match="entries"):
        pre.matvec(np.ones(5))
    for model in (ConjugateDirectionNet(dim=2), LearnedVCycle(dim=2)):
        with pytest.raises(SolverError, match=r"mask has 16 cells, expected 64"):
            LearnedPreconditioner(model, gallery.poisson2d(8), mask=np.ones((4, 4), bool))
