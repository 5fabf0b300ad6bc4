"""Every `pdesurrogates train ...` refuses a directory that already holds a run, and
`train dcdm` refuses training vectors made with other settings; nothing is overwritten.

`--resume` continues the run as it was trained: settings that change the model, the
data or the schedule are refused naming each (run's value, asked value) and nothing is
written; the settings a resumed run may change are applied and recorded in run.json with
the history of resumes. The library functions that train into a run directory take the
same guard as the commands."""

from __future__ import annotations

import hashlib
import json

import h5py
import numpy as np
import pytest
from safetensors.torch import load_file

from pdesurrogates.cli import main
from pdesurrogates.errors import CheckpointError, DatasetError, TrainingError
from pdesurrogates.runs import train_run
from pdesurrogates.solvers import gallery
from pdesurrogates.solvers.reference import forrester
from pdesurrogates.training import train_deeponet

DCDM = ["train", "dcdm", "--grid", "8", "--samples", "12", "--lanczos", "10", "--epochs", "1",
        "--width", "2", "-q"]  # fmt: skip


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
    err = " ".join(capsys.readouterr().err.split())  # as one line, however it was wrapped
    for phrase in phrases:
        assert phrase in err, err
    return err


@pytest.fixture(scope="module")
def tube(tmp_path_factory):
    path = tmp_path_factory.mktemp("tube") / "tube.h5"
    args = ["generate", "acoustics1d", "-o", str(path), "--n-samples", "6", "--duration",
            "0.01", "--resolution", "16", "--split", "0.5,0.25,0.25", "-q"]  # fmt: skip
    assert main(args) == 0
    return path


