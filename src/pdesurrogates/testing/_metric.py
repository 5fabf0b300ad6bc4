"""Contract tests every metric of :mod:`pdesurrogates.uq.metrics` must pass, as a pytest mix-in.

Subclass :class:`MetricContract` in a test module (class name starting with ``Test``),
say which predictive form the metric scores and how to call it; pytest then runs every
``test_*`` method below::

    from pdesurrogates.testing import MetricContract
    from pdesurrogates.uq import metrics

    class TestCRPSGaussian(MetricContract):
        form = "gaussian"

        def metric(self, pred, y, **kw):
            return metrics.crps_gaussian(pred.mean, pred.std, y, **kw)

The checks: a perfect prediction scores the metric's optimum; permuting the samples
(fields) permutes per-sample values and keeps the mean; permuting grid points and
ensemble members changes nothing where that should hold; numpy and torch give the same
value, float32 agrees with float64; a field with a channel axis ``(N, 1, ...)`` scores
like ``(N, ...)``; a truth of the wrong shape raises a ``ValueError`` naming the shapes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pdesurrogates.uq import Prediction

__all__ = ["MetricContract"]

_LEVELS = np.array([0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98])


class MetricContract:
    """pytest mix-in: the behaviour every pdesurrogates metric guarantees.

    Notes
    -----
    Hook to override: ``metric(pred, y, **kw)`` calls the metric under test on a
    :class:`~pdesurrogates.uq.Prediction` of the class's ``form`` and the truth ``y``,
    passing ``kw`` (``reduction=``, and ``spatial_dims=`` for grid-aware metrics) through.

    Attributes (defaults in brackets): ``form`` ["point"], one of ``"point"``,
    ``"gaussian"``, ``"samples"``, ``"quantiles"``; ``optimum`` [0.0], the value of a
    perfect prediction (``None`` skips the check); ``perfect`` ["exact"]: ``"exact"``
    (the truth with zero spread: members equal to it, std 0) or ``"calibrated"`` (the
    truth drawn from the prediction, for calibration metrics; checked within
    ``optimum_tol``); ``reductions`` [("none", "sample", "mean")]; ``grid_aware`` [False]:
    pass ``spatial_dims``; ``point_invariant`` [True]: permuting grid points leaves the
    value unchanged; ``takes_truth`` [True]; ``tol32`` [1e-4]: float32 vs float64 tolerance.
    """

    form: str = "point"
    optimum: float | None = 0.0
    optimum_tol: float = 1e-12
    perfect: str = "exact"
    reductions: tuple[str, ...] = ("none", "sample", "mean")
    grid_aware: bool = False
    point_invariant: bool = True
    takes_truth: bool = True
    tol32: float = 1e-4
    grid: tuple[int, ...] = (9, 7)
    n_fields: int = 5
    n_members: int = 8

    # hooks ---------------------------------------------------------------------------
    def metric(self, pred: Prediction, y: Any, **kw: Any) -> Any:  # pragma: no cover
        raise NotImplementedError("define metric(pred, y, **kw) in the test class")

    # data ----------------------------------------------------------------------------
    def _rng(self, seed: int = 0) -> np.random.Generator:
        return np.random.default_rng(seed)

    def _truth(self, shape=None, seed: int = 0) -> np.ndarray:
        shape = (self.n_fields, *self.grid) if shape is None else shape
        x = self._rng(seed).normal(size=shape)
        return 1.5 + x  # no identically zero field

    def _prediction(self, y: np.ndarray, seed: int = 1) -> Prediction:
        """A prediction of the class's form around ``y`` (not perfect)."""
        rng = self._rng(seed)
        mean = y + 0.3 * rng.normal(size=y.shape)
        sd = rng.uniform(0.2, 0.6, size=y.shape)
        return _make(self.form, mean, sd, rng, self.n_members)

    def _perfect(self, y: np.ndarray) -> tuple[Prediction, np.ndarray]:
        if self.perfect == "calibrated":
            rng = self._rng(7)
            big = (40, 30, 30)
            mean = rng.normal(size=big)
            sd = rng.uniform(0.5, 1.5, size=big)
            truth = mean + sd * rng.normal(size=big)
            return _make(self.form, mean, sd, rng, 400), truth
        zero = np.zeros_like(y)
        if self.form == "samples":
            return Prediction(None, samples=np.repeat(y[None], self.n_members, 0)), y
        if self.form == "quantiles":
            q = np.repeat(y[None], len(_LEVELS), 0)
            return Prediction(y, quantiles=q, levels=_LEVELS), y
        if self.form == "gaussian":
            return Prediction(y, std=zero), y
        return Prediction(y), y

    def _call(self, pred, y, **kw):
        if self.grid_aware:
            kw.setdefault("spatial_dims", len(self.grid))
        return self.metric(pred, y, **kw)

    # the contract --------------------------------------------------------------------
    def test_perfect_prediction_scores_the_optimum(self):
        if self.optimum is None:
            return
        pred, y = self._perfect(self._truth())
        got = np.asarray(self._call(pred, y, reduction="mean"), dtype=np.float64)
        np.testing.assert_allclose(got, self.optimum, atol=self.optimum_tol, rtol=0)

    def test_permuting_samples_permutes_per_sample_values(self):
        y = self._truth()
        pred = self._prediction(y)
        perm = self._rng(3).permutation(y.shape[0])
        for red in ("sample", "mean"):
            if red not in self.reductions:
                continue
            a = np.asarray(self._call(pred, y, reduction=red))
            b = np.asarray(self._call(pred[perm], y[perm], reduction=red))
            if red == "sample" and a.ndim >= 1:
                # the sample axis of per-sample values is the first (or, after a level
                # axis, the last) axis of length N
                a = a[perm] if a.shape[0] == y.shape[0] else a[..., perm]
            np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)

    def test_permuting_points_and_members_changes_nothing(self):
        y = self._truth()
        pred = self._prediction(y)
        red = "mean" if "mean" in self.reductions else self.reductions[-1]
        ref = np.asarray(self._call(pred, y, reduction=red))
        if self.form == "samples":
            t = pred.tensors()
            m_perm = torch.as_tensor(self._rng(4).permutation(t["samples"].shape[0]))
            shuffled = Prediction(None, samples=t["samples"][m_perm].numpy())
            got = np.asarray(self._call(shuffled, y, reduction=red))
            np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
        if not self.point_invariant:
            return
        n, p = y.shape[0], int(np.prod(self.grid))
        perm = self._rng(5).permutation(p)
        flat_y = y.reshape(n, p)[:, perm].reshape(y.shape)
        flat_pred = _permute_points(pred, perm)
        got = np.asarray(self._call(flat_pred, flat_y, reduction=red))
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)

    def test_numpy_torch_float32_float64_agree(self):
        y = self._truth()
        pred = self._prediction(y)
        for red in self.reductions:
            ref = self._call(pred, y, reduction=red)
            assert isinstance(ref, np.ndarray | np.floating | float), type(ref)
            ref = np.asarray(ref, dtype=np.float64)
            tt = self._call(pred.torch(), torch.as_tensor(y), reduction=red)
            assert isinstance(tt, torch.Tensor), f"torch input gave {type(tt).__name__}"
            np.testing.assert_allclose(tt.detach().numpy(), ref, rtol=0, atol=0)
            p32 = pred.to(torch.float32)
            v32 = self._call(p32, torch.as_tensor(y, dtype=torch.float32), reduction=red)
            np.testing.assert_allclose(
                v32.detach().double().numpy(), ref, rtol=self.tol32, atol=self.tol32
            )

    def test_channel_axis_scores_like_no_channel_axis(self):
        y = self._truth()
        pred = self._prediction(y)
        yc = y[:, None]
        predc = _insert_axis(pred)
        for red in ("sample", "mean"):
            if red not in self.reductions:
                continue
            a = np.asarray(self._call(pred, y, reduction=red))
            b = np.asarray(self._call(predc, yc, reduction=red))
            np.testing.assert_allclose(b.reshape(a.shape), a, rtol=1e-12, atol=1e-14)

    def test_mismatched_shapes_raise_a_clear_error(self):
        if not self.takes_truth:
            return
        import pytest

        y = self._truth()
        pred = self._prediction(y)
        bad = self._truth((y.shape[0], *self.grid[:-1], self.grid[-1] + 1))
        with pytest.raises(ValueError, match="shape"):
            self._call(pred, bad, reduction=self.reductions[-1])


