"""Training runs of a step model on a time series: what ``train mgno|fno`` does with a
field that has a ``time`` dim (``--history K --unroll N``).

The field's trajectories become :class:`~pdesurrogates.datasets.TimePairs` (``K`` states
in, one state out); ``N > 1`` trains with the pushforward step
(:class:`~pdesurrogates.training.PushforwardStep`, ``backprop="last"``). The model is
normalised with the field's train-split statistics, repeated for every stacked state,
so :func:`pdesurrogates.surrogates.rollout` can feed its outputs straight back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from pdesurrogates.errors import DatasetError

__all__ = ["SeriesPlan", "predict_series", "series_plan", "time_axis_of", "truth_at_times"]

_DT_RTOL = 1e-3  # relative tolerance between the run's time step and the data's


@dataclass
class SeriesPlan:
    """Everything a run needs to train a step model on one time-series field."""

    train: Any
    valid: Any
    target: str
    resolution: int
    in_channels: int
    out_channels: int
    stats_in: tuple[list[float], list[float]]
    stats_out: tuple[list[float], list[float]]
    step: Any
    record: dict[str, Any] = field(default_factory=dict)


def _series_field(ds, name: str | None) -> str | None:
    """The time-series field to train on (``name``, or the one with a ``time`` dim)."""
    timed = [k for k, s in ds.fields.items() if "time" in s.dims and s.dims[0] == "sample"]
    if name is not None:
        return name if name in timed else None
    if len(timed) > 1:
        raise DatasetError(
            f"{ds.path}: several fields have a time axis ({timed}); name the one to train on "
            "with target = ... in the data table of the config"
        )
    return timed[0] if timed else None


def series_plan(
    ds,
    data: dict[str, Any],
    *,
    history: int | None,
    unroll: int | None,
    loss: Any,
    resample: bool = False,
) -> SeriesPlan | None:
    """The plan for a time-series run, or ``None`` when ``ds`` has no such field and
    neither ``history`` nor ``unroll`` asks for one. ``resample`` interpolates a
    non-uniform time axis linearly onto a uniform one (see :class:`TimePairs`)."""
    from pdesurrogates.datasets import TimePairs
    from pdesurrogates.training import PushforwardStep

    history = history if history is not None else data.get("history")
    unroll = unroll if unroll is not None else data.get("unroll")
    name = _series_field(ds, data.get("target"))
    if name is None:
        if history is not None or unroll is not None:
            raise DatasetError(
                f"{ds.path}: --history/--unroll need a field with a time axis (sample, "
                f"time, x, y); fields: { ({k: s.dims for k, s in ds.fields.items()}) }"
            )
        return None
    history, unroll = history or 1, unroll or 1
    dims = [d for d in ds.fields[name].dims if d not in ("sample", "time", "component")]
    if dims != ["x", "y"]:
        raise DatasetError(
            f"{ds.path}: field {name!r} has dims {ds.fields[name].dims}; MgNO and FNO step "
            "models need (sample, time, x, y[, component])"
        )
    splits = ds.splits
    kw = {"history": history, "unroll": unroll, "resample": resample}
    train = TimePairs(ds.split("train"), name, **kw)
    valid = None
    if "valid" in splits and len(splits["valid"]):
        valid = TimePairs(ds.split("valid"), name, **kw)
    c, _, nx, _ = ds.shape(name)  # channel-first (C, T, X, Y)
    mean, std = ds.stats(name)
    mean = np.asarray(mean, dtype=np.float64).reshape(-1).tolist()
    std = np.asarray(std, dtype=np.float64).reshape(-1).tolist()
    step = PushforwardStep(unroll=unroll, loss=loss) if unroll > 1 else None
    return SeriesPlan(
        train=train,
        valid=valid,
        target=name,
        resolution=int(nx),
        in_channels=c * history,
        out_channels=c,
        stats_in=(mean * history, std * history),
        stats_out=(mean, std),
        step=step,
        record={
            "time_series": {
                "field": name,
                "history": history,
                "steps": 1,
                "unroll": unroll,
                "dt": train.dt,
                "horizon": train.horizon,
                "resampled": train.resampled,
            }
        },
    )


def _check_series_data(ds, record: dict, run_dir: Any) -> str:
    """The time-series field of ``ds`` the step-model run of ``record`` predicts."""
    ts = record["time_series"]
    name = ts["field"]
    spec = ds.fields.get(name)
    if spec is None or "time" not in spec.dims:
        found = {k: s.dims for k, s in ds.fields.items()}
        raise DatasetError(
            f"{ds.path}: the step model of {run_dir} rolls out the time series {name!r}, "
            f"but the file has no field {name!r} with a time axis (fields: {found}); pass a "
            "file like the one it was trained on"
        )
    return name


def _check_step(pairs, ts: dict, run_dir: Any, name: str) -> None:
    """Refuse data whose time step is not the one the step model was trained on."""
    dt = ts.get("dt")
    if dt is not None and abs(pairs.dt - dt) > _DT_RTOL * abs(dt):
        raise DatasetError(
            f"{pairs.dataset.path}: field {name!r} has time step {pairs.dt:.6g}, but the step "
            f"model of {run_dir} advances {dt:.6g} per state; roll it out on data with its "
            "time step"
        )


def _check_channels(pairs, record: dict, run_dir: Any, name: str) -> None:
    """Refuse a field whose states have another number of channels than the run's."""
    want = (record.get("model") or {}).get("config", {}).get("out_channels")
    if want is not None and pairs.channels != want:
        raise DatasetError(
            f"{pairs.dataset.path}: field {name!r} has {pairs.channels} channel(s) per state, "
            f"the step model of {run_dir} predicts {want}; pass a file like the one it was "
            "trained on"
        )


