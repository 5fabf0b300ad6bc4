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

from pdesurrogates.errors import DatasetError

__all__ = ["SeriesPlan", "series_plan"]


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
    ds, data: dict[str, Any], *, history: int | None, unroll: int | None, loss: Any
) -> SeriesPlan | None:
    """The plan for a time-series run, or ``None`` when ``ds`` has no such field and
    neither ``history`` nor ``unroll`` asks for one."""
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
    train = TimePairs(ds.split("train"), name, history=history, unroll=unroll)
    valid = None
    if "valid" in splits and len(splits["valid"]):
        valid = TimePairs(ds.split("valid"), name, history=history, unroll=unroll)
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
            }
        },
    )
