"""``uq propagate --model RUN``: a run's recorded input names decide the order of the
inputs; a TOML file that names others is refused. Closed form: y = a + 2 b + 0.5."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch

from pdesurrogates import save
from pdesurrogates.cli import main
from pdesurrogates.io import register_model
from pdesurrogates.runs import read_inputs
from pdesurrogates.runs._propagate import recorded_inputs

A = '[inputs.a]\ndist = "normal"\nmean = 1.0\nstd = 0.5\n'
B = '[inputs.b]\ndist = "uniform"\nlow = 0.0\nhigh = 1.0\n'
# y = a + 2 b + 0.5 with a ~ N(1, 0.5²), b ~ U(0, 1)
MEAN, STD = 2.5, math.sqrt(0.25 + 4 / 12)
# the swapped problem, y = b + 2 a + 0.5, that order-only assignment would compute
SWAPPED_MEAN, SWAPPED_STD = 3.0, math.sqrt(1 / 12 + 1.0)


@register_model
class PropagateNamesAffine(torch.nn.Module):
    """``y = x0 + 2 x1 + 0.5``."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 1)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[1.0, 2.0]]))
            self.lin.bias.fill_(0.5)

    def get_config(self):
        return {}

    def forward(self, x):
        return self.lin(x)[:, 0]


@pytest.fixture
def run(tmp_path):
    """A run directory whose run.json records the inputs ["a", "b"]."""
    run = tmp_path / "runs" / "lin"
    save(PropagateNamesAffine(), run / "model")
    (run / "run.json").write_text(json.dumps({"kind": "test", "input": ["a", "b"]}))
    return run


def _propagate(model, toml, out):
    args = ["-m", str(model), "-i", str(toml), "-n", "8192", "-o", str(out)]
    code = main(["uq", "propagate", *args, "--method", "sobol", "-q"])
    if code != 0:
        return code, None
    return code, json.loads((out / "propagation.json").read_text())


@pytest.mark.parametrize("order", ["ab", "ba"])
@pytest.mark.parametrize("where", ["run", "model"])
def test_toml_order_does_not_matter_for_a_run_with_input_names(run, tmp_path, order, where):
    toml = tmp_path / "d.toml"
    toml.write_text(A + B if order == "ab" else B + A)
    model = run if where == "run" else run / "model"  # RUN/model reads RUN/run.json
    code, doc = _propagate(model, toml, tmp_path / "o")
    assert code == 0
    assert doc["moments"]["mean"] == pytest.approx(MEAN, abs=2e-3)
    assert doc["moments"]["std"] == pytest.approx(STD, rel=2e-3)
    with np.load(tmp_path / "o" / "outputs.npz") as z:
        assert z["names"].tolist() == ["a", "b"]  # the model's order


def test_a_function_takes_the_toml_order(tmp_path):
    (tmp_path / "sim.py").write_text("def f(x):\n    return x[:, 0] + 2 * x[:, 1] + 0.5\n")
    toml = tmp_path / "d.toml"
    toml.write_text(B + A)  # order only: b is the first input
    code, doc = _propagate(f"{tmp_path / 'sim.py'}:f", toml, tmp_path / "o")
    assert code == 0
    assert doc["moments"]["mean"] == pytest.approx(SWAPPED_MEAN, abs=2e-3)
    assert doc["moments"]["std"] == pytest.approx(SWAPPED_STD, rel=2e-3)


def test_other_names_are_refused_naming_them(run, tmp_path, capsys):
    toml = tmp_path / "d.toml"
    toml.write_text(A + B.replace("inputs.b", "inputs.c"))
    code, _ = _propagate(run, toml, tmp_path / "o")
    assert code == 1
    err = " ".join(capsys.readouterr().err.split())
    assert f"--model {run} takes the inputs ['a', 'b']" in err
    assert "missing ['b']" in err and "unknown ['c']" in err
    assert not (tmp_path / "o" / "propagation.json").exists()
    toml.write_text(A)
    assert _propagate(run, toml, tmp_path / "o")[0] == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "missing ['b']" in err and "unknown" not in err


def test_read_inputs_reorders_to_the_recorded_names(run, tmp_path):
    toml = tmp_path / "d.toml"
    toml.write_text(B + A)
    assert recorded_inputs(run) == recorded_inputs(run / "model") == ["a", "b"]
    assert recorded_inputs("pdesurrogates.uq:ishigami") is None
    assert list(read_inputs(toml)) == ["b", "a"]
    dists = read_inputs(toml, recorded_inputs(run))
    assert list(dists) == ["a", "b"]
    assert dists["a"].mean() == pytest.approx(1.0) and dists["b"].mean() == pytest.approx(0.5)


def test_inputs_beyond_declared_bounds_warn_once_for_the_whole_sample(tmp_path):
    """Forrester co-kriging declared on [0, 1], x0 ~ U(0, 1.5), 8 batches: one warning
    for the propagation sample's whole range and one for Sobol's, not one per batch;
    inside the box none. Sobol's sample is checked on its own: a normal input whose
    propagation sample stays inside can reach beyond the box in Sobol's many points."""
    from pdesurrogates.runs import propagate_from_files
    from pdesurrogates.solvers.reference import forrester
    from pdesurrogates.surrogates import CoKrigingGP

    p = forrester()
    x_lo = np.linspace(0, 1, 11)[:, None]
    x_hi = x_lo[[0, 4, 6, 10]]
    gp = CoKrigingGP(n_restarts=1).fit(x_lo, p.low(x_lo), x_hi, p.high(x_hi), bounds=p.bounds)
    save(gp, tmp_path / "gp")

    def run(toml: str, out: str, **kw):
        path = tmp_path / f"{out}.toml"
        path.write_text("[inputs.x0]\n" + toml)
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            propagate_from_files(str(tmp_path / "gp"), path, out=tmp_path / out,
                                 progress=False, **kw)  # fmt: skip
        return [str(w.message) for w in record if "declared bounds" in str(w.message)]

    wide = 'dist = "uniform"\nlow = 0.0\nhigh = 1.5\n'
    msgs = run(wide, "o1", n_samples=2048, batch_size=256, sobol_base=64)
    assert len(msgs) == 2, msgs
    x = np.load(tmp_path / "o1" / "outputs.npz")["inputs"]
    assert f"values in [{x.min():g}, {x.max():g}]" in msgs[0] and x.max() > 1.4
    assert run('dist = "uniform"\nlow = 0.0\nhigh = 1.0\n', "o2", n_samples=2048,
               batch_size=256, sobol_base=64) == []  # fmt: skip
    normal = 'dist = "normal"\nmean = 0.5\nstd = 0.2\n'
    msgs = run(normal, "o3", n_samples=16, sobol_base=512, seed=1)
    x = np.load(tmp_path / "o3" / "outputs.npz")["inputs"]
    assert 0 < x.min() and x.max() < 1  # the propagation sample stays inside
    assert len(msgs) == 1 and "outside the declared bounds [0, 1]" in msgs[0], msgs
