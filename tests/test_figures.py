"""Every figure the package writes passes what a reviewer checks first.

Each figure type is rendered on small data and its matplotlib objects (not pixels) are
inspected: every axes that shows data has x and y labels, every colorbar a label, labels
carry the units stored in the dataset file, and every shaded region has a legend entry.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from scipy import stats

from pdesurrogates import _figures
from pdesurrogates._figures import Quantity, robust_limits
from pdesurrogates.datasets import DatasetWriter, FieldSpec, open_dataset
from pdesurrogates.runs import evaluate_files, field_quantities, plot_mf_fit, plot_sample
from pdesurrogates.solvers.reference import forrester
from pdesurrogates.surrogates import mf_uq_study, plot_uq_study
from pdesurrogates.training._acoustics_plots import plot_field_snapshots, plot_impulse_responses
from pdesurrogates.uq import (
    Prediction,
    evaluate,
    ishigami,
    plots,
    propagate,
    save_prediction,
    sobol_indices,
)


# ----------------------------------------------------------------------------- checks
def _is_colorbar(ax) -> bool:
    return getattr(ax, "_colorbar", None) is not None


def _has_data(ax) -> bool:
    return bool(ax.lines or ax.images or ax.collections or ax.patches or ax.containers)


def _legend_labels(ax) -> set[str]:
    leg = ax.get_legend()
    return set() if leg is None else {t.get_text() for t in leg.get_texts()}


def _shaded(ax):
    """Labels of the shaded regions of ``ax``: fill_between areas, histograms and filled
    step patches (bars of a bar chart are reported through their container)."""
    in_container = {id(p) for c in ax.containers for p in c}
    for c in ax.collections:
        if isinstance(c, PolyCollection) and c.get_alpha() not in (None, 1.0):
            yield c.get_label()
    for c in ax.containers:
        if isinstance(c, BarContainer):  # bar(label=) names the container, hist the 1st bar
            label = c.get_label()
            yield c.patches[0].get_label() if label.startswith("_") else label
    for p in ax.patches:
        if id(p) not in in_container and p.get_fill():
            yield p.get_label()


def reviewable(fig, units: tuple[str, ...] = ()) -> list[str]:
    """What a reviewer would flag in ``fig``; ``units`` must each appear in some label."""
    assert isinstance(fig, Figure)
    problems, labels = [], []
    for i, ax in enumerate(fig.axes):
        if _is_colorbar(ax):
            text = ax.get_ylabel() or ax.get_xlabel()
            labels.append(text)
            if not text.strip():
                problems.append(f"colorbar {i} has no label")
            continue
        if not _has_data(ax):
            continue
        labels += [ax.get_xlabel(), ax.get_ylabel()]
        for which, text in (("x", ax.get_xlabel()), ("y", ax.get_ylabel())):
            if not text.strip():
                problems.append(f"axes {i} ({ax.get_title()!r}) has no {which} label")
        legend = _legend_labels(ax)
        for label in _shaded(ax):
            if label.startswith("_") or label not in legend:
                problems.append(f"axes {i}: a shaded region ({label!r}) is not in the legend")
    for u in units:
        if not any(u in t for t in labels):
            problems.append(f"no label carries the units {u!r}: {labels}")
    return problems


def check(fig, *units: str) -> None:
    problems = reviewable(fig, units)
    assert not problems, "\n".join(problems)


def test_the_checks_catch_what_a_reviewer_flags():
    fig, axes = _figures.figure(1, 2)
    im = axes[0, 0].imshow(np.zeros((3, 3)))
    fig.colorbar(im, ax=axes[0, 0])
    axes[0, 1].fill_between([0, 1], [0, 0], [1, 1], alpha=0.3)
    found = reviewable(fig, ("Pa",))
    assert any("colorbar 2 has no label" in p for p in found)
    assert any("axes 0" in p and "no x label" in p for p in found)
    assert any("shaded region" in p for p in found)
    assert any("units 'Pa'" in p for p in found)


# ----------------------------------------------------------------------------- data
@pytest.fixture(scope="module")
def field_file(tmp_path_factory):
    """A tiny dataset with physical units on fields and coordinates."""
    path = tmp_path_factory.mktemp("fig") / "plate.h5"
    x, y = np.linspace(0.0, 0.4, 10), np.linspace(0.0, 0.2, 6)
    rng = np.random.default_rng(0)
    a = rng.uniform(1, 2, size=(6, 10, 6))
    u = np.cumsum(a, axis=1) * 100.0
    with DatasetWriter(
        path,
        n_samples=6,
        coords={"x": x, "y": y},
        fields={
            "k": FieldSpec(dims=("sample", "x", "y"), role="input", units="W/(m K)",
                           long_name="conductivity k"),
            "T": FieldSpec(dims=("sample", "x", "y"), role="output", units="K",
                           long_name="temperature T"),
        },
        units={"x": "m", "y": "m"},
    ) as w:  # fmt: skip
        w.write_batch(0, {"k": a, "T": u})
        w.finalize(splits={"train": np.arange(4), "test": np.arange(4, 6)})
    return path


def test_labels_come_from_the_file(field_file):
    ds = open_dataset(field_file)
    q, axes, coords = field_quantities(ds, "T")
    assert q == Quantity("T", units="K", long_name="temperature T")
    assert [a.label for a in axes] == ["x (m)", "y (m)"]
    assert q.label == "temperature T (K)" and len(coords[0]) == 10
    assert Quantity("a", units="1").label == "a (–)"


def test_run_sample_figure(field_file):
    ds = open_dataset(field_file).split("test")
    q_in, _, _ = field_quantities(ds, "k")
    q_out, axes, coords = field_quantities(ds, "T")
    s = ds[0]
    truth = s["T"].numpy()
    fig = plot_sample(
        s["k"].numpy(), truth, truth * 1.01, std=np.abs(truth) * 0.02, title="rel. L2 0.01",
        input=q_in, target=q_out, axes=axes, coords=coords, sample=4, split="test",
    )  # fmt: skip
    check(fig, "(m)", "W/(m K)", "(K)")
    assert "sample 4, test split" in fig.get_suptitle()
    titles = [ax.get_title() for ax in fig.axes]
    assert "conductivity k" in titles and "input" not in titles
    # the image spans the cell centres' coordinates, half a cell beyond the ends
    assert fig.axes[0].images[0].get_extent()[:2] == pytest.approx([-0.4 / 18, 0.4 + 0.4 / 18])


def test_evaluate_writes_labelled_figures(field_file, tmp_path, monkeypatch):
    ds = open_dataset(field_file)
    y = ds.split("test").load("T")
    rng = np.random.default_rng(1)
    members = y[None] + rng.normal(scale=5.0, size=(4, *y.shape))
    pred_file = save_prediction(
        tmp_path / "p.h5", Prediction(None, samples=members), field="T", like=field_file,
        split="test",
    )  # fmt: skip
    figs = {}
    monkeypatch.setattr(
        _figures, "save_figure", lambda fig, path, **kw: figs.update({path.name: fig})
    )
    evaluate_files(pred_file, field_file, out=tmp_path / "ev")
    assert set(figs) >= {"error_map.png", "calibration.png", "pit.png", "pred_vs_true.png"}
    units = {"error_map.png": ("x (m)", "y (m)", "(K)"), "pred_vs_true.png": ("(K)",)}
    for name, fig in figs.items():
        check(fig, *units.get(name, ()))
    assert "sample 4, test split" in figs["error_map.png"].get_suptitle()
    cal = figs["calibration.png"].axes[0]
    assert any(t.startswith("miscalibration area") for t in _legend_labels(cal))


def test_uq_figures_field_and_scalar_outputs():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(6, 12, 10))
    p = Prediction(None, samples=y[None] + rng.normal(size=(5, 6, 12, 10)))
    rep = evaluate(p, y)
    band = "10–90 % of per-sample curves"
    for fig in (plots.plot_calibration(rep), plots.plot_pit(rep), plots.plot_coverage(rep)):
        check(fig)
    assert band in _legend_labels(plots.plot_calibration(rep).axes[0])
    q = Quantity("p", units="Pa", long_name="pressure")
    check(plots.plot_error_maps(p, y, field=q, sample=3, split="test"), "Pa")
    check(plots.plot_error_maps(y[:, :, 0] + 0.1, y[:, :, 0], field=q), "Pa")
    check(plots.plot_pred_vs_true(p, y, field=q, max_points=200), "Pa")
    # scalar outputs: no per-sample band (each sample is one point), a sampling band
    ys = rng.normal(size=200)
    rep_s = evaluate(Prediction(ys * 0.8, std=np.full(200, 0.5)), ys)
    fig = plots.plot_calibration(rep_s)
    check(fig)
    legend = _legend_labels(fig.axes[0])
    assert band not in legend and "95 % band of a calibrated model (n = 200)" in legend
    poly = next(c for c in fig.axes[0].collections if c.get_label().startswith("95 %"))
    v = poly.get_paths()[0].vertices
    e = rep_s.calibration_expected
    k = len(e) // 2
    at = v[np.isclose(v[:, 0], e[k]), 1]  # the band at one level: e ± 1.96 sqrt(e(1-e)/n)
    half = 1.96 * math.sqrt(e[k] * (1 - e[k]) / 200)
    assert at.max() == pytest.approx(min(1.0, e[k] + half), rel=1e-9)
    assert at.min() == pytest.approx(max(0.0, e[k] - half), rel=1e-9)


def test_propagation_and_sobol_figures():
    r = propagate(lambda x: x[:, 0] ** 2, {"x": stats.norm(0, 1)}, 2000,
                  reference=lambda x: 1.01 * x[:, 0] ** 2)  # fmt: skip
    check(plots.plot_propagation(r, output=Quantity("E", units="J", long_name="energy")), "J")
    ins = {f"x{i}": stats.uniform(-math.pi, 2 * math.pi) for i in range(3)}
    check(plots.plot_sobol(sobol_indices(ishigami, ins, 256, n_bootstrap=20)))


def test_acoustics_figures():
    x, y, t = np.linspace(0, 2, 9), np.linspace(0, 1, 5), np.linspace(0, 0.01, 12)
    ref = np.random.default_rng(0).normal(size=(12, 9, 5))
    fig = plot_field_snapshots({"time": t, "x": x, "y": y}, ref, ref * 0.9, [2, 11],
                               sample=7, split="test")  # fmt: skip
    check(fig, "x (m)", "y (m)", "(Pa)")
    assert "sample 7, test split" in fig.get_suptitle()
    assert sum(_is_colorbar(ax) for ax in fig.axes) == 2  # one scale per time
    check(plot_field_snapshots({"time": t, "x": x}, ref[..., 0], ref[..., 0], [3]), "(m)", "(Pa)")
    rec = np.array([[0.5, 0.5], [1.5, 0.2]])
    check(plot_impulse_responses(t, ref[:, :2, 0].T, ref[:, :2, 1].T, rec), "(ms)", "(Pa)")


def test_mf_figures():
    p = forrester()
    x_lo = np.linspace(0, 1, 11)[:, None]
    x_hi = x_lo[[0, 5, 10]]
    ys = [p.low(x_lo), p.high(x_hi)]

    def predict(x):
        m = p.high(x)
        return Prediction(m, std=np.full_like(m, 0.3))

    fig = plot_mf_fit(predict, [x_lo, x_hi], ys, p.bounds, problem=p)
    check(fig)
    assert "surrogate mean ± 2 std" in _legend_labels(fig.axes[0])
    x2 = np.random.default_rng(0).uniform(size=(30, 2))
    pred = Prediction(x2.sum(1) + 0.1, std=np.full(30, 0.1))
    check(plot_mf_fit(None, [x2, x2[:5]], [x2.sum(1), x2.sum(1)[:5]], test=(x2, x2.sum(1), pred)))
    # the study: robust x limits despite an outlier, truth and surrogate told apart
    lo_, hi_ = p.bounds[0]
    u = {"x0": stats.uniform(lo_, hi_ - lo_)}

    def wild(x):
        out = p.high(x)
        out[::500] = -1e3 - np.arange(len(out[::500]))
        return out

    study = mf_uq_study(wild, p.high, {"uniform": u}, n_samples=12_000)
    fig = plot_uq_study(study, output=Quantity("y", units="m", long_name="height"))
    check(fig, "(m)")
    ax = fig.axes[0]
    assert ax.get_xlim()[0] > -100  # the 24 outliers below -1000 do not set the axis
    labels = _legend_labels(ax)
    assert any(t.startswith("truth: mean") for t in labels)
    assert any(t.startswith("surrogate: mean") for t in labels)


def test_residual_figure():
    from pdesurrogates.cli._solve import _residual_figure

    check(_residual_figure(np.geomspace(1, 1e-6, 20), 1.0, "poisson2d 16: cg"))


def test_robust_limits_and_units():
    v = np.r_[np.linspace(0.0, 1.0, 999), 1e6]
    lo, hi = robust_limits(v)
    q_lo, q_hi = np.quantile(v, [0.005, 0.995])
    pad = 0.03 * (q_hi - q_lo)
    assert (lo, hi) == pytest.approx((q_lo - pad, q_hi + pad), rel=1e-12)
    assert 0.99 < q_hi < 1.0  # the outlier at 1e6 is left out
    assert _figures.units_text("1") == "–" and _figures.units_text("Pa") == "Pa"
    assert Quantity("u", "Pa").derived("|error| of {}").label == "|error| of u (Pa)"
