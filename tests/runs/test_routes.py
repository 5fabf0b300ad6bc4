"""`pdesurrogates evaluate` is `predict` followed by `uq evaluate`: identical numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import pdesurrogates
from pdesurrogates.cli import main
from pdesurrogates.datasets import open_dataset
from pdesurrogates.uq import evaluate, load_prediction, read_prediction_info

CONFIG = """
[model]
channels = 4
layers = 1
projection_channels = 8

[training]
epochs = 3
batch_size = 8
lr = 3e-3
"""


@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("routes")
    data = d / "d.h5"
    assert main(["generate", "darcy", "-o", str(data), "-n", "24", "-r", "16", "--quiet"]) == 0
    (d / "cfg.toml").write_text(CONFIG)
    run = d / "run"
    args = ["train", "mgno", "--data", str(data), "-c", str(d / "cfg.toml"), "-o", str(run)]
    assert main([*args, "--ensemble", "3", "-q"]) == 0
    return run, data


def test_both_routes_give_identical_metrics(ensemble_run, tmp_path, capsys):
    run, data = ensemble_run
    assert main(["evaluate", str(run), "--data", str(data), "-o", str(tmp_path / "a")]) == 0
    assert "split test" in capsys.readouterr().out
    assert main(["predict", str(run), "--data", str(data), "-o", str(tmp_path / "p.h5")]) == 0
    assert "split test" in capsys.readouterr().out
    # no --field, no --split: the file names its only field and the split it predicted
    code = main(["uq", "evaluate", str(tmp_path / "p.h5"), str(data), "-o", str(tmp_path / "b")])
    assert code == 0
    assert "field u, split test (3 samples)" in capsys.readouterr().out
    a = json.loads((tmp_path / "a" / "uq_report.json").read_text())
    b = json.loads((tmp_path / "b" / "uq_report.json").read_text())
    assert a["kind"] == b["kind"] == "samples" and a["n_members"] == b["n_members"] == 3
    assert a["meta"]["split"] == b["meta"]["split"] == "test"
    for key in ("crps", "rel_l2", "rel_h1", "rmse", "miscalibration_area"):
        assert a["scalars"][key] == b["scalars"][key], key
    assert a["by_level"]["coverage"] == b["by_level"]["coverage"]
    assert a["per_sample"]["rel_l2"] == b["per_sample"]["rel_l2"]
    assert a["per_sample"]["rel_h1"] == b["per_sample"]["rel_h1"]
    # the report's summary is the same evaluator's numbers
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert m["rel_l2"]["mean"] == pytest.approx(a["scalars"]["rel_l2"], rel=1e-12)
    assert m["rel_h1"]["mean"] == pytest.approx(a["scalars"]["rel_h1"], rel=1e-12)
    assert m["uq"]["coverage_90"] == a["by_level"]["coverage"][2]
    assert "predictive form scored: samples" in (tmp_path / "a" / "report.md").read_text()


def test_prediction_file_holds_the_members(ensemble_run, tmp_path):
    run, data = ensemble_run
    assert main(["predict", str(run), "--data", str(data), "-o", str(tmp_path / "p.h5")]) == 0
    info = read_prediction_info(tmp_path / "p.h5")
    assert info.kinds == {"u": "samples"} and info.split == "test"
    pred = load_prediction(tmp_path / "p.h5")
    test = open_dataset(data).split("test")
    assert pred.samples.shape == (3, len(test), 1, 16, 16)  # channel-first, members first
    ens = pdesurrogates.load(run)
    a = torch.from_numpy(test.load("a"))  # (N, 1, X, Y): what the model takes
    with torch.no_grad():
        members = ens.member_outputs(a)
    np.testing.assert_array_equal(pred.samples, members.numpy())
    np.testing.assert_allclose(pred.mean, members.mean(0).numpy(), rtol=1e-6, atol=1e-9)
    # scoring the members by hand gives the file route's CRPS
    y = test.load("u")
    ref = evaluate(pred, y)
    code = main(["uq", "evaluate", str(tmp_path / "p.h5"), str(data), "-o", str(tmp_path / "r")])
    assert code == 0
    doc = json.loads((tmp_path / "r" / "uq_report.json").read_text())
    assert doc["scalars"]["crps"] == ref.scalars["crps"]


def test_all_split_and_a_conflicting_split(ensemble_run, tmp_path, capsys):
    run, data = ensemble_run
    p = tmp_path / "p.h5"
    assert main(["predict", str(run), "--data", str(data), "-o", str(p), "--split", "all"]) == 0
    assert "24 samples of split all" in capsys.readouterr().out
    assert read_prediction_info(p).split == "all"
    assert main(["uq", "evaluate", str(p), str(data), "--split", "test", "--no-figures"]) == 1
    assert "predicts split 'all', not 'test'" in capsys.readouterr().err
    assert main(["uq", "evaluate", str(p), str(data), "--no-figures"]) == 0
    assert "split all (24 samples)" in capsys.readouterr().out
