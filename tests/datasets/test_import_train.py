"""Training on imported data: MgNO through the package's Trainer on a PDEBench Darcy file."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from pdesurrogates.datasets import import_pdebench, open_dataset

NX = 16


def write_pdebench_darcy(path, n=40, seed=0):
    """A PDEBench-layout Darcy file whose map nu -> u is smooth and learnable."""
    rng = np.random.default_rng(seed)
    x = (np.arange(NX) + 0.5) / NX
    bump = np.outer(np.sin(np.pi * x), np.sin(np.pi * x))
    nu = rng.choice([3.0, 12.0], size=(n, NX, NX)).astype(np.float32)
    u = (bump / nu).astype(np.float32)[:, None]
    with h5py.File(path, "w") as f:
        f["nu"], f["tensor"] = nu, u
        f["x-coordinate"] = f["y-coordinate"] = x.astype(np.float32)
        f.attrs["beta"] = 1.0
    return nu, u


@pytest.mark.parametrize("converted", [True, False])
def test_trainer_fits_mgno_on_pdebench_darcy(tmp_path, converted):
    from pdesurrogates.surrogates import MgNO
    from pdesurrogates.training import Trainer

    src = tmp_path / "2D_DarcyFlow_beta1.0_Train.hdf5"
    write_pdebench_darcy(src)
    path = import_pdebench(src, tmp_path / "darcy.h5", progress=False) if converted else src
    ds = open_dataset(path)
    train, test = ds.split("train"), ds.split("test")
    assert (len(train), len(test)) == (36, 4)
    model = MgNO(channels=8, levels=2, layers=2, base_resolution=NX)
    trainer = Trainer(
        model, epochs=12, batch_size=8, lr=3e-3, scheduler=None, progress=False, seed=0
    )
    history = trainer.fit(train, test)
    # default keys "a" (PDEBench 'nu') and "u" (PDEBench 'tensor') need no configuration
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    assert history[-1]["valid_loss"] < history[0]["valid_loss"]


def test_train_mgno_command_on_an_imported_pdebench_darcy_file(tmp_path, capsys):
    """`pdesurrogates import pdebench` then `pdesurrogates train mgno --data` unchanged."""
    import json

    from pdesurrogates.cli import main

    src = tmp_path / "2D_DarcyFlow_beta1.0_Train.hdf5"
    write_pdebench_darcy(src, n=40)
    data = tmp_path / "darcy.h5"
    assert main(["import", "pdebench", str(src), "-o", str(data), "-q"]) == 0
    config = tmp_path / "small.toml"
    config.write_text(
        "[model]\nchannels = 8\nlevels = 2\nlayers = 2\n\n"
        '[training]\nepochs = 8\nlr = 3e-3\nscheduler = "cosine"\n'
    )
    run = tmp_path / "run"
    code = main(["train", "mgno", "--data", str(data), "-o", str(run), "-c", str(config), "-q"])
    text = capsys.readouterr()
    assert code == 0, text.err
    assert "trained MGNO on 36 samples" in text.out
    assert (run / "model").is_dir()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    losses = [json.loads(line)["train_loss"] for line in lines]
    assert len(losses) == 8 and losses[-1] < 0.7 * losses[0]
    # the PDEBench file itself also trains, read in place
    code = main(
        ["train", "mgno", "--data", str(src), "-o", str(tmp_path / "r2"), "-c", str(config), "-q"]
    )
    assert code == 0, capsys.readouterr().err
