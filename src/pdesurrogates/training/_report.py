"""Evaluation reports of trained runs: per-sample errors, summary, figures, UQ metrics."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from pdesurrogates.io import atomic_write_bytes, atomic_write_text
from pdesurrogates.training._losses import rel_h1, rel_l2
from pdesurrogates.training._runs import _select, load_run, predict_fields, summarize

__all__ = ["evaluate_run", "plot_sample"]


def plot_sample(a, truth, pred, *, title: str = "", std=None):
    """Input, truth, prediction and |error| (and the ensemble std if given) side by side.

    Parameters
    ----------
    a, truth, pred, std : array, shape (X, Y)

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
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


def evaluate_run(
    run_dir: str | os.PathLike,
    data: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    split: str | None = "test",
    batch_size: int = 16,
) -> dict[str, Any]:
    """Evaluate a run on ``data`` and write a report to ``out_dir``.

    Writes ``metrics.json`` (summary of per-sample relative L2 and H1, plus UQ scalars for
    ensembles), ``per_sample.csv``, ``report.md``, PNG figures of the best, median and
    worst samples, and for ensembles ``uq_report.json`` (from
    :func:`pdesurrogates.uq.evaluate`) and a calibration plot.

    Parameters
    ----------
    split : str or None
        ``"test"`` (default), ``"valid"``, ``"train"``, or ``None``/``"all"`` for every
        sample. A split the file lacks raises :class:`DatasetError`.

    Returns
    -------
    dict
        The contents of ``metrics.json``.
    """
    from pdesurrogates.datasets import open_dataset

    model, record = load_run(run_dir)
    ds = _select(open_dataset(data), split)
    inputs, target = record["input"], record["target"]
    missing = [f for f in [*inputs, target] if f not in ds.fields]
    if missing:
        from pdesurrogates.errors import DatasetError

        raise DatasetError(
            f"{ds.path}: missing field(s) {missing} that the run was trained on "
            f"(inputs {inputs}, target {target!r})"
        )
    mean, samples, truth, x = predict_fields(model, ds, inputs, target, batch_size=batch_size)
    l2 = rel_l2(mean, truth, reduction="none").cpu().numpy()
    h1 = rel_h1(mean, truth, reduction="none").cpu().numpy()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    order = np.argsort(l2)
    picks = {"best": int(order[0]), "median": int(order[len(order) // 2]), "worst": int(order[-1])}
    metrics: dict[str, Any] = {
        "run": str(Path(run_dir).resolve()),
        "data": str(Path(data).resolve()),
        "split": split or "all",
        "model": record["kind"],
        "ensemble": record.get("ensemble", 1),
        "n_samples": len(l2),
        "rel_l2": summarize(l2),
        "rel_h1": summarize(h1),
        "samples": {
            k: {"index": int(ds.indices[v]), "rel_l2": float(l2[v])} for k, v in picks.items()
        },
    }
    std = None
    if samples is not None:
        from pdesurrogates.uq import Prediction, evaluate, plots

        n_pts = truth.shape[-1]
        pred = Prediction(mean, samples=samples)
        report = evaluate(pred, truth, spacing=1.0 / n_pts, meta={"run": metrics["run"]})
        atomic_write_text(out / "uq_report.json", report.to_json())
        metrics["uq"] = {k: float(v) for k, v in report.scalars.items()}
        cov = report.by_level.get("coverage")
        if cov is not None:
            for level, c in zip(report.levels, cov, strict=True):
                metrics["uq"][f"coverage_{round(100 * float(level))}"] = float(c)
        fig = plots.plot_calibration(report)
        _save_fig(getattr(fig, "figure", fig), out / "calibration.png")
        std = samples.std(dim=0, correction=1)
    # per-sample table
    buf = io.StringIO()
    wr = csv.writer(buf)
    wr.writerow(["position", "sample_index", "rel_l2", "rel_h1"])
    for i, (a, b) in enumerate(zip(l2, h1, strict=True)):
        wr.writerow([i, int(ds.indices[i]), f"{a:.6g}", f"{b:.6g}"])
    atomic_write_text(out / "per_sample.csv", buf.getvalue())
    figures = {}
    for name, i in picks.items():
        fig = plot_sample(
            x[i, 0].cpu().numpy(),
            truth[i, 0].cpu().numpy(),
            mean[i, 0].cpu().numpy(),
            std=None if std is None else std[i, 0].cpu().numpy(),
            title=f"{name} sample (index {int(ds.indices[i])}): rel L2 {l2[i]:.3g}, "
            f"rel H1 {h1[i]:.3g}",
        )
        figures[name] = f"sample_{name}.png"
        _save_fig(fig, out / figures[name])
    metrics["figures"] = figures
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    atomic_write_text(out / "report.md", _markdown(metrics))
    return metrics


def _markdown(m: dict[str, Any]) -> str:
    lines = [
        f"# Evaluation of {m['model'].upper()}"
        + (f" ensemble (K = {m['ensemble']})" if m["ensemble"] > 1 else ""),
        "",
        f"- run: `{m['run']}`",
        f"- data: `{m['data']}` (split: {m['split']}, {m['n_samples']} samples)",
        "",
        "| metric | mean | median | std | min | max |",
        "|---|---|---|---|---|---|",
    ]
    for key in ("rel_l2", "rel_h1"):
        s = m[key]
        lines.append(
            f"| relative {key[4:].upper()} | {s['mean']:.4g} | {s['median']:.4g} | "
            f"{s['std']:.4g} | {s['min']:.4g} | {s['max']:.4g} |"
        )
    if "uq" in m:
        lines += ["", "## Uncertainty (ensemble)", "", "| metric | value |", "|---|---|"]
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
    lines += ["Per-sample errors: `per_sample.csv`. All numbers: `metrics.json`.", ""]
    return "\n".join(lines)
