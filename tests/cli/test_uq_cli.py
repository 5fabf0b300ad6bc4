"""The ``pdesurrogates uq evaluate`` and ``uq propagate`` commands."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from pdesurrogates import save
from pdesurrogates.cli import main
from pdesurrogates.datasets import DatasetWriter, FieldSpec
from pdesurrogates.io import register_model
from pdesurrogates.uq import Prediction, evaluate, ishigami_indices, save_prediction


@pytest.fixture
def truth(tmp_path):
    rng = np.random.default_rng(0)
    x, y = np.linspace(0, 1, 8), np.linspace(0, 1, 6)
    path = tmp_path / "truth.h5"
    with DatasetWriter(
        path,
        n_samples=10,
        coords={"x": x, "y": y},
        fields={
            "a": FieldSpec(dims=("sample", "x", "y"), role="input"),
            "u": FieldSpec(dims=("sample", "x", "y"), units="m"),
        },
    ) as w:
        u = rng.normal(size=(10, 8, 6)).astype(np.float32)
        for i in range(10):
            w.write(i, {"a": u[i] * 0, "u": u[i]})
        w.finalize(split=(0.6, 0.2, 0.2))
    return path, u


def test_uq_evaluate_samples_file(truth, tmp_path):
    path, u = truth
    rng = np.random.default_rng(1)
    s = (u[None] + rng.normal(size=(6, *u.shape))).astype(np.float32)
    pred = Prediction(None, samples=s)
    save_prediction(tmp_path / "pred.h5", pred, field="u", like=path)
    out = tmp_path / "rep"
    assert main(["uq", "evaluate", str(tmp_path / "pred.h5"), str(path), "-o", str(out)]) == 0
    doc = json.loads((out / "uq_report.json").read_text())
    ref = evaluate(pred, u)
    assert doc["kind"] == "samples" and doc["n_members"] == 6
    assert doc["scalars"]["crps"] == pytest.approx(ref.scalars["crps"], rel=1e-6)
    assert doc["by_level"]["coverage"] == pytest.approx(ref.by_level["coverage"].tolist())
    for name in ("calibration", "pit", "coverage", "error_map", "pred_vs_true"):
        assert (out / f"{name}.png").stat().st_size > 1000


def test_uq_evaluate_gaussian_on_a_split(truth, tmp_path, capsys):
    path, u = truth
    test = u[8:]
    pred = Prediction(test + 0.1, std=np.full(test.shape, 0.5, dtype=np.float32))
    save_prediction(tmp_path / "pg.h5", pred, field="u", like=path)
    code = main(
        [
            "uq",
            "evaluate",
            str(tmp_path / "pg.h5"),
            str(path),
            "--split",
            "test",
            "--levels",
            "0.5,0.9",
            "--no-figures",
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "nll" in text and "gaussian" in text
    # without --split the sample counts differ: a clear one-line error, exit 1
    assert main(["uq", "evaluate", str(tmp_path / "pg.h5"), str(path)]) == 1
    err = capsys.readouterr().err
    assert "--split" in err and "Traceback" not in err


def test_uq_evaluate_bad_arguments(truth, tmp_path, capsys):
    path, _ = truth
    assert main(["uq", "evaluate", str(tmp_path / "missing.h5"), str(path)]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["uq", "evaluate", str(path), str(path), "--levels", "0.5,1.5"]) == 1
    assert "--levels" in capsys.readouterr().err


def _write_toml(path, text):
    path.write_text(text)
    return path


def test_uq_propagate_function_with_sobol(tmp_path):
    toml = _write_toml(
        tmp_path / "d.toml",
        "".join(
            f'[inputs.x{i}]\ndist = "uniform"\nlow = {-math.pi}\nhigh = {math.pi}\n'
            for i in (1, 2, 3)
        ),
    )
    out = tmp_path / "out"
    code = main(
        [
            "uq",
            "propagate",
            "--model",
            "pdesurrogates.uq:ishigami",
            "--inputs",
            str(toml),
            "-n",
            "4096",
            "-o",
            str(out),
            "--sobol",
            "4096",
            "-q",
        ]
    )
    assert code == 0
    doc = json.loads((out / "propagation.json").read_text())
    exact = ishigami_indices()
    assert doc["moments"]["mean"] == pytest.approx(3.5, abs=0.15)  # E = a/2
    assert doc["moments"]["std"] == pytest.approx(math.sqrt(exact["variance"]), rel=0.05)
    sob = json.loads((out / "sobol.json").read_text())
    np.testing.assert_allclose(sob["S1"], exact["S1"], atol=0.05)
    for f in ("propagation.png", "sobol.png", "outputs.npz"):
        assert (out / f).is_file()
    with np.load(out / "outputs.npz") as z:
        assert z["inputs"].shape == (4096, 3) and z["outputs"].shape == (4096,)


@register_model
class UQCliAffine(torch.nn.Module):
    def __init__(self, *, n_in: int = 2):
        super().__init__()
        self.n_in = n_in
        self.lin = torch.nn.Linear(n_in, 1)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[1.0, 2.0]]))
            self.lin.bias.fill_(0.5)

    def get_config(self):
        return {"n_in": self.n_in}

    def forward(self, x):
        return self.lin(x)[:, 0]


def test_uq_propagate_saved_model(tmp_path):
    save(UQCliAffine(), tmp_path / "runs" / "lin" / "model")
    toml = _write_toml(
        tmp_path / "d.toml",
        """
