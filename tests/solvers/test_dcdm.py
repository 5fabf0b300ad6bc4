"""DCDM: Ritz-vector data, the loss, training, the solver loop and its fallback."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from pdesurrogates.errors import SolverError
from pdesurrogates.solvers import SolveStatus, dcdm, gallery
from pdesurrogates.surrogates import ConjugateDirectionNet
from pdesurrogates.training import (
    dcdm_loss,
    ritz_training_vectors,
    ritz_vectors,
    sparse_to_torch,
)


def test_ritz_vectors_are_orthonormal_and_extreme_values_converge():
    n = 12
    A = gallery.poisson2d(n)
    vals, Y = ritz_vectors(A, 60, seed=0)
    np.testing.assert_allclose(Y.T @ Y, np.eye(Y.shape[1]), atol=1e-10)
    lam1 = 2 - 2 * np.cos(np.pi * np.arange(1, n + 1) / (n + 1))
    exact = np.sort((lam1[:, None] + lam1[None, :]).ravel())
    # extreme Ritz values converge first (Lanczos); distinct eigenvalues only
    assert vals[0] == pytest.approx(exact[0], rel=1e-8)
    assert vals[-1] == pytest.approx(exact[-1], rel=1e-8)
    # Ritz pairs: residual ||A y - theta y|| small for the lowest
    r = A @ Y[:, 0] - vals[0] * Y[:, 0]
    assert np.linalg.norm(r) < 1e-6


def test_training_vectors_are_unit_and_weighted_to_low_spectrum():
    A = gallery.poisson2d(10)
    X = ritz_training_vectors(A, 200, m=60, seed=0)
    assert X.shape == (200, 100) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1, atol=1e-5)
    # mean Rayleigh quotient ~ sum(w_j^2 theta_j) / sum(w_j^2), w = 9 on the low 55 %
    rq = np.einsum("ij,ij->i", X, (A @ X.T).T)
    vals, _ = ritz_vectors(A, 60, seed=0)
    nl = int(np.ceil(0.55 * len(vals)))
    expected = (81 * vals[:nl].sum() + vals[nl:].sum()) / (81 * nl + len(vals) - nl)
    assert rq.mean() == pytest.approx(expected, rel=0.1)
    X0 = ritz_training_vectors(A, 200, m=60, seed=0, low_weight=1.0)
    rq0 = np.einsum("ij,ij->i", X0, (A @ X0.T).T)
    assert rq0.mean() == pytest.approx(vals.mean(), rel=0.1)


def test_dcdm_loss_closed_forms():
    p = gallery.dirichlet_box((6, 6))
    A = p.A.toarray()
    A_t = sparse_to_torch(p.A, dtype=torch.float64)
    rng = np.random.default_rng(0)
    r = rng.standard_normal((3, 36))
    d_exact = np.linalg.solve(A, r.T).T * np.array([[2.0], [-1.0], [0.5]])  # any scale
    loss = dcdm_loss(torch.from_numpy(r), torch.from_numpy(d_exact), A_t)
    assert float(loss) < 1e-20
    d = rng.standard_normal((3, 36))
    Ad = d @ A
    alpha = (d * r).sum(1) / (d * Ad).sum(1)
    expected = np.mean(((r - alpha[:, None] * Ad) ** 2).sum(1))
    got = dcdm_loss(torch.from_numpy(r), torch.from_numpy(d), A_t)
    assert float(got) == pytest.approx(expected, rel=1e-12)


def test_dcdm_converges_on_true_residual():
    net = ConjugateDirectionNet(dim=2, width=2)
    p = gallery.dirichlet_box((32, 32))
    b = gallery.random_rhs(p, seed=2)
    seen = []
    res = dcdm(p.A, b, net, rtol=1e-8, callback=lambda xk: seen.append(1))
    assert res.converged and res.n_iter == len(seen) and res.n_iter < 20
    assert res.status is SolveStatus.CONVERGED
    true = np.linalg.norm(b - p.A @ res.x) / np.linalg.norm(b)
    assert true <= 1e-8
    assert res.residuals[-1] == pytest.approx(np.linalg.norm(b - p.A @ res.x), rel=1e-10)
    assert res.info["fallbacks"] == 0


def test_dcdm_on_smoke_problem_with_mask():
    net = ConjugateDirectionNet(dim=2, width=0)
    p = gallery.smoke_domain((24, 24), obstacles=[((0.5, 0.4), 0.15)])
    b = gallery.smooth_rhs(p, seed=0)
    res = dcdm(p, b, net, rtol=1e-6)
    assert res.converged
    assert np.all(res.x[~p.mask.reshape(-1)] == 0)
    assert np.linalg.norm(b - p.A @ res.x) <= 1e-6 * np.linalg.norm(b)


class _Bad(torch.nn.Module):
    dim = 2

    def __init__(self, mode):
        super().__init__()
        self.mode = mode
        self.w = torch.nn.Parameter(torch.ones(()))

    def forward(self, r):
        if self.mode == "nan":
            return r * float("nan")
        return -self.w * r  # an ascent direction


@pytest.mark.parametrize("mode", ["nan", "ascent"])
def test_dcdm_falls_back_and_says_so(mode):
    p = gallery.dirichlet_box((12, 12))
    b = np.ones(p.n)
    res = dcdm(p.A, b, _Bad(mode), rtol=1e-8)
    assert res.converged
    assert res.info["fallbacks"] == res.n_iter > 0
    assert "fell back to the residual direction" in res.message


def test_a_half_precision_coefficient_aware_net_runs_its_cycle_in_torch():
    """The compiled numpy cycle serves float32/float64 nets; a float16 or bfloat16 net
    keeps the torch cycle (scipy.sparse has no half precision) and still converges."""
    torch.manual_seed(0)
    p = gallery.smoke_domain((32, 32), obstacles=[((0.5, 0.4), 0.15)])
    b = gallery.random_rhs(p)
    ref = dcdm(p.A, b, ConjugateDirectionNet(dim=2, coefficients=True), shape=p.shape)
    net = ConjugateDirectionNet(dim=2, coefficients=True).to(torch.float16)
    res = dcdm(p.A, b, net, shape=p.shape, rtol=1e-6, maxiter=200)
    assert res.converged and np.linalg.norm(b - p.A @ res.x) <= 1e-6 * np.linalg.norm(b)
    assert res.n_iter <= 3 * ref.n_iter  # a coarser cycle, the same method
    # bfloat16 (8 significant bits) runs too, but its directions are too coarse to help:
    # the flexible loop falls back to the residual direction and says so
    net = ConjugateDirectionNet(dim=2, coefficients=True).to(torch.bfloat16)
    res = dcdm(p.A, b, net, shape=p.shape, rtol=1e-6, maxiter=50)
    assert np.linalg.norm(b - p.A @ res.x) <= 0.1 * np.linalg.norm(b)
    assert "fell back to the residual direction" in res.message
    # with a trained smoother, whose setup check runs in float32 numpy for half precision
    trained = ConjugateDirectionNet(dim=2, coefficients=True, smoother_reach=2)
    with torch.no_grad():
        trained.cycle.gen[-1].bias.fill_(0.1)
    ref = dcdm(p.A, b, trained, shape=p.shape)
    res = dcdm(p.A, b, trained.to(torch.float16), shape=p.shape, rtol=1e-6, maxiter=200)
    assert res.converged and res.n_iter <= 3 * ref.n_iter
    res = dcdm(p.A, b, trained.to(torch.bfloat16), shape=p.shape, rtol=1e-6, maxiter=50)
    assert np.linalg.norm(b - p.A @ res.x) <= 0.1 * np.linalg.norm(b)
    # a smoother that overflows float16 on a high-contrast field is refused, saying so
    rough = gallery.variable_coefficient(np.exp(2 * np.random.default_rng(0).normal(size=(32, 32))))
    trained = trained.to(torch.float16)
    with torch.no_grad():
        trained.cycle.gen[-1].bias.fill_(8.0)
    with pytest.raises(SolverError, match=r"not finite .*float16.*float32 or float64"):
        dcdm(rough.A, gallery.random_rhs(rough), trained, shape=rough.shape)


def test_dcdm_bad_input():
    net2 = ConjugateDirectionNet(dim=2, width=0)
    net3 = ConjugateDirectionNet(dim=3, width=0)
    A = gallery.poisson2d(8)
    with pytest.raises(SolverError, match="3D"):
        dcdm(A, np.ones(64), net3, shape=(8, 8))
    # a gallery matrix carries its 8 x 6 grid; the same matrix without it needs shape=
    assert dcdm(gallery.laplacian((8, 6)), np.ones(48), net2, maxiter=1).n_iter == 1
    with pytest.raises(ValueError, match=r"pass shape=<grid array shape>, e\.g\. shape=\(96, 64\)"):
        dcdm(sp.csr_matrix(gallery.laplacian((8, 6))), np.ones(48), net2)
    b = np.ones(64)
    b[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        dcdm(A, b, net2)
    with pytest.raises(ValueError, match="shape"):
        dcdm(A, np.ones(10), net2)
    with pytest.raises(SolverError, match=r"mask has 16 cells, expected 64"):
        dcdm(A, np.ones(64), net2, mask=np.ones((4, 4), bool))
    res = dcdm(gallery.laplacian((8, 6)), np.ones(48), net2, shape=(8, 6), maxiter=1, rtol=1e-12)
    assert not res.converged and res.n_iter == 1 and "maxiter" in res.message
    assert res.status is SolveStatus.MAXITER


def test_dcdm_status_indefinite():
    # positive diagonal but indefinite (two 2x2 blocks [[1, 2], [2, 1]]) on a 2x2 grid;
    # the NaN network falls back to the residual, whose curvature is negative
    block = np.array([[1.0, 2.0], [2.0, 1.0]])
    A = np.kron(np.eye(2), block)
    res = dcdm(A, np.array([1.0, -1.0, 1.0, -1.0]), _Bad("nan"), shape=(2, 2))
    assert res.status is SolveStatus.INDEFINITE and not res.converged
    assert "not positive definite" in res.message and res.n_iter == 0


def test_example_dcdm_poisson_smoke(tmp_path, monkeypatch):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "dcdm_poisson.py"
    spec = importlib.util.spec_from_file_location("dcdm_poisson_example", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    results = mod.main(["--smoke", "-o", str(tmp_path / "run")])
    # the model and the training vectors stay inside the run directory, none in the cwd
    assert (tmp_path / "run" / "model" / "config.json").is_file()
    assert (tmp_path / "run" / "ritz.h5").is_file()
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "run"]
    for name, r in results.items():
        assert r["dcdm_converged"] and r["vcycle_converged"], name
        assert r["dcdm"] < r["cg"] / 2 and r["vcycle_pcg"] < r["cg"] / 4, (name, r)
