"""Autoregressive rollout: closed-form linear step models (decay, a two-step recurrence, the
exact heat-equation step), the data horizon, divergence, and MgNO/FNO as step models."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from pdesurrogates.errors import RolloutError
from pdesurrogates.surrogates import FNO, MgNO, rollout


class Decay(nn.Module):
    """u_{t+1} = lam * u_t, with a parameter (to see that no graph is built)."""

    def __init__(self, lam):
        super().__init__()
        self.lam = nn.Parameter(torch.tensor(lam, dtype=torch.float64))

    def forward(self, x):
        return self.lam * x


def test_decay_matches_closed_form():
    u0 = torch.randn(3, 2, 1, 5, 4, dtype=torch.float64)  # (N, C, k=1, X, Y)
    model = Decay(0.9).train()
    out = rollout(model, u0, 7)
    assert out.shape == (3, 2, 7, 5, 4) and not out.requires_grad
    powers = 0.9 ** torch.arange(1, 8, dtype=torch.float64)
    torch.testing.assert_close(out, u0 * powers[None, None, :, None, None], rtol=1e-14, atol=0)
    assert model.training  # mode restored


def test_two_state_history_is_fed_time_major():
    # u_{t+1} = 2 u_t - u_{t-1}: a linear ramp continues exactly; the history channels
    # are (u_{t-1}, u_t)
    u0 = torch.stack([torch.full((2, 3), 1.0), torch.full((2, 3), 1.5)], dim=1)[:, None]
    out = rollout(lambda x: 2 * x[:, 1:2] - x[:, 0:1], u0.double(), 4)
    torch.testing.assert_close(out[0, 0, :, 0], torch.tensor([2.0, 2.5, 3.0, 3.5]).double())


def test_several_states_per_call():
    # C = 2 channels, m = 2 states per call: (lam u, lam^2 u)
    u0 = torch.randn(1, 2, 1, 6, dtype=torch.float64)
    out = rollout(lambda x: torch.cat([0.5 * x, 0.25 * x], dim=1), u0, 3)
    assert out.shape == (1, 2, 6, 6)
    powers = 0.5 ** torch.arange(1, 7, dtype=torch.float64)
    torch.testing.assert_close(out, u0 * powers[None, None, :, None])


class HeatStep(nn.Module):
    """The exact step of u_t = nu (u_xx + u_yy) on the periodic unit square."""

    def __init__(self, n, nu, dt):
        super().__init__()
        k = torch.fft.fftfreq(n, d=1.0 / n, dtype=torch.float64) * 2 * math.pi
        self.register_buffer("factor", torch.exp(-nu * dt * (k[:, None] ** 2 + k[None] ** 2)))

    def forward(self, x):
        return torch.fft.ifft2(torch.fft.fft2(x) * self.factor).real


def test_heat_equation_rollout_matches_exact_decay():
    n, nu, dt, steps = 32, 0.01, 0.05, 20
    x = torch.arange(n, dtype=torch.float64) / n
    mode = torch.sin(2 * math.pi * x)[:, None] * torch.cos(4 * math.pi * x)[None]
    out = rollout(HeatStep(n, nu, dt), mode[None, None, None], steps)
    times = dt * torch.arange(1, steps + 1, dtype=torch.float64)
    exact = torch.exp(-nu * (4 + 16) * math.pi**2 * times)[:, None, None] * mode
    torch.testing.assert_close(out[0, 0], exact, rtol=0, atol=1e-13)


def test_a_rollout_beyond_the_horizon_is_refused_naming_it():
    u0 = torch.ones(1, 1, 1, 4)
    with pytest.raises(ValueError, match=r"horizon is 5 states.*at most steps=2"):
        rollout(lambda x: torch.cat([x, x], 1), u0, 3, horizon=5)
    assert rollout(lambda x: x, u0, 5, horizon=5).shape == (1, 1, 5, 4)


def test_nan_stops_the_rollout_and_names_the_step():
    u0 = torch.ones(1, 1, 1, 4)  # float32: 1e30 -> 1e60 overflows at the second call
    with pytest.raises(RolloutError, match="diverged at step 2 of 10") as err:
        rollout(lambda x: 1e30 * x, u0, 10)
    assert err.value.step == 2

    calls = []

    def nan_at_third(x):
        calls.append(1)
        return x * (math.nan if len(calls) == 3 else 1.0)

    with pytest.raises(RolloutError, match="step 3 of 5") as err:
        rollout(nan_at_third, u0, 5)
    assert err.value.step == 3 and len(calls) == 3


def test_bad_shapes_and_arguments():
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        rollout(lambda x: x, torch.ones(1, 1, 1, 4), 0)
    with pytest.raises(ValueError, match="time axis"):
        rollout(lambda x: x, torch.ones(1, 4), 2)
    with pytest.raises(ValueError, match="whole number of states of 2"):
        rollout(lambda x: x[:, :1], torch.ones(1, 2, 1, 4), 2)


@pytest.mark.parametrize(
    "make",
    [
        lambda: MgNO(
            channels=4,
            levels=2,
            layers=1,
            base_resolution=8,
            padding_mode="circular",
            in_channels=2,
            out_channels=1,
        ),
        lambda: FNO(n_modes=3, hidden_channels=4, n_layers=1, in_channels=2, out_channels=1),
    ],
    ids=["mgno-circular", "fno"],
)
def test_mgno_and_fno_roll_out_at_the_training_grid_and_twice_it(make):
    torch.manual_seed(0)
    model = make()
    for n in (8, 16):
        u0 = torch.randn(2, 1, 2, n, n)
        out = rollout(model, u0, 3)
        assert out.shape == (2, 1, 3, n, n) and torch.isfinite(out).all()
        # the first call is the model applied to the stacked history
        torch.testing.assert_close(out[:, :, 0], model(u0[:, 0]), rtol=1e-5, atol=1e-6)
