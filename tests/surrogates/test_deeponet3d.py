"""DeepONet in 3D rooms: the acoustics3d recipe, training, evaluation and queries."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from pdesurrogates.datasets import generate_acoustics
from pdesurrogates.solvers.reference import (
    Room,
    acoustics_sample,
    acoustics_setup,
    decay_errors,
    early_decay_time,
    energy_decay_curve,
    grid_receivers,
    solve_room,
)
from pdesurrogates.surrogates import DeepONet
from pdesurrogates.training import DeepONetConfig, impulse_response_scores, train_deeponet

SIM = dict(fmax=500.0, duration=0.004, resolution=8, ppw=10.0, progress=False)


@pytest.fixture(scope="module")
def lshape_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("a3d") / "lshape.h5"
    generate_acoustics(
        path,
        dim=3,
        n_sources=6,
        geometry="l-shape",
        impedance=7400.0,
        margin=0.3,
        split=(0.5, 0.17, 0.33),
        **SIM,
    )
    return path


def test_recipe_writes_staggered_fdtd_samples_with_grid_receivers(lshape_file):
    with h5py.File(lshape_file) as f:
        source = json.loads(f.attrs["source"])
        p = f["p"][:]
        ir = f["ir"][:]
        xs, ys = f["xs"][:], f["ys"][:]
    assert source["solver"] == "fdtd-staggered" and source["impedance"] == 7400.0
    assert source["room"]["kind"] == "l-shape"
    assert p.shape == (6, 9, 9, 9, 9) and ir.shape == (6, 9, 24)
    # sources keep the 0.3 m margin from the notch of the L as well
    assert not np.any((xs > 0.7) & (ys > 0.7))
    # the stored data are the solver's output at the stored nodes and receivers
    setup = acoustics_setup(
        [2.0] * 3, fmax=500.0, duration=0.004, resolution=8, ppw=10.0, margin=0.3,
        geometry="l-shape", impedance=7400.0,
    )  # fmt: skip
    fields, params = acoustics_sample(0, 0, setup=setup)
    np.testing.assert_allclose(fields["p"], p[0], atol=1e-6)
    sol = solve_room(
        Room.l_shape([2.0] * 3),
        [params["xs"], params["ys"], params["zs"]],
        duration=0.004,
        fmax=500.0,
        impedance=7400.0,
        cells=32,
        n_times=9,
        receivers=grid_receivers(Room.l_shape([2.0] * 3)),
        store_field=False,
    )
    np.testing.assert_allclose(sol.responses.T, ir[0], atol=1e-5)


def test_train_and_evaluate_in_3d(lshape_file, tmp_path):
    config = DeepONetConfig(epochs=2, n_points=256, model={"width": 16, "depth": 2, "latent": 8})
    model, summary = train_deeponet(lshape_file, tmp_path / "run", config, progress=False)
    assert summary["config"]["training"]["lr"] == 1e-3  # the 3D default, as used and recorded
    test = summary["test"]
    for key in ("peak_normalised_rmse", "ir_rmse_pa", "edc_max_db", "edt_rel_mean", "rel_l2"):
        assert np.isfinite(test[key]), key
    for name in ("impulse_responses.png", "field_snapshots.png", "decay_curves.png"):
        assert (tmp_path / "run" / name).stat().st_size > 1000
    assert model.dim == 3
    ir = model.impulse_response([0.5, 0.5, 1.0], [[0.4, 0.4, 0.4]], model.native_times())
    assert ir.shape == (1, 9)
    field = model.predict_field([0.5, 0.5, 1.0], [np.linspace(0, 2, 5)] * 3, [0.0, 0.002])
    assert field.shape == (2, 5, 5, 5)
    # the model knows the L: positions in its solid part are refused, naming them
    assert model.get_config()["room"] == {"kind": "l-shape", "notch": [1.0, 1.0]}
    with pytest.raises(ValueError, match=r"solid part.*#1 \[1.5, 1.5, 1.0\]"):
        model.impulse_response([0.5, 0.5, 1.0], [[0.4, 0.4, 0.4], [1.5, 1.5, 1.0]], [0.0])
    with pytest.raises(ValueError, match="source inside the solid part"):
        model.impulse_response([1.5, 1.2, 1.0], [[0.4, 0.4, 0.4]], [0.0])


def test_separable_impulse_response_matches_forward_in_3d():
    torch.manual_seed(0)
    model = DeepONet(lengths=[2.0, 2.0, 2.0], duration=0.01, width=16, depth=2, latent=8).double()
    src = np.array([[0.8, 1.1, 0.9], [1.2, 0.7, 1.0]])
    rec = np.array([[0.3, 0.4, 0.5], [1.7, 1.5, 0.2]])
    times = model.native_times()
    ir = model.impulse_response(src, rec, times)
    b = model.encode_source(torch.as_tensor(src))
    ref = model.forward_grid(b, torch.as_tensor(rec), torch.as_tensor(times)).detach().numpy()
    np.testing.assert_allclose(ir, ref, rtol=1e-10, atol=1e-12)
    basis = model.response_basis(rec, times)
    np.testing.assert_allclose(model.impulse_response(src, basis=basis), ir, atol=1e-12)
    with pytest.raises(ValueError, match="outside the room"):
        model.impulse_response(src[0], [[0.3, 0.4, 2.5]], times)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"rank": 2, "activation": "sin", "dtype": torch.float64},  # omega0 = 30: float64
        {"architecture": "mlp", "activation": "relu", "source_input": "coordinates"},
        {"activation": "gelu"},  # no numpy kernel: the torch lean path
        {"branch_depth": 3, "branch_width": 24},
    ],
)
def test_cold_numpy_path_equals_the_torch_lean_path_and_forward(kwargs):
    """The CPU cold path (numpy nets, separable pulse) reproduces both torch paths."""
    torch.manual_seed(1)
    config = dict(lengths=[2.0, 1.5, 1.8], duration=0.01, width=32, depth=2, latent=12)
    dtype = kwargs.pop("dtype", torch.float32)
    model = DeepONet(**{**config, **kwargs}).to(dtype).eval()
    plan = model._lean_plan()
    assert (plan["numpy"] is None) == (kwargs.get("activation") == "gelu")
    if model.source_input == "pulse":
        assert plan["sensor_axes"] is not None  # the sensors are a tensor grid
    rng = np.random.default_rng(0)
    src = rng.uniform(0.2, 1.4, (3, 3))
    rec = rng.uniform(0.0, 1.5, (6, 3))
    with torch.no_grad():
        b = model.encode_source(torch.as_tensor(src, dtype=dtype))
    for times in (model.native_times()[:30], model.native_times()[4::3], [0.0013, 0.0071]):
        t = torch.as_tensor(np.asarray(times), dtype=dtype)
        with torch.no_grad():
            ref = model.forward_grid(b, torch.as_tensor(rec, dtype=dtype), t).numpy()
        cold = model.impulse_response(src, rec, times)
        single = model.impulse_response(src[1], rec, times)
        saved, plan["numpy"] = plan["numpy"], None  # the torch lean path
        torch_lean = model.impulse_response(src, rec, times)
        plan["numpy"] = saved
        scale = np.abs(ref).max()
        assert scale > 1e-3 and cold.dtype == torch.empty((), dtype=dtype).numpy().dtype
        np.testing.assert_allclose(cold, torch_lean, rtol=0, atol=1e-6 * scale)
        # the lean paths fold the input map into the first layer: float32 rounding differs
        np.testing.assert_allclose(cold, ref, rtol=0, atol=5e-6 * scale)
        np.testing.assert_allclose(single, cold[1], rtol=0, atol=1e-6 * scale)
        cached = model.impulse_response(src, basis=model.response_basis(rec, times))
        np.testing.assert_allclose(cached, ref, rtol=0, atol=5e-6 * scale)


def test_cold_path_sees_weights_replaced_without_a_version_bump():
    """``vector_to_parameters`` and ``p.data = ...`` give new storage, same version."""
    torch.manual_seed(2)
    model = DeepONet(lengths=[2.0, 2.0, 2.0], duration=0.01, width=16, depth=2, latent=8)
    model = model.double().eval()
    src, rec = np.array([0.9, 1.0, 1.1]), np.array([[0.3, 0.4, 0.5], [1.7, 1.5, 0.2]])
    times = model.native_times()

    def forward():
        with torch.no_grad():
            b = model.encode_source(torch.as_tensor(src[None]))
            return model.forward_grid(b, torch.as_tensor(rec), torch.as_tensor(times))[0]

    before = model.impulse_response(src, rec, times)  # builds the cached plan
    flat = torch.nn.utils.parameters_to_vector(model.parameters())
    torch.nn.utils.vector_to_parameters(1.5 * flat, model.parameters())
    after = model.impulse_response(src, rec, times)
    assert np.abs(after - before).max() > 1e-3 * np.abs(before).max()
    np.testing.assert_allclose(after, forward().numpy(), rtol=1e-10, atol=1e-12)
    weight = next(model.parameters())
    weight.data = weight.data.clone() * 0.5
    np.testing.assert_allclose(
        model.impulse_response(src, rec, times), forward().numpy(), rtol=1e-10, atol=1e-12
    )


def test_cold_path_in_an_l_shaped_room_checks_cheaply_and_names_bad_points():
    """The numpy cold path: the L-shape's notch, the box and times refused by name."""
    torch.manual_seed(2)
    model = DeepONet(
        lengths=[2.0, 2.0, 2.0],
        duration=0.01,
        width=24,
        depth=2,
        latent=10,
        source_bounds=[[0.3, 1.7]] * 3,
        room={"kind": "l-shape", "notch": [1.0, 1.0]},
    ).eval()
    assert model._lean_plan()["numpy"] is not None
    src = np.array([[0.5, 1.6, 1.0], [1.0, 1.5, 0.4]])  # the second on the notch's face: air
    rec = np.array([[0.2, 0.3, 0.4], [1.9, 0.1, 1.2], [0.6, 1.9, 1.7]])
    times = model.native_times()[3:15].copy()
    with torch.no_grad():
        b = model.encode_source(torch.as_tensor(src, dtype=torch.float32))
        ref = model.forward_grid(
            b,
            torch.as_tensor(rec, dtype=torch.float32),
            torch.as_tensor(times, dtype=torch.float32),
        ).numpy()
    scale = np.abs(ref).max()
    assert scale > 1e-3
    plan = model._lean_plan()
    for _ in range(2):
        cold = model.impulse_response(src, rec, times)
        saved, plan["numpy"] = plan["numpy"], None  # the torch lean path
        torch_lean = model.impulse_response(src, rec, times)
        plan["numpy"] = saved
        np.testing.assert_allclose(cold, torch_lean, rtol=0, atol=1e-6 * scale)
        np.testing.assert_allclose(cold, ref, rtol=0, atol=5e-6 * scale)
        # the same array with new values: the cached native-grid rows follow the values
        times[:] = model.native_times()[6:18]
        with torch.no_grad():
            ref = model.forward_grid(
                b,
                torch.as_tensor(rec, dtype=torch.float32),
                torch.as_tensor(times, dtype=torch.float32),
            ).numpy()
    with pytest.raises(ValueError, match=r"source inside the solid part.*#0 \[1.2, 1.5, 1.0\]"):
        model.impulse_response([1.2, 1.5, 1.0], rec, times)
    with pytest.raises(ValueError, match=r"receivers inside the solid part.*#2 \[1.5, 1.1, 0.3\]"):
        model.impulse_response(src[0], np.vstack([rec[:2], [[1.5, 1.1, 0.3]]]), times)
    with pytest.raises(ValueError, match=r"receivers \[0.2, 2.1, 0.4\] is outside the room"):
        model.impulse_response(src[0], [[0.2, 2.1, 0.4]], times)
    with pytest.raises(ValueError, match=r"source \[-0.1, 0.5, 0.5\] is outside the room"):
        model.impulse_response([-0.1, 0.5, 0.5], rec, times)
    with pytest.raises(ValueError, match="times must be >= 0 s"):
        model.impulse_response(src[0], rec, [-1e-3, 0.0])
    with pytest.warns(UserWarning, match="outside the training source region"):
        model.impulse_response([0.1, 0.2, 0.3], rec, times)
    # .double() gives new parameter storage: the plan is rebuilt in float64
    model.double()
    assert model.impulse_response(src, rec, times).dtype == np.float64


