"""The symmetry check (solvers._checks.asymmetry) and the classes that rely on it.

SPD-claiming preconditioners refuse a non-symmetric ``A`` naming its largest
``|A_ij - A_ji|``; the ones meant for non-symmetric matrices (Jacobi, AMG) keep
``is_spd`` true of the map they build. The oracle is the dense ``|A - A^T|``.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from pdesurrogates.errors import SolverError
from pdesurrogates.solvers import (
    AMG,
    IncompleteCholesky,
    Jacobi,
    LearnedPreconditioner,
    MultigridHierarchy,
    SmoothedAggregation,
    SolveStatus,
    cg,
    gallery,
)
from pdesurrogates.solvers._checks import SYMMETRY_RTOL, asymmetry
from pdesurrogates.solvers._multigrid import _banded
from pdesurrogates.surrogates import (
    ConjugateDirectionNet,
    LearnedVCycle,
    NeuralAMG,
    NeuralIncompleteCholesky,
)

N = 12


def _convection_diffusion(n: int = N) -> sp.csr_matrix:
    """5-point Laplacian plus upwind convection along the last axis: a non-symmetric
    M-matrix stencil on the (n, n) grid. ``A[i, i-1]`` is -1.8 against ``A[i-1, i] = -1``;
    one pair, (36, 37), is made the worst: ``A[37, 36] = -2.3``."""
    A = gallery.poisson2d(n).tolil()
    for i in range(n * n):
        if i % n:
            extra = 1.3 if i == 37 else 0.8
            A[i, i - 1] -= extra
            A[i, i] += extra
    return sp.csr_matrix(A)


def _dense_worst(A):
    D = A.toarray() if sp.issparse(A) else np.asarray(A)
    diff = np.abs(D - D.T)
    i, j = np.unravel_index(int(np.argmax(diff)), diff.shape)
    return int(i), int(j), float(diff[i, j]), float(np.abs(D).max())


SPD_CLASSES = {
    "MultigridHierarchy galerkin": lambda A: MultigridHierarchy(None, A, (N, N)),
    "MultigridHierarchy compact": lambda A: MultigridHierarchy(None, A, (N, N), coarse="compact"),
    "MultigridHierarchy geometric": lambda A: MultigridHierarchy(
        None, A, (N, N), coarse="geometric"
    ),
    "LearnedPreconditioner(LearnedVCycle)": lambda A: LearnedPreconditioner(
        LearnedVCycle(dim=2), A, shape=(N, N)
    ),
    "IncompleteCholesky": IncompleteCholesky,
    "SmoothedAggregation": SmoothedAggregation,
    "NeuralIncompleteCholesky": lambda A: NeuralIncompleteCholesky(seed=0).precondition(A),
    "NeuralAMG": lambda A: NeuralAMG(seed=0).precondition(A),
}


@pytest.mark.parametrize("name", list(SPD_CLASSES))
def test_spd_classes_refuse_a_nonsymmetric_matrix_naming_the_worst_pair(name):
    A = _convection_diffusion()
    assert _dense_worst(A)[:3] == (36, 37, pytest.approx(1.3))
    with pytest.raises(SolverError) as err:
        SPD_CLASSES[name](A)
    msg = str(err.value)
    assert "needs a symmetric A" in msg
    assert "A is not symmetric: A[36, 37] = -1 but A[37, 36] = -2.3" in msg
    assert "(max |A - A^T| = 1.3, max |A| = 5.3)" in msg
    assert "A = (A + A.T) / 2" in msg
    assert "gmres(A, b, M=pdesurrogates.solvers.AMG(A, symmetry='nonsymmetric')" in msg


@pytest.mark.parametrize("name", list(SPD_CLASSES))
def test_float32_symmetrised_matrix_is_accepted(name):
    """``(A + A^T) / 2`` in float32: exactly symmetric, its values carry float32 round-off."""
    rng = np.random.default_rng(3)
    A = sp.csr_matrix(gallery.poisson2d(N), dtype=np.float32)
    off = A.indices != np.repeat(np.arange(N * N), np.diff(A.indptr))
    A.data[off] *= (1 - 0.3 * rng.random(int(off.sum()))).astype(np.float32)  # not symmetric
    S = sp.csr_matrix(A + A.T)
    S.data *= np.float32(0.5)  # (A + A^T) / 2, every operation in float32
    assert S.dtype == np.float32
    exact = (A.astype(np.float64) + A.T.astype(np.float64)) / 2
    assert abs(S.astype(np.float64) - exact).max() > 1e-9  # float32 round-off is there
    assert asymmetry(S) is None
    P = SPD_CLASSES[name](S)
    assert P.is_spd


@pytest.mark.parametrize("fraction, refused", [(0.9, False), (1.1, True)])
def test_tolerance_edge_is_the_same_for_preconditioners_and_cg(fraction, refused):
    """``max |A_ij - A_ji| <= 1e-10 max |A|`` is symmetric: on the DIA path (multigrid),
    the CSR path (IC(0)) and in cg's NONSYMMETRIC status alike."""
    A = gallery.poisson2d(N).tolil()
    delta = fraction * SYMMETRY_RTOL * 4.0  # max |A| = 4
    A[20, 21] = -1.0 + delta
    A = sp.csr_matrix(A)
    assert _dense_worst(A)[2] == pytest.approx(delta, rel=1e-5)
    assert _banded(A).format == "dia"
    b = np.ones(N * N)
    res = cg(A, b, rtol=1e-8)
    if not refused:
        for form in (A, _banded(A), A.toarray()):
            assert asymmetry(form) is None
        assert MultigridHierarchy(None, A, (N, N)).is_spd
        assert IncompleteCholesky(A).is_spd and AMG(A).is_spd
        assert res.converged
        return
    for form in (A, _banded(A), A.toarray()):
        i, j, aij, aji, asym, scale = asymmetry(form)
        assert (i, j, aij, aji, scale) == (20, 21, -1.0 + delta, -1.0, 4.0)
        assert asym == pytest.approx(delta, rel=1e-5)
    for make in (lambda: MultigridHierarchy(None, A, (N, N)), lambda: IncompleteCholesky(A)):
        with pytest.raises(SolverError, match=r"not symmetric: A\[20, 21\] = -1 but A\[21, 20\]"):
            make()
    assert not AMG(A).is_spd
    assert res.status is SolveStatus.NONSYMMETRIC and "A[20, 21]" in res.message


