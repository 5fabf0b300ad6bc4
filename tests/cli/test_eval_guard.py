"""``evaluate`` and ``uq evaluate`` never destroy earlier outputs and score the predicted rows."""

from __future__ import annotations

import csv
import hashlib
import json

import numpy as np
import pytest

from pdesurrogates.cli import main
from pdesurrogates.datasets import DatasetWriter, FieldSpec, open_dataset
from pdesurrogates.uq import Prediction, evaluate, load_prediction, save_prediction


def _truth(path, u, splits):
    with DatasetWriter(
        path,
        n_samples=len(u),
        coords={"x": np.linspace(0, 1, 8), "y": np.linspace(0, 1, 6)},
        fields={"u": FieldSpec(dims=("sample", "x", "y"), units="m")},
    ) as w:
        w.write_batch(0, {"u": u})
        w.finalize(splits=splits)
    return path


@pytest.fixture
def truth(tmp_path):
    u = np.random.default_rng(0).normal(size=(10, 8, 6)).astype(np.float32)
    splits = {"train": np.arange(8), "test": np.array([8, 9])}
    return _truth(tmp_path / "truth.h5", u, splits), u


@pytest.fixture
def pred_file(truth, tmp_path):
    """A Gaussian prediction of rows 8 and 9 (the test split), recording those rows."""
    path, u = truth
    pred = Prediction(u[8:] + 0.1, std=np.full(u[8:].shape, 0.5, dtype=np.float32))
    save_prediction(tmp_path / "p.h5", pred, field="u", like=path, split="test", data=path,
                    source_index=[8, 9])  # fmt: skip
    return tmp_path / "p.h5", pred


