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