def _random_case(seed):
    """A random sparse matrix, symmetric, with a unique worst asymmetric pair (or none)."""
    rng = np.random.default_rng(seed)
    n = 40
    R = sp.random(n, n, density=0.08, random_state=rng, format="csr")
    S = sp.csr_matrix(R + R.T + sp.diags(rng.random(n) + 1))
    if seed % 3 == 0:
        return S, None
    L = S.tolil()
    coo = sp.triu(S, k=1).tocoo()
    picks = rng.choice(coo.nnz, size=3, replace=False)
    for rank, k in enumerate(picks):  # the first pick is the worst one
        L[coo.row[k], coo.col[k]] += 0.5 / (rank + 1)
    if seed % 3 == 2:  # a one-sided entry: the patterns of A and A^T differ
        L[0, n - 1], L[n - 1, 0] = 2.0, 0.0
    return sp.csr_matrix(L), seed % 3


@pytest.mark.parametrize("seed", range(9))
@pytest.mark.parametrize("form", ["csr", "csc", "coo", "dia", "dense", "unsorted", "duplicates"])
def test_asymmetry_matches_the_dense_oracle(seed, form):
    A, kind = _random_case(seed)
    if form == "dense":
        M = A.toarray()
    elif form == "unsorted":
        M = A.copy()
        for r in range(M.shape[0]):  # reverse each row's entries
            s, e = M.indptr[r], M.indptr[r + 1]
            M.indices[s:e], M.data[s:e] = M.indices[s:e][::-1].copy(), M.data[s:e][::-1].copy()
        M.has_sorted_indices = False
    elif form == "duplicates":  # every entry split in two halves
        C = A.tocoo()
        M = sp.csr_matrix(
            (np.r_[C.data / 2, C.data / 2], (np.r_[C.row, C.row], np.r_[C.col, C.col])),
            shape=A.shape,
        )
        M = sp.csr_matrix((M.data, M.indices, M.indptr), shape=A.shape)  # keep duplicates
    else:
        M = A.asformat(form)
    got = asymmetry(M)
    i, j, asym, scale = _dense_worst(A)
    if kind is None:
        assert got is None
        return
    D = A.toarray()
    assert got[:4] == (i, j, D[i, j], D[j, i]) and got[4] == pytest.approx(asym, rel=1e-12)
    assert got[5] == pytest.approx(scale, rel=1e-12)