[inputs.a]
dist = "normal"
mean = 1.0
std = 0.5
[inputs.b]
dist = "uniform"
low = 0.0
high = 1.0
""",
    )
    out = tmp_path / "o"
    code = main(
        [
            "uq",
            "propagate",
            "-m",
            str(tmp_path / "runs" / "lin"),
            "-i",
            str(toml),
            "-n",
            "8192",
            "-o",
            str(out),
            "--method",
            "sobol",
            "-q",
        ]
    )
    assert code == 0
    doc = json.loads((out / "propagation.json").read_text())
    # y = a + 2 b + 0.5: mean 2.5, std sqrt(0.25 + 4/12)
    assert doc["moments"]["mean"] == pytest.approx(2.5, abs=2e-3)
    assert doc["moments"]["std"] == pytest.approx(math.sqrt(0.25 + 4 / 12), rel=2e-3)


def test_uq_propagate_bad_inputs(tmp_path, capsys):
    bad = _write_toml(tmp_path / "bad.toml", '[inputs.x]\ndist = "weibullish"\n')
    code = main(
        [
            "uq",
            "propagate",
            "-m",
            "pdesurrogates.uq:ishigami",
            "-i",
            str(bad),
            "-n",
            "100",
            "-o",
            str(tmp_path / "o"),
        ]
    )
    assert code == 1
    assert "unknown distribution" in capsys.readouterr().err
    code = main(
        [
            "uq",
            "propagate",
            "-m",
            str(tmp_path / "nope"),
            "-i",
            str(bad),
            "-n",
            "100",
            "-o",
            str(tmp_path / "o"),
        ]
    )
    assert code == 1
    assert "nope" in capsys.readouterr().err
    broken = _write_toml(tmp_path / "broken.toml", "[inputs.x\n")
    code = main(
        [
            "uq",
            "propagate",
            "-m",
            "pdesurrogates.uq:ishigami",
            "-i",
            str(broken),
            "-n",
            "100",
            "-o",
            str(tmp_path / "o"),
        ]
    )
    assert code == 1
    assert "TOML" in capsys.readouterr().err


def test_uq_evaluate_old_layout_says_how_to_regenerate(truth, tmp_path, capsys):
    path, u = truth
    old = tmp_path / "old.h5"  # a version-1 prediction file: no layout version attribute
    with DatasetWriter(
        old,
        n_samples=10,
        coords={"x": np.linspace(0, 1, 8), "y": np.linspace(0, 1, 6)},
        fields={"u": FieldSpec(dims=("sample", "x", "y"), role="output")},
    ) as w:
        w.write_batch(0, {"u": u})
        w.finalize(splits={"train": np.arange(10)}, extra_attrs={"prediction_of": '["u"]'})
    assert main(["uq", "evaluate", str(old), str(path)]) == 1
    err = capsys.readouterr().err.replace("\n", " ")
    assert "older layout" in err and "pdesurrogates predict" in err and "Traceback" not in err
    # a dataset that is no prediction file at all
    assert main(["uq", "evaluate", str(path), str(path)]) == 1
    assert "not a prediction file" in capsys.readouterr().err


def test_uq_evaluate_uses_the_recorded_split(truth, tmp_path, capsys):
    path, u = truth
    pred = Prediction(u[8:] + 0.1, std=np.full(u[8:].shape, 0.5, dtype=np.float32))
    save_prediction(tmp_path / "p.h5", pred, field="u", like=path, split="test")
    args = ["uq", "evaluate", str(tmp_path / "p.h5"), str(path), "--no-figures"]
    assert main([*args, "-o", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "field u, split test (2 samples)" in out
    doc = json.loads((tmp_path / "r" / "uq_report.json").read_text())
    ref = evaluate(pred, u[8:])
    assert doc["scalars"]["crps"] == pytest.approx(ref.scalars["crps"])
    # tables: every pooled metric with its value, and the coverage of every level
    for metric, value, _, _ in ref.metric_rows():
        assert metric in out and value in out
    assert "Central prediction intervals" in out and "coverage" in out
    # --json prints the report the file holds
    assert main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["scalars"] == doc["scalars"]


def test_uq_propagate_prints_a_table_with_units_and_writes_json(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sim.py").write_text("def f(x):\n    return 2.0 * x[:, 0] + 1.0\n")
    _write_toml(
        tmp_path / "d.toml",
        '[inputs.a]\ndist = "normal"\nmean = 0.0\nstd = 1.0\n'
        '[output]\nname = "T"\nunits = "K"\nlong_name = "peak temperature"\n',
    )
    args = ["uq", "propagate", "-m", "sim.py:f", "-i", "d.toml", "-n", "4096", "-q"]
    assert main(args) == 0  # no -o: the default directory under runs/
    out = capsys.readouterr().out
    doc = json.loads((tmp_path / "runs" / "propagate" / "propagation.json").read_text())
    m = doc["moments"]
    # y = 2 a + 1 with a ~ N(0, 1): mean 1, std 2, skewness 0, excess kurtosis 0
    assert m["mean"] == pytest.approx(1.0, abs=4 * 2 / 64)
    assert m["std"] == pytest.approx(2.0, rel=0.05)
    assert abs(m["excess_kurtosis"]) < 4 * m["se_excess_kurtosis"]
    assert doc["meta"]["output"] == {"name": "T", "units": "K", "long_name": "peak temperature"}
    # the table: the output with its units, named moments with standard errors, quantiles
    assert "peak temperature (K)" in out and "excess_kurtosis" in out
    assert f"{m['mean']:.5g} ± {m['se_mean']:.2g}" in out
    median = doc["quantiles"][doc["quantile_levels"].index(0.5)]
    assert "quantile 50 %" in out and f"{median:.5g}" in out
    assert (tmp_path / "runs" / "propagate" / "propagation.png").stat().st_size > 1000
    # --json prints the file instead of the table
    assert main([*args, "-o", "o2", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (
        printed["moments"]
        == json.loads((tmp_path / "o2" / "propagation.json").read_text())["moments"]
    )
    # an [output] table with a typo is refused, naming the file and the keys it takes
    _write_toml(
        tmp_path / "bad.toml",
        '[inputs.a]\ndist = "normal"\nmean = 0.0\nstd = 1.0\n[output]\nunit = "K"\n',
    )
    assert main(["uq", "propagate", "-m", "sim.py:f", "-i", "bad.toml", "-n", "64"]) == 1
    err = capsys.readouterr().err
    assert "bad.toml" in err and "[output] takes only name, units, long_name" in err
