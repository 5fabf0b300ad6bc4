"""`pdesurrogates train mgno|fno` on a time series: a step model trained from the CLI on a
tiny Navier-Stokes file, then rolled out from the saved run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import pdesurrogates
from pdesurrogates.cli import main
from pdesurrogates.datasets import TimePairs, open_dataset
from pdesurrogates.errors import DatasetError
from pdesurrogates.runs import predict_run, train_run
from pdesurrogates.surrogates import rollout
from pdesurrogates.uq import load_prediction
from pdesurrogates.uq.metrics import rollout_rel_l2

CONFIG = """
[model]
channels = 8
levels = 2
layers = 1
padding_mode = "circular"

[training]
epochs = 6
batch_size = 8
lr = 5e-3
scheduler = "cosine"
"""


@pytest.fixture(scope="module")
def ns(tmp_path_factory):
    d = tmp_path_factory.mktemp("ns")
    args = ["generate", "navier-stokes", "-o", str(d / "ns.h5"), "-n", "6", "-r", "16"]
    assert main([*args, "-T", "2", "--n-times", "11", "--seed", "1", "--quiet"]) == 0
    (d / "cfg.toml").write_text(CONFIG)
    return d


def test_train_mgno_on_a_time_series_from_the_cli_and_roll_out(ns):
    out = ns / "run"
    args = ["train", "mgno", "-d", str(ns / "ns.h5"), "-o", str(out), "-c", str(ns / "cfg.toml")]
    assert main([*args, "--history", "2", "--unroll", "2", "--quiet"]) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["time_series"] == {
        "field": "w", "history": 2, "steps": 1, "unroll": 2, "dt": 0.2, "horizon": 9,
        "resampled": False,
    }  # fmt: skip
    assert record["model"]["config"]["in_channels"] == 2
    assert record["model"]["config"]["padding_mode"] == "circular"
    model = pdesurrogates.load(out)
    valid = TimePairs(open_dataset(ns / "ns.h5").split("valid"), "w", history=2)
    truth = torch.from_numpy(valid.trajectories())
    pred = rollout(model, truth[:, :, :2], 5, horizon=valid.horizon)
    err = rollout_rel_l2(pred, truth[:, :, 2:7])
    # trained: the error of the first predicted state is well below that of predicting 0
    assert float(err[0]) < 0.5
    with pytest.raises(ValueError, match="horizon is 9 states"):
        rollout(model, truth[:, :, :2], 10, horizon=valid.horizon)
    # predict rolls the step model out over the rest of the time axis: the same numbers
    got = load_prediction(predict_run(out, ns / "ns.h5", ns / "pred.h5", split="valid"))
    np.testing.assert_allclose(got.mean[:, :, :5], pred.numpy(), atol=1e-6)
    assert got.mean.shape[2] == valid.horizon


def test_train_fno_teacher_forcing_through_the_runs_api(ns, tmp_path):
    cfg = {"model": {"n_modes": 4, "hidden_channels": 8, "n_layers": 2}, "training": {
        "epochs": 2, "batch_size": 8, "lr": 5e-3}}  # fmt: skip
    record = train_run("fno", ns / "ns.h5", tmp_path / "fno", config=cfg, progress=False)
    assert record["time_series"]["history"] == 1 and record["time_series"]["unroll"] == 1
    assert record["summary"]["valid_rel_l2"] < 1.0


def test_history_on_steady_data_is_refused(tmp_path):
    assert main(["generate", "darcy", "-o", str(tmp_path / "d.h5"), "-n", "6", "-r", "16",
                 "--quiet"]) == 0  # fmt: skip
    with pytest.raises(DatasetError, match="need a field with a time axis"):
        train_run("mgno", tmp_path / "d.h5", tmp_path / "r", history=2, progress=False)