def test_schroeder_curve_and_edt_of_an_exponential_decay():
    t = np.linspace(0.0, 2.0, 40001)
    t60 = 0.27
    ir = np.exp(-t * 3 * np.log(10) / t60) * np.cos(2 * np.pi * 300 * t)
    assert float(early_decay_time(ir, t)) == pytest.approx(t60, rel=0.01)
    edc = energy_decay_curve(ir, t)
    assert edc[0] == 0.0 and np.isneginf(edc[-1])
    # the decay is 60 dB per T60, so at t = T60 / 6 the curve is near -10 dB
    assert edc[np.searchsorted(t, t60 / 6)] == pytest.approx(-10.0, abs=0.3)
    same = decay_errors(ir[None], ir[None], t)
    assert same["edc_max_db"] == 0.0 and same["edt_rel_max"] == 0.0
    louder = decay_errors(2.0 * ir[None], ir[None], t)  # a gain does not change the decay
    assert louder["edc_max_db"] < 1e-9
    scores = impulse_response_scores(1.1 * ir[None], ir[None], t)
    assert scores["ir_rel_l2"] == pytest.approx(0.1)
    assert scores["peak_normalised_rmse"] == pytest.approx(0.1 * np.sqrt(np.mean(ir**2)))


def test_decay_errors_per_response_fractions_and_the_room_average_edt():
    """Exponential decays with known T60: EDT and EDC errors in closed form."""
    t = np.linspace(0.0, 2.0, 40001)
    t60 = 0.27

    def decay(scale):
        return np.exp(-t * 3 * np.log(10) / (t60 * scale))

    factors = np.array([[1.02, 1.08], [0.99, 1.01]])  # 2 sources x 2 receivers
    ref = np.stack([[decay(1.0)] * 2] * 2)
    pred = np.stack([[decay(f) for f in row] for row in factors])
    scores = decay_errors(pred, ref, t)
    # the EDT of a pure exponential is its T60: relative errors |f - 1|
    assert scores["edt_rel_max"] == pytest.approx(0.08, abs=2e-3)
    assert scores["edt_within_5pct"] == 0.75
    # the room's EDT is the mean over receivers: source 0 is off by (1.02 + 1.08) / 2 - 1
    assert scores["edt_room_rel_max"] == pytest.approx(0.05, abs=2e-3)
    # at the -20 dB floor the slower decay is at -20 / f dB: 1.48 dB for f = 1.08,
    # within 1 dB for the other three
    assert scores["edc_max_db"] == pytest.approx(20 * (1 - 1 / 1.08), abs=0.02)
    assert scores["edc_within_1db"] == 0.75
    assert "edt_room_rel_max" not in decay_errors(pred[0], ref[0], t)  # no receiver axis


@pytest.mark.slow
def test_example_runs_in_smoke_mode(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "examples" / "room_acoustics_3d.py"
    run = subprocess.run(
        [sys.executable, str(script), "--smoke", "--geometry", "l-shape", "-o", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["moving_source"]["speedup"] > 0
    for name in ("impulse_responses.png", "decay_curves.png", "field_slices.png"):
        assert (tmp_path / name).stat().st_size > 1000
