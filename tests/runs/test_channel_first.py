"""One tensor convention from end to end: data -> train -> predict -> evaluate, with the
dataset's channel-first fields going into the model and into ``uq.evaluate`` as they are."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pdesurrogates.datasets import generate_darcy, open_dataset
from pdesurrogates.runs import evaluate_files, predict_run, train_run
from pdesurrogates.uq import load_prediction

SRC = Path(__file__).resolve().parents[2] / "src"
CONFIG = {
    "model": {"channels": 4, "layers": 1, "levels": 2, "projection_channels": 8},
    "training": {"epochs": 1, "batch_size": 4, "lr": 1e-3},
}


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    d = tmp_path_factory.mktemp("chain")
    data = generate_darcy(
        d / "darcy.h5", n_samples=12, resolution=8, seed=2, split=(0.5, 0.25, 0.25),
        progress=False,
    )  # fmt: skip
    run = d / "run"
    record = train_run("mgno", data, run, config=CONFIG, ensemble=2, progress=False)
    pred_file = predict_run(run, data, d / "pred.h5", split="test")
    return data, run, pred_file, record


def _rel_l2(mean: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-sample relative L2 error, by hand (a uniform grid: the weights cancel)."""
    diff = (mean - truth).reshape(len(truth), -1).astype(np.float64)
    return np.linalg.norm(diff, axis=1) / np.linalg.norm(
        truth.reshape(len(truth), -1).astype(np.float64), axis=1
    )


def test_data_train_predict_evaluate(chain):
    data, _, pred_file, record = chain
    assert record["n_train"] == 6 and len(record["histories"]) == 2
    assert all(len(h) == 1 for h in record["histories"])  # one epoch per member
    test = open_dataset(data).split("test")
    u = test.load("u")
    assert u.shape == (3, 1, 8, 8)
    pred = load_prediction(pred_file)
    # the prediction file reads back in the dataset's layout: members, then (N, C, X, Y)
    assert pred.shape == u.shape and pred.samples.shape == (2, *u.shape)
    report = evaluate_files(pred_file, data)
    assert report.meta["split"] == "test" and report.kind == "samples"
    np.testing.assert_allclose(
        report.per_sample["rel_l2"], _rel_l2(np.asarray(pred.mean), u), rtol=1e-5
    )


def test_evaluate_model_prediction_against_load_in_a_fresh_process(chain):
    """``uq.evaluate(model.predict(ds.load("a")), ds.load("u"))``: no reshaping anywhere,
    and the numbers of the prediction-file route."""
    data, run, pred_file, _ = chain
    script = f"""
import json, numpy as np, torch
import pdesurrogates
from pdesurrogates.datasets import open_dataset
from pdesurrogates.uq import evaluate
test = open_dataset({str(data)!r}).split("test")
ens = pdesurrogates.load({str(run)!r})
with torch.no_grad():
    pred = ens.predict(torch.from_numpy(test.load("a")))
report = evaluate(pred, test.load("u"))
print(json.dumps({{"shape": list(pred.shape), "rel_l2": report.per_sample["rel_l2"].tolist(),
                   "crps": float(report.scalars["crps"])}}))
"""
    env = {"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, env=env, timeout=120
    )
    got = json.loads(out.stdout.decode().strip().splitlines()[-1])
    assert got["shape"] == [3, 1, 8, 8]
    ref = evaluate_files(pred_file, data)
    np.testing.assert_allclose(got["rel_l2"], ref.per_sample["rel_l2"], rtol=1e-5)
    assert got["crps"] == pytest.approx(float(ref.scalars["crps"]), rel=1e-5)
