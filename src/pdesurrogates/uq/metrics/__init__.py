"""The package's only metrics: accuracy, proper scores and calibration of (probabilistic)
field predictions.

Three modules by responsibility, one namespace: ``_deterministic`` (relative L2 / H1,
RMSE, MAE, nRMSE of the predictive mean), ``_scores`` (proper scores: NLL, CRPS, energy
and interval scores) and ``_calibration`` (coverage, calibration curve and errors,
sharpness, PIT, spread-skill); ``_trajectory`` scores rollouts (relative L2 per time
step, time until it crosses a threshold) with :func:`rel_l2`. The training losses
(:class:`pdesurrogates.training.RelL2Loss` / ``RelH1Loss``) call :func:`rel_l2` and
:func:`rel_h1`, so a loss and a report can never disagree.

Conventions shared by every metric:

* Inputs are numpy arrays or torch tensors; results come back in the same type (torch if
  any input is a tensor). Computation is in torch (numpy input is not copied), so the
  accuracy metrics also work as losses under autograd.
* Axis 0 of ``y`` is the **sample** axis (one field per sample); the other axes are the
  field (components, time, grid). Ensemble members / quantile levels come **first** in
  ``samples`` / ``quantiles``, before the sample axis.
* ``reduction="none"`` returns per-point values (shape of ``y``; per-sample values for
  the field metrics ``rel_l2``, ``rel_h1``, ``nrmse`` and ``energy_score``),
  ``"sample"`` one value per sample (shape ``(N,)``), ``"mean"`` one number (pooled over
  points for point metrics, the mean over samples for field metrics). Metrics that are
  only defined over a set of points (calibration errors, spread-skill ratio) accept
  ``"sample"`` and ``"mean"`` only.
* The grid-aware metrics name the grid with ``spatial_dims`` (number of trailing spatial
  axes), ``spacing`` or ``coords`` (per spatial axis) and ``periodic``.

Discrete norms (relative L2 and H1)
-----------------------------------
* **Spatial axes**: the last ``spatial_dims`` axes; default the number of ``coords`` /
  ``spacing`` entries, else every axis after axis 0 but a channel axis of length 1
  (channel-first ``(N, 1, X, Y)``: ``X, Y``). Axes in between are components, summed in
  the norm.
* **Default grid**: the unit interval per axis cut into ``n`` cells, one point per cell,
  so the spacing is ``h = 1/n``.
* **Quadrature**: each point weighs its cell width (``h`` on a uniform grid: the midpoint
  rule; non-uniform ``coords``: half the distance between its neighbours, the full gap at
  the two ends). On uniform grids the weights cancel in relative errors: relative L2 is
  the plain Euclidean ratio.
* **Derivatives** (H1): second-order finite differences in physical units — central
  inside, second-order one-sided at the ends of non-periodic axes, wrapped on periodic
  axes; at least 3 points per spatial axis.
* ``||v||_{H1}^2 = sum_i w_i (v_i^2 + |grad v|_i^2)``; on cell-centred grids the relative
  H1 error converges at second order to the continuous ratio.

For example:

>>> import numpy as np
>>> x = (np.arange(32) + 0.5) / 32
>>> u = np.sin(np.pi * x)[None, :, None] * np.sin(np.pi * x)[None, None, :]
>>> round(float(rel_l2(1.05 * u, u)), 12), round(float(rel_h1(1.05 * u, u)), 12)
(0.05, 0.05)
"""

from __future__ import annotations

from pdesurrogates.uq.metrics._calibration import (
    calibration_curve,
    calibration_error,
    coverage,
    mace,
    miscalibration_area,
    pit,
    rmsce,
    sharpness,
    spread_skill_ratio,
)
from pdesurrogates.uq.metrics._deterministic import mae, nrmse, rel_h1, rel_l2, rmse
from pdesurrogates.uq.metrics._grid import grid_gradient
from pdesurrogates.uq.metrics._scores import (
    crps,
    crps_ensemble,
    crps_gaussian,
    energy_score,
    interval_score,
    nll_gaussian,
)
from pdesurrogates.uq.metrics._trajectory import rollout_rel_l2, time_to_threshold

__all__ = [
    "calibration_curve",
    "calibration_error",
    "coverage",
    "crps",
    "crps_ensemble",
    "crps_gaussian",
    "energy_score",
    "grid_gradient",
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
    "rollout_rel_l2",
    "sharpness",
    "spread_skill_ratio",
    "time_to_threshold",
]
