"""The learned incomplete Cholesky: SPD by construction, any pattern, bad input refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import pdesurrogates
from pdesurrogates.errors import SolverError
from pdesurrogates.solvers import FactoredPreconditioner, cg, gallery
from pdesurrogates.solvers.reference import fem_family
from pdesurrogates.surrogates import NeuralIncompleteCholesky
from pdesurrogates.testing import PreconditionerContract


def _random_model(seed=0, scale=0.3):
    """A model whose output heads are not zero (any weights must give an SPD M)."""
    model = NeuralIncompleteCholesky(latent=8, rounds=2, seed=seed).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


@pytest.mark.parametrize("kind", ["lognormal", "elasticity"])
def test_preconditioner_is_symmetric_positive_definite_for_any_weights(kind):
    A = fem_family(kind, 8, domain="lshape", seed=3).A
    P = _random_model(seed=1).precondition(A)
    assert P.is_spd and P.shape == A.shape
    rng = np.random.default_rng(0)
    X = rng.normal(size=(A.shape[0], 20))
    MX = np.stack([P.matvec(x) for x in X.T], 1)
    sym = np.abs(X.T @ MX - (X.T @ MX).T).max() / (np.linalg.norm(X, axis=0).max() ** 2)
    assert sym < 1e-10
    assert np.all(np.einsum("ij,ij->j", X, MX) > 0)
    M = np.stack([P.matvec(e) for e in np.eye(A.shape[0])], 1)
    lam = np.linalg.eigvalsh(0.5 * (M + M.T))
    assert lam[0] > 0
    # M^{-1} = L L^T exactly
    L = P.L.toarray()
    np.testing.assert_allclose(M @ (L @ L.T), np.eye(A.shape[0]), atol=1e-8)


def test_untrained_model_is_symmetric_gauss_seidel():
    A = gallery.poisson2d(6)
    L = NeuralIncompleteCholesky(seed=0).factor(A).toarray()
    d = np.sqrt(A.diagonal())
    expected = np.tril(A.toarray()) / d[None, :]  # (D + L_A) D^{-1/2}
    np.testing.assert_allclose(L, expected, atol=1e-12)


def test_one_model_serves_any_size_and_pattern():
    model = _random_model(seed=2, scale=0.05)
    for A in (gallery.poisson2d(12), fem_family("anisotropic", 10, seed=1).A):
        res = model.precondition(A).solve(np.ones(A.shape[0]), rtol=1e-8)
        assert res.converged
        x = np.asarray(res.x)
        assert np.linalg.norm(A @ x - 1) <= 1e-8 * np.sqrt(A.shape[0]) * 1.01
    P = model.precondition(A)
    assert cg(A, np.ones(A.shape[0]), M=P, rtol=1e-8).converged


def test_bad_matrices_are_refused_with_a_clear_error():
    model = NeuralIncompleteCholesky(seed=0)
    A = fem_family("poisson", 6, seed=0).A
    with pytest.raises(SolverError, match="must be square"):
        model.precondition(sp.random(4, 5, density=0.5, format="csr"))
    B = A.tolil()
    B[0, 1] = B[0, 1] + 0.5
    with pytest.raises(SolverError, match=r"not symmetric: A\[0, 1\]"):
        model.precondition(B.tocsr())
    C = A.tolil()
    C[2, 2] = -1.0
    with pytest.raises(SolverError, match=r"A\[2, 2\] = -1 <= 0"):
        model.precondition(C.tocsr())
    with pytest.raises(SolverError, match="NaN or Inf"):
        model.precondition(A * np.nan)


def test_update_reuses_the_pattern_and_refuses_another():
    model = _random_model(seed=3, scale=0.05)
    a = fem_family("lognormal", 8, seed=0)
    P = model.precondition(a.A)
    Q = P.update(2.0 * a.A)
    np.testing.assert_allclose(Q.L.toarray(), np.sqrt(2.0) * P.L.toarray(), rtol=1e-10)
    other = fem_family("lognormal", 8, seed=1).A
    assert other.shape == a.A.shape
    with pytest.raises(SolverError, match=r"same sparsity pattern: A has \d+ nonzeros"):
        P.update(other)
    with pytest.raises(SolverError, match=r"same pattern: A has shape \(81, 81\)"):
        P.update(fem_family("lognormal", 10, seed=1).A)


def test_factored_preconditioner_checks_its_factor():
    with pytest.raises(SolverError, match="lower triangular"):
        FactoredPreconditioner(sp.csr_matrix(np.array([[1.0, 1.0], [0.0, 1.0]])))
    with pytest.raises(SolverError, match="positive finite diagonal"):
        FactoredPreconditioner(sp.csr_matrix(np.array([[1.0, 0.0], [1.0, 0.0]])))
    with pytest.raises(SolverError, match="needs the matrix"):
        FactoredPreconditioner(sp.eye(3, format="csr")).solve(np.ones(3))


_CHILD = """
import sys, numpy as np, scipy.sparse as sp
import pdesurrogates
A = sp.load_npz(sys.argv[2])
model = pdesurrogates.load(sys.argv[1])
np.save(sys.argv[3], model.factor(A).toarray())
"""


def test_save_load_round_trip_in_a_fresh_process(tmp_path):
    model = _random_model(seed=4, scale=0.1)
    A = fem_family("anisotropic", 8, seed=2).A
    sp.save_npz(tmp_path / "A.npz", A)
    pdesurrogates.save(model, tmp_path / "model")
    src = str(Path(pdesurrogates.__file__).resolve().parents[1])
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            str(tmp_path / "model"),
            str(tmp_path / "A.npz"),
            str(tmp_path / "L.npy"),
        ],
        env={"PYTHONPATH": src, "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    np.testing.assert_array_equal(np.load(tmp_path / "L.npy"), model.factor(A).toarray())


def test_constructor_validates_arguments():
    with pytest.raises(ValueError, match="latent must be an integer >= 1"):
        NeuralIncompleteCholesky(latent=0)
    with pytest.raises(ValueError, match="rounds"):
        NeuralIncompleteCholesky(rounds=10**6)


class TestNeuralICPreconditionerContract(PreconditionerContract):
    """The preconditioner contract, with weights that are not the initial ones."""

    max_iteration_ratio = 0.5

    def make_preconditioner(self, problem):
        return _random_model(seed=5, scale=0.05).precondition(problem.A)
