"""Run configurations: OperatorConfig holds the only defaults; TOML and Python read it."""

from __future__ import annotations

import dataclasses

import pytest

from pdesurrogates.errors import ConfigError
from pdesurrogates.runs import load_config
from pdesurrogates.training import OperatorConfig


def test_defaults_come_from_operator_config(tmp_path):
    cfg = load_config(None)
    assert cfg["training"] == OperatorConfig()
    (tmp_path / "c.toml").write_text("[training]\nepochs = 4\nlr = 1\n[data]\ntarget = 'u'\n")
    cfg = load_config(tmp_path / "c.toml")
    assert cfg["training"] == dataclasses.replace(OperatorConfig(), epochs=4, lr=1.0)
    assert cfg["data"] == {"target": "u"}
    same = load_config({"training": cfg["training"], "data": {"target": "u"}})
    assert same["training"] == cfg["training"]


def test_overrides_replace_only_what_is_given():
    base = OperatorConfig(epochs=7, lr=2e-3)
    new = base.with_overrides(epochs=None, lr=None, batch_size=2)
    assert (new.epochs, new.lr, new.batch_size) == (7, 2e-3, 2)
    kw = new.trainer_kwargs()
    assert "seed" not in kw and kw["batch_size"] == 2 and kw["grad_clip"] == 1.0


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"training": {"learning_rate": 1}}, "unknown key 'learning_rate' in table 'training'"),
        ({"training": {"epochs": "ten"}}, "training.epochs = 'ten' has the wrong type"),
        ({"training": {"epochs": 0}}, "epochs must be an integer >= 1"),
        ({"training": {"scheduler": 3}}, "expected str or None"),
        ({"data": {"ensemble": "3"}}, "data.ensemble = '3' has the wrong type"),
        ({"optim": {}}, "unknown table"),
    ],
)
def test_bad_tables_are_one_clear_error(table, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_config(table)


def test_a_second_training_into_the_same_run_is_refused_naming_the_first(tmp_path):
    from pdesurrogates._files import WriteLock
    from pdesurrogates.errors import OutputError
    from pdesurrogates.runs import train_run

    out = tmp_path / "run"
    out.mkdir()
    with WriteLock(out / "run.json", command="train mgno -o run"):
        with pytest.raises(OutputError, match=r"is being written by pid \d+"):
            train_run("mgno", tmp_path / "unused.h5", out)


def test_training_output_that_is_the_data_file_is_refused(tmp_path):
    from pdesurrogates.errors import OutputError
    from pdesurrogates.runs import train_run

    data = tmp_path / "d.h5"
    data.write_bytes(b"not read")
    with pytest.raises(OutputError, match="destroy"):
        train_run("mgno", data, data)
    assert data.read_bytes() == b"not read"


def test_a_constant_target_field_is_refused_naming_file_and_field(tmp_path):
    import numpy as np

    from pdesurrogates.datasets import DatasetWriter, FieldSpec
    from pdesurrogates.errors import TrainingError
    from pdesurrogates.runs import train_run

    x = np.linspace(0, 1, 8)
    fields = {
        "a": FieldSpec(dims=("sample", "x", "y"), role="input"),
        "u": FieldSpec(dims=("sample", "x", "y"), role="output"),
    }
    path = tmp_path / "const.h5"
    with DatasetWriter(path, n_samples=6, coords={"x": x, "y": x}, fields=fields) as w:
        rng = np.random.default_rng(0)
        for i in range(6):
            w.write(i, {"a": rng.random((8, 8)), "u": np.full((8, 8), 2.0)})
        w.finalize(split=(0.5, 0.25, 0.25))
    with pytest.raises(TrainingError, match=r"const\.h5: the target field 'u' is constant"):
        train_run("mgno", path, tmp_path / "run", progress=False)
