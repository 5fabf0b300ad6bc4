"""Training the DCDM direction network and the learned V-cycle through the Trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pdesurrogates.solvers import gallery, grid_stencil
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
    # the cosine schedule ran to its end: the last of 2 x 4 steps at 1e-3 cos^2(7 pi / 16)
    assert hist[-1]["lr"] == pytest.approx(1e-3 * np.cos(7 * np.pi / 16) ** 2, rel=1e-9)
    assert not net.training
    # a budget stops long before 10,000 epochs
    hist = train_dcdm(net, p.A, X, shape=p.shape, epochs=10_000, max_seconds=1.0, progress=False)
    assert len(hist) < 10_000 and hist[-1]["seconds"] < 5.0


# ------------------------------------------------------------------ grids known where made
def _dcdm_hist(A, data, **kw):
    torch.manual_seed(0)
    net = ConjugateDirectionNet(dim=2, width=0)
    hist = train_dcdm(net, A, data, epochs=2, lr=3e-3, batch_size=8, progress=False, **kw)
    return [h["loss"] for h in hist]


def test_train_dcdm_takes_the_grid_from_the_gallery_matrix_problem_or_file(tmp_path):
    import scipy.sparse as sp

    from pdesurrogates.errors import SolverError

    grid = (12, 8)  # not a square: a bare matrix could not say it
    p = gallery.dirichlet_box(grid)
    path = write_ritz_dataset(tmp_path / "ritz.h5", p, 16, m=12, seed=0)  # 14 train, 2 valid
    X = ritz_training_vectors(p.A, 16, m=12, seed=0)  # the file's vectors, flat (16, 96)
    losses = _dcdm_hist(sp.csr_matrix(p.A), X, shape=grid)  # a bare matrix with shape=
    assert np.isfinite(losses).all()
    # the same training, the grid taken from a gallery matrix, a Problem, a grid array
    for A, data in [(p.A, X), (p, X), (sp.csr_matrix(p.A), X.reshape(16, *grid))]:
        assert _dcdm_hist(A, data) == losses
    # ... or a training file of write_ritz_dataset (its field r is (sample, 12, 8))
    from_file = _dcdm_hist(sp.csr_matrix(p.A), str(path))
    assert from_file == pytest.approx(_dcdm_hist(p.A, X[:14], shape=grid), rel=1e-5)
    # several sizes: each grid from its own matrix
    q = gallery.dirichlet_box((8, 12))
    both = _dcdm_hist([p.A, q.A], [X, ritz_training_vectors(q.A, 16, m=12, seed=1)])
    assert len(both) == 2 and np.isfinite(both).all()
    # a bare matrix with flat vectors: the error names the argument
    with pytest.raises(SolverError, match=r"train_dcdm.*shape=") as err:
        _dcdm_hist(sp.csr_matrix(p.A), X)
    assert "gallery" in str(err.value)
    # a square bare matrix is read as its square grid, checked against its stencil
    s = gallery.dirichlet_box((10, 10))
    Xs = ritz_training_vectors(s.A, 8, m=12, seed=0)
    assert _dcdm_hist(sp.csr_matrix(s.A), Xs) == _dcdm_hist(s.A, Xs)


def test_train_vcycle_takes_the_grid_from_the_gallery_matrix_or_problem():
    import scipy.sparse as sp

    from pdesurrogates.errors import SolverError

    def hist(*args, **kw):
        m = LearnedVCycle(dim=2, coarse_cells=16)
        return [h["loss"] for h in train_vcycle(m, *args, steps=3, progress=False, **kw)]

    p = gallery.dirichlet_box((12, 8))
    ref = hist((12, 8))  # the Dirichlet Laplacian on shape, as before
    assert hist(A=p) == pytest.approx(ref, rel=1e-12)
    assert hist(A=p.A) == pytest.approx(ref, rel=1e-12)
    assert hist(A=sp.csr_matrix(p.A), shape=(12, 8)) == pytest.approx(ref, rel=1e-12)
    with pytest.raises(SolverError, match=r"train_vcycle.*shape="):
        hist(A=sp.csr_matrix(p.A))


def test_balance_divides_each_matrix_loss_by_its_initial_loss():
    """With a vanishing learning rate the epoch loss is the initial one: the mean of the raw
    per-matrix losses unbalanced, exactly 1 balanced (every matrix's vectors fit in the
    64 that set its weight)."""
    probs = [
        gallery.dirichlet_box((16, 16)),
        gallery.anisotropic_diffusion((16, 16), eps=1e-3, theta=0.4),
    ]
    data = [ritz_training_vectors(p.A, 32, m=30, seed=k) for k, p in enumerate(probs)]
    torch.manual_seed(0)
    net = ConjugateDirectionNet(dim=2, coefficients=True).double()
    raw = []
    for p, X in zip(probs, data, strict=True):
        X = torch.from_numpy(X)
        S = torch.from_numpy(grid_stencil(p.A, p.shape)[None])
        with torch.no_grad():
            d = net(X.view(-1, 1, *p.shape), coefficients=S).reshape(len(X), -1)
        raw.append(float(dcdm_loss(X, d, sparse_to_torch(p.A, dtype=torch.float64))))
    assert raw[1] > 3 * raw[0]  # the anisotropic matrix dominates an unbalanced loss
    for balance, expected in ((False, np.mean(raw)), (True, 1.0)):
        hist = train_dcdm(
            net, probs, data, epochs=1, lr=1e-12, progress=False, balance=balance, max_seconds=None
        )
        assert hist[0]["loss"] == pytest.approx(expected, rel=1e-6)
    # per-matrix weights multiply the (balanced or raw) losses
    for balance, expected in ((False, (raw[0] + 3 * raw[1]) / 2), (True, 2.0)):
        hist = train_dcdm(
            net,
            probs,
            data,
            epochs=1,
            lr=1e-12,
            progress=False,
            balance=balance,
            max_seconds=None,
            weights=[1.0, 3.0],
        )
        assert hist[0]["loss"] == pytest.approx(expected, rel=1e-6)
    for bad in ([1.0], [1.0, 0.0], [1.0, float("nan")]):
        with pytest.raises(ValueError, match="one positive finite number per training matrix"):
            train_dcdm(net, probs, data, epochs=1, progress=False, weights=bad)
