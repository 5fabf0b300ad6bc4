"""Predict with a trained run and write the one prediction file (:mod:`pdesurrogates.uq`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from pdesurrogates.errors import CheckpointError, DatasetError, OutputError
from pdesurrogates.runs import _mf, _predictors  # noqa: F401  (register the families)
from pdesurrogates.runs._registry import FAMILIES, Family, family_of
from pdesurrogates.runs._series import predict_series
from pdesurrogates.runs._train import RUN_FILE

__all__ = ["check_output", "load_run", "predict_run", "select_split"]

SPLITS = ("train", "valid", "test", "all")


def _infer_record(model, where: Path) -> dict[str, Any]:
    for fam in FAMILIES.values():
        record = fam.infer(model)
        if record is not None:
            return record
    raise CheckpointError(
        f"{where}: a saved {type(model).__name__} without {RUN_FILE}; predict needs the run "
        "directory written by `pdesurrogates train` or `pdesurrogates mf fit` (its "
        f"{RUN_FILE} names the input and target fields)"
    )


def load_run(run_dir: str | os.PathLike) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The trained model of a run directory and its run record.

    A run of any family: ``pdesurrogates train mgno|fno|deeponet`` or ``pdesurrogates mf
    fit``. A directory without ``run.json`` (a bare model directory, or a DeepONet run of
    :func:`pdesurrogates.training.train_deeponet`) gets the record inferred from the
    model's class when the family needs no more (DeepONet, multi-fidelity).
    """
    from pdesurrogates.io import load

    run_dir = Path(run_dir)
    run_path = run_dir / RUN_FILE
    if not run_path.is_file():
        if (run_dir / "config.json").is_file() or (run_dir / "model" / "config.json").is_file():
            model = load(run_dir)
            return model, _infer_record(model, run_dir)
        raise CheckpointError(
            f"{run_dir}: not a training run (no {RUN_FILE}); pass the -o directory of "
            "`pdesurrogates train` or `pdesurrogates mf fit`"
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
    """Refuse an output path that is one of the inputs (writing it would destroy it):
    the same resolved path or the same file (device and inode: hard links too)."""
    from pdesurrogates._files import same_file

    for p in inputs:
        if same_file(output, p):
            raise OutputError(
                f"-o {output}: that is an input of this command ({p}); writing there would "
                "destroy it. Choose another output path"
            )
    return Path(output)


def select_split(ds, split: str | None):
    """The samples of ``split`` (``"all"`` or None: every sample)."""
    if split not in (*SPLITS, None):
        raise ValueError(f"--split {split!r}: use train, valid, test or all")
    return ds if split in (None, "all") else ds.split(split)


def _check_family(fam: Family, ds, record, run_dir, data) -> None:
    problem = fam.check(ds, record)
    if problem is not None:
        raise DatasetError(
            f"{data}: a {record['kind']} run ({run_dir}) cannot predict from this file: "
            f"{problem}. It expects {fam.expects(record)}"
        )


def _rollout_source(record, got, resample: bool) -> dict[str, Any]:
    """How a step model's rollout was made (stored in the prediction file's source)."""
    ts = record["time_series"]
    return {
        "history": ts["history"],
        "states": len(got.coords["time"]),
        "resample": bool(resample),
    }


def predict_run(
    run_dir: str | os.PathLike,
    data: str | os.PathLike,
    output: str | os.PathLike,
    *,
    split: str | None = "test",
    batch_size: int = 16,
    overwrite: bool = False,
    steps: int | None = None,
    resample: bool = False,
) -> Path:
    """Predict the target field of ``split`` of ``data`` and write a prediction file.

    Works for a run of every family (the family's predictor is chosen from the run's
    ``kind``, see :mod:`pdesurrogates.runs._registry`): MgNO/FNO (field ``u``...),
    DeepONet (pressure ``p``) and multi-fidelity models (output ``y`` at the input
    points stored as parameters). The file has the layout of
    :func:`pdesurrogates.uq.save_prediction`: the predictive mean under the target's
    name, the ensemble members (``/predictive/<target>/samples``) for ensembles, the std
    for Gaussian predictions (co-kriging), the split predicted, the source rows and the
    data path, so ``pdesurrogates uq evaluate FILE DATA`` scores exactly these samples.

    Parameters
    ----------
    split : str or None
        ``"test"`` (default), ``"valid"``, ``"train"``, or ``"all"``/None for every
        sample. A split the file lacks raises :class:`DatasetError`.
    overwrite : bool
        Replace an existing output file (never the data file itself).
    steps : int, optional
        Step-model runs (trained on a time series, ``train mgno|fno --history K``) only:
        model calls of the rollout. Each trajectory's first ``K`` states are the initial
        condition; the default rolls out over the rest of the file's time axis, and a
        longer rollout is refused (``ValueError`` naming the horizon). The prediction
        keeps the time axis, with the times of the predicted states as its ``time``
        coordinate; ensemble members each roll out their own trajectory.
    resample : bool
        Step-model runs only: interpolate a non-uniform time axis linearly onto a
        uniform one (same first and last time and number of times) instead of refusing it.

    Raises
    ------
    DatasetError
        ``data`` is not a file the run's family reads (the message names the file, the
        run's kind and the data it expects), or lacks ``split``.
    """
    from pdesurrogates.datasets import open_dataset
    from pdesurrogates.uq import save_prediction

    check_output(output, data)
    model, record = load_run(run_dir)
    series = "time_series" in record
    if not series and (steps is not None or resample):
        raise ValueError(
            f"--steps/--resample: {run_dir} is a {record.get('kind')} run without a time "
            "series; they apply to step models (train mgno|fno --history K)"
        )
    fam = family_of(record)
    split = split or "all"
    full = open_dataset(data)
    select_split(full, split)  # a clear error for a missing split
    model.eval()
    if series:
        got = predict_series(model, record, full, split, steps=steps, batch_size=batch_size,
                             resample=resample, run_dir=run_dir)  # fmt: skip
    else:
        _check_family(fam, full, record, run_dir, data)
        got = fam.predict(model, record, full, split, batch_size)
    return save_prediction(
        output,
        got.prediction,
        field=got.field,
        coords=got.coords,
        dims=got.dims,
        units=got.units,
        split=split,
        data=data,
        source_index=got.source_index,
        overwrite=overwrite,
        source={
            "generator": "pdesurrogates predict",
            "run": str(Path(run_dir).resolve()),
            "model": record["kind"],
            "family": fam.name,
            "ensemble": record.get("ensemble", 1),
            **({"rollout": _rollout_source(record, got, resample)} if series else {}),
        },
    )
