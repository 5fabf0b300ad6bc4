"""grid_stencil: A's stencil on its grid as images, and the refusals of coefficient-aware DCDM."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from pdesurrogates.errors import SolverError
from pdesurrogates.solvers import gallery, grid_stencil
from pdesurrogates.solvers._dcdm import stencil_offsets


def test_stencil_equals_the_known_coefficients_of_a_variable_coefficient_problem():
    rng = np.random.default_rng(3)
    k = np.exp(rng.uniform(-4, 4, size=(7, 5)))  # contrast up to e^8
    S = grid_stencil(gallery.variable_coefficient(k).A, (7, 5))
    offs = stencil_offsets(2)
    ch = {o: S[i] for i, o in enumerate(offs)}
    hm = lambda a, b: 2 * a * b / (a + b)  # noqa: E731  harmonic mean of two cells
    # interior face coefficients, from k alone
    np.testing.assert_allclose(ch[(1, 0)][:-1], -hm(k[:-1], k[1:]), rtol=1e-13)
    np.testing.assert_allclose(ch[(-1, 0)][1:], -hm(k[:-1], k[1:]), rtol=1e-13)
    np.testing.assert_allclose(ch[(0, 1)][:, :-1], -hm(k[:, :-1], k[:, 1:]), rtol=1e-13)
    np.testing.assert_allclose(ch[(0, -1)][:, 1:], -hm(k[:, :-1], k[:, 1:]), rtol=1e-13)
    # neighbours outside the grid and the corners are zero
    assert not ch[(1, 0)][-1].any() and not ch[(-1, 0)][0].any()
    for o in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
        assert not ch[o].any()
    # diagonal: the sum of the face coefficients, the Dirichlet faces counting k itself
    diag = -(ch[(1, 0)] + ch[(-1, 0)] + ch[(0, 1)] + ch[(0, -1)])
    diag[0] += k[0]
    diag[-1] += k[-1]
    diag[:, 0] += k[:, 0]
    diag[:, -1] += k[:, -1]
    np.testing.assert_allclose(ch[(0, 0)], diag, rtol=1e-13)


def test_stencil_rebuilds_the_matrix_3d_and_9_point():
    for p in (
        gallery.smoke_domain((5, 4, 6), obstacles=[((0.5, 0.5, 0.4), 0.2)]),
        gallery.anisotropic_diffusion((6, 7), eps=1e-3, theta=np.pi / 8),
    ):
        S = grid_stencil(p.A, p.shape)
        A = p.A.toarray()
        idx = np.arange(p.n).reshape(p.shape)
        for k, o in enumerate(stencil_offsets(len(p.shape))):
            for cell in np.ndindex(*p.shape):
                nb = tuple(c + d for c, d in zip(cell, o, strict=True))
                inside = all(0 <= v < s for v, s in zip(nb, p.shape, strict=True))
                want = A[idx[cell], idx[nb]] if inside else 0.0
                assert S[(k, *cell)] == want


def test_anisotropic_problem_is_spd_below_its_symbol_bound():
    p = gallery.anisotropic_diffusion((12, 12), eps=1e-3, theta=np.pi / 8)
    A = p.A.toarray()
    np.testing.assert_allclose(A, A.T, atol=0)
    lam = np.linalg.eigvalsh(A)
    assert lam[0] > 0
    # symbol 2 Kxx (1 - cos) + 2 Kyy (1 - cos) + 2 Kxy sin sin <= 4 (Kxx + Kyy) = 4 (1 + eps)
    assert lam[-1] < 4 * (1 + 1e-3)


def test_permuted_matrix_is_refused_naming_the_algebraic_alternative():
    p = gallery.dirichlet_box((8, 8))
    perm = np.random.default_rng(0).permutation(p.n)
    Ap = sp.csr_matrix(p.A[perm][:, perm])
    with pytest.raises(SolverError, match=r"not neighbours.*AMG"):
        grid_stencil(Ap, (8, 8))


def test_periodic_wrap_and_dense_input_are_refused():
    n = 6
    T = sp.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1]).tolil()
    T[0, n - 1] = T[n - 1, 0] = -1  # periodic
    A = sp.kronsum(sp.csr_matrix(T), sp.identity(n), format="csr")
    with pytest.raises(SolverError, match="periodic wrap"):
        grid_stencil(A, (n, n))
    with pytest.raises(SolverError, match="sparse"):
        grid_stencil(gallery.poisson2d(4).toarray(), (4, 4))
    with pytest.raises(SolverError, match="grid \\(4, 5\\) has 20 cells"):
        grid_stencil(gallery.poisson2d(4), (4, 5))


@pytest.mark.parametrize(
    "A, shape",
    [
        (gallery.anisotropic_diffusion((9, 7), eps=1e-2, theta=0.4).A, (9, 7)),
        (gallery.smoke_domain((8, 6, 5), obstacles=[((0.5, 0.5, 0.4), 0.2)]).A, (8, 6, 5)),
        (gallery.poisson2d(5, 2), (5, 2)),  # an axis of 2 cells: read cell by cell
    ],
)
def test_stencil_reproduces_a_times_x(A, shape):
    """The stencil applied to x (zero outside the grid) is A @ x, 9- and 7-point alike."""
    S = grid_stencil(A, shape)
    x = np.random.default_rng(0).standard_normal(shape)
    xp = np.pad(x, 1)
    Ax = np.zeros(shape)
    for k, o in enumerate(stencil_offsets(len(shape))):
        Ax += S[k] * xp[tuple(slice(1 + d, 1 + d + s) for d, s in zip(o, shape, strict=True))]
    np.testing.assert_allclose(Ax.reshape(-1), A @ x.reshape(-1), rtol=1e-12, atol=1e-12)


def test_wrap_onto_the_next_row_is_refused():
    """A[i, i + 1] joining the last cell of a row to the first of the next is no stencil."""
    A = sp.lil_matrix(gallery.poisson2d(5))
    A[4, 5] = A[5, 4] = -0.5  # cells (0, 4) and (1, 0)
    with pytest.raises(SolverError, match=r"A\[4, 5\] couples cells on opposite sides"):
        grid_stencil(sp.csr_matrix(A), (5, 5))
