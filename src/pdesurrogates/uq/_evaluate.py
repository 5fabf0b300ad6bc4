"""The one evaluator every surrogate goes through: ``evaluate(pred, y) -> UQReport``."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pdesurrogates.uq._backend import as_tensor, check_finite, check_levels, sorted_quantile
from pdesurrogates.uq._prediction import Prediction
from pdesurrogates.uq.metrics import (
    _abs_dev_mean,
    _calibration_counts,
    _central_distance_sorted,
    _crps_gaussian_kernel,
    _gini_sum,
    _grid_weights_and_spacing,
    _h1_sq,
    _interp_cdf_quantiles,
    _interval_score_kernel,
    _miscal_area,
    _nll_kernel,
    _pinball_mean,
    _rank_counts,
    _sort0,
)

__all__ = ["UQReport", "compare", "evaluate"]

DEFAULT_LEVELS = (0.5, 0.8, 0.9, 0.95)

# Descriptions used by summary() and the JSON ("lower" / "higher" / "target" is better).
_SCALAR_DOC = {
    "rel_l2": ("mean relative L2 error per field", "lower"),
    "rel_l2_p90": ("90th percentile of the per-field relative L2 error", "lower"),
    "rel_h1": ("mean relative H1 error per field", "lower"),
    "rmse": ("RMSE pooled over all points", "lower"),
    "mae": ("mean absolute error", "lower"),
    "max_abs_error": ("largest absolute error", "lower"),
    "crps": ("mean CRPS (closed form / fair ensemble / quantile)", "lower"),
    "nll": ("mean Gaussian negative log-likelihood [nats]", "lower"),
    "energy_score": ("mean fair energy score per field", "lower"),
    "miscalibration_area": ("area between calibration curve and diagonal", "lower"),
    "rmsce": ("root-mean-squared calibration error", "lower"),
    "mace": ("mean absolute calibration error", "lower"),
    "sharpness": ("RMS predictive std", "lower"),
    "spread_skill_ratio": ("spread / skill (1 = reliable)", "target 1"),
    "pit_deviation": ("mean |PIT histogram density - 1|", "lower"),
}


@dataclass
class UQReport:
    """Everything :func:`evaluate` measured, as plain numpy arrays and floats.

    Attributes
    ----------
    kind : str
        Prediction kind: ``"point"``, ``"gaussian"``, ``"samples"`` or ``"quantiles"``.
    n_fields : int
        Number of evaluated fields (size of the sample axis 0).
    field_shape : tuple of int
        Shape of one field.
    n_members : int or None
        Ensemble size for sample predictions.
    levels : ndarray, shape (K,)
        Nominal central-interval levels.
    scalars : dict of str to float
        Pooled metrics (see ``summary()`` for their meaning).
    by_level : dict of str to ndarray (K,)
        ``coverage`` (pooled pointwise), ``coverage_gap`` (coverage - level),
        ``coverage_p10`` (10th percentile over fields), ``field_coverage`` (fraction of
        fields entirely inside the band), ``interval_score`` and ``width`` (mean).
    per_sample : dict of str to ndarray (N,) or (N, K)
        Per-field values: ``rel_l2``, ``rmse``, ``crps``, ``coverage`` (N, K), ...
    calibration_expected, calibration_observed : ndarray (n_bins,)
        Pooled calibration curve; ``calibration_observed_per_sample`` is (N, n_bins).
    pit_edges, pit_counts : ndarray
        PIT histogram (rank histogram for ensembles).
    meta : dict
        Free-form description (model name, dataset, ...).
    """

    kind: str
    n_fields: int
    field_shape: tuple[int, ...]
    n_members: int | None
    levels: np.ndarray
    scalars: dict[str, float]
    by_level: dict[str, np.ndarray] = field(default_factory=dict)
    per_sample: dict[str, np.ndarray] = field(default_factory=dict)
    calibration_expected: np.ndarray | None = None
    calibration_observed: np.ndarray | None = None
    calibration_observed_per_sample: np.ndarray | None = None
    pit_edges: np.ndarray | None = None
    pit_counts: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (arrays become lists)."""

        def conv(v):
            if isinstance(v, np.ndarray):
                return v.tolist()
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            if isinstance(v, float | np.floating):
                f = float(v)
                return f if math.isfinite(f) else None
            return v

        return {
            "format": "pdesurrogates-uqreport",
            "version": 1,
            "kind": self.kind,
            "n_fields": self.n_fields,
            "field_shape": list(self.field_shape),
            "n_members": self.n_members,
            "levels": self.levels.tolist(),
            "scalars": conv(self.scalars),
            "by_level": conv(self.by_level),
            "per_sample": conv(self.per_sample),
            "calibration": {
                "expected": conv(self.calibration_expected),
                "observed": conv(self.calibration_observed),
            },
            "pit": {"edges": conv(self.pit_edges), "counts": conv(self.pit_counts)},
            "meta": self.meta,
        }

    def to_json(self, path: str | os.PathLike | None = None, *, indent: int = 2) -> str:
        """Serialise to JSON; also write it atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=indent)
        if path is not None:
            from pdesurrogates.io import atomic_write_text

            atomic_write_text(Path(path), text + "\n")
        return text

    @classmethod
    def from_json(cls, source: str | os.PathLike) -> UQReport:
        """Rebuild a report from :meth:`to_json` output (a path or the JSON text)."""
        text = str(source)
        if not text.lstrip().startswith("{"):
            text = Path(source).read_text()
        d = json.loads(text)
        if d.get("format") != "pdesurrogates-uqreport":
            raise ValueError("source is not a pdesurrogates UQReport JSON document")

        def arr(v):
            return None if v is None else np.asarray(v, dtype=np.float64)

        return cls(
            kind=d["kind"],
            n_fields=int(d["n_fields"]),
            field_shape=tuple(d["field_shape"]),
            n_members=d["n_members"],
            levels=np.asarray(d["levels"], dtype=np.float64),
            scalars={k: (math.nan if v is None else float(v)) for k, v in d["scalars"].items()},
            by_level={k: arr(v) for k, v in d["by_level"].items()},
            per_sample={k: arr(v) for k, v in d["per_sample"].items()},
            calibration_expected=arr(d["calibration"]["expected"]),
            calibration_observed=arr(d["calibration"]["observed"]),
            pit_edges=arr(d["pit"]["edges"]),
            pit_counts=arr(d["pit"]["counts"]),
            meta=d.get("meta", {}),
        )

    def to_xarray(self):
        """An ``xarray.Dataset`` with dims ``sample``, ``level``, ``prob`` and ``pit_bin``."""
        import xarray as xr

        data: dict[str, Any] = {}
        for k, v in self.scalars.items():
            data[k] = ((), float(v))
        for k, v in self.by_level.items():
            data[f"{k}_by_level"] = (("level",), np.asarray(v))
        for k, v in self.per_sample.items():
            v = np.asarray(v)
            dims = ("sample",) if v.ndim == 1 else ("sample", "level")
            data[f"{k}_per_sample"] = (dims, v)
        coords: dict[str, Any] = {
            "sample": np.arange(self.n_fields),
            "level": self.levels,
        }
        if self.calibration_expected is not None:
            coords["prob"] = self.calibration_expected
            data["calibration_observed"] = (("prob",), self.calibration_observed)
            if self.calibration_observed_per_sample is not None:
                data["calibration_observed_per_sample"] = (
                    ("sample", "prob"),
                    self.calibration_observed_per_sample,
                )
        if self.pit_counts is not None:
            centres = 0.5 * (self.pit_edges[1:] + self.pit_edges[:-1])
            coords["pit_bin"] = centres
            data["pit_counts"] = (("pit_bin",), self.pit_counts)
        attrs = {
            "kind": self.kind,
            "n_fields": self.n_fields,
            "field_shape": list(self.field_shape),
            "n_members": -1 if self.n_members is None else self.n_members,
        }
        attrs.update({f"meta_{k}": str(v) for k, v in self.meta.items()})
        return xr.Dataset(data, coords=coords, attrs=attrs)

    # ------------------------------------------------------------------ display
    def summary(self) -> str:
        """A printable plain-text table of the pooled metrics and the per-level ones."""
        lines = []
        title = f"UQ report: {self.kind} prediction, {self.n_fields} fields of {self.field_shape}"
        if self.n_members:
            title += f", {self.n_members} members"
        if self.meta.get("name"):
            title = f"{self.meta['name']} - " + title
        lines.append(title)
        w = max(len(k) for k in self.scalars) if self.scalars else 10
        lines.append(f"{'metric':<{w}}  {'value':>12}  better   meaning")
        for k, v in self.scalars.items():
            doc, better = _SCALAR_DOC.get(k, ("", ""))
            lines.append(f"{k:<{w}}  {_fmt(v):>12}  {better:<7}  {doc}")
        if self.by_level:
            lines.append("")
            cols = [
                c
                for c in (
                    "coverage",
                    "coverage_gap",
                    "coverage_p10",
                    "field_coverage",
                    "interval_score",
                    "width",
                )
                if c in self.by_level
            ]
            lines.append(f"{'level':>6}  " + "  ".join(f"{c:>14}" for c in cols))
            for i, lv in enumerate(self.levels):
                row = "  ".join(f"{_fmt(self.by_level[c][i]):>14}" for c in cols)
                lines.append(f"{lv:>6.3g}  {row}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _fmt(v: float) -> str:
    v = float(v)
    if not math.isfinite(v):
        return "nan"
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
        return f"{v:.4e}"
    return f"{v:.5g}"


def compare(reports: Mapping[str, UQReport], metrics: Sequence[str] | None = None) -> str:
    """Side-by-side plain-text table of several reports (one column per model)."""
    if not reports:
        raise ValueError("reports is empty; pass a mapping of name -> UQReport")
    names = list(reports)
    if metrics is None:
        metrics = []
        for r in reports.values():
            metrics += [k for k in r.scalars if k not in metrics]
        lv_keys = []
        for r in reports.values():
            for i, lv in enumerate(r.levels):
                if "coverage" in r.by_level:
                    key = f"coverage@{lv:g}"
                    if key not in lv_keys:
                        lv_keys.append(key)
                _ = i
        metrics = list(metrics) + lv_keys
    w = max(len(m) for m in metrics)
    cw = max(12, *(len(n) for n in names))
    out = [f"{'metric':<{w}}  " + "  ".join(f"{n:>{cw}}" for n in names)]
    for m in metrics:
        vals = []
        for r in reports.values():
            v = r.scalars.get(m, math.nan)
            if m.startswith("coverage@") and "coverage" in r.by_level:
                lv = float(m.split("@")[1])
                hit = np.isclose(r.levels, lv)
                v = float(r.by_level["coverage"][hit][0]) if hit.any() else math.nan
            vals.append(_fmt(v))
        out.append(f"{m:<{w}}  " + "  ".join(f"{v:>{cw}}" for v in vals))
    return "\n".join(out)


# ---------------------------------------------------------------------------- evaluate
def evaluate(
    pred: Prediction | Any,
    y: Any,
    *,
    levels: Sequence[float] = DEFAULT_LEVELS,
    n_bins: int = 100,
    pit_bins: int | None = None,
    spacing: float | Sequence[float] | None = None,
    coords: Sequence[Any] | None = None,
    periodic: bool = False,
    energy: bool = False,
    chunk_elements: int = 1 << 20,
    meta: Mapping[str, Any] | None = None,
) -> UQReport:
    """Judge a (probabilistic) prediction of ``N`` fields against the truth.

    Computes, in one vectorised pass over chunks of fields: accuracy (relative L2 per
    field, RMSE, MAE, max error; relative H1 when ``spacing`` or ``coords`` is given),
    proper scores (CRPS with the right estimator for the prediction kind, Gaussian NLL),
    interval scores, widths and coverage at ``levels`` (pointwise, pooled and per field,
    and whole-field), the calibration curve with its miscalibration area, RMSCE and MACE
    (uncertainty-toolbox definitions), sharpness, the spread-skill ratio and the PIT /
    rank histogram.

    Parameters
    ----------
    pred : Prediction or array
        Prediction of shape ``(N, ...)``; a plain array is a point prediction (accuracy
        metrics only).
    y : array or Tensor, shape ``(N, ...)``
        The truth. Axis 0 indexes fields.
    levels : sequence of float in (0, 1)
        Nominal levels of the central intervals.
    n_bins : int
        Points of the calibration curve (``linspace(0, 1, n_bins)``).
    pit_bins : int, optional
        Bins of the PIT histogram; default ``M + 1`` for ensembles (the rank histogram),
        20 otherwise.
    spacing, coords, periodic
        Grid description for the relative H1 error (see :func:`metrics.rel_h1`).
    energy : bool
        Also compute the fair energy score per field (``O(M²)`` per field).
    chunk_elements : int
        Work is done on chunks of fields holding about this many member values, to bound
        memory.
    meta : mapping, optional
        Stored in the report (e.g. ``{"name": "MgNO", "dataset": "darcy"}``).

    Returns
    -------
    UQReport
    """
    lv = check_levels(levels, "levels")
    if not isinstance(n_bins, int | np.integer) or n_bins < 2:
        raise ValueError(f"n_bins must be an integer >= 2, got {n_bins!r}")
    if not isinstance(pred, Prediction):
        pred = Prediction(pred)
    t = {k: (v.detach() if isinstance(v, torch.Tensor) else v) for k, v in pred.tensors().items()}
    mean = t["mean"]
    yt = as_tensor(y, "y", like=mean)
    check_finite(yt, "y")
    if tuple(yt.shape) != pred.shape:
        raise ValueError(f"y has shape {tuple(yt.shape)} but pred has shape {pred.shape}")
    if yt.ndim < 1 or yt.shape[0] < 1:
        raise ValueError("y needs a leading sample axis with at least one field")
    kind = pred.kind
    if kind == "quantiles":
        qlv = pred.levels
        lo_need = (1 - lv) / 2
        if lo_need.min() < qlv[0] - 1e-12 or 1 - lo_need.min() > qlv[-1] + 1e-12:
            raise ValueError(
                f"levels {lv.tolist()} need quantiles outside the stored levels "
                f"[{qlv[0]}, {qlv[-1]}]; pass narrower levels"
            )
    n = yt.shape[0]
    field_shape = tuple(yt.shape[1:])
    p_pts = max(int(np.prod(field_shape)), 1)
    m_members = pred.n_samples or 1
    chunk = max(1, int(chunk_elements) // (p_pts * max(m_members, 1)))
    k = len(lv)
    want_h1 = spacing is not None or coords is not None
    if want_h1:
        fd = tuple(range(1, yt.ndim))
        weights, grads = _grid_weights_and_spacing(yt.shape, fd, spacing, coords, periodic, yt)
    if pit_bins is None:
        pit_bins = m_members + 1 if kind == "samples" else 20
    if kind == "gaussian" and bool((t["std"] <= 0).any()):
        raise ValueError("std of pred must be strictly positive to evaluate NLL and calibration")

    ps: dict[str, np.ndarray] = {}

    def put(name, i0, v):
        arr = ps.get(name)
        if arr is None:
            shape = (n, *v.shape[1:])
            arr = ps[name] = np.empty(shape, dtype=np.float64)
        arr[i0 : i0 + v.shape[0]] = v.detach().to(torch.float64).cpu().numpy()

    sums = {"se": 0.0, "ae": 0.0, "max": 0.0, "var": 0.0}
    cal_per = np.empty((n, n_bins), dtype=np.float64) if kind != "point" else None
    pit_counts = torch.zeros(pit_bins, dtype=torch.float64)
    z_levels = torch.special.ndtri(torch.as_tensor((1 + lv) / 2, dtype=torch.float64))

    with torch.no_grad():
        for i0 in range(0, n, chunk):
            sl = slice(i0, min(i0 + chunk, n))
            m = mean[sl]
            yy = yt[sl]
            b = yy.shape[0]
            err = m - yy
            e2 = err.square().reshape(b, -1)
            ae = err.abs().reshape(b, -1)
            y2 = yy.square().reshape(b, -1).sum(1, dtype=torch.float64)
            if bool((y2 == 0).any()):
                raise ValueError("y has a field that is identically zero; rel_l2 is undefined")
            se_f = e2.sum(1, dtype=torch.float64)
            put("rel_l2", i0, (se_f / y2).sqrt())
            put("rmse", i0, (se_f / p_pts).sqrt())
            put("mae", i0, ae.sum(1, dtype=torch.float64) / p_pts)
            put("max_abs_error", i0, ae.amax(1))
            sums["se"] += float(se_f.sum())
            sums["ae"] += float(ae.sum(dtype=torch.float64))
            sums["max"] = max(sums["max"], float(ae.max()))
            if want_h1:
                num = _h1_sq(err, fd, weights, grads, periodic)
                den = _h1_sq(yy, fd, weights, grads, periodic)
                put("rel_h1", i0, (num / den).sqrt())
            if kind == "point":
                continue

            # ---- distribution-specific per-point quantities
            if kind == "gaussian":
                sd = t["std"][sl]
                var = sd.square()
                crps = _crps_gaussian_kernel(m, sd, yy)
                put("nll", i0, _nll_kernel(m, sd, yy).reshape(b, -1).mean(1, dtype=torch.float64))
                z = err.abs() / sd
                d = torch.special.erf(z / math.sqrt(2.0))
                half = [sd * float(zl) for zl in z_levels]
                bounds = [(m - h, m + h) for h in half]
                u = torch.special.ndtr(-err / sd)
            elif kind == "samples":
                s = t["samples"][:, sl]
                srt = _sort0(s)
                mm = s.shape[0]
                smean = s.mean(0)
                var = (s[0] - smean).square()
                for j in range(1, mm):
                    var += (s[j] - smean).square()
                var /= mm - 1
                crps = _abs_dev_mean(s, yy) - _gini_sum(srt) / (mm * (mm - 1))
                k_lt, k_le = _rank_counts(srt, yy)
                d = _central_distance_sorted(srt, yy, k_lt, k_le)
                qs = sorted_quantile(srt, np.concatenate([(1 - lv) / 2, (1 + lv) / 2]))
                bounds = [(qs[j], qs[k + j]) for j in range(k)]
                u = (k_lt + k_le + 1).to(yy.dtype) / (2 * (mm + 1))
                if energy:
                    sf, yf = s.reshape(mm, b, -1), yy.reshape(b, -1)
                    first = sum(torch.linalg.vector_norm(sf[a] - yf, dim=-1) for a in range(mm))
                    pair = torch.zeros(b, dtype=s.dtype, device=s.device)
                    for a in range(mm):
                        for c in range(a + 1, mm):
                            pair += torch.linalg.vector_norm(sf[a] - sf[c], dim=-1)
                    put("energy_score", i0, first / mm - pair / (mm * (mm - 1)))
            else:  # quantiles
                q = t["quantiles"][:, sl]
                sub = pred[sl].torch()
                var = sub.variance
                crps = 2 * _pinball_mean(q, pred.levels, yy)
                uu = _interp_cdf_quantiles(q, pred.levels, yy)
                d = torch.where(torch.isnan(uu), torch.full_like(uu, math.inf), (2 * uu - 1).abs())
                qs = sub.quantile(np.concatenate([(1 - lv) / 2, (1 + lv) / 2]).tolist())
                bounds = [(qs[j], qs[k + j]) for j in range(k)]
                u = torch.where(torch.isnan(uu), torch.where(yy < q[0], 0.0, 1.0).to(uu), uu)

            put("crps", i0, crps.reshape(b, -1).mean(1, dtype=torch.float64))
            vf = var.reshape(b, -1).sum(1, dtype=torch.float64)
            put("sharpness", i0, (vf / p_pts).sqrt())
            put("spread_skill_ratio", i0, (vf / se_f).sqrt())
            sums["var"] += float(vf.sum())
            cov, isc, wid, fcov = [], [], [], []
            for j, a in enumerate(lv):
                lo, hi = bounds[j]
                hit = ((yy >= lo) & (yy <= hi)).reshape(b, -1)
                n_hit = hit.sum(1, dtype=torch.float64)
                cov.append(n_hit / p_pts)
                fcov.append((n_hit == p_pts).to(torch.float64))
                isc.append(
                    _interval_score_kernel(lo, hi, yy, float(a))
                    .reshape(b, -1)
                    .mean(1, dtype=torch.float64)
                )
                wid.append((hi - lo).reshape(b, -1).mean(1, dtype=torch.float64))
            put("coverage", i0, torch.stack(cov, 1))
            put("field_coverage", i0, torch.stack(fcov, 1))
            put("interval_score", i0, torch.stack(isc, 1))
            put("width", i0, torch.stack(wid, 1))
            cal_per[sl] = _calibration_counts(d, n_bins, True).cpu().numpy()
            uf = u.reshape(-1).to(torch.float64).clamp(0, 1)
            idx = (uf * pit_bins).floor().clamp(max=pit_bins - 1).to(torch.int64)
            pit_counts += torch.bincount(idx, minlength=pit_bins).to(torch.float64).cpu()

    total = n * p_pts
    scalars: dict[str, float] = {
        "rel_l2": float(ps["rel_l2"].mean()),
        "rel_l2_p90": float(np.quantile(ps["rel_l2"], 0.9)),
    }
    if want_h1:
        scalars["rel_h1"] = float(ps["rel_h1"].mean())
    scalars["rmse"] = math.sqrt(sums["se"] / total)
    scalars["mae"] = sums["ae"] / total
    scalars["max_abs_error"] = sums["max"]
    report = UQReport(
        kind=kind,
        n_fields=n,
        field_shape=field_shape,
        n_members=pred.n_samples,
        levels=lv,
        scalars=scalars,
        meta=dict(meta or {}),
    )
    per_sample = {k2: ps[k2] for k2 in ("rel_l2", "rmse", "mae", "max_abs_error") if k2 in ps}
    if want_h1:
        per_sample["rel_h1"] = ps["rel_h1"]
    if kind != "point":
        scalars["crps"] = float(ps["crps"].mean())
        if kind == "gaussian":
            scalars["nll"] = float(ps["nll"].mean())
        if "energy_score" in ps:
            scalars["energy_score"] = float(ps["energy_score"].mean())
        exp = np.linspace(0.0, 1.0, n_bins)
        obs = cal_per.mean(0)
        e_t = torch.from_numpy(exp)
        scalars["miscalibration_area"] = float(_miscal_area(e_t, torch.from_numpy(obs)))
        scalars["rmsce"] = float(np.sqrt(np.mean((obs - exp) ** 2)))
        scalars["mace"] = float(np.mean(np.abs(obs - exp)))
        scalars["sharpness"] = math.sqrt(sums["var"] / total)
        ssr = math.sqrt(sums["var"] / sums["se"]) if sums["se"] > 0 else math.inf
        corr = 1.0
        if kind == "samples":
            corr = math.sqrt((m_members + 1) / m_members)
            ps["spread_skill_ratio"] *= corr
        scalars["spread_skill_ratio"] = ssr * corr
        dens = pit_counts.numpy() / max(float(pit_counts.sum()), 1.0) * pit_bins
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
        for k2 in ("crps", "nll", "energy_score", "sharpness", "spread_skill_ratio"):
            if k2 in ps:
                per_sample[k2] = ps[k2]
        per_sample["coverage"] = cov
        per_sample["interval_score"] = ps["interval_score"]
        per_sample["miscalibration_area"] = _miscal_area(e_t, torch.from_numpy(cal_per)).numpy()
        report.calibration_expected = exp
        report.calibration_observed = obs
        report.calibration_observed_per_sample = cal_per
        report.pit_edges = np.linspace(0.0, 1.0, pit_bins + 1)
        report.pit_counts = pit_counts.numpy()
    report.per_sample = per_sample
    return report
