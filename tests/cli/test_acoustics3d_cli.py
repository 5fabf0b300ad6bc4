"""``generate acoustics3d``: staggered FDTD rooms from the command line, and bad input."""

from __future__ import annotations

import json

import h5py
import numpy as np

from pdesurrogates.cli import main
from pdesurrogates.datasets import open_dataset, validate

BASE = ["-n", "2", "--duration", "0.002", "-r", "4", "--ppw", "10", "-q"]


def test_generate_l_shaped_room_with_impedance_walls(tmp_path):
    out = tmp_path / "l.h5"
    walls = ["--impedance", "7400", "--geometry", "l-shape", "--margin", "0.3"]
    code = main(["generate", "acoustics3d", "-o", str(out), *BASE, "--split", "0.5,0.5,0", *walls])
    assert code == 0
    ds = open_dataset(out)
    assert ds.fields["p"].dims == ("sample", "time", "x", "y", "z")
    setup = json.loads(ds.attrs["source"])
    assert setup["solver"] == "fdtd-staggered" and setup["room"]["kind"] == "l-shape"
    assert setup["impedance"] == 7400.0 and len(setup["receivers"]) == 24
    assert "Z = 7400" in ds.attrs["pde"]
    assert validate(out).n_samples == 2  # raises on an invalid file
    with h5py.File(out, "r") as f:
        p = f["p"][0]
    assert np.all(p[:, 3:, 3:, :] == 0)  # nodes strictly inside the notch stay silent


def test_generate_acoustics3d_bad_input(tmp_path, capsys):
    bad = [
        (["--receivers", "0.5,0.5,1;1.5,1.5,1", "--geometry", "l-shape"], "#1 [1.5, 1.5, 1.0]"),
        (["--receivers", "0.5,0.5"], "--receivers"),
        (["--geometry", "dome"], "geometry"),
        (["--impedance", "-3"], "impedance"),
    ]
    for extra, message in bad:
        code = main(["generate", "acoustics3d", "-o", str(tmp_path / "bad.h5"), *BASE, *extra])
        assert code != 0
        assert message in capsys.readouterr().err
        assert not (tmp_path / "bad.h5").exists()


def test_generate_acoustics3d_defaults_to_800_sources():
    import typer.main

    from pdesurrogates.cli._app import app

    generate = typer.main.get_command(app).commands["generate"]
    defaults = {
        name: {p.name: p.default for p in generate.commands[name].params}["n_sources"]
        for name in ("acoustics1d", "acoustics2d", "acoustics3d")
    }
    # 3D rooms need several hundred training sources at 500 Hz (the benchmark's 640)
    assert defaults == {"acoustics1d": 200, "acoustics2d": 200, "acoustics3d": 800}
