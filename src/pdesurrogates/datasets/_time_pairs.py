"""Time-pair views of a time series: ``k`` past states -> the next ``m`` states.

A field stored ``(sample, time, *grid[, component])`` is read channel-first as
``(N, C, T, *grid)``. :class:`TimePairs` cuts every trajectory into windows and yields,
for window start ``t``, the history ``u[:, t : t + k]`` and the next states
``u[:, t + k : t + k + m * unroll]``, each with its time axis folded into the channel
axis **time-major**: state ``j`` of a window occupies channels ``j*C .. (j+1)*C - 1``
(:func:`stack_time`; :func:`unstack_time` is the inverse). A step model therefore maps
``(B, C*k, *grid) -> (B, C*m, *grid)``, and the next history is the last ``C*k``
channels of ``cat(history, prediction)`` — what :func:`pdesurrogates.surrogates.rollout`
and the pushforward training step do.

Items are ``{"a": history (C*k, *grid), "u": next states (C*m*unroll, *grid),
"sample": int, "start": int}``: the keys the :class:`~pdesurrogates.training.Trainer`'s
default step reads, so one-step (teacher-forcing) training needs no further code.

The time axis must be uniform (a step model has one time step); a non-uniform ``time``
coordinate raises a :class:`~pdesurrogates.errors.DatasetError` naming the file and the
coordinate, unless ``resample=True``, which interpolates every trajectory linearly onto
the uniform grid with the same first and last time and number of points.

Examples
--------
>>> import numpy as np
>>> u = np.arange(2 * 3 * 4).reshape(1, 2, 3, 4)  # (N, C, T, X): 2 channels, 3 times
>>> x = stack_time(u)
>>> x.shape, x[0, :, 0].tolist()  # time-major: (c0,t0), (c1,t0), (c0,t1), ...
((1, 6, 4), [0, 12, 4, 16, 8, 20])
>>> bool((unstack_time(x, 2) == u).all())
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pdesurrogates.errors import DatasetError

__all__ = ["TimePairs", "check_uniform_time", "interpolate_time", "stack_time", "unstack_time"]

_RTOL = 1e-6  # relative tolerance of the uniform-step check (float32 time coordinates)


def _reshape(arr: Any, shape: tuple[int, ...]) -> Any:
    return arr.reshape(shape)


def stack_time(u: Any) -> Any:
    """``(N, C, T, *grid)`` -> ``(N, T*C, *grid)``, time-major (numpy or torch)."""
    if u.ndim < 3:
        raise ValueError(f"stack_time needs (N, C, T, *grid), got shape {tuple(u.shape)}")
    n, c, t = u.shape[:3]
    moved = np.swapaxes(u, 1, 2) if isinstance(u, np.ndarray) else u.transpose(1, 2)
    return _reshape(moved, (n, t * c, *u.shape[3:]))


def unstack_time(x: Any, channels: int) -> Any:
    """``(N, T*C, *grid)`` -> ``(N, C, T, *grid)`` for ``C = channels`` (inverse of
    :func:`stack_time`)."""
    n, tc = x.shape[:2]
    if channels < 1 or tc % channels:
        raise ValueError(
            f"{tc} stacked channels (shape {tuple(x.shape)}) are not a whole number of "
            f"states of {channels} channel(s)"
        )
    u = _reshape(x, (n, tc // channels, channels, *x.shape[2:]))
    return np.swapaxes(u, 1, 2) if isinstance(u, np.ndarray) else u.transpose(1, 2)


def check_uniform_time(times: Any, *, where: str, coord: str = "time") -> float:
    """The step of the uniform, increasing time coordinate ``times``; a
    :class:`DatasetError` naming ``where`` and ``coord`` otherwise."""
    t = np.asarray(times, dtype=np.float64)
    if t.ndim != 1 or len(t) < 2:
        raise DatasetError(f"{where}: coordinate {coord!r} needs at least 2 times, got {t.shape}")
    dt = np.diff(t)
    if not (dt > 0).all():
        raise DatasetError(f"{where}: coordinate {coord!r} is not strictly increasing")
    step = (t[-1] - t[0]) / (len(t) - 1)
    worst = float(np.max(np.abs(dt - step)))
    if worst > _RTOL * max(abs(step), abs(t[-1]), abs(t[0])):
        raise DatasetError(
            f"{where}: coordinate {coord!r} is not uniform (steps from {dt.min():.6g} to "
            f"{dt.max():.6g}); a step model needs one time step. Pass resample=True "
            "(--resample on the command line) to interpolate the trajectories linearly onto "
            "a uniform time grid, or regenerate the data with a uniform time axis"
        )
    return float(step)


def interpolate_time(u: np.ndarray, t: Any, t_new: Any, axis: int) -> np.ndarray:
    """Linear interpolation of ``u`` along ``axis`` from times ``t`` (increasing) to
    ``t_new`` (inside ``[t[0], t[-1]]``): what ``resample=True`` does."""
    t, t_new = np.asarray(t, dtype=np.float64), np.asarray(t_new, dtype=np.float64)
    j = np.clip(np.searchsorted(t, t_new, side="right") - 1, 0, len(t) - 2)
    w = (t_new - t[j]) / (t[j + 1] - t[j])
    shape = [1] * u.ndim
    shape[axis] = len(t_new)
    w = w.reshape(shape).astype(u.dtype)
    lo, hi = np.take(u, j, axis=axis), np.take(u, j + 1, axis=axis)
    return lo + w * (hi - lo)


class TimePairs:
    """History -> next-states pairs of the time series in a :class:`FieldDataset`.

    A map-style torch dataset (it has ``__len__`` / ``__getitem__``): item ``i`` is
    window ``i % windows`` of sample ``i // windows`` of ``dataset``.

    Parameters
    ----------
    dataset : FieldDataset
        The samples (e.g. ``open_dataset(path).split("train")``).
    field : str or sequence of str
        Field(s) with a ``time`` dim; several fields (same time and grid) are concatenated
        along the channel axis in the order given.
    history : int
        ``k``, states fed to the model.
    steps : int
        ``m``, states the model predicts per call.
    unroll : int
        Model calls per target: the target holds ``m * unroll`` states (``> 1`` for
        multi-step / pushforward training).
    stride : int
        Time steps between consecutive window starts.
    resample : bool
        Interpolate a non-uniform time axis linearly onto a uniform one (same first and
        last time, same number of points) instead of refusing it.
    in_memory : bool
        Read the field(s) once into memory (default); ``False`` reads a sample per item.

    Attributes
    ----------
    times : ndarray
        The (uniform) times of the trajectories; ``dt`` their step.
    resampled : bool
        Whether the file's time axis was not uniform and ``times`` is the resampled one.
    horizon : int
        States after the first history window (``T - k``): the longest rollout, in
        states, that the data can score.
    channels : int
        ``C``, channels of one state.
    """

    def __init__(
        self,
        dataset: Any,
        field: str | Sequence[str],
        *,
        history: int = 1,
        steps: int = 1,
        unroll: int = 1,
        stride: int = 1,
        resample: bool = False,
        in_memory: bool = True,
    ) -> None:
        for name, v in (("history", history), ("steps", steps), ("unroll", unroll)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"TimePairs: {name} must be an integer >= 1, got {v!r}")
        if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
            raise ValueError(f"TimePairs: stride must be an integer >= 1, got {stride!r}")
        self.dataset = dataset
        self.fields = [field] if isinstance(field, str) else list(field)
        self.history, self.steps, self.unroll, self.stride = history, steps, unroll, stride
        self.resample, self.in_memory = bool(resample), bool(in_memory)
        path = getattr(dataset, "path", "dataset")
        for name in self.fields:
            if name not in dataset.fields:
                raise DatasetError(
                    f"{path}: no field {name!r}; available fields: {sorted(dataset.fields)}"
                )
            dims = tuple(dataset.fields[name].dims)
            if "time" not in dims:
                raise DatasetError(
                    f"{path}: field {name!r} has dims {dims} without 'time'; time pairs "
                    "need a time series (sample, time, *grid)"
                )
        t = np.asarray(dataset.coords["time"], dtype=np.float64)
        self._t_file = t
        try:
            names = ", ".join(repr(n) for n in self.fields)
            self.dt = check_uniform_time(t, where=f"{path}, field {names}")
            self.times = t
            self._t_new = None
        except DatasetError:
            if not self.resample:
                raise
            self._t_new = np.linspace(t[0], t[-1], len(t))
            self.times = self._t_new
            self.dt = float(self._t_new[1] - self._t_new[0])
        self.resampled = self._t_new is not None
        n_t = len(t)
        need = history + steps * unroll
        if n_t < need:
            raise DatasetError(
                f"{path}: the time axis holds {n_t} states, fewer than history + steps * "
                f"unroll = {need}; use a shorter window"
            )
        self.horizon = n_t - history
        self.windows = (n_t - need) // stride + 1
        self._cache: tuple[int, np.ndarray] | None = None
        self._data = self._load_all() if self.in_memory else None
        self.channels = int(self._sample(0).shape[0]) if len(dataset) else 0

    # -- reading -------------------------------------------------------------------------
    def _resampled(self, u: np.ndarray) -> np.ndarray:
        """``u`` (..., C, T, *grid) on the uniform time grid (axis -ndim+2 is time)."""
        if self._t_new is None:
            return u
        axis = u.ndim - len(self.dataset.shape(self.fields[0])) + 1
        return interpolate_time(u, self._t_file, self._t_new, axis)

    def _load_all(self) -> np.ndarray:
        parts = [self.dataset.load(name) for name in self.fields]
        u = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        return self._resampled(u)

    def _sample(self, s: int) -> np.ndarray:
        """Trajectory ``s`` of this dataset, ``(C, T, *grid)``."""
        if self._data is not None:
            return self._data[s]
        if self._cache is not None and self._cache[0] == s:
            return self._cache[1]
        item = self.dataset[s]
        parts = [item[name].numpy() for name in self.fields]
        u = self._resampled(parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0))
        self._cache = (s, u)
        return u

    def __len__(self) -> int:
        return len(self.dataset) * self.windows

    def __getitem__(self, i: int) -> dict[str, Any]:
        import torch

        n = len(self)
        if not -n <= int(i) < n:
            raise IndexError(f"index {i} out of range for {n} time pairs")
        s, w = divmod(int(i) % n, self.windows)
        u = self._sample(s)
        t0 = w * self.stride
        k, m = self.history, self.steps * self.unroll
        window = u[:, t0 : t0 + k + m]
        x = stack_time(np.ascontiguousarray(window[None, :, :k]))[0]
        y = stack_time(np.ascontiguousarray(window[None, :, k:]))[0]
        return {
            "a": torch.from_numpy(np.array(x)),
            "u": torch.from_numpy(np.array(y)),
            "sample": s,
            "start": t0,
        }

    # -- views ---------------------------------------------------------------------------
    def _like(self, dataset: Any, **overrides: Any) -> TimePairs:
        kw = {
            "history": self.history,
            "steps": self.steps,
            "unroll": self.unroll,
            "stride": self.stride,
            "resample": self.resample,
            "in_memory": self.in_memory,
        }
        kw.update(overrides)
        return TimePairs(dataset, self.fields, **kw)

    def split(self, name: str) -> TimePairs:
        """The same view of the samples of split ``name`` (``train`` / ``valid`` / ``test``)."""
        return self._like(self.dataset.split(name))

    def with_unroll(self, unroll: int) -> TimePairs:
        """The same samples with targets of ``steps * unroll`` states."""
        return self._like(self.dataset, unroll=unroll)

    def trajectories(self) -> np.ndarray:
        """Every trajectory, channel-first with its time axis, ``(N, C, T, *grid)``
        (resampled when asked), e.g. the truth of a rollout."""
        if self._data is not None:
            return self._data
        return np.stack([self._sample(s) for s in range(len(self.dataset))])

    def __repr__(self) -> str:
        return (
            f"TimePairs({getattr(self.dataset, 'path', '?')}, fields={self.fields}, "
            f"history={self.history}, steps={self.steps}, unroll={self.unroll}, "
            f"pairs={len(self)}, dt={self.dt:.6g})"
        )
