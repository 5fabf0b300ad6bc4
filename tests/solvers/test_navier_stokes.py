"""The pseudo-spectral Navier–Stokes solver: exact Taylor–Green decay, time order,
spectral accuracy, conservation of the mean and a divergence-free velocity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pdesurrogates.errors import SolverError
from pdesurrogates.solvers.reference import (
    fno_forcing,
    ns_initial_vorticity,
    ns_sample,
    ns_velocity,
    solve_navier_stokes,
)


def _grid(s):
    x = np.arange(s) / s
    return np.meshgrid(x, x, indexing="ij")


def _taylor_green(s):
    X, Y = _grid(s)
    return torch.tensor(np.sin(2 * np.pi * X) * np.sin(2 * np.pi * Y))


def test_taylor_green_decays_exactly_at_the_crank_nicolson_rate():
    # w = sin 2πx sin 2πy: advection vanishes, and the scheme reduces to Crank–Nicolson on
    # w' = −8π²ν w, so after n steps w = ((1 − λdt/2)/(1 + λdt/2))^n w0 to round-off.
    nu, dt, t_end = 0.05, 0.01, 0.5
    lam = 8 * np.pi**2 * nu
    w0 = _taylor_green(16)
    w = solve_navier_stokes(w0, [0.0, t_end], nu=nu, cfl=math.inf, dt_max=dt)
    factor = ((1 - lam * dt / 2) / (1 + lam * dt / 2)) ** round(t_end / dt)
    assert float((w[0] - w0).abs().max()) < 1e-15
    assert float((w[-1] - factor * w0).abs().max()) < 1e-14


def test_taylor_green_time_error_is_second_order():
    nu, t_end = 0.05, 0.5
    w0 = _taylor_green(16)
    exact = np.exp(-8 * np.pi**2 * nu * t_end) * w0
    errors = []
    for dt in (0.05, 0.025, 0.0125):
        w = solve_navier_stokes(w0, [t_end], nu=nu, cfl=math.inf, dt_max=dt)[-1]
        errors.append(float((w - exact).abs().max()))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(orders - 2) < 0.05), orders
    assert errors[-1] < 1e-4


def test_nonlinear_time_convergence_is_second_order():
    # A random flow with forcing (advection active): errors against a 16x finer step.
    s, nu = 32, 1e-2
    w0 = torch.tensor(5 * ns_initial_vorticity(s, rng=np.random.default_rng(1)))
    run = {"nu": nu, "forcing": fno_forcing(s), "cfl": math.inf}
    ref = solve_navier_stokes(w0, [1.0], dt_max=0.02 / 16, **run)[-1]
    assert float((ref - w0).norm() / w0.norm()) > 0.05  # the flow does evolve
    errors = []
    for dt in (0.02, 0.01, 0.005):
        w = solve_navier_stokes(w0, [1.0], dt_max=dt, **run)[-1]
        errors.append(float((w - ref).norm() / ref.norm()))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(orders - 2) < 0.1), orders


def test_spectral_accuracy_in_space():
    # An analytic (not band-limited) vorticity: the error against a 64² solve with the
    # same steps falls faster than any power of h: each halving of h gains more digits.
    def w0(s):
        X, Y = _grid(s)
        two_pi = 2 * np.pi
        return torch.tensor(
            np.sin(two_pi * X) * np.exp(np.cos(two_pi * Y))
            + 2 * np.exp(np.sin(two_pi * X)) * np.cos(two_pi * Y)
        )

    run = {"nu": 1e-2, "cfl": math.inf, "dt_max": 2e-3}
    ref = solve_navier_stokes(w0(64), [0.2], **run)[-1]
    errors = []
    for s in (8, 16, 32):
        w = solve_navier_stokes(w0(s), [0.2], **run)[-1]
        r = ref[:: 64 // s, :: 64 // s]
        errors.append(float((w - r).abs().max() / r.abs().max()))
    gains = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert errors[-1] < 1e-7, errors
    assert gains[1] > 1.5 * gains[0] > 10, gains  # orders 8+, then accelerating


def test_mean_vorticity_is_conserved_on_a_forced_random_flow():
    s = 32
    w0 = torch.tensor(ns_initial_vorticity(s, rng=np.random.default_rng(2)))
    w = solve_navier_stokes(w0, np.linspace(0, 2, 5), nu=1e-4, forcing=fno_forcing(s))
    assert float((w[-1] - w0).abs().max()) > 0.1  # the forcing changed the field
    assert float(w.mean(dim=(-2, -1)).abs().max()) < 1e-14


def test_velocity_is_divergence_free_and_has_the_right_curl():
    s = 32
    w = torch.tensor(ns_initial_vorticity(s, rng=np.random.default_rng(3)))
    u, v = ns_velocity(w)
    k = 2 * np.pi * torch.fft.fftfreq(s, d=1 / s, dtype=torch.float64)
    k = torch.where(k.abs() == np.pi * s, 0.0, k)

    def dx(f):
        return torch.fft.ifft2(1j * k[:, None] * torch.fft.fft2(f)).real

    def dy(f):
        return torch.fft.ifft2(1j * k[None, :] * torch.fft.fft2(f)).real

    scale = float(w.abs().max())
    assert float((dx(u) + dy(v)).abs().max()) < 1e-12 * scale
    # the curl gives back w without its Nyquist modes (which carry no velocity)
    w_hat = torch.fft.fft2(w)
    w_hat[s // 2, :] = w_hat[:, s // 2] = 0
    w_resolved = torch.fft.ifft2(w_hat).real
    assert float((w - w_resolved).abs().max()) > 1e-4  # the check below is not vacuous
    assert float((dx(v) - dy(u) - w_resolved).abs().max()) < 1e-12 * scale
    # exact: ψ = sin 2πx sin 2πy gives w = 8π²ψ and u = ψ_y = 2π sin 2πx cos 2πy
    X, Y = _grid(s)
    u_tg, v_tg = ns_velocity(8 * np.pi**2 * _taylor_green(s))
    u_exact = 2 * np.pi * np.sin(2 * np.pi * X) * np.cos(2 * np.pi * Y)
    assert np.abs(u_tg.numpy() - u_exact).max() < 1e-12
    assert np.abs(v_tg.numpy() + u_exact.T).max() < 1e-12


def test_runs_in_the_dtype_of_the_initial_vorticity():
    w0 = _taylor_green(16).float()
    w = solve_navier_stokes(w0, [0.0, 0.1], nu=1e-3)
    assert w.dtype == torch.float32 and w.shape == (2, 16, 16)


def test_too_large_a_step_is_reported_not_returned():
    w0 = torch.tensor(50 * ns_initial_vorticity(16, rng=np.random.default_rng(0)))
    with pytest.raises(SolverError, match=r"NaN/Inf .*before t = 20"):
        solve_navier_stokes(w0, [0.0, 20.0], nu=1e-4, cfl=math.inf, dt_max=1.0)


def test_initial_field_nests_and_the_sample_is_a_uniform_trajectory():
    coarse = ns_initial_vorticity(16, rng=np.random.default_rng(4))
    fine = ns_initial_vorticity(16, rng=np.random.default_rng(4), refine=4)
    assert fine.shape == (64, 64) and np.abs(fine[::4, ::4] - coarse).max() < 1e-13
    fields, params = ns_sample(0, 7, resolution=16, duration=1.0, n_times=3)
    assert params == {} and fields["w"].shape == (3, 16, 16)
    again, _ = ns_sample(0, 7, resolution=16, duration=1.0, n_times=3)
    assert np.array_equal(fields["w"], again["w"])
    X, Y = _grid(16)
    np.testing.assert_allclose(
        fno_forcing(16), 0.1 * (np.sin(2 * np.pi * (X + Y)) + np.cos(2 * np.pi * (X + Y)))
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"times": [1.0, 0.5]}, "increasing"),
        ({"nu": 0.0}, "must be > 0"),
        ({"forcing": np.zeros((8, 8))}, "forcing must have shape"),
    ],
)
def test_bad_arguments(kwargs, message):
    run = {"times": [0.0, 0.1], "nu": 1e-3, **kwargs}
    with pytest.raises(ValueError, match=message):
        solve_navier_stokes(_taylor_green(16), run.pop("times"), **run)
