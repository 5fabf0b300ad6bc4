"""Predict with a trained run and write the one prediction file (:mod:`pdesurrogates.uq`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pdesurrogates.errors import CheckpointError, DatasetError, TrainingError
from pdesurrogates.runs._train import RUN_FILE

__all__ = ["check_output", "load_run", "predict_fields", "predict_run", "select_split"]

SPLITS = ("train", "valid", "test", "all")


def load_run(run_dir: str | os.PathLike) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The trained model of a run directory and its run record."""
    from pdesurrogates.io import load

    run_dir = Path(run_dir)
    run_path = run_dir / RUN_FILE
    if not run_path.is_file():
        raise CheckpointError(
            f"{run_dir}: not a training run (no {RUN_FILE}); pass the -o directory of "
            "`pdesurrogates train`"
        )
    try:
        record = json.loads(run_path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{run_path}: corrupt ({exc})") from exc
    if not (run_dir / "model").is_dir():
        raise CheckpointError(
            f"{run_dir}: training has not finished (no model/); resume it with "
            "`pdesurrogates train ... --resume`"
        )
    return load(run_dir / "model"), record


def check_output(output: str | os.PathLike, *inputs: str | os.PathLike) -> Path:
    """Refuse an output path that is one of the inputs (writing it would destroy it)."""
    out = Path(output).resolve()
    for p in inputs:
        if out == Path(p).resolve():
            raise ValueError(
                f"-o {output}: that is an input of this command ({p}); writing there would "
                "destroy it. Choose another output path"
            )
    return Path(output)


def select_split(ds, split: str | None):
    """The samples of ``split`` (``"all"`` or None: every sample)."""
    if split not in (*SPLITS, None):
        raise ValueError(f"--split {split!r}: use train, valid, test or all")
    return ds if split in (None, "all") else ds.split(split)


def _batches(ds, inputs, target, batch_size):
    from torch.utils.data import DataLoader

    from pdesurrogates.training import fields_to_channels

    component = {k: s.dims[-1] == "component" for k, s in ds.fields.items()}
    for batch in DataLoader(ds, batch_size=batch_size, shuffle=False):
        x = fields_to_channels(batch, inputs, component)
        y = fields_to_channels(batch, target, component) if target in batch else None
        yield x, y


@torch.no_grad()
def predict_fields(
    model: torch.nn.Module, ds, inputs, target, *, batch_size: int = 16
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
    """Run ``model`` over ``ds``: ``(mean, samples or None, truth or None, inputs)``, all
    channel-first ``(N, C, X, Y)`` (samples ``(K, N, C, X, Y)`` for ensembles)."""
    from pdesurrogates.surrogates import Ensemble

    model.eval()
    means, samples, truths, xs = [], [], [], []
    for x, y in _batches(ds, inputs, target, batch_size):
        if isinstance(model, Ensemble):
            s = model.member_outputs(x)
            samples.append(s)
            means.append(s.mean(0))
        else:
            means.append(model(x))
        xs.append(x)
        if y is not None:
            truths.append(y)
    if not means:
        raise DatasetError(f"{ds.path}: no samples to predict")
    mean = torch.cat(means)
    if not torch.isfinite(mean).all():
        raise TrainingError("the model produced NaN/Inf predictions; retrain or check data")
    return (
        mean,
        torch.cat(samples, dim=1) if samples else None,
        torch.cat(truths) if truths else None,
        torch.cat(xs),
    )


def _layout(t: torch.Tensor, component: bool, lead: int) -> np.ndarray:
    """Channel-first ``(..., C, X, Y)`` -> the file's ``(..., X, Y[, C])``."""
    t = torch.movedim(t, lead, -1) if component else t.select(lead, 0)
    return t.cpu().numpy()


def predict_run(
    run_dir: str | os.PathLike,
    data: str | os.PathLike,
    output: str | os.PathLike,
    *,
    split: str | None = "test",
    batch_size: int = 16,
    overwrite: bool = False,
) -> Path:
    """Predict the target field of ``split`` of ``data`` and write a prediction file.

    The file has the layout of :func:`pdesurrogates.uq.save_prediction`: the predictive
    mean under the target's name, the ensemble members (``/predictive/<target>/samples``)
    for ensembles, the split predicted, the source rows and the data path, so
    ``pdesurrogates uq evaluate FILE DATA`` scores exactly these samples.

    Parameters
    ----------
    split : str or None
        ``"test"`` (default), ``"valid"``, ``"train"``, or ``"all"``/None for every
        sample. A split the file lacks raises :class:`DatasetError`.
    overwrite : bool
        Replace an existing output file (never the data file itself).
    """
    from pdesurrogates.datasets import open_dataset
    from pdesurrogates.uq import Prediction, save_prediction

    check_output(output, data)
    model, record = load_run(run_dir)
    split = split or "all"
    full = open_dataset(data)
    ds = select_split(full, split)
    inputs, target = record["input"], record["target"]
    for name in inputs:
        if name not in ds.fields:
            raise DatasetError(
                f"{ds.path}: the model needs input field {name!r}; fields: {sorted(ds.fields)}"
            )
    mean, samples, _, _ = predict_fields(model, ds, inputs, "__none__", batch_size=batch_size)
    ref = ds.fields.get(target) or ds.fields[inputs[0]]
    comp = ref.dims[-1] == "component"
    if samples is not None:
        pred = Prediction(_layout(mean, comp, 1), samples=_layout(samples, comp, 2))
    else:
        pred = Prediction(_layout(mean, comp, 1))
    dims = ref.dims if target in ds.fields or not comp else (*ref.dims[:-1], "component")
    coords = {d: full.coords[d] for d in dims if d != "sample" and d in full.coords}
    if comp and "component" not in coords:
        coords["component"] = np.arange(mean.shape[1])
    return save_prediction(
        output,
        pred,
        field=target,
        coords=coords,
        dims=dims,
        units=ref.units if target in ds.fields else "",
        split=split,
        data=data,
        source_index=np.asarray(ds.indices),
        overwrite=overwrite,
        source={
            "generator": "pdesurrogates predict",
            "run": str(Path(run_dir).resolve()),
            "model": record["kind"],
            "ensemble": record.get("ensemble", 1),
        },
    )
