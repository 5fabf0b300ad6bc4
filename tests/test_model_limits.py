"""Model configs are bounded: absurd sizes are refused before anything is allocated."""

from __future__ import annotations

import json
import time

import pytest
import torch

import pdesurrogates
from pdesurrogates import io
from pdesurrogates.errors import CheckpointError, ConfigError
from pdesurrogates.surrogates import Ensemble, MgNO
from pdesurrogates.testing._fuzz_models import small_models


def _saved_mgno(tmp_path):
    torch.manual_seed(0)
    return pdesurrogates.save(
        MgNO(channels=4, levels=2, layers=1, base_resolution=8), tmp_path / "m"
    )


def _edit(directory, change):
    path = directory / "config.json"
    cfg = json.loads(path.read_text())
    change(cfg)
    path.write_text(json.dumps(cfg))
    return path


def _as_ensemble(cfg, n):
    spec = {"class": cfg["class"], "config": cfg["config"]}
    cfg["class"], cfg["config"] = "Ensemble", {"members": [spec] * n}


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda c: c["config"].update(channels=100000), r"would hold [\d,]+ parameters"),
        (lambda c: c["config"].update(channels=[10**9, 4]), "overflowed|would hold"),
        (lambda c: c["config"].update(layers=10**6), "layers=1000000 is more than"),
        (lambda c: c["config"].update(pre_smooth=[10**7, 0]), "pre_smooth.*10000000 is more"),
        (lambda c: c["config"].update(levels=10**12), "levels=1000000000000 is more than"),
        (lambda c: _as_ensemble(c, 20000), "20000 nested models, more than"),
    ],
)
def test_absurd_sizes_are_refused_quickly(tmp_path, change, match):
    directory = _saved_mgno(tmp_path)
    path = _edit(directory, change)
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match=match) as err:
        pdesurrogates.load(directory)
    assert time.perf_counter() - start < 10
    assert str(path) in str(err.value)


def test_parameter_limit_argument_and_environment(tmp_path, monkeypatch):
    directory = _saved_mgno(tmp_path)
    n = sum(t.numel() for t in pdesurrogates.load(directory).state_dict().values())
    with pytest.raises(CheckpointError, match=f"would hold {n:,} parameters, more than the limit"):
        pdesurrogates.load(directory, max_parameters=n - 1)
    assert pdesurrogates.load(directory, max_parameters=n) is not None
    monkeypatch.setenv(io.MAX_PARAMETERS_ENV, str(n - 1))
    with pytest.raises(CheckpointError, match="PDESURROGATES_MAX_PARAMETERS"):
        pdesurrogates.load(directory)
    assert pdesurrogates.load(directory, max_parameters=1e9) is not None  # argument wins
    monkeypatch.setenv(io.MAX_PARAMETERS_ENV, "lots")
    with pytest.raises(ConfigError, match=r"PDESURROGATES_MAX_PARAMETERS.*'lots'"):
        pdesurrogates.load(directory)
    monkeypatch.delenv(io.MAX_PARAMETERS_ENV)
    assert io.parameter_limit() == io.DEFAULT_MAX_PARAMETERS == 2_000_000_000
    for bad in (0, -5, float("nan"), float("inf"), True, "1e9"):
        with pytest.raises(ConfigError, match="max_parameters"):
            io.parameter_limit(bad)


@pytest.mark.parametrize("family", sorted(io.BUILTIN_MODELS))
def test_estimate_matches_the_built_model(family):
    model, _ = small_models()[family]
    actual = sum(t.numel() for t in model.state_dict().values())
    estimate = io.estimate_parameters(io.model_spec(model))
    if family == "CoKrigingGP":  # an upper bound (gpytorch cannot build on meta)
        assert actual <= estimate <= 2 * actual + 200
    else:
        assert estimate == actual


def test_estimate_of_a_large_model_allocates_nothing():
    spec = {"class": "MgNO", "config": {"channels": 4096, "levels": 5, "layers": 5}}
    start = time.perf_counter()
    n = io.estimate_parameters(spec)
    assert time.perf_counter() - start < 5
    # 5 layers x 5 levels of 3x3 convs of 4096^2 channels: far over 2e9
    assert n > 5 * 5 * 9 * 4096**2


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: MgNO(layers=1025), "layers=1025 is more than the supported maximum of 1024"),
        (lambda: MgNO(levels=33, base_resolution=8), "levels=33 is more than"),
        (lambda: MgNO(levels=2, base_resolution=8, post_smooth=[0, 2000]), "post_smooth"),
        (lambda: Ensemble([torch.nn.Identity()] * 1025), "number of members=1025"),
    ],
)
def test_constructors_bound_structural_sizes(build, match):
    with pytest.raises(ValueError, match=match):
        build()