def test_train_deeponet_refuses_an_existing_run(tube, tmp_path, capsys):
    run = tmp_path / "don"
    args = ["train", "deeponet", "--data", str(tube), "-o", str(run), "--epochs", "1",
            "--width", "8", "--depth", "1", "--latent", "4", "--no-eval", "-q"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr()
    assert (run / "run.json").is_file() and (run / "model" / "config.json").is_file()
    before = _hashes(run)
    # again, with other settings and as an ensemble: refused, nothing replaced or added
    for extra in ([], ["--seed", "7"], ["--ensemble", "2"]):
        _refused([*args, *extra], capsys, f"{run} already holds a run", "--resume")
        assert _hashes(run) == before
        assert not list(run.glob("member_*"))


def test_train_dcdm_twice_is_refused(tmp_path, capsys):
    run = tmp_path / "dcdm"
    assert main([*DCDM, "-o", str(run)]) == 0, capsys.readouterr()
    before = _hashes(run)
    assert "ritz.h5" in before and "model/config.json" in before
    for extra in ([], ["--seed", "3"], ["--grid", "16"], ["--boundary", "smoke"]):
        _refused([*DCDM, *extra, "-o", str(run)], capsys, str(run / "model" / "config.json"))
        assert _hashes(run) == before


def test_train_dcdm_reuses_ritz_vectors_only_of_the_same_settings(tmp_path, capsys):
    first = tmp_path / "first"
    assert main([*DCDM, "-o", str(first)]) == 0, capsys.readouterr()
    # a run directory left with its training vectors but no model (an interrupted run)
    run = tmp_path / "left"
    run.mkdir()
    (run / "ritz.h5").write_bytes((first / "ritz.h5").read_bytes())
    ritz = _hashes(run)
    cases = {
        ("--grid", "16"): "grid [8, 8] (asked: [16, 16])",
        ("--boundary", "smoke"): "problem dirichlet_box (asked: smoke_domain)",
        ("--samples", "20"): "samples 12 (asked: 20)",
        ("--lanczos", "11"): "lanczos 10 (asked: 11)",
        ("--seed", "5"): "seed 0 (asked: 5)",
    }
    for extra, mismatch in cases.items():
        _refused([*DCDM, *extra, "-o", str(run)], capsys, str(run / "ritz.h5"), mismatch)
        assert _hashes(run) == ritz
    # the same settings: the file is reused as it is, and the model is the first run's
    assert main([*DCDM, "-o", str(run)]) == 0
    assert "reusing the training vectors" in capsys.readouterr().out
    assert _hashes(run)["ritz.h5"] == ritz["ritz.h5"]
    w0 = (first / "model" / "weights.safetensors").read_bytes()
    assert (run / "model" / "weights.safetensors").read_bytes() == w0
    # a file without the generation record cannot be checked: refused, not reused
    old = tmp_path / "old"
    old.mkdir()
    (old / "ritz.h5").write_bytes((first / "ritz.h5").read_bytes())
    with h5py.File(old / "ritz.h5", "r+") as f:
        del f.attrs["source"]
    before = _hashes(old)
    _refused([*DCDM, "-o", str(old)], capsys, str(old / "ritz.h5"), "records no generation")
    assert _hashes(old) == before


def test_train_dcdm_refuses_a_data_file_without_training_vectors(tmp_path, capsys):
    darcy = tmp_path / "darcy.h5"
    assert main(["generate", "darcy", "-o", str(darcy), "-n", "4", "-r", "16", "-q"]) == 0
    before = hashlib.sha256(darcy.read_bytes()).hexdigest()
    out = tmp_path / "runs" / "dcdm"
    args = [*DCDM, "--grid", "16", "--data", str(darcy), "-o", str(out)]
    err = _refused(args, capsys, f"{darcy}: no field 'r'", "['a', 'u']")
    assert "KeyError" not in err
    assert not out.exists()  # refused before the run directory is made
    assert hashlib.sha256(darcy.read_bytes()).hexdigest() == before
    # the library function says the same
    from pdesurrogates.surrogates import ConjugateDirectionNet
    from pdesurrogates.training import train_dcdm

    prob = gallery.dirichlet_box((16, 16))
    with pytest.raises(DatasetError, match="no field 'r'"):
        train_dcdm(ConjugateDirectionNet(dim=2, width=2), prob, str(darcy), epochs=1)
    # a file of training vectors of another grid is named too
    ritz = tmp_path / "ritz8.h5"
    assert main([*DCDM, "-o", str(tmp_path / "r8")]) == 0
    ritz.write_bytes((tmp_path / "r8" / "ritz.h5").read_bytes())
    err = _refused([*DCDM, "--grid", "16", "--data", str(ritz), "-o", str(out)], capsys,
                   str(ritz), "grid [8, 8] (asked: [16, 16])", "omit --data")  # fmt: skip
    assert "delete the file" not in err  # the user's input: never advised to delete it
    assert not out.exists()


@pytest.mark.parametrize("option", ["--samples", "--lanczos"])
def test_train_dcdm_counts_must_be_positive(option, tmp_path, capsys):
    out = tmp_path / "runs" / "dcdm"
    args = [*DCDM, option, "0", "-o", str(out)]
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert option in err and "greater than or equal to 1" in err
    assert "n_samples" not in err and "m must" not in err
    assert not out.exists()
    assert main(["train", "dcdm", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "per side (Dirichlet box)" not in help_text
    assert "Training grid cells per side (of the --boundary domain)" in help_text


def _mf_data(tmp_path):
    p = forrester()
    x_lo = np.linspace(0, 1, 9)[:, None]
    x_hi = x_lo[[0, 4, 8]]
    path = tmp_path / "d.npz"
    np.savez(path, x_lo=x_lo, y_lo=p.low(x_lo), x_hi=x_hi, y_hi=p.high(x_hi), bounds=p.bounds)
    return ["--data", str(path)]


@pytest.mark.parametrize(
    "command",
    [
        ["train", "vcycle", "--grid", "8", "--steps", "1", "--coarse-cells", "16", "-q"],
        ["train", "neural-ic", "--matrices", "1", "--sizes", "4,5", "--steps", "0",
         "--init-steps", "1", "-q"],
        ["train", "neural-amg", "--matrices", "1", "--sizes", "6,7", "--steps", "0", "-q"],
        ["mf", "fit", "--method", "cokriging", "-q"],
    ],
    ids=["vcycle", "neural-ic", "neural-amg", "mf-fit"],
)  # fmt: skip
def test_other_trainers_refuse_an_existing_run(command, tmp_path, capsys):
    run = tmp_path / "run"
    args = [*command, *(_mf_data(tmp_path) if command[0] == "mf" else []), "-o", str(run)]
    assert main(args) == 0, capsys.readouterr()
    before = _hashes(run)
    assert before
    err = _refused(args, capsys, f"{run} already holds a run", "choose another -o")
    assert "--resume" not in err  # these commands cannot continue a run
    assert _hashes(run) == before
    assert not list(tmp_path.glob("*.lock")) and not list(run.glob("*.lock"))


@pytest.mark.parametrize("command", ["vcycle", "dcdm"])
def test_a_file_in_the_way_and_a_folder_of_other_things(command, tmp_path, capsys):
    """A file as -o is named; a command that saves its model as the directory itself
    (vcycle, neural-ic, neural-amg) refuses a folder with other things in it, which the
    save would replace; dcdm writes into OUTPUT/model and keeps them."""
    args = {"vcycle": ["train", "vcycle", "--grid", "8", "--steps", "1", "--coarse-cells",
                       "16", "-q"], "dcdm": DCDM}[command]  # fmt: skip
    afile = tmp_path / "afile"
    afile.write_text("keep")
    err = _refused([*args, "-o", str(afile)], capsys, f"-o {afile}: a file is in the way")
    assert "Errno" not in err and afile.read_text() == "keep"
    folder = tmp_path / "proj"
    (folder / "other_run").mkdir(parents=True)
    (folder / "other_run" / "run.json").write_text("{}")
    (folder / "notes.txt").write_text("keep")
    before = _hashes(folder)
    if command == "vcycle":
        _refused([*args, "-o", str(folder)], capsys, "is not empty (notes.txt, other_run)")
        assert _hashes(folder) == before
    else:
        assert main([*args, "-o", str(folder)]) == 0
        assert all(_hashes(folder)[k] == v for k, v in before.items())


def test_mf_fit_writes_under_the_run_lock(tmp_path, capsys):
    """mf fit checks for a run before fitting and writes under the run's lock: a second
    command writing the same directory is named, and nothing of this one is written."""
    from pdesurrogates._files import WriteLock

    run = tmp_path / "mf"
    run.mkdir()
    args = ["mf", "fit", "--method", "cokriging", "-q", *_mf_data(tmp_path), "-o", str(run)]
    with WriteLock(run / "run.json", command="another mf fit"):
        _refused(args, capsys, "another mf fit")
    assert sorted(p.name for p in run.iterdir()) == []
    assert main(args) == 0 and (run / "run.json").is_file()


def test_train_mgno_and_fno_refuse_an_existing_run(tmp_path, capsys):
    data = tmp_path / "d.h5"
    assert main(["generate", "darcy", "-o", str(data), "-n", "6", "-r", "16", "-q"]) == 0
    cfg = tmp_path / "c.toml"
    cfg.write_text("[model]\nchannels = 4\nlayers = 1\n\n[training]\nepochs = 1\nbatch_size = 4\n")
    run = tmp_path / "mgno"
    args = ["train", "mgno", "--data", str(data), "-c", str(cfg), "-o", str(run), "-q"]
    assert main(args) == 0, capsys.readouterr()
    before = _hashes(run)
    # a FNO into the MgNO's directory is refused the same way
    for kind in ("mgno", "fno"):
        _refused([*args[:1], kind, *args[2:]], capsys, f"{run} already holds a run", "--resume")
        assert _hashes(run) == before


# --------------------------------------------------------------------------- --resume
DON = ["--epochs", "1", "--width", "8", "--depth", "1", "--latent", "4", "--no-eval", "-q"]
MODEL = {"channels": 4, "layers": 1, "projection_channels": 8}


@pytest.fixture(scope="module")
def files(tube, tmp_path_factory):
    """The tube (6 sources), another tube (8) and a small Darcy file."""
    d = tmp_path_factory.mktemp("resume")
    tube2, darcy = d / "tube2.h5", d / "darcy.h5"
    args = ["generate", "acoustics1d", "-o", str(tube2), "--n-samples", "8", "--duration",
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
    # the early-stopping patience may change on resume, and the record says so
    cfg.write_text(text.format(4) + "patience = 5\n")
    assert main([*args, "--resume"]) == 0
    record = json.loads((run / "run.json").read_text())
    assert record["training"]["patience"] == 5
    assert record["resumes"][1]["changed"] == {"training.patience": [None, 5]}


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


def test_a_run_without_its_record_is_recorded_only_once_its_checkpoint_agrees(files, tmp_path):
    """An interrupted run of an older version holds its checkpoint but no run.json: a
    resume with other settings is refused by the checkpoint and writes no record (a
    record of the wrong settings would then refuse the right ones); the right ones
    continue it and record it."""
    tube, _, _ = files
    out = tmp_path / "don"
    kw = dict(epochs=1, width=8, depth=1, latent=4, progress=False, evaluate=False)
    train_deeponet(tube, out, **kw)
    for name in ("run.json", "summary.json"):
        (out / name).unlink()
    before = _hashes(out)
    with pytest.raises(CheckpointError, match="checkpoint was written for a DeepONet with another"):
        train_deeponet(tube, out, **{**kw, "width": 16}, resume=True)
    assert not (out / "run.json").exists() and _hashes(out) == before
    _, summary = train_deeponet(tube, out, **kw, resume=True)
    assert summary["epochs_run"] == [1]
    record = json.loads((out / "run.json").read_text())
    assert record["training"]["model"] == {"width": 8, "depth": 1, "latent": 4}


def test_train_run_takes_the_run_guard(files, tmp_path):
    _, _, darcy = files
    config = {"model": MODEL, "training": {"epochs": 1, "batch_size": 4}}
    out = tmp_path / "run"
    train_run("mgno", darcy, out, config=config, progress=False)
    before = _hashes(out)
    with pytest.raises(TrainingError, match=r"already holds a run"):
        train_run("fno", darcy, out, config={"training": {"epochs": 1}}, progress=False)
    assert _hashes(out) == before


def test_a_toml_run_without_a_scheduler_says_none(files, tmp_path, capsys):
    """TOML has no None: ``scheduler = "none"`` is a constant rate, recorded as null, so
    the run may take more epochs on resume; an unknown schedule is refused before the
    run directory is made, naming the file and the choices."""
    _, _, darcy = files
    cfg = tmp_path / "cfg.toml"
    model = "\n".join(f"{k} = {v}" for k, v in MODEL.items())
    cfg.write_text(
        f'[model]\n{model}\n[training]\nepochs = 1\nbatch_size = 4\nscheduler = "none"\n'
    )
    run = tmp_path / "run"
    args = ["train", "mgno", "--data", str(darcy), "-c", str(cfg), "-o", str(run), "-q"]
    assert main(args) == 0, capsys.readouterr().err
    assert json.loads((run / "run.json").read_text())["training"]["scheduler"] is None
    assert main([*args[:6], "-o", str(run), "--resume", "--epochs", "2", "-q"]) == 0
    saved = json.loads((run / "run.json").read_text())
    assert saved["resumes"][-1]["changed"] == {"training.epochs": [1, 2]}
    cfg.write_text(cfg.read_text().replace('"none"', '"linear"'))
    bad = tmp_path / "bad"
    _refused([*args[:6], "-o", str(bad), "-q"], capsys, str(cfg), "scheduler must be",
             "'none' (a constant rate), got 'linear'")  # fmt: skip
    assert not bad.exists()
