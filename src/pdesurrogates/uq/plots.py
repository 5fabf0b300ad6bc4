"""Figures for UQ reports, propagation and sensitivity studies.

Every function builds a ``matplotlib.figure.Figure`` directly (no pyplot state, so it is
safe in scripts, servers and threads; render with ``fig.savefig(path)``) and returns it.
Pass ``ax=`` to draw into an existing axes instead; the figure of that axes is returned.
The look (sizes, labels with units, colorbars) is the package's one figure style,
:mod:`pdesurrogates._figures`; pass :class:`~pdesurrogates._figures.Quantity` objects
(name, long name, units) to label fields and grid axes with the units of your data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pdesurrogates._figures import (
    Quantity,
    figure,
    image_panel,
    label_axes,
    panel_title,
    sample_tag,
    styled,
)
from pdesurrogates.uq._evaluate import evaluate
from pdesurrogates.uq._prediction import Prediction, match_channel_axis
from pdesurrogates.uq._report import UQReport

__all__ = [
    "Quantity",
    "plot_calibration",
    "plot_coverage",
    "plot_error_maps",
    "plot_pit",
    "plot_pred_vs_true",
    "plot_propagation",
    "plot_rollout_error",
    "plot_sobol",
]


def _axes(ax=None, size=(4.2, 3.8)):
    if ax is not None:
        return ax.figure, ax
    fig, axes = figure(size=size)
    return fig, axes[0, 0]


def _quantity(q: Quantity | str | None, default: str) -> Quantity:
    if isinstance(q, Quantity):
        return q
    return Quantity(q or default)


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


def _calibration_band(ax, r: UQReport, e: np.ndarray) -> None:
    """What the pooled curve should be compared with: for field outputs, the spread of
    the per-field curves; for scalar outputs (one point per sample, whose own curve is a
    0/1 step) the 95 % band of a calibrated model with as many samples."""
    if r.field_shape and int(np.prod(r.field_shape)) > 1:
        per = r.calibration_observed_per_sample
        if per is not None and r.n_fields > 1:
            lo, hi = np.quantile(per, [0.1, 0.9], axis=0)
            ax.fill_between(
                e, lo, hi, color="C0", alpha=0.15, lw=0, label="10–90 % of per-sample curves"
            )
        return
    n = max(r.n_fields, 1)
    half = 1.96 * np.sqrt(e * (1 - e) / n)
    ax.fill_between(
        e,
        np.clip(e - half, 0, 1),
        np.clip(e + half, 0, 1),
        color="0.6",
        alpha=0.25,
        lw=0,
        label=f"95 % band of a calibrated model (n = {n})",
    )


@styled
def plot_calibration(
    report: UQReport | Prediction,
    y: Any = None,
    *,
    ax=None,
    per_sample: bool = True,
    label: str | None = None,
):
    """Calibration curve (observed vs expected proportion in central intervals).

    The red area between the curve and the diagonal is the miscalibration area. With
    ``per_sample``, field outputs also show the 10–90 % band of the per-sample curves
    (pooled calibration can hide badly calibrated fields); scalar outputs show the 95 %
    sampling band of a perfectly calibrated model instead. Every shaded region has a
    legend entry.
    """
    r = _report(report, y)
    if r.calibration_expected is None:
        raise ValueError("the report is of a point prediction: there is no calibration curve")
    fig, ax = _axes(ax)
    e, o = r.calibration_expected, r.calibration_observed
    ax.plot([0, 1], [0, 1], color="0.3", lw=1, ls="--", label="ideal")
    if per_sample:
        _calibration_band(ax, r, e)
    area = r.scalars.get("miscalibration_area", float("nan"))
    ax.fill_between(
        e, e, o, color="C3", alpha=0.25, lw=0, label=f"miscalibration area = {area:.3f}"
    )
    ax.plot(e, o, color="C0", lw=2, label=label or "observed (all points pooled)")
    label_axes(ax, "expected proportion in central interval", "observed proportion")
    ax.set(xlim=(0, 1), ylim=(0, 1), title=_title("Calibration", r))
    ax.set_aspect("equal")
    ax.legend(loc="upper left")
    return fig


def _title(text: str, r: UQReport) -> str:
    """``text`` with the field and split of the report when it records them."""
    field, split = r.meta.get("field"), r.meta.get("split")
    what = ", ".join(p for p in (field and f"field {field}", sample_tag(split=split)) if p)
    return f"{text} ({what})" if what else text


@styled
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
    rank = r.kind == "samples"
    name = "normalised rank" if rank else "PIT value"
    ax.stairs(dens, edges, fill=True, alpha=0.6, color="C0", label=f"histogram of {name}s")
    ax.axhline(1.0, color="0.3", ls="--", lw=1, label="uniform (calibrated)")
    label_axes(ax, f"{name} (–)", "density")
    top = 1.35 * max(float(dens.max()), 1.0)
    ax.set(
        xlim=(0, 1), ylim=(0, top), title=_title("Rank histogram" if rank else "PIT histogram", r)
    )
    ax.legend(loc="upper center", ncols=2)
    return fig


@styled
def plot_coverage(report: UQReport | Prediction, y: Any = None, *, ax=None):
    """Observed coverage against nominal level: pooled, 10th percentile over fields and
    whole-field coverage."""
    r = _report(report, y)
    if not r.by_level:
        raise ValueError("the report is of a point prediction: there is no coverage")
    fig, ax = _axes(ax)
    lv = r.levels
    ax.plot([0, 1], [0, 1], color="0.3", lw=1, ls="--", label="nominal")
    ax.plot(lv, r.by_level["coverage"], "o-", color="C0", label="pointwise (pooled)")
    ax.plot(lv, r.by_level["coverage_p10"], "v:", color="C0", label="pointwise, field p10")
    ax.plot(lv, r.by_level["field_coverage"], "s-", color="C1", label="whole field")
    label_axes(ax, "nominal level of central interval", "observed coverage")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), title=_title("Coverage", r))
    ax.legend(loc="upper left")
    return fig


def _field_arrays(pred, y, index):
    """Mean, truth and std of field ``index``, without the channel axis of a one-channel
    field (``(N, 1, X, Y)`` and ``(N, X, Y)`` are both accepted, on either side)."""
    p = pred if isinstance(pred, Prediction) else Prediction(pred)
    mean = _np(p.mean)
    yt = match_channel_axis(_np(y), mean.shape)
    if yt.shape != mean.shape:
        raise ValueError(f"y has shape {yt.shape} but pred has shape {mean.shape}")
    if not 0 <= index < yt.shape[0]:
        raise ValueError(f"index={index} is out of range for {yt.shape[0]} fields")
    sd = _np(p.std)
    s = None if sd is None else sd.reshape(mean.shape)[index]
    m, t = mean[index], yt[index]
    if m.ndim >= 2 and m.shape[0] == 1:  # (1, *grid): the one channel
        m, t, s = m[0], t[0], None if s is None else s[0]
    return m, t, s


@styled
def plot_error_maps(
    pred: Prediction | Any,
    y: Any,
    *,
    index: int = 0,
    cmap: str = "viridis",
    field: Quantity | str | None = None,
    axes: Sequence[Quantity] | None = None,
    coords: Sequence[Any] | None = None,
    sample: Any = None,
    split: str | None = None,
):
    """Truth, predicted mean, absolute error and predictive std of field ``index``.

    2-D fields are drawn as images, 1-D fields as curves (with a ±2σ band).

    Parameters
    ----------
    pred, y : Prediction or array, and array
        One-channel fields, channel-first ``(N, 1, *grid)``; ``(N, *grid)`` (the channel
        axis of 1 left out) is accepted on either side.
    field : Quantity or str, optional
        What the field is (long name and units label the colorbars); default ``"value"``.
    axes, coords : optional
        Quantities and coordinate values of the grid axes (default: grid indices).
    sample, split : optional
        The sample id and split shown in the title (default: position ``index``).
    """
    m, t, s = _field_arrays(pred, y, index)
    q = _quantity(field, "value")
    sample = index if sample is None else sample
    if m.ndim == 1:
        return _error_curve(m, t, s, q, axes, coords, sample, split)
    if m.ndim != 2:
        raise ValueError(f"error maps need 1-D or 2-D fields, got fields of shape {m.shape}")
    panels = [
        ("truth", t, q, cmap),
        ("predicted mean", m, q, cmap),
        ("absolute error", np.abs(m - t), q.derived("|mean − truth| of {}"), "magma"),
    ]
    if s is not None:
        panels.append(("predictive std", s, q.derived("std of {}"), "magma"))
    fig, grid = figure(1, len(panels))
    shared = {"vmin": min(t.min(), m.min()), "vmax": max(t.max(), m.max())}
    for k, (title, img, qk, cm) in enumerate(panels):
        kw = shared if k < 2 else {}
        image_panel(fig, grid[0, k], img, qk, axes=axes, coords=coords, title=title, cmap=cm, **kw)
    panel_title(fig, q.title, sample=sample, split=split)
    return fig


def _error_curve(m, t, s, q, axes, coords, sample, split):
    fig, grid = figure(size=(6.0, 3.6))
    ax = grid[0, 0]
    x = np.arange(m.size) if coords is None else np.asarray(coords[0])
    ax.plot(x, t, color="k", lw=1.5, label="truth")
    ax.plot(x, m, color="C0", lw=1.5, label="predicted mean")
    if s is not None:
        ax.fill_between(x, m - 2 * s, m + 2 * s, color="C0", alpha=0.2, lw=0, label="mean ± 2 std")
    label_axes(ax, axes[0] if axes else Quantity("grid index"), q)
    ax.legend()
    panel_title(ax, q.title, sample=sample, split=split)
    return fig


def _trajectory_band(per: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """Lower and upper edges of the spread of per-trajectory errors ``per`` (N, T) and
    its legend label: the 10–90 % range over 10 or more trajectories, else min–max."""
    n = per.shape[0]
    if n >= 10:
        lo, hi = np.quantile(per, [0.1, 0.9], axis=0)
        return lo, hi, f"10–90 % of {n} trajectories"
    return per.min(0), per.max(0), f"range of {n} trajectories"


@styled
def plot_rollout_error(
    report: UQReport,
    *,
    ax=None,
    time: Quantity | str | None = None,
    threshold: float = 0.1,
):
    """Relative L2 error of every state of a rollout against time (log scale).

    The line is ``report.by_step["rel_l2"]`` (mean over trajectories), the shaded band
    the spread of the per-trajectory errors (``report.per_sample["rel_l2_by_step"]``:
    10–90 % of them, or their range for fewer than 10), and the dashed line the
    ``threshold`` of ``steps_to_10pct`` / ``time_to_10pct`` (10 %); the first state above
    it is marked. ``time`` (a Quantity, e.g. the data's ``time`` coordinate with its
    units, or a name) labels the x axis; default ``"time"``.

    Parameters
    ----------
    report : UQReport
        Of trajectories: ``evaluate(..., time_axis=...)`` or ``uq evaluate`` of a
        rollout's prediction file.
    """
    if not isinstance(report, UQReport) or "rel_l2" not in report.by_step:
        raise ValueError(
            "plot_rollout_error needs the UQReport of trajectories (evaluate(..., "
            "time_axis=...) or the prediction file of a rollout); this one has no per-step errors"
        )
    err = np.asarray(report.by_step["rel_l2"], dtype=np.float64)
    t = report.step_times if report.step_times is not None else np.arange(1, err.size + 1)
    t = np.asarray(t, dtype=np.float64)
    fig, ax = _axes(ax, size=(5.2, 3.6))
    per = report.per_sample.get("rel_l2_by_step")
    if per is not None and np.asarray(per).shape[0] > 1:
        lo, hi, what = _trajectory_band(np.asarray(per, dtype=np.float64))
        ax.fill_between(t, lo, hi, color="C0", alpha=0.2, lw=0, label=what)
    n = report.n_fields
    what = f"mean over {n} trajector{'y' if n == 1 else 'ies'}"
    ax.plot(t, err, "o-", color="C0", ms=3, label=what)
    ax.axhline(threshold, color="C3", ls="--", lw=1, label=f"{100 * threshold:g} % threshold")
    above = np.flatnonzero(err > threshold)
    if above.size:
        i = int(above[0])
        ax.plot(t[i], err[i], "s", color="C3", ms=6, mfc="none",
                label=f"first above: step {i + 1}, t = {t[i]:.4g}")  # fmt: skip
    ax.set_yscale("log")
    label_axes(ax, _quantity(time, "time"), "relative L2 error (–)")
    ax.set(title=_title("Error along the rollout", report))
    ax.legend(loc="best")
    return fig


@styled
def plot_pred_vs_true(
    pred: Prediction | Any,
    y: Any,
    *,
    ax=None,
    max_points: int = 20000,
    seed: int = 0,
    field: Quantity | str | None = None,
    split: str | None = None,
):
    """Predicted mean against truth (a random subset of ``max_points`` points), y = x line.

    ``field`` (a Quantity or a name) labels both axes with its units; ``split`` is named
    in the title.
    """
    p = pred if isinstance(pred, Prediction) else Prediction(pred)
    m = _np(p.mean).ravel()
    t = _np(y).ravel()
    if m.shape != t.shape:
        raise ValueError("y and pred must have the same number of points")
    n = m.size
    if m.size > max_points:
        idx = np.random.default_rng(seed).choice(m.size, max_points, replace=False)
        m, t = m[idx], t[idx]
    fig, ax = _axes(ax)
    n_fields = int(_np(y).shape[0]) if _np(y).ndim else 1
    what = "grid points" if n > n_fields else "samples"
    label = f"{what} ({m.size} of {n})" if m.size < n else what
    ax.scatter(t, m, s=3, alpha=0.3, color="C0", lw=0, rasterized=True, label=label)
    lo, hi = float(min(t.min(), m.min())), float(max(t.max(), m.max()))
    ax.plot([lo, hi], [lo, hi], color="0.3", ls="--", lw=1, label="predicted = true")
    q = _quantity(field, "value")
    label_axes(ax, q.derived("true {}"), q.derived("predicted mean of {}"))
    tag = sample_tag(split=split)
    ax.set(title=f"Predicted vs true ({n_fields} samples{', ' + tag if tag else ''})")
    ax.set_aspect("equal")
    ax.legend(loc="upper left", markerscale=3)
    return fig


@styled
def plot_propagation(result, *, ax=None, bins: int = 60, output: Quantity | str | None = None):
    """Histogram and KDE of a scalar propagated output (and the reference KDE if any).

    ``output`` (a Quantity or a name) labels the x axis with its units.
    """
    if result.outputs is None or result.outputs.ndim != 1:
        raise ValueError("plot_propagation needs a scalar output kept with keep_samples=True")
    fig, ax = _axes(ax, size=(5.2, 3.6))
    ax.hist(result.outputs, bins=bins, density=True, color="C0", alpha=0.35, label="model samples")
    if result.kde_x is not None:
        ax.plot(result.kde_x, result.kde_density, color="C0", lw=2, label="model KDE")
    ref = result.reference or {}
    if "kde_density" in ref:
        ax.plot(
            ref["kde_x"], ref["kde_density"], color="C3", lw=1.5, ls="--", label="reference KDE"
        )
    ax.axvline(float(result.mean), color="k", lw=1, label=f"model mean {float(result.mean):.4g}")
    q = _quantity(output, "output")
    label_axes(ax, q, q.derived("probability density", units=_inverse(q.units)))
    ax.set(title=f"Output distribution ({result.n_samples} samples, {result.method})")
    ax.legend()
    return fig


def _inverse(units: str) -> str:
    u = (units or "").strip()
    if u in ("", "1"):
        return u
    return f"1/{u}" if " " not in u else f"1/({u})"


@styled
def plot_sobol(result, *, ax=None, output_index: int = 0):
    """Bar chart of first-order and total Sobol' indices with their confidence intervals."""
    s1 = np.asarray(result.S1).reshape(len(result.names), -1)[:, output_index]
    st = np.asarray(result.ST).reshape(len(result.names), -1)[:, output_index]
    c1 = np.asarray(result.S1_conf).reshape(len(result.names), -1)[:, output_index]
    ct = np.asarray(result.ST_conf).reshape(len(result.names), -1)[:, output_index]
    fig, ax = _axes(ax, size=(1.0 * len(result.names) + 2.8, 3.4))
    x = np.arange(len(result.names))
    ax.bar(x - 0.18, s1, 0.36, yerr=c1, capsize=3, label="first order S1", color="C0")
    ax.bar(x + 0.18, st, 0.36, yerr=ct, capsize=3, label="total ST", color="C1")
    ax.set_xticks(x, result.names)
    level = round(100 * float(getattr(result, "conf_level", 0.95)))
    label_axes(ax, "input", f"Sobol' index (–), whiskers: {level} % CI")
    ax.set(ylim=(min(0.0, float(np.min(s1 - c1))), 1.0), title="Sobol' indices")
    ax.legend()
    return fig
