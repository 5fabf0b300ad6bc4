"""The evaluation report of a trained run: summary, per-sample table, figures.

Every number is read from the :class:`~pdesurrogates.uq.UQReport` that
:func:`pdesurrogates.uq.evaluate` computed, so the summary, the uncertainty table and
``uq_report.json`` can never disagree.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from pdesurrogates._figures import (
    Quantity,
    colorbar,
    figure,
    image_panel,
    panel_title,
    save_figure,
    styled,
)
from pdesurrogates.io import atomic_write_text

__all__ = [
    "field_quantities",
    "plot_sample",
    "plot_snapshots",
    "summarize",
    "summary_line",
    "time_quantity",
    "write_run_report",
]

SNAPSHOTS = 3  # time snapshots of a trajectory in its sample figure
STEP_TABLE_ROWS = 10  # rows of the per-step table of report.md


def summarize(values) -> dict[str, float]:
    """Mean, median, std, min, max and count of per-sample values."""
    v = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(v.mean()),
        "median": float(np.median(v)),
        "std": float(v.std()),
        "min": float(v.min()),
        "max": float(v.max()),
        "n": int(v.size),
    }


def _coord_attrs(ds, dims) -> dict[str, dict]:
    """``units``/``long_name`` of the coordinates of ``dims``, as the dataset read them."""
    known = getattr(ds, "coord_attrs", {})
    return {d: dict(known.get(d, {})) for d in dims}


def field_quantities(ds, name: str) -> tuple[Quantity, list[Quantity], list[np.ndarray]]:
    """Labels of field ``name`` of an opened dataset: its :class:`Quantity` (long name and
    units from the file), the quantities of its spatial axes and their coordinates."""
    spec = ds.fields[name]
    space = [d for d in spec.dims if d in ("x", "y", "z")]
    attrs = _coord_attrs(ds, space)
    axes = [Quantity.from_attrs(d, attrs[d]) for d in space]
    return Quantity.from_attrs(name, spec), axes, [np.asarray(ds.coords[d]) for d in space]


def time_quantity(ds) -> Quantity:
    """The :class:`Quantity` of the ``time`` coordinate of an opened dataset (its long
    name and units when the file stores them; ``"time"`` otherwise)."""
    return Quantity.from_attrs("time", _coord_attrs(ds, ["time"])["time"])


def _plane(arr) -> np.ndarray:
    """A 2-D (x, y) array of one sample: size-1 channel axes dropped, first component."""
    a = np.asarray(arr)
    if a.ndim > 2:
        a = a.squeeze()
    while a.ndim > 2:
        a = a[..., 0]
    return a


@styled
def plot_sample(
    a,
    truth,
    pred,
    *,
    title: str = "",
    std=None,
    input: Quantity | None = None,
    target: Quantity | None = None,
    axes: list[Quantity] | None = None,
    coords: list | None = None,
    sample=None,
    split: str | None = None,
):
    """Input, truth, prediction and absolute error (and the ensemble std if given) side by side.

    Parameters
    ----------
    a, truth, pred, std : array, shape (X, Y) or channel-first (1, X, Y)
    title : str
        Headline of the figure (e.g. the errors); the sample id and split follow it.
    input, target : Quantity, optional
        What ``a`` and ``truth`` are (long names and units label the colorbars); see
        :func:`field_quantities`.
    axes, coords : optional
        Quantities and coordinate values of the two grid axes (default: grid indices).
    sample, split : optional
        Sample id and split shown in the title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    q_in = input or Quantity("a", long_name="input")
    q_out = target or Quantity("u", long_name="output")
    truth, pred = _plane(truth), _plane(pred)
    panels = [
        (q_in.title, _plane(a), q_in, "viridis"),
        ("truth", truth, q_out, "magma"),
        ("prediction", pred, q_out, "magma"),
        ("absolute error", np.abs(pred - truth), q_out.derived("|prediction − truth|"), "inferno"),
    ]
    if std is not None:
        panels.append(("ensemble std", _plane(std), q_out.derived("ensemble std"), "inferno"))
    fig, grid = figure(1, len(panels))
    vmin, vmax = float(min(truth.min(), pred.min())), float(max(truth.max(), pred.max()))
    for k, (name, img, q, cmap) in enumerate(panels):
        kw = {"vmin": vmin, "vmax": vmax} if k in (1, 2) else {}
        image_panel(fig, grid[0, k], img, q, axes=axes, coords=coords, title=name, cmap=cmap, **kw)
    head = f"{q_out.title}: {title}" if title else q_out.title
    panel_title(fig, head, sample=sample, split=split)
    return fig


