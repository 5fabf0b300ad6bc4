"""MgNO: contract, resolution consistency, boundary handling, bad input."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pdesurrogates.surrogates import MgNO
from pdesurrogates.surrogates._mgno import _conservative_upsample, _prolong
from pdesurrogates.testing import SurrogateContract


class TestMgNOContract(SurrogateContract):
    def make_model(self):
        return MgNO(channels=[6, 8], levels=2, layers=2, base_resolution=16)

    def make_inputs(self, batch_size, *, generator, dtype=torch.float32):
        return (torch.randn(batch_size, 1, 16, 16, generator=generator, dtype=dtype),)


class TestMgNOFinerGridContract(SurrogateContract):
    fresh_process = False  # the family's load is checked by another class
    """The same contract when evaluated above the base grid (fixed transfer levels)."""

    def make_model(self):
        return MgNO(
            in_channels=2,
            out_channels=3,
            channels=6,
            levels=3,
            layers=1,
            base_resolution=8,
            lifting_channels=5,
            projection_channels=None,
            padding_mode="circular",
        )

    def make_inputs(self, batch_size, *, generator, dtype=torch.float32):
        return (torch.randn(batch_size, 2, 32, 32, generator=generator, dtype=dtype),)


def _grid(n):
    x = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    return torch.meshgrid(x, x, indexing="ij")


def _smooth(n):
    X, Y = _grid(n)
    return (torch.sin(3.1 * X) * torch.cos(2.0 * Y) + X * Y).float()[None, None]


def _model(grid_mode, seed=0):
    torch.manual_seed(seed)
    return MgNO(channels=12, levels=4, layers=3, base_resolution=32, grid_mode=grid_mode).eval()


def test_outputs_at_two_resolutions_agree():
    """Same smooth input at 32² and 64²: the 64² output, averaged onto the 32² cells,
    reproduces the 32² output (a consistent discretisation of one operator)."""
    physical = _model("physical")
    pixel = _model("pixel")
    pixel.load_state_dict(physical.state_dict())
    errs = {}
    with torch.no_grad():
        for name, m in (("physical", physical), ("pixel", pixel)):
            coarse, fine = m(_smooth(32)), m(_smooth(64))
            errs[name] = float((F.avg_pool2d(fine, 2) - coarse).norm() / coarse.norm())
            # and after interpolating the coarse output up to the fine grid
            up = F.interpolate(coarse, size=(64, 64), mode="bilinear", align_corners=False)
            errs[name + "_interp"] = float((up - fine).norm() / fine.norm())
    assert errs["physical"] < 2e-3, errs
    assert errs["physical"] < errs["pixel"] / 10, errs
    assert errs["physical_interp"] < 3e-2, errs


def test_consistency_improves_with_refinement():
    """Outputs at 64², 128², 256² converge: differences shrink as the grid is refined."""
    m = _model("physical")
    with torch.no_grad():
        o = {n: m(_smooth(n)) for n in (64, 128, 256)}
    d1 = float((F.avg_pool2d(o[128], 2) - o[64]).norm() / o[64].norm())
    d2 = float((F.avg_pool2d(o[256], 4) - o[64]).norm() / o[64].norm())
    assert d1 < 2e-3
    assert d2 < 2e-3


def test_coarser_than_base_grid_runs_and_agrees():
    m = _model("physical")
    with torch.no_grad():
        base, coarse = m(_smooth(32)), m(_smooth(16))
    err = float((F.avg_pool2d(base, 2) - coarse).norm() / coarse.norm())
    assert coarse.shape == (1, 1, 16, 16)
    assert err < 0.05


def _heat_data(coeffs, n):
    """Band-limited periodic input ``a`` and its exact heat-kernel smoothing ``u`` at n²."""
    x = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    k = torch.arange(-3, 4, dtype=torch.float64)
    ex = torch.exp(2j * math.pi * k[:, None] * x[None, :])  # (7, n)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    coef = torch.complex(coeffs[..., 0], coeffs[..., 1]) / (1 + k2)
    damp = torch.exp(-0.01 * (2 * math.pi) ** 2 * k2)
    a = torch.einsum("skl,kx,ly->sxy", coef, ex, ex).real
    u = torch.einsum("skl,kx,ly->sxy", coef * damp, ex, ex).real
    return a.float().unsqueeze(1), u.float().unsqueeze(1)


def _train_on_heat_kernel(grid_mode, steps):
    """Train at 16² on an exactly known smoothing operator (the data are exact at every
    resolution), return the mean relative L2 test error at 16², 32² and 64²."""
    gen = torch.Generator().manual_seed(0)
    c_train = torch.randn(32, 7, 7, 2, generator=gen, dtype=torch.float64)
    c_test = torch.randn(16, 7, 7, 2, generator=gen, dtype=torch.float64)
    a, u = _heat_data(c_train, 16)
    torch.manual_seed(0)
    model = MgNO(
        channels=8,
        levels=3,
        layers=2,
        base_resolution=16,
        padding_mode="circular",
        projection_channels=16,
        grid_mode=grid_mode,
    )
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for _ in range(steps):
        for i in range(0, 32, 16):
            opt.zero_grad()
            loss = (model(a[i : i + 16]) - u[i : i + 16]).square().mean()
            loss.backward()
            opt.step()
    model.eval()
    errs = {}
    with torch.no_grad():
        for n in (16, 32, 64):
            at, ut = _heat_data(c_test, n)
            p = model(at)
            errs[n] = float(((p - ut).flatten(1).norm(dim=1) / ut.flatten(1).norm(dim=1)).mean())
    return errs


def test_trained_model_keeps_accuracy_on_finer_grids():
    """Trained at 16², evaluated zero-shot at 32² and 64²: error within 1.5x."""
    errs = _train_on_heat_kernel("physical", steps=60)
    assert errs[16] < 0.1, errs
    assert errs[32] < 1.5 * errs[16], errs
    assert errs[64] < 1.5 * errs[16], errs


@pytest.mark.slow
def test_pixel_kernels_lose_accuracy_on_finer_grids():
    """The published (pixel-kernel) MgNO, same training: its error grows at 32² and 64²."""
    physical = _train_on_heat_kernel("physical", steps=100)
    pixel = _train_on_heat_kernel("pixel", steps=100)
    assert pixel[64] > 3 * pixel[16], pixel
    assert pixel[64] > 3 * physical[64], (pixel, physical)


def test_conservative_upsample_keeps_cell_means():
    v = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    for r in (2, 4):
        up = _conservative_upsample(v, r)
        assert up.shape == (2, 3, 8 * r, 8 * r)
        torch.testing.assert_close(F.avg_pool2d(up, r), v, atol=1e-12, rtol=0)
    # a linear function is reproduced exactly, boundary cells included
    x = (torch.arange(8, dtype=torch.float64) + 0.5) / 8
    lin = (2 * x[:, None] + x[None, :]).expand(1, 1, 8, 8)
    xf = (torch.arange(16, dtype=torch.float64) + 0.5) / 16
    exact = 2 * xf[:, None] + xf[None, :]
    torch.testing.assert_close(_conservative_upsample(lin, 2)[0, 0], exact, atol=1e-12, rtol=0)


def _cell_averages(fun, n, sub=8):
    m = n * sub
    x = (torch.arange(m, dtype=torch.float64) + 0.5) / m
    return F.avg_pool2d(fun(x[:, None], x[None, :])[None, None], sub)


def test_conservative_upsample_is_second_order_in_h1():
    """Refining a smooth field keeps its gradient: the H1 error of 64² -> 128² is small and
    falls by about 4x when the coarse grid is refined (clamped boundary cells gave 16 %)."""
    from pdesurrogates.training import rel_h1

    def fun(x, y):
        return torch.sin(math.pi * x) * torch.sin(2 * math.pi * y) * (1 + x * y)

    errs = [
        float(rel_h1(_conservative_upsample(_cell_averages(fun, n), 2), _cell_averages(fun, 2 * n)))
        for n in (32, 64)
    ]
    assert errs[1] < 3e-3, errs
    assert 3.0 < errs[0] / errs[1] < 5.0, errs


@pytest.mark.parametrize("mode", ["circular", "reflect"])
def test_prolongation_padding_modes(mode):
    torch.manual_seed(0)
    conv = torch.nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1, bias=False)
    x = torch.randn(2, 3, 8, 8)
    # zero padding through the generic path equals torch's padded transposed conv
    up = F.pad(x, (1, 1, 1, 1))
    generic = F.conv_transpose2d(up, conv.weight, stride=2)[..., 3:19, 3:19]
    torch.testing.assert_close(generic, conv(x), atol=1e-6, rtol=0)
    out = _prolong(conv, x, mode)
    assert out.shape == (2, 2, 16, 16)
    # away from the boundary the padding mode does not matter
    torch.testing.assert_close(out[..., 3:-3, 3:-3], conv(x)[..., 3:-3, 3:-3], atol=1e-6, rtol=0)
    assert not torch.allclose(out[..., 0, :], conv(x)[..., 0, :])


def test_circular_padding_is_shift_equivariant():
    """With periodic boundaries, shifting the input by a multiple of the coarsest cell
    shifts the output by the same amount."""
    torch.manual_seed(0)
    m = MgNO(channels=6, levels=3, layers=2, base_resolution=16, padding_mode="circular").eval()
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        shifted = m(torch.roll(x, shifts=(8, -16), dims=(-2, -1)))
        expected = torch.roll(m(x), shifts=(8, -16), dims=(-2, -1))
    torch.testing.assert_close(shifted, expected, atol=1e-5, rtol=0)


def test_zero_padding_is_not_shift_equivariant():
    torch.manual_seed(0)
    m = MgNO(channels=6, levels=3, layers=2, base_resolution=16).eval()
    x = torch.randn(1, 1, 16, 16)
    with torch.no_grad():
        d = m(torch.roll(x, 4, -1)) - torch.roll(m(x), 4, -1)
    assert d.abs().max() > 1e-3


def test_three_dimensional_input_for_single_channel():
    m = MgNO(channels=4, levels=2, layers=1, base_resolution=8).eval()
    x = torch.randn(3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(m(x), m(x.unsqueeze(1)).squeeze(1))


def test_parameter_count_independent_of_resolution_and_published_size():
    m = MgNO(channels=24, levels=5, layers=4, base_resolution=64)
    n = sum(p.numel() for p in m.parameters())
    assert 450_000 < n < 600_000


def test_valid_resolutions():
    m = MgNO(channels=4, levels=3, layers=1, base_resolution=32)
    assert m.valid_resolutions(256) == [8, 16, 32, 64, 128, 256]


@pytest.mark.parametrize("n", [48, 30, 4])
def test_unsupported_size_names_sizes_that_work(n):
    m = MgNO(channels=4, levels=3, layers=1, base_resolution=32)
    with pytest.raises(ValueError, match=r"input size .* not supported.*8, 16, 32, 64"):
        m(torch.randn(1, 1, n, n))


def test_pixel_mode_requires_divisibility():
    m = MgNO(channels=4, levels=3, layers=1, base_resolution=32, grid_mode="pixel")
    assert m(torch.randn(1, 1, 12, 12)).shape == (1, 1, 12, 12)
    with pytest.raises(ValueError, match=r"not divisible by 2\*\*\(levels-1\)=4"):
        m(torch.randn(1, 1, 10, 10))


def test_bad_input_errors():
    m = MgNO(in_channels=2, channels=4, levels=2, layers=1, base_resolution=8)
    with pytest.raises(ValueError, match="3 channels"):
        m(torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match="shape"):
        m(torch.randn(8, 8))
    with pytest.raises(ValueError, match="floating-point"):
        MgNO(channels=4, levels=2, layers=1, base_resolution=8)(torch.ones(1, 1, 8, 8).long())
    with pytest.raises(ValueError, match="refined equally"):
        MgNO(channels=4, levels=2, layers=1, base_resolution=8)(torch.randn(1, 1, 8, 16))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"levels": 0}, "levels"),
        ({"base_resolution": 20, "levels": 4}, "not divisible"),
        ({"channels": [4, 4]}, "channels"),
        ({"padding_mode": "replicate"}, "padding_mode"),
        ({"grid_mode": "mesh"}, "grid_mode"),
        ({"pre_smooth": -1}, "pre_smooth"),
        ({"projection_channels": 0}, "projection_channels"),
        ({"in_channels": 1.5}, "in_channels"),
    ],
)
def test_invalid_hyperparameters(kwargs, match):
    base = {"channels": 4, "levels": 3, "layers": 1, "base_resolution": 16}
    with pytest.raises(ValueError, match=match):
        MgNO(**{**base, **kwargs})