def test_dia_diagonals_without_a_mirror_and_junk_outside_the_matrix():
    n = 6
    data = np.zeros((3, n))
    data[0] = 2.0  # the main diagonal
    data[1, :] = 9.0  # offset +1: column 0 lies outside the matrix (scipy ignores it)
    data[2, :] = 1.0  # offset -1: column n-1 lies outside too
    D = sp.dia_matrix((data, [0, 1, -1]), shape=(n, n))
    data[1, 1:] = 1.0
    assert np.array_equal(D.toarray(), D.toarray().T)
    assert asymmetry(D) is None  # the junk 9.0 at column 0 is not an entry
    upper = np.r_[0.0, 0.0, 0.0, 0.5, 0.0, 0.0]  # offset +1 alone: A[2, 3] = 0.5
    lone = sp.dia_matrix((np.vstack([np.full(n, 2.0), upper]), [0, 1]), shape=(n, n))
    assert asymmetry(lone)[:4] == (2, 3, 0.5, 0.0)
    zeros = sp.dia_matrix((np.vstack([np.full(n, 2.0), np.zeros(n)]), [0, -2]), shape=(n, n))
    assert asymmetry(zeros) is None


def test_jacobi_keeps_an_spd_map_and_amg_an_honest_one_on_a_nonsymmetric_matrix():
    A = _convection_diffusion()
    b = np.random.default_rng(0).standard_normal(N * N)
    x_ref = sla.spsolve(A.tocsc(), b)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((2, N * N))
    J = Jacobi(A)  # M = diag(A)^-1 is SPD whatever A is
    assert J.is_spd and x @ J.matvec(y) == pytest.approx(y @ J.matvec(x), rel=1e-14)
    for P in (AMG(A), AMG(A, symmetry="nonsymmetric")):
        assert P.is_linear and not P.is_spd
        assert abs(x @ P.matvec(y) - y @ P.matvec(x)) > 1e-3 * abs(x @ P.matvec(y))
        sol, info = sla.gmres(A, b, rtol=1e-10, M=P.aspreconditioner(), restart=50, maxiter=20)
        assert info == 0
        assert np.linalg.norm(sol - x_ref) <= 1e-8 * np.linalg.norm(x_ref)
    S = gallery.poisson2d(N)
    assert AMG(S).is_spd and not AMG(S, symmetry="nonsymmetric").is_spd


def test_direction_networks_are_not_spd_and_dcdm_reports_nonsymmetric():
    A = _convection_diffusion()
    nets = (ConjugateDirectionNet(dim=2, width=0), ConjugateDirectionNet(dim=2, coefficients=True))
    for net in nets:
        P = LearnedPreconditioner(net, A, shape=(N, N))
        assert not P.is_spd
        res = P.solve(np.ones(N * N))
        assert res.status is SolveStatus.NONSYMMETRIC and "A[36, 37]" in res.message
