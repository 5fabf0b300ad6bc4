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
         "--n-lo", "6", "--n-hi", "3", "-o", str(tmp_path / "a")]
    )  # fmt: skip
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["spent"] <= 32 and out["iterations"] >= 1
    assert load(tmp_path / "a") is not None


def test_bad_input(tmp_path, capsys):
    assert main(["mf", "fit", "-o", str(tmp_path / "m")]) == 1
    assert "exactly one of --problem" in capsys.readouterr().err
    assert main(["mf", "fit", "--data", str(tmp_path / "nope.npz"), "-o", str(tmp_path / "m")]) == 1
    assert "no such file" in capsys.readouterr().err
    np.savez(tmp_path / "bad.npz", x_lo=np.zeros((3, 1)))
    assert main(["mf", "fit", "--data", str(tmp_path / "bad.npz"), "-o", str(tmp_path / "m")]) == 1
    assert "missing arrays" in capsys.readouterr().err
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