def _make(form: str, mean, sd, rng, n_members: int) -> Prediction:
    if form == "point":
        return Prediction(mean)
    if form == "gaussian":
        return Prediction(mean, std=sd)
    if form == "samples":
        s = mean[None] + sd[None] * rng.normal(size=(n_members, *mean.shape))
        return Prediction(None, samples=s)
    from scipy import stats

    q = stats.norm.ppf(_LEVELS).reshape((-1,) + (1,) * mean.ndim) * sd[None] + mean[None]
    return Prediction(mean, quantiles=q, levels=_LEVELS)


def _map_arrays(pred: Prediction, fn_mean, fn_lead) -> Prediction:
    t = {k: v for k, v in pred.numpy().tensors().items()}
    arr = {k: (None if t[k] is None else t[k].numpy()) for k in ("mean", "std", "samples")}
    q = None if t["quantiles"] is None else fn_lead(t["quantiles"].numpy())
    if arr["samples"] is not None:
        return Prediction(None, samples=fn_lead(arr["samples"]))
    std = None if arr["std"] is None else fn_mean(arr["std"])
    return Prediction(fn_mean(arr["mean"]), std=std, quantiles=q, levels=t["levels"])


def _permute_points(pred: Prediction, perm: np.ndarray) -> Prediction:
    def fm(a):
        return a.reshape(a.shape[0], -1)[:, perm].reshape(a.shape)

    def fl(a):
        return a.reshape(a.shape[0], a.shape[1], -1)[:, :, perm].reshape(a.shape)

    return _map_arrays(pred, fm, fl)


def _insert_axis(pred: Prediction) -> Prediction:
    return _map_arrays(pred, lambda a: a[:, None], lambda a: a[:, :, None])
