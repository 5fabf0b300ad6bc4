"""The evaluation report of a trained run: summary, per-sample table, figures.

Every number is read from the :class:`~pdesurrogates.uq.UQReport` that
:func:`pdesurrogates.uq.evaluate` computed, so the summary, the uncertainty table and
``uq_report.json`` can never disagree.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from pdesurrogates.io import atomic_write_bytes, atomic_write_text

__all__ = ["plot_sample", "summarize", "write_run_report"]


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


def plot_sample(a, truth, pred, *, title: str = "", std=None):
    """Input, truth, prediction and absolute error (and the ensemble std if given) side by side.

    Parameters
    ----------
    a, truth, pred, std : array, shape (X, Y)

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    panels = [
        ("input", a, "viridis"),
        ("truth", truth, "magma"),
        ("prediction", pred, "magma"),
        ("|error|", np.abs(pred - truth), "inferno"),
    ]
    if std is not None:
        panels.append(("ensemble std", std, "inferno"))
    fig = Figure(figsize=(3.2 * len(panels), 3.2), layout="constrained")
    axes = fig.subplots(1, len(panels))
    vmin, vmax = float(min(truth.min(), pred.min())), float(max(truth.max(), pred.max()))
    for ax, (name, img, cmap) in zip(axes, panels, strict=True):
        shared = name in ("truth", "prediction")
        im = ax.imshow(
            np.asarray(img).T,
            origin="lower",
            extent=(0, 1, 0, 1),
            cmap=cmap,
            vmin=vmin if shared else None,
            vmax=vmax if shared else None,
        )
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, shrink=0.8)
    if title:
        fig.suptitle(title)
    return fig


def _save_fig(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(path, buf.getvalue())


def _uq_numbers(report) -> dict[str, float]:
    uq = {k: float(v) for k, v in report.scalars.items() if k not in ("rel_l2", "rel_h1")}
    cov = report.by_level.get("coverage")
    if cov is not None:
        for level, c in zip(report.levels, cov, strict=True):
            uq[f"coverage_{round(100 * float(level))}"] = float(c)
    return uq


def _form(report) -> str:
    return str(getattr(report, "form", None) or report.kind)


def write_run_report(
    run_dir: str | os.PathLike, data: str | os.PathLike, pred_file, report, out: Path
) -> dict[str, Any]:
    """Write ``metrics.json``, ``per_sample.csv``, ``report.md`` and sample figures.

    ``report`` is the :class:`~pdesurrogates.uq.UQReport` of ``pred_file`` against
    ``data``; returns the contents of ``metrics.json``.
    """
    from pdesurrogates.datasets import open_dataset
    from pdesurrogates.runs._predict import load_run, select_split
    from pdesurrogates.uq import load_prediction

    _, record = load_run(run_dir)
    split = report.meta["split"]
    ds = select_split(open_dataset(data), split)
    l2 = np.asarray(report.per_sample["rel_l2"], dtype=np.float64)
    h1 = report.per_sample.get("rel_h1")
    order = np.argsort(l2)
    picks = {"best": int(order[0]), "median": int(order[len(order) // 2]), "worst": int(order[-1])}
    index = np.asarray(ds.indices)
    metrics: dict[str, Any] = {
        "run": str(Path(run_dir).resolve()),
        "data": str(Path(data).resolve()),
        "predictions": str(Path(pred_file)),
        "split": split,
        "model": record["kind"],
        "ensemble": record.get("ensemble", 1),
        "form": _form(report),
        "n_samples": len(l2),
        "rel_l2": summarize(l2),
        "samples": {k: {"index": int(index[v]), "rel_l2": float(l2[v])} for k, v in picks.items()},
    }
    if h1 is not None:
        metrics["rel_h1"] = summarize(h1)
    if report.kind != "point":
        metrics["uq"] = _uq_numbers(report)
    buf = io.StringIO()
    wr = csv.writer(buf)
    wr.writerow(["position", "sample_index", "rel_l2", "rel_h1"])
    for i in range(len(l2)):
        wr.writerow([i, int(index[i]), f"{l2[i]:.6g}", "" if h1 is None else f"{h1[i]:.6g}"])
    atomic_write_text(out / "per_sample.csv", buf.getvalue())
    pred = load_prediction(pred_file)
    metrics["figures"] = _sample_figures(ds, record, pred, picks, l2, h1, out)
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    atomic_write_text(out / "report.md", _markdown(metrics))
    return metrics


def _sample_figures(ds, record, pred, picks, l2, h1, out: Path) -> dict[str, str]:
    mean = np.asarray(pred.mean)
    target, first = record.get("target"), (record.get("input") or [None])[0]
    # only (sample, x, y) fields with an input field are drawn
    if mean.ndim != 3 or first not in ds.fields or target not in ds.fields:
        return {}
    std = None if pred.kind == "point" else np.asarray(pred.std)
    figures = {}
    for name, i in picks.items():
        sample = ds[i]
        a = sample[first].numpy()
        a = a[..., 0] if a.ndim == 3 else a
        extra = "" if h1 is None else f", rel H1 {h1[i]:.3g}"
        fig = plot_sample(
            a,
            sample[target].numpy(),
            mean[i],
            std=None if std is None else std[i],
            title=f"{name} sample (index {int(ds.indices[i])}): rel L2 {l2[i]:.3g}{extra}",
        )
        figures[name] = f"sample_{name}.png"
        _save_fig(fig, out / figures[name])
    return figures


def _markdown(m: dict[str, Any]) -> str:
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
        if key in m:
            s = m[key]
            lines.append(
                f"| relative {key[4:].upper()} | {s['mean']:.4g} | {s['median']:.4g} | "
                f"{s['std']:.4g} | {s['min']:.4g} | {s['max']:.4g} |"
            )
    if "uq" in m:
        lines += ["", f"## Uncertainty ({m['form']})", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" for k, v in m["uq"].items()]
        lines += ["", "![calibration](calibration.png)"]
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