def _snapshot_steps(n_t: int, k: int = SNAPSHOTS) -> list[int]:
    """``k`` evenly spaced states of ``n_t`` (the first and last included)."""
    return sorted({int(v) for v in np.linspace(0, n_t - 1, min(k, n_t)).round()})


def _time_text(time: Quantity, t: float) -> str:
    from pdesurrogates._figures import units_text

    u = units_text(time.units)
    return f"{time.name} = {t:.4g}" + (f" {u}" if u and u != "–" else "")


@styled
def plot_snapshots(
    truth,
    pred,
    times,
    *,
    title: str = "",
    std=None,
    target: Quantity | None = None,
    time: Quantity | None = None,
    axes: list[Quantity] | None = None,
    coords: list | None = None,
    sample=None,
    split: str | None = None,
    snapshots: int = SNAPSHOTS,
):
    """Truth, prediction and absolute error (and the ensemble std) of one trajectory at a
    few times: one row per snapshot (the first, last and evenly spaced predicted states).

    Parameters
    ----------
    truth, pred, std : array, shape (T, X, Y)
        The trajectory at the predicted ``times`` (one channel).
    times : array, shape (T,)
        The time of each state; each row's titles name it (with ``time``'s units).
    target, time : Quantity, optional
        What the field and the time coordinate are (long names and units label the
        colorbars and titles).
    """
    truth, pred = np.asarray(truth), np.asarray(pred)
    if truth.ndim != 3 or truth.shape != pred.shape:
        raise ValueError(
            f"snapshots need a trajectory (T, X, Y) on both sides, got {truth.shape} and "
            f"{pred.shape}"
        )
    q = target or Quantity("u", long_name="output")
    tq = time or Quantity("time")
    steps = _snapshot_steps(len(truth), snapshots)
    cols = 3 if std is None else 4
    fig, grid = figure(len(steps), cols)
    for r, j in enumerate(steps):
        when = _time_text(tq, float(times[j]))
        panels = [
            ("truth", truth[j], q, "magma"),
            ("prediction", pred[j], q, "magma"),
            ("absolute error", np.abs(pred[j] - truth[j]), q.derived("|prediction − truth|"),
             "inferno"),
        ]  # fmt: skip
        if std is not None:
            panels.append(("ensemble std", np.asarray(std)[j], q.derived("ensemble std"),
                           "inferno"))  # fmt: skip
        lim = {"vmin": float(min(truth[j].min(), pred[j].min())),
               "vmax": float(max(truth[j].max(), pred[j].max()))}  # fmt: skip
        for c, (name, img, qc, cmap) in enumerate(panels):
            kw = lim if c < 2 else {}
            im = image_panel(fig, grid[r, c], img, qc, axes=axes, coords=coords, cbar=c > 1,
                             title=f"{name}, {when}", cmap=cmap, **kw)  # fmt: skip
            if c == 0:  # truth and prediction share one colour scale
                colorbar(fig, im, [grid[r, 0], grid[r, 1]], q)
    head = f"{q.title}: {title}" if title else q.title
    panel_title(fig, head, sample=sample, split=split)
    return fig


_STEP_SCALARS = ("steps_to_10pct", "time_to_10pct")


