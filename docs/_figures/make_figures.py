"""Regenerate the figures shown in the docs, with the commands a user runs.

    PYTHONPATH=src python docs/_figures/make_figures.py          # a few minutes on 1 core

Writes into docs/_static/figures/:

* ``darcy_sample.png``  the median test sample of ``pdesurrogates evaluate`` (a small MgNO
  ensemble on a small Darcy file): permeability, truth, prediction, error, ensemble std;
* ``darcy_calibration.png``  the calibration plot of the same evaluation;
* ``mf_study.png``  ``pdesurrogates mf study`` of a co-kriging fit on the Forrester pair.

Each PNG is checked to stay under 200 kB.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from pdesurrogates.cli import main

OUT = Path(__file__).resolve().parents[1] / "_static" / "figures"
MAX_BYTES = 200_000


def run(*args: str) -> None:
    print("$ pdesurrogates", " ".join(args), flush=True)
    if main(list(args)) != 0:
        sys.exit(f"pdesurrogates {' '.join(args)} failed")


def keep(src: Path, name: str) -> None:
    dst = OUT / name
    shutil.copyfile(src, dst)
    size = dst.stat().st_size
    if size > MAX_BYTES:
        sys.exit(f"{dst}: {size} bytes, more than {MAX_BYTES}")
    print(f"wrote {dst} ({size // 1000} kB)")


def main_() -> None:
    import torch

    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        run("generate", "darcy", "-o", str(t / "darcy.h5"), "-n", "48", "-r", "32", "-q")
        run("train", "mgno", "-d", str(t / "darcy.h5"), "-o", str(t / "run"),
            "-k", "3", "--epochs", "20", "-q")  # fmt: skip
        run("evaluate", str(t / "run"), "--data", str(t / "darcy.h5"), "-o", str(t / "ev"))
        keep(t / "ev" / "sample_median.png", "darcy_sample.png")
        keep(t / "ev" / "calibration.png", "darcy_calibration.png")
        run("mf", "fit", "--problem", "forrester", "--n-lo", "21", "--n-hi", "4",
            "-o", str(t / "mf"), "-q")  # fmt: skip
        run("mf", "study", "--model", str(t / "mf"), "--problem", "forrester",
            "--n-samples", "50000", "-o", str(t / "study"))  # fmt: skip
        keep(t / "study" / "study.png", "mf_study.png")


if __name__ == "__main__":
    main_()
