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
