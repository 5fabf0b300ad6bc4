"""Staggered FDTD with impedance walls and voxel rooms: exact modes, energy, absorption,
reciprocity and the input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pdesurrogates.solvers.reference import (
    Room,
    absorption_coefficient,
    dispersion_error,
    modal_wave,
    solve_room,
)

BOX = [1.0, 0.8, 0.6]
SRC = [0.45, 0.35, 0.3]
SIGMA = 0.15


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_rigid_box_second_order_against_exact_cosine_modes():
    errors = []
    for n in (10, 20, 40):
        cells = [n, round(0.8 * n), round(0.6 * n)]
        sol = solve_room(BOX, SRC, duration=0.003, sigma=SIGMA, cells=cells, n_times=4, min_ppw=0)
        exact = modal_wave(BOX, SRC, sigma=SIGMA, times=sol.times, coords=sol.coords)
        errors.append(_rel(sol.field[1:], exact[1:]))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(orders - 2.0) < 0.25), (errors, orders)
    assert errors[-1] < 0.03


def test_receivers_interpolate_the_exact_solution():
    rec = [[0.2, 0.2, 0.2], [0.8, 0.55, 0.4]]
    sol = solve_room(
        BOX,
        SRC,
        duration=0.003,
        sigma=SIGMA,
        cells=[40, 32, 24],
        n_times=7,
        receivers=rec,
        min_ppw=0,
    )
    exact = modal_wave(BOX, SRC, sigma=SIGMA, times=sol.times, points=rec)
    assert np.abs(sol.responses - exact).max() < 0.02 * np.abs(exact).max()


@pytest.mark.parametrize("room", [Room.box(BOX), Room.l_shape(BOX, notch=(0.6, 0.5))])
def test_rigid_walls_conserve_the_discrete_energy(room):
    sol = solve_room(
        room,
        [0.3, 0.3, 0.3],
        duration=0.01,
        sigma=SIGMA,
        cells=[20, 16, 12],
        n_times=11,
        energy=True,
        store_field=False,
        min_ppw=0,
    )
    drift = np.abs(sol.energy / sol.energy[0] - 1.0)
    assert drift.max() < 1e-12


def test_impedance_walls_dissipate_energy_monotonically():
    sol = solve_room(
        Room.l_shape(BOX, notch=(0.6, 0.5)),
        [0.3, 0.3, 0.3],
        duration=0.01,
        sigma=SIGMA,
        cells=[20, 16, 12],
        n_times=21,
        impedance=7400.0,
        energy=True,
        store_field=False,
        min_ppw=0,
    )
    assert np.all(np.diff(sol.energy) < 0)
    assert sol.energy[-1] < 0.9 * sol.energy[0]


@pytest.mark.parametrize("z", [7400.0, 1500.0])
def test_measured_normal_incidence_absorption_matches_alpha_of_z(z):
    """A plane pulse in a long rigid duct, impedance at the far end: the right-going half
    (energy E0 / 2) hits the wall once before the left-going half arrives, so the energy
    after that reflection is ``E0 (1 - alpha / 2)``."""
    n, m = 240, 4
    h = 3.0 / n
    sol = solve_room(
        [3.0, m * h, m * h],
        [1.0, m * h / 2, m * h / 2],
        duration=0.0085,
        sigma=0.2,
        cells=[n, m, m],
        n_times=2,
        impedance={"x1": z},
        energy=True,
        store_field=False,
        min_ppw=0,
    )
    measured = 2.0 * (1.0 - sol.energy[-1] / sol.energy[0])
    theory = absorption_coefficient(z)
    assert theory == pytest.approx(1 - ((z - 1.2 * 343) / (z + 1.2 * 343)) ** 2)
    assert measured == pytest.approx(theory, rel=0.01)


def test_reciprocity_source_and_receiver_swapped():
    room = Room.l_shape([1.2, 1.0, 0.6], notch=(0.6, 0.5))
    a, b = [0.3, 0.3, 0.3], [0.9, 0.25, 0.3]
    kw = dict(
        duration=0.01,
        sigma=0.12,
        cells=[48, 40, 24],
        n_times=41,
        impedance=7400.0,
        store_field=False,
        min_ppw=0,
    )
    ab = solve_room(room, a, receivers=[b], **kw).responses[0]
    ba = solve_room(room, b, receivers=[a], **kw).responses[0]
    assert np.abs(ab).max() > 0.01  # the pulse has reached the receiver
    assert _rel(ab, ba) < 0.01


def test_device_and_float32_agree_with_float64():
    kw = dict(duration=0.003, sigma=SIGMA, cells=[10, 8, 6], n_times=4, impedance=7400.0, min_ppw=0)
    f64 = solve_room(BOX, SRC, **kw).field
    f32 = solve_room(BOX, SRC, dtype=torch.float32, device="cpu", **kw).field
    assert np.abs(f64 - f32).max() < 1e-5


def test_l_shape_geometry_and_voxel_mask():
    room = Room.l_shape([2.0, 2.0, 2.0])
    assert room.volume == pytest.approx(6.0)
    air = room.air_cells([4, 4, 2])
    assert air.sum() == 24 and not air[3, 3, 0]
    vox = Room.from_mask([2.0, 2.0, 2.0], air)
    assert vox.volume == pytest.approx(6.0)
    kw = dict(duration=0.002, fmax=500.0, cells=[8, 8, 8], n_times=3, min_ppw=0)
    a = solve_room(room, [0.6, 0.6, 1.0], **kw)
    b = solve_room(vox, [0.6, 0.6, 1.0], **kw)
    np.testing.assert_allclose(a.field, b.field)
    assert not a.active[6, 6, 4] and a.active[4, 4, 4]  # inside the notch vs its corner
    assert np.all(a.field[:, ~a.active] == 0)


def test_bad_inputs_are_named():
    room = Room.l_shape([2.0, 2.0, 2.0])
    kw = dict(duration=0.002, fmax=500.0, cells=8, min_ppw=0)
    with pytest.raises(ValueError, match="solid part"):
        solve_room(room, [1.5, 1.5, 1.0], **kw)
    with pytest.raises(ValueError, match="outside the domain"):
        solve_room(room, [2.5, 0.5, 1.0], **kw)
    with pytest.raises(ValueError, match=r"#1 \[1.5, 1.5, 1.0\], #2 \[3.0, 0.0, 0.0\]"):
        solve_room(room, [0.5, 0.5, 1.0], receivers=[[0.5, 1, 1], [1.5, 1.5, 1], [3, 0, 0]], **kw)
    with pytest.raises(ValueError, match="impedance keys"):
        solve_room(room, [0.5, 0.5, 1.0], impedance={"w0": 100.0}, **kw)
    with pytest.raises(ValueError, match="points per wavelength"):
        solve_room(room, [0.5, 0.5, 1.0], duration=0.01, fmax=5000.0, cells=4)


def test_coarse_grid_warns_with_the_dispersion_error():
    err = dispersion_error(6.0, 0.99, 3)
    # plane wave along an axis: omega dt / 2 = asin(lam sin(k h / 2))
    lam, kh = 0.99 / math.sqrt(3), 2 * math.pi / 6
    assert err == pytest.approx(1 - 2 * math.asin(lam * math.sin(kh / 2)) / (lam * kh))
    with pytest.warns(UserWarning, match=r"6.2 points per wavelength.*% low.*phase lag"):
        solve_room([2.0, 2.0, 2.0], [1, 1, 1], duration=0.001, fmax=500.0, ppw=6, n_times=2)
