"""Normalizer: train-split statistics in, an exact encode/decode pair out, saved with the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pdesurrogates
from pdesurrogates.datasets import DatasetWriter, FieldSpec, open_dataset
from pdesurrogates.surrogates import Normalizer


def _vector_dataset(path, values):
    n, nx, ny, _ = values.shape
    coords = {"x": np.linspace(0, 1, nx), "y": np.linspace(0, 1, ny), "component": [0, 1]}
    fields = {"vel": FieldSpec(dims=("sample", "x", "y", "component"), role="output")}
    with DatasetWriter(path, n_samples=n, coords=coords, fields=fields) as w:
        for i in range(n):
            w.write(i, {"vel": values[i]})
        w.finalize(split=(1.0, 0.0, 0.0))
    return open_dataset(path)


def test_from_dataset_standardises_each_component_and_inverts(tmp_path):
    rng = np.random.default_rng(0)
    v = rng.normal([3.0, -2.0], [0.5, 4.0], size=(12, 6, 5, 2)).astype(np.float32)
    norm = Normalizer.from_dataset(_vector_dataset(tmp_path / "v.h5", v), "vel", dim=-1)
    x = torch.from_numpy(v).double()
    z = norm.encode(x).reshape(-1, 2)
    torch.testing.assert_close(z.mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        z.std(0, correction=0), torch.ones(2, dtype=torch.float64), atol=1e-4, rtol=0
    )
    torch.testing.assert_close(norm.decode(norm.encode(x)), x, atol=1e-5, rtol=1e-6)


def test_bad_std_is_refused():
    with pytest.raises(ValueError, match="std must be finite and >= 0"):
        Normalizer(mean=0.0, std=-1.0)


def test_saves_and_loads_with_the_package(tmp_path):
    n = Normalizer(mean=[1.0, 2.0], std=[3.0, 4.0])
    pdesurrogates.save(n, tmp_path / "n")
    m = pdesurrogates.load(tmp_path / "n")
    x = torch.randn(2, 2, 3)
    torch.testing.assert_close(m.decode(x), n.decode(x))
    torch.testing.assert_close(
        m.decode(x),
        x * torch.tensor([3.0, 4.0]).reshape(1, 2, 1) + torch.tensor([1.0, 2.0]).reshape(1, 2, 1),
        atol=1e-5,
        rtol=0,
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"std": [1.0, float("nan")], "mean": [0.0, 0.0]}, r"std must be finite and >= 0; entry 1"),
        ({"std": [1.0, -2.0], "mean": [0.0, 0.0]}, r"std must be finite and >= 0; entry 1"),
        ({"mean": float("inf")}, r"mean must be finite; entry 0"),
        ({"mean": [0.0], "std": [1.0, 2.0]}, "equal-length vectors"),
        ({"std": "abc"}, "std must be a number or a list of numbers"),
        ({"eps": 0.0}, "eps must be a positive finite number"),
        ({"eps": float("nan")}, "eps must be a positive finite number"),
    ],
)
def test_bad_statistics_name_the_argument_and_entry(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Normalizer(**kwargs)


def _normalized(input_std, output_std):
    from pdesurrogates.surrogates import MgNO, NormalizedModel

    torch.manual_seed(0)
    return NormalizedModel(
        MgNO(in_channels=2, channels=4, levels=2, layers=1, base_resolution=8),
        input_normalizer=Normalizer(mean=[1.0, 5.0], std=input_std),
        output_normalizer=Normalizer(mean=0.5, std=output_std),
    )


def test_output_std_zero_is_refused_naming_the_normaliser():
    with pytest.raises(ValueError, match=r"output_normalizer has std = 0 for channel\(s\) \[0\]"):
        _normalized([2.0, 3.0], 0.0)


def test_output_std_zero_in_a_saved_config_is_a_checkpoint_error(tmp_path):
    import json

    from pdesurrogates.errors import CheckpointError

    pdesurrogates.save(_normalized([2.0, 3.0], 0.1), tmp_path / "m")
    cfg_path = tmp_path / "m" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["config"]["output_normalizer"]["config"]["std"] = 0.0
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"config.json.*output_normalizer has std = 0"):
        pdesurrogates.load(tmp_path / "m")


def test_input_std_zero_is_clamped_to_one_with_a_warning(tmp_path, caplog):
    with caplog.at_level("WARNING", logger="pdesurrogates"):
        model = _normalized([2.0, 0.0], 0.1)
    assert "input_normalizer has std = 0 for channel(s) [1]" in caplog.text
    assert model.input_normalizer.std.tolist() == [2.0, 1.0]
    x = torch.rand(3, 2, 8, 8)
    x[:, 1] = 5.0  # the constant training value of channel 1 still encodes to 0
    assert torch.equal(model.input_normalizer.encode(x)[:, 1], torch.zeros(3, 8, 8))
    # saved and loaded: the clamped std is what is stored and rebuilt
    pdesurrogates.save(model, tmp_path / "m")
    loaded = pdesurrogates.load(tmp_path / "m")
    assert loaded.input_normalizer.std.tolist() == [2.0, 1.0]
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
