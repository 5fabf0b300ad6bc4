"""Step models through the one chain: data -> train -> predict (a rollout) -> one prediction
file -> `uq evaluate` with per-step errors.

The data are smooth periodic fields translated by 1/16 of the domain per time step
(``u(x, y, t) = f(x - t / (16 dt), y)``), written at any resolution through the array
importer; the numbers checked are those of :func:`rollout` and :func:`rollout_rel_l2`
computed directly from the saved run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

import pdesurrogates
from pdesurrogates.cli import main
from pdesurrogates.datasets import TimePairs, from_xarray, open_dataset
from pdesurrogates.errors import DatasetError, RolloutError
from pdesurrogates.runs import evaluate_files, predict_run, train_run
from pdesurrogates.surrogates import rollout
from pdesurrogates.uq import load_prediction
from pdesurrogates.uq.metrics import rollout_rel_l2, time_to_threshold

N, NT, DT = 10, 7, 0.1
FNO_CFG = {
    "model": {"n_modes": 4, "hidden_channels": 8, "n_layers": 2},
    "training": {"epochs": 2, "batch_size": 16, "lr": 5e-3},
}
MGNO_CFG = {
    "model": {"channels": 6, "levels": 2, "layers": 1, "padding_mode": "circular"},
    "training": {"epochs": 1, "batch_size": 16, "lr": 5e-3},
}


def shifting_series(path, *, nx=16, times=None, n=N, seed=0):
    """A pdesurrogates-h5 file of translating periodic fields u (sample, time, x, y)."""
    rng = np.random.default_rng(seed)
    t = np.arange(NT) * DT if times is None else np.asarray(times, dtype=np.float64)
    x = np.arange(nx) / nx
    a, b, c = rng.normal(size=(3, n, 1, 1, 1))
    s = (t / (16 * DT))[None, :, None, None]  # the shift, in units of the domain
    X, Y = x[None, None, :, None], x[None, None, None, :]
    u = 1.0 + a * np.sin(2 * np.pi * (X - s)) + b * np.cos(2 * np.pi * Y)
    u = u + c * np.sin(2 * np.pi * (X - s + Y))
    data = xr.Dataset(
        {"u": (("sample", "time", "x", "y"), u.astype(np.float32), {"units": "m/s"})},
        coords={"time": ("time", t, {"units": "s"}), "x": x, "y": x},
    )
    return from_xarray(data, {"u": "state"}, path=path, split=(0.6, 0.2, 0.2))


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    d = tmp_path_factory.mktemp("series")
    data = shifting_series(d / "u.h5")
    train_run("fno", data, d / "fno", config=FNO_CFG, history=2, progress=False)
    return d, data


def _direct(run, data, split="test", steps=None, k=2):
    """Rollout and per-step errors computed directly from the saved run."""
    pairs = TimePairs(open_dataset(data).split(split), "u", history=k)
    truth = torch.from_numpy(pairs.trajectories())
    steps = pairs.horizon if steps is None else steps
    pred = rollout(pdesurrogates.load(run), truth[:, :, :k], steps)
    return pred, truth[:, :, k : k + steps], pairs.times[k : k + steps]


_SCRIPT = """
import sys
from pdesurrogates.cli import main
data, run, pred = sys.argv[1:4]
assert main(["train", "fno", "-d", data, "-o", run, "-c", sys.argv[4], "--history", "2",
             "--quiet"]) == 0
assert main(["predict", run, "-d", data, "-o", pred]) == 0
print("=== report ===")
assert main(["uq", "evaluate", pred, data, "--json"]) == 0
print("=== evaluate ===")
assert main(["evaluate", run, "-d", data, "-o", sys.argv[5]]) == 0
"""

_TOML = """
[model]
n_modes = 4
hidden_channels = 8
n_layers = 2

