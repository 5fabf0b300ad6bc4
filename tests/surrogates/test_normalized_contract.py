"""The surrogate contract for NormalizedModel, the form ``train mgno|fno`` saves."""

from __future__ import annotations

import torch

from pdesurrogates.surrogates import FNO, MgNO, NormalizedModel, Normalizer
from pdesurrogates.testing import SurrogateContract


def _normalizers():
    return {
        "input_normalizer": Normalizer(mean=5.0, std=2.0),
        "output_normalizer": Normalizer(mean=0.1, std=0.01),
    }


class TestNormalizedMgNOContract(SurrogateContract):
    def make_model(self):
        net = MgNO(channels=4, levels=2, layers=1, base_resolution=8)
        return NormalizedModel(net, **_normalizers())

    def make_inputs(self, batch_size, *, generator, dtype=torch.float32):
        return (5.0 + 2.0 * torch.randn(batch_size, 1, 8, 8, generator=generator, dtype=dtype),)


class TestNormalizedFNOContract(SurrogateContract):
    fresh_process = False  # the wrapper's load is checked with MgNO inside
    atol32 = 1e-4

    def make_model(self):
        net = FNO(n_modes=4, hidden_channels=8, n_layers=2)
        return NormalizedModel(net, **_normalizers())

    def make_inputs(self, batch_size, *, generator, dtype=torch.float32):
        return (5.0 + 2.0 * torch.randn(batch_size, 1, 16, 16, generator=generator, dtype=dtype),)
