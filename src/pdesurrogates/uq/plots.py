"""Figures for UQ reports, propagation and sensitivity studies.

Every function builds a ``matplotlib.figure.Figure`` directly (no pyplot state, so it is
safe in scripts, servers and threads; render with ``fig.savefig(path)``) and returns it.
Pass ``ax=`` to draw into an existing axes instead; the figure of that axes is returned.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pdesurrogates.uq._evaluate import evaluate
from pdesurrogates.uq._prediction import Prediction
from pdesurrogates.uq._report import UQReport

__all__ = [
    "plot_calibration",
    "plot_coverage",
    "plot_error_maps",
    "plot_pit",
    "plot_pred_vs_true",
    "plot_propagation",
    "plot_sobol",
]


def _axes(ax=None, figsize=(4.5, 4.0)):
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot(1, 1, 1)


def _report(obj: Any, y: Any = None) -> UQReport:
    if isinstance(obj, UQReport):
        return obj
    if y is None:
        raise ValueError("pass a UQReport, or a Prediction together with the truth y")
    return evaluate(obj, y)


def _np(x):
    if x is None:
        return None
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def plot_calibration(
    report: UQReport | Prediction,
    y: Any = None,
    *,
    ax=None,
    per_sample: bool = True,
    label: str | None = None,
):
    """Calibration curve (observed vs expected proportion in central intervals).

    The shaded area is the miscalibration area; with ``per_sample`` the 10-90 % band of
    the per-field curves is drawn too (pooled calibration can hide badly calibrated fields).
    """
    r = _report(report, y)
    if r.calibration_expected is None:
        raise ValueError("the report is of a point prediction: there is no calibration curve")
    fig, ax = _axes(ax)
    e, o = r.calibration_expected, r.calibration_observed
    ax.plot([0, 1], [0, 1], color="0.5", lw=1, ls="--", label="ideal")
    if per_sample and r.calibration_observed_per_sample is not None and r.n_fields > 1:
        lo, hi = np.quantile(r.calibration_observed_per_sample, [0.1, 0.9], axis=0)
        ax.fill_between(e, lo, hi, color="C0", alpha=0.15, lw=0, label="fields 10-90 %")
    ax.fill_between(e, e, o, color="C3", alpha=0.15, lw=0)
    area = r.scalars.get("miscalibration_area", float("nan"))
    ax.plot(e, o, color="C0", lw=2, label=label or f"pooled (area {area:.3f})")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="expected proportion in interval",
        ylabel="observed proportion",
        title="Calibration",
    )
    ax.set_aspect("equal")
    ax.legend(loc="upper left", fontsize="small")
    return fig


def plot_pit(report: UQReport | Prediction, y: Any = None, *, ax=None):
    """PIT histogram (rank histogram for ensembles) as a density, with the uniform line.

    U-shaped: over-confident; hump-shaped: under-confident; sloped: biased.
    """
    r = _report(report, y)
    if r.pit_counts is None:
        raise ValueError("the report is of a point prediction: there is no PIT histogram")
    fig, ax = _axes(ax)
    edges, counts = r.pit_edges, r.pit_counts
    dens = counts / max(counts.sum(), 1) / np.diff(edges)
    ax.stairs(dens, edges, fill=True, alpha=0.6, color="C0")
    ax.axhline(1.0, color="0.3", ls="--", lw=1)
    title = "Rank histogram" if r.kind == "samples" else "PIT histogram"
    ax.set(xlim=(0, 1), xlabel="PIT value", ylabel="density", title=title)
    return fig


def plot_coverage(report: UQReport | Prediction, y: Any = None, *, ax=None):
    """Observed coverage against nominal level: pooled, 10th percentile over fields and
    whole-field coverage."""
    r = _report(report, y)
    if not r.by_level:
        raise ValueError("the report is of a point prediction: there is no coverage")
    fig, ax = _axes(ax)
    lv = r.levels
    ax.plot([0, 1], [0, 1], color="0.5", lw=1, ls="--", label="nominal")
    ax.plot(lv, r.by_level["coverage"], "o-", color="C0", label="pointwise (pooled)")
    ax.plot(lv, r.by_level["coverage_p10"], "v:", color="C0", label="pointwise, field p10")
    ax.plot(lv, r.by_level["field_coverage"], "s-", color="C1", label="whole field")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.02),
        xlabel="nominal level",
        ylabel="observed coverage",
        title="Coverage",
    )
    ax.legend(loc="upper left", fontsize="small")
    return fig


def plot_error_maps(pred: Prediction | Any, y: Any, *, index: int = 0, cmap: str = "viridis"):
    """Truth, predicted mean, absolute error and predictive std of field ``index``.

    2-D fields are drawn as images, 1-D fields as curves (with a ±2σ band).
    """
    p = pred if isinstance(pred, Prediction) else Prediction(pred)
    mean = _np(p.mean)
    yt = _np(y)
    if yt.shape != mean.shape:
        raise ValueError(f"y has shape {yt.shape} but pred has shape {mean.shape}")
    if not 0 <= index < yt.shape[0]:
        raise ValueError(f"index={index} is out of range for {yt.shape[0]} fields")
    sd = _np(p.std)
    m, t = mean[index], yt[index]
    s = None if sd is None else sd[index]
    from matplotlib.figure import Figure

    if m.ndim == 1:
        fig = Figure(figsize=(6, 4), layout="constrained")
        ax = fig.add_subplot(1, 1, 1)
        x = np.arange(m.size)
        ax.plot(x, t, color="k", lw=1.5, label="truth")
        ax.plot(x, m, color="C0", lw=1.5, label="mean")
        if s is not None:
            ax.fill_between(x, m - 2 * s, m + 2 * s, color="C0", alpha=0.2, lw=0, label="±2σ")
        ax.set(xlabel="grid index", ylabel="value", title=f"field {index}")
        ax.legend(fontsize="small")
        return fig
    if m.ndim != 2:
        raise ValueError(f"error maps need 1-D or 2-D fields, got fields of shape {m.shape}")
    panels = [("truth", t, cmap), ("mean", m, cmap), ("|error|", np.abs(m - t), "magma")]
    if s is not None:
        panels.append(("std", s, "magma"))
    fig = Figure(figsize=(3.2 * len(panels), 3.0), layout="constrained")
    vmin, vmax = min(t.min(), m.min()), max(t.max(), m.max())
    for k, (title, img, cm) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        kw = {"vmin": vmin, "vmax": vmax} if k < 2 else {}
        im = ax.imshow(img.T, origin="lower", cmap=cm, **kw)
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def plot_pred_vs_true(
    pred: Prediction | Any, y: Any, *, ax=None, max_points: int = 20000, seed: int = 0
):
    """Predicted mean against truth (a random subset of ``max_points`` points), y = x line."""
    p = pred if isinstance(pred, Prediction) else Prediction(pred)
    m = _np(p.mean).ravel()
    t = _np(y).ravel()
    if m.shape != t.shape:
        raise ValueError("y and pred must have the same number of points")
    if m.size > max_points:
        idx = np.random.default_rng(seed).choice(m.size, max_points, replace=False)
        m, t = m[idx], t[idx]
    fig, ax = _axes(ax)
    ax.scatter(t, m, s=3, alpha=0.3, color="C0", lw=0, rasterized=True)
    lo, hi = float(min(t.min(), m.min())), float(max(t.max(), m.max()))
    ax.plot([lo, hi], [lo, hi], color="0.3", ls="--", lw=1)
    ax.set(xlabel="true", ylabel="predicted mean", title="Predicted vs true")
    ax.set_aspect("equal")
    return fig


def plot_propagation(result, *, ax=None, bins: int = 60):
    """Histogram and KDE of a scalar propagated output (and the reference KDE if any)."""
    if result.outputs is None or result.outputs.ndim != 1:
        raise ValueError("plot_propagation needs a scalar output kept with keep_samples=True")
    fig, ax = _axes(ax, figsize=(5.5, 4.0))
    ax.hist(result.outputs, bins=bins, density=True, color="C0", alpha=0.35, label="samples")
    if result.kde_x is not None:
        ax.plot(result.kde_x, result.kde_density, color="C0", lw=2, label="KDE")
    ref = result.reference or {}
    if "kde_density" in ref:
        ax.plot(
            ref["kde_x"], ref["kde_density"], color="C3", lw=1.5, ls="--", label="reference KDE"
        )
    ax.axvline(float(result.mean), color="k", lw=1, label="mean")
    ax.set(
        xlabel="output", ylabel="density", title=f"Output distribution ({result.n_samples} samples)"
    )
    ax.legend(fontsize="small")
    return fig


def plot_sobol(result, *, ax=None, output_index: int = 0):
    """Bar chart of first-order and total Sobol' indices with their confidence intervals."""
    s1 = np.asarray(result.S1).reshape(len(result.names), -1)[:, output_index]
    st = np.asarray(result.ST).reshape(len(result.names), -1)[:, output_index]
    c1 = np.asarray(result.S1_conf).reshape(len(result.names), -1)[:, output_index]
    ct = np.asarray(result.ST_conf).reshape(len(result.names), -1)[:, output_index]
    fig, ax = _axes(ax, figsize=(1.2 * len(result.names) + 2.5, 3.8))
    x = np.arange(len(result.names))
    ax.bar(x - 0.18, s1, 0.36, yerr=c1, capsize=3, label="first order S1", color="C0")
    ax.bar(x + 0.18, st, 0.36, yerr=ct, capsize=3, label="total ST", color="C1")
    ax.set_xticks(x, result.names)
    ax.set(ylim=(min(0.0, float(np.min(s1 - c1))), 1.0), ylabel="index", title="Sobol' indices")
    ax.legend(fontsize="small")
    return fig
