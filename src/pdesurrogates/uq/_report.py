"""The result of :func:`pdesurrogates.uq.evaluate`: :class:`UQReport`, its JSON, xarray and
text forms, and :func:`compare` for side-by-side tables."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PREDICTIVE_FORMS", "UQReport", "compare"]

# What each predictive form means for the scores (shown in every summary).
PREDICTIVE_FORMS = {
    "samples": "ensemble members / samples (fair ensemble CRPS, empirical-quantile intervals)",
    "gaussian": "Gaussian mean and std (closed-form CRPS and NLL, Gaussian intervals)",
    "quantiles": "quantiles / intervals (quantile CRPS, interpolated intervals)",
    "point": "point prediction, mean only (accuracy metrics only)",
}

# Descriptions used by summary() and the JSON ("lower" / "higher" / "target" is better).
_SCALAR_DOC = {
    "rel_l2": ("mean relative L2 error per field", "lower"),
    "rel_l2_p90": ("90th percentile of the per-field relative L2 error", "lower"),
    "rel_l2_pooled": ("relative L2 of all values together (one-value fields)", "lower"),
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
    "steps_to_10pct": (
        "first step whose mean rel L2 exceeds 10 % (inf: none in the rollout)",
        "higher",
    ),
    "time_to_10pct": ("time of that state (the data's time coordinate)", "higher"),
}
_STEP_ROWS = 25  # rows of the per-step table; longer rollouts show evenly spaced steps


@dataclass
class UQReport:
    """Everything :func:`evaluate` measured, as plain numpy arrays and floats.

    Attributes
    ----------
    kind : str
        The predictive form that was scored: ``"samples"`` (ensemble members),
        ``"gaussian"`` (mean and std), ``"quantiles"`` (quantiles / intervals) or
        ``"point"`` (mean only). Also available as :attr:`predictive_form`, and written to
        the JSON, the xarray attributes and every summary.
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
    by_step : dict of str to ndarray (T,)
        For trajectories (``evaluate(..., time_axis=...)``): ``rel_l2``, the relative L2
        error of each state along the trajectory, mean over fields (per field in
        ``per_sample["rel_l2_by_step"]``, ``(N, T)``); empty otherwise.
    step_times : ndarray (T,) or None
        The time of each state of ``by_step``.
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
    by_step: dict[str, np.ndarray] = field(default_factory=dict)
    step_times: np.ndarray | None = None

    @property
    def predictive_form(self) -> str:
        """The predictive form that was scored (``kind``)."""
        return self.kind

    def describe_form(self) -> str:
        """One line naming the scored predictive form and what it implies for the scores."""
        text = f"{self.kind}: {PREDICTIVE_FORMS.get(self.kind, 'unknown form')}"
        if self.kind == "samples" and self.n_members:
            text += f"; {self.n_members} members"
        return text

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
            "predictive_form": self.kind,
            "predictive_form_description": self.describe_form(),
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
            "by_step": {"time": conv(self.step_times), **conv(self.by_step)},
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

        steps = dict(d.get("by_step") or {})
        times = arr(steps.pop("time", None))
        scalars = {k: (math.nan if v is None else float(v)) for k, v in d["scalars"].items()}
        for key in ("steps_to_10pct", "time_to_10pct"):
            if key in d["scalars"] and d["scalars"][key] is None:
                scalars[key] = math.inf  # never crossed within the rollout
        return cls(
            kind=d.get("predictive_form", d.get("kind")),
            n_fields=int(d["n_fields"]),
            field_shape=tuple(d["field_shape"]),
            n_members=d["n_members"],
            levels=np.asarray(d["levels"], dtype=np.float64),
            scalars=scalars,
            by_level={k: arr(v) for k, v in d["by_level"].items()},
            per_sample={k: arr(v) for k, v in d["per_sample"].items()},
            calibration_expected=arr(d["calibration"]["expected"]),
            calibration_observed=arr(d["calibration"]["observed"]),
            pit_edges=arr(d["pit"]["edges"]),
            pit_counts=arr(d["pit"]["counts"]),
            meta=d.get("meta", {}),
            by_step={k: arr(v) for k, v in steps.items()},
            step_times=times,
        )

    def to_xarray(self):
        """An ``xarray.Dataset`` with dims ``sample``, ``level``, ``prob`` and ``pit_bin``
        (and ``time`` for the per-step errors of a trajectory)."""
        import xarray as xr

        data: dict[str, Any] = {}
        for k, v in self.scalars.items():
            data[k] = ((), float(v))
        for k, v in self.by_level.items():
            data[f"{k}_by_level"] = (("level",), np.asarray(v))
        for k, v in self.per_sample.items():
            v = np.asarray(v)
            dims = ("sample",) if v.ndim == 1 else ("sample", "level")
            if k.endswith("_by_step"):
                dims = ("sample", "time")
            data[f"{k}_per_sample"] = (dims, v)
        for k, v in self.by_step.items():
            data[f"{k}_by_step"] = (("time",), np.asarray(v))
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
        if self.step_times is not None:
            coords["time"] = self.step_times
        if self.pit_counts is not None:
            centres = 0.5 * (self.pit_edges[1:] + self.pit_edges[:-1])
            coords["pit_bin"] = centres
            data["pit_counts"] = (("pit_bin",), self.pit_counts)
        attrs = {
            "kind": self.kind,
            "predictive_form": self.kind,
            "predictive_form_description": self.describe_form(),
            "n_fields": self.n_fields,
            "field_shape": list(self.field_shape),
            "n_members": -1 if self.n_members is None else self.n_members,
        }
        attrs.update({f"meta_{k}": str(v) for k, v in self.meta.items()})
        return xr.Dataset(data, coords=coords, attrs=attrs)

    # ------------------------------------------------------------------ display
    def title(self) -> str:
        """One line: the model name (if any), the predictive form, fields and members."""
        title = f"UQ report: {self.kind} prediction, {self.n_fields} fields of {self.field_shape}"
        if self.n_members:
            title += f", {self.n_members} members"
        if self.meta.get("name"):
            title = f"{self.meta['name']} - " + title
        return title

    def metric_rows(self) -> list[tuple[str, str, str, str]]:
        """``(metric, value, better, meaning)`` of every pooled metric, formatted."""
        rows = []
        for k, v in self.scalars.items():
            doc, better = _SCALAR_DOC.get(k, ("", ""))
            rows.append((k, _fmt(v), better, doc))
        return rows

    def level_rows(self) -> tuple[list[str], list[tuple[str, ...]]]:
        """Columns and formatted rows (one per central-interval level) of the per-level
        metrics; empty for a point prediction."""
        names = (
            "coverage",
            "coverage_gap",
            "coverage_p10",
            "field_coverage",
            "interval_score",
            "width",
        )
        cols = [c for c in names if c in self.by_level]
        rows = [
            (f"{lv:.3g}", *(_fmt(self.by_level[c][i]) for c in cols))
            for i, lv in enumerate(self.levels)
        ]
        return (["level", *cols], rows) if cols else ([], [])

    def step_rows(self, max_rows: int = _STEP_ROWS) -> tuple[list[str], list[tuple[str, ...]]]:
        """Columns and formatted rows (one per state along the trajectory; evenly spaced
        ones, the first and last included, for more than ``max_rows`` states) of the
        per-step errors; empty when the fields are no trajectories."""
        if "rel_l2" not in self.by_step:
            return [], []
        err = np.asarray(self.by_step["rel_l2"])
        n = len(err)
        shown = np.unique(np.linspace(0, n - 1, min(n, max(max_rows, 2))).round().astype(int))
        times = self.step_times if self.step_times is not None else np.arange(1, n + 1)
        rows = [(str(i + 1), f"{float(times[i]):.6g}", _fmt(err[i])) for i in shown]
        return ["step", "time", "rel_l2"], rows

    def step_caption(self, max_rows: int = _STEP_ROWS) -> str:
        """One line on the per-step table (of ``max_rows`` rows at most): how many
        states and the time to 10 %."""
        n = len(self.by_step.get("rel_l2", ()))
        hit = self.scalars.get("time_to_10pct", math.inf)
        step = self.scalars.get("steps_to_10pct", math.inf)
        when = (
            f"at step {step:.0f} (time {hit:.6g})"
            if math.isfinite(hit)
            else "at no step of the rollout"
        )
        rows = len(self.step_rows(max_rows)[1])
        shown = "" if n <= rows else f"; {rows} of {n} states shown"
        return f"Mean over fields of each state's relative L2; it exceeds 10 % {when}{shown}."

    def summary(self) -> str:
        """A printable plain-text table of the pooled metrics and the per-level ones."""
        lines = [self.title(), f"predictive form scored: {self.describe_form()}"]
        w = max(len(k) for k in self.scalars) if self.scalars else 10
        lines.append(f"{'metric':<{w}}  {'value':>12}  better   meaning")
        for k, v, better, doc in self.metric_rows():
            lines.append(f"{k:<{w}}  {v:>12}  {better:<7}  {doc}")
        cols, rows = self.level_rows()
        if rows:
            lines.append("")
            lines.append(f"{cols[0]:>6}  " + "  ".join(f"{c:>14}" for c in cols[1:]))
            for r in rows:
                lines.append(f"{r[0]:>6}  " + "  ".join(f"{v:>14}" for v in r[1:]))
        cols, rows = self.step_rows()
        if rows:
            lines += ["", "  ".join(f"{c:>10}" for c in cols)]
            lines += ["  ".join(f"{v:>10}" for v in r) for r in rows]
            lines.append(self.step_caption())
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """The summary as markdown: the scored predictive form, then the metric tables."""
        title = self.meta.get("name") or "UQ report"
        out = [
            f"## {title}",
            "",
            f"**Predictive form scored:** {self.describe_form()}.  ",
            f"{self.n_fields} fields of shape {self.field_shape}.",
            "",
            "| metric | value | better | meaning |",
            "|---|---|---|---|",
        ]
        for k, v in self.scalars.items():
            doc, better = _SCALAR_DOC.get(k, ("", ""))
            out.append(f"| {k} | {_fmt(v)} | {better} | {doc} |")
        if self.by_level:
            cols = [c for c in ("coverage", "field_coverage", "interval_score", "width")]
            cols = [c for c in cols if c in self.by_level]
            out += ["", "| level | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
            for i, lv in enumerate(self.levels):
                cells = " | ".join(_fmt(self.by_level[c][i]) for c in cols)
                out.append(f"| {lv:.3g} | {cells} |")
        cols, rows = self.step_rows()
        if rows:
            out += ["", "| " + " | ".join(cols) + " |", "|---" * len(cols) + "|"]
            out += ["| " + " | ".join(r) + " |" for r in rows]
            out += ["", self.step_caption()]
        return "\n".join(out) + "\n"

    def __str__(self) -> str:
        return self.summary()


def _fmt(v: float) -> str:
    v = float(v)
    if not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
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
