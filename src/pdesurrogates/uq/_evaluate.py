"""The one evaluator every surrogate goes through: ``evaluate(pred, y) -> UQReport``.

Built only from the public functions of :mod:`pdesurrogates.uq.metrics`, called per chunk
of fields with ``reduction="sample"`` (or ``"none"`` where the per-point values feed a
histogram); pooled values are then combined from the per-field ones. A number in a
report is therefore always what the metric function of the same name returns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from pdesurrogates.uq import metrics as M
from pdesurrogates.uq._backend import as_tensor, check_finite, check_levels, inputs_validated
from pdesurrogates.uq._prediction import Prediction, match_channel_axis
from pdesurrogates.uq._report import UQReport

__all__ = ["DEFAULT_LEVELS", "evaluate", "evaluation_levels"]

DEFAULT_LEVELS = (0.5, 0.8, 0.9, 0.95)
ROLLOUT_THRESHOLD = 0.1  # the error level of the time-to-threshold of a rollout (10 %)


def _np(v: Any) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    return np.asarray(v, dtype=np.float64)


class _PerSample(dict):
    """Per-field results, filled chunk by chunk: name -> array with leading axis N."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def put(self, name: str, sl: slice, value: Any) -> None:
        v = _np(value)
        if name not in self:
            self[name] = np.empty((self.n, *v.shape[1:]), dtype=np.float64)
        self[name][sl] = v


def _detached(pred: Any) -> Prediction:
    if not isinstance(pred, Prediction):
        pred = Prediction(pred)
    t = pred.tensors()
    if not any(isinstance(v, torch.Tensor) and v.requires_grad for v in t.values()):
        return pred
    d = {k: (None if t[k] is None else t[k].detach()) for k in ("mean", "std", "samples")}
    q = None if t["quantiles"] is None else t["quantiles"].detach()
    out = Prediction(d["mean"], std=d["std"], samples=d["samples"], quantiles=q, levels=t["levels"])
    return out._as(pred.is_numpy)


def _band_levels(qlv: np.ndarray) -> list[float]:
    """The central levels a set of stored quantile levels holds exactly (symmetric pairs)."""
    out = []
    for lo in qlv[qlv < 0.5]:
        if np.any(np.abs(qlv - (1.0 - lo)) <= 1e-9):
            out.append(round(float(1.0 - 2.0 * lo), 12))
    return sorted(out)


def evaluation_levels(pred: Prediction) -> np.ndarray:
    """The levels :func:`evaluate` scores when none are given.

    :data:`DEFAULT_LEVELS`, unless a quantile prediction does not hold them all: then the
    central intervals its stored quantiles hold exactly (a calibrated conformal band with
    ``levels=[0.05, 0.95]`` -> ``[0.9]``), or else the default levels inside them.
    """
    dflt = np.asarray(DEFAULT_LEVELS, dtype=np.float64)
    if pred.kind != "quantiles":
        return dflt
    qlv = pred.levels
    widest = 1.0 - 2.0 * max(float(qlv[0]), 1.0 - float(qlv[-1]))
    if dflt.max() <= widest + 1e-12:
        return dflt
    exact = _band_levels(qlv)
    if exact:
        return np.asarray(exact, dtype=np.float64)
    inside = dflt[dflt <= widest + 1e-12]
    if not inside.size:
        raise ValueError(
            f"the quantile prediction stores levels {qlv.tolist()}, which hold no central "
            "interval; store a symmetric pair of quantile levels (e.g. 0.05 and 0.95)"
        )
    return inside


