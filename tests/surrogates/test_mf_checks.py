"""Multi-fidelity models: the fidelity level asked for, inputs outside declared bounds
(every route warns once) and the MF-DNN ensemble's prediction of numpy inputs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import pdesurrogates
from pdesurrogates.solvers.reference import forrester
from pdesurrogates.surrogates import CoKrigingGP, Ensemble, MultiFidelityNet
from pdesurrogates.training import MultiFidelityModel, fit_multifidelity, fit_multifidelity_net

P = forrester()
X_LO = np.linspace(0, 1, 11)[:, None]
X_HI = X_LO[[0, 4, 6, 10]]
FAST = {"adam_steps": 50, "lbfgs_steps": 5, "lm_steps": 0}
OUTSIDE = np.array([[0.5], [1.5]])  # dimension 0 reaches 1.5 > 1
INSIDE = np.array([[0.05], [0.55], [0.95]])


@pytest.fixture(scope="module")
def gp():
    return CoKrigingGP(n_restarts=1).fit(X_LO, P.low(X_LO), X_HI, P.high(X_HI), bounds=P.bounds)


@pytest.fixture(scope="module")
def mfdnn():
    return fit_multifidelity_net(
        [X_LO, X_HI],
        [P.low(X_LO), P.high(X_HI)],
        bounds=P.bounds,
        n_members=2,
        keep=2,
        fit_kwargs=FAST,
    )


def _outside_warnings(record) -> list[str]:
    return [str(w.message) for w in record if "outside the declared bounds" in str(w.message)]


def _one_warning(fn):
    """``fn()`` gives exactly one UserWarning, naming dimension 0 and the bounds [0, 1]."""
    with pytest.warns(UserWarning) as record:
        out = fn()
    msgs = _outside_warnings(record)
    assert len(msgs) == 1, msgs
    assert "dimension 0 has values in [0.5, 1.5]" in msgs[0] and "[0, 1]" in msgs[0]
    return out


def _silent(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn()


# ------------------------------------------------------------------ levels
def test_cokriging_levels_in_range_and_refused_outside(gp):
    x = X_LO  # the low-fidelity points: level 0 interpolates f_L there
    np.testing.assert_allclose(gp.predict(x, level=0).mean, P.low(x), atol=1e-4)
    np.testing.assert_allclose(gp.predict(X_HI, level=1).mean, P.high(X_HI), atol=1e-4)
    np.testing.assert_array_equal(gp.predict(x, level=-2).mean, gp.predict(x, level=0).mean)
    np.testing.assert_array_equal(gp.predict(x, level=-1).mean, gp.predict(x).mean)
    for bad in (2, 3, -3, 1.0, True, "1"):
        with pytest.raises(ValueError, match=rf"level={bad!r} .*2-level model.*\[-2, 1\]"):
            gp.predict(x, level=bad)


def test_mfnet_levels_in_range_and_refused_outside():
    torch.manual_seed(0)
    net = MultiFidelityNet(in_dim=1, n_levels=3)
    x = torch.linspace(0, 1, 7)[:, None]
    levels = net.forward_levels(x)
    for k in range(3):
        torch.testing.assert_close(net(x, level=k), levels[k])
        torch.testing.assert_close(net(x, level=k - 3), levels[k])
    for bad in (3, -4, 0.5):
        with pytest.raises(ValueError, match=rf"level={bad!r} .*3-level model.*\[-3, 2\]"):
            net(x, level=bad)


# ------------------------------------------------------------------ outside the bounds
def test_cokriging_warns_once_on_every_route(gp, tmp_path):
    mean = _one_warning(lambda: gp.predict(OUTSIDE).mean)
    _one_warning(lambda: gp(torch.as_tensor(OUTSIDE)))  # forward: uq propagate's route
    _silent(lambda: gp.predict(INSIDE))
    pdesurrogates.save(gp, tmp_path / "m")
    loaded = pdesurrogates.load(tmp_path / "m")
    assert loaded.bounds_declared
    np.testing.assert_allclose(_one_warning(lambda: loaded.predict(OUTSIDE).mean), mean)


def test_cokriging_without_declared_bounds_is_silent():
    x_lo, x_hi = X_LO[::2], X_LO[[0, 2, 4]]  # box: the data range [0, 1]
    free = CoKrigingGP(n_restarts=1).fit(x_lo, P.low(x_lo), x_hi, P.high(x_hi))
    assert not free.bounds_declared
    np.testing.assert_allclose(free.input_box(), [[0.0, 1.0]])
    _silent(lambda: free.predict(OUTSIDE))


def test_fit_multifidelity_warns_once_not_twice(gp):
    m = MultiFidelityModel("ar1", gp, bounds=P.bounds, bounds_declared=True, members=[gp])
    _one_warning(lambda: m.predict(OUTSIDE))
    _silent(lambda: m.predict(INSIDE))
    m = fit_multifidelity(
        X_LO,
        P.low(X_LO),
        X_HI,
        P.high(X_HI),
        method="mfdnn",
        bounds=P.bounds,
        mfdnn_kwargs={"fit_kwargs": FAST},
    )
    _one_warning(lambda: m.predict(OUTSIDE))
    _silent(lambda: m.predict(INSIDE))


def test_mfdnn_warns_once_on_every_route(mfdnn, tmp_path):
    ens = mfdnn.model
    assert isinstance(ens, Ensemble) and all(m.bounds_declared for m in ens.members)
    _one_warning(lambda: mfdnn.predict(OUTSIDE))
    _one_warning(lambda: ens.predict(OUTSIDE))
    _one_warning(lambda: ens(torch.as_tensor(OUTSIDE, dtype=torch.float64)))
    _silent(lambda: ens.predict(INSIDE))
    pdesurrogates.save(ens, tmp_path / "m")
    _one_warning(lambda: pdesurrogates.load(tmp_path / "m").predict(OUTSIDE))


def test_mfdnn_without_declared_bounds_is_silent():
    fit = fit_multifidelity_net(
        [X_LO, X_HI], [P.low(X_LO), P.high(X_HI)], n_members=2, keep=2, fit_kwargs=FAST
    )
    assert not any(m.bounds_declared for m in fit.members)
    _silent(lambda: fit.predict(OUTSIDE))


# ------------------------------------------------------------------ ensemble numpy
def test_ensemble_predict_numpy_equals_torch_without_autograd(mfdnn):
    ens = mfdnn.model
    x = np.linspace(0, 1, 9)[:, None]
    p_np = ens.predict(x)
    p_t = ens.predict(torch.as_tensor(x))
    assert isinstance(p_np.mean, np.ndarray) and isinstance(p_np.samples, np.ndarray)
    assert torch.is_tensor(p_t.samples) and not p_t.samples.requires_grad
    np.testing.assert_array_equal(p_np.samples, p_t.samples.numpy())
    members = np.stack([m(torch.as_tensor(x)).detach().numpy() for m in ens.members])
    np.testing.assert_array_equal(p_np.samples, members)
    np.testing.assert_allclose(p_np.mean, members.mean(0), rtol=1e-12)
    np.testing.assert_allclose(p_np.std, members.std(0, ddof=1), rtol=1e-12)


# ------------------------------------------------------------------ edges, threads, auto
def test_a_float32_net_is_silent_on_the_edges_of_its_declared_box():
    """The box of a float32 net is stored rounded (-1.3 comes back as -1.29999995):
    inputs exactly on the declared bounds are inside, just beyond them is not."""
    bounds = np.array([[0.1, 0.7], [-1.3, 2.9]])
    x = np.stack(np.meshgrid(*bounds, indexing="ij"), -1).reshape(-1, 2)  # the 4 corners
    grid = np.linspace(bounds[:, 0], bounds[:, 1], 5)
    x_lo = np.stack(np.meshgrid(grid[:, 0], grid[:, 1], indexing="ij"), -1).reshape(-1, 2)
    f = lambda x: np.sin(3 * x[:, 0]) + x[:, 1]  # noqa: E731
    fit = fit_multifidelity_net(
        [x_lo, x], [0.8 * f(x_lo), f(x)], bounds=bounds, n_members=2, keep=2,
        fit_kwargs=FAST, dtype=torch.float32,
    )  # fmt: skip
    assert fit.members[0].box_dtype == torch.float32
    _silent(lambda: fit.predict(x))
    beyond = x + np.array([0.0, 1e-3])
    with pytest.warns(UserWarning, match="dimension 1 has values in"):
        fit.predict(beyond)


def test_ensemble_warning_check_leaves_the_warnings_state_alone(mfdnn):
    """Members after the first are quiet through a context variable, not by catching
    warnings: from several threads at once, the process's warnings machinery (filters,
    display) is left as it was, and each thread's prediction is right."""
    import threading

    ens = mfdnn.model
    filters, show = list(warnings.filters), warnings.showwarning
    want = ens.predict(INSIDE).mean
    got, errors = [], []

    def work():
        try:
            for _ in range(50):
                got.append(ens.predict(INSIDE).mean)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(got) == 200
    for g in got:
        np.testing.assert_array_equal(g, want)
    assert warnings.filters == filters and warnings.showwarning is show
    _one_warning(lambda: ens.predict(OUTSIDE))  # and the one warning still comes


@pytest.mark.parametrize("method", ["ar1", "mfdnn"])
def test_fit_multifidelity_without_bounds_never_warns(method):
    """Without bounds the box is the data's range, not declared: no route warns."""
    m = fit_multifidelity(
        X_LO, P.low(X_LO), X_HI, P.high(X_HI), method=method, seed=0,
        mfdnn_kwargs={"fit_kwargs": FAST},
    )  # fmt: skip
    _silent(lambda: m.predict(OUTSIDE))
    _silent(lambda: m.model.predict(OUTSIDE))
