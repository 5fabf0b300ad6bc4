"""The discrete relative L2 / H1 against closed-form integrals in 1D, 2D and 3D."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pdesurrogates.uq import metrics


def _fields(n: int, d: int):
    """u = prod sin(pi x_i), w = sin(2 pi x_1) prod_{i>1} sin(pi x_i) at cell centres."""
    x = (np.arange(n) + 0.5) / n
    grids = np.meshgrid(*([x] * d), indexing="ij")
    u = np.prod([np.sin(np.pi * g) for g in grids], axis=0)
    w = np.sin(2 * np.pi * grids[0]) * np.prod([np.sin(np.pi * g) for g in grids[1:]], axis=0)
    return u[None], w[None]


def _exact(d: int, a: float) -> float:
    # ||prod sin(k_i pi x_i)||_H1^2 = 2^-d (1 + pi^2 sum k_i^2) on the unit cube
    return a * math.sqrt((1 + (d + 3) * math.pi**2) / (1 + d * math.pi**2))


_CASES = [(1, (32, 64, 128, 256, 512), 1.9), (2, (32, 64, 128, 256), 1.9), (3, (16, 32, 64), 1.6)]


@pytest.mark.parametrize(("d", "sizes", "order"), _CASES)
def test_rel_h1_converges_at_second_order_to_the_exact_ratio(d, sizes, order):
    """The observed order rises towards 2 (the one-sided edge stencils settle last)."""
    a = 0.1
    errs = []
    for n in sizes:
        u, w = _fields(n, d)
        errs.append(abs(float(metrics.rel_h1(u + a * w, u)) - _exact(d, a)))
        # the midpoint rule integrates these products of sines exactly: rel L2 = a
        assert float(metrics.rel_l2(u + a * w, u)) == pytest.approx(a, rel=1e-12)
    orders = [math.log2(errs[i] / errs[i + 1]) for i in range(len(errs) - 1)]
    assert orders == sorted(orders) and orders[-1] > order, (errs, orders)
    assert errs[-1] < 2e-3 * _exact(d, a)


def test_default_spacing_is_the_unit_domain_and_spacing_is_physical():
    u, w = _fields(64, 2)
    default = metrics.rel_h1(u + 0.1 * w, u)
    assert float(metrics.rel_h1(u + 0.1 * w, u, spacing=1 / 64)) == float(default)
    x = (np.arange(64) + 0.5) / 64
    assert float(metrics.rel_h1(u + 0.1 * w, u, coords=[x, x])) == pytest.approx(
        float(default), rel=1e-12
    )
    # the same samples on [0, 2]^2: derivatives halve, ||.||^2 = 1 + pi^2 k^2 / 4 per term
    on2 = float(metrics.rel_h1(u + 0.1 * w, u, spacing=2 / 64))
    exact2 = 0.1 * math.sqrt((1 + 5 * math.pi**2 / 4) / (1 + 2 * math.pi**2 / 4))
    assert on2 == pytest.approx(exact2, rel=2e-3)


def test_components_between_sample_and_grid_are_summed():
    u, w = _fields(32, 2)
    y = np.concatenate([u, 2 * u], 0)[None]  # (1, 2 components, 32, 32)
    p = y + 0.1 * np.concatenate([w, w], 0)[None]
    got = metrics.rel_h1(p, y, spatial_dims=2)
    ref = math.sqrt(2) * 0.1 * metrics.rel_h1(w, u) / 0.1 / math.sqrt(5)
    assert float(got) == pytest.approx(float(metrics.rel_h1(u + 0.1 * w, u)) * math.sqrt(2 / 5))
    assert float(ref) > 0


def test_torch_autograd_and_numpy_agree():
    u, w = _fields(16, 2)
    p = torch.tensor(u + 0.1 * w, requires_grad=True)
    v = metrics.rel_h1(p, torch.tensor(u))
    v.backward()
    assert float(v.detach()) == float(metrics.rel_h1(u + 0.1 * w, u))
    assert p.grad is not None and torch.isfinite(p.grad).all()


def test_a_channel_axis_of_one_is_not_a_spatial_axis():
    """Channel-first ``(N, 1, X, Y)`` fields: the default spatial axes are ``X, Y``, so the
    numbers are those of ``(N, X, Y)`` and of an explicit ``spatial_dims=2``, and the
    relative H1 error keeps its closed form."""
    u, w = _fields(64, 2)
    a = 0.3
    p = u + a * w
    plain = float(metrics.rel_h1(p, u))
    assert float(metrics.rel_h1(p[:, None], u[:, None])) == pytest.approx(plain, rel=1e-12)
    explicit = metrics.rel_h1(p[:, None], u[:, None], spatial_dims=2)
    assert float(explicit) == pytest.approx(plain, rel=1e-12)
    assert plain == pytest.approx(_exact(2, a), rel=2e-3)
    assert float(metrics.rel_l2(p[:, None], u[:, None])) == pytest.approx(
        float(metrics.rel_l2(p, u)), rel=1e-12
    )


def test_bad_grid_arguments_say_what_to_do():
    u, _ = _fields(8, 2)
    with pytest.raises(ValueError, match="spacing or coords"):
        metrics.rel_h1(u, u, spacing=0.1, coords=[np.arange(8), np.arange(8)])
    with pytest.raises(ValueError, match="spatial_dims=1 but coords has 2"):
        metrics.rel_h1(u, u, spatial_dims=1, coords=[np.arange(8), np.arange(8)])
    with pytest.raises(ValueError, match="strictly increasing"):
        metrics.rel_h1(u, u, coords=[np.zeros(8), np.arange(8)])
    two = np.stack([u, u], axis=1)  # (1, 2, 8, 8): a channel axis of 2 taken as spatial
    with pytest.raises(ValueError, match=r"at least 3 points .* lower spatial_dims"):
        metrics.rel_h1(two, two)
    with pytest.raises(ValueError, match="periodic needs one flag"):
        metrics.rel_h1(u, u, periodic=[True])
