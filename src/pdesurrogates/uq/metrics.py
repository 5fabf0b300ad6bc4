"""Metrics for (probabilistic) field predictions: ``from pdesurrogates.uq import metrics``.

See :mod:`pdesurrogates.uq._metrics` for the shared conventions (axis 0 is the sample axis,
members/levels first, ``reduce="none"|"sample"|"mean"``).
"""

from __future__ import annotations

from pdesurrogates.uq._metrics import (
    calibration_curve,
    coverage,
    crps,
    crps_ensemble,
    crps_gaussian,
    energy_score,
    interval_score,
    mace,
    mae,
    miscalibration_area,
    nll_gaussian,
    nrmse,
    pit,
    rel_h1,
    rel_l2,
    rmsce,
    rmse,
    sharpness,
    spread_skill_ratio,
)

__all__ = [
    "calibration_curve",
    "coverage",
    "crps",
    "crps_ensemble",
    "crps_gaussian",
    "energy_score",
    "interval_score",
    "mace",
    "mae",
    "miscalibration_area",
    "nll_gaussian",
    "nrmse",
    "pit",
    "rel_h1",
    "rel_l2",
    "rmsce",
    "rmse",
    "sharpness",
    "spread_skill_ratio",
]
