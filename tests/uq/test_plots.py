"""uq.plots: every function returns a Figure that renders, and draws the right data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.figure import Figure
from scipy import stats

from pdesurrogates.uq import Prediction, evaluate, ishigami, plots, propagate, sobol_indices


@pytest.fixture
def case():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(6, 12, 10))
    s = y[None] + rng.normal(size=(5, 6, 12, 10))
    return Prediction(None, samples=s), y


def _renders(fig, tmp_path, name):
    assert isinstance(fig, Figure)
    path = tmp_path / f"{name}.png"
    fig.savefig(path)
    assert path.stat().st_size > 1000


def test_report_plots(case, tmp_path):
    p, y = case
    rep = evaluate(p, y)
    fig = plots.plot_calibration(rep)
    line = next(ln for ln in fig.axes[0].lines if ln.get_label().startswith("observed"))
    np.testing.assert_allclose(line.get_ydata(), rep.calibration_observed)
    _renders(fig, tmp_path, "cal")
    _renders(plots.plot_pit(rep), tmp_path, "pit")
    fig = plots.plot_coverage(p, y)  # a Prediction + truth also works
    np.testing.assert_allclose(fig.axes[0].lines[1].get_ydata(), rep.by_level["coverage"])
    _renders(fig, tmp_path, "cov")
    _renders(plots.plot_error_maps(p, y, index=2), tmp_path, "maps")
    assert len(plots.plot_error_maps(p, y).axes) == 8  # 4 panels + 4 colorbars
    _renders(plots.plot_pred_vs_true(p, y, max_points=100), tmp_path, "pvt")
    _renders(plots.plot_error_maps(y[:, :, 0] + 0.1, y[:, :, 0]), tmp_path, "line")


def test_propagation_and_sobol_plots(tmp_path):
    f = lambda x: x[:, 0] ** 2  # noqa: E731
    r = propagate(f, {"x": stats.norm(0, 1)}, 2000, reference=lambda x: x[:, 0] ** 2 * 1.01)
    fig = plots.plot_propagation(r)
    assert any(ln.get_label() == "reference KDE" for ln in fig.axes[0].lines)
    _renders(fig, tmp_path, "prop")
    ins = {f"x{i}": stats.uniform(-math.pi, 2 * math.pi) for i in range(3)}
    sob = sobol_indices(ishigami, ins, 256, n_bootstrap=20)
    _renders(plots.plot_sobol(sob), tmp_path, "sobol")


def test_plot_errors(case):
    p, y = case
    rep = evaluate(p.mean, y)
    with pytest.raises(ValueError, match="point prediction"):
        plots.plot_calibration(rep)
    with pytest.raises(ValueError, match="index"):
        plots.plot_error_maps(p, y, index=99)
    with pytest.raises(ValueError, match="UQReport"):
        plots.plot_pit(p)


def _rollout_report(n, seed=0):
    """Trajectories whose state t has relative error g_i * 0.04 t (g_i per trajectory)."""
    rng = np.random.default_rng(seed)
    t_n = 6
    y = 1.0 + rng.random((n, 1, t_n, 5, 4))
    g = np.linspace(0.5, 1.5, n)[:, None, None, None, None]
    pred = y * (1.0 + g * 0.04 * np.arange(1, t_n + 1)[None, None, :, None, None])
    return evaluate(pred, y, time_axis=2, times=0.5 + 0.25 * np.arange(t_n))


@pytest.mark.parametrize("n", [3, 12])
def test_rollout_error_plot_draws_the_per_step_errors_band_and_threshold(n, tmp_path):
    from pdesurrogates._figures import save_figure

    rep = _rollout_report(n)
    time = plots.Quantity("t", units="s", long_name="time")
    fig = plots.plot_rollout_error(rep, time=time)
    ax = fig.axes[0]
    line = next(ln for ln in ax.lines if ln.get_label().startswith("mean over"))
    np.testing.assert_array_equal(line.get_ydata(), rep.by_step["rel_l2"])
    np.testing.assert_array_equal(line.get_xdata(), rep.step_times)
    # mean over trajectories of g_i * 0.04 t, mean g = 1
    np.testing.assert_allclose(line.get_ydata(), 0.04 * np.arange(1, 7), rtol=1e-12)
    assert ax.get_xlabel() == "time (s)" and ax.get_ylabel() == "relative L2 error (–)"
    assert ax.get_yscale() == "log"
    labels = ax.get_legend_handles_labels()[1]
    band = "10–90 % of 12 trajectories" if n == 12 else "range of 3 trajectories"
    assert band in labels and "10 % threshold" in labels
    # the first state above 10 % is t = 3 (0.04 * 3 = 0.12), at time 1.0
    assert "first above: step 3, t = 1" in labels
    thr = next(ln for ln in ax.lines if ln.get_label() == "10 % threshold")
    assert list(thr.get_ydata()) == [0.1, 0.1]
    # the band's edges are the spread of the per-trajectory errors
    per = rep.per_sample["rel_l2_by_step"]
    lo, hi = np.quantile(per, [0.1, 0.9], axis=0) if n == 12 else (per.min(0), per.max(0))
    verts = ax.collections[0].get_paths()[0].vertices
    for edge in (lo, hi):
        assert all(np.isclose(verts[:, 1], v).any() for v in edge)
    path = save_figure(fig, tmp_path / "rollout_error.png")
    assert path.is_file() and path.stat().st_size > 1000


def test_rollout_error_plot_labels_time_by_default_and_refuses_steady_reports():
    rep = _rollout_report(1)
    ax = plots.plot_rollout_error(rep).axes[0]
    assert ax.get_xlabel() == "time"
    assert not ax.collections  # one trajectory: no spread to shade
    with pytest.raises(ValueError, match="no per-step errors"):
        plots.plot_rollout_error(evaluate(np.ones((2, 3)), np.ones((2, 3))))
