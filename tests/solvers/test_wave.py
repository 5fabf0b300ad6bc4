"""FDTD wave solver against exact solutions: modal sums, images, convergence order."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from pdesurrogates.solvers.reference import gaussian_pulse, modal_wave, pulse_width, solve_wave

C = 343.0


def _images_1d(x, t, L, x0, sigma, c=C, n_images=6):
    """d'Alembert for the rigid tube: even 2L-periodic extension of the pulse on [0, L]."""

    def g_ext(s):
        s = np.mod(s, 2 * L)
        s = np.where(s > L, 2 * L - s, s)  # even reflection about the walls
        return np.exp(-((s - x0) ** 2) / sigma**2)

    return 0.5 * (g_ext(x - c * t) + g_ext(x + c * t))


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_pulse_width_band_edge():
    # spectrum exp(-k^2 sigma^2 / 4) is e^-4 at k = 2 pi fmax / c
    sigma = pulse_width(500.0)
    k = 2 * math.pi * 500.0 / C
    assert math.exp(-(k**2) * sigma**2 / 4) == pytest.approx(math.exp(-4.0), rel=1e-12)


def test_modal_1d_matches_images_including_truncated_pulse():
    L, x0, sigma = 2.0, 0.3, 0.2  # pulse cut by the wall at x = 0
    x = np.linspace(0, L, 201)
    t = np.array([0.0, 0.0013, 0.0071, 0.0190])
    exact = _images_1d(x[None, :], t[:, None], L, x0, sigma)
    modal = modal_wave([L], [x0], sigma=sigma, times=t, coords=[x], n_modes=2000)
    assert np.max(np.abs(modal - exact)) < 5e-4
    coarse = modal_wave([L], [x0], sigma=sigma, times=t, coords=[x], n_modes=500)
    # the kink of the even extension at the wall: algebraic (~1/M) convergence
    assert np.max(np.abs(coarse - exact)) > 2.5 * np.max(np.abs(modal - exact))
    # away from the kink of the even extension the series converges fast
    modal2 = modal_wave([L], [1.1], sigma=sigma, times=t, coords=[x])
    assert np.max(np.abs(modal2 - _images_1d(x[None], t[:, None], L, 1.1, sigma))) < 1e-8


def test_modal_2d_is_separable_product_at_t0_and_points_agree_with_grid():
    lengths, src, sigma = (2.0, 1.5), (0.8, 0.7), 0.15  # pulse negligible at the walls
    xs = [np.linspace(0, 2, 21), np.linspace(0, 1.5, 16)]
    grid = modal_wave(lengths, src, sigma=sigma, times=[0.0, 0.004], coords=xs)
    np.testing.assert_allclose(grid[0], gaussian_pulse(xs, src, sigma), rtol=0, atol=1e-9)
    pts = np.array([[xs[0][3], xs[1][5]], [xs[0][17], xs[1][11]]])
    at = modal_wave(lengths, src, sigma=sigma, times=[0.0, 0.004], points=pts)
    np.testing.assert_allclose(at[:, 1], [grid[1, 3, 5], grid[1, 17, 11]], atol=1e-12)


def _orders(errors):
    return [math.log2(a / b) for a, b in itertools.pairwise(errors)]


def test_fdtd_1d_second_order_against_exact():
    L, x0, sigma = 2.0, 0.9, 0.2
    errors = []
    for cells in (50, 100, 200):
        s = solve_wave([L], [x0], duration=0.01, sigma=sigma, cells=cells, courant=0.8, min_ppw=0)
        exact = _images_1d(s.coords[0][None], s.times[:, None], L, x0, sigma)
        errors.append(_rel(s.field, exact))
    assert errors[-1] < 2e-3
    for order in _orders(errors):
        assert order == pytest.approx(2.0, abs=0.3)