def _hashes(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


@pytest.fixture(scope="module")
def mf_run(tmp_path_factory):
    """An mf fit run with one-value samples, and its 20 test points."""
    d = tmp_path_factory.mktemp("mf")
    args = ["mf", "fit", "--problem", "forrester", "--n-lo", "11", "--n-hi", "4",
            "--n-test", "20", "-o", str(d / "mf2"), "-q"]  # fmt: skip
    assert main(args) == 0
    return d / "mf2"


def test_uq_evaluate_refuses_an_existing_report_unless_overwrite(
    truth, pred_file, tmp_path, capsys
):
    path, _ = truth
    args = ["uq", "evaluate", str(pred_file[0]), str(path), "-o", str(tmp_path / "r")]
    assert main(args) == 0
    report = tmp_path / "r" / "uq_report.json"
    (tmp_path / "r" / "uq_report.json").write_text("{}")  # an edited earlier report
    before = _hashes(tmp_path / "r")
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err.replace("\n", " ")
    assert "already holds uq_report.json" in err and "--overwrite" in err
    assert _hashes(tmp_path / "r") == before
    assert main([*args, "--overwrite"]) == 0
    assert json.loads(report.read_text())["meta"]["n_samples"] == 2


def test_evaluate_refuses_existing_report_files_unless_overwrite(mf_run, tmp_path, capsys):
    args = ["evaluate", str(mf_run), "--data", str(mf_run / "test.h5"), "-o", str(tmp_path / "r")]
    assert main(args) == 0
    before = _hashes(tmp_path / "r")
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err.replace("\n", " ")
    names = "predictions.h5, uq_report.json, metrics.json, per_sample.csv, report.md"
    assert f"already holds {names}" in err and "--overwrite" in err
    assert _hashes(tmp_path / "r") == before
    assert main([*args, "--overwrite"]) == 0
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["n_samples"] == 20


def test_uq_evaluate_compares_the_recorded_rows(truth, pred_file, tmp_path, capsys):
    path, u = truth
    pred = pred_file[1]
    ref = evaluate(pred, u[8:])
    # the same samples in a bigger file with another test split: rows 8 and 9 are scored
    extra = np.random.default_rng(5).normal(size=(2, 8, 6)).astype(np.float32)
    other = _truth(tmp_path / "other.h5", np.concatenate([u, extra]),
                   {"train": np.arange(2, 12), "test": np.array([0, 1])})  # fmt: skip
    args = ["uq", "evaluate", str(pred_file[0]), str(other), "--no-figures", "--json"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["scalars"]["crps"] == pytest.approx(ref.scalars["crps"], rel=1e-6)
    assert doc["scalars"]["rel_l2"] == pytest.approx(ref.scalars["rel_l2"], rel=1e-6)
    # scoring the split of the other file would give another number
    wrong = evaluate(pred, open_dataset(other).split("test").load("u"))
    assert abs(wrong.scalars["crps"] - ref.scalars["crps"]) > 0.1
    # it says that the prediction was made from another file, naming both
    err = err.replace("\n", " ")
    assert "warning:" in err and str(path.resolve()) in err and str(other) in err
    assert str(other) in doc["meta"]["warning"]
    # the file it was predicted from: no warning
    assert main(["uq", "evaluate", str(pred_file[0]), str(path), "--no-figures", "--json"]) == 0
    assert "warning" not in capsys.readouterr().err
    # rows beyond the truth file: refused, naming both files
    small = _truth(tmp_path / "small.h5", u[:5], {"test": np.array([3, 4])})
    assert main(["uq", "evaluate", str(pred_file[0]), str(small)]) == 1
    err = capsys.readouterr().err.replace("\n", " ")
    assert "rows up to 9" in err and "holds 5 samples" in err
    assert str(pred_file[0]) in err and str(small) in err


def test_uq_evaluate_refuses_a_file_as_output_directory(truth, pred_file, capsys):
    path, _ = truth
    before = pred_file[0].read_bytes()
    assert main(["uq", "evaluate", str(pred_file[0]), str(path), "-o", str(pred_file[0])]) == 1
    err = capsys.readouterr().err.replace("\n", " ")
    assert "a file is in the way; the report goes into a directory" in err
    assert "Errno" not in err and "Traceback" not in err
    assert pred_file[0].read_bytes() == before


def test_evaluate_scalar_outputs_scores_every_sample(mf_run, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["evaluate", str(mf_run), "--data", str(mf_run / "test.h5"), "-o", str(out)]) == 0
    mean = np.asarray(load_prediction(out / "predictions.h5").mean, dtype=np.float64)
    y = open_dataset(mf_run / "test.h5").split("test").load("y").astype(np.float64)
    per = np.abs(mean - y) / np.abs(y)
    with open(out / "per_sample.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["position", "sample_index", "rel_l2"]
    assert [float(r["rel_l2"]) for r in rows] == pytest.approx(per, rel=1e-5)
    m = json.loads((out / "metrics.json").read_text())
    pooled = np.linalg.norm(mean - y) / np.linalg.norm(y)
    assert m["rel_l2"]["pooled"] == pytest.approx(pooled, rel=1e-9)
    assert m["rel_l2"]["std"] == pytest.approx(per.std(), rel=1e-5) and m["rel_l2"]["std"] > 0
    assert m["rel_l2"]["median"] == pytest.approx(np.median(per), rel=1e-5)
    assert m["samples"] == {} and m["figures"] == {}
    assert f"rel L2 {pooled:.4g} over all samples" in capsys.readouterr().out.replace("\n", " ")


# --------------------------------------------------------------------------- one report
TINY_MGNO = """
[model]
channels = 4
layers = 1
projection_channels = 8

[training]
epochs = 1
batch_size = 8
"""


@pytest.fixture(scope="module")
def field_run(tmp_path_factory):
    """A tiny two-member MgNO ensemble on Darcy: field outputs, scored as samples."""
    d = tmp_path_factory.mktemp("field")
    data = d / "darcy.h5"
    assert main(["generate", "darcy", "-o", str(data), "-n", "20", "-r", "16", "-q"]) == 0
    (d / "cfg.toml").write_text(TINY_MGNO)
    args = ["train", "mgno", "--data", str(data), "-c", str(d / "cfg.toml"), "-o", str(d / "run"),
            "--ensemble", "2", "-q"]  # fmt: skip
    assert main(args) == 0
    return d / "run", data


def _csv_column(path, name):
    with open(path) as f:
        return np.array([float(r[name]) for r in csv.DictReader(f)])


def _reports_agree(out):
    """Every statistic metrics.json shares with uq_report.json is the same number, and the
    summaries of metrics.json are numpy's of the per-sample values of uq_report.json."""
    m = json.loads((out / "metrics.json").read_text())
    u = json.loads((out / "uq_report.json").read_text())
    close = {"rel": 1e-12, "abs": 0.0}
    for key in ("rel_l2", "rel_h1"):
        if "mean" not in m.get(key, {}):
            continue
        per = np.asarray(u["per_sample"][key])
        assert m[key]["n"] == len(per) == u["n_fields"] == m["n_samples"]
        for stat, f in (("mean", np.mean), ("median", np.median), ("std", np.std),
                        ("min", np.min), ("max", np.max)):  # fmt: skip
            assert m[key][stat] == pytest.approx(f(per), **close), (key, stat)
        assert u["scalars"][key] == pytest.approx(m[key]["mean"], **close), key
        np.testing.assert_allclose(_csv_column(out / "per_sample.csv", key), per, rtol=1e-5)
    if "pooled" in m["rel_l2"]:
        assert m["rel_l2"]["pooled"] == pytest.approx(u["scalars"]["rel_l2_pooled"], **close)
    levels = [round(100 * v) for v in u["levels"]]
    for k, v in m.get("uq", {}).items():
        if k.startswith("coverage_"):
            ref = u["by_level"]["coverage"][levels.index(int(k[9:]))]
        else:
            ref = u["scalars"][k]
        assert v == pytest.approx(ref, **close), k
    per = u["per_sample"].get("rel_l2")
    for s in m["samples"].values():  # best, median, worst: rows of the test split
        assert s["rel_l2"] in per
    return m, u


def test_one_value_samples_have_one_definition_in_both_reports(mf_run, tmp_path):
    """evaluate and uq evaluate (fresh processes) on one-value samples: the same numbers
    for the same statistic in metrics.json and both uq_report.json, and numpy's."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    data = mf_run / "test.h5"
    script = (
        "from pdesurrogates.cli import main\n"
        f"assert main(['evaluate', {str(mf_run)!r}, '--data', {str(data)!r}, '-o', 'ev']) == 0\n"
        f"assert main(['uq', 'evaluate', 'ev/predictions.h5', {str(data)!r}, '-o', 'uq']) == 0\n"
    )
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    m, u = _reports_agree(tmp_path / "ev")
    # oracle: numpy on the prediction file and the truth
    mean = np.asarray(load_prediction(tmp_path / "ev" / "predictions.h5").mean, dtype=np.float64)
    y = open_dataset(data).split("test").load("y").astype(np.float64)
    per = np.abs(mean - y) / np.abs(y)
    np.testing.assert_allclose(u["per_sample"]["rel_l2"], per, rtol=1e-12)
    assert u["scalars"]["rel_l2"] == pytest.approx(per.mean(), rel=1e-12)
    assert u["scalars"]["rel_l2_p90"] == pytest.approx(np.quantile(per, 0.9), rel=1e-12)
    assert m["uq"]["rel_l2_p90"] == pytest.approx(np.quantile(per, 0.9), rel=1e-12)
    assert m["rel_l2"]["median"] == pytest.approx(np.median(per), rel=1e-12)
    pooled = np.linalg.norm(mean - y) / np.linalg.norm(y)
    assert m["rel_l2"]["pooled"] == pytest.approx(pooled, rel=1e-12)
    assert abs(pooled - per.mean()) > 1e-3 * pooled  # the two statistics differ here
    # uq evaluate of the same file: the same report, number for number
    b = json.loads((tmp_path / "uq" / "uq_report.json").read_text())
    assert b["scalars"] == u["scalars"] and b["per_sample"] == u["per_sample"]
    assert b["by_level"] == u["by_level"]


def test_field_outputs_share_every_statistic(field_run, tmp_path, capsys):
    run, data = field_run
    out = tmp_path / "ev"
    assert main(["evaluate", str(run), "--data", str(data), "-o", str(out)]) == 0
    m, u = _reports_agree(out)
    assert u["kind"] == "samples" and "rel_h1" in m and "crps" in m["uq"]
    assert "rel_l2_pooled" not in u["scalars"] and "pooled" not in m["rel_l2"]
    # oracle: numpy's relative L2 of every test sample
    mean = np.asarray(load_prediction(out / "predictions.h5").mean, dtype=np.float64)
    y = open_dataset(data).split("test").load("u").astype(np.float64)
    d = (mean - y).reshape(len(y), -1)
    per = np.linalg.norm(d, axis=1) / np.linalg.norm(y.reshape(len(y), -1), axis=1)
    np.testing.assert_allclose(u["per_sample"]["rel_l2"], per, rtol=1e-5)
    assert main(["uq", "evaluate", str(out / "predictions.h5"), str(data), "-o",
                 str(tmp_path / "uq")]) == 0  # fmt: skip
    b = json.loads((tmp_path / "uq" / "uq_report.json").read_text())
    assert b["scalars"] == u["scalars"] and b["per_sample"] == u["per_sample"]


def _names(folder):
    return {p.name for p in folder.iterdir()}


def test_evaluate_overwrite_leaves_exactly_the_new_report(field_run, mf_run, tmp_path, capsys):
    run, data = field_run
    out = tmp_path / "rep"
    assert main(["evaluate", str(run), "--data", str(data), "-o", str(out)]) == 0
    first = json.loads((out / "metrics.json").read_text())["files"]
    assert set(first) == _names(out)  # the list names every file of the report
    assert {"sample_best.png", "error_map.png", "calibration.png"} <= set(first)
    (out / "notes.txt").write_text("mine")  # files the user put there are kept
    (out / "sample_extra.png").write_bytes(b"mine")
    # another family into the same directory: no sample figures, no error map
    args = ["evaluate", str(mf_run), "--data", str(mf_run / "test.h5"), "-o", str(out)]
    assert main([*args, "--overwrite"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert _names(out) == set(m["files"]) | {"notes.txt", "sample_extra.png"}
    assert not {"sample_best.png", "sample_median.png", "sample_worst.png",
                "error_map.png"} & _names(out)  # fmt: skip
    u = json.loads((out / "uq_report.json").read_text())
    assert set(u["meta"]["files"]) <= set(m["files"]) and "predictions.h5" in m["files"]
    for fig in [*(f for f in m["files"] if f.endswith(".png"))]:
        assert (out / fig).is_file()
    assert (out / "notes.txt").read_text() == "mine"
    # back to the field run: its figures return, the user's files stay
    assert main([*args[:1], str(run), "--data", str(data), "-o", str(out), "--overwrite"]) == 0
    assert _names(out) == set(first) | {"notes.txt", "sample_extra.png"}


def test_uq_evaluate_overwrite_removes_the_figures_it_no_longer_writes(
    truth, pred_file, tmp_path, capsys
):
    path, u = truth
    out = tmp_path / "r"
    assert main(["uq", "evaluate", str(pred_file[0]), str(path), "-o", str(out)]) == 0
    gaussian = json.loads((out / "uq_report.json").read_text())["meta"]["files"]
    assert set(gaussian) == _names(out) and "calibration.png" in gaussian
    (out / "notes.txt").write_text("mine")
    # a point prediction: no calibration, PIT or coverage figure
    save_prediction(tmp_path / "point.h5", Prediction(u[8:] + 0.1), field="u", like=path,
                    split="test", data=path, source_index=[8, 9])  # fmt: skip
    args = ["uq", "evaluate", str(tmp_path / "point.h5"), str(path), "-o", str(out)]
    assert main([*args, "--overwrite"]) == 0
    files = json.loads((out / "uq_report.json").read_text())["meta"]["files"]
    assert files == ["error_map.png", "pred_vs_true.png", "uq_report.json"]
    assert _names(out) == {*files, "notes.txt"}
    assert main([*args, "--overwrite", "--no-figures"]) == 0
    assert _names(out) == {"uq_report.json", "notes.txt"}
    # only plain names in the directory are ever removed
    (tmp_path / "outside.txt").write_text("mine")
    (out / "sub").mkdir()
    (out / "sub" / "a.png").write_text("mine")
    doc = json.loads((out / "uq_report.json").read_text())
    doc["meta"]["files"] += ["../outside.txt", "sub/a.png", "sub", str(tmp_path / "outside.txt")]
    (out / "uq_report.json").write_text(json.dumps(doc))
    assert main([*args, "--overwrite", "--no-figures"]) == 0
    assert (tmp_path / "outside.txt").is_file() and (out / "sub" / "a.png").is_file()


def test_overwrite_never_removes_an_input_or_a_file_no_report_writes(field_run, tmp_path):
    """A listing edited by hand cannot make --overwrite remove the data file the command
    reads, a prediction file it scores, or a file of a kind no report writes."""
    run, data = field_run
    out = tmp_path / "rep"
    out.mkdir()
    mine = out / "mydata.h5"
    mine.write_bytes(data.read_bytes())
    (out / "notes.txt").write_text("mine")
    assert main(["evaluate", str(run), "--data", str(mine), "-o", str(out)]) == 0
    doc = json.loads((out / "metrics.json").read_text())
    doc["files"] += ["mydata.h5", "notes.txt"]
    (out / "metrics.json").write_text(json.dumps(doc))
    before = hashlib.sha256(mine.read_bytes()).hexdigest()
    assert main(["evaluate", str(run), "--data", str(mine), "-o", str(out), "--overwrite"]) == 0
    assert hashlib.sha256(mine.read_bytes()).hexdigest() == before
    assert (out / "notes.txt").read_text() == "mine"
    # uq evaluate: a truth file saved under a figure's name, listed by hand, is its input
    truth = out / "truth.png"
    truth.write_bytes(data.read_bytes())
    doc = json.loads((out / "uq_report.json").read_text())
    doc["meta"]["files"] += ["truth.png"]
    (out / "uq_report.json").write_text(json.dumps(doc))
    pred = out / "predictions.h5"
    args = ["uq", "evaluate", str(pred), str(truth), "-o", str(out), "--overwrite"]
    assert main(args) == 0
    assert truth.is_file() and pred.is_file()
