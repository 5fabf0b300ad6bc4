"""Train a multigrid neural operator (MgNO) on Darcy flow, in Python.

The same job as the commands::

    pdesurrogates generate darcy -n 1000 -r 64 -o darcy.h5
    pdesurrogates train mgno --data darcy.h5 -o runs/mgno
    pdesurrogates evaluate runs/mgno --data darcy.h5 -o runs/mgno/report
    pdesurrogates predict runs/mgno --data darcy.h5 -o runs/mgno/predictions.h5 --split test

but with the Python API: :class:`~pdesurrogates.datasets.FieldDataset`,
:class:`~pdesurrogates.surrogates.MgNO` wrapped in a
:class:`~pdesurrogates.surrogates.NormalizedModel`, the
:class:`~pdesurrogates.training.Trainer` with the operator family's settings
(:class:`~pdesurrogates.training.OperatorConfig`), and the metrics of
:mod:`pdesurrogates.uq.metrics`.

Run: ``python examples/train_mgno_darcy.py --out runs/mgno_darcy`` (``--smoke``: seconds).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import pdesurrogates
from pdesurrogates.cli import main as cli
from pdesurrogates.datasets import open_dataset
from pdesurrogates.surrogates import MgNO, NormalizedModel, Normalizer
from pdesurrogates.training import OperatorConfig, Trainer
from pdesurrogates.uq.metrics import rel_h1, rel_l2


def main(out: Path, *, smoke: bool = False, epochs: int | None = None, n=1000, res=64):
    settings = OperatorConfig().with_overrides(epochs=epochs)  # the CLI's defaults
    if smoke:
        settings, n, res = settings.with_overrides(epochs=2), 24, 16
    out.mkdir(parents=True, exist_ok=True)
    data = out / f"darcy_{res}.h5"
    if not data.exists():  # 80 / 10 / 10 % train / valid / test split
        cli(["generate", "darcy", "-n", str(n), "-r", str(res), "-o", str(data), "--quiet"])

    ds = open_dataset(data)
    train, valid, test = ds.split("train"), ds.split("valid"), ds.split("test")

    torch.manual_seed(0)  # the model's initialisation
    net = MgNO(
        channels=8 if smoke else 24,
        levels=2 if smoke else 5,  # coarsest learned grid: res / 2**(levels-1)
        layers=1 if smoke else 4,
        base_resolution=res,  # the learned levels live on res, res/2, ...
        padding_mode="zeros",  # u = 0 on the boundary
    )
    # normalise with the train-split statistics stored in the file; they are saved with
    # the model, which then takes and returns physical fields
    model = NormalizedModel(
        net,
        input_normalizer=Normalizer.from_dataset(ds, "a"),
        output_normalizer=Normalizer.from_dataset(ds, "u"),
    )
    trainer = Trainer(
        model,
        **settings.trainer_kwargs(),
        seed=settings.seed,
        out_dir=out / "run",
        progress=not smoke,
        metrics=("rel_l2", "rel_h1"),
    )
    history = trainer.fit(train, valid)  # resume=True continues a killed run
    print(
        f"best epoch {trainer.best_epoch}: valid rel L2 "
        f"{min(h['valid_rel_l2'] for h in history):.4f}"
    )

    # the saved model is self-contained: reload it anywhere
    model = pdesurrogates.load(out / "run" / "model")
    a, u = torch.from_numpy(test.load("a")), torch.from_numpy(test.load("u"))  # (N, 1, X, Y)
    with torch.no_grad():
        pred = model(a)  # (N, 1, X, Y), like the dataset's fields
    grid = [test.coords["x"], test.coords["y"]]  # H1 with the file's grid spacing
    l2, h1 = float(rel_l2(pred, u)), float(rel_h1(pred, u, coords=grid))
    print(f"test ({len(test)} samples): rel L2 {l2:.4f}, rel H1 {h1:.4f}")

    # zero-shot on a grid twice as fine: same model, no retraining
    fine = out / f"darcy_{2 * res}.h5"
    if not fine.exists():  # same seed: the same coefficient fields, refined
        cli(["generate", "darcy", "-n", str(n), "-r", str(2 * res), "-o", str(fine), "--quiet"])
    fine_test = open_dataset(fine).split("test")
    a2, u2 = torch.from_numpy(fine_test.load("a")), torch.from_numpy(fine_test.load("u"))
    with torch.no_grad():
        l2_fine = float(rel_l2(model(a2), u2))
    print(f"zero-shot at {2 * res}²: rel L2 {l2_fine:.4f}")
    return {"rel_l2": l2, "rel_h1": h1, "rel_l2_zero_shot": l2_fine, "history": history}


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("runs/train_mgno_darcy"),
        help="output directory (default: runs/train_mgno_darcy)",
    )
    p.add_argument(
        "--out", dest="output", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )  # the old spelling of -o
    p.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    p.add_argument("--epochs", type=int, default=None, help="default: OperatorConfig")
    p.add_argument("--n", type=int, default=1000, help="samples to generate")
    p.add_argument("--resolution", type=int, default=64)
    a = p.parse_args()
    main(a.output, smoke=a.smoke, epochs=a.epochs, n=a.n, res=a.resolution)
