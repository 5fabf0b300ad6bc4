"""``generate acoustics1d|acoustics2d`` and ``train deeponet`` end to end."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

import pdesurrogates
from pdesurrogates.cli import main
from pdesurrogates.datasets import open_dataset, validate
from pdesurrogates.solvers.reference import modal_wave, pulse_width
from pdesurrogates.surrogates import DeepONet, Ensemble


@pytest.fixture(scope="module")
def tube(tmp_path_factory):
    path = tmp_path_factory.mktemp("acoustics") / "tube.h5"
    code = main(
        [
            "generate",
            "acoustics1d",
            "-o",
            str(path),
            "--n-samples",
            "10",
            "--duration",
            "0.01",
            "--resolution",
            "32",
            "--receivers",
            "0.5;1.25",
            "--split",
            "0.6,0.2,0.2",
            "-q",
        ]
    )
    assert code == 0
    return path


def test_generated_tube_matches_the_exact_solution(tube):
    validate(tube)
    ds = open_dataset(tube)
    assert ds.params["xs"].dist == "uniform" and ds.params["xs"].bounds == (0.6, 1.4)
    assert ds.params["xs"].units == "m"
    with h5py.File(tube, "r") as f:
        p = f["p"][...]
        ir = f["ir"][...]
        xs = f["xs"][...]
        t = f["time"][...]
        x = f["x"][...]
    assert p.shape == (10, 21, 33) and ir.shape == (10, 21, 2)
    assert np.all((xs >= 0.6) & (xs <= 1.4))
    # receivers sit on stored nodes (x = 0.5 and 1.25 m): responses are the field there
    np.testing.assert_allclose(ir[:, :, 0], p[:, :, 8], atol=1e-6)
    np.testing.assert_allclose(ir[:, :, 1], p[:, :, 20], atol=1e-6)
    sigma = pulse_width(500.0)
    for i in range(3):
        exact = modal_wave([2.0], [xs[i]], sigma=sigma, times=t, coords=[x])
        assert np.linalg.norm(p[i] - exact) / np.linalg.norm(exact) < 5e-3


def test_generate_room_2d_and_bad_input(tmp_path, capsys):
    out = tmp_path / "room.h5"
    code = main(
        [
            "generate",
            "acoustics2d",
            "-o",
            str(out),
            "-n",
            "3",
            "--duration",
            "0.005",
            "--size",
            "1.5,1.0",
            "--fmax",
            "400",
            "--resolution",
            "16",
            "--split",
            "0.34,0.33,0.33",
            "-q",
        ]
    )
    assert code == 0
    ds = open_dataset(out)
    assert ds.fields["p"].dims == ("sample", "time", "x", "y")
    assert set(ds.params) == {"xs", "ys"}
    setup = json.loads(ds.attrs["source"])
    assert setup["lengths"] == [1.5, 1.0] and setup["solver_ppw"] >= 20

    bad = [
        (["--receivers", "0.5,0.5;2.0,0.5"], "outside the domain"),
        (["--margin", "0.8"], "margin"),
        (["--receivers", "0.5"], "--receivers"),
        (["--ppw", "1"], "points per wavelength"),
    ]
    for extra, message in bad:
        code = main(
            [
                "generate",
                "acoustics2d",
                "-o",
                str(tmp_path / "bad.h5"),
                "-n",
                "2",
                "--size",
                "1.5,1.0",
                "--duration",
                "0.005",
                "-q",
                *extra,
            ]
        )
        assert code != 0
        assert message in capsys.readouterr().err
        assert not (tmp_path / "bad.h5").exists()


def test_train_deeponet_writes_model_report_and_plots(tube, tmp_path):
    run = tmp_path / "run"
    code = main(
        [
            "train",
            "deeponet",
            "--data",
            str(tube),
            "-o",
            str(run),
            "--epochs",
            "30",
            "--width",
            "16",
            "--depth",
            "2",
            "--latent",
            "8",
            "--points",
            "256",
            "-q",
        ]
    )
    assert code == 0
    model = pdesurrogates.load(run / "model")
    assert isinstance(model, DeepONet) and model.lengths == [2.0]
    assert model.trunk_kind == "separable"  # the default: fast cold impulse responses
    assert model.source_bounds == [[0.6, 1.4]] and model.duration == pytest.approx(0.01)
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(history) == 30
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    # the 1D default peak learning rate, as used and recorded
    assert json.loads((run / "summary.json").read_text())["config"]["training"]["lr"] == 2e-3
    report = json.loads((run / "report.json").read_text())
    summary = report["summary"]
    assert summary["n_sources"] == 2
    assert 0 < summary["rel_l2"] < 2 and summary["peak_normalised_rmse"] > 0
    for name in ("impulse_responses.png", "field_snapshots.png"):
        assert (run / name).stat().st_size > 1000


def test_train_deeponet_ensemble_gives_spread(tube, tmp_path):
    run = tmp_path / "ens"
    code = main(
        [
            "train",
            "deeponet",
            "--data",
            str(tube),
            "-o",
            str(run),
            "--epochs",
            "3",
            "--ensemble",
            "2",
            "--width",
            "8",
            "--depth",
            "1",
            "--latent",
            "4",
            "--points",
            "64",
            "--trunk",
            "joint",
            "-q",
        ]
    )
    assert code == 0
    ens = pdesurrogates.load(run / "model")
    assert isinstance(ens, Ensemble) and len(ens) == 2
    assert all(m.trunk_kind == "joint" for m in ens.members)
    report = json.loads((run / "report.json").read_text())
    assert report["report"]["kind"] == "samples"
    assert report["summary"]["uq"]["crps"] > 0


def test_train_deeponet_reads_a_toml_config_and_flags_override_it(tube, tmp_path, capsys):
    cfg = tmp_path / "deeponet.toml"
    cfg.write_text(
        "[model]\nwidth = 8\ndepth = 1\nlatent = 4\ntrunk = 'joint'\n\n"
        "[training]\nepochs = 4\nn_points = 64\nbatch_size = 3\nlr = 1e-3\n"
    )
    run = tmp_path / "cfg"
    args = ["train", "deeponet", "--data", str(tube), "-o", str(run), "-c", str(cfg)]
    assert main([*args, "--epochs", "2", "--latent", "6", "--no-eval", "-q"]) == 0
    model = pdesurrogates.load(run / "model")
    assert (model.width, model.depth, model.latent, model.trunk_kind) == (8, 1, 6, "joint")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs_run"] == [2]  # the flag beats the file
    training = summary["config"]["training"]
    assert training["n_points"] == 64 and training["lr"] == 1e-3 and training["epochs"] == 2
    assert summary["config"]["model"] == {"width": 8, "depth": 1, "latent": 6, "trunk": "joint"}

    cfg.write_text("[training]\nepoch = 4\n")
    assert main([*args, "-q"]) == 1
    err = capsys.readouterr().err
    assert "deeponet.toml" in err and "'epoch'" in err
    cfg.write_text("[model]\nwidht = 4\n")
    assert main([*args, "-q"]) == 1
    assert "widht" in capsys.readouterr().err


def test_separable_training_step_draws_a_space_time_subgrid(tube):
    """The random sub-grid step pairs predictions and field values entry by entry."""
    import torch

    from pdesurrogates.training import FieldPointStep, load_source_fields
    from pdesurrogates.training._deeponet import query_grid

    ds, info = load_source_fields(tube, "train")
    grid = query_grid(info["coords"], 1)
    step = FieldPointStep(grid, 1, n_points=60, n_times=6)
    n_t, n_x = len(info["coords"]["time"]), len(info["coords"]["x"])
    assert (step.n_t, step.n_x) == (n_t, n_x)
    torch.manual_seed(0)
    model = DeepONet(lengths=[2.0], duration=0.01, width=8, depth=2, latent=4)
    fields = ds.fields_data[:3]
    batch = {"p": fields, "params": {"xs": ds.sources[:3, 0]}}
    torch.manual_seed(5)
    pred, target = step(model, batch)
    assert pred.shape == target.shape == (3, 60)
    # replay the draw: the target is the field at (x_j, t_i), the prediction the operator there
    torch.manual_seed(5)
    tt = torch.randperm(n_t)[:6]
    xx = torch.randint(0, n_x, (10,))
    x = torch.as_tensor(info["coords"]["x"], dtype=torch.float32)[xx]
    t = torch.as_tensor(info["coords"]["time"], dtype=torch.float32)[tt]
    expect = fields[:, 0, tt][:, :, xx].transpose(1, 2).reshape(3, -1)  # channel 0 of (3, 1, T, X)
    torch.testing.assert_close(target, expect, rtol=0, atol=0)
    coords = torch.stack([x[:, None].expand(10, 6), t[None, :].expand(10, 6)], -1)
    with torch.no_grad():
        ref = model(model.encode_source(ds.sources[:3]), coords.reshape(-1, 2))
    torch.testing.assert_close(pred.detach(), ref, rtol=1e-5, atol=1e-6)
    # evaluation mode: the fixed, evenly spread entries
    model.eval()
    pred_eval, target_eval = step(model, batch)
    torch.testing.assert_close(target_eval, fields.reshape(3, -1)[:, step.eval_idx])
    with torch.no_grad():
        ref = model(model.encode_source(ds.sources[:3]), grid[step.eval_idx])
    torch.testing.assert_close(pred_eval.detach(), ref)


def test_train_deeponet_rejects_other_datasets(tmp_path, capsys):
    assert (
        main(["train", "deeponet", "--data", str(tmp_path / "nope.h5"), "-o", str(tmp_path / "r")])
        == 1
    )
    assert "no such dataset" in capsys.readouterr().err
    other = tmp_path / "darcy.h5"
    assert main(["generate", "darcy", "-o", str(other), "-n", "4", "-r", "8", "-q"]) == 0
    assert main(["train", "deeponet", "--data", str(other), "-o", str(tmp_path / "r")]) == 1
    assert "not an acoustics dataset" in capsys.readouterr().err


def test_example_runs_in_smoke_mode(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "examples" / "deeponet_room_acoustics.py"
    run = subprocess.run(
        [sys.executable, str(script), "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["moving_source"]["deeponet_ms_per_source"] > 0
    assert (tmp_path / "moving_source.png").stat().st_size > 1000


@pytest.mark.slow
def test_dask_workers_give_the_same_file(tmp_path):
    args = ["-n", "6", "--duration", "0.01", "--resolution", "16", "-q"]
    assert main(["generate", "acoustics2d", "-o", str(tmp_path / "one.h5"), *args]) == 0
    assert main(["generate", "acoustics2d", "-o", str(tmp_path / "two.h5"), "-w", "2", *args]) == 0
    with h5py.File(tmp_path / "one.h5", "r") as a, h5py.File(tmp_path / "two.h5", "r") as b:
        for name in ("p", "ir", "xs", "ys"):
            np.testing.assert_array_equal(a[name][...], b[name][...])
