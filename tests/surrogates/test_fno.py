"""FNO adapter: contract, agreement with neuraloperator, dtype handling, bad input."""

from __future__ import annotations

import pytest
import torch

from pdesurrogates.surrogates import FNO
from pdesurrogates.testing import SurrogateContract


class TestFNOContract(SurrogateContract):
    def make_model(self):
        return FNO(n_modes=4, hidden_channels=8, n_layers=2)

    def make_inputs(self, batch_size, *, generator, dtype=torch.float32):
        return (torch.randn(batch_size, 1, 16, 16, generator=generator, dtype=dtype),)


def test_same_outputs_as_neuraloperator_fno():
    """Our adapter is neuraloperator's network: copying its weights into a raw
    ``neuralop.models.FNO`` reproduces the outputs exactly."""
    from neuralop.models import FNO as RawFNO

    torch.manual_seed(0)
    ours = FNO(n_modes=(5, 3), hidden_channels=8, n_layers=3, in_channels=2, out_channels=2)
    raw = RawFNO(n_modes=(5, 3), in_channels=2, out_channels=2, hidden_channels=8, n_layers=3)
    state = {k.removeprefix("net."): v for k, v in ours.state_dict().items()}
    raw.load_state_dict(state)
    x = torch.randn(3, 2, 24, 20)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), raw(x), atol=0, rtol=0)


def test_parameter_count_matches_neuraloperator():
    from neuralop.models import FNO as RawFNO

    ours = FNO(n_modes=12, hidden_channels=32, n_layers=4)
    raw = RawFNO(n_modes=(12, 12), in_channels=1, out_channels=1, hidden_channels=32)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(ours) == count(raw) == 357_217


def test_float64_keeps_complex_weights_complex():
    torch.manual_seed(0)
    m = FNO(n_modes=4, hidden_channels=8, n_layers=2).eval()
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        y32 = m(x)
        m64 = m.to(torch.float64)
        y64 = m64(x.double())
    dtypes = {p.dtype for p in m64.parameters()}
    assert dtypes == {torch.float64, torch.complex128}
    torch.testing.assert_close(y64.float(), y32, atol=1e-5, rtol=1e-5)
    back = m64.float()
    assert {p.dtype for p in back.parameters()} == {torch.float32, torch.complex64}


def test_resolution_agnostic_and_3d_input():
    m = FNO(n_modes=4, hidden_channels=8, n_layers=2).eval()
    with torch.no_grad():
        assert m(torch.randn(2, 16, 16)).shape == (2, 16, 16)
        assert m(torch.randn(2, 1, 32, 32)).shape == (2, 1, 32, 32)


def test_bad_input_and_hyperparameters():
    m = FNO(n_modes=4, hidden_channels=8, n_layers=2)
    with pytest.raises(ValueError, match="shape"):
        m(torch.randn(2, 3, 16, 16))
    with pytest.raises(ValueError, match="floating-point"):
        m(torch.ones(2, 1, 16, 16, dtype=torch.long))
    with pytest.raises(ValueError, match="n_modes"):
        FNO(n_modes=(4, 4, 4))
    with pytest.raises(ValueError, match="hidden_channels"):
        FNO(hidden_channels=0)
    with pytest.raises(ValueError, match="positional_embedding"):
        FNO(positional_embedding="sincos")
    with pytest.raises(ValueError, match="domain_padding"):
        FNO(domain_padding=2.0)