def _check(pred: Prediction, y: Any, lv: np.ndarray, n_bins: Any) -> torch.Tensor:
    if not isinstance(n_bins, int | np.integer) or n_bins < 2:
        raise ValueError(f"n_bins must be an integer >= 2, got {n_bins!r}")
    yt = as_tensor(y, "y", like=pred.tensors()["mean"]).detach()
    check_finite(yt, "y")
    yt = match_channel_axis(yt, pred.shape)
    if tuple(yt.shape) != pred.shape:
        raise ValueError(
            f"y has shape {tuple(yt.shape)} but pred has shape {pred.shape}; both must be "
            "(N, C, *spatial) (a channel axis of length 1 may be left out of either)"
        )
    if yt.ndim < 1 or yt.shape[0] < 1:
        raise ValueError("y needs a leading sample axis with at least one field")
    if pred.kind == "quantiles":
        qlv = pred.levels
        lo_need = (1 - lv) / 2
        if lo_need.min() < qlv[0] - 1e-12 or 1 - lo_need.min() > qlv[-1] + 1e-12:
            fits = _band_levels(qlv) or [a for a in lv if (1 - a) / 2 >= qlv[0] - 1e-12]
            hint = f"pass levels={tuple(fits)!r}" if fits else "pass narrower levels"
            raise ValueError(
                f"levels {lv.tolist()} need quantiles outside the stored quantile levels "
                f"[{qlv[0]:.6g}, {qlv[-1]:.6g}] of this prediction (a band of level "
                f"{qlv[-1] - qlv[0]:.6g}); {hint}, or leave levels out to score the "
                "band's own level"
            )
    if pred.kind == "gaussian" and bool((pred.tensors()["std"] <= 0).any()):
        raise ValueError("std of pred must be strictly positive to evaluate NLL and calibration")
    return yt


def _score_accuracy(
    ps: _PerSample, sl: slice, sub: Prediction, yy, grid: dict | None, one_value: bool
) -> None:
    """rel L2 (and H1), RMSE, MAE and the largest error of every field in the chunk (the
    relative L2 of one-value fields is scored on all of them at once: :func:`_one_value_l2`)."""
    b = yy.shape[0]
    grid_l2 = {k: v for k, v in (grid or {}).items() if k != "periodic"}
    if not one_value:
        ps.put("rel_l2", sl, M.rel_l2(sub, yy, reduction="none", **grid_l2))
    if grid is not None:
        ps.put("rel_h1", sl, M.rel_h1(sub, yy, reduction="none", **grid))
    ps.put("rmse", sl, M.rmse(sub, yy, reduction="sample"))
    abs_err = M.mae(sub, yy, reduction="none")
    flat = torch.as_tensor(abs_err).reshape(b, -1)
    ps.put("mae", sl, flat.mean(1, dtype=torch.float64))
    ps.put("max_abs_error", sl, flat.amax(1))


def _score_intervals(ps: _PerSample, sl: slice, sub: Prediction, yy, lv: np.ndarray) -> None:
    """Coverage (pointwise and whole-field), interval score and width per field and level."""
    b = yy.shape[0]
    hits = torch.as_tensor(M.coverage(sub, yy, lv, reduction="none")).reshape(len(lv), b, -1)
    cov = hits.mean(2, dtype=torch.float64)
    ps.put("coverage", sl, cov.T)
    ps.put("field_coverage", sl, (cov == 1.0).to(torch.float64).T)
    isc, wid = [], []
    for a in lv:
        lo, hi = sub.interval(float(a))
        isc.append(_np(M.interval_score(lo, hi, yy, level=float(a), reduction="sample")))
        wid.append(_np(torch.as_tensor(hi - lo).reshape(b, -1).mean(1, dtype=torch.float64)))
    ps.put("interval_score", sl, np.stack(isc, 1))
    ps.put("width", sl, np.stack(wid, 1))


def _score_distribution(
    ps: _PerSample,
    sl: slice,
    sub: Prediction,
    yy: torch.Tensor,
    lv: np.ndarray,
    n_bins: int,
    energy: bool,
) -> np.ndarray:
    """Proper scores, spread, intervals and calibration of the chunk; returns its PIT values."""
    ps.put("crps", sl, M.crps(sub, yy, reduction="sample"))
    if sub.kind == "gaussian":
        t = sub.tensors()
        ps.put("nll", sl, M.nll_gaussian(t["mean"], t["std"], yy, reduction="sample"))
    if energy and sub.kind == "samples":
        ps.put("energy_score", sl, M.energy_score(sub.tensors()["samples"], yy, reduction="sample"))
    ps.put("sharpness", sl, M.sharpness(sub, reduction="sample"))
    ps.put("spread_skill_ratio", sl, M.spread_skill_ratio(sub, yy, reduction="sample"))
    _score_intervals(ps, sl, sub, yy, lv)
    _, observed = M.calibration_curve(sub, yy, n_bins=n_bins, reduction="sample")
    ps.put("calibration", sl, observed)
    return _np(M.pit(sub, yy)).reshape(-1)