@torch.no_grad()
def _roll_members(model, u0: torch.Tensor, steps: int, horizon: int, batch_size: int):
    """``(mean, members or None)``: every member rolled out from ``u0``, in batches."""
    from pdesurrogates.surrogates import Ensemble, rollout

    members = list(model.members) if isinstance(model, Ensemble) else [model]
    outs = []
    for m in members:
        m.eval()
        parts = [
            rollout(m, u0[i : i + batch_size], steps, horizon=horizon)
            for i in range(0, len(u0), batch_size)
        ]
        outs.append(torch.cat(parts))
    if len(outs) == 1:
        return outs[0], None
    samples = torch.stack(outs)
    return samples.mean(0), samples


def predict_series(
    model,
    record: dict,
    ds,
    split: str,
    *,
    steps: int | None = None,
    batch_size: int = 16,
    resample: bool = False,
    run_dir: Any = "the run",
):
    """Roll the step model of a time-series run out over the trajectories of ``split``.

    Each trajectory's first ``K`` (``history``) states are the initial condition; the
    rollout covers the rest of the file's time axis, or ``steps`` model calls. Ensemble
    members each roll out their own trajectory (kept as the prediction's samples).
    Returns a :class:`~pdesurrogates.runs._registry.Predicted` of the field at the
    predicted times: dims ``(sample, time, ...)`` as in the file, ``time`` coordinate =
    the times of the predicted states (resampled ones with ``resample``).

    Raises
    ------
    ValueError
        ``steps`` longer than the data's horizon (the message names the horizon).
    DatasetError
        No such field, a non-uniform time axis without ``resample`` (naming the file and
        field), or a time step other than the run's.
    RolloutError
        The rollout produced NaN/Inf (the message names the step).
    """
    from pdesurrogates.datasets import TimePairs
    from pdesurrogates.runs._registry import Predicted
    from pdesurrogates.uq import Prediction

    ts = record["time_series"]
    name = _check_series_data(ds, record, run_dir)
    rows = ds if split == "all" else ds.split(split)
    if not len(rows):
        raise DatasetError(f"{ds.path}: split {split!r} holds no trajectories to roll out")
    k, m = int(ts["history"]), int(ts.get("steps", 1))
    pairs = TimePairs(rows, name, history=k, steps=m, resample=resample)
    _check_step(pairs, ts, run_dir, name)
    _check_channels(pairs, record, run_dir, name)
    horizon = pairs.horizon
    calls = horizon // m if steps is None else steps
    if isinstance(calls, bool) or not isinstance(calls, int) or calls < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if calls * m > horizon:
        raise ValueError(
            f"--steps {calls}: the data's horizon is {horizon} states after the first {k} "
            f"(history) of {len(pairs.times)} in {ds.path} (field {name!r}); use at most "
            f"--steps {horizon // m}"
        )
    u0 = torch.from_numpy(np.ascontiguousarray(pairs.trajectories()[:, :, :k]))
    mean, samples = _roll_members(model, u0, calls, horizon, batch_size)
    spec = ds.fields[name]
    times = np.asarray(pairs.times)[k : k + calls * m]
    coords = {d: ds.coords[d] for d in spec.dims[1:] if d in ds.coords}
    coords["time"] = times
    if spec.dims[-1] == "component" and "component" not in coords:
        coords["component"] = np.arange(mean.shape[1])
    pred = Prediction(mean.numpy(), samples=None if samples is None else samples.numpy())
    index = np.asarray(rows.indices)
    return Predicted(pred, name, tuple(spec.dims), coords, units=spec.units, source_index=index)


def time_axis_of(dims) -> int:
    """The axis of the ``time`` dim of a field with ``dims`` read channel-first."""
    return 2 + [d for d in dims[1:] if d != "component"].index("time")


def truth_at_times(rows, field: str, y, times, source: Any, truth_path: Any):
    """The truth ``y`` (channel-first) at the predicted ``times``: the matching states,
    or, for a rollout of resampled data (``source``, the prediction file's JSON
    ``source`` attribute, says ``rollout.resample``), the truth interpolated linearly
    onto them. ``time`` is at :func:`time_axis_of` the field's dims."""
    import json

    from pdesurrogates.datasets._time_pairs import interpolate_time

    dims = rows.fields[field].dims
    if "time" not in dims:
        raise DatasetError(
            f"{truth_path}: field {field!r} has dims {dims} without 'time', but the "
            "prediction is a trajectory (it has a time axis); compare with the time series "
            "it was predicted from"
        )
    axis = time_axis_of(dims)
    t = np.asarray(rows.coords["time"], dtype=np.float64)
    tol = 1e-6 * max(float(np.max(np.abs(t))), 1e-30)
    j = np.clip(np.searchsorted(t, times), 0, len(t) - 1)
    lo = np.maximum(j - 1, 0)
    j = np.where(np.abs(t[lo] - times) < np.abs(t[j] - times), lo, j)
    if np.all(np.abs(t[j] - times) <= tol):
        return np.take(y, j, axis=axis)
    if isinstance(source, str | bytes):
        try:
            source = json.loads(source or "{}")
        except ValueError:
            source = {}
    source = source if isinstance(source, dict) else {}
    inside = times.min() >= t[0] - tol and times.max() <= t[-1] + tol
    if source.get("rollout", {}).get("resample") and inside:
        return interpolate_time(y, t, times, axis).astype(y.dtype, copy=False)
    raise DatasetError(
        f"{truth_path}: field {field!r} has no states at the predicted times "
        f"{times[:4].tolist()}...; compare with the file the trajectories were predicted from"
    )
