"""DeepONet: contract, operator structure, impulse responses, bad input, learning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import pdesurrogates
from pdesurrogates.solvers.reference import modal_wave, pulse_width
from pdesurrogates.surrogates import DeepONet
from pdesurrogates.testing import SurrogateContract


def _paired_inputs(model, batch_size, generator, dtype, n_query=7):
    lengths = torch.tensor(model.lengths, dtype=dtype)
    src = 0.3 * lengths + 0.4 * lengths * torch.rand(
        batch_size, model.dim, generator=generator, dtype=dtype
    )
    xq = lengths * torch.rand(batch_size, n_query, model.dim, generator=generator, dtype=dtype)
    tq = model.duration * torch.rand(batch_size, n_query, 1, generator=generator, dtype=dtype)
    return model.encode_source(src).to(dtype), torch.cat([xq, tq], dim=-1)


class TestDeepONet2DContract(SurrogateContract):
    def make_model(self):
        return DeepONet(lengths=[2.0, 1.5], duration=0.01, fmax=500.0, width=16, depth=2, latent=8)

    def make_inputs(self, batch_size, *, generator, dtype=torch.float32):
        return _paired_inputs(self.make_model().to(dtype), batch_size, generator, dtype)


class TestDeepONet1DPlainSineContract(SurrogateContract):
    def make_model(self):
        return DeepONet(
            lengths=[2.0],
            duration=0.01,
            fmax=500.0,
            architecture="mlp",
            activation="sin",
            encoding="fourier",
            source_input="coordinates",
            width=16,
            depth=3,
            latent=8,
        )

    def make_inputs(self, batch_size, *, generator, dtype=torch.float32):
        return _paired_inputs(self.make_model().to(dtype), batch_size, generator, dtype)


class TestDeepONetRandomFeaturesContract(SurrogateContract):
    def make_model(self):
        return DeepONet(
            lengths=[1.0, 1.0],
            duration=0.005,
            fmax=800.0,
            encoding="random",
            n_random=12,
            activation="gelu",
            width=16,
            depth=2,
            latent=6,
            branch_width=10,
            branch_depth=1,
        )

    def make_inputs(self, batch_size, *, generator, dtype=torch.float32):
        return _paired_inputs(self.make_model().to(dtype), batch_size, generator, dtype)


def test_cartesian_product_equals_paired_evaluation():
    torch.manual_seed(0)
    model = DeepONet(lengths=[2.0, 2.0], duration=0.02, width=16, depth=2, latent=8).eval()
    b = model.encode_source(torch.tensor([[0.7, 1.1], [1.3, 0.9], [1.0, 1.0]]))
    q = torch.rand(11, 3) * torch.tensor([2.0, 2.0, 0.02])
    with torch.no_grad():
        cart = model(b, q)
        paired = model(b, q.expand(3, 11, 3))
    assert cart.shape == (3, 11)
    torch.testing.assert_close(cart, paired, atol=1e-6, rtol=1e-6)


def test_pulse_branch_input_is_the_sampled_gaussian():
    model = DeepONet(lengths=[2.0, 1.0], fmax=1000.0, sensors=[5, 3])
    src = np.array([0.6, 0.4])
    b = model.encode_source(src).numpy()[0]
    xs, ys = np.meshgrid(np.linspace(0, 2, 5), np.linspace(0, 1, 3), indexing="ij")
    sigma = pulse_width(1000.0)
    g = np.exp(-((xs - src[0]) ** 2 + (ys - src[1]) ** 2) / sigma**2).ravel()
    np.testing.assert_allclose(b, 2 * g - 1, atol=1e-6)
    # default sensors: 2 points per wavelength at fmax (spacing c / (2 fmax))
    assert DeepONet(lengths=[2.0], fmax=500.0).sensors == [math.ceil(2.0 / (343 / 1000)) + 1]


def test_periodic_encoding_satisfies_rigid_walls_exactly():
    torch.manual_seed(1)
    model = DeepONet(lengths=[2.0, 1.5], duration=0.02, width=16, depth=2, latent=8).double()
    b = model.encode_source(torch.tensor([[0.8, 0.7]], dtype=torch.float64))
    y = torch.rand(6, dtype=torch.float64) * 1.5
    t = torch.rand(6, dtype=torch.float64) * 0.02
    for x_wall in (0.0, 2.0):
        q = torch.stack([torch.full_like(y, x_wall), y, t], dim=-1).requires_grad_(True)
        (grad,) = torch.autograd.grad(model(b, q).sum(), q)
        assert grad[:, 0].abs().max() < 1e-10  # dp/dx = 0 on x walls
        assert grad[:, 2].abs().max() > 1e-6  # but the field does vary in time
    q = torch.stack([y / 1.5 * 2.0, torch.full_like(y, 1.5), t], dim=-1).requires_grad_(True)
    (grad,) = torch.autograd.grad(model(b, q).sum(), q)
    assert grad[:, 1].abs().max() < 1e-10


def test_impulse_response_matches_forward_and_checks_inputs():
    torch.manual_seed(0)
    model = DeepONet(
        lengths=[2.0, 2.0],
        duration=0.05,
        width=16,
        depth=2,
        latent=8,
        source_bounds=[[0.6, 1.4], [0.6, 1.4]],
    ).eval()
    rec = np.array([[0.4, 0.4], [1.6, 0.5], [1.0, 1.0]])
    times = np.linspace(0, 0.05, 21)
    ir = model.impulse_response([1.0, 0.8], rec, times)
    assert ir.shape == (3, 21)
    with torch.no_grad():
        q = torch.tensor([[*rec[1], times[7]]], dtype=torch.float32)
        ref = model(model.encode_source([[1.0, 0.8]]), q)
    assert ir[1, 7] == pytest.approx(float(ref[0, 0]), abs=1e-6)
    batch = model.impulse_response(np.array([[1.0, 0.8], [0.7, 1.2]]), rec, times)
    assert batch.shape == (2, 3, 21)
    np.testing.assert_allclose(batch[0], ir, atol=1e-6)
    basis = model.response_basis(rec, times)  # trunk once, reused for every source
    np.testing.assert_allclose(model.impulse_response([1.0, 0.8], basis=basis), ir, atol=1e-6)
    np.testing.assert_allclose(
        model.impulse_response(np.array([[1.0, 0.8], [0.7, 1.2]]), basis=basis), batch, atol=1e-6
    )
    with pytest.raises(ValueError, match="not both"):
        model.impulse_response([1.0, 0.8], rec, times, basis=basis)

    with pytest.raises(ValueError, match=r"source .* outside the room"):
        model.impulse_response([2.5, 1.0], rec, times)
    with pytest.raises(ValueError, match=r"receivers .* outside the room"):
        model.impulse_response([1.0, 1.0], [[1.0, -0.1]], times)
    with pytest.raises(ValueError, match=">= 0"):
        model.impulse_response([1.0, 1.0], rec, [-0.001, 0.01])
    with pytest.warns(UserWarning, match="beyond the trained horizon"):
        model.impulse_response([1.0, 1.0], rec, [0.0, 0.06])
    with pytest.warns(UserWarning, match="outside the training source region"):
        model.impulse_response([0.3, 1.0], rec, times)


def test_bad_hyperparameters_are_named():
    with pytest.raises(ValueError, match="encoding"):
        DeepONet(encoding="wavelet")
    with pytest.raises(ValueError, match="latent"):
        DeepONet(latent=0)
    with pytest.raises(ValueError, match="lengths"):
        DeepONet(lengths=[2.0, -1.0])
    with pytest.raises(ValueError, match="source_bounds"):
        DeepONet(lengths=[2.0], source_bounds=[[0.5, 2.5]])
    with pytest.raises(ValueError, match="duration"):
        DeepONet(duration=0.0)


def test_save_load_keeps_physical_setup(tmp_path):
    model = DeepONet(
        lengths=[3.0],
        duration=0.03,
        fmax=400.0,
        width=8,
        depth=1,
        latent=4,
        source_bounds=[[1.0, 2.0]],
    )
    pdesurrogates.save(model, tmp_path / "m")
    loaded = pdesurrogates.load(tmp_path / "m")
    assert loaded.get_config() == model.get_config()
    times = np.linspace(0, 0.03, 5)
    np.testing.assert_array_equal(
        loaded.impulse_response([1.5], [[0.5]], times),
        model.impulse_response([1.5], [[0.5]], times),
    )


def test_learns_the_rigid_tube_operator():
    """A small DeepONet fitted to exact modal data generalises to held-out sources."""
    L, fmax, T = 2.0, 500.0, 0.02
    sigma = pulse_width(fmax)
    x = np.linspace(0, L, 33)
    times = np.linspace(0, T, 41)
    rng = np.random.default_rng(0)
    src = rng.uniform(0.6, 1.4, 40)
    fields = np.stack(
        [modal_wave([L], [s], sigma=sigma, times=times, coords=[x]) for s in src]
    ).reshape(40, -1)
    tt, xx = np.meshgrid(times, x, indexing="ij")
    q = torch.tensor(np.stack([xx.ravel(), tt.ravel()], -1), dtype=torch.float32)
    y = torch.tensor(fields, dtype=torch.float32)
    torch.manual_seed(0)
    model = DeepONet(lengths=[L], duration=T, fmax=fmax, width=48, depth=2, latent=32)
    b = model.encode_source(src[:, None])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def test_error():
        with torch.no_grad():
            p = model(b[32:], q)
        return float(
            (torch.linalg.norm(p - y[32:], dim=1) / torch.linalg.norm(y[32:], dim=1)).mean()
        )

    before = test_error()
    g = torch.Generator().manual_seed(0)
    for _ in range(400):
        i = torch.randint(0, 32, (8,), generator=g)
        j = torch.randint(0, q.shape[0], (256,), generator=g)
        loss = (model(b[i], q[j]) - y[i][:, j]).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = test_error()
    assert before > 0.5
    assert after < 0.15
