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
