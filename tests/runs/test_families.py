"""Every family takes one path: run -> ``predict`` -> prediction file -> ``uq evaluate``,
and ``pdesurrogates evaluate`` gives identical numbers (DeepONet, co-kriging, MF-DNN; the
operator ensemble is in test_routes.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import pdesurrogates
from pdesurrogates.cli import main
from pdesurrogates.datasets import open_dataset, validate
from pdesurrogates.runs import FAMILIES, family_of, load_run
from pdesurrogates.uq import load_prediction, read_prediction_info

SRC = Path(__file__).resolve().parents[2] / "src"
DEEPONET = ["--epochs", "2", "--width", "16", "--depth", "2", "--latent", "8", "-q"]


def _routes(run, data, tmp: Path, capsys) -> tuple[dict, dict, Path]:
    """``evaluate`` and ``predict`` + ``uq evaluate`` of ``run`` on ``data``: both reports."""
    assert main(["evaluate", str(run), "--data", str(data), "-o", str(tmp / "a")]) == 0
    assert "split test" in capsys.readouterr().out
    pred = tmp / "p.h5"
    assert main(["predict", str(run), "--data", str(data), "-o", str(pred)]) == 0
    assert "split test" in capsys.readouterr().out
    assert main(["uq", "evaluate", str(pred), str(data), "-o", str(tmp / "b"), "--no-figures"]) == 0
    capsys.readouterr()
    a = json.loads((tmp / "a" / "uq_report.json").read_text())
    b = json.loads((tmp / "b" / "uq_report.json").read_text())
    assert a["kind"] == b["kind"]
    assert a["scalars"] == b["scalars"]
    assert a["by_level"] == b["by_level"]
    assert a["per_sample"] == b["per_sample"]
    assert a["meta"]["split"] == b["meta"]["split"] == "test"
    m = json.loads((tmp / "a" / "metrics.json").read_text())
    assert m["form"] == a["kind"]
    assert f"predictive form scored: {a['kind']}" in (tmp / "a" / "report.md").read_text()
    return a, m, pred


# --------------------------------------------------------------------------- DeepONet
@pytest.fixture(scope="module")
def tube(tmp_path_factory):
    d = tmp_path_factory.mktemp("tube")
    data = d / "a.h5"
    args = ["generate", "acoustics1d", "-o", str(data), "-n", "20", "--fmax", "200"]
    assert main([*args, "--duration", "0.01", "-q"]) == 0
    runs = {}
    for k in (1, 2):
        runs[k] = d / f"deeponet{k}"
        args = ["train", "deeponet", "--data", str(data), "-o", str(runs[k]), *DEEPONET]
        assert main([*args, "--ensemble", str(k), "--no-eval"]) == 0
    return data, runs


@pytest.mark.parametrize("k", [1, 2])
def test_deeponet_routes_agree_and_match_evaluate_deeponet(tube, k, tmp_path, capsys):
    from pdesurrogates.training import evaluate_deeponet

    data, runs = tube
    run = runs[k]
    assert json.loads((run / "run.json").read_text())["kind"] == "deeponet"
    a, m, pred_file = _routes(run, data, tmp_path, capsys)
    assert a["kind"] == ("point" if k == 1 else "samples")
    info = read_prediction_info(pred_file)
    assert info.fields == ("p",) and info.split == "test"
    test = open_dataset(data).split("test")
    pred = load_prediction(pred_file)
    assert pred.shape == (len(test), *test.shape("p"))
    assert pred.shape[1] == 1  # channel-first, like the dataset: (N, 1, T, X)
    np.testing.assert_array_equal(info.source_index, test.indices)
    if k == 2:  # the members are in the file
        assert pred.samples.shape == (2, *pred.shape)
        assert a["n_members"] == 2
    # oracle: the DeepONet evaluator of the training package
    ref = evaluate_deeponet(pdesurrogates.load(run), data)
    assert a["scalars"]["rel_l2"] == pytest.approx(ref["rel_l2"], rel=1e-6)
    assert m["rel_l2"]["mean"] == pytest.approx(ref["rel_l2"], rel=1e-6)


def test_deeponet_model_dir_without_run_json(tube, tmp_path):
    """A run of the Python API (no run.json) is recognised from the model's class."""
    data, runs = tube
    _, record = load_run(runs[2] / "model")
    assert record == {"kind": "deeponet", "target": "p", "ensemble": 2}
    assert family_of(record) is FAMILIES["deeponet"]
    assert (
        main(["predict", str(runs[2] / "model"), "--data", str(data), "-o", str(tmp_path / "p.h5")])
        == 0
    )
    assert read_prediction_info(tmp_path / "p.h5").kinds == {"p": "samples"}


# --------------------------------------------------------------------------- multi-fidelity
@pytest.fixture(scope="module")
def mf_runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("mf")
    common = ["--problem", "forrester", "--n-lo", "11", "--n-hi", "4", "--n-test", "64", "-q"]
    runs = {
        "cokriging": d / "ck",
        "mfdnn": d / "dnn",
    }
    assert main(["mf", "fit", *common, "-o", str(runs["cokriging"])]) == 0
    cfg = d / "mfdnn.toml"  # a short MF-DNN fit
    cfg.write_text("[training]\nadam_steps = 150\nlbfgs_steps = 20\nlm_steps = 10\n")
    common += ["-c", str(cfg)]
    assert (
        main(
            ["mf", "fit", *common, "--method", "mfdnn", "--members", "4", "-o", str(runs["mfdnn"])]
        )
        == 0
    )
    return runs