def _one_value_l2(ps: _PerSample, pred: Prediction, yt: torch.Tensor) -> float:
    """Relative L2 of fields of one value each (a multi-fidelity model's outputs): of all
    values together, ``||mu - y|| / ||y||`` (returned), and of every value on its own,
    ``|mu_i - y_i| / |y_i|`` (``ps["rel_l2"]``; left out when a true value is 0, where it
    is undefined). Both are :func:`~metrics.rel_l2`, in float64."""
    mean = _np(pred.tensors()["mean"]).reshape(-1, 1)
    y = _np(yt).reshape(-1, 1)
    pooled = float(M.rel_l2(mean.T, y.T))  # one field holding every value
    if np.all(y != 0):
        ps.put("rel_l2", slice(None), M.rel_l2(mean, y, reduction="none"))
    return pooled


def _pooled_accuracy(ps: _PerSample, pooled_l2: float | None) -> dict[str, float]:
    # every field has the same number of points, so pooled means are means of field means
    scalars = {} if pooled_l2 is None else {"rel_l2_pooled": pooled_l2}
    if "rel_l2" in ps:
        scalars["rel_l2"] = float(ps["rel_l2"].mean())
        scalars["rel_l2_p90"] = float(np.quantile(ps["rel_l2"], 0.9))
    if "rel_h1" in ps:
        scalars["rel_h1"] = float(ps["rel_h1"].mean())
    scalars["rmse"] = math.sqrt(float(np.mean(ps["rmse"] ** 2)))
    scalars["mae"] = float(ps["mae"].mean())
    scalars["max_abs_error"] = float(ps["max_abs_error"].max())
    return scalars


def _pooled_distribution(ps: _PerSample, report: UQReport, pit_counts: np.ndarray) -> None:
    scalars, lv = report.scalars, report.levels
    for k in ("crps", "nll", "energy_score"):
        if k in ps:
            scalars[k] = float(ps[k].mean())
    n_bins = ps["calibration"].shape[1]
    exp = np.linspace(0.0, 1.0, n_bins)
    obs = ps["calibration"].mean(0)
    for stat, name in (("area", "miscalibration_area"), ("rms", "rmsce"), ("mean", "mace")):
        scalars[name] = float(M.calibration_error(exp, obs, statistic=stat))
    mean_var = float(np.mean(ps["sharpness"] ** 2))
    mean_se = float(np.mean(ps["rmse"] ** 2))
    scalars["sharpness"] = math.sqrt(mean_var)
    m = report.n_members
    corr = math.sqrt((m + 1) / m) if report.kind == "samples" else 1.0
    scalars["spread_skill_ratio"] = math.sqrt(mean_var / mean_se) * corr if mean_se else math.inf
    pit_bins = len(pit_counts)
    dens = pit_counts / max(float(pit_counts.sum()), 1.0) * pit_bins
    scalars["pit_deviation"] = float(np.mean(np.abs(dens - 1.0)))
    cov = ps["coverage"]
    report.by_level = {
        "coverage": cov.mean(0),
        "coverage_gap": cov.mean(0) - lv,
        "coverage_p10": np.quantile(cov, 0.1, axis=0),
        "field_coverage": ps["field_coverage"].mean(0),
        "interval_score": ps["interval_score"].mean(0),
        "width": ps["width"].mean(0),
    }
    for k in ("crps", "nll", "energy_score", "sharpness", "spread_skill_ratio"):
        if k in ps:
            report.per_sample[k] = ps[k]
    report.per_sample["coverage"] = cov
    report.per_sample["interval_score"] = ps["interval_score"]
    report.per_sample["miscalibration_area"] = _np(M.calibration_error(exp, ps["calibration"]))
    report.calibration_expected = exp
    report.calibration_observed = obs
    report.calibration_observed_per_sample = ps["calibration"]
    report.pit_edges = np.linspace(0.0, 1.0, pit_bins + 1)
    report.pit_counts = pit_counts