def _uq_numbers(report) -> dict[str, float]:
    skip = ("rel_l2", "rel_l2_pooled", "rel_h1", *_STEP_SCALARS)  # in metrics.json's rel_l2
    uq = {k: float(v) for k, v in report.scalars.items() if k not in skip}
    cov = report.by_level.get("coverage")
    if cov is not None:
        for level, c in zip(report.levels, cov, strict=True):
            uq[f"coverage_{round(100 * float(level))}"] = float(c)
    return uq


def _step_numbers(report) -> dict[str, Any]:
    """``metrics.json``'s ``by_step``: the time and relative L2 of every state of a
    rollout, and the time to 10 % error (``null`` when it stays below)."""

    def num(key: str) -> float | None:
        v = float(report.scalars.get(key, math.inf))
        return v if math.isfinite(v) else None

    times = report.step_times
    err = np.asarray(report.by_step["rel_l2"], dtype=np.float64)
    return {
        "time": (np.arange(1, err.size + 1) if times is None else np.asarray(times)).tolist(),
        "rel_l2": err.tolist(),
        **{k: num(k) for k in _STEP_SCALARS},
    }


def _step_markdown(report) -> list[str]:
    """The compact per-step table of ``report.md`` (empty for no rollout)."""
    cols, rows = report.step_rows(STEP_TABLE_ROWS)
    if not rows:
        return []
    out = ["## Error along the rollout", "", "| " + " | ".join(cols) + " |"]
    out += ["|---" * len(cols) + "|"] + ["| " + " | ".join(r) + " |" for r in rows]
    return [*out, "", report.step_caption(STEP_TABLE_ROWS)]


def summary_line(m: dict[str, Any]) -> str:
    """The one-line summary of a run report (``metrics.json``'s contents ``m``), as
    ``pdesurrogates evaluate`` prints it."""
    r = m["rel_l2"]
    line = f"split {m['split']} ({m['n_samples']} samples, {m['form']}): rel L2 "
    if "pooled" in r:  # one value per sample
        line += f"{r['pooled']:.4g} over all samples"
        if "median" in r:
            line += f" (per sample |error|/|value|: median {r['median']:.4g})"
    else:
        line += f"{r['mean']:.4g} (median {r['median']:.4g})"
    if "rel_h1" in m:
        line += f", rel H1 {m['rel_h1']['mean']:.4g}"
    if "crps" in m.get("uq", {}):
        line += f", CRPS {m['uq']['crps']:.4g}"
    steps = m.get("by_step")
    if steps:
        n = len(steps["rel_l2"])
        if steps["time_to_10pct"] is None:
            line += f"; rel L2 below 10 % over all {n} steps of the rollout"
        else:
            line += (
                f"; rel L2 exceeds 10 % at time {steps['time_to_10pct']:.4g} "
                f"(step {steps['steps_to_10pct']:.0f} of {n})"
            )
    return line


def _form(report) -> str:
    return str(getattr(report, "form", None) or report.kind)