def _test_points(run: Path) -> tuple[np.ndarray, np.ndarray]:
    ds = open_dataset(run / "test.h5").split("test")
    y = ds.load("y")
    assert y.shape == (len(ds),)  # one number per sample: no grid, no channel axis
    return ds.param_values("x0")[:, None], y


def test_mf_fit_writes_a_run_directory(mf_runs):
    run = mf_runs["cokriging"]
    record = json.loads((run / "run.json").read_text())
    assert record["kind"] == record["method"] == "cokriging"
    assert (record["problem"], record["n_lo"], record["n_hi"], record["n_test"]) == (
        "forrester",
        11,
        4,
        64,
    )
    rep = validate(run / "test.h5")
    assert rep.fields == {"y": ("sample",)} and rep.params == ["x0"] and rep.splits == {"test": 64}
    assert open_dataset(run / "test.h5").params["x0"].bounds == (0.0, 1.0)
    # the test points are the problem's high fidelity
    from pdesurrogates.solvers.reference import forrester

    x, y = _test_points(run)
    np.testing.assert_allclose(y, forrester().high(x), rtol=1e-6, atol=1e-5)
    # pdesurrogates.load takes the run directory
    assert type(pdesurrogates.load(run)).__name__ == "CoKrigingGP"


def test_cokriging_routes_agree_and_match_model_predict(mf_runs, tmp_path, capsys):
    run = mf_runs["cokriging"]
    a, m, pred_file = _routes(run, run / "test.h5", tmp_path, capsys)
    assert a["kind"] == "gaussian"
    pred = load_prediction(pred_file)
    x, y = _test_points(run)
    ref = pdesurrogates.load(run).predict(x)
    assert pred.shape == ref.shape == (len(x),)
    np.testing.assert_allclose(pred.mean, ref.mean, rtol=1e-6)
    np.testing.assert_allclose(pred.std, ref.std, rtol=1e-6)
    # oracle: the relative L2 error of model.predict on the file's points
    mean = np.asarray(ref.mean, dtype=np.float32).astype(np.float64)
    direct = np.linalg.norm(mean - y) / np.linalg.norm(y)
    assert a["scalars"]["rel_l2_pooled"] == pytest.approx(direct, rel=1e-5)
    # ... and the test error mf fit recorded (float64 truth)
    record = json.loads((run / "run.json").read_text())
    assert a["scalars"]["rel_l2_pooled"] == pytest.approx(record["test_rel_l2"], rel=1e-3)
    assert m["model"] == "cokriging"


def test_mfdnn_routes_agree_and_keep_the_members(mf_runs, tmp_path, capsys):
    run = mf_runs["mfdnn"]
    a, _, pred_file = _routes(run, run / "test.h5", tmp_path, capsys)
    assert a["kind"] == "samples"
    pred = load_prediction(pred_file)
    ens = pdesurrogates.load(run)
    x, _ = _test_points(run)
    with torch.no_grad():
        members = ens.member_outputs(torch.as_tensor(x, dtype=torch.float64)).numpy()
    assert pred.samples.shape == members.shape == (len(ens), 64)
    np.testing.assert_array_equal(pred.samples, members.astype(np.float32))
    assert a["n_members"] == len(ens) == json.loads((run / "run.json").read_text())["ensemble"]


def test_predict_in_a_fresh_process(mf_runs, tmp_path):
    """The CLI predicts a multi-fidelity run in a new interpreter (no import-order luck)."""
    run = mf_runs["mfdnn"]
    out = tmp_path / "p.h5"
    cmd = [
        sys.executable,
        "-m",
        "pdesurrogates",
        "predict",
        str(run),
        "--data",
        str(run / "test.h5"),
        "-o",
        str(out),
    ]
    env = {"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    subprocess.run(cmd, check=True, capture_output=True, env=env, timeout=120)
    assert read_prediction_info(out).kinds == {"y": "samples"}


def test_run_directory_feeds_study_and_propagate(mf_runs, tmp_path):
    run = mf_runs["cokriging"]
    args = ["mf", "study", "--model", str(run), "--problem", "forrester", "--n-samples", "1024"]
    assert main([*args, "-o", str(tmp_path / "s")]) == 0
    row = json.loads((tmp_path / "s" / "study.json").read_text())["summary"][0]
    assert abs(row["std_rel_error"]) < 0.05
    (tmp_path / "in.toml").write_text('[inputs.x0]\ndist = "uniform"\nlow = 0.0\nhigh = 1.0\n')
    args = ["uq", "propagate", "--model", str(run), "--inputs", str(tmp_path / "in.toml")]
    assert main([*args, "-n", "256", "-o", str(tmp_path / "prop"), "-q"]) == 0
    assert (tmp_path / "prop" / "propagation.json").is_file()


# --------------------------------------------------------------------------- bad input
def test_a_file_of_another_family_is_refused(mf_runs, tube, tmp_path, capsys):
    data, runs = tube
    ck = mf_runs["cokriging"]
    assert main(["predict", str(ck), "--data", str(data), "-o", str(tmp_path / "p.h5")]) == 1
    err = capsys.readouterr().err
    assert str(data) in err and "cokriging run" in err
    assert "parameters ['x0']" in err and "mf fit --problem" in err
    args = ["evaluate", str(runs[1]), "--data", str(ck / "test.h5"), "-o", str(tmp_path / "r")]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "test.h5" in err and "deeponet run" in err and "acoustics" in err
    assert not (tmp_path / "p.h5").exists()
