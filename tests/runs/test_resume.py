"""`--resume` continues the run as it was trained: settings that change the model, the
data or the schedule are refused naming each (run's value, asked value) and nothing is
written; the settings a resumed run may change are applied and recorded in run.json with
the history of resumes. The library functions that train into a run directory take the
same guard as the commands."""

from __future__ import annotations

import hashlib
import json

import pytest
from safetensors.torch import load_file

from pdesurrogates.cli import main
from pdesurrogates.errors import TrainingError
from pdesurrogates.runs import train_run
from pdesurrogates.training import train_deeponet

DON = ["--epochs", "1", "--width", "8", "--depth", "1", "--latent", "4", "--no-eval", "-q"]
MODEL = {"channels": 4, "layers": 1, "projection_channels": 8}


def _hashes(directory):
    """Every file under ``directory`` (relative path -> sha256)."""
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _refused(args, capsys, *phrases):
    capsys.readouterr()
    assert main(args) == 1
    err = " ".join(capsys.readouterr().err.split())
    for phrase in phrases:
        assert phrase in err, err
    return err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("resume")
    tube, tube2, darcy = d / "tube.h5", d / "tube2.h5", d / "darcy.h5"
    for path, n in ((tube, "6"), (tube2, "8")):
        args = ["generate", "acoustics1d", "-o", str(path), "--n-samples", n, "--duration",
                "0.01", "--resolution", "16", "--split", "0.5,0.25,0.25", "-q"]  # fmt: skip
        assert main(args) == 0
    assert main(["generate", "darcy", "-o", str(darcy), "-n", "6", "-r", "16", "-q"]) == 0
    return tube, tube2, darcy


def test_deeponet_resume_refuses_other_settings_and_records_a_true_one(files, tmp_path, capsys):
    tube, tube2, _ = files
    run = tmp_path / "don"
    args = ["train", "deeponet", "--data", str(tube), "-o", str(run), *DON]
    assert main(args) == 0, capsys.readouterr()
    first = json.loads((run / "run.json").read_text())
    before = _hashes(run)
    cases = {
        ("--width", "16"): "--width: 8 in the run, 16 asked",
        ("--seed", "5"): "--seed: 0 in the run, 5 asked",
        ("--ensemble", "2"): "--ensemble: 1 in the run, 2 asked",
        ("--points", "64"): "--points: 2048 in the run, 64 asked",
        ("--trunk", "joint"): '--trunk: not set (the default) in the run, "joint" asked',
        ("--epochs", "3"): "--epochs: 1 in the run, 3 asked (the run's onecycle",
        ("--max-seconds", "60"): "--max-seconds: not set (the default) in the run, 60.0",
    }
    for extra, phrase in cases.items():
        err = _refused([*args, "--resume", *extra], capsys, str(run / "run.json"), phrase,
                       "Omit them", "choose a new -o")  # fmt: skip
        assert "Traceback" not in err
        assert _hashes(run) == before, extra
        assert not list(run.glob("member_*"))
    # several differences are named together, the data file too
    other = [*args[:3], str(tube2), *args[4:], "--resume", "--lr", "0.01"]
    phrases = [
        f"--data: {json.dumps(str(tube.resolve()))} in the run",
        "--data (train sources): 3 in the run, 4 asked",
        "--lr: 0.002 in the run, 0.01",
    ]
    _refused(other, capsys, *phrases)
    assert _hashes(run) == before
    # the run's own settings, given or omitted: it continues (done: nothing to add)
    assert main([*args, "--resume"]) == 0
    assert main(["train", "deeponet", "--data", str(tube), "-o", str(run), "--resume", "-q",
                 "--no-eval"]) == 0  # fmt: skip
    record = json.loads((run / "run.json").read_text())
    assert record["training"] == first["training"] and record["kind"] == "deeponet"
    assert [r["epochs_done"] for r in record["resumes"]] == [[1], [1]]
    assert [r["changed"] for r in record["resumes"]] == [{}, {}]
    # a finished run has nothing left to train: its model is kept
    assert _hashes(run)["model/weights.safetensors"] == before["model/weights.safetensors"]


