"""The dense training hierarchy matches the sparse one; training on a family mix."""

import numpy as np
import pytest
import torch

from pdesurrogates.solvers import gallery
from pdesurrogates.solvers._multigrid import MultigridHierarchy
from pdesurrogates.surrogates import LearnedVCycle
from pdesurrogates.surrogates._dense_multigrid import dense_hierarchy
from pdesurrogates.training import train_vcycle
from pdesurrogates.training._vcycle import _geometric_ops


@pytest.mark.parametrize("coarse", ["galerkin", "geometric"])
@pytest.mark.parametrize(
    "prob",
    [
        gallery.smoke_domain((12, 12), obstacles=[((0.5, 0.4), 0.2)]),
        gallery.random_coefficient((6, 6, 6), contrast=1e3, correlation=1.0),
    ],
    ids=["smoke2d", "varcoef3d"],
)
def test_dense_training_hierarchy_equals_the_sparse_cycle(coarse, prob):
    torch.manual_seed(0)
    m = LearnedVCycle(dim=prob.dim, coarse_cells=8).double()
    with torch.no_grad():
        m.stencil.copy_(torch.tensor([0.7, 0.3]))
    A = torch.as_tensor(prob.A.toarray())
    geo = _geometric_ops(A, prob.shape) if coarse == "geometric" else None
    levels = dense_hierarchy(m, A, prob.shape, geo)
    r = np.random.default_rng(1).standard_normal(prob.n)
    dense = m.apply(levels, torch.as_tensor(r)[None])[0].detach().numpy()
    sparse = MultigridHierarchy(m, prob, coarse=coarse).matvec(r)
    assert np.allclose(dense, sparse, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", [(10, 10), (9, 9, 9)])
def test_forward_is_the_sparse_cycle_of_the_dirichlet_laplacian(shape):
    """``LearnedVCycle.forward`` (the model called on a residual) runs the same cycle as the
    sparse hierarchy that ``solve_with(..., "vcycle")`` builds, in 2D and 3D."""
    m = LearnedVCycle(dim=len(shape), coarse_cells=8).double()
    prob = gallery.dirichlet_box(shape)
    r = np.random.default_rng(2).standard_normal(prob.n)
    with torch.no_grad():
        dense = m(torch.as_tensor(r).reshape(1, 1, *shape)).reshape(-1).numpy()
    sparse = MultigridHierarchy(m, prob).matvec(r)
    assert np.allclose(dense, sparse, rtol=1e-10, atol=1e-12)


def test_training_on_a_family_mix_lowers_the_contraction():
    mix = [
        gallery.dirichlet_box((16, 16)),
        gallery.random_coefficient((16, 16), contrast=1e4, correlation=1.5, seed=5),
        gallery.smoke_domain((16, 16), obstacles=[((0.4, 0.4), 0.2)]),
    ]
    m = LearnedVCycle(dim=2, coarse_cells=9)
    hist = train_vcycle(m, A=mix, coarse="galerkin", steps=12, lr=3e-2, progress=False)
    assert hist[-1]["rho"] < 0.9 * hist[0]["rho"]  # 0.081 -> 0.063 when written


def test_training_matrices_must_share_a_grid():
    m = LearnedVCycle(dim=2)
    with pytest.raises(ValueError, match="different grids"):
        train_vcycle(
            m,
            A=[gallery.dirichlet_box((8, 8)), gallery.dirichlet_box((8, 12))],
            steps=1,
            progress=False,
        )
    with pytest.raises(ValueError, match="empty"):
        train_vcycle(m, A=[], steps=1, progress=False)
    with pytest.raises(ValueError, match="coarse"):
        train_vcycle(m, (8, 8), coarse="compact", steps=1, progress=False)


def _mix_8x8():
    return [
        gallery.dirichlet_box((8, 8)),
        gallery.anisotropic_diffusion((8, 8), eps=1e-3, theta=np.pi / 6),
    ]


def test_loss_weights_weigh_each_matrix_loss():
    from pdesurrogates.training._vcycle import VCycleStep

    mats = [torch.as_tensor(p.A.toarray()) for p in _mix_8x8()]
    m = LearnedVCycle(dim=2, coarse_cells=4).double()
    batch = torch.randn(5, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        single = [float(VCycleStep([M], (8, 8), 2).loss(m, batch)[0]) for M in mats]
        both = float(VCycleStep(mats, (8, 8), 2, weights=[3.0, 1.0]).loss(m, batch)[0])
        equal = float(VCycleStep(mats, (8, 8), 2).loss(m, batch)[0])
    assert both == pytest.approx(0.75 * single[0] + 0.25 * single[1], rel=1e-12)
    assert equal == pytest.approx(0.5 * (single[0] + single[1]), rel=1e-12)
    # the anisotropic matrix contracts least: its log-contraction is the smallest in size
    assert abs(single[1]) < abs(single[0])


def test_relative_weights_favour_the_matrix_that_contracts_least():
    from pdesurrogates.training import _vcycle

    seen = {}
    fit = _vcycle.Trainer.fit

    def spy(self, source):
        seen["weights"] = list(self.step.weights)
        return fit(self, source)

    m = LearnedVCycle(dim=2, coarse_cells=4)
    _vcycle.Trainer.fit = spy
    try:
        train_vcycle(m, A=_mix_8x8(), steps=1, weights="relative", progress=False)
    finally:
        _vcycle.Trainer.fit = fit
    # oracle: the loss of each matrix alone at the initialisation, on the first batch
    init = LearnedVCycle(dim=2, coarse_cells=4).double()
    batch = _vcycle._RandomVectors(64, 16, 0, torch.float64).batches(0)[0]
    mats = [torch.as_tensor(p.A.toarray()) for p in _mix_8x8()]
    with torch.no_grad():
        start = [float(_vcycle.VCycleStep([M], (8, 8), 3).loss(init, batch)[0]) for M in mats]
    inv = [1 / abs(v) for v in start]
    assert seen["weights"] == pytest.approx([v / sum(inv) for v in inv], rel=1e-10)
    assert seen["weights"][1] > seen["weights"][0]  # anisotropy contracts least


@pytest.mark.parametrize("weights", [[1.0], [1.0, -1.0], [1.0, float("nan")], "heavy"])
def test_bad_loss_weights_are_refused(weights):
    m = LearnedVCycle(dim=2, coarse_cells=4)
    with pytest.raises(ValueError, match="weights"):
        train_vcycle(m, A=_mix_8x8(), steps=1, weights=weights, progress=False)


def test_the_step_itself_refuses_relative_weights_it_cannot_resolve():
    from pdesurrogates.training._vcycle import VCycleStep

    mats = [torch.as_tensor(p.A.toarray()) for p in _mix_8x8()]
    with pytest.raises(ValueError, match="train_vcycle resolves"):
        VCycleStep(mats, (8, 8), 2, weights="relative")


def test_training_coarse_cells_deepens_the_hierarchy_as_the_model_setting_does():
    from pdesurrogates.training._vcycle import VCycleStep

    A = torch.as_tensor(gallery.smoke_domain((16, 16), obstacles=[((0.5, 0.4), 0.2)]).A.toarray())
    batch = torch.randn(4, 256, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    shallow = LearnedVCycle(dim=2, coarse_cells=64).double()
    deep = LearnedVCycle(dim=2, coarse_cells=4).double()
    with torch.no_grad():
        for m in (shallow, deep):
            m.stencil.copy_(torch.tensor([0.7, 0.3]))
        assert len(dense_hierarchy(shallow, A, (16, 16), coarse_cells=4)) == 4  # 16, 8, 4, 2
        assert len(dense_hierarchy(shallow, A, (16, 16))) == 2  # 16, 8 (64 cells: exact)
        got = float(VCycleStep([A], (16, 16), 2, coarse_cells=4).loss(shallow, batch)[0])
        want = float(VCycleStep([A], (16, 16), 2).loss(deep, batch)[0])
        other = float(VCycleStep([A], (16, 16), 2).loss(shallow, batch)[0])
    assert got == pytest.approx(want, rel=1e-12)
    assert got > other  # an approximate coarse solve contracts less than an exact one
    with pytest.raises(ValueError, match="coarse_cells"):
        train_vcycle(shallow, (8, 8), coarse_cells=0, steps=1, progress=False)
    # any integer type is accepted (numpy's too); a float is not
    hist = train_vcycle(shallow, (8, 8), coarse_cells=np.int64(4), steps=1, progress=False)
    assert len(hist) == 1 and np.isfinite(hist[0]["loss"])
    with pytest.raises(ValueError, match="coarse_cells"):
        train_vcycle(shallow, (8, 8), coarse_cells=4.0, steps=1, progress=False)
