"""DeepONetConfig: the one place of DeepONet training defaults; TOML and overrides."""

from __future__ import annotations

import inspect

import pytest

from pdesurrogates.errors import ConfigError
from pdesurrogates.training import DeepONetConfig, FieldPointStep, train_deeponet


def test_defaults_live_in_the_config_only():
    cfg = DeepONetConfig()
    assert (cfg.epochs, cfg.batch_size, cfg.n_points, cfg.lr, cfg.ensemble) == (
        300,
        16,
        2048,
        None,
        1,
    )
    # the peak learning rate depends on the data's dimension: 2e-3 diverged in 3D rooms
    assert (cfg.peak_lr(1), cfg.peak_lr(2), cfg.peak_lr(3)) == (2e-3, 2e-3, 1e-3)
    assert cfg.trainer_kwargs(5, dim=3)["lr"] == 1e-3 and cfg.trainer_kwargs(5)["lr"] == 2e-3
    assert DeepONetConfig(lr=5e-4).peak_lr(3) == 5e-4
    assert cfg.model == {}
    # the step and the training function take their defaults from the config
    step = inspect.signature(FieldPointStep).parameters
    assert step["n_points"].default == cfg.n_points and step["n_times"].default == cfg.n_times
    params = inspect.signature(train_deeponet).parameters
    assert not {"epochs", "lr", "batch_size", "n_points"} & set(params)
    kw = cfg.trainer_kwargs(n_train=5)
    assert kw["batch_size"] == 5 and kw["loss"] == "mse" and kw["scheduler"] == "onecycle"
    assert kw["grad_clip"] == 1.0 and kw["pct_start"] == 0.1 and kw["epochs"] == 300


def test_overrides_split_training_fields_from_model_arguments():
    cfg = DeepONetConfig(model={"width": 32}).with_overrides(epochs=7, depth=2, max_time=None)
    assert cfg.epochs == 7 and cfg.max_time is None
    assert cfg.model == {"width": 32, "depth": 2}
    assert cfg.with_overrides(model={"latent": 4}).model == {"width": 32, "depth": 2, "latent": 4}
    assert DeepONetConfig().model == {}  # the default dict is not shared


def test_toml_round_trip_and_errors_name_file_and_key(tmp_path):
    path = tmp_path / "d.toml"
    path.write_text("[model]\nwidth = 64\n\n[training]\nepochs = 12\nlr = 1\nmax_time = 30\n")
    cfg = DeepONetConfig.from_toml(path)
    assert cfg.epochs == 12 and cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.max_time == 30.0 and cfg.model == {"width": 64}
    assert DeepONetConfig.from_dict(cfg.to_dict()) == cfg

    cases = [
        ("[training]\nepochs = 0\n", "epochs must be an integer >= 1"),
        ("[training]\nlr = -1.0\n", "lr must be a positive number"),
        ("[training]\nscheduler = 'step'\n", "scheduler must be 'onecycle', 'cosine' or 'none'"),
        ("[training]\nbatch = 3\n", "unknown key"),
        ("[optimiser]\nlr = 1.0\n", "unknown table"),
        ("[training\n", "not valid TOML"),
    ]
    for text, match in cases:
        path.write_text(text)
        with pytest.raises(ConfigError, match=match) as info:
            DeepONetConfig.from_toml(path)
        assert str(path) in str(info.value)
    with pytest.raises(ConfigError, match="no such config file"):
        DeepONetConfig.from_toml(tmp_path / "missing.toml")