def write_run_report(
    run_dir: str | os.PathLike, data: str | os.PathLike, pred_file, report, out: Path
) -> dict[str, Any]:
    """Write ``metrics.json``, ``per_sample.csv``, ``report.md`` and sample figures.

    ``report`` is the :class:`~pdesurrogates.uq.UQReport` of ``pred_file`` against
    ``data``; returns the contents of ``metrics.json``. Its ``files`` lists every file of
    the report in ``out``: these, ``pred_file`` when it is in ``out``, and the files
    ``report.meta["files"]`` names (``uq_report.json`` and its figures).
    """
    from pdesurrogates.datasets import open_dataset
    from pdesurrogates.runs._predict import load_run, select_split
    from pdesurrogates.uq import load_prediction

    _, record = load_run(run_dir)
    split = report.meta["split"]
    ds = select_split(open_dataset(data), split)
    pred = load_prediction(pred_file)
    index = np.asarray(ds.indices)
    scalar = "rel_l2_pooled" in report.scalars  # one value per sample (mf fit)
    l2 = report.per_sample.get("rel_l2")  # none for one-value samples with a true value 0
    h1 = report.per_sample.get("rel_h1")
    metrics: dict[str, Any] = {
        "run": str(Path(run_dir).resolve()),
        "data": str(Path(data).resolve()),
        "predictions": str(Path(pred_file)),
        "split": split,
        "model": record["kind"],
        "ensemble": record.get("ensemble", 1),
        "form": _form(report),
        "n_samples": int(report.n_fields),
        "rel_l2": {} if l2 is None else summarize(l2),
        "samples": {},
    }
    if scalar:  # the relative L2 of the vector of all outputs (what mf fit reports)
        metrics["rel_l2"] = {"pooled": report.scalars["rel_l2_pooled"], **metrics["rel_l2"]}
    else:
        order = np.argsort(l2)
        picks = {"best": int(order[0]), "median": int(order[len(order) // 2]),
                 "worst": int(order[-1])}  # fmt: skip
        metrics["samples"] = {
            k: {"index": int(index[v]), "rel_l2": float(l2[v])} for k, v in picks.items()
        }
    if h1 is not None:
        metrics["rel_h1"] = summarize(h1)
    if report.kind != "point":
        metrics["uq"] = _uq_numbers(report)
    if report.by_step:
        metrics["by_step"] = _step_numbers(report)
    columns = {"rel_l2": l2, "rel_h1": h1} if not scalar else {"rel_l2": l2}
    columns = {k: v for k, v in columns.items() if v is not None or k == "rel_h1"}
    buf = io.StringIO()
    wr = csv.writer(buf)
    wr.writerow(["position", "sample_index", *columns])
    for i in range(len(index)):
        wr.writerow(
            [i, int(index[i]), *("" if v is None else f"{v[i]:.6g}" for v in columns.values())]
        )
    atomic_write_text(out / "per_sample.csv", buf.getvalue())
    if scalar:
        metrics["figures"] = {}
    elif "time_series" in record and np.ndim(pred.mean) == 5:  # a rollout (N, C, T, X, Y)
        metrics["figures"] = _trajectory_figures(ds, split, record, pred, pred_file, picks, l2, out)
    else:
        metrics["figures"] = _sample_figures(ds, split, record, pred, picks, l2, h1, out)
    written = list(report.meta.get("files", []))
    if Path(pred_file).resolve().parent == out.resolve():
        written.append(Path(pred_file).name)
    written += ["metrics.json", "per_sample.csv", "report.md", *metrics["figures"].values()]
    metrics["files"] = sorted(set(written))
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    extra = _step_markdown(report)
    if extra and "rollout_error.png" in written:
        extra += ["", "![rollout error](rollout_error.png)"]
    atomic_write_text(out / "report.md", _markdown(metrics, extra))
    return metrics


def _sample_figures(ds, split, record, pred, picks, l2, h1, out: Path) -> dict[str, str]:
    mean = np.asarray(pred.mean)
    target, first = record.get("target"), (record.get("input") or [None])[0]
    if mean.ndim == 4 and mean.shape[1] == 1:  # channel-first (N, 1, X, Y): the one channel
        mean = mean[:, 0]
    # only (sample, x, y) fields with an input field are drawn
    if mean.ndim != 3 or first not in ds.fields or target not in ds.fields:
        return {}
    std = None if pred.kind == "point" else np.asarray(pred.std).reshape(mean.shape)
    q_out, axes, coords = field_quantities(ds, target)
    q_in = field_quantities(ds, first)[0]
    if [len(c) for c in coords] != list(mean.shape[1:]):
        axes, coords = None, None
    ids = np.asarray(ds.coords["sample"])
    figures = {}
    for name, i in picks.items():
        sample = ds[i]
        extra = "" if h1 is None else f", rel. H1 error {h1[i]:.3g}"
        fig = plot_sample(
            sample[first].numpy(),
            sample[target].numpy(),
            mean[i],
            std=None if std is None else std[i],
            title=f"{name} sample, rel. L2 error {l2[i]:.3g}{extra}",
            input=q_in,
            target=q_out,
            axes=axes,
            coords=coords,
            sample=int(ids[i]),
            split=split,
        )
        figures[name] = f"sample_{name}.png"
        save_figure(fig, out / figures[name], dpi=110)
    return figures


def _trajectory_figures(ds, split, record, pred, pred_file, picks, l2, out: Path):
    """Snapshots (truth, prediction, error at a few predicted times) of the best, median
    and worst trajectories of a rollout."""
    from pdesurrogates.datasets import open_dataset
    from pdesurrogates.runs._series import truth_at_times

    target = record.get("target")
    if target not in ds.fields or "time" not in ds.fields[target].dims:
        return {}
    pds = open_dataset(pred_file)
    times = np.asarray(pds.coords["time"], dtype=np.float64)
    mean = np.asarray(pred.mean)
    std = None if pred.kind == "point" else np.asarray(pred.std).reshape(mean.shape)[:, 0]
    q_out, axes, coords = field_quantities(ds, target)
    if [len(c) for c in coords] != list(mean.shape[3:]):
        axes, coords = None, None
    n_c = mean.shape[1]
    what = "" if n_c == 1 else f" (component 1 of {n_c})"
    ids = np.asarray(ds.coords["sample"])
    figures: dict[str, str] = {}
    for name, i in picks.items():
        same = next((k for k, j in picks.items() if j == i and k in figures), None)
        if same is not None:  # a small split: the median is also the best or worst
            figures[name] = figures[same]
            continue
        y = np.asarray(ds[i][target])[None]  # (1, C, T, X, Y) of the data
        y = truth_at_times(ds, target, y, times, pds.attrs.get("source"), ds.path)
        fig = plot_snapshots(
            y[0, 0],
            mean[i, 0],
            times,
            std=None if std is None else std[i],
            title=f"{name} trajectory{what}, rel. L2 error {l2[i]:.3g}",
            target=q_out,
            time=time_quantity(ds),
            axes=axes,
            coords=coords,
            sample=int(ids[i]),
            split=split,
        )
        figures[name] = f"sample_{name}.png"
        save_figure(fig, out / figures[name], dpi=110)
    return figures


def _markdown(m: dict[str, Any], extra: list[str] = ()) -> str:
    lines = [
        f"# Evaluation of {m['model'].upper()}"
        + (f" ensemble (K = {m['ensemble']})" if m["ensemble"] > 1 else ""),
        "",
        f"- run: `{m['run']}`",
        f"- data: `{m['data']}` (split: {m['split']}, {m['n_samples']} samples)",
        f"- predictive form scored: {m['form']}",
        f"- predictions: `{m['predictions']}`",
        "",
        "| metric | mean | median | std | min | max |",
        "|---|---|---|---|---|---|",
    ]
    for key in ("rel_l2", "rel_h1"):
        if "mean" in m.get(key, {}):
            s = m[key]
            lines.append(
                f"| relative {key[4:].upper()} | {s['mean']:.4g} | {s['median']:.4g} | "
                f"{s['std']:.4g} | {s['min']:.4g} | {s['max']:.4g} |"
            )
    if "pooled" in m["rel_l2"]:
        lines += [
            "",
            f"Relative L2 of all {m['n_samples']} outputs together: "
            f"{m['rel_l2']['pooled']:.4g}. Each sample is one value: its relative error "
            "is |error| / |value| (left out when a value is 0).",
        ]
    if "uq" in m:
        lines += ["", f"## Uncertainty ({m['form']})", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" for k, v in m["uq"].items()]
        lines += ["", "![calibration](calibration.png)"]
    if extra:
        lines += ["", *extra]
    if m["figures"]:
        lines += ["", "## Samples", ""]
    for name, fig in m["figures"].items():
        s = m["samples"][name]
        lines += [
            f"### {name} (index {s['index']}, rel L2 {s['rel_l2']:.3g})",
            "",
            f"![{name}]({fig})",
            "",
        ]
    lines += [
        "Per-sample errors: `per_sample.csv`. All numbers: `metrics.json` and "
        "`uq_report.json` (the same evaluator as `pdesurrogates uq evaluate`).",
        "",
    ]
    return "\n".join(lines)
