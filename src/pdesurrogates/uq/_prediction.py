"""The predictive distribution every surrogate hands to the UQ evaluator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from pdesurrogates.uq._backend import (
    as_tensor,
    check_finite,
    check_levels,
    is_torch,
    member_std,
    ndtri,
    sort_members,
    sorted_quantile_row,
    to_output,
)

__all__ = ["Prediction", "match_channel_axis"]

_KINDS = ("point", "gaussian", "samples", "quantiles")


def match_channel_axis(y: Any, shape: Sequence[int]) -> Any:
    """``y`` reshaped to ``shape`` when the two differ only by a channel axis of length 1.

    The package's tensor convention is channel-first, ``(N, C, *spatial)``: models return
    ``(N, 1, X, Y)`` for one output field, while a dataset field read on its own is
    ``(N, X, Y)``. Every API that compares a field with a prediction (``uq.evaluate``,
    ``uq.conformalize``, a calibrated band) goes through this one helper, so either form
    is accepted where the other is expected. Any other mismatch returns ``y`` unchanged
    (the caller then reports the two shapes).

    Examples
    --------
    >>> import numpy as np
    >>> match_channel_axis(np.zeros((5, 8, 8)), (5, 1, 8, 8)).shape
    (5, 1, 8, 8)
    >>> match_channel_axis(np.zeros((5, 1, 8, 8)), (5, 8, 8)).shape
    (5, 8, 8)
    >>> match_channel_axis(np.zeros((5, 2, 8, 8)), (5, 8, 8)).shape
    (5, 2, 8, 8)
    """
    have, want = tuple(y.shape), tuple(int(s) for s in shape)
    if have == want or len(have) < 1 or len(want) < 1:
        return y
    if len(want) == len(have) + 1 and want[1] == 1 and want[:1] + want[2:] == have:
        return y.reshape(want)
    if len(have) == len(want) + 1 and have[1] == 1 and have[:1] + have[2:] == want:
        return y.reshape(want)
    return y


class Prediction:
    """A predictive distribution over any batch or field shape.

    A mean plus at most one description of the spread: a Gaussian standard deviation,
    samples (ensemble members, member axis first) or quantiles at given levels. With none
    of them the prediction is a point prediction (only accuracy metrics apply).

    Fields follow the package's channel-first convention ``(N, C, *spatial)``, the shape
    models return (``(N, 1, X, Y)`` for one output field). A target compared with the
    prediction may omit a channel axis of length 1 (``(N, X, Y)``): the evaluator and the
    conformal calibrator accept either form (see :func:`match_channel_axis`).

    Parameters
    ----------
    mean : array or Tensor, shape ``(...)``
        Predictive mean, in the units of the target. May be ``None`` when ``samples`` are
        given; it is then the sample mean.
    std : array or Tensor, shape ``(...)``, optional
        Standard deviation of a Gaussian predictive distribution N(mean, std²). Must be
        non-negative.
    samples : array or Tensor, shape ``(S, ...)``, optional
        ``S >= 2`` draws or ensemble members, **member axis first**.
    quantiles : array or Tensor, shape ``(K, ...)``, optional
        Predictive quantiles at ``levels``, level axis first, non-decreasing along it.
    levels : sequence of float, length ``K``
        Strictly increasing levels in (0, 1) of ``quantiles``; required with them.

    Notes
    -----
    Arrays are kept in the type they were given: numpy in, numpy out; torch in, torch out
    (numpy inputs are converted to torch when any argument is a tensor). Conversions:

    * Gaussian → quantiles: ``mean + std * Φ⁻¹(q)``.
    * samples → mean (sample mean), std (``ddof=1``, the unbiased variance) and quantiles
      (empirical, linear interpolation as ``numpy.quantile``).
    * quantiles → other levels by linear interpolation between the given levels (levels
      outside ``[levels[0], levels[-1]]`` raise ``ValueError``); ``std`` is the least-squares
      Gaussian fit ``q_k ≈ μ + σ Φ⁻¹(τ_k)`` (an approximation; metrics never use it silently
      in place of the quantiles).

    Examples
    --------
    >>> import numpy as np
    >>> p = Prediction(np.zeros(3), std=np.ones(3))
    >>> p.kind
    'gaussian'
    >>> lo, hi = p.interval(0.95)
    >>> float(hi[0]).__round__(4)
    1.96
    >>> s = Prediction(None, samples=np.array([[0.0, 1.0], [2.0, 3.0]]))
    >>> s.mean.tolist(), s.std.round(4).tolist()
    ([1.0, 2.0], [1.4142, 1.4142])
    """

    __slots__ = (
        "_cache",
        "_levels",
        "_mean",
        "_memoizing",
        "_numpy",
        "_quantiles",
        "_samples",
        "_std",
    )

    def __init__(
        self,
        mean: Any,
        *,
        std: Any = None,
        samples: Any = None,
        quantiles: Any = None,
        levels: Any = None,
        validate: bool = True,
    ) -> None:
        given = [
            n
            for n, v in (("std", std), ("samples", samples), ("quantiles", quantiles))
            if v is not None
        ]
        if len(given) > 1:
            raise ValueError(
                f"give at most one of std, samples or quantiles, got {' and '.join(given)}"
            )
        if mean is None and samples is None:
            raise ValueError("mean is required unless samples are given")
        self._numpy = not is_torch(mean, std, samples, quantiles)
        self._cache: dict[Any, Any] = {}
        self._memoizing = False
        ref = None
        self._samples = None
        if samples is not None:
            s = as_tensor(samples, "samples")
            if s.ndim < 1:
                raise ValueError("samples must have a leading member axis, shape (S, ...)")
            if s.shape[0] < 2:
                raise ValueError(
                    f"samples must hold at least 2 members along axis 0, got {s.shape[0]} "
                    "(a single member is a point prediction: pass it as mean)"
                )
            if validate:
                check_finite(s, "samples")
            self._samples = s
            ref = s
        if mean is None:
            m = self._samples.mean(0)
        else:
            m = as_tensor(mean, "mean", like=ref)
            if validate:
                check_finite(m, "mean")
        self._mean = m
        if self._samples is not None and tuple(self._samples.shape[1:]) != tuple(m.shape):
            raise ValueError(
                f"samples must have shape (S, *mean.shape) = (S, {', '.join(map(str, m.shape))})"
                f" with the member axis first; got samples {tuple(self._samples.shape)} and "
                f"mean {tuple(m.shape)}"
            )
        self._std = None
        if std is not None:
            sd = as_tensor(std, "std", like=m)
            if tuple(sd.shape) != tuple(m.shape):
                raise ValueError(
                    f"std must have the shape of mean {tuple(m.shape)}, got {tuple(sd.shape)}"
                )
            if validate:
                check_finite(sd, "std")
                if sd.numel() and bool((sd < 0).any()):
                    raise ValueError("std must be non-negative; it holds negative values")
            self._std = sd
        self._quantiles = None
        self._levels = None
        if quantiles is not None:
            if levels is None:
                raise ValueError("levels are required with quantiles (one level per row)")
            lv = check_levels(levels, "levels")
            if np.any(np.diff(lv) <= 0):
                raise ValueError(f"levels must be strictly increasing, got {lv.tolist()}")
            qt = as_tensor(quantiles, "quantiles", like=m)
            if tuple(qt.shape) != (len(lv), *m.shape):
                raise ValueError(
                    f"quantiles must have shape (len(levels), *mean.shape) = "
                    f"{(len(lv), *m.shape)}, got {tuple(qt.shape)}"
                )
            if validate:
                check_finite(qt, "quantiles")
                if len(lv) > 1 and bool((qt[1:] < qt[:-1]).any()):
                    raise ValueError("quantiles must be non-decreasing along the level axis 0")
            self._quantiles = qt
            self._levels = lv
        elif levels is not None:
            raise ValueError("levels were given without quantiles")

    # ------------------------------------------------------------------ descriptors
    @property
    def kind(self) -> str:
        """``"gaussian"``, ``"samples"``, ``"quantiles"`` or ``"point"``."""
        if self._std is not None:
            return "gaussian"
        if self._samples is not None:
            return "samples"
        if self._quantiles is not None:
            return "quantiles"
        return "point"

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the predicted quantity (of ``mean``)."""
        return tuple(self._mean.shape)

    @property
    def n_samples(self) -> int | None:
        """Number of members ``S`` for sample predictions, else ``None``."""
        return None if self._samples is None else int(self._samples.shape[0])

    @property
    def levels(self) -> np.ndarray | None:
        """Levels of the stored quantiles, else ``None``."""
        return None if self._levels is None else self._levels.copy()

    @property
    def is_numpy(self) -> bool:
        """True if the prediction hands back numpy arrays, False for torch tensors."""
        return self._numpy

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a scalar Prediction")
        return self.shape[0]

    def __repr__(self) -> str:
        extra = ""
        if self.kind == "samples":
            extra = f", n_samples={self.n_samples}"
        elif self.kind == "quantiles":
            extra = f", levels={self._levels.tolist()}"
        backend = "numpy" if self._numpy else "torch"
        return f"Prediction(kind={self.kind!r}, shape={self.shape}{extra}, backend={backend})"

    # ------------------------------------------------------------------ raw tensors
    def tensors(self) -> dict[str, torch.Tensor | np.ndarray | None]:
        """The stored arrays as torch tensors (no conversion cost for numpy input)."""
        return {
            "mean": self._mean,
            "std": self._std,
            "samples": self._samples,
            "quantiles": self._quantiles,
            "levels": self.levels,
        }

    def _sorted_samples(self) -> torch.Tensor:
        """The members sorted along axis 0, computed once per prediction (metrics share it)."""
        if "sorted" not in self._cache:
            self._cache["sorted"] = sort_members(self._samples)
        return self._cache["sorted"]

    def _memoized(self) -> Prediction:
        """Keep derived tensors (quantiles per level, rank counts of a target) on this object.

        :func:`pdesurrogates.uq.evaluate` turns this on for each chunk it scores, so the
        metrics it calls share one computation of what they have in common; a prediction a
        user holds does not grow with every quantile asked of it.
        """
        self._memoizing = True
        return self

    def _memo(self, key: Any, compute):
        """``compute()``, kept under ``key`` while memoizing (see :meth:`_memoized`)."""
        if not self._memoizing:
            return compute()
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def _out(self, t: torch.Tensor | None):
        return None if t is None else to_output(t, self._numpy)

    # ------------------------------------------------------------------ moments
    @property
    def mean(self):
        """Predictive mean, shape ``(...)``."""
        return self._out(self._mean)

    def _std_tensor(self) -> torch.Tensor | None:
        if self._std is not None:
            return self._std
        if self._samples is not None:
            if "std" not in self._cache:
                self._cache["std"] = member_std(self._samples)
            return self._cache["std"]
        if self._quantiles is not None:
            if len(self._levels) < 2:
                return None
            z = ndtri(torch.from_numpy(self._levels)).to(self._quantiles)
            zc = (z - z.mean()).reshape((-1,) + (1,) * self._mean.ndim)
            qc = self._quantiles - self._quantiles.mean(0)
            return ((zc * qc).sum(0) / (zc * zc).sum(0)).clamp_min(0)
        return None

    @property
    def std(self):
        """Predictive standard deviation, shape ``(...)``; ``None`` for point predictions.

        Derived from samples with ``ddof=1``, or from quantiles by a least-squares Gaussian fit.
        """
        return self._out(self._std_tensor())

    @property
    def variance(self):
        """Predictive variance ``std**2``; ``None`` for point predictions."""
        s = self._std_tensor()
        return None if s is None else self._out(s * s)

    @property
    def samples(self):
        """The stored samples, shape ``(S, ...)``, or ``None`` (see :meth:`sample`)."""
        return self._out(self._samples)

    @property
    def quantiles(self):
        """The stored quantiles, shape ``(K, ...)``, or ``None`` (see :meth:`quantile`)."""
        return self._out(self._quantiles)

    # ------------------------------------------------------------------ quantiles
    def _quantile_tensor(self, q: np.ndarray) -> torch.Tensor:
        """Quantiles at the levels ``q``, shape ``(len(q), ...)`` (a new tensor)."""
        return torch.stack(self._quantile_rows(q), 0)

    def _quantile_rows(self, q: np.ndarray) -> list[torch.Tensor]:
        """The quantile at each level of ``q``; a row may be a view of a stored tensor."""
        q = np.asarray(q, dtype=np.float64).ravel()
        kind = self.kind
        if kind == "point":
            raise ValueError(
                "this is a point prediction (mean only): quantiles and intervals need std, "
                "samples or quantiles"
            )
        if kind == "quantiles":
            lv = self._levels
            if np.any(q < lv[0] - 1e-12) or np.any(q > lv[-1] + 1e-12):
                raise ValueError(
                    f"q={q.tolist()} lies outside the stored quantile levels "
                    f"[{lv[0]}, {lv[-1]}]; quantile predictions cannot be extrapolated"
                )
        if not self._memoizing:
            return [self._quantile_row(float(qi)) for qi in q]
        return [
            self._memo(("quantile", float(qi)), lambda qi=float(qi): self._quantile_row(qi))
            for qi in q
        ]

    def _quantile_row(self, qi: float) -> torch.Tensor:
        kind = self.kind
        if kind == "gaussian":
            z = ndtri(torch.tensor([qi], dtype=torch.float64)).to(self._mean)[0]
            return self._mean + self._std * z
        if kind == "samples":
            return sorted_quantile_row(self._sorted_samples(), qi)
        lv, qt = self._levels, self._quantiles
        j = int(np.searchsorted(lv, qi, side="left"))
        if j < len(lv) and abs(lv[j] - qi) <= 1e-12:
            return qt[j]
        j = min(max(j, 1), len(lv) - 1)
        w = (qi - lv[j - 1]) / (lv[j] - lv[j - 1])
        return qt[j - 1] + w * (qt[j] - qt[j - 1])

    def quantile(self, q):
        """Predictive quantile(s) at level(s) ``q`` in (0, 1).

        Returns shape ``(...)`` for a scalar ``q`` and ``(len(q), ...)`` for a sequence.
        """
        qs = check_levels(q, "q")
        out = self._quantile_tensor(qs)
        if np.ndim(q) == 0:
            out = out[0]
        return self._out(out)

    def interval(self, level: float = 0.9):
        """Central predictive interval ``(lower, upper)`` of probability ``level`` in (0, 1).

        ``lower`` is the ``(1 - level)/2`` quantile and ``upper`` the ``(1 + level)/2`` one,
        each of shape ``(...)``.
        """
        lv = check_levels(level, "level")
        if lv.size != 1:
            raise ValueError("level must be a single number in (0, 1)")
        a = float(lv[0])
        q = np.array([(1 - a) / 2, (1 + a) / 2])
        # rows may be views of stored tensors: only evaluate's chunks get them uncopied
        qs = self._quantile_rows(q) if self._memoizing else self._quantile_tensor(q)
        return self._out(qs[0]), self._out(qs[1])

    def sample(self, n: int, *, generator: torch.Generator | None = None):
        """Draw ``n`` samples, shape ``(n, ...)``, from a Gaussian prediction.

        For sample predictions, returns the stored members when ``n`` equals their number.
        """
        if not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        if self.kind == "samples" and n == self.n_samples:
            return self.samples
        if self.kind != "gaussian":
            raise ValueError(f"sample() draws from Gaussian predictions; this one is {self.kind}")
        eps = torch.randn(
            (int(n), *self._mean.shape),
            generator=generator,
            dtype=self._mean.dtype,
            device=self._mean.device,
        )
        return self._out(self._mean + self._std * eps)

    # ------------------------------------------------------------------ utilities
    def __getitem__(self, index) -> Prediction:
        """Index the batch (leading) axes of the predicted quantity, e.g. ``p[10:20]``."""
        if not isinstance(index, tuple):
            index = (index,)
        index = tuple(torch.as_tensor(i) if isinstance(i, np.ndarray) else i for i in index)
        lead = (slice(None), *index)
        return Prediction(
            self._mean[index],
            std=None if self._std is None else self._std[index],
            samples=None if self._samples is None else self._samples[lead],
            quantiles=None if self._quantiles is None else self._quantiles[lead],
            levels=self._levels,
            validate=False,
        )._as(self._numpy)

    def _as(self, numpy: bool) -> Prediction:
        self._numpy = numpy
        return self

    def numpy(self) -> Prediction:
        """The same prediction handing back numpy arrays (detached, on the CPU)."""
        conv = {
            k: (None if v is None else v.detach().cpu())
            for k, v in (
                ("mean", self._mean),
                ("std", self._std),
                ("samples", self._samples),
                ("quantiles", self._quantiles),
            )
        }
        return Prediction(
            conv["mean"],
            std=conv["std"],
            samples=conv["samples"],
            quantiles=conv["quantiles"],
            levels=self._levels,
            validate=False,
        )._as(True)

    def torch(self) -> Prediction:
        """The same prediction handing back torch tensors."""
        p = Prediction(
            self._mean,
            std=self._std,
            samples=self._samples,
            quantiles=self._quantiles,
            levels=self._levels,
            validate=False,
        )
        return p._as(False)

    def to(self, *args, **kwargs) -> Prediction:
        """Move/cast every stored tensor (``torch.Tensor.to`` arguments); returns torch."""

        def mv(t):
            return None if t is None else t.to(*args, **kwargs)

        return Prediction(
            mv(self._mean),
            std=mv(self._std),
            samples=mv(self._samples),
            quantiles=mv(self._quantiles),
            levels=self._levels,
            validate=False,
        )._as(False)
