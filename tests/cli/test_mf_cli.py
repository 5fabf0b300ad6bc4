"""``pdesurrogates mf fit|adapt|study``."""

from __future__ import annotations

import json

import numpy as np
import pytest

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
    capsys.readouterr()
    rc = main(
        [
            "mf", "study", "--model", str(tmp_path / "m"), "--problem", "forrester",
            "--n-samples", "4096", "-o", str(tmp_path / "s.json"),
            "--plot", str(tmp_path / "f.png"),
        ]
    )  # fmt: skip
    assert rc == 0
    row = json.loads((tmp_path / "s.json").read_text())["summary"][0]
    # same samples through surrogate and truth: the 11/4 co-kriging is within a few percent
    assert abs(row["std_rel_error"]) < 0.05
    assert row["wasserstein1"] < 0.2
    assert (tmp_path / "f.png").stat().st_size > 1000


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
