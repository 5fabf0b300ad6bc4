"""Deep ensembles: contract, predictive moments, save/load."""

from __future__ import annotations

import pytest
import torch

import pdesurrogates
from pdesurrogates.surrogates import FNO, DeepONet, Ensemble, MgNO
from pdesurrogates.testing import SurrogateContract
from pdesurrogates.uq import Prediction


def _members(k=3):
    out = []
    for seed in range(k):
        torch.manual_seed(seed)
        out.append(MgNO(channels=4, levels=2, layers=1, base_resolution=8))
    return out


class TestEnsembleContract(SurrogateContract):
    def make_model(self):
        return Ensemble(_members())

    def make_inputs(self, batch_size, *, generator, dtype=torch.float32):
        return (torch.randn(batch_size, 1, 8, 8, generator=generator, dtype=dtype),)


class TestDeepONetEnsembleContract(SurrogateContract):
    """The deep ensemble ``train deeponet --ensemble K`` saves: two-argument forward."""

    def make_model(self):
        members = []
        for seed, trunk in enumerate(("separable", "joint")):
            torch.manual_seed(seed)
            members.append(
                DeepONet(lengths=[2.0], duration=0.01, width=8, depth=2, latent=4, trunk=trunk)
            )
        return Ensemble(members)

    def make_inputs(self, batch_size, *, generator, dtype=torch.float32):
        src = 0.5 + torch.rand(batch_size, 1, generator=generator, dtype=dtype)
        coords = torch.rand(batch_size, 5, 2, generator=generator, dtype=dtype)
        coords = coords * torch.tensor([2.0, 0.01], dtype=dtype)
        member = DeepONet(lengths=[2.0], duration=0.01, width=8, depth=2, latent=4).to(dtype)
        return member.encode_source(src), coords


def test_predict_moments_are_member_statistics():
    members = _members(4)
    ens = Ensemble(members).eval()
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        outs = torch.stack([m(x) for m in members])
        pred = ens.predict(x)
        mean = ens(x)
    assert isinstance(pred, Prediction)
    assert pred.samples.shape == (4, 5, 1, 8, 8)
    torch.testing.assert_close(pred.samples, outs)
    torch.testing.assert_close(pred.mean, outs.mean(0))
    torch.testing.assert_close(mean, outs.mean(0))
    torch.testing.assert_close(pred.std, outs.std(0, correction=1))
    assert (pred.std > 0).all()


def test_mixed_members_save_and_load(tmp_path):
    torch.manual_seed(0)
    ens = Ensemble(
        [
            MgNO(channels=4, levels=2, layers=1, base_resolution=8),
            FNO(n_modes=3, hidden_channels=4, n_layers=1),
        ]
    ).eval()
    pdesurrogates.save(ens, tmp_path / "ens")
    loaded = pdesurrogates.load(tmp_path / "ens")
    assert [type(m).__name__ for m in loaded.members] == ["MgNO", "FNO"]
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(loaded.predict(x).std, ens.predict(x).std, atol=0, rtol=0)


def test_needs_two_members():
    with pytest.raises(ValueError, match="at least 2 members"):
        Ensemble(_members(1))
    with pytest.raises(ValueError, match=r"not an nn\.Module"):
        Ensemble([_members(1)[0], "model"])
