"""uq.propagate and uq.sobol_indices: closed forms, scipy oracles, Ishigami, Dask."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy import stats

from pdesurrogates.uq import (
    ishigami,
    ishigami_indices,
    make_distribution,
    propagate,
    sample_inputs,
    sobol_indices,
)

ISHIGAMI_INPUTS = {f"x{i + 1}": stats.uniform(-math.pi, 2 * math.pi) for i in range(3)}


def forrester(x):
    x = np.asarray(x)[:, 0]
    return (6 * x - 2) ** 2 * np.sin(12 * x - 4)


def test_forrester_moments_match_quadrature_within_mc_error():
    # exact mean 0.453211, std 4.456200 for x ~ U(0, 1)
    r = propagate(forrester, {"x": stats.uniform(0, 1)}, 100_000, seed=3, batch_size=7000)
    assert abs(r.mean - 0.453211) < 4 * r.se_mean
    assert abs(r.std - 4.456200) < 4 * r.se_std
    # lhs stratification makes the mean far more accurate than its MC standard error
    rl = propagate(forrester, {"x": stats.uniform(0, 1)}, 20_000, method="lhs", seed=1)
    assert abs(rl.mean - 0.453211) < 1e-3
    rs = propagate(forrester, {"x": stats.uniform(0, 1)}, 2**14, method="sobol", seed=1)
    assert abs(rs.mean - 0.453211) < 1e-3 and abs(rs.std - 4.4562) < 2e-3


def test_streaming_moments_equal_scipy_on_the_same_samples():
    ins = {"a": stats.norm(1.0, 2.0), "b": stats.uniform(-1, 3)}
    r = propagate(lambda x: np.exp(0.3 * x[:, 0]) + x[:, 1] ** 3, ins, 5000, batch_size=333)
    y = r.outputs
    assert y.shape == (5000,)
    assert r.mean == pytest.approx(y.mean(), rel=1e-12)
    assert r.std == pytest.approx(y.std(ddof=1), rel=1e-10)
    assert r.skewness == pytest.approx(stats.skew(y), rel=1e-9)
    assert r.excess_kurtosis == pytest.approx(stats.kurtosis(y), rel=1e-9)  # Fisher: excess
    assert r.se_mean == pytest.approx(y.std(ddof=1) / math.sqrt(5000), rel=1e-10)
    np.testing.assert_allclose(r.quantiles, np.quantile(y, r.quantile_levels))
    # the KDE integrates to ~1 and uses Scott's bandwidth
    assert abs(np.trapezoid(r.kde_density, r.kde_x) - 1) < 1e-3
    kde = stats.gaussian_kde(y)
    assert r.kde_bandwidth == pytest.approx(kde.factor * y.std(ddof=1))
    # the inputs follow the requested marginals
    assert stats.kstest(r.inputs[:, 0], stats.norm(1.0, 2.0).cdf).pvalue > 1e-3
    assert r.inputs[:, 1].min() >= -1 and r.inputs[:, 1].max() <= 2


def test_std_standard_error_is_calibrated_for_gaussian_output():
    # for Gaussian data SE(std) ~ std / sqrt(2 (N - 1))
    r = propagate(lambda x: 3 * x[:, 0], {"x": stats.norm(0, 1)}, 20_000, seed=0)
    assert r.se_std == pytest.approx(3 / math.sqrt(2 * 19_999), rel=0.05)


def test_vector_outputs_torch_module_and_reference_comparison():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    ins = {"a": stats.uniform(0, 1), "b": stats.norm(0, 0.5)}

    def ref(x):
        with torch.no_grad():
            return net(torch.as_tensor(x, dtype=torch.float32)).double().numpy() + 0.01

    r = propagate(net, ins, 4096, seed=2, batch_size=1000, reference=ref)
    assert r.mean.shape == (3,) and r.outputs.shape == (4096, 3)
    cmp = r.reference
    np.testing.assert_allclose(cmp["mean_error"], -0.01, atol=1e-6)
    np.testing.assert_allclose(cmp["wasserstein1"], 0.01, atol=1e-5)
    np.testing.assert_allclose(cmp["rmse_same_samples"], 0.01, atol=1e-5)
    np.testing.assert_allclose(cmp["std_rel_error"], 0.0, atol=1e-5)
    # the reference's own moments, same estimators as scipy on its outputs
    np.testing.assert_allclose(cmp["skewness"], stats.skew(r.reference_outputs), rtol=1e-9)
    np.testing.assert_allclose(
        cmp["excess_kurtosis"], stats.kurtosis(r.reference_outputs), rtol=1e-9
    )
    np.testing.assert_allclose(
        cmp["excess_kurtosis_error"], r.excess_kurtosis - cmp["excess_kurtosis"], atol=1e-12
    )
    doc = json.loads(r.to_json())
    assert doc["moments"]["mean"] == pytest.approx(r.mean.tolist())
    assert "kurtosis" not in doc["moments"] and "se_excess_kurtosis" in doc["moments"]
    assert "outputs" not in doc
    assert "vs reference" in r.summary() and "excess kurtosis" in r.summary()


def test_scalar_simulator_per_sample_with_kwargs():
    calls = []

    def sim(k, f):
        calls.append(1)
        return k * f

    ins = {"k": stats.uniform(1, 1), "f": stats.uniform(0, 2)}
    r = propagate(sim, ins, 64, batched=False, call="kwargs", batch_size=10, seed=5)
    assert len(calls) == 64
    np.testing.assert_allclose(r.outputs, r.inputs[:, 0] * r.inputs[:, 1])


def test_dask_scheduler_gives_the_in_process_result():
    distributed = pytest.importorskip("distributed")
    ins = {"x": stats.uniform(0, 1)}
    local = propagate(forrester, ins, 2000, seed=7, batch_size=250)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
    ) as cluster:
        remote = propagate(
            forrester, ins, 2000, seed=7, batch_size=250, scheduler=cluster.scheduler_address
        )
        sob = sobol_indices(
            ishigami, ISHIGAMI_INPUTS, 256, batch_size=512, scheduler=cluster.scheduler_address
        )
    np.testing.assert_array_equal(remote.outputs, local.outputs)
    assert remote.mean == local.mean and remote.std == local.std
    np.testing.assert_allclose(sob.S1, sobol_indices(ishigami, ISHIGAMI_INPUTS, 256).S1)


def test_ishigami_indices_within_0_02_at_2_14_base_samples():
    exact = ishigami_indices(7.0, 0.1)
    np.testing.assert_allclose(exact["S1"], [0.3139, 0.4424, 0.0], atol=1e-4)
    assert exact["ST"][2] == pytest.approx(0.2437, abs=1e-4)
    r = sobol_indices(ishigami, ISHIGAMI_INPUTS, 2**14, seed=0, n_bootstrap=100)
    assert r.n_evaluations == 5 * 2**14
    np.testing.assert_allclose(r.S1, exact["S1"], atol=0.02)
    np.testing.assert_allclose(r.ST, exact["ST"], atol=0.02)
    # the bootstrap intervals are honest: they contain the exact values
    assert np.all(r.S1_ci[0] - 0.005 <= exact["S1"]) and np.all(exact["S1"] <= r.S1_ci[1] + 0.005)
    assert np.all(r.S1_conf > 0) and np.all(r.S1_conf < 0.05)
    assert "x3" in r.summary()
    assert json.loads(r.to_json())["S1"] == pytest.approx(r.S1.tolist())


def test_sobol_indices_of_a_linear_model_and_vector_output():
    # y = [a + 2b, b]: S1 = (1/5, 4/5) and (0, 1)
    ins = {"a": stats.norm(0, 1), "b": stats.norm(0, 1)}
    r = sobol_indices(lambda x: np.stack([x[:, 0] + 2 * x[:, 1], x[:, 1]], 1), ins, 4096)
    assert r.S1.shape == (2, 2)
    np.testing.assert_allclose(r.S1[:, 0], [0.2, 0.8], atol=0.03)
    np.testing.assert_allclose(r.ST[:, 1], [0.0, 1.0], atol=0.03)


def test_make_distribution_and_sampling_methods():
    d = make_distribution({"dist": "normal", "mean": 2.0, "std": 0.5})
    assert d.mean() == 2.0 and d.std() == 0.5
    d = make_distribution({"dist": "lognormal", "mean": 0.0, "std": 0.25})
    assert d.median() == pytest.approx(1.0)
    d = make_distribution({"dist": "truncnormal", "mean": 0, "std": 1, "low": -1, "high": 1})
    assert d.support() == (-1.0, 1.0)
    x = sample_inputs({"u": stats.uniform(0, 1)}, 1000, method="lhs", seed=0)
    # Latin hypercube: exactly one point in each of the 1000 strata
    assert np.array_equal(np.sort(np.floor(x[:, 0] * 1000)), np.arange(1000))


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: propagate(forrester, {"x": "uniform"}, 10), "inputs"),
        (lambda: propagate(forrester, {"x": stats.poisson(3)}, 10), "continuous"),
        (lambda: propagate(forrester, {}, 10), "inputs"),
        (lambda: propagate(forrester, {"x": stats.uniform()}, 1), "n_samples"),
        (lambda: propagate(forrester, {"x": stats.uniform()}, 100, method="qmc"), "method"),
        (lambda: propagate(forrester, {"x": stats.uniform()}, 100, method="sobol"), "n_samples"),
        (lambda: propagate(forrester, {"x": stats.uniform()}, 100, batch_size=0), "batch_size"),
        (lambda: propagate(lambda x: x[:1], {"x": stats.uniform()}, 100), "batched"),
        (lambda: propagate(lambda x: x[:, 0] / 0, {"x": stats.uniform()}, 100), "non-finite"),
        (lambda: sobol_indices(ishigami, ISHIGAMI_INPUTS, 1000), "power of 2"),
        (lambda: sobol_indices(ishigami, ISHIGAMI_INPUTS, 8), "n_base"),
        (lambda: make_distribution({"dist": "cauchyish", "a": 1}), "unknown distribution"),
        (lambda: make_distribution({"dist": "normal", "mean": 0, "std": -1}), "std"),
        (lambda: make_distribution({"dist": "uniform", "low": 0}), "high"),
    ],
)
def test_bad_input(call, name):
    with pytest.raises(ValueError, match=name):
        with np.errstate(divide="ignore", invalid="ignore"):
            call()
