"""UQ figures (matplotlib, no pyplot state): ``from pdesurrogates.uq import plots``."""

from __future__ import annotations

from pdesurrogates.uq._plots import (
    plot_calibration,
    plot_coverage,
    plot_error_maps,
    plot_pit,
    plot_pred_vs_true,
    plot_propagation,
    plot_sobol,
)

__all__ = [
    "plot_calibration",
    "plot_coverage",
    "plot_error_maps",
    "plot_pit",
    "plot_pred_vs_true",
    "plot_propagation",
    "plot_sobol",
]