def _step_times(time_axis: int | None, times: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    """The times of the states along ``time_axis`` (``1..T`` by default), checked."""
    if time_axis is None:
        if times is not None:
            raise ValueError("times= needs time_axis= (the axis of the states along a trajectory)")
        return None
    if isinstance(time_axis, bool) or not isinstance(time_axis, int):
        raise ValueError(f"time_axis must be an integer axis, got {time_axis!r}")
    if not 1 <= time_axis < len(shape):
        raise ValueError(
            f"time_axis={time_axis} is not an axis after the sample axis of shape {shape}"
        )
    n_t = shape[time_axis]
    t = np.arange(1, n_t + 1, dtype=np.float64) if times is None else _np(times).reshape(-1)
    if t.shape != (n_t,):
        raise ValueError(f"times holds {t.size} values but axis {time_axis} holds {n_t} states")
    return t


def _pooled_steps(ps: _PerSample, report: UQReport, times: np.ndarray) -> None:
    """Per-step relative L2 (mean over fields) and the time it first exceeds 10 %."""
    per_step = ps["rel_l2_by_step"].mean(0)
    report.per_sample["rel_l2_by_step"] = ps["rel_l2_by_step"]
    report.step_times = times
    report.by_step = {"rel_l2": per_step}
    report.scalars["steps_to_10pct"] = float(M.time_to_threshold(per_step, ROLLOUT_THRESHOLD))
    hit = M.time_to_threshold(per_step, ROLLOUT_THRESHOLD, times=times)
    report.scalars["time_to_10pct"] = float(hit)


def evaluate(
    pred: Prediction | Any,
    y: Any,
    *,
    levels: Sequence[float] | None = None,
    n_bins: int = 100,
    pit_bins: int | None = None,
    spatial_dims: int | None = None,
    spacing: float | Sequence[float] | None = None,
    coords: Sequence[Any] | None = None,
    periodic: bool | Sequence[bool] = False,
    energy: bool = False,
    chunk_elements: int = 1 << 20,
    meta: Mapping[str, Any] | None = None,
    time_axis: int | None = None,
    times: Sequence[float] | None = None,
) -> UQReport:
    """Judge a (probabilistic) prediction of ``N`` fields against the truth.

    Every number comes from the public functions of :mod:`pdesurrogates.uq.metrics`,
    applied to chunks of fields: accuracy (:func:`~metrics.rel_l2` per field, RMSE, MAE,
    max error; :func:`~metrics.rel_h1` when a grid is described), proper scores
    (:func:`~metrics.crps` with the estimator of the predictive form, Gaussian NLL,
    optionally the energy score), :func:`~metrics.interval_score`, widths and
    :func:`~metrics.coverage` at ``levels`` (pointwise and whole-field), the
    :func:`~metrics.calibration_curve` with its miscalibration area, RMSCE and MACE,
    :func:`~metrics.sharpness`, the :func:`~metrics.spread_skill_ratio` and the
    :func:`~metrics.pit` / rank histogram. The report records the predictive form it
    scored (``report.kind``: samples, gaussian, quantiles or point).

    Fields of one value each (``(N,)`` or ``(N, 1)``, a multi-fidelity model's outputs)
    are scored per value like any field: ``per_sample["rel_l2"]`` is ``|mu_i - y_i| /
    |y_i|``, ``scalars["rel_l2"]`` and ``"rel_l2_p90"`` its mean and 90th percentile
    (all three left out when a true value is 0), and ``scalars["rel_l2_pooled"]`` is the
    relative L2 of all values together, ``||mu - y|| / ||y||``.

    Parameters
    ----------
    pred : Prediction or array
        Prediction of shape ``(N, ...)``, channel-first ``(N, C, *spatial)`` for fields;
        a plain array is a point prediction (accuracy metrics only).
    y : array or Tensor, shape ``(N, ...)``
        The truth. Axis 0 indexes fields. A channel axis of length 1 may be left out:
        ``y`` of shape ``(N, X, Y)`` is accepted for a prediction of shape
        ``(N, 1, X, Y)`` (what models return for one field) and the reverse; the metrics
        are the same either way.
    levels : sequence of float in (0, 1), optional
        Nominal levels of the central intervals. Default :data:`DEFAULT_LEVELS`
        ``(0.5, 0.8, 0.9, 0.95)``; for a quantile prediction (e.g. a conformal band from
        :meth:`ConformalCalibrator.apply`) the central levels its quantiles hold
        exactly (``[0.9]`` for a 90 % band).
    n_bins : int
        Points of the calibration curve (``linspace(0, 1, n_bins)``).
    pit_bins : int, optional
        Bins of the PIT histogram; default ``M + 1`` for ensembles (the rank histogram),
        20 otherwise.
    spatial_dims, spacing, coords, periodic
        Grid of the fields, as in :func:`metrics.rel_h1`; the relative H1 error is computed
        when any of ``spatial_dims``, ``spacing`` or ``coords`` is given. Without
        ``spatial_dims`` or ``coords``, an axis 1 of length 1 in ``(N, 1, *spatial)``
        fields is the channel axis, not a spatial one (the metrics' default).
    energy : bool
        Also compute the fair energy score per field (``O(M²)`` per field).
    chunk_elements : int
        Work is done on chunks of fields holding about this many member values, to bound
        memory.
    meta : mapping, optional
        Stored in the report (e.g. ``{"name": "MgNO", "dataset": "darcy"}``).
    time_axis : int, optional
        The fields are trajectories (e.g. a rollout, ``(N, C, T, *grid)`` with
        ``time_axis=2``): also score every state along the trajectory with
        :func:`~metrics.rollout_rel_l2` (``report.per_sample["rel_l2_by_step"]``, ``(N,
        T)``; its mean over fields in ``report.by_step["rel_l2"]``) and the time when that
        mean first exceeds 10 %, from
        :func:`~metrics.time_to_threshold` (``report.scalars["time_to_10pct"]``, the time of
        that state; ``steps_to_10pct``, its step number; ``inf`` when the error stays
        below over the whole trajectory). The pooled metrics score the
        whole trajectory as one field.
    times : sequence of float, optional
        The time of each state along ``time_axis`` (default ``1, 2, ..., T``: the time to
        10 % is then a number of steps).

    Returns
    -------
    UQReport
    """
    pred = _detached(pred)
    lv = evaluation_levels(pred) if levels is None else check_levels(levels, "levels")
    yt = _check(pred, y, lv, n_bins)
    n, field_shape, kind = yt.shape[0], tuple(yt.shape[1:]), pred.kind
    p_pts = max(int(np.prod(field_shape)), 1)
    chunk = max(1, int(chunk_elements) // (p_pts * (pred.n_samples or 1)))
    want_h1 = spatial_dims is not None or spacing is not None or coords is not None
    grid = None
    if want_h1:
        grid = {"spatial_dims": spatial_dims, "spacing": spacing, "coords": coords}
        grid["periodic"] = periodic
    if pit_bins is None:
        pit_bins = (pred.n_samples or 0) + 1 if kind == "samples" else 20
    step_times = _step_times(time_axis, times, yt.shape)
    one_value = int(np.prod(field_shape)) == 1 and time_axis is None  # e.g. mf outputs
    ps = _PerSample(n)
    pit_counts = np.zeros(int(pit_bins), dtype=np.float64)
    # y and pred are checked once above; the metrics share each chunk's derived tensors
    with torch.no_grad(), inputs_validated():
        for i0 in range(0, n, chunk):
            sl = slice(i0, min(i0 + chunk, n))
            sub, yy = pred[sl]._memoized(), yt[sl]
            _score_accuracy(ps, sl, sub, yy, grid, one_value)
            if time_axis is not None:
                step = M.rollout_rel_l2(sub, yy, time_axis=time_axis, reduction="none")
                ps.put("rel_l2_by_step", sl, step)
            if kind != "point":
                u = _score_distribution(ps, sl, sub, yy, lv, int(n_bins), energy)
                idx = np.minimum(np.floor(np.clip(u, 0, 1) * pit_bins), pit_bins - 1)
                pit_counts += np.bincount(idx.astype(np.int64), minlength=pit_bins)
    report = UQReport(
        kind=kind,
        n_fields=n,
        field_shape=field_shape,
        n_members=pred.n_samples,
        levels=lv,
        scalars=_pooled_accuracy(ps, _one_value_l2(ps, pred, yt) if one_value else None),
        meta=dict(meta or {}),
    )
    keys = ("rel_l2", "rel_h1", "rmse", "mae", "max_abs_error")
    report.per_sample = {k: ps[k] for k in keys if k in ps}
    if time_axis is not None:
        _pooled_steps(ps, report, step_times)
    if kind != "point":
        _pooled_distribution(ps, report, pit_counts)
    return report
