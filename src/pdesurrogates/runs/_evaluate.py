"""Score a prediction file against the truth: the code behind ``pdesurrogates uq
evaluate`` and ``pdesurrogates evaluate`` (which is :func:`predict_run` followed by
:func:`evaluate_files`)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pdesurrogates._files import same_file
from pdesurrogates.errors import DatasetError, OutputError
from pdesurrogates.runs._predict import check_output, predict_run
from pdesurrogates.runs._series import time_axis_of, truth_at_times

__all__ = ["DEFAULT_LEVELS", "evaluate_files", "evaluate_run", "grid_coords"]

DEFAULT_LEVELS = (0.5, 0.8, 0.9, 0.95)
PREDICTION_FILE = "predictions.h5"
RUN_REPORT_FILES = (
    PREDICTION_FILE,
    "uq_report.json",
    "metrics.json",
    "per_sample.csv",
    "report.md",
)


def report_dir(out: Path, names: Sequence[str], overwrite: bool) -> Path:
    """Check the report directory ``out``: a file in the way is refused, and so are
    existing report files ``names`` in it unless ``overwrite``."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"-o {out}: a file is in the way; the report goes into a directory")
    there = [n for n in names if (out / n).exists()]
    if there and not overwrite:
        raise OutputError(
            f"-o {out}: already holds {', '.join(there)}; choose another output directory or "
            "pass overwrite=True (--overwrite)"
        )
    return out


def recorded_files(out: Path, name: str) -> set[str]:
    """The files the report in ``out`` recorded it wrote: the ``files`` list of its JSON
    file ``name`` (``metrics.json``, or ``meta.files`` of ``uq_report.json``). Only plain
    file names count; a report without a readable list records nothing."""
    try:
        doc = json.loads((out / name).read_text())
    except (OSError, ValueError):
        return set()
    if isinstance(doc, dict) and name == "uq_report.json":
        doc = doc.get("meta")
    if not isinstance(doc, dict):
        return set()
    files = doc.get("files")
    if files is None and isinstance(doc.get("figures"), dict):  # a metrics.json without a list
        files = list(doc["figures"].values())
    if not isinstance(files, list):
        return set()
    return {f for f in files if isinstance(f, str) and Path(f).name == f and "\\" not in f
            and (f in RUN_REPORT_FILES or f.endswith(".png"))}  # fmt: skip


def remove_stale(out: Path, old: set[str], new: Sequence[str], inputs: Sequence = ()) -> None:
    """Remove the files ``old`` that an earlier report in ``out`` wrote and the new one
    (which wrote ``new``) did not: ``out`` then holds exactly the new report. Only names a
    report writes count (:func:`recorded_files`), and never one of the command's
    ``inputs``: every file the reports did not write is kept, whatever a listing says."""
    for name in sorted(old.difference(new)):
        path = out / name
        if not path.is_file() or path.is_symlink():
            continue
        if any(p is not None and same_file(path, p) for p in inputs):
            continue
        path.unlink()


def grid_coords(ds, field: str) -> list | None:
    """Coordinates of the spatial axes of ``field`` when the field is ``(sample, *space)``
    (for the grid-aware relative H1 error); None otherwise."""
    dims = ds.fields[field].dims
    space = [d for d in dims[1:] if d in ("x", "y", "z")]
    if not space or list(dims[1:]) != space:
        return None
    return [ds.coords[d] for d in space]


def _truth_rows(truth, info, split: str | None, truth_path: Path):
    """The truth samples a prediction file predicted, and the split's name.

    When the prediction file records the rows it predicted (``source_index``) exactly
    those rows of the truth file are compared; otherwise the rows of the split."""
    if split is None:
        split = info.split or "all"
    elif info.split not in ("", split):
        raise DatasetError(
            f"{info.path} predicts split {info.split!r}, not {split!r}; drop --split or "
            f"predict split {split!r}"
        )
    if info.source_index is not None:
        index = info.source_index
        if index.size and (index.min() < 0 or index.max() >= len(truth)):
            raise DatasetError(
                f"{info.path} predicts rows up to {int(index.max())} of its source file but "
                f"{truth_path} holds {len(truth)} samples; compare with the file it predicted"
                + (f" ({info.data})" if info.data else "")
            )
        return truth.subset(index), split
    if split == "all":
        return truth, split
    if split not in truth.splits:
        raise DatasetError(
            f"{truth_path}: has no split {split!r} (splits: {sorted(truth.splits)}); "
            "compare with another truth file or --split"
        )
    return truth.split(split), split


