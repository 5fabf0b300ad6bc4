"""save/load: round trips, atomicity and clear errors on bad directories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
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


# --------------------------------------------------------------------- run directories
def test_load_accepts_a_run_directory(tmp_path):
    model = _Affine()
    pdesurrogates.save(model, tmp_path / "run" / "model")
    (tmp_path / "run" / "run.json").write_text("{}")
    loaded = pdesurrogates.load(tmp_path / "run")
    assert torch.equal(loaded.lin.weight, model.lin.weight)
    assert io.read_config(tmp_path / "run")["class"] == "_Affine"


def test_wrong_directory_names_what_it_found_and_expected(tmp_path):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("x")
    (tmp_path / "stuff" / "data").mkdir()
    with pytest.raises(CheckpointError) as err:
        pdesurrogates.load(tmp_path / "stuff")
    msg = str(err.value)
    assert "neither a saved model nor a run directory" in msg
    assert "Found: data/, notes.txt" in msg
    assert "config.json and weights.safetensors" in msg and "model/" in msg
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text("{}")
    with pytest.raises(CheckpointError, match="training run without a finished model"):
        pdesurrogates.load(tmp_path / "run")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="the directory is empty"):
        pdesurrogates.load(tmp_path / "empty")


# ------------------------------------------------------------- built-in class table
def test_class_table_covers_every_builtin_model():
    import importlib

    import pdesurrogates.surrogates  # noqa: F401  (registers every built-in model)

    builtin = {
        name: cls
        for name, cls in io.registered_models().items()
        if cls.__module__.startswith("pdesurrogates.")
    }
    assert set(builtin) == set(io.BUILTIN_MODELS)
    for name, module in io.BUILTIN_MODELS.items():
        assert builtin[name].__module__ == module, name
        assert getattr(importlib.import_module(module), name) is builtin[name]


def test_io_and_package_root_do_not_import_torch_or_models():
    code = (
        "import sys, pdesurrogates, pdesurrogates.io\n"
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith('pdesurrogates.')"
        " and m not in ('pdesurrogates.io', 'pdesurrogates.errors', 'pdesurrogates._version',"
        " 'pdesurrogates._files')]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=_child_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]


# ------------------------------------------- every family loads in a fresh process
def _child_env():
    src = str(Path(pdesurrogates.__file__).resolve().parents[1])
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    return env


def _perturbed(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


def _mgno(seed=0):
    from pdesurrogates.surrogates import MgNO

    torch.manual_seed(seed)
    return MgNO(channels=4, levels=2, layers=1, base_resolution=8)


def _family(name):
    """A small model of family ``name`` and inputs for it."""
    from pdesurrogates import surrogates as s

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    if name == "MgNO":
        return _mgno(), (torch.randn(2, 1, 8, 8, generator=g),)
    if name == "FNO":
        return s.FNO(n_modes=4, hidden_channels=8, n_layers=2), (
            torch.randn(2, 1, 16, 16, generator=g),
        )
    if name == "DeepONet":
        m = s.DeepONet(lengths=[2.0, 1.5], duration=0.01, fmax=500.0, width=16, depth=2, latent=8)
        src = torch.tensor([[0.7, 0.6], [1.1, 0.9]])
        xq = torch.cat(
            [torch.rand(2, 5, 2, generator=g), 0.01 * torch.rand(2, 5, 1, generator=g)], -1
        )
        return m, (m.encode_source(src).float(), xq)
    if name == "ConjugateDirectionNet":
        return _perturbed(s.ConjugateDirectionNet(dim=2, width=4)), (
            torch.randn(2, 1, 16, 12, generator=g),
        )
    if name == "LearnedVCycle":
        return _perturbed(s.LearnedVCycle(dim=2, coarse_cells=16)), (
            torch.randn(2, 1, 8, 8, generator=g),
        )
    if name == "NeuralIncompleteCholesky":
        from pdesurrogates.solvers import gallery
        from pdesurrogates.surrogates._neural_if import matrix_graph

        gr = matrix_graph(gallery.poisson2d(5, 4))
        return _perturbed(s.NeuralIncompleteCholesky(latent=4, rounds=2)), (
            gr.node,
            gr.edge,
            gr.row,
            gr.col,
            gr.lower,
        )
    if name == "NeuralAMG":
        from pdesurrogates.solvers import gallery
        from pdesurrogates.surrogates._neural_if import matrix_graph

        gr = matrix_graph(gallery.poisson2d(5, 4))
        return _perturbed(s.NeuralAMG(latent=4, rounds=2)), (gr.node, gr.edge, gr.row, gr.col)
    if name == "MultiFidelityNet":
        m = s.MultiFidelityNet(in_dim=3, n_levels=3, low_width=8, corr_width=4)
        return m, (torch.rand(5, 3, generator=g),)
    if name == "CoKrigingGP":
        x_lo = np.linspace(0, 1, 8)[:, None]
        x_hi = x_lo[[0, 3, 5, 7]]

        def f(x):
            return (6 * x - 2) ** 2 * np.sin(12 * x - 4)

        m = s.CoKrigingGP(n_restarts=1).fit(x_lo, 0.5 * f(x_lo) + 10 * x_lo - 5, x_hi, f(x_hi))
        return m, (torch.rand(5, 1, generator=g, dtype=torch.float64),)
    if name == "Ensemble":
        return s.Ensemble([_mgno(0), _mgno(1)]), (torch.randn(2, 1, 8, 8, generator=g),)
    if name == "NormalizedModel":
        m = s.NormalizedModel(
            _mgno(),
            input_normalizer=s.Normalizer(mean=1.0, std=2.0),
            output_normalizer=s.Normalizer(mean=-0.5, std=0.1),
        )
        return m, (torch.randn(2, 1, 8, 8, generator=g),)
    if name == "Normalizer":
        return s.Normalizer(mean=[1.0, 2.0], std=[3.0, 4.0]), (
            torch.randn(2, 2, 4, 4, generator=g),
        )
    raise AssertionError(name)


_CHILD = """
import sys
import pdesurrogates
from safetensors.torch import load_file, save_file
assert 'pdesurrogates.surrogates' not in sys.modules
inputs = load_file(sys.argv[1])
args = [inputs[f"x{i}"] for i in range(len(inputs))]
out = {}
for key, path in (("model", sys.argv[2]), ("run", sys.argv[3])):
    model = pdesurrogates.load(path)
    import torch  # only now: loading needed nothing imported beforehand

    with torch.no_grad():
        out[key] = model(*args).contiguous()
