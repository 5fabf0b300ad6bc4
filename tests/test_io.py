"""save/load: round trips, atomicity and clear errors on bad directories."""

from __future__ import annotations

import json

import pytest
import torch

import pdesurrogates
from pdesurrogates import io
from pdesurrogates.errors import CheckpointError
from pdesurrogates.testing import SurrogateContract


@io.register_model
class _Affine(torch.nn.Module):
    def __init__(self, *, n_in=3, n_out=2):
        super().__init__()
        if n_in < 1:
            raise ValueError("n_in must be >= 1")
        self.n_in, self.n_out = n_in, n_out
        self.lin = torch.nn.Linear(n_in, n_out)
        self.register_buffer("shift", torch.arange(n_out, dtype=torch.float32))

    def get_config(self):
        return {"n_in": self.n_in, "n_out": self.n_out}

    def forward(self, x):
        return self.lin(x) + self.shift


@io.register_model
class _Pair(torch.nn.Module):
    """A model holding other models, stored through model_spec/build_model."""

    def __init__(self, *, first, second):
        super().__init__()
        self.first = io.build_model(first) if isinstance(first, dict) else first
        self.second = io.build_model(second) if isinstance(second, dict) else second

    def get_config(self):
        return {"first": io.model_spec(self.first), "second": io.model_spec(self.second)}

    def forward(self, x):
        return self.first(x) + self.second(x)


class TestAffineContract(SurrogateContract):
    def make_model(self):
        return _Affine(n_in=4, n_out=2)

    def make_inputs(self, batch_size, *, generator, dtype=torch.float32):
        return (torch.randn(batch_size, 4, generator=generator, dtype=dtype),)


class TestNestedContract(SurrogateContract):
    def make_model(self):
        return _Pair(first=_Affine(n_in=2, n_out=2), second=_Affine(n_in=2, n_out=2))

    def make_inputs(self, batch_size, *, generator, dtype=torch.float32):
        return (torch.randn(batch_size, 2, generator=generator, dtype=dtype),)


def test_save_writes_config_and_weights(tmp_path):
    pdesurrogates.save(_Affine(), tmp_path / "m", metadata={"note": "x"})
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["class"] == "_Affine"
    assert cfg["config"] == {"n_in": 3, "n_out": 2}
    assert cfg["pdesurrogates_version"] == pdesurrogates.__version__
    assert cfg["format_version"] == io.FORMAT_VERSION
    assert cfg["metadata"] == {"note": "x"}
    assert (tmp_path / "m" / "weights.safetensors").stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporaries left


def test_save_replaces_existing_directory(tmp_path):
    a, b = _Affine(), _Affine()
    with torch.no_grad():
        b.lin.weight.fill_(7.0)
    pdesurrogates.save(a, tmp_path / "m")
    pdesurrogates.save(b, tmp_path / "m")
    assert torch.equal(pdesurrogates.load(tmp_path / "m").lin.weight, b.lin.weight)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_failed_save_leaves_old_model(tmp_path, monkeypatch):
    pdesurrogates.save(_Affine(), tmp_path / "m")
    before = (tmp_path / "m" / "weights.safetensors").read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.torch.save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        pdesurrogates.save(_Affine(), tmp_path / "m")
    assert (tmp_path / "m" / "weights.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_float64_model_keeps_its_dtype(tmp_path):
    pdesurrogates.save(_Affine().double(), tmp_path / "m")
    assert pdesurrogates.load(tmp_path / "m").lin.weight.dtype == torch.float64


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda d: (d / "config.json").unlink(), "missing config.json"),
        (lambda d: (d / "weights.safetensors").unlink(), "missing weights.safetensors"),
        (lambda d: (d / "config.json").write_text("{not json"), "corrupt JSON"),
        (lambda d: (d / "config.json").write_text('{"format": "other"}'), "not a pdesurrogates"),
        (
            lambda d: (d / "weights.safetensors").write_bytes(
                (d / "weights.safetensors").read_bytes()[:40]
            ),
            "corrupt or truncated",
        ),
        (lambda d: (d / "weights.safetensors").write_bytes(b"\x00" * 100), "corrupt"),
    ],
)
def test_damaged_directory_gives_checkpoint_error(tmp_path, damage, match):
    pdesurrogates.save(_Affine(), tmp_path / "m")
    damage(tmp_path / "m")
    with pytest.raises(CheckpointError, match=match):
        pdesurrogates.load(tmp_path / "m")


def test_missing_directory(tmp_path):
    with pytest.raises(CheckpointError, match="no such model directory"):
        pdesurrogates.load(tmp_path / "nope")


def test_unknown_class_and_wrong_weights(tmp_path):
    pdesurrogates.save(_Affine(), tmp_path / "m")
    cfg_path = tmp_path / "m" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["class"] = "NoSuchModel"
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="unknown model class 'NoSuchModel'"):
        pdesurrogates.load(tmp_path / "m")
    cfg["class"], cfg["config"] = "_Affine", {"n_in": 5, "n_out": 2}
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="wrong shape"):
        pdesurrogates.load(tmp_path / "m")
    cfg["config"] = {"n_in": 0, "n_out": 2}
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="n_in must be >= 1"):
        pdesurrogates.load(tmp_path / "m")


def test_unregistered_class_cannot_be_saved(tmp_path):
    with pytest.raises(CheckpointError, match="not registered"):
        pdesurrogates.save(torch.nn.Linear(2, 2), tmp_path / "m")


def test_atomic_write_text(tmp_path):
    io.atomic_write_text(tmp_path / "a" / "b.txt", "hello")
    assert (tmp_path / "a" / "b.txt").read_text() == "hello"
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["b.txt"]