[training]
epochs = 2
batch_size = 16
lr = 5e-3
"""


def test_train_predict_evaluate_in_a_fresh_process_matches_the_direct_rollout(tmp_path):
    data = shifting_series(tmp_path / "u.h5")
    (tmp_path / "cfg.toml").write_text(_TOML)
    run, pred_file = tmp_path / "run", tmp_path / "pred.h5"
    src = str(Path(pdesurrogates.__file__).parents[1])
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(data), str(run), str(pred_file),
         str(tmp_path / "cfg.toml"), str(tmp_path / "report")],
        capture_output=True, text=True, timeout=600,
        env={"PYTHONPATH": src, "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    printed, summary = done.stdout.split("=== report ===", 1)[1].split("=== evaluate ===")
    report = json.loads(printed)
    pred, truth, times = _direct(run, data)
    assert pred.shape == (2, 1, NT - 2, 16, 16)  # 2 test trajectories, 5 states after 2
    direct = rollout_rel_l2(pred, truth, reduction="none")
    np.testing.assert_allclose(report["by_step"]["rel_l2"], direct.mean(0), rtol=1e-5)
    np.testing.assert_allclose(report["per_sample"]["rel_l2_by_step"], direct, rtol=1e-5)
    np.testing.assert_allclose(report["by_step"]["time"], np.arange(2, NT) * DT, rtol=1e-12)
    want = time_to_threshold(direct.mean(0).numpy(), 0.1, times=times)
    got = report["scalars"]["time_to_10pct"]
    assert (got is None and np.isinf(want)) or got == pytest.approx(want)
    # the prediction file holds the rollout at the predicted times of the data
    ds = open_dataset(pred_file)
    assert ds.fields["u"].dims == ("sample", "time", "x", "y")
    np.testing.assert_allclose(ds.coords["time"], np.arange(2, NT) * DT)
    np.testing.assert_allclose(load_prediction(pred_file).mean, pred.numpy(), atol=1e-6)
    assert report["meta"]["split"] == "test" and report["n_fields"] == 2
    _check_run_report(tmp_path / "report", summary, direct.mean(0).numpy(), times)


def test_steps_shorten_the_rollout_and_beyond_the_horizon_is_refused(series, capsys):
    d, data = series
    out = predict_run(d / "fno", data, d / "three.h5", steps=3, split="valid")
    report = evaluate_files(out, data, figures=False)
    pred, truth, times = _direct(d / "fno", data, split="valid", steps=3)
    np.testing.assert_allclose(report.step_times, times)
    np.testing.assert_allclose(
        report.by_step["rel_l2"], rollout_rel_l2(pred, truth, reduction="mean"), rtol=1e-5
    )
    capsys.readouterr()
    assert main(["uq", "evaluate", str(out), str(data)]) == 0  # the rich table
    shown = capsys.readouterr().out
    assert "Relative L2 along the trajectory" in shown and "steps_to_10pct" in shown
    first = f"{report.by_step['rel_l2'][0]:.5g}"
    assert any(r.startswith("│ 1 ") and first in r for r in shown.splitlines())  # step 1
    with pytest.raises(ValueError, match=r"horizon is 5 states after the first 2 .* at most"):
        predict_run(d / "fno", data, d / "long.h5", steps=6)
    assert not (d / "long.h5").exists()
    code = main(["predict", str(d / "fno"), "-d", str(data), "-o", str(d / "l.h5"), "--steps",
                 "6"])  # fmt: skip
    assert code != 0
    err = capsys.readouterr().err
    assert "--steps 6" in err and "horizon is 5 states" in err and "--steps 5" in err


def test_an_ensemble_keeps_its_members(series, tmp_path):
    _, data = series
    train_run("fno", data, tmp_path / "ens", config=FNO_CFG, history=2, ensemble=2,
              epochs=1, progress=False)  # fmt: skip
    out = predict_run(tmp_path / "ens", data, tmp_path / "p.h5", steps=2)
    got = load_prediction(out)
    assert got.kind == "samples" and got.samples.shape == (2, 2, 1, 2, 16, 16)
    ens = pdesurrogates.load(tmp_path / "ens")
    u0 = torch.from_numpy(open_dataset(data).split("test").load("u")[:, :, :2])
    for i, member in enumerate(ens.members):  # each member rolls out its own trajectory
        np.testing.assert_allclose(got.samples[i], rollout(member, u0, 2).numpy(), atol=1e-6)
    np.testing.assert_allclose(got.mean, got.samples.mean(0), atol=1e-6)
    report = evaluate_files(out, data, figures=False)
    assert report.kind == "samples" and report.by_step["rel_l2"].shape == (2,)


def test_nan_during_the_rollout_stops_predict_naming_the_step(series, tmp_path):
    d, data = series
    model = pdesurrogates.load(d / "fno")
    with torch.no_grad():  # outputs ~1e29: finite once, overflowing when fed back
        model.output_normalizer.std.mul_(1e30)
    pdesurrogates.save(model, tmp_path / "run" / "model")
    (tmp_path / "run" / "run.json").write_text((d / "fno" / "run.json").read_text())
    with pytest.raises(RolloutError, match=r"diverged at step 2 of 5") as err:
        predict_run(tmp_path / "run", data, tmp_path / "nan.h5")
    assert err.value.step == 2
    assert not (tmp_path / "nan.h5").exists()


def test_a_different_time_step_or_a_steady_file_is_refused(series, tmp_path):
    d, _ = series
    halved = shifting_series(tmp_path / "dt.h5", times=np.arange(NT) * DT / 2)
    with pytest.raises(DatasetError, match=r"time step 0.05, but the step model .* 0.1"):
        predict_run(d / "fno", halved, tmp_path / "p.h5")
    steady = xr.Dataset({"u": (("sample", "x", "y"), np.ones((4, 8, 8), np.float32))})
    flat = from_xarray(steady, {"u": "target"}, path=tmp_path / "s.h5", split=(0.5, 0, 0.5))
    with pytest.raises(DatasetError, match="no field 'u' with a time axis"):
        predict_run(d / "fno", flat, tmp_path / "q.h5")
    two = xr.Dataset(
        {"u": (("sample", "time", "x", "y", "component"), np.ones((5, NT, 8, 8, 2), "f4"))},
        coords={"time": np.arange(NT) * DT},
    )
    vector = from_xarray(two, {"u": "state"}, path=tmp_path / "v.h5", split=(0.6, 0, 0.4))
    with pytest.raises(DatasetError, match=r"has 2 channel.* per state, .* predicts 1"):
        predict_run(d / "fno", vector, tmp_path / "v_pred.h5")


def test_non_uniform_time_is_refused_naming_file_and_field_or_resampled_on_request(
    tmp_path, capsys
):
    t = np.array([0.0, 0.1, 0.2, 0.35, 0.4, 0.5, 0.6])  # not uniform; 7 times 0..0.6
    data = shifting_series(tmp_path / "nu.h5", times=t)
    with pytest.raises(DatasetError) as err:
        train_run("fno", data, tmp_path / "r0", config=FNO_CFG, history=2, progress=False)
    capsys.readouterr()
    code = main(["train", "fno", "-d", str(data), "-o", str(tmp_path / "r1"), "--history", "2"])
    printed = capsys.readouterr().err
    assert code != 0
    for msg in (str(err.value), " ".join(printed.split())):
        assert f"{data}, field 'u'" in msg and "'time' is not uniform" in msg
        assert "--resample" in msg
    run = tmp_path / "run"
    record = train_run("fno", data, run, config=FNO_CFG, history=2, resample=True,
                       progress=False)  # fmt: skip
    assert record["time_series"]["resampled"] is True
    assert record["time_series"]["dt"] == pytest.approx(0.1)
    with pytest.raises(DatasetError, match=f"{data}, field 'u'.*not uniform"):
        predict_run(run, data, tmp_path / "p.h5")
    out = predict_run(run, data, tmp_path / "p.h5", resample=True)
    report = evaluate_files(out, data, figures=False)
    # compared with the truth interpolated onto the uniform times 0.2 .. 0.6
    pairs = TimePairs(open_dataset(data).split("test"), "u", history=2, resample=True)
    truth = torch.from_numpy(pairs.trajectories())
    pred = rollout(pdesurrogates.load(run), truth[:, :, :2], 5)
    np.testing.assert_allclose(report.step_times, np.linspace(0.2, 0.6, 5), atol=1e-12)
    np.testing.assert_allclose(
        report.by_step["rel_l2"],
        rollout_rel_l2(pred, truth[:, :, 2:], reduction="mean"),
        rtol=1e-5,
    )


def test_mgno_trained_at_16_rolls_out_on_a_32_grid(tmp_path):
    data16 = shifting_series(tmp_path / "u16.h5", nx=16)
    data32 = shifting_series(tmp_path / "u32.h5", nx=32)
    run = tmp_path / "mgno"
    train_run("mgno", data16, run, config=MGNO_CFG, history=2, progress=False)
    out = predict_run(run, data32, tmp_path / "p32.h5")
    got = load_prediction(out)
    assert got.mean.shape == (2, 1, NT - 2, 32, 32) and np.isfinite(got.mean).all()
    report = evaluate_files(out, data32, figures=False)
    assert report.by_step["rel_l2"].shape == (NT - 2,)
    assert np.isfinite(report.by_step["rel_l2"]).all()


def _check_run_report(out, summary: str, direct, times):
    """`pdesurrogates evaluate` on a step-model run: per-step errors in metrics.json,
    report.md and the summary line, and time-snapshot sample figures."""
    metrics = json.loads((out / "metrics.json").read_text())
    steps = metrics["by_step"]
    np.testing.assert_allclose(steps["rel_l2"], direct, rtol=1e-5)
    np.testing.assert_allclose(steps["time"], times, rtol=1e-12)
    hit = time_to_threshold(direct, 0.1, times=times)
    n_hit = time_to_threshold(direct, 0.1)
    assert steps["time_to_10pct"] == (None if np.isinf(hit) else pytest.approx(hit))
    assert steps["steps_to_10pct"] == (None if np.isinf(n_hit) else n_hit)
    assert json.loads((out / "uq_report.json").read_text())["by_step"]["rel_l2"] == steps["rel_l2"]
    line = " ".join(summary.split())  # the summary line names the time to 10 %
    if np.isinf(hit):
        assert "below 10 % over all 5 steps of the rollout" in line
    else:
        assert f"exceeds 10 % at time {hit:.4g} (step {n_hit:.0f} of 5)" in line
    # report.md: the per-step table, one row per state (5 <= 10 rows), and the figure
    md = (out / "report.md").read_text()
    assert "## Error along the rollout" in md and "![rollout error](rollout_error.png)" in md
    for i, (t, e) in enumerate(zip(times, direct, strict=True)):
        assert f"| {i + 1} | {t:.6g} | {float(f'{e:.5g}'):.5g} |" in md
    # the sample figures show time snapshots instead of being skipped
    assert set(metrics["figures"]) == {"best", "median", "worst"}
    for name in {*metrics["figures"].values(), "rollout_error.png"}:
        assert (out / name).stat().st_size > 5000


def test_uq_evaluate_draws_the_rollout_error_against_the_files_time(series, tmp_path):
    from pdesurrogates.runs import time_quantity

    d, data = series
    assert time_quantity(open_dataset(data)).label == "time (s)"  # the file's units
    out = predict_run(d / "fno", data, tmp_path / "p.h5", steps=3)
    assert main(["uq", "evaluate", str(out), str(data), "-o", str(tmp_path / "uq")]) == 0
    assert (tmp_path / "uq" / "rollout_error.png").stat().st_size > 5000
    assert not (tmp_path / "uq" / "error_map.png").exists()  # no 2-D map of a trajectory


def test_snapshot_figure_shows_truth_prediction_and_error_at_labelled_times():
    from pdesurrogates._figures import Quantity
    from pdesurrogates.runs import plot_snapshots

    rng = np.random.default_rng(0)
    truth, pred = rng.random((2, 5, 6, 4))
    times = 0.2 + 0.1 * np.arange(5)
    fig = plot_snapshots(
        truth, pred, times, target=Quantity("u", units="m/s", long_name="velocity"),
        time=Quantity("time", units="s"), sample=3, split="test",
    )  # fmt: skip
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert len(panels) == 9  # 3 snapshots (first, middle, last) x truth, prediction, error
    titles = [ax.get_title() for ax in panels]
    assert titles[:3] == ["truth, time = 0.2 s", "prediction, time = 0.2 s",
                          "absolute error, time = 0.2 s"]  # fmt: skip
    assert titles[3].endswith("time = 0.4 s") and titles[6].endswith("time = 0.6 s")
    for k, j in enumerate([0, 2, 4]):  # images are drawn (y, x): the transpose
        np.testing.assert_array_equal(panels[3 * k].get_images()[0].get_array(), truth[j].T)
        np.testing.assert_array_equal(panels[3 * k + 1].get_images()[0].get_array(), pred[j].T)
        err = panels[3 * k + 2].get_images()[0].get_array()
        np.testing.assert_allclose(err, np.abs(pred[j] - truth[j]).T)
    bars = [ax.get_ylabel() for ax in fig.axes if not ax.get_images()]
    assert bars.count("velocity (m/s)") == 3  # truth and prediction share one per row
    assert bars.count("|prediction − truth| (m/s)") == 3
    assert "sample 3, test split" in fig.get_suptitle()