save_file(out, sys.argv[4])
"""


@pytest.mark.parametrize("family", sorted(io.BUILTIN_MODELS))
def test_every_family_loads_in_a_fresh_process(family, tmp_path):
    """The same outputs from a new interpreter, to 1e-5 of the output's scale.

    Not bit for bit: a float32 GEMM may round differently when its buffers are aligned
    differently (the loaded weights are; seen 1.5e-8 apart for the DeepONet). A wrong
    weight, config or import order is off by far more.
    """
    from safetensors.torch import load_file, save_file

    model, inputs = _family(family)
    model.eval()
    run = tmp_path / "run"
    pdesurrogates.save(model, run / "model")
    save_file({f"x{i}": x.contiguous() for i, x in enumerate(inputs)}, str(tmp_path / "in.st"))
    with torch.no_grad():
        expected = model(*inputs)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            str(tmp_path / "in.st"),
            str(run / "model"),
            str(run),
            str(tmp_path / "out.st"),
        ],
        env=_child_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = load_file(str(tmp_path / "out.st"))
    for key in ("model", "run"):
        assert got[key].dtype == expected.dtype
        scale = float(expected.abs().max())
        torch.testing.assert_close(
            got[key], expected, rtol=1e-5, atol=1e-5 * scale, msg=f"{family}: {key}"
        )


# ------------------------------------------------- config.json and weights are checked
def _saved(tmp_path):
    torch.manual_seed(0)
    return pdesurrogates.save(_Affine(n_in=3, n_out=2), tmp_path / "m")


def _rewrite_config(directory, change):
    path = directory / "config.json"
    cfg = json.loads(path.read_text())
    change(cfg)
    path.write_text(json.dumps(cfg))
    return path


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda c: c.update({"class": ["_Affine"]}), "key 'class' must be the model class name"),
        (lambda c: c.update({"config": [1, 2]}), "key 'config' must be the constructor config"),
        (lambda c: c.update({"dtype": ["float32"]}), "key 'dtype' must be null or one of"),
        (lambda c: c.pop("class"), "missing key 'class'"),
        (lambda c: c["config"].update(bias=True), r"unknown key\(s\) \['bias'\] in the _Affine"),
        (lambda c: c.update({"weights_sha256": "xyz"}), "key 'weights_sha256' must be"),
    ],
)
def test_config_is_checked_before_building(tmp_path, change, match):
    path = _rewrite_config(_saved(tmp_path), change)
    with pytest.raises(CheckpointError, match=match) as err:
        pdesurrogates.load(tmp_path / "m")
    assert str(path) in str(err.value)


def test_config_types_follow_the_constructor_annotations(tmp_path):
    from pdesurrogates.surrogates import Ensemble, MgNO, NormalizedModel

    torch.manual_seed(0)
    mgno = MgNO(channels=4, levels=2, layers=1, base_resolution=8)
    pdesurrogates.save(Ensemble([mgno, mgno]), tmp_path / "e")
    path = tmp_path / "e" / "config.json"
    cfg = json.loads(path.read_text())
    cfg["config"]["members"][1]["config"]["channels"] = "wide"
    path.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError) as err:
        pdesurrogates.load(tmp_path / "e")
    msg = str(err.value)
    assert str(path) in msg and "'config.members[1].config.channels' of the MgNO config" in msg
    assert "expected int | Sequence[int], got str 'wide'" in msg
    pdesurrogates.save(NormalizedModel(mgno), tmp_path / "n")
    _rewrite_config(tmp_path / "n", lambda c: c["config"].pop("model"))
    with pytest.raises(CheckpointError, match=r"missing required key\(s\) \['model'\]"):
        pdesurrogates.load(tmp_path / "n")
    _rewrite_config(tmp_path / "n", lambda c: c["config"].update(model=["MgNO"]))
    with pytest.raises(CheckpointError, match=r"'config.model' of the NormalizedModel config"):
        pdesurrogates.load(tmp_path / "n")


@pytest.mark.parametrize("depth", [65, 100_000])
def test_deeply_nested_config_is_corrupt_json(tmp_path, depth):
    directory = _saved(tmp_path)
    path = directory / "config.json"
    text = path.read_text().replace('"n_in": 3', '"n_in": ' + "[" * depth + "]" * depth)
    path.write_text(text)
    with pytest.raises(CheckpointError, match="nested deeper than 64 levels") as err:
        pdesurrogates.load(directory)
    assert str(path) in str(err.value)


def test_oversized_config_is_refused_before_reading(tmp_path):
    from pdesurrogates import _model_checks

    directory = _saved(tmp_path)
    with open(directory / "config.json", "ab") as fh:
        fh.truncate(_model_checks.MAX_CONFIG_BYTES + 1)
    with pytest.raises(CheckpointError, match="larger than the 16777216 bytes"):
        pdesurrogates.load(directory)


def _header(path):
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def _write_weights(directory, header, data, *, rehash=True):
    from pdesurrogates._model_checks import file_sha256

    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path = directory / "weights.safetensors"
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)
    if rehash:  # an edit made consistently: the checksum does not stop it
        _rewrite_config(directory, lambda c: c.update(weights_sha256=file_sha256(path)))
    return path


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda h: h["lin.weight"].update(dtype="I32"), r"'lin.weight' is stored as I32 \(int32\)"),
        (lambda h: h["lin.weight"].update(shape=[3, 2]), r"'lin.weight' has shape \[3, 2\]"),
        (lambda h: h["shift"].update(dtype="F16"), r"'shift'.*F16 \[2\] needs 4 bytes"),
        (lambda h: h.update(extra=dict(h["shift"])), "overlap"),
        (lambda h: h["lin.bias"].update(dtype="XX"), r"'lin.bias' has an unknown dtype"),
        (lambda h: h["lin.bias"].update(data_offsets=[0, 10**12]), "outside the file"),
    ],
)
def test_safetensors_header_must_match_the_model(tmp_path, edit, match):
    directory = _saved(tmp_path)
    header, data = _header(directory / "weights.safetensors")
    edit(header)
    path = _write_weights(directory, header, data)
    with pytest.raises(CheckpointError, match=match) as err:
        pdesurrogates.load(directory)
    assert str(path) in str(err.value)


def test_missing_tensor_is_named(tmp_path):
    from safetensors.torch import load_file, save_file

    from pdesurrogates._model_checks import file_sha256

    directory = _saved(tmp_path)
    path = directory / "weights.safetensors"
    state = load_file(str(path))
    del state["shift"]
    save_file(state, str(path))
    _rewrite_config(directory, lambda c: c.update(weights_sha256=file_sha256(path)))
    with pytest.raises(CheckpointError, match=r"missing: \['shift'\]"):
        pdesurrogates.load(directory)


def test_float64_weights_for_a_float32_model_are_cast_with_a_note(tmp_path, caplog):
    from safetensors.torch import load_file, save_file

    from pdesurrogates._model_checks import file_sha256

    model = _Affine()
    directory = pdesurrogates.save(model, tmp_path / "m")
    path = directory / "weights.safetensors"
    save_file({k: v.double() for k, v in load_file(str(path)).items()}, str(path))
    _rewrite_config(directory, lambda c: c.update(weights_sha256=file_sha256(path)))
    with caplog.at_level("WARNING", logger="pdesurrogates"):
        loaded = pdesurrogates.load(directory)
    assert "3 tensor(s) stored as float64" in caplog.text
    assert loaded.lin.weight.dtype == torch.float32
    assert torch.equal(loaded.lin.weight, model.lin.weight)


def test_checksum_catches_flipped_data_and_old_files_still_load(tmp_path):
    directory = _saved(tmp_path)
    path = directory / "weights.safetensors"
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0x10  # a flipped bit in the data of the last tensor
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="checksum mismatch") as err:
        pdesurrogates.load(directory)
    assert str(path) in str(err.value)
    raw[-3] ^= 0x10
    path.write_bytes(bytes(raw))
    _rewrite_config(directory, lambda c: c.pop("weights_sha256"))  # saved before checksums
    assert torch.equal(pdesurrogates.load(directory).shift, torch.tensor([0.0, 1.0]))


@pytest.mark.parametrize("length", [2**62, 10**8])
def test_oversized_or_truncated_header_is_refused(tmp_path, length):
    directory = _saved(tmp_path)
    path = directory / "weights.safetensors"
    raw = path.read_bytes()
    path.write_bytes(length.to_bytes(8, "little") + raw[8:])
    _rewrite_config(directory, lambda c: c.pop("weights_sha256"))
    with pytest.raises(CheckpointError, match=r"the header declares .* corrupt or truncated"):
        pdesurrogates.load(directory)


def test_a_pickle_in_place_of_the_weights_is_never_unpickled(tmp_path):
    import pickle

    marker = tmp_path / "marker"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    directory = _saved(tmp_path)
    (directory / "weights.safetensors").write_bytes(pickle.dumps(Evil()))
    (directory / "checkpoint.pt").write_bytes(pickle.dumps(Evil()))
    _rewrite_config(directory, lambda c: c.pop("weights_sha256"))
    with pytest.raises(CheckpointError, match=r"weights\.safetensors"):
        pdesurrogates.load(directory)
    assert not marker.exists()
