"""Adaptive multi-fidelity sampling and the UQ study."""

from __future__ import annotations

import numpy as np
import pytest

from pdesurrogates.solvers.reference import forrester
from pdesurrogates.surrogates import (
    CoKrigingGP,
    adaptive_cokriging,
    mf_uq_study,
    plot_uq_study,
)

XT = np.linspace(0, 1, 500)[:, None]


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("criterion", ["variance", pytest.param("ivr", marks=pytest.mark.slow)])
def test_adaptive_loop_spends_budget_and_improves(criterion):
    p = forrester()
    calls = {0: 0, 1: 0}

    def lo(x):
        calls[0] += len(x)
        return p.low(x)

    def hi(x):
        calls[1] += len(x)
        return p.high(x)

    records = []
    res = adaptive_cokriging(
        [lo, hi],
        p.bounds,
        initial=(6, 3),
        costs=(1.0, 4.0),
        budget=6 + 12 + 14,
        model_kwargs={"n_restarts": 1},
        criterion=criterion,
        n_candidates=300,
        seed=1,
        progress=False,
        callback=records.append,
    )
    # cost accounting: what the simulators were asked equals what the result says
    assert res.spent == pytest.approx(calls[0] * 1.0 + calls[1] * 4.0)
    assert res.spent <= 32
    assert len(records) == len(res.history) > 0
    # nested design kept: every high-fidelity point is a low-fidelity point
    for x in res.xs[1]:
        assert np.any(np.all(np.isclose(res.xs[0], x), axis=1))
    # the adaptive design beats the initial one
    init = CoKrigingGP(n_restarts=1).fit(
        res.xs[0][:6], res.ys[0][:6], res.xs[1][:3], res.ys[1][:3], bounds=p.bounds
    )
    e0 = _rel(init.predict(XT).mean, p.high(XT))
    e1 = _rel(res.model.predict(XT).mean, p.high(XT))
    assert e1 < 0.5 * e0
    assert {r["level"] for r in res.history} <= {0, 1}


def test_variance_contributions_sum_to_predictive_variance():
    p = forrester()
    x_lo = np.linspace(0, 1, 8)[:, None]
    x_hi = x_lo[[0, 3, 7]]
    gp = CoKrigingGP(n_restarts=2).fit(x_lo, p.low(x_lo), x_hi, p.high(x_hi))
    c = gp.variance_contributions(XT[:50])
    np.testing.assert_allclose(c.sum(0), gp.predict(XT[:50]).std ** 2, rtol=1e-6, atol=1e-12)
    cov = gp.posterior_covariance(XT[:50])
    np.testing.assert_allclose(np.diag(cov), c.sum(0), rtol=1e-4, atol=1e-8)


def test_adaptive_bad_input():
    p = forrester()
    with pytest.raises(ValueError, match="at least 2 simulators"):
        adaptive_cokriging([p.high], p.bounds, progress=False)
    with pytest.raises(ValueError, match="budget"):
        adaptive_cokriging([p.low, p.high], p.bounds, initial=(6, 3), budget=10, progress=False)
    with pytest.raises(ValueError, match="one value per point"):
        adaptive_cokriging(
            [lambda x: p.low(x)[:1], p.high], p.bounds, initial=(6, 3), progress=False
        )
    with pytest.raises(ValueError, match="criterion"):
        adaptive_cokriging([p.low, p.high], p.bounds, criterion="ei", progress=False)


def test_uq_study_forrester_moments():
    p = forrester()
    x_lo = np.linspace(0, 1, 21)[:, None]
    x_hi = np.array([[0.0], [0.4], [0.6], [1.0]])
    gp = CoKrigingGP().fit(x_lo, p.low(x_lo), x_hi, p.high(x_hi), bounds=p.bounds)
    dists = {
        "uniform": {"x": {"dist": "uniform", "low": 0.0, "high": 1.0}},
        "normal": {"x": {"dist": "normal", "mean": 0.5, "std": 0.1}},
    }

    def truth(x):  # the untruncated normal leaves [0, 1]: evaluate the formula directly
        return p.levels[-1](np.asarray(x))

    study = mf_uq_study(lambda x: gp.predict(x).mean, truth, dists, n_samples=2**14)
    row = {r["distribution"]: r for r in study.summary}
    exact = p.exact_moments()
    # the surrogate against the truth on the same samples
    assert abs(row["uniform"]["mean"] - row["uniform"]["true_mean"]) < 1e-3 * exact["mean"]
    assert abs(row["uniform"]["std_rel_error"]) < 1e-3
    assert row["uniform"]["wasserstein1"] < 1e-3
    # Monte Carlo estimate of the true moments against the exact ones (4.4562/128 = 0.035)
    assert row["uniform"]["true_mean"] == pytest.approx(exact["mean"], abs=0.15)
    assert row["uniform"]["true_std"] == pytest.approx(exact["std"], rel=0.03)
    assert row["normal"]["true_mean"] == pytest.approx(0.080807, abs=0.05)
    # scrambled Sobol' points reach the exact moments to 1e-3
    qmc = mf_uq_study(
        truth, truth, {"uniform": dists["uniform"]}, n_samples=2**16, method="sobol"
    ).summary[0]
    assert qmc["mean"] == pytest.approx(exact["mean"], rel=1e-3)
    assert qmc["std"] == pytest.approx(exact["std"], rel=1e-3)
    fig = plot_uq_study(study)
    assert len(fig.axes) == 2


def test_example_smoke(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "multifidelity_uq.py"
    spec = importlib.util.spec_from_file_location("multifidelity_uq_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.main(["--smoke", "--out", str(tmp_path)])
    assert out["errors"]["cokriging"] < 0.05
    assert out["rho"][0] == pytest.approx(2.0, rel=1e-2)
    normal = {r["distribution"]: r for r in out["uq"]}["N(0.5,0.1)"]
    assert normal["true_mean"] == pytest.approx(0.080807, abs=0.08)
    assert normal["wasserstein1"] < 0.05
    assert (tmp_path / "multifidelity_uq.png").exists()
