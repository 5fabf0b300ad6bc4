"""Coefficient-aware DCDM network: scale invariance, training, save/load, refusals."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
import torch

from pdesurrogates import io
from pdesurrogates.errors import SolverError
from pdesurrogates.solvers import cg, dcdm, gallery, grid_stencil
from pdesurrogates.surrogates import ConjugateDirectionNet
from pdesurrogates.training import ritz_training_vectors, train_dcdm


def _perturbed(seed=0, dim=2, reach=1, smoother="spd"):
    """A coefficient-aware network whose learned smoother part is not zero."""
    torch.manual_seed(seed)
    net = ConjugateDirectionNet(
        dim=dim, coefficients=True, smoother_reach=reach, smoother=smoother
    ).double()
    with torch.no_grad():
        last = net.cycle.gen[-1]
        last.weight.normal_(0, 0.05)
        last.bias.normal_(0, 0.05)
    return net


def test_direction_is_invariant_to_scaling_a():
    p = gallery.named_problem("varcoef2d", 24, seed=1)
    net = _perturbed()
    r = torch.randn(2, 1, 24, 24, dtype=torch.float64)
    S = torch.from_numpy(grid_stencil(p.A, p.shape))
    with torch.no_grad():
        d = net(r, coefficients=S)
        for c in (1e-6, 3.0, 1e5):
            dc = net(r, coefficients=c * S)
            assert float((dc - d).norm() / d.norm()) < 1e-12
        # a different matrix gives a different direction: the network does see A
        other = grid_stencil(gallery.dirichlet_box((24, 24)).A, (24, 24))
        assert float((net(r, coefficients=torch.from_numpy(other)) - d).norm() / d.norm()) > 0.1
    # and the whole solve: same iterations for A and 1e4 A
    b = gallery.random_rhs(p)
    net = net.float()
    r1 = dcdm(p.A, b, net, shape=p.shape)
    r2 = dcdm(1e4 * p.A, b, net, shape=p.shape)
    assert r1.converged and r1.n_iter == r2.n_iter


@pytest.mark.parametrize(
    ("problem", "reach"),
    [
        (gallery.smoke_domain((21, 18), obstacles=[((0.5, 0.4), 0.15)]), 1),
        (gallery.anisotropic_diffusion((20, 20), eps=1e-3, theta=0.3), 1),
        (gallery.smoke_domain((9, 8, 7), obstacles=[((0.5, 0.5, 0.4), 0.2)]), 1),
        (gallery.smoke_domain((21, 18), obstacles=[((0.5, 0.4), 0.15)]), 2),
        (gallery.anisotropic_diffusion((19, 20), eps=1e-3, theta=0.3), 2),
        (gallery.smoke_domain((9, 8, 7), obstacles=[((0.5, 0.5, 0.4), 0.2)]), 2),
        # narrow grids: 9-point taps that share a flat offset on a 2- or 3-cell axis
        (gallery.anisotropic_diffusion((300, 3), eps=1e-2, theta=0.3), 1),
        (gallery.anisotropic_diffusion((600, 5), eps=1e-2, theta=0.3), 2),
    ],
)
@pytest.mark.parametrize("smoother", ["spd", "free"])
def test_numpy_cycle_is_the_torch_cycle(problem, reach, smoother):
    """The compiled sparse cycle equals the torch V-cycle (float64: to 1e-13; float32: to
    float32 round-off) on odd grids, obstacles, 9-point stencils, 3D and 5x5 smoothers."""
    net = _perturbed(dim=len(problem.shape), reach=reach, smoother=smoother)
    with torch.no_grad():  # learned transfer kernels and level scale away from their init
        net.cycle.restrict.mul_(1.1)
        net.cycle.prolong.add_(0.01 * torch.randn_like(net.cycle.prolong))
        net.cycle.level_scale.fill_(0.9)
    S = torch.from_numpy(grid_stencil(problem.A, problem.shape))
    r = np.random.default_rng(1).standard_normal(problem.n)
    for dtype, tol in ((torch.float64, 1e-13), (torch.float32, 1e-5)):
        net = net.to(dtype)
        with torch.no_grad():
            rt = torch.as_tensor(r, dtype=dtype).view(1, 1, *problem.shape)
            ref = net(rt, coefficients=S.to(dtype)).reshape(-1).double().numpy()
        out = net.numpy_cycle(S.to(dtype))(r)
        assert out.dtype == np.float64
        assert np.abs(out - ref).max() <= tol * np.abs(ref).max()
        if dtype == torch.float32:  # float32 arithmetic, not float64 rounded at the end
            exact = net.double().numpy_cycle(S)(r)
            assert np.abs(out - exact).max() > 1e-12 * np.abs(exact).max()


@pytest.mark.parametrize(
    "problem",
    [
        gallery.smoke_domain((21, 18), obstacles=[((0.5, 0.4), 0.15)]),
        gallery.anisotropic_diffusion((20, 20), eps=1e-3, theta=0.3),
    ],
)
def test_wide_smoother_starts_as_the_3x3_one(problem):
    """smoother_reach=2: the extra taps start at zero, so the untrained cycle is the
    reach-1 one to the last bit and compiles to the same sparse matrices (same cost);
    once they are perturbed, the cycle uses taps two cells away."""
    torch.manual_seed(0)
    nets = [ConjugateDirectionNet(dim=2, coefficients=True, smoother_reach=k) for k in (1, 2)]
    S = torch.from_numpy(grid_stencil(problem.A, problem.shape)).float()
    r = torch.randn(1, 1, *problem.shape)
    with torch.no_grad():
        d1, d2 = (net(r, coefficients=S) for net in nets)
    assert torch.equal(d1, d2)
    c1, c2 = (net.cycle.compile_cycle(net.prepare(S)) for net in nets)
    for L1, L2 in zip(c1.levels, c2.levels, strict=True):
        if "W" in L1:
            assert sorted(L1["W"].offsets) == sorted(L2["W"].offsets)
    wide = _perturbed(reach=2).float()
    c3 = wide.cycle.compile_cycle(wide.prepare(S))
    offsets = {int(f) for f in c3.levels[0]["W"].offsets}
    assert 2 * problem.shape[1] in offsets and 2 in offsets
    # the pattern of A^2: 13 taps for a 5-point stencil, all 25 for a 9-point one
    assert len(offsets) == (13 if (S[0, [0, 2, 6, 8]] == 0).all() else 25)
    with pytest.raises(ValueError, match="smoother_reach must be 1 or 2"):
        ConjugateDirectionNet(dim=2, coefficients=True, smoother_reach=3)


def _level_contractions(net, S):
    """Per level of the compiled cycle: (A-norm of I - W A, eigenvalues of W A, W) on the
    active cells (dense, float64)."""
    out = []
    for L in net.double().numpy_cycle(S).levels:
        if "W" not in L:
            continue
        A, W = L["A"].toarray(), L["W"].toarray()
        act = np.abs(A).sum(axis=1) > 0
        A, W = A[act][:, act], W[act][:, act]
        E = np.eye(len(A)) - W @ A
        top = scipy.linalg.eigh(E.T @ A @ E, A, eigvals_only=True)[-1]  # max |Ex|_A^2/|x|_A^2
        out.append((float(np.sqrt(top)), np.linalg.eigvals(W @ A), W))
    return out


@pytest.mark.parametrize("reach", [1, 2])
def test_spd_smoother_contracts_for_any_weights(reach):
    """smoother="spd": W is symmetric positive definite with lambda(W A) in (0, 2) (to
    round-off: saturated weights make some cells' W nearly 0), so every smoothing step
    contracts the error in the A-norm, for random network weights (small and large) on a
    rough field of contrast 1e4 the network never saw; the "free" smoother with the same
    weights amplifies it."""
    p = gallery.random_coefficient((24, 24), contrast=1e4, correlation=1.0, seed=3)
    S = torch.from_numpy(grid_stencil(p.A, p.shape))
    worst_free, coupled = 0.0, 0
    for seed, scale in itertools.product(range(3), (0.1, 1.0)):
        nets = {}
        for kind in ("spd", "free"):
            torch.manual_seed(seed)
            nets[kind] = ConjugateDirectionNet(
                dim=2, coefficients=True, smoother_reach=reach, smoother=kind
            ).double()
            with torch.no_grad():
                for prm in nets[kind].cycle.gen.parameters():
                    prm.normal_(0, scale, generator=torch.Generator().manual_seed(seed))
        for norm, lam, W in _level_contractions(nets["spd"], S):
            np.testing.assert_allclose(W, W.T, rtol=0, atol=1e-14 * np.abs(W).max())
            coupled += np.abs(W - np.diag(np.diag(W))).max() > 1e-3 * np.abs(W).max()
            assert np.abs(lam.imag).max() < 1e-8
            assert lam.real.min() > -1e-12 and lam.real.max() < 2
            assert np.linalg.eigvalsh(W).min() > -1e-12 * np.abs(W).max()  # W is SPD
            assert norm < 1 + 1e-9
        worst_free = max(worst_free, *(c[0] for c in _level_contractions(nets["free"], S)))
    assert worst_free > 1.5
    assert coupled > 0 if reach == 2 else coupled == 0  # reach 1: K is its centre only


def test_removed_learned_part_compiles_to_a_own_pattern():
    """Where the diagonal alone reaches the safeguard's cap (f close to 1), the learned part
    is removed (t = 0): the smoother is D, and its compiled form keeps A's 5 taps, not
    the 13 of the wide pattern filled with zeros."""
    p = gallery.random_coefficient((64, 64), contrast=1e2, seed=2)
    S = torch.from_numpy(grid_stencil(p.A, p.shape)).float()
    net = _perturbed(reach=2).float()
    with torch.no_grad():
        net.cycle.omega_logit.fill_(4.0)  # f = sigmoid(4 + g): lambda_max(D A) near 2
        h = net.prepare(S)
    compiled = net.cycle.compile_cycle(h)
    smoothing = [(L, C) for L, C in zip(h.levels, compiled.levels, strict=True) if "W" in C]
    assert smoothing
    for L, C in smoothing:
        W = L["W"][0]
        assert torch.count_nonzero(W[: net.cycle.wcentre]) == 0  # D alone
        assert sorted(C["W"].offsets) == sorted(C["A"].offsets)
        np.testing.assert_array_equal(C["W"].diagonal(), W[net.cycle.wcentre].reshape(-1))


def test_untrained_smoothers_are_the_same_cycle():
    """Every parametrisation starts as l1-Jacobi: the same direction to the last bit (torch
    and compiled), and the smoother is a config key."""
    p = gallery.random_coefficient((20, 17), contrast=1e4, seed=1)
    S = torch.from_numpy(grid_stencil(p.A, p.shape)).float()
    r = torch.randn(1, 1, *p.shape)
    outs = []
    for kind in ("spd", "free"):
        torch.manual_seed(0)
        net = ConjugateDirectionNet(dim=2, coefficients=True, smoother_reach=2, smoother=kind)
        assert net.get_config()["smoother"] == kind
        with torch.no_grad():
            outs.append((net(r, coefficients=S), net.numpy_cycle(S)(r.numpy().ravel())))
    for out in outs[1:]:
        assert torch.equal(outs[0][0], out[0])
        assert np.array_equal(outs[0][1], out[1])
    with pytest.raises(ValueError, match="smoother must be one of"):
        ConjugateDirectionNet(dim=2, coefficients=True, smoother="jacobi")


def test_models_saved_before_the_smoother_key_load_with_the_free_smoother():
    from pdesurrogates.io import build_model

    cfg = _perturbed(smoother="free").get_config()
    del cfg["smoother"]  # as saved before the key existed
    old = build_model({"class": "ConjugateDirectionNet", "config": cfg})
    assert old.get_config()["smoother"] == "free"
    blind = build_model({"class": "ConjugateDirectionNet", "config": {"dim": 2}})
    assert "smoother" not in blind.get_config()


def test_initial_network_is_multigrid_on_every_family():
    """Untrained (g = 0): a geometric V-cycle; size-robust on the Poisson box."""
    net = ConjugateDirectionNet(dim=2, coefficients=True)
    its = []
    for n in (32, 64):
        p = gallery.dirichlet_box((n, n))
        res = dcdm(p, gallery.random_rhs(p), net, rtol=1e-6)
        assert res.converged and res.info["fallbacks"] == 0
        its.append(res.n_iter)
    assert max(its) <= 11
    vc = gallery.named_problem("varcoef2d", 32, seed=4)
    b = gallery.random_rhs(vc)
    assert dcdm(vc, b, net, rtol=1e-6).n_iter * 10 < cg(vc.A, b, rtol=1e-6).n_iter


def test_3d_network_and_dimension_refusals():
    p3 = gallery.smoke_domain((8, 8, 8), obstacles=[((0.5, 0.5, 0.4), 0.2)])
    net3 = ConjugateDirectionNet(dim=3, coefficients=True)
    res = dcdm(p3, gallery.random_rhs(p3), net3, rtol=1e-6)
    assert res.converged and res.n_iter <= 15
    net2 = ConjugateDirectionNet(dim=2, coefficients=True)
    with pytest.raises(SolverError, match=r"model is 2D but the problem grid .* is 3D"):
        dcdm(p3, gallery.random_rhs(p3), net2)
    with pytest.raises(SolverError, match=r"model is 3D but the problem grid .* is 2D"):
        p2 = gallery.dirichlet_box((8, 8))
        dcdm(p2, gallery.random_rhs(p2), net3)
    # a bare 64-cell 3D matrix read as an 8 x 8 grid by a 2D model: refused by its pattern
    A = sp.csr_matrix(gallery.poisson3d(4))  # a copy: no grid attached
    assert getattr(A, "grid_shape", None) is None
    with pytest.raises(SolverError, match="not neighbours"):
        dcdm(A, np.ones(64), net2)
    with pytest.raises(ValueError, match=r"stencil must have shape \(1, 9"):
        net2(torch.zeros(1, 1, 8, 8), coefficients=torch.zeros(1, 27, 8, 8, 8))


def test_permuted_matrix_is_refused_by_dcdm():
    p = gallery.dirichlet_box((8, 8))
    perm = np.random.default_rng(1).permutation(p.n)
    net = ConjugateDirectionNet(dim=2, coefficients=True)
    with pytest.raises(SolverError, match=r"not neighbours.*algebraic preconditioner"):
        dcdm(p.A[perm][:, perm].tocsr(), np.ones(p.n), net)


def test_bad_arguments():
    with pytest.raises(ValueError, match="width must be 0"):
        ConjugateDirectionNet(coefficients=True, width=8)
    with pytest.raises(ValueError, match="coefficients=True"):
        ConjugateDirectionNet(dim=2, coefficients=True)(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="coefficients must be True or False"):
        ConjugateDirectionNet(coefficients="yes")


def _tiny_trained():
    torch.manual_seed(0)
    net = ConjugateDirectionNet(dim=2, coefficients=True)
    probs = [
        gallery.dirichlet_box((16, 16)),
        gallery.anisotropic_diffusion((16, 16), eps=1e-2, theta=0.3),
        gallery.smoke_domain((16, 16), obstacles=[((0.5, 0.4), 0.15)]),
    ]
    data = [ritz_training_vectors(p.A, 48, m=60, seed=i) for i, p in enumerate(probs)]
    hist = train_dcdm(net, probs, data, epochs=2, batch_size=16, lr=3e-3, progress=False)
    return net, hist


def test_tiny_trained_model_beats_cg_on_a_held_out_family(tmp_path):
    net, hist = _tiny_trained()
    assert np.isfinite(hist[-1]["loss"])
    assert any(p.grad is not None for p in net.parameters())
    # varcoef was never seen in training; held-out size too
    p = gallery.named_problem("varcoef2d", 40, seed=9)
    b = gallery.random_rhs(p)
    res = dcdm(p, b, net, rtol=1e-6)
    ref = cg(p.A, b, rtol=1e-6)
    assert res.converged and res.n_iter * 5 < ref.n_iter
    assert res.relative_residual <= 1e-6


def test_save_load_in_a_fresh_process_gives_the_same_solve(tmp_path):
    net = _perturbed(seed=2).float()  # non-zero learned smoother weights
    io.save(net, tmp_path / "m")
    p = gallery.anisotropic_diffusion((24, 24), eps=1e-3, theta=np.pi / 8)
    b = gallery.random_rhs(p)
    res = dcdm(p, b, net, rtol=1e-6)
    np.save(tmp_path / "x.npy", res.x)
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import numpy as np
            from pdesurrogates import io
            from pdesurrogates.solvers import dcdm, gallery
            net = io.load({str(tmp_path / "m")!r})
            assert net.coefficients
            p = gallery.anisotropic_diffusion((24, 24), eps=1e-3, theta=np.pi / 8)
            res = dcdm(p, gallery.random_rhs(p), net, rtol=1e-6)
            x0 = np.load({str(tmp_path / "x.npy")!r})
            print(res.n_iter, float(np.abs(res.x - x0).max()))
            """
        )
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    n_iter, diff = out.stdout.split()
    assert int(n_iter) == res.n_iter and float(diff) < 1e-12


def test_old_matrix_blind_config_still_loads(tmp_path):
    old = ConjugateDirectionNet(dim=2, width=0)
    assert "coefficients" not in old.get_config()  # what models saved before wrote
    io.save(old, tmp_path / "old")
    back = io.load(tmp_path / "old")
    assert not back.coefficients
    r = torch.randn(1, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(back(r), old(r))
