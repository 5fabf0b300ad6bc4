"""Training the DCDM direction network and the learned V-cycle through the Trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pdesurrogates.solvers import gallery
from pdesurrogates.surrogates import ConjugateDirectionNet, LearnedVCycle
from pdesurrogates.training import (
    dcdm_loss,
    ritz_training_vectors,
    sparse_to_torch,
    train_dcdm,
    train_vcycle,
    write_ritz_dataset,
)


def test_ritz_dataset_round_trip_and_training_reduces_loss(tmp_path):
    from pdesurrogates.datasets import open_dataset

    p = gallery.dirichlet_box((16, 16))
    path = write_ritz_dataset(tmp_path / "ritz.h5", p, 60, m=40, seed=0)
    ds = open_dataset(path)
    assert len(ds) == 60
    r0 = np.asarray(ds[0]["r"])
    assert r0.shape == (1, 16, 16)  # channel-first
    assert np.linalg.norm(r0) == pytest.approx(1.0, abs=1e-5)
    assert ds.attrs["dataset_name"] == "dcdm_ritz"
    torch.manual_seed(0)
    net = ConjugateDirectionNet(dim=2, width=4)
    with torch.no_grad():  # start away from the multigrid initialisation
        net.smoother.mul_(0.3)
    hist = train_dcdm(net, p.A, str(path), shape=(16, 16), epochs=3, lr=3e-3, progress=False)
    assert hist[0]["initial_valid_loss"] is not None
    assert hist[-1]["valid_loss"] < 0.7 * hist[0]["initial_valid_loss"]


def test_training_on_several_sizes_reduces_loss_on_each():
    shapes = [(16, 16), (32, 32)]
    probs = [gallery.dirichlet_box(s) for s in shapes]
    data = [ritz_training_vectors(p.A, 48, m=30, seed=k) for k, p in enumerate(probs)]
    torch.manual_seed(0)
    net = ConjugateDirectionNet(dim=2, width=0)
    with torch.no_grad():  # start away from the multigrid initialisation
        net.smoother.mul_(0.3)

    def loss(k):
        X = torch.from_numpy(data[k])
        with torch.no_grad():
            d = net(X.view(-1, 1, *shapes[k])).reshape(len(X), -1)
        return float(dcdm_loss(X, d, sparse_to_torch(probs[k].A)))

    before = [loss(0), loss(1)]
    hist = train_dcdm(
        net, [p.A for p in probs], data, shape=shapes, epochs=3, lr=3e-3, progress=False
    )
    assert len(hist) == 3 and np.isfinite(hist[-1]["loss"])
    after = [loss(0), loss(1)]
    assert after[0] < 0.7 * before[0] and after[1] < 0.7 * before[1]
    with pytest.raises(ValueError, match="same"):
        train_dcdm(net, [probs[0].A], data, shape=shapes, epochs=1, progress=False)
    with pytest.raises(ValueError, match="lists"):
        train_dcdm(net, probs[0].A, data, shape=shapes, epochs=1, progress=False)


def test_train_vcycle_reduces_contraction():
    m = LearnedVCycle(dim=2, coarse_cells=16)
    with torch.no_grad():
        m.stencil.copy_(torch.tensor([0.5, 0.1]))
    hist = train_vcycle(m, (16, 16), steps=40, lr=3e-2, progress=False)
    assert hist[-1]["rho"] < 0.8 * hist[0]["rho"]


def test_defaults_come_from_the_config_classes():
    import inspect

    from pdesurrogates.training import DCDMConfig, VCycleConfig

    sig = inspect.signature(train_dcdm).parameters
    for name in ("epochs", "batch_size", "lr", "seed", "max_seconds"):
        assert sig[name].default == getattr(DCDMConfig(), name), name
    sig = inspect.signature(train_vcycle).parameters
    for name in ("steps", "batch_size", "power", "lr", "seed"):
        assert sig[name].default == getattr(VCycleConfig(), name), name
    with pytest.raises(ValueError, match="unknown setting 'epoch'"):
        DCDMConfig.from_dict({"epoch": 3})
    with pytest.raises(ValueError, match="epochs"):
        train_dcdm(ConjugateDirectionNet(dim=2), None, None, shape=(8, 8), epochs=0)


def test_dcdm_history_and_time_budget():
    p = gallery.dirichlet_box((16, 16))
    X = ritz_training_vectors(p.A, 64, m=30, seed=0)
    torch.manual_seed(0)
    net = ConjugateDirectionNet(dim=2, width=2)
    hist = train_dcdm(net, p.A, X, shape=p.shape, epochs=2, batch_size=16, progress=False)
    assert [h["epoch"] for h in hist] == [1, 2]
    assert hist[0]["valid_loss"] is None and hist[0]["initial_valid_loss"] is None
    assert hist[-1]["lr"] < 1e-6  # the cosine schedule ran to its end
    assert not net.training
    # a budget stops long before 10,000 epochs
    hist = train_dcdm(net, p.A, X, shape=p.shape, epochs=10_000, max_seconds=1.0, progress=False)
    assert len(hist) < 10_000 and hist[-1]["seconds"] < 5.0
