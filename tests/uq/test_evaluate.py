"""uq.evaluate: the fused evaluator agrees with the standalone metrics; reports round-trip."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import scoringrules as sr
import torch
import uncertainty_toolbox as uct
from scipy import stats

from pdesurrogates.uq import Prediction, UQReport, compare, evaluate, metrics

LEVELS = (0.5, 0.8, 0.9, 0.95)


def _data(seed=0, n=12, shape=(6, 5), m=7):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(n, *shape))
    noise = rng.normal(size=(m, n, *shape)) * 0.8
    s = y[None] + noise + 0.3 * rng.normal(size=(1, n, *shape))
    return s, y


def _check_against_metrics(p, y, rep):
    assert rep.scalars["rmse"] == pytest.approx(metrics.rmse(p, y), rel=1e-12)
    assert rep.scalars["mae"] == pytest.approx(metrics.mae(p, y), rel=1e-12)
    np.testing.assert_allclose(rep.per_sample["rel_l2"], metrics.rel_l2(p, y, reduction="none"))
    assert rep.scalars["crps"] == pytest.approx(metrics.crps(p, y), rel=1e-10)
    np.testing.assert_allclose(
        rep.per_sample["crps"], metrics.crps(p, y, reduction="sample"), rtol=1e-10
    )
    np.testing.assert_allclose(rep.by_level["coverage"], metrics.coverage(p, y, LEVELS), atol=1e-14)
    np.testing.assert_allclose(
        rep.by_level["field_coverage"], metrics.coverage(p, y, LEVELS, kind="field"), atol=1e-14
    )
    np.testing.assert_allclose(
        rep.per_sample["coverage"], metrics.coverage(p, y, LEVELS, reduction="sample").T, atol=1e-14
    )
    _e, o = metrics.calibration_curve(p, y)
    np.testing.assert_allclose(rep.calibration_observed, o, atol=1e-14)
    assert rep.scalars["miscalibration_area"] == pytest.approx(
        metrics.miscalibration_area(p, y), abs=1e-12
    )
    assert rep.scalars["rmsce"] == pytest.approx(metrics.rmsce(p, y), abs=1e-12)
    assert rep.scalars["mace"] == pytest.approx(metrics.mace(p, y), abs=1e-12)
    np.testing.assert_allclose(
        rep.per_sample["miscalibration_area"],
        metrics.miscalibration_area(p, y, reduction="sample"),
        atol=1e-12,
    )
    assert rep.scalars["sharpness"] == pytest.approx(metrics.sharpness(p), rel=1e-10)
    assert rep.scalars["spread_skill_ratio"] == pytest.approx(
        metrics.spread_skill_ratio(p, y), rel=1e-10
    )
    for j, a in enumerate(LEVELS):
        lo, hi = p.interval(a)
        assert rep.by_level["interval_score"][j] == pytest.approx(
            metrics.interval_score(lo, hi, y, level=a), rel=1e-10
        )
        assert rep.by_level["width"][j] == pytest.approx(np.mean(hi - lo), rel=1e-10)


@pytest.mark.parametrize("chunk", [1 << 22, 100])
def test_evaluate_ensemble_matches_metrics_and_scoringrules(chunk):
    s, y = _data()
    p = Prediction(None, samples=s)
    rep = evaluate(p, y, chunk_elements=chunk, energy=True)
    assert rep.kind == "samples" and rep.n_members == 7 and rep.n_fields == 12
    _check_against_metrics(p, y, rep)
    ref = sr.crps_ensemble(y, np.moveaxis(s, 0, -1), estimator="fair").mean()
    assert abs(rep.scalars["crps"] - ref) < 1e-10
    es = sr.es_ensemble(
        y.reshape(12, -1), np.moveaxis(s.reshape(7, 12, -1), 0, 1), estimator="fair"
    )
    np.testing.assert_allclose(rep.per_sample["energy_score"], es, atol=1e-10)
    # rank histogram: M + 1 bins, counts sum to the number of points
    assert rep.pit_counts.shape == (8,) and rep.pit_counts.sum() == y.size


def test_evaluate_gaussian_matches_toolbox():
    rng = np.random.default_rng(3)
    y = rng.normal(size=(10, 8, 8))
    mu = y + 0.5 * rng.normal(size=y.shape)
    sd = np.full(y.shape, 0.45)
    p = Prediction(mu, std=sd)
    rep = evaluate(p, y, chunk_elements=200)
    _check_against_metrics(p, y, rep)
    args = (mu.ravel(), sd.ravel(), y.ravel())
    assert abs(rep.scalars["nll"] - uct.metrics_scoring_rule.nll_gaussian(*args)) < 1e-10
    assert abs(rep.scalars["crps"] - uct.metrics_scoring_rule.crps_gaussian(*args)) < 1e-10
    assert abs(rep.scalars["miscalibration_area"] - uct.miscalibration_area(*args)) < 1e-10
    assert abs(rep.scalars["rmsce"] - uct.root_mean_squared_calibration_error(*args)) < 1e-10
    assert abs(rep.scalars["mace"] - uct.mean_absolute_calibration_error(*args)) < 1e-10
    assert abs(rep.scalars["sharpness"] - uct.sharpness(sd.ravel())) < 1e-12
    np.testing.assert_allclose(
        rep.pit_counts, np.histogram(stats.norm.cdf(y, mu, sd), bins=20, range=(0, 1))[0]
    )


def test_evaluate_quantiles_and_point():
    rng = np.random.default_rng(4)
    y = rng.normal(size=(5, 16))
    mu = y + 0.3 * rng.normal(size=y.shape)
    levels = np.array([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975, 0.99])
    q = stats.norm.ppf(levels[:, None, None], mu, 0.3)
    p = Prediction(mu, quantiles=q, levels=levels)
    rep = evaluate(p, y)
    _check_against_metrics(p, y, rep)
    narrow = Prediction(mu, quantiles=q[3:-3], levels=levels[3:-3])
    with pytest.raises(ValueError, match=r"levels=\(0\.5, 0\.8\)"):
        evaluate(narrow, y, levels=LEVELS)
    # by default a prediction holding only the 10-90 % quantiles is scored where it can be
    assert evaluate(narrow, y).levels.tolist() == pytest.approx([0.5, 0.8])
    pt = evaluate(mu, y)
    assert pt.kind == "point" and "crps" not in pt.scalars
    assert pt.scalars["rel_l2"] == pytest.approx(metrics.rel_l2(mu, y))


def test_evaluate_rel_h1_with_grid():
    x = np.linspace(0, 1, 33)
    xx, yy = np.meshgrid(x, x, indexing="ij")
    y = np.stack([np.sin(np.pi * xx) * np.sin(np.pi * yy) * (k + 1) for k in range(3)])
    pred = y + 0.01 * np.cos(np.pi * xx)
    rep = evaluate(pred, y, spacing=1 / 32)
    np.testing.assert_allclose(
        rep.per_sample["rel_h1"], metrics.rel_h1(pred, y, spacing=1 / 32, reduction="none")
    )


def test_report_serialisation_roundtrip(tmp_path):
    s, y = _data(n=4)
    rep = evaluate(
        Prediction(None, samples=torch.as_tensor(s)), torch.as_tensor(y), meta={"name": "toy"}
    )
    path = tmp_path / "r.json"
    text = rep.to_json(path)
    assert json.loads(path.read_text()) == json.loads(text)
    back = UQReport.from_json(path)
    assert back.scalars == pytest.approx(rep.scalars)
    np.testing.assert_allclose(back.by_level["coverage"], rep.by_level["coverage"])
    ds = rep.to_xarray()
    assert float(ds["crps"]) == pytest.approx(rep.scalars["crps"])
    assert ds["coverage_per_sample"].dims == ("sample", "level")
    assert ds.sizes["prob"] == 100
    text = rep.summary()
    assert "toy" in text and "crps" in text and "0.9" in text
    table = compare({"a": rep, "b": back})
    assert "coverage@0.9" in table and table.count("\n") > 5


def test_evaluate_bad_input():
    s, y = _data(n=3)
    p = Prediction(None, samples=s)
    with pytest.raises(ValueError, match="y"):
        evaluate(p, y[:2])
    with pytest.raises(ValueError, match="levels"):
        evaluate(p, y, levels=(0.5, 1.0))
    with pytest.raises(ValueError, match="y"):
        evaluate(p, np.where(y > 0, np.nan, y))
    with pytest.raises(ValueError, match="n_bins"):
        evaluate(p, y, n_bins=1)


def test_evaluate_speed_smoke():
    # a smaller version of the benchmark: 200 fields of 32^2, 10 members, float32
    g = torch.Generator().manual_seed(0)
    c = torch.randn(200, 32, 32, generator=g)
    y = c + torch.randn(200, 32, 32, generator=g)  # truth and members: exchangeable draws
    s = c + torch.randn(10, 200, 32, 32, generator=g)
    p = Prediction(None, samples=s)
    t0 = time.perf_counter()
    rep = evaluate(p, y)
    assert time.perf_counter() - t0 < 2.0
    assert abs(rep.scalars["spread_skill_ratio"] - 1.0) < 0.05


def test_degenerate_members_equal_to_truth_count_as_covered():
    # Dirichlet boundary points: every member equals the truth exactly (ties)
    rng = np.random.default_rng(2)
    y = rng.normal(size=(4, 10))
    s = y[None] + rng.normal(size=(5, 4, 10))
    y[:, 0] = 0.0
    s[:, :, 0] = 0.0
    p = Prediction(None, samples=s)
    hits = metrics.coverage(p, y, [0.1, 0.9], reduction="none")
    assert np.all(hits[:, :, 0] == 1.0)
    u = metrics.pit(p, y)
    np.testing.assert_allclose(u[:, 0], 0.5)
    rep = evaluate(p, y)
    # d = 0 at the tied points: they count inside the interval at every level p > 0
    cal = rep.calibration_observed_per_sample
    assert np.all(cal[:, 1] >= 0.1 - 1e-12)
    np.testing.assert_allclose(rep.by_level["coverage"], metrics.coverage(p, y, LEVELS))
    # tied on one member only (y equal to the smallest member) behaves like a boundary case
    s2 = rng.normal(size=(5, 1, 3))
    y2 = s2.min(0)
    assert np.isfinite(evaluate(Prediction(None, samples=s2), y2).scalars["miscalibration_area"])


@pytest.mark.parametrize("form", ["samples", "gaussian", "quantiles", "point"])
def test_report_states_the_scored_predictive_form(form, tmp_path):
    rng = np.random.default_rng(3)
    y = rng.normal(size=(4, 6, 5))
    m = y + 0.2 * rng.normal(size=y.shape)
    lv = np.linspace(0.01, 0.99, 21)
    pred = {
        "samples": lambda: Prediction(None, samples=m + 0.2 * rng.normal(size=(5, *y.shape))),
        "gaussian": lambda: Prediction(m, std=np.full(y.shape, 0.2)),
        "quantiles": lambda: Prediction(
            m, quantiles=m + 0.2 * stats.norm.ppf(lv)[:, None, None, None], levels=lv
        ),
        "point": lambda: m,
    }[form]()
    rep = evaluate(pred, y, levels=(0.5, 0.9))
    assert rep.kind == rep.predictive_form == form
    doc = json.loads(rep.to_json(tmp_path / "r.json"))
    assert doc["predictive_form"] == form and form in doc["predictive_form_description"]
    assert UQReport.from_json(tmp_path / "r.json").predictive_form == form
    assert rep.to_xarray().attrs["predictive_form"] == form
    assert f"predictive form scored: {form}" in rep.summary()
    assert f"**Predictive form scored:** {form}" in rep.to_markdown()
    if form == "samples":
        assert "5 members" in rep.describe_form()


# --- the channel convention: (N, X, Y) and (N, 1, X, Y) are the same fields ---------------


def _scalars_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=1e-12, abs=1e-15), k


@pytest.mark.parametrize("kind", ["point", "gaussian", "samples"])
def test_channel_axis_of_one_may_be_left_out(kind):
    rng = np.random.default_rng(3)
    y = rng.normal(size=(9, 8, 7)) + 2.0
    mean = 1.5 * y  # every field off by exactly half of itself: rel L2 = rel H1 = 0.5
    if kind == "point":
        flat, chan = mean, mean[:, None]
    elif kind == "gaussian":
        sd = np.full(y.shape, 0.3)
        flat, chan = Prediction(mean, std=sd), Prediction(mean[:, None], std=sd[:, None])
    else:
        d = 0.2 * rng.normal(size=(4, *y.shape))
        s = mean[None] + d - d.mean(0)  # members whose mean is exactly 1.5 y
        flat, chan = Prediction(None, samples=s), Prediction(None, samples=s[:, :, None])
    ref = evaluate(flat, y, spacing=0.1)
    assert ref.scalars["rel_l2"] == pytest.approx(0.5, rel=1e-12)
    assert ref.scalars["rel_h1"] == pytest.approx(0.5, rel=1e-12)
    for pred, truth in ((chan, y), (flat, y[:, None]), (chan, y[:, None])):
        rep = evaluate(pred, truth, spacing=0.1)
        _scalars_equal(rep.scalars, ref.scalars)
    # the model's (N, 1, X, Y) shape is kept in the report
    assert evaluate(chan, y).field_shape == (1, 8, 7)
    t_rep = evaluate(torch.as_tensor(mean[:, None]), torch.as_tensor(y), spacing=0.1)
    assert t_rep.scalars["rel_h1"] == pytest.approx(0.5, rel=1e-12)


def test_other_shape_mismatches_are_still_refused():
    y = np.ones((4, 6, 6))
    with pytest.raises(ValueError, match=r"\(N, C, \*spatial\)"):
        evaluate(np.ones((4, 2, 6, 6)), y)
    with pytest.raises(ValueError, match="y has shape"):
        evaluate(np.ones((4, 6, 1, 6)), y)


@pytest.mark.parametrize("kind", ["point", "gaussian", "samples"])
def test_one_value_fields_are_scored_value_by_value(kind):
    """Fields of one value (a multi-fidelity model's outputs): the per-field relative L2
    is |mu_i - y_i| / |y_i| whatever the chunking, and the pooled ||mu - y|| / ||y|| is
    its own scalar."""
    rng = np.random.default_rng(11)
    y = rng.uniform(0.5, 2.0, size=40) * rng.choice([-1.0, 1.0], size=40)
    mean = y + 0.1 * rng.normal(size=40)
    if kind == "point":
        pred = mean
    elif kind == "gaussian":
        pred = Prediction(mean, std=np.full(40, 0.1))
    else:
        d = 0.1 * rng.normal(size=(5, 40))
        pred = Prediction(None, samples=mean + d - d.mean(0))  # members with mean `mean`
    per = np.abs(mean - y) / np.abs(y)
    pooled = np.linalg.norm(mean - y) / np.linalg.norm(y)
    for truth, chunk in ((y, 1 << 20), (y, 7), (y[:, None], 7)):  # 7: several chunks
        rep = evaluate(pred, truth, chunk_elements=chunk)
        np.testing.assert_allclose(rep.per_sample["rel_l2"], per, rtol=1e-12)
        assert rep.scalars["rel_l2"] == pytest.approx(per.mean(), rel=1e-12)
        assert rep.scalars["rel_l2_p90"] == pytest.approx(np.quantile(per, 0.9), rel=1e-12)
        assert rep.scalars["rel_l2_pooled"] == pytest.approx(pooled, rel=1e-12)
        assert rep.scalars["rel_l2_pooled"] != pytest.approx(rep.scalars["rel_l2"], rel=1e-3)
    # a true value of 0: no relative error of that value, so no per-value statistics
    y0 = y.copy()
    y0[3] = 0.0
    rep = evaluate(pred, y0)
    assert "rel_l2" not in rep.per_sample
    assert "rel_l2" not in rep.scalars and "rel_l2_p90" not in rep.scalars
    pooled0 = np.linalg.norm(mean - y0) / np.linalg.norm(y0)
    assert rep.scalars["rel_l2_pooled"] == pytest.approx(pooled0, rel=1e-12)
    # fields of several values have no pooled scalar
    assert "rel_l2_pooled" not in evaluate(mean.reshape(20, 2), y.reshape(20, 2)).scalars