def test_fdtd_2d_second_order_against_modal_room():
    lengths, src, sigma = (1.0, 1.2), (0.45, 0.6), 0.15
    rec = [[0.3, 0.3], [0.77, 0.91]]
    field_err, rec_err = [], []
    for cells in ((40, 48), (80, 96), (160, 192)):
        s = solve_wave(
            lengths, src, duration=0.004, sigma=sigma, cells=cells, receivers=rec, min_ppw=0
        )
        exact = modal_wave(lengths, src, sigma=sigma, times=s.times, coords=s.coords)
        exact_rec = modal_wave(lengths, src, sigma=sigma, times=s.times, points=rec)
        field_err.append(_rel(s.field, exact))
        rec_err.append(float(np.max(np.abs(s.responses - exact_rec))))
    assert field_err[-1] < 2e-3
    for order in _orders(field_err) + _orders(rec_err):
        assert order == pytest.approx(2.0, abs=0.3)


def test_fdtd_room_impulse_response_accuracy_at_20_ppw():
    # the benchmark configuration: 2 m x 2 m, fmax = 500 Hz, 50 ms
    rec = [[0.4, 0.4], [1.6, 0.5], [1.0, 1.0], [0.5, 1.7], [1.7, 1.5]]
    s = solve_wave(
        [2.0, 2.0],
        [0.7, 1.1],
        duration=0.05,
        fmax=500.0,
        ppw=20,
        n_times=101,
        receivers=rec,
        store_field=False,
        dtype=np.float32,
    )
    exact = modal_wave([2.0, 2.0], [0.7, 1.1], sigma=pulse_width(500.0), times=s.times, points=rec)
    peak = np.abs(exact).max(axis=1, keepdims=True)
    rmse = np.sqrt(np.mean(((s.responses - exact) / peak) ** 2))
    assert rmse < 0.015
    assert s.ppw >= 20 and s.courant <= 1.0


def test_fdtd_conserves_mean_pressure_with_rigid_walls():
    # the constant mode is stationary: the trapezoidal mean of p is conserved exactly
    s = solve_wave([1.0, 1.0], [0.3, 0.6], duration=0.01, sigma=0.1, cells=50, min_ppw=0)
    w = np.ones(51)
    w[[0, -1]] = 0.5
    means = np.einsum("tij,i,j->t", s.field, w, w)
    np.testing.assert_allclose(means, means[0], rtol=1e-10)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"source .* outside the domain"):
        solve_wave([2.0, 2.0], [2.5, 1.0], duration=0.01, fmax=500.0)
    with pytest.raises(ValueError, match=r"receivers .* outside the domain"):
        solve_wave([2.0, 2.0], [1.0, 1.0], duration=0.01, fmax=500.0, receivers=[[1, 1], [1, -1]])
    with pytest.raises(ValueError, match="CFL"):
        solve_wave([2.0], [1.0], duration=0.01, fmax=500.0, courant=1.2)
    with pytest.raises(ValueError, match="CFL"):
        solve_wave([2.0, 2.0], [1.0, 1.0], duration=0.01, fmax=500.0, cells=40, dt=2e-4)
    with pytest.raises(ValueError, match="points per wavelength"):
        solve_wave([2.0], [1.0], duration=0.01, fmax=500.0, cells=3)
    with pytest.warns(UserWarning, match="points per wavelength"):
        solve_wave([2.0], [1.0], duration=0.001, fmax=500.0, ppw=5)
    with pytest.raises(ValueError, match="fmax"):
        solve_wave([2.0], [1.0], duration=0.01)


def test_explicit_dt_is_used_and_checked():
    s = solve_wave([2.0], [1.0], duration=0.01, fmax=500.0, cells=100, dt=2.5e-5, n_times=11)
    assert s.dt == 2.5e-5 and s.n_steps == 400
    with pytest.raises(ValueError, match="whole multiple"):
        solve_wave([2.0], [1.0], duration=0.01, fmax=500.0, cells=100, dt=3e-5, n_times=11)
