"""ConjugateDirectionNet and LearnedVCycle: contracts, linearity, symmetry, resolution."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pdesurrogates.solvers import fcg, gallery
from pdesurrogates.solvers._dcdm import network_apply
from pdesurrogates.surrogates import ConjugateDirectionNet, LearnedVCycle
from pdesurrogates.surrogates._dcdm_net import _shift_conv, _shift_conv_transpose
from pdesurrogates.testing import SurrogateContract


def _perturb(model, scale=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


class TestConjugateDirectionNet2D(SurrogateContract):
    def make_model(self):
        return _perturb(ConjugateDirectionNet(dim=2, width=4))

    def make_inputs(self, batch_size, *, generator, dtype=torch.float32):
        return (torch.randn(batch_size, 1, 16, 12, generator=generator, dtype=dtype),)


class TestConjugateDirectionNet3D(SurrogateContract):
    fresh_process = False  # the family's load is checked by another class

    def make_model(self):
        return _perturb(ConjugateDirectionNet(dim=3, width=2))

    def make_inputs(self, batch_size, *, generator, dtype=torch.float32):
        return (torch.randn(batch_size, 1, 8, 6, 8, generator=generator, dtype=dtype),)


class TestLearnedVCycle2D(SurrogateContract):
    def make_model(self):
        return LearnedVCycle(dim=2, coarse_cells=16)

    def make_inputs(self, batch_size, *, generator, dtype=torch.float32):
        return (torch.randn(batch_size, 1, 8, 8, generator=generator, dtype=dtype),)


class TestLearnedVCycle3D(SurrogateContract):
    fresh_process = False  # the family's load is checked by another class

    def make_model(self):
        return LearnedVCycle(dim=3, coarse_cells=8)

    def make_inputs(self, batch_size, *, generator, dtype=torch.float32):
        return (torch.randn(batch_size, 1, 4, 4, 4, generator=generator, dtype=dtype),)


@pytest.mark.parametrize("dim", [2, 3])
def test_shift_convolutions_equal_torch(dim):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, *(9,) * dim, generator=g, dtype=torch.float64)
    w3 = torch.randn(1, 1, *(3,) * dim, generator=g, dtype=torch.float64)
    w4 = torch.randn(1, 1, *(4,) * dim, generator=g, dtype=torch.float64)
    conv = F.conv2d if dim == 2 else F.conv3d
    convT = F.conv_transpose2d if dim == 2 else F.conv_transpose3d
    torch.testing.assert_close(_shift_conv(x, w3, 1, 1), conv(x, w3, padding=1))
    xe = F.pad(x, [0, 1] * dim)
    torch.testing.assert_close(_shift_conv(xe, w4, 2, 1), conv(xe, w4, stride=2, padding=1))
    torch.testing.assert_close(
        _shift_conv_transpose(x, w4, 2, 1), convT(x, w4, stride=2, padding=1)
    )


def test_training_path_equals_inference_path():
    net = _perturb(ConjugateDirectionNet(dim=2, width=4)).double()
    x = torch.randn(2, 1, 20, 14, dtype=torch.float64)
    with torch.no_grad():
        fast = net(x)
    slow = net(x)  # grad enabled: shift-based convolutions
    torch.testing.assert_close(slow.detach(), fast)


@pytest.mark.parametrize(
    ("dim", "shape", "boundary"),
    [
        (2, (21, 30), "smoke"),
        (2, (16, 16), ["neumann", "dirichlet", "dirichlet", "neumann"]),
        (3, (9, 12, 10), "smoke"),
    ],
)
def test_inference_fast_path_equals_training_path_with_mask(dim, shape, boundary):
    # inference pads in one call, restricts by stride-1 convolution + subsampling and
    # runs the single-channel convolutions outside oneDNN: same map as the training path
    net = _perturb(ConjugateDirectionNet(dim=dim, width=3, boundary=boundary))
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 1, *shape, generator=g)
    mask = (torch.rand(1, 1, *shape, generator=g) > 0.15).float()
    before = torch.backends.mkldnn.enabled
    with torch.inference_mode():
        fast = net(x, mask)
    assert torch.backends.mkldnn.enabled == before  # global switch restored
    assert not net._native_convs
    slow = net(x, mask)  # grad enabled: shift-based convolutions
    torch.testing.assert_close(slow.detach(), fast, rtol=1e-5, atol=1e-5 * float(fast.abs().max()))


def test_width_zero_network_is_linear():
    net = _perturb(ConjugateDirectionNet(dim=2, width=0)).double()
    g = torch.Generator().manual_seed(1)
    a, b = (torch.randn(1, 1, 16, 16, generator=g, dtype=torch.float64) for _ in range(2))
    with torch.no_grad():
        torch.testing.assert_close(net(2 * a - 3 * b), 2 * net(a) - 3 * net(b))


@pytest.mark.parametrize("n", [16, 33, 64])
def test_initial_network_is_a_good_preconditioner_at_every_size(n):
    # the multigrid initialisation: ~size-independent flexible-CG iteration counts
    net = ConjugateDirectionNet(dim=2, width=0)
    p = gallery.dirichlet_box((n, n))
    b = gallery.random_rhs(p, seed=0)
    res = fcg(p.A, b, rtol=1e-6, M=network_apply(net, (n, n)), m=2)
    assert res.converged and res.n_iter <= 12
    assert np.linalg.norm(b - p.A @ res.x) <= 1e-6 * np.linalg.norm(b)


def test_learned_vcycle_is_symmetric_positive_definite_matrix():
    m = _perturb(LearnedVCycle(dim=2, coarse_cells=4), scale=0.3).double()
    n = 8
    eye = torch.eye(n * n, dtype=torch.float64).reshape(-1, 1, n, n)
    with torch.no_grad():
        B = m(eye).reshape(n * n, n * n).numpy()
    np.testing.assert_allclose(B, B.T, atol=1e-12)
    assert np.linalg.eigvalsh(B).min() > 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dim": 4},
        {"width": -1},
        {"smoothing_steps": 0},
        {"coarse_size": 1},
        {"n_blocks": 1.5},
    ],
)
def test_bad_hyperparameters(kwargs):
    with pytest.raises(ValueError):
        ConjugateDirectionNet(**kwargs)


def test_bad_input_shape():
    with pytest.raises(ValueError, match="expected input"):
        ConjugateDirectionNet(dim=2)(torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match="dim"):
        LearnedVCycle(dim=1)


class TestConjugateDirectionNetSmoke(SurrogateContract):
    fresh_process = False  # the family's load is checked by another class

    def make_model(self):
        return _perturb(ConjugateDirectionNet(dim=2, width=2, boundary="smoke"))

    def make_inputs(self, batch_size, *, generator, dtype=torch.float32):
        return (torch.randn(batch_size, 1, 12, 10, generator=generator, dtype=dtype),)


def test_boundary_padding_matches_smoke_stencil():
    # with Neumann copies on the walls and zeros on the open top, the network's internal
    # stencil (the initial Laplacian) acting on a field equals the smoke-domain matrix
    net = ConjugateDirectionNet(dim=2, width=0, boundary="smoke").double()
    p = gallery.smoke_domain((7, 6))
    e = torch.randn(1, 1, 7, 6, dtype=torch.float64)
    with torch.no_grad():
        Ke = net._conv(e, net.stencil).reshape(-1).numpy()
    np.testing.assert_allclose(Ke, p.A @ e.reshape(-1).numpy(), atol=1e-12)


def test_smoke_boundary_network_preconditions_smoke_domain():
    p = gallery.smoke_domain((48, 48))
    b = gallery.smooth_rhs(p, seed=0)
    its = {}
    for bc in ("dirichlet", "smoke"):
        net = ConjugateDirectionNet(dim=2, width=0, boundary=bc)
        res = fcg(p.A, b, rtol=1e-6, M=network_apply(net, p.shape), m=2)
        assert res.converged
        its[bc] = res.n_iter
    assert its["smoke"] <= 15 and its["smoke"] < its["dirichlet"] / 3


def test_bad_boundary():
    with pytest.raises(ValueError, match="boundary"):
        ConjugateDirectionNet(dim=2, boundary="periodic")
    with pytest.raises(ValueError, match="boundary"):
        ConjugateDirectionNet(dim=2, boundary=["neumann"] * 3)
    net = ConjugateDirectionNet(dim=3, boundary=["neumann", "dirichlet"] * 3)
    assert net.get_config()["boundary"] == ["neumann", "dirichlet"] * 3


def test_mask_input():
    net = _perturb(ConjugateDirectionNet(dim=2, width=2, boundary="smoke")).double()
    r = torch.randn(2, 1, 16, 12, dtype=torch.float64)
    ones = torch.ones(1, 1, 16, 12, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(net(r, ones), net(r))
        p = gallery.smoke_domain((16, 12), obstacles=[((0.5, 0.5), 0.25)])
        m = torch.from_numpy(p.mask.astype(float)).view(1, 1, 16, 12)
        out = net(r, m)
    assert torch.all(out[..., ~torch.from_numpy(p.mask)] == 0)
    with pytest.raises(ValueError, match="mask"):
        net(r, ones[..., :5])


def test_masked_network_preconditions_obstacle_domain():
    p = gallery.smoke_domain((64, 64), obstacles=[((0.3, 0.35), 0.1), ((0.7, 0.6), 0.08)])
    b = gallery.random_rhs(p, seed=0)
    net = ConjugateDirectionNet(dim=2, width=0, boundary="smoke")
    res = fcg(p.A, b, rtol=1e-6, M=network_apply(net, p.shape, mask=p.mask), m=2)
    assert res.converged and res.n_iter <= 16
