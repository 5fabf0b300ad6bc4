"""MultiFidelityNet (MF-DNN) as a network: ANOVA branches, save/load, arguments, contract.

Fitting it is tested in tests/training/test_multifidelity.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pdesurrogates.surrogates import MultiFidelityNet
from pdesurrogates.testing import SurrogateContract
from pdesurrogates.training import fit_mfnet


def test_additive_branch_is_a_sum_of_univariate_functions():
    net = MultiFidelityNet(in_dim=4, low_arch="additive", additive_units=3).double()
    fit_mfnet(
        net,
        [np.tile([[0.0], [0.5], [1.0]], (1, 4)), np.tile([[0.0], [1.0]], (1, 4))],
        [np.arange(3.0), np.arange(2.0)],
        adam_steps=5,
        lbfgs_steps=0,
        lm_steps=0,
    )
    assert net.low is None and net.low_additive is not None
    assert net.get_config()["low_arch"] == "additive"
    # mixed second difference of an additive function vanishes: f(a,b)-f(a,b')-f(a',b)+f(a',b')
    x = torch.rand(4, 4, dtype=torch.float64)
    x[1, 0], x[3, 0] = x[0, 0], x[2, 0]  # same x0 pairs
    x[2, 1:], x[3, 1:] = x[0, 1:], x[1, 1:]  # same other coordinates pairs
    with torch.no_grad():
        f = net(x, level=0)
    assert abs(float(f[0] - f[1] - f[2] + f[3])) < 1e-12
    # and the mlp form does not have that property in general
    mlp = MultiFidelityNet(in_dim=4).double()
    with torch.no_grad():
        for p in mlp.parameters():
            p.normal_()
        g = mlp(x, level=0)
    assert abs(float(g[0] - g[1] - g[2] + g[3])) > 1e-6


def test_pairs_branch_interacts_only_on_its_pairs():
    net = MultiFidelityNet(in_dim=4, low_arch="additive+pairs", pairs=[(2, 0)]).double()
    assert net.pairs == [(0, 2)] and net.get_config()["pairs"] == [[0, 2]]
    with torch.no_grad():
        for prm in net.parameters():
            prm.normal_()

    def mixed(i, j):  # f(a,b) - f(a,b') - f(a',b) + f(a',b') in inputs i, j
        x = torch.rand(1, 4, dtype=torch.float64).repeat(4, 1)
        a, b = torch.rand(2, dtype=torch.float64), torch.rand(2, dtype=torch.float64)
        x[:, i] = a[[0, 0, 1, 1]]
        x[:, j] = b[[0, 1, 0, 1]]
        with torch.no_grad():
            f = net(x, level=0)
        return abs(float(f[0] - f[1] - f[2] + f[3]))

    assert mixed(0, 2) > 1e-6
    assert max(mixed(0, 1), mixed(1, 2), mixed(1, 3), mixed(2, 3)) < 1e-12


def test_pairs_form_round_trips_through_save_and_load(tmp_path):
    import pdesurrogates

    net = MultiFidelityNet(in_dim=3, low_arch="additive+pairs", pairs=[(0, 1), (1, 2)])
    path = pdesurrogates.save(net, tmp_path / "mf")
    back = pdesurrogates.load(path)
    x = torch.rand(5, 3)
    with torch.no_grad():
        assert torch.equal(back(x), net(x))
    assert back.pairs == [(0, 1), (1, 2)]


def test_bad_network_arguments():
    with pytest.raises(ValueError, match="activation"):
        MultiFidelityNet(activation="relu6")
    with pytest.raises(ValueError, match="n_levels"):
        MultiFidelityNet(n_levels=1)
    with pytest.raises(ValueError, match="low_arch"):
        MultiFidelityNet(low_arch="resnet")
    with pytest.raises(ValueError, match="screen_interactions"):
        MultiFidelityNet(in_dim=3, low_arch="additive+pairs")
    with pytest.raises(ValueError, match="only with low_arch='additive\\+pairs'"):
        MultiFidelityNet(in_dim=3, low_arch="additive", pairs=[(0, 1)])
    with pytest.raises(ValueError, match=r"indices in \[0, 3\)"):
        MultiFidelityNet(in_dim=3, low_arch="additive+pairs", pairs=[(0, 3)])
    with pytest.raises(ValueError, match="two different inputs"):
        MultiFidelityNet(in_dim=3, low_arch="additive+pairs", pairs=[(1, 1)])
    with pytest.raises(ValueError, match="listed twice"):
        MultiFidelityNet(in_dim=3, low_arch="additive+pairs", pairs=[(0, 1), (1, 0)])


class TestMultiFidelityNetContract(SurrogateContract):
    def make_model(self):
        return MultiFidelityNet(in_dim=3, n_levels=3, low_width=8, corr_width=4)

    def make_inputs(self, batch_size, *, generator, dtype=torch.float32):
        return (torch.rand(batch_size, 3, generator=generator, dtype=dtype),)
