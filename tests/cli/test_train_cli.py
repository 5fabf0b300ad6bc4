"""`pdesurrogates train / evaluate / predict` end to end on a tiny Darcy file."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

import pdesurrogates
from pdesurrogates.cli import main
from pdesurrogates.datasets import open_dataset
from pdesurrogates.training import OperatorConfig
from pdesurrogates.uq import load_prediction, read_prediction_info

CONFIG = """
[model]
channels = 6
layers = 1
projection_channels = 8

[training]
epochs = 2
batch_size = 8
lr = 3e-3
"""


@pytest.fixture(scope="module")
def darcy(tmp_path_factory):
    d = tmp_path_factory.mktemp("darcy")
    assert (
        main(["generate", "darcy", "-o", str(d / "d.h5"), "-n", "30", "-r", "16", "--quiet"]) == 0
    )
    (d / "cfg.toml").write_text(CONFIG)
    return d


@pytest.fixture(scope="module")
def run(darcy):
    out = darcy / "runs" / "mgno"
    assert (
        main(
            [
                "train",
                "mgno",
                "--data",
                str(darcy / "d.h5"),
                "-c",
                str(darcy / "cfg.toml"),
                "-o",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    return out


def test_train_writes_a_complete_run(run):
    record = json.loads((run / "run.json").read_text())
    assert record["input"] == ["a"] and record["target"] == "u"
    assert record["model"]["config"]["base_resolution"] == 16
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    model = pdesurrogates.load(run / "model")
    assert type(model).__name__ == "NormalizedModel"
    assert float(model.input_normalizer.std) > 0  # the file's train statistics


def test_evaluate_report(run, darcy, tmp_path):
    assert main(["evaluate", str(run), "--data", str(darcy / "d.h5"), "-o", str(tmp_path)]) == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    ds = open_dataset(darcy / "d.h5").split("test")
    assert m["n_samples"] == len(ds) == 3
    with (tmp_path / "per_sample.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    l2 = [float(r["rel_l2"]) for r in rows]
    assert m["rel_l2"]["mean"] == pytest.approx(np.mean(l2), rel=1e-5)
    assert m["rel_l2"]["max"] == pytest.approx(max(l2), rel=1e-5)
    # recompute one sample's error by hand from the saved model
    model = pdesurrogates.load(run / "model")
    s = ds[0]
    with torch.no_grad():
        p = model(s["a"][None])[0]  # items are channel-first (1, X, Y)
    expected = float((p - s["u"]).norm() / s["u"].norm())
    assert l2[0] == pytest.approx(expected, rel=1e-4)
    for name in ("best", "median", "worst"):
        assert (tmp_path / f"sample_{name}.png").stat().st_size > 1000
    assert "relative L2" in (tmp_path / "report.md").read_text()


def test_predict_writes_the_uq_prediction_file(run, darcy, tmp_path, capsys):
    out = tmp_path / "pred.h5"
    assert main(["predict", str(run), "--data", str(darcy / "d.h5"), "-o", str(out)]) == 0
    assert "split test" in capsys.readouterr().out  # the default split, said out loud
    info = read_prediction_info(out)
    src = open_dataset(darcy / "d.h5").split("test")
    assert info.fields == ("u",) and info.split == "test" and info.kinds == {"u": "point"}
    assert info.data == str((darcy / "d.h5").resolve())
    np.testing.assert_array_equal(info.source_index, src.indices)
    pred = load_prediction(out)
    model = pdesurrogates.load(run)
    with torch.no_grad():
        expected = model(src[1]["a"][None])[0]  # (1, X, Y): the item is channel-first
    torch.testing.assert_close(torch.as_tensor(pred.mean[1]), expected, atol=1e-6, rtol=1e-5)
    # the output never replaces the data file, even with --overwrite
    data = darcy / "d.h5"
    before = data.stat().st_mtime_ns
    assert main(["predict", str(run), "--data", str(data), "-o", str(data), "--overwrite"]) == 1
    assert "would destroy it" in capsys.readouterr().err.replace("\n", " ")
    assert data.stat().st_mtime_ns == before


def test_ensemble_train_evaluate_predict(darcy, tmp_path):
    run = tmp_path / "ens"
    args = ["train", "mgno", "--data", str(darcy / "d.h5"), "-c", str(darcy / "cfg.toml")]
    assert main([*args, "-o", str(run), "--ensemble", "2", "-q"]) == 0
    ens = pdesurrogates.load(run / "model")
    assert type(ens).__name__ == "Ensemble" and len(ens) == 2
    rep = tmp_path / "rep"
    assert main(["evaluate", str(run), "--data", str(darcy / "d.h5"), "-o", str(rep)]) == 0
    m = json.loads((rep / "metrics.json").read_text())
    assert m["form"] == "samples" and m["split"] == "test"
    assert m["uq"]["crps"] > 0 and 0 <= m["uq"]["miscalibration_area"] <= 1
    assert (rep / "calibration.png").is_file()
    # one H1 in the report: the summary is the evaluator's per-sample mean
    doc = json.loads((rep / "uq_report.json").read_text())
    assert m["rel_h1"]["mean"] == pytest.approx(doc["scalars"]["rel_h1"], rel=1e-12)
    assert "rel_h1" not in m["uq"]
    pred = load_prediction(rep / "predictions.h5")
    src = open_dataset(darcy / "d.h5").split("test")
    with torch.no_grad():
        members = torch.stack([mem(src[2]["a"][None]) for mem in ens.members])[:, 0]
    torch.testing.assert_close(torch.as_tensor(pred.samples[:, 2]), members)


def test_fno_and_resume(darcy, tmp_path, capsys):
    run = tmp_path / "fno"
    cfg = tmp_path / "fno.toml"
    cfg.write_text(
        "[model]\nn_modes = 4\nhidden_channels = 6\nn_layers = 1\n"
        "[training]\nepochs = 1\nbatch_size = 8\n"
    )
    args = ["train", "fno", "--data", str(darcy / "d.h5"), "-c", str(cfg), "-o", str(run), "-q"]
    assert main(args) == 0
    assert main(args) == 1  # the run exists: refuse to overwrite
    assert main([*args, "--resume"]) == 0  # finished run: resuming is a no-op
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
    # resuming with another schedule is refused by name, and the run is left as it was
    cfg.write_text(cfg.read_text().replace("epochs = 1", "epochs = 3"))
    capsys.readouterr()
    assert main([*args, "--resume"]) == 1
    err = capsys.readouterr().err
    assert "--epochs: 1 in the run, 3 asked" in err and "Traceback" not in err
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
    assert json.loads((run / "run.json").read_text())["training"]["epochs"] == 1


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[training]\nlearning_rate = 1\n", "unknown key 'learning_rate' in table 'training'"),
        ("[training]\nepochs = 'ten'\n", "training.epochs = 'ten' has the wrong type"),
        ("[optim]\n", "unknown table"),
        ("[model]\nwidth = 3\n", "unexpected keyword argument 'width'"),
        ("[data]\ninput = 'k'\n", "no field 'k'"),
        ("[model]\nlevels = 9\n", "not divisible"),
    ],
)
def test_bad_config_is_one_clear_error(darcy, tmp_path, capsys, toml, message):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml)
    code = main(
        ["train", "mgno", "--data", str(darcy / "d.h5"), "-c", str(cfg), "-o", str(tmp_path / "r")]
    )
    assert code == 1
    assert message in capsys.readouterr().err.replace("\n", "")


def test_missing_split_and_wrong_resolution(run, darcy, tmp_path, capsys):
    assert (
        main(
            [
                "evaluate",
                str(run),
                "--data",
                str(darcy / "d.h5"),
                "-o",
                str(tmp_path),
                "--split",
                "holdout",
            ]
        )
        == 1
    )
    assert "--split 'holdout': use train, valid, test or all" in capsys.readouterr().err
    other = tmp_path / "d24.h5"
    assert main(["generate", "darcy", "-o", str(other), "-n", "4", "-r", "24", "--quiet"]) == 0
    assert main(["predict", str(run), "--data", str(other), "-o", str(tmp_path / "p.h5")]) == 1
    assert "sizes that" in capsys.readouterr().err.replace("\n", " ")
    assert main(["evaluate", str(tmp_path), "--data", str(other), "-o", str(tmp_path / "r")]) == 1
    assert "not a training run" in capsys.readouterr().err


def test_evaluate_refuses_to_write_over_its_input(run, darcy, capsys):
    data = darcy / "d.h5"
    before = data.read_bytes()
    assert main(["evaluate", str(run), "--data", str(data), "-o", str(data)]) == 1
    err = capsys.readouterr().err.replace("\n", " ")
    assert "would destroy it" in err and "Traceback" not in err
    assert data.read_bytes() == before
    assert main(["evaluate", str(run), "--data", str(data), "-o", str(run)]) == 1
    assert "would destroy it" in capsys.readouterr().err.replace("\n", " ")


@pytest.mark.parametrize("kind", ["mgno", "fno"])
def test_operator_flags_override_the_config(darcy, tmp_path, kind):
    cfg = tmp_path / "c.toml"
    model = "[model]\nn_modes = 4\nhidden_channels = 6\nn_layers = 1\n"
    if kind == "mgno":
        model = "[model]\nchannels = 4\nlayers = 1\nprojection_channels = 8\n"
    cfg.write_text(model + "[training]\nepochs = 5\nlr = 1e-2\n")
    out = tmp_path / "r"
    args = ["train", kind, "--data", str(darcy / "d.h5"), "-c", str(cfg), "-o", str(out)]
    assert main([*args, "--epochs", "1", "--batch-size", "4", "--lr", "2e-3", "-q"]) == 0
    training = json.loads((out / "run.json").read_text())["training"]
    defaults = OperatorConfig()
    assert training["epochs"] == 1 and training["batch_size"] == 4 and training["lr"] == 2e-3
    assert training["grad_clip"] == defaults.grad_clip and training["loss"] == defaults.loss
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1


def test_ensemble_summary_and_no_validation_note(tmp_path, capsys, caplog):
    import logging

    data = tmp_path / "noval.h5"
    assert (
        main(
            ["generate", "darcy", "-o", str(data), "-n", "12", "-r", "16", "--quiet",
             "--split", "0.8,0,0.2"]
        )
        == 0
    )  # fmt: skip
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(CONFIG.replace("epochs = 2", "epochs = 1"))
    args = ["train", "mgno", "--data", str(data), "-c", str(cfg), "-q"]
    capsys.readouterr()
    with caplog.at_level(logging.INFO, logger="pdesurrogates"):
        assert main([*args, "-o", str(tmp_path / "ens"), "--ensemble", "2"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert "trained an ensemble of 2 MGNO on 10 samples" in out
    assert "means over the members" in out
    notes = [r for r in caplog.records if "last epoch" in r.getMessage()]
    assert len(notes) == 1, [r.getMessage() for r in caplog.records]