def evaluate_files(
    pred_path: str | os.PathLike,
    truth_path: str | os.PathLike,
    *,
    field: str | None = None,
    split: str | None = None,
    levels: Sequence[float] = DEFAULT_LEVELS,
    out: str | os.PathLike | None = None,
    name: str | None = None,
    figures: bool = True,
    overwrite: bool = False,
):
    """Evaluate a prediction file against a truth dataset; optionally write the report.

    Parameters
    ----------
    pred_path : path
        Prediction file (layout of :func:`pdesurrogates.uq.save_prediction`).
    truth_path : path
        The ``pdesurrogates-h5`` dataset holding the true field.
    field : str, optional
        The predicted field (default: the only one in the prediction file).
    split : str, optional
        Compare with this split of the truth file. Default: the split recorded in the
        prediction file (every sample when it records none).
    levels : sequence of float
        Central-interval levels for coverage and interval scores.
    out : path, optional
        Directory for ``uq_report.json`` and, with ``figures``, PNG figures. An existing
        ``uq_report.json`` there is refused (:class:`OutputError`) unless ``overwrite``.
        The report lists the files it wrote in ``meta["files"]``; the files an earlier
        report there listed and this one did not write (its figures) are removed, so
        ``out`` holds one report. Other files in ``out`` are kept.
    name : str, optional
        Model name stored in the report.

    The truth rows compared are the rows the prediction file records
    (``/predictive/source_index``, written by ``pdesurrogates predict``), so a truth file
    with other splits still gives the predicted samples; a row beyond the truth file is
    refused. Without recorded rows, the rows of the split are compared. When the file
    the prediction was made from (``prediction_data``) is not ``truth_path``, the report
    says so in ``report.meta["warning"]`` (the scores are still computed).

    A prediction with a ``time`` dim (a rollout of ``pdesurrogates predict`` on a
    step-model run) is compared with the truth's states at the predicted times, and the
    report adds the relative L2 of every state along the trajectory
    (``report.by_step``) and the time the error first exceeds 10 %
    (``report.scalars["time_to_10pct"]``), see :func:`pdesurrogates.uq.evaluate`.

    Returns
    -------
    pdesurrogates.uq.UQReport
        Relative H1 is included when the field is ``(sample, x[, y[, z]])``, with the
        spacing taken from the truth file's coordinates. ``report.meta`` names the
        prediction, truth, field and split.
    """
    import numpy as np

    from pdesurrogates.datasets import open_dataset
    from pdesurrogates.uq import evaluate, load_prediction, read_prediction_info

    pred_path, truth_path = Path(pred_path), Path(truth_path)
    if out is not None:
        report_dir(Path(out), ("uq_report.json",), overwrite)
        earlier = recorded_files(Path(out), "uq_report.json")
    if not truth_path.is_file():
        raise FileNotFoundError(f"truth file {truth_path} does not exist")
    info = read_prediction_info(pred_path)
    field = field or info.only_field()
    pred = load_prediction(pred_path, field)
    truth = open_dataset(truth_path)
    if field not in truth.fields:
        raise DatasetError(
            f"{truth_path}: has no field {field!r} to compare with; fields: {sorted(truth.fields)}"
        )
    rows, split = _truth_rows(truth, info, split, truth_path)
    y = rows.load(field)
    pred_ds = open_dataset(pred_path)
    time_axis = times = None
    if "time" in pred_ds.fields[field].dims:  # a trajectory: score it per step too
        time_axis = time_axis_of(pred_ds.fields[field].dims)
        times = np.asarray(pred_ds.coords["time"], dtype=np.float64)
        y = truth_at_times(rows, field, y, times, pred_ds.attrs.get("source"), truth_path)
    if tuple(y.shape) != pred.shape:
        raise DatasetError(
            f"{pred_path} predicts {field!r} with shape {pred.shape} but {truth_path} "
            f"(split {split!r}) holds {tuple(y.shape)}; predict the same samples (use --split "
            "for a split)"
        )
    meta = {
        "name": name or pred_path.stem,
        "prediction": str(pred_path),
        "truth": str(truth_path),
        "field": field,
        "split": split,
        "n_samples": int(y.shape[0]),
    }
    if info.data and not same_file(info.data, truth_path):
        meta["warning"] = (
            f"{pred_path} was predicted from {info.data}, not from {truth_path}; the rows "
            f"it records are taken from {truth_path}" if info.source_index is not None else
            f"{pred_path} was predicted from {info.data}, not from {truth_path}"
        )  # fmt: skip
    report = evaluate(pred, y, levels=levels, coords=grid_coords(truth, field), meta=meta,
                      time_axis=time_axis, times=times)  # fmt: skip
    if out is not None:
        _write(report, pred, y, Path(out), figures, _labels(rows, field, y.shape))
        remove_stale(Path(out), earlier, report.meta["files"], (pred_path, truth_path))
    return report


