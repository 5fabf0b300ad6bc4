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


class _DeepONetContract(SurrogateContract):
    """The shared contract, fed with encoded sources and random query points."""

    def make_inputs(self, batch_size, *, generator, dtype=torch.float32):
        return _paired_inputs(self.make_model().to(dtype), batch_size, generator, dtype)


class TestDeepONet2DContract(_DeepONetContract):
    def make_model(self):
        return DeepONet(lengths=[2.0, 1.5], duration=0.01, fmax=500.0, width=16, depth=2, latent=8)


class TestDeepONet1DPlainSineContract(_DeepONetContract):
    fresh_process = False  # the family's load is checked by another class

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


class TestDeepONetRandomFeaturesContract(_DeepONetContract):
    fresh_process = False  # the family's load is checked by another class

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
    np.testing.assert_allclose(
        loaded.impulse_response([1.5], [[0.5]], times),
        model.impulse_response([1.5], [[0.5]], times),
        rtol=1e-6,
        atol=1e-8,
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


class TestDeepONetJointTrunkContract(_DeepONetContract):
    def make_model(self):
        return DeepONet(
            lengths=[2.0, 1.5], duration=0.01, trunk="joint", width=16, depth=2, latent=8
        )


class TestDeepONetSeparableRank2Contract(_DeepONetContract):
    fresh_process = False  # the family's load is checked by another class

    def make_model(self):
        return DeepONet(
            lengths=[1.0, 1.0],
            duration=0.005,
            fmax=800.0,
            encoding="random",
            n_random=6,
            rank=2,
            width=12,
            depth=2,
            latent=5,
        )


def _room_model(**kwargs):
    torch.manual_seed(3)
    config = dict(lengths=[2.0, 1.5], duration=0.02, fmax=500.0, width=24, depth=3, latent=12)
    config.update(kwargs)
    return DeepONet(**config).eval()


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"rank": 3},
        {"encoding": "fourier", "activation": "sin", "architecture": "mlp"},
        {"encoding": "none", "source_input": "coordinates", "activation": "gelu"},
        {"trunk": "joint"},
    ],
)
def test_cold_impulse_response_equals_the_generic_operator(kwargs):
    """The lean path (fused weights, cached time basis) is the operator ``forward``."""
    model = _room_model(**kwargs)
    rec = np.array([[0.1, 0.2], [1.9, 1.4], [1.0, 0.75], [0.0, 1.5]])
    times = model.native_times()[:-3]  # on the native grid: cached time basis
    off = np.linspace(0.0013, 0.0191, 17)  # off the grid: the time net runs
    srcs = np.array([[0.8, 0.6], [1.3, 0.9]])
    b = model.encode_source(srcs)
    for t in (times, off, times[::-2]):
        with torch.no_grad():
            ref = model(b, model.query_points(rec, t)).reshape(2, len(rec), len(t)).numpy()
            grid = model.forward_grid(
                b,
                torch.tensor(rec, dtype=torch.float32),
                torch.tensor(t.copy(), dtype=torch.float32),
            ).numpy()
        scale = np.abs(ref).max()
        assert scale > 1e-3
        np.testing.assert_allclose(model.impulse_response(srcs, rec, t), ref, atol=2e-6 * scale)
        np.testing.assert_allclose(
            model.impulse_response(srcs[1], rec, t), ref[1], atol=2e-6 * scale
        )
        np.testing.assert_allclose(grid, ref, atol=2e-6 * scale)
        basis = model.response_basis(rec, t)
        np.testing.assert_allclose(
            model.impulse_response(srcs, basis=basis), ref, atol=2e-6 * scale
        )


def test_separable_trunk_is_space_times_time():
    """tau_k(x, t) = sum_r phi_kr(x) psi_kr(t): rank 1 gives rank-1 latent fields."""
    model = _room_model(rank=1)
    x = torch.rand(7, 2) * torch.tensor([2.0, 1.5])
    t = torch.rand(9) * 0.02
    coords = torch.cat([x[:, None].expand(7, 9, 2), t[None, :, None].expand(7, 9, 1)], dim=-1)
    with torch.no_grad():
        tau = model.trunk_features(coords)  # (7, 9, p)
    for k in range(model.latent):
        s = torch.linalg.svdvals(tau[:, :, k].double())
        assert s[1] <= 1e-6 * s[0]
    model3 = _room_model(rank=3)
    with torch.no_grad():
        s = torch.linalg.svdvals(model3.trunk_features(coords)[:, :, 0].double())
    assert s[2] > 1e-4 * s[0] and s[3] <= 1e-6 * s[0]


def test_time_basis_is_cached_and_invalidated_by_weight_changes():
    model = _room_model()
    calls = []
    model.time_net.register_forward_hook(lambda *a: calls.append(1))
    rec = np.array([[0.3, 0.4], [1.5, 1.1]])
    times = model.native_times()[:40]
    src = np.array([1.0, 0.7])
    first = model.impulse_response(src, rec, times)
    assert len(calls) == 1  # the native-grid basis, once
    for i in range(5):  # new sources and receivers: no further time-net pass
        model.impulse_response(src + 0.05 * i, rec[::-1] * (1 - 0.02 * i), times)
    assert len(calls) == 1

    # an optimizer step changes the weights in place: the basis is rebuilt
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    b = model.encode_source(src)
    loss = model(b, model.query_points(rec, times)).square().mean()
    loss.backward()
    opt.step()
    model.eval()
    calls.clear()
    after = model.impulse_response(src, rec, times)
    assert len(calls) == 1
    assert np.abs(after - first).max() > 1e-3 * np.abs(first).max()
    with torch.no_grad():
        ref = model(b, model.query_points(rec, times)).reshape(2, 40).numpy()
    np.testing.assert_allclose(after, ref, atol=2e-6 * np.abs(ref).max())

    # in-place edits under no_grad, load_state_dict and a dtype change also invalidate it
    with torch.no_grad():
        model.time_net.last.bias.add_(0.25)
    with torch.no_grad():
        edited = model(b, model.query_points(rec, times)).reshape(2, 40).numpy()
    assert np.abs(edited - ref).max() > 1e-3 * np.abs(ref).max()
    np.testing.assert_allclose(
        model.impulse_response(src, rec, times), edited, atol=2e-6 * np.abs(edited).max()
    )
    other = _room_model()
    model.load_state_dict(other.state_dict())
    np.testing.assert_allclose(
        model.impulse_response(src, rec, times), first, atol=2e-6 * np.abs(first).max()
    )
    model.double()
    with torch.no_grad():
        ref64 = model(model.encode_source(src), model.query_points(rec, times)).reshape(2, 40)
    np.testing.assert_allclose(model.impulse_response(src, rec, times), ref64.numpy(), atol=1e-12)


