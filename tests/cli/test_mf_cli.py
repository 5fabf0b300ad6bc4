"""``pdesurrogates mf fit|adapt|study``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from pdesurrogates import load
from pdesurrogates.cli import main
from pdesurrogates.io import read_config
from pdesurrogates.solvers.reference import forrester


def test_fit_from_npz_then_study(tmp_path, capsys):
    p = forrester()
    x_lo = np.linspace(0, 1, 11)[:, None]
    x_hi = x_lo[[0, 4, 6, 10]]
    np.savez(
        tmp_path / "d.npz",
        x_lo=x_lo,
        y_lo=p.low(x_lo),
        x_hi=x_hi,
        y_hi=p.high(x_hi),
        bounds=p.bounds,
    )
    assert main(["mf", "fit", "--data", str(tmp_path / "d.npz"), "-o", str(tmp_path / "m")]) == 0
    model = load(tmp_path / "m")
    assert type(model).__name__ == "CoKrigingGP"
    assert read_config(tmp_path / "m")["metadata"]["n_hi"] == 4
    # a run directory: the model, run.json; no test points without a --problem
    record = json.loads((tmp_path / "m" / "run.json").read_text())
    assert (record["kind"], record["n_lo"], record["n_hi"]) == ("cokriging", 11, 4)
    assert (tmp_path / "m" / "model" / "config.json").is_file()
    assert not (tmp_path / "m" / "test.h5").exists()
    out, err = capsys.readouterr()
    assert "co-kriging level 1" in err  # the fit log (silenced by -q, see below)
    # a table, not JSON: method, sizes and the fit time, then the files written
    assert "Multi-fidelity fit" in out and "11 / 4" in out and "fit time" in out
    assert f"{record['fit_seconds']:.3g} s" in out
    assert (tmp_path / "m" / "fit.png").stat().st_size > 1000
    rc = main(
        [
            "mf", "study", "--model", str(tmp_path / "m"), "--problem", "forrester",
            "--n-samples", "4096", "-o", str(tmp_path / "s"), "--plot", str(tmp_path / "f.png"),
        ]
    )  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out
    doc = json.loads((tmp_path / "s" / "study.json").read_text())
    row = doc["summary"][0]
    # same samples through surrogate and truth: the 11/4 co-kriging is within a few percent
    assert abs(row["std_rel_error"]) < 0.05
    assert row["wasserstein1"] < 0.2
    assert (tmp_path / "s" / "study.png").stat().st_size > 1000
    assert (tmp_path / "f.png").read_bytes() == (tmp_path / "s" / "study.png").read_bytes()
    # named moments with standard errors; the truth's moments are those of its outputs
    moments = {m["moment"]: m for m in doc["moments"]}
    assert list(moments) == ["mean", "std", "skewness", "excess_kurtosis"]
    truth = _forrester_truth(4096)
    assert moments["mean"]["truth"] == pytest.approx(truth.mean(), rel=1e-9)
    assert moments["excess_kurtosis"]["truth"] == pytest.approx(stats.kurtosis(truth), rel=1e-9)
    assert moments["mean"]["se_truth"] == pytest.approx(truth.std(ddof=1) / 64, rel=1e-9)
    # the printed table names the excess kurtosis and both columns; no JSON on stdout
    assert "excess_kurtosis" in out and "surrogate" in out and "truth" in out
    assert not out.lstrip().startswith("{")
    assert main([*_study_args(tmp_path), "--n-samples", "256", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "s" / "study.json").read_text())
    assert printed["n_samples"] == 256


def _forrester_truth(n):
    from pdesurrogates.uq import sample_inputs

    p = forrester()
    lo, hi = p.bounds[0]
    x = sample_inputs({"x0": stats.uniform(lo, hi - lo)}, n, method="mc", seed=0)
    return p.high(x)


def _study_args(tmp_path):
    return ["mf", "study", "--model", str(tmp_path / "m"), "--problem", "forrester",
            "--n-samples", "4096", "-o", str(tmp_path / "s")]  # fmt: skip


def test_fit_quiet_silences_the_fit_log(tmp_path, capsys, caplog):
    args = ["mf", "fit", "--problem", "forrester", "--n-test", "50", "-o", str(tmp_path / "m")]
    assert main([*args, "-q"]) == 0
    assert "co-kriging level" not in capsys.readouterr().err
    assert not [r for r in caplog.records if "co-kriging level" in r.getMessage()]
    record = json.loads((tmp_path / "m" / "run.json").read_text())
    # the recorded coverage is the evaluator's; calibration itself is tested in tests/surrogates
    assert record["figure"] == "fit.png" and 0.0 <= record["test_coverage_95"] <= 1.0


@pytest.mark.slow
def test_adapt_problem(tmp_path, capsys):
    rc = main(
        ["mf", "adapt", "--problem", "forrester", "--budget", "32", "--costs", "1,4",
         "--n-lo", "6", "--n-hi", "3", "--n-test", "500", "-o", str(tmp_path / "a"), "-q"]
    )  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out
    # a table, not JSON; the same numbers in run.json
    assert "Adaptive multi-fidelity design" in out and not out.lstrip().startswith("{")
    record = json.loads((tmp_path / "a" / "run.json").read_text())
    assert record["spent"] <= 32 and record["iterations"] == len(record["history"]) >= 1
    assert f"{record['spent']:g} / 32" in out
    # every added point cost 1 (low) or 1 + 4 (low and high): the budget adds up
    added = record["spent"] - (6 * 1 + 3 * 4)
    n_new_hi = record["n_hi"] - 3
    assert added == pytest.approx((record["n_lo"] - 6) * 1 + n_new_hi * 4)
    # a run like mf fit's: predict scores the model exactly as run.json says
    assert main(["predict", str(tmp_path / "a"), "--data", str(tmp_path / "a" / "test.h5"),
                 "-o", str(tmp_path / "p.h5")]) == 0  # fmt: skip
    from pdesurrogates.uq import load_prediction

    pred = load_prediction(tmp_path / "p.h5")
    y = forrester().high(np.asarray(_test_inputs(tmp_path / "a" / "test.h5")))
    rel = np.linalg.norm(np.ravel(pred.mean) - y) / np.linalg.norm(y)
    # (the prediction file stores float32: ~1e-7 of |y| moves this 3e-5 error a little)
    assert rel == pytest.approx(record["test_rel_l2"], abs=1e-6)
    assert load(tmp_path / "a") is not None


def _in_fresh_process(*commands, cwd):
    """Run CLI commands in a fresh process (nothing imported or registered before)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    script = "import sys\nfrom pdesurrogates.cli import main\n" + "".join(
        f"assert main({list(map(str, c))!r}) == 0\n" for c in commands
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_fit_auto_chooses_by_cross_validation_and_its_model_loads_anywhere(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    # 5 high-fidelity points: auto weighs AR(1) against NARGP (MF-DNN from 6 points)
    args = ["mf", "fit", "--problem", "forrester", "--n-lo", "12", "--n-hi", "5",
            "--method", "auto", "--n-test", "300", "-q"]  # fmt: skip
    assert main([*args, "-o", "runs/auto"]) == 0
    out = capsys.readouterr().out
    record = json.loads((tmp_path / "runs" / "auto" / "run.json").read_text())
    scores = record["cv_scores"]
    assert record["method"] == "auto" and set(scores) == {"cokriging", "nargp"}
    # the chosen one has the lowest score, near-ties going to the simpler AR(1)
    assert record["chosen"] == record["kind"] in scores
    assert scores[record["kind"]] <= 1.05 * min(scores.values()) + 1e-6
    if record["kind"] == "nargp":
        assert scores["nargp"] < scores["cokriging"] / 1.05
    # the table names the choice and every score
    assert f"auto: chose {record['kind']}" in out
    for kind, v in scores.items():
        assert f"cross-validated error, {kind}" in out and f"{v:.4g}" in out
    assert read_config(tmp_path / "runs" / "auto")["metadata"]["chosen"] == record["kind"]
    # a fresh process predicts the test points with the saved model (the recorded error)
    # and propagates a distribution through it (Forrester's exact mean and std)
    (tmp_path / "d.toml").write_text('[inputs.x0]\ndist = "uniform"\nlow = 0.0\nhigh = 1.0\n')
    _in_fresh_process(
        ["predict", "runs/auto", "--data", "runs/auto/test.h5", "-o", "p.h5"],
        ["uq", "propagate", "--model", "runs/auto", "-i", "d.toml", "-n", "4096", "-q"],
        cwd=tmp_path,
    )
    from pdesurrogates.uq import load_prediction

    pred = load_prediction(tmp_path / "p.h5")
    y = forrester().high(_test_inputs(tmp_path / "runs" / "auto" / "test.h5"))
    rel = np.linalg.norm(np.ravel(pred.mean) - y) / np.linalg.norm(y)
    assert rel == pytest.approx(record["test_rel_l2"], abs=1e-6)  # file: float32
    doc = json.loads((tmp_path / "runs" / "propagate" / "propagation.json").read_text())
    exact = forrester().moments
    assert doc["moments"]["mean"] == pytest.approx(exact["mean"], abs=4 * exact["std"] / 64)
    assert doc["moments"]["std"] == pytest.approx(exact["std"], rel=0.05)


def test_fit_auto_refuses_settings_it_decides(tmp_path, capsys):
    (tmp_path / "c.toml").write_text('[training]\ncriterion = "holdout"\n')
    args = [
        "mf",
        "fit",
        "--problem",
        "forrester",
        "--method",
        "auto",
        "-c",
        str(tmp_path / "c.toml"),
    ]
    assert main([*args, "-o", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err
    assert "--method auto" in err and "criterion" in err
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_fit_auto_with_the_mfdnn_among_the_candidates(tmp_path, capsys):
    (tmp_path / "c.toml").write_text(
        "[training]\nadam_steps = 60\nlbfgs_steps = 10\nlm_steps = 5\nn_members = 2\n"
    )
    args = ["mf", "fit", "--problem", "forrester", "--n-lo", "12", "--n-hi", "6", "--n-test",
            "300", "--method", "auto", "-c", str(tmp_path / "c.toml"), "-q"]  # fmt: skip
    assert main([*args, "-o", str(tmp_path / "m")]) == 0
    record = json.loads((tmp_path / "m" / "run.json").read_text())
    assert set(record["cv_scores"]) == {"cokriging", "nargp", "mfdnn"}
    assert record["cv_scores"]["mfdnn"] is not None  # scored on the same k folds
    assert "cross-validated error, mfdnn" in capsys.readouterr().out
    model = load(tmp_path / "m")
    expected = "CoKrigingGP" if record["kind"] != "mfdnn" else ("Ensemble", "MultiFidelityNet")
    assert type(model).__name__ in expected


def _test_inputs(path):
    from pdesurrogates.datasets import open_dataset

    ds = open_dataset(path)
    return ds.param_values("x0")[:, None]


def test_bad_input(tmp_path, capsys):
    assert main(["mf", "fit", "-o", str(tmp_path / "m")]) == 1
    assert "exactly one of --problem" in capsys.readouterr().err
    assert main(["mf", "fit", "--data", str(tmp_path / "nope.npz"), "-o", str(tmp_path / "m")]) == 1
    assert "no such file" in capsys.readouterr().err
    np.savez(tmp_path / "bad.npz", x_lo=np.zeros((3, 1)))
    assert main(["mf", "fit", "--data", str(tmp_path / "bad.npz"), "-o", str(tmp_path / "m")]) == 1
    assert "missing arrays" in capsys.readouterr().err
    (tmp_path / "text.npz").write_text("x,y\n1,2\n")
    np.save(tmp_path / "one.npy", np.zeros(3))
    for name, says in (("text.npz", "not an .npz archive"), ("one.npy", "a single .npy array")):
        path = tmp_path / name
        assert main(["mf", "fit", "--data", str(path), "-o", str(tmp_path / "m")]) == 1
        err = capsys.readouterr().err
        assert f"{path}: {says}" in err and "pickle" not in err
    assert main(["mf", "fit", "--problem", "nope", "-o", str(tmp_path / "m")]) == 1
    assert "unknown multi-fidelity problem" in capsys.readouterr().err
    args = ["mf", "fit", "--problem", "forrester", "--members", "4", "-o", str(tmp_path / "m")]
    assert main(args) == 1
    assert "--method cokriging takes neither" in capsys.readouterr().err
    (tmp_path / "c.toml").write_text("[training]\nadam_step = 3\n")
    args = [
        "mf",
        "fit",
        "--problem",
        "forrester",
        "--method",
        "mfdnn",
        "-c",
        str(tmp_path / "c.toml"),
    ]
    assert main([*args, "-o", str(tmp_path / "m")]) == 1
    assert "unknown setting 'adam_step'" in capsys.readouterr().err
    assert main(["mf", "adapt", "--problem", "forrester", "--costs", "a,b"]) == 1
    assert "--costs" in capsys.readouterr().err