def _labels(rows, field: str, shape) -> dict[str, Any]:
    """Field, grid-axis and time labels (units from the truth file) and the id of the
    first sample, for the figures."""
    from pdesurrogates.runs._report import field_quantities, time_quantity

    q, axes, coords = field_quantities(rows, field)
    if [len(c) for c in coords] != list(shape[2:]):  # (N, C, *grid)
        axes, coords = None, None
    sample = int(rows.coords["sample"][0])
    return {"field": q, "axes": axes, "coords": coords, "sample": sample,
            "time": time_quantity(rows)}  # fmt: skip


def _report_figures(report, pred, y, labels: dict[str, Any]) -> dict[str, Any]:
    """The figures of ``uq evaluate -o``, by file stem."""
    from pdesurrogates.uq import plots

    figs = {}
    time = labels.pop("time")
    if len(pred.shape) in (3, 4) and pred.shape[1] == 1:  # one channel on a 1-D/2-D grid
        figs["error_map"] = plots.plot_error_maps(
            pred, y, index=0, split=report.meta.get("split"), **labels
        )
    if report.by_step:  # a rollout: the error of every state against time
        figs["rollout_error"] = plots.plot_rollout_error(report, time=time)
    if report.kind != "point":
        figs.update(
            calibration=plots.plot_calibration(report),
            pit=plots.plot_pit(report),
            coverage=plots.plot_coverage(report),
        )
    figs["pred_vs_true"] = plots.plot_pred_vs_true(
        pred, y, field=labels["field"], split=report.meta.get("split")
    )
    return figs


def _write(report, pred, y, out: Path, figures: bool, labels: dict[str, Any]) -> None:
    """Write the figures, then ``uq_report.json`` listing every file written
    (``report.meta["files"]``)."""
    from pdesurrogates._figures import save_figure
    from pdesurrogates.io import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    figs = _report_figures(report, pred, y, labels) if figures else {}
    for k, fig in figs.items():
        save_figure(fig, out / f"{k}.png", dpi=110)
    report.meta["files"] = sorted(["uq_report.json", *(f"{k}.png" for k in figs)])
    atomic_write_text(out / "uq_report.json", report.to_json())


def evaluate_run(
    run_dir: str | os.PathLike,
    data: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    split: str | None = "test",
    levels: Sequence[float] = DEFAULT_LEVELS,
    batch_size: int = 16,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Evaluate a run on ``data``: :func:`predict_run`, then :func:`evaluate_files`.

    Writes to ``out_dir``: ``predictions.h5`` (the prediction file), ``uq_report.json``
    and its figures (exactly what ``pdesurrogates uq evaluate`` writes for that file),
    and the run report: ``metrics.json``, ``per_sample.csv``, ``report.md`` and figures
    of the best, median and worst samples. Every number comes from the
    :class:`~pdesurrogates.uq.UQReport`.

    Parameters
    ----------
    split : str or None
        ``"test"`` (default), ``"valid"``, ``"train"``, or ``"all"``/None for every
        sample. A split the file lacks raises :class:`DatasetError`.
    overwrite : bool
        Replace the report of an earlier evaluation in ``out_dir``; without it its files
        are refused (:class:`OutputError` naming them). ``metrics.json`` lists every file
        a report wrote (``files``); the files the earlier report listed and the new one
        did not write (figures of other samples, of another predictive form) are removed,
        so ``out_dir`` holds exactly the new report. Files the reports did not write are
        kept.

    Returns
    -------
    dict
        The contents of ``metrics.json``.
    """
    from pdesurrogates.runs._report import write_run_report

    out = Path(out_dir)
    check_output(out, data, run_dir)
    report_dir(out, RUN_REPORT_FILES, overwrite)
    earlier = recorded_files(out, "metrics.json")
    out.mkdir(parents=True, exist_ok=True)
    pred_file = predict_run(
        run_dir, data, out / PREDICTION_FILE, split=split, batch_size=batch_size,
        overwrite=overwrite,
    )  # fmt: skip
    report = evaluate_files(pred_file, data, levels=levels, out=out, name=Path(run_dir).name,
                            overwrite=True)  # fmt: skip
    metrics = write_run_report(run_dir, data, pred_file, report, out)
    remove_stale(out, earlier, metrics["files"], (data, pred_file))
    return metrics