def test_operator_resume_refuses_other_settings(files, tmp_path, capsys):
    _, _, darcy = files
    cfg, cfg6 = tmp_path / "c.toml", tmp_path / "c6.toml"
    text = "[model]\nchannels = {}\nlayers = 1\n\n[training]\nepochs = 1\nbatch_size = 4\n"
    cfg.write_text(text.format(4))
    cfg6.write_text(text.format(6))
    run = tmp_path / "mgno"
    args = ["train", "mgno", "--data", str(darcy), "-c", str(cfg), "-o", str(run), "-q"]
    assert main(args) == 0, capsys.readouterr()
    before = _hashes(run)
    assert "model/weights.safetensors" in before
    cases = [
        ([*args[:5], str(cfg6), *args[6:]], "[model] channels: [4, 4, 4] in the run, [6, 6, 6]"),
        ([*args, "--seed", "4"], "--seed: 0 in the run, 4 asked"),
        ([*args, "--ensemble", "2"], "--ensemble: 1 in the run, 2 asked"),
        ([*args, "--batch-size", "2"], "--batch-size: 4 in the run, 2 asked"),
        ([*args, "--epochs", "2"], "--epochs: 1 in the run, 2 asked (the run's onecycle"),
        (["train", "fno", *args[2:]], 'the model (train mgno|fno): "mgno" in the run, "fno"'),
    ]
    for argv, phrase in cases:
        _refused([*argv, "--resume"], capsys, str(run / "run.json"), phrase)
        assert _hashes(run) == before, argv
    # without --config the run's settings are used; the record says it was resumed
    assert main(["train", "mgno", "--data", str(darcy), "-o", str(run), "--resume", "-q"]) == 0
    record = json.loads((run / "run.json").read_text())
    assert record["training"]["epochs"] == 1 and record["model"]["config"]["channels"] == [4] * 3
    assert record["resumes"][0]["epochs_done"] == [1] and record["resumes"][0]["changed"] == {}


def _weights(run):
    return load_file(run / "model" / "weights.safetensors")


def test_a_constant_rate_run_takes_more_epochs_and_records_them(files, tmp_path):
    """Without a scheduler, more epochs (and a time budget) only decide when the run
    stops: resumed for one more epoch it ends with the weights of an uninterrupted
    two-epoch run, and run.json records the epochs used and the change."""
    _, _, darcy = files
    config = {"model": MODEL, "training": {"epochs": 1, "batch_size": 4, "scheduler": None}}
    run, whole = tmp_path / "run", tmp_path / "whole"
    train_run("mgno", darcy, run, config=config, progress=False)
    record = train_run("mgno", darcy, run, resume=True, epochs=2, progress=False)
    train_run("mgno", darcy, whole, config=config, epochs=2, progress=False)
    saved = json.loads((run / "run.json").read_text())
    assert saved["training"]["epochs"] == 2 == record["training"]["epochs"]
    assert saved["resumes"][-1]["epochs_done"] == [1]
    assert saved["resumes"][-1]["changed"] == {"training.epochs": [1, 2]}
    assert [h["epoch"] for h in saved["histories"][0]] == [1, 2]
    w_run, w_whole = _weights(run), _weights(whole)
    assert w_run.keys() == w_whole.keys()
    assert all(bool((w_run[k] == w_whole[k]).all()) for k in w_run)
    # a time budget too; the model's settings still may not change
    train_run("mgno", darcy, run, resume=True, config=None, progress=False, epochs=2)
    with pytest.raises(TrainingError, match=r"--seed: 0 in the run, 3 asked"):
        train_run("mgno", darcy, run, resume=True, seed=3, progress=False)
    cfg = {**config, "training": {**config["training"], "epochs": 2, "max_time": 600.0}}
    train_run("mgno", darcy, run, resume=True, config=cfg, progress=False)
    saved = json.loads((run / "run.json").read_text())
    assert saved["training"]["max_time"] == 600.0
    assert saved["resumes"][-1]["changed"] == {"training.max_time": [None, 600.0]}
    assert len(saved["resumes"]) == 3


def test_train_deeponet_takes_the_run_guard(files, tmp_path):
    """The library function refuses a run directory holding a run as the command does,
    and continues one only with resume=True and the run's settings."""
    tube, _, _ = files
    out = tmp_path / "don"
    kw = dict(epochs=1, width=8, depth=1, latent=4, progress=False, evaluate=False)
    train_deeponet(tube, out, **kw)
    assert json.loads((out / "run.json").read_text())["kind"] == "deeponet"
    before = _hashes(out)
    with pytest.raises(TrainingError, match=r"already holds a run .*run\.json.*resume=True"):
        train_deeponet(tube, out, **kw)
    with pytest.raises(TrainingError, match=r"--width: 8 in the run, 16 asked"):
        train_deeponet(tube, out, **{**kw, "width": 16}, resume=True)
    assert _hashes(out) == before
    _, summary = train_deeponet(tube, out, resume=True, progress=False, evaluate=False)
    assert summary["config"]["model"] == {"width": 8, "depth": 1, "latent": 4}
    assert len(json.loads((out / "run.json").read_text())["resumes"]) == 1


def test_train_run_takes_the_run_guard(files, tmp_path):
    _, _, darcy = files
    config = {"model": MODEL, "training": {"epochs": 1, "batch_size": 4}}
    out = tmp_path / "run"
    train_run("mgno", darcy, out, config=config, progress=False)
    before = _hashes(out)
    with pytest.raises(TrainingError, match=r"already holds a run"):
        train_run("fno", darcy, out, config={"training": {"epochs": 1}}, progress=False)
    assert _hashes(out) == before
