"""Every metric of uq.metrics passes the MetricContract."""

from __future__ import annotations

import math

from pdesurrogates.testing import MetricContract
from pdesurrogates.uq import metrics

_CAL = {"perfect": "calibrated", "optimum_tol": 0.02, "tol32": 0.02}


class TestRelL2(MetricContract):
    grid_aware = True

    def metric(self, pred, y, **kw):
        return metrics.rel_l2(pred, y, **kw)


class TestRelH1(MetricContract):
    grid_aware = True
    point_invariant = False  # derivatives see the neighbours

    def metric(self, pred, y, **kw):
        return metrics.rel_h1(pred, y, **kw)


class TestRMSE(MetricContract):
    def metric(self, pred, y, **kw):
        return metrics.rmse(pred, y, **kw)


class TestMAE(MetricContract):
    def metric(self, pred, y, **kw):
        return metrics.mae(pred, y, **kw)


class TestNRMSE(MetricContract):
    def metric(self, pred, y, **kw):
        return metrics.nrmse(pred, y, **kw)


class TestNLLGaussian(MetricContract):
    form = "gaussian"
    optimum = None  # unbounded below as std -> 0; see the unit-std check below

    def metric(self, pred, y, **kw):
        return metrics.nll_gaussian(pred.mean, pred.std, y, **kw)

    def test_exact_mean_with_unit_std(self):
        y = self._truth()
        got = metrics.nll_gaussian(y, 1.0 + 0 * y, y)
        assert abs(float(got) - 0.5 * math.log(2 * math.pi)) < 1e-12


class TestCRPSGaussian(MetricContract):
    form = "gaussian"

    def metric(self, pred, y, **kw):
        return metrics.crps_gaussian(pred.mean, pred.std, y, **kw)


class TestCRPSEnsemble(MetricContract):
    form = "samples"

    def metric(self, pred, y, **kw):
        return metrics.crps_ensemble(pred.samples, y, **kw)


class TestCRPSSamples(MetricContract):
    form = "samples"

    def metric(self, pred, y, **kw):
        return metrics.crps(pred, y, **kw)


class TestCRPSGaussianForm(TestCRPSSamples):
    form = "gaussian"


class TestCRPSQuantiles(TestCRPSSamples):
    form = "quantiles"


class TestEnergyScore(MetricContract):
    form = "samples"
    point_invariant = True

    def metric(self, pred, y, **kw):
        return metrics.energy_score(pred.samples, y, **kw)


class TestIntervalScore(MetricContract):
    form = "gaussian"

    def metric(self, pred, y, **kw):
        lo, hi = pred.interval(0.8)
        return metrics.interval_score(lo, hi, y, level=0.8, **kw)


class TestCoverage(MetricContract):
    form = "samples"
    optimum = 1.0  # degenerate members equal to the truth cover every point
    tol32 = 0.02

    def metric(self, pred, y, **kw):
        return metrics.coverage(pred, y, (0.5, 0.9), **kw)


class TestFieldCoverage(TestCoverage):
    form = "gaussian"

    def metric(self, pred, y, **kw):
        return metrics.coverage(pred, y, (0.5, 0.9), kind="field", **kw)


class TestCalibrationCurve(MetricContract):
    form = "gaussian"
    reductions = ("sample", "mean")
    vars().update(_CAL)
    optimum_tol = 0.03

    def metric(self, pred, y, **kw):
        expected, observed = metrics.calibration_curve(pred, y, n_bins=11, **kw)
        return observed - expected


class TestMiscalibrationArea(MetricContract):
    form = "samples"
    reductions = ("sample", "mean")
    vars().update(_CAL)

    def metric(self, pred, y, **kw):
        return metrics.miscalibration_area(pred, y, **kw)


class TestRMSCE(TestMiscalibrationArea):
    form = "gaussian"

    def metric(self, pred, y, **kw):
        return metrics.rmsce(pred, y, **kw)


class TestMACE(TestMiscalibrationArea):
    form = "quantiles"
    optimum_tol = 0.03  # 7 stored levels: a coarse piecewise-linear CDF

    def metric(self, pred, y, **kw):
        return metrics.mace(pred, y, **kw)


class TestSharpness(MetricContract):
    form = "gaussian"
    takes_truth = False

    def metric(self, pred, y, **kw):
        return metrics.sharpness(pred, **kw)


class TestPIT(MetricContract):
    form = "gaussian"
    vars().update(_CAL)

    def metric(self, pred, y, **kw):
        return metrics.pit(pred, y, **kw)

    def test_perfect_prediction_scores_the_optimum(self):
        # the KS distance of calibrated PIT values from U(0, 1) is small
        pred, y = self._perfect(self._truth())
        assert float(metrics.pit(pred, y, reduction="mean")) < 0.02


class TestSpreadSkill(MetricContract):
    form = "samples"
    reductions = ("sample", "mean")
    vars().update(_CAL)
    optimum = 1.0
    optimum_tol = 0.03


def _spread_skill(self, pred, y, **kw):
    return metrics.spread_skill_ratio(pred, y, **kw)


TestSpreadSkill.metric = _spread_skill


class TestRolloutRelL2(MetricContract):
    grid = (2, 4, 6, 5)  # (C, T, X, Y): trajectories with two channels and four steps
    point_invariant = False  # the time axis is not a set of points

    def metric(self, pred, y, **kw):
        # the time axis stays third from the end when the contract inserts a channel axis
        return metrics.rollout_rel_l2(pred, y, time_axis=len(y.shape) - 3, **kw)


def test_every_public_metric_has_a_contract_class():
    covered = {
        "rel_l2", "rel_h1", "rmse", "mae", "nrmse", "nll_gaussian", "crps_gaussian",
        "crps_ensemble", "crps", "energy_score", "interval_score", "coverage",
        "calibration_curve", "miscalibration_area", "rmsce", "mace", "sharpness", "pit",
        "spread_skill_ratio", "rollout_rel_l2",
    }  # fmt: skip
    # act on curves / fields
    not_metrics = {"calibration_error", "grid_gradient", "time_to_threshold"}
    assert set(metrics.__all__) == covered | not_metrics