def test_cold_path_checks_inputs_like_the_generic_path():
    model = _room_model(source_bounds=[[0.5, 1.5], [0.5, 1.0]])
    rec = np.array([[0.3, 0.4]])
    times = model.native_times()
    with pytest.raises(ValueError, match=r"receivers .* outside the room"):
        model.impulse_response([1.0, 0.7], [[2.1, 0.4]], times)
    with pytest.raises(ValueError, match="receivers contains NaN"):
        model.impulse_response([1.0, 0.7], [[np.nan, 0.4]], times)
    with pytest.raises(ValueError, match=r"receivers must have shape \(n, 2\)"):
        model.impulse_response([1.0, 0.7], [[0.3, 0.4, 0.1]], times)
    with pytest.raises(ValueError, match=r"source must have shape \(n, 2\)"):
        model.impulse_response([1.0, 0.7, 0.2], rec, times)
    with pytest.raises(ValueError, match="finite times"):
        model.impulse_response([1.0, 0.7], rec, [0.0, np.inf])
    with pytest.raises(ValueError, match="give receivers and times"):
        model.impulse_response([1.0, 0.7], rec)
    with pytest.warns(UserWarning, match="outside the training source region"):
        model.impulse_response([0.2, 0.7], rec, times)
    with pytest.warns(UserWarning, match="beyond the trained horizon"):
        out = model.impulse_response([1.0, 0.7], rec, [0.0, 0.03])
    assert out.shape == (1, 2) and np.all(np.isfinite(out))


def test_separable_options_are_checked_and_old_configs_load_as_joint():
    with pytest.raises(ValueError, match="trunk"):
        DeepONet(trunk="tensor")
    with pytest.raises(ValueError, match="rank"):
        DeepONet(rank=0)
    with pytest.raises(ValueError, match="time_samples"):
        DeepONet(time_samples=1)
    model = DeepONet(lengths=[2.0], duration=0.01, width=8, depth=2, latent=4)
    assert model.get_config()["trunk"] == "separable"
    assert model.get_config()["time_samples"] == round(4 * 500.0 * 0.01) + 1
    old = {
        k: v for k, v in model.get_config().items() if k not in ("trunk", "rank", "time_samples")
    }
    legacy = DeepONet.from_config(old)
    assert legacy.trunk_kind == "joint" and hasattr(legacy, "trunk")


def test_one_source_or_several_in_1d_and_empty_or_misshapen_points():
    """In 1D a scalar (or [x]) is one source, (R, T); a flat list of S positions is S
    sources, (S, R, T) (before, the first source's response was returned alone). Empty
    receivers or sources are named, and a wrong shape is reported as it was given."""
    torch.manual_seed(0)
    tube = DeepONet(lengths=[2.0], duration=0.02, width=16, depth=2, latent=8).eval()
    rec, times = [[0.3], [1.7]], tube.native_times()
    one = tube.impulse_response(0.8, rec, times)
    assert one.shape == (2, len(times))
    np.testing.assert_array_equal(tube.impulse_response([0.8], rec, times), one)
    both = tube.impulse_response([0.8, 1.2], rec, times)
    assert both.shape == (2, 2, len(times))
    np.testing.assert_array_equal(both[0], one)
    np.testing.assert_array_equal(both[1], tube.impulse_response(1.2, rec, times))
    assert np.abs(both[1] - both[0]).max() > 0  # another source, another response
    room = _room_model()
    for name, args in (
        ("receivers", ([1.0, 0.7], np.zeros((0, 2)), room.native_times())),
        ("source", (np.zeros((0, 2)), [[0.5, 0.5]], room.native_times())),
    ):
        with pytest.raises(ValueError, match=f"{name} is empty"):
            room.impulse_response(*args)
    with pytest.raises(ValueError, match=r"source must have shape \(n, 2\) in m; got \(3,\)"):
        room.impulse_response([1.0, 0.9, 0.5], [[0.5, 0.5]], room.native_times())


def test_an_ensemble_names_the_member_methods_it_does_not_have():
    """`train deeponet --ensemble N` saves an Ensemble: the physical-units methods are
    each member's, and asking the ensemble says so (a bare AttributeError before)."""
    from pdesurrogates.surrogates import Ensemble

    ens = Ensemble([_room_model(), _room_model()])
    with pytest.raises(AttributeError, match=r"ens\.members\[k\]\.impulse_response"):
        ens.impulse_response([1.0, 0.7], [[0.5, 0.5]], [0.0])
    assert not hasattr(ens, "native_times") and hasattr(ens.members[0], "native_times")
    with pytest.raises(AttributeError, match=r"has no attribute 'no_such_thing'$"):
        ens.no_such_thing  # noqa: B018 - an attribute no member has: the plain error
