"""Training data, loss and training step of the deep conjugate-direction method (DCDM).

Training vectors are random combinations of Ritz vectors of the training matrix ``A``
(Lanczos with full re-orthogonalisation, started in ``range(A)``), weighted toward the
low end of the spectrum: the lowest ``low_fraction`` of the Ritz vectors get coefficients
``low_weight`` times larger, as in Kaneda et al. (2023). They are stored once in a
``pdesurrogates-h5`` file (field ``"r"``) and streamed from there.

The loss needs no labels: for a unit training vector ``r`` and direction ``d = f(r)``,

    L = || r - A d (d^T r) / (d^T A d) ||^2,

the residual left after the exact A-norm line search along ``d``; it is invariant to the
scale of ``d``, so the network only has to learn ``A^{-1}`` up to a constant.

Examples
--------
>>> import numpy as np
>>> from pdesurrogates.solvers import gallery
>>> from pdesurrogates.training import ritz_vectors
>>> vals, vecs = ritz_vectors(gallery.poisson2d(8), 20, seed=0)
>>> bool(np.all(np.diff(vals) > 0)), vecs.shape
(True, (64, 20))
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from pdesurrogates._files import DeferredInterrupt, check_interrupt
from pdesurrogates.errors import DatasetError, TrainingError
from pdesurrogates.training._configs import DCDMConfig
from pdesurrogates.training._steps import BatchSource, TrainingStep
from pdesurrogates.training._trainer import Trainer

__all__ = [
    "DCDMStep",
    "check_ritz_dataset",
    "dcdm_loss",
    "lanczos",
    "ritz_training_vectors",
    "ritz_vectors",
    "sparse_to_torch",
    "train_dcdm",
    "write_ritz_dataset",
]


def lanczos(A, m: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``m`` steps of Lanczos with full re-orthogonalisation, started from ``A xi``.

    Returns
    -------
    Q : ndarray, shape (n, k)
        Orthonormal Lanczos basis (``k <= m``; fewer on an invariant subspace).
    alpha, beta : ndarray, shapes (k,), (k - 1,)
        Diagonal and off-diagonal of the tridiagonal ``T = Q^T A Q``.
    """
    n = A.shape[0]
    m = int(min(m, n))
    if m < 1:
        raise ValueError(f"m must be >= 1; got {m}")
    rng = np.random.default_rng(seed)
    v = A @ rng.standard_normal(n)  # start in range(A): avoids a Neumann null space
    v /= np.linalg.norm(v)
    Q = np.zeros((n, m))
    alpha = np.zeros(m)
    beta = np.zeros(max(m - 1, 0))
    k = m
    for j in range(m):
        Q[:, j] = v
        w = A @ v
        alpha[j] = float(v @ w)
        # full re-orthogonalisation (twice is enough)
        for _ in range(2):
            w -= Q[:, : j + 1] @ (Q[:, : j + 1].T @ w)
        if j == m - 1:
            break
        bj = float(np.linalg.norm(w))
        if bj < 1e-10 * max(abs(alpha[j]), 1.0):
            k = j + 1
            break
        beta[j] = bj
        v = w / bj
    return Q[:, :k], alpha[:k], beta[: k - 1]


def ritz_vectors(A, m: int, *, seed: int = 0, drop_below: float = 1e-8):
    """Ritz values (ascending) and Ritz vectors of ``A`` from ``m`` Lanczos steps.

    Ritz values below ``drop_below`` (a null space) are dropped.

    Returns
    -------
    values : ndarray, shape (k,)
    vectors : ndarray, shape (n, k)
        Orthonormal columns.
    """
    from scipy.linalg import eigh_tridiagonal

    Q, a, b = lanczos(A, m, seed=seed)
    if len(a) == 1:
        vals, S = a.copy(), np.ones((1, 1))
    else:
        vals, S = eigh_tridiagonal(a, b)
    keep = vals > drop_below
    return vals[keep], Q @ S[:, keep]


def ritz_training_vectors(
    A,
    n_samples: int,
    *,
    m: int = 500,
    low_fraction: float = 0.55,
    low_weight: float = 9.0,
    seed: int = 0,
    ritz: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Unit training vectors: random Ritz-vector combinations weighted to the low spectrum.

    Parameters
    ----------
    A : sparse matrix, shape (n, n)
        The training matrix.
    n_samples : int
        Number of vectors.
    m : int
        Lanczos steps (Ritz vectors), capped at ``n``.
    low_fraction, low_weight : float
        Coefficients of the lowest ``low_fraction`` of the Ritz vectors are drawn from
        ``N(0, low_weight^2)``, the others from ``N(0, 1)``.
    seed : int
    ritz : (values, vectors), optional
        Precomputed :func:`ritz_vectors` output.

    Returns
    -------
    ndarray, shape (n_samples, n), float32
        Unit-norm rows.
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1; got {n_samples}")
    if not 0 <= low_fraction <= 1:
        raise ValueError(f"low_fraction must be in [0, 1]; got {low_fraction}")
    _, Y = ritz if ritz is not None else ritz_vectors(A, m, seed=seed)
    k = Y.shape[1]
    rng = np.random.default_rng(seed + 1)
    scale = np.ones(k)
    scale[: math.ceil(low_fraction * k)] = low_weight
    C = rng.standard_normal((k, n_samples)) * scale[:, None]
    X = (Y @ C).T
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32)


_RITZ_PDE = "A r = b training residuals for the deep conjugate-direction method"


def write_ritz_dataset(
    path: str | os.PathLike,
    problem,
    n_samples: int,
    *,
    m: int = 500,
    low_fraction: float = 0.55,
    low_weight: float = 9.0,
    seed: int = 0,
    valid_fraction: float = 0.1,
) -> Path:
    """Generate DCDM training vectors for ``problem`` and store them as a pdesurrogates-h5 file.

    The file holds one field ``"r"`` with dims ``(sample, x, y[, z])`` and the splits
    ``train`` / ``valid``; ``source`` records the matrix and the Lanczos settings.

    Parameters
    ----------
    path : path
        Output ``.h5`` file (written atomically).
    problem : pdesurrogates.solvers.gallery.Problem
        The training system (its ``A`` and grid ``shape``).
    n_samples, m, low_fraction, low_weight, seed
        As in :func:`ritz_training_vectors`.
    valid_fraction : float
        Share of the samples held out for validation.
    """
    from pdesurrogates.datasets import DatasetWriter, FieldSpec

    shape = tuple(problem.shape)
    X = ritz_training_vectors(
        problem.A, n_samples, m=m, low_fraction=low_fraction, low_weight=low_weight, seed=seed
    )
    names = ("x", "y", "z")[: len(shape)]
    coords = {nm: (np.arange(s) + 0.5) / s for nm, s in zip(names, shape, strict=True)}
    fields = {
        "r": FieldSpec(
            dims=("sample", *names),
            role="input",
            units="1",
            long_name="unit training residual (Ritz-vector combination)",
        )
    }
    n_valid = max(1, round(valid_fraction * n_samples)) if n_samples > 1 else 0
    idx = np.arange(n_samples)
    splits = {"train": idx[: n_samples - n_valid], "valid": idx[n_samples - n_valid :]}
    splits = splits if n_valid else {"train": idx}
    source = {
        "generator": "pdesurrogates.training.write_ritz_dataset",
        "problem": getattr(problem, "name", "problem"),
        "shape": list(shape),
        "lanczos_steps": int(m),
        "low_fraction": float(low_fraction),
        "low_weight": float(low_weight),
        "seed": int(seed),
    }
    w = DatasetWriter(path, n_samples=n_samples, coords=coords, fields=fields, source=source,
                      dataset_name="dcdm_ritz", pde=_RITZ_PDE)  # fmt: skip
    try:  # a failed or interrupted write leaves nothing: the vectors are made in seconds
        with w, DeferredInterrupt():  # Ctrl-C inside h5py is raised after a sample's write
            for i in range(n_samples):
                w.write(i, {"r": X[i].reshape(shape)})
                check_interrupt()
            w.finalize(splits=splits)
    except BaseException:
        w.abort()
        raise
    return Path(path)


def check_ritz_dataset(path, problem, *, n_samples=None, m=None, seed=None, remedy=None):
    """Raise DatasetError, naming the file and every mismatch, if ``path`` does not fit.

    ``path`` must hold the field ``"r"`` on ``problem``'s grid; a file of
    :func:`write_ritz_dataset` (its record: attribute ``source``) must be of ``problem``
    and have the ``n_samples``, ``m`` (Lanczos steps) and ``seed`` given; with ``m`` or
    ``seed`` given, a file without that record is refused. ``remedy``: what the message
    advises (default: for a file left in the output, delete it to generate it again)."""
    remedy = remedy or "delete the file (or choose another -o) to generate them again"
    ds = _ritz_file(path)
    text = str(ds.attrs.get("source") or "")
    src = json.loads(text) if "training.write_ritz_dataset" in text else {}  # its record
    if not src and (m is not None or seed is not None):
        raise DatasetError(f"{path}: records no generation settings to check; {remedy}")
    want = {"grid": list(problem.shape), "samples": n_samples, "lanczos": m, "seed": seed}
    have = {"grid": list(ds.shape("r")[1:]), "samples": len(ds), "seed": src.get("seed")}
    have["lanczos"] = src.get("lanczos_steps")
    if src:
        want["problem"], have["problem"] = getattr(problem, "name", None), src.get("problem")
    bad = [f"{k} {have[k]} (asked: {v})" for k, v in want.items() if v is not None and have[k] != v]
    if bad:
        raise DatasetError(
            f"{path}: training vectors made with other settings: {'; '.join(bad)}; {remedy}"
        )


def _ritz_file(data):
    """``data`` (a path or a FieldDataset) opened, its field ``"r"`` checked."""
    from pdesurrogates.datasets import open_dataset

    ds = open_dataset(data) if isinstance(data, str | os.PathLike) else data
    if "r" not in ds.fields:
        raise DatasetError(
            f"{ds.path}: no field 'r' of DCDM training vectors (fields: {sorted(ds.fields)}); "
            "use a file of write_ritz_dataset ('train dcdm' without --data writes one)"
        )
    return ds


def sparse_to_torch(A, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """A scipy sparse matrix as a coalesced torch COO tensor (for the loss)."""
    A = sp.coo_matrix(A)
    idx = torch.from_numpy(np.vstack([A.row, A.col]).astype(np.int64))
    vals = torch.from_numpy(A.data).to(dtype)
    t = torch.sparse_coo_tensor(idx, vals, size=A.shape, check_invariants=True)
    return t.coalesce().to(device) if device is not None else t.coalesce()


def dcdm_loss(r: torch.Tensor, d: torch.Tensor, A_t: torch.Tensor) -> torch.Tensor:
    """Mean of ``||r - A d (d^T r)/(d^T A d)||^2`` over a batch.

    Parameters
    ----------
    r, d : Tensor, shape (batch, n)
        Training vectors and network directions (flattened grids).
    A_t : Tensor, shape (n, n)
        Sparse training matrix (:func:`sparse_to_torch`).
    """
    Ad = torch.sparse.mm(A_t, d.T).T
    num = (d * r).sum(dim=1, keepdim=True)
    den = (d * Ad).sum(dim=1, keepdim=True)
    den = torch.where(den.abs() > 1e-30, den, torch.full_like(den, 1e-30))
    return ((r - Ad * (num / den)) ** 2).sum(dim=1).mean()


def _load_vectors(data, shape) -> tuple[np.ndarray, np.ndarray | None]:
    """Accept an array (n_samples, n), an .h5 path or a FieldDataset."""
    if isinstance(data, np.ndarray):
        return data.reshape(data.shape[0], -1).astype(np.float32), None
    ds = _ritz_file(data)

    def stack(d):
        return np.stack([np.asarray(d[i]["r"]).reshape(-1) for i in range(len(d))])

    if not {"train", "valid"} <= set(ds.splits):  # no splits stored
        return stack(ds).astype(np.float32), None
    train, valid = ds.split("train"), ds.split("valid")
    return stack(train).astype(np.float32), stack(valid).astype(np.float32)


def _is_shape(obj) -> bool:
    return isinstance(obj, Sequence) and all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) for v in obj
    )


class DCDMStep(TrainingStep):
    """The DCDM loss of a batch ``(k, r)``: vectors ``r`` of training size ``k``.

    Parameters
    ----------
    matrices : sequence of Tensor
        Sparse training matrix per size (:func:`sparse_to_torch`).
    shapes : sequence of tuple of int
        Grid shape per size.
    stencils : sequence of Tensor, optional
        Per training matrix, its :func:`~pdesurrogates.solvers.grid_stencil` as a
        ``(1, 3**dim, *grid)`` tensor, for a coefficient-aware model (``coefficients=``).
    weights : sequence of float, optional
        Per training matrix, a factor on its loss (default 1).
    """

    def __init__(
        self,
        matrices: Sequence[torch.Tensor],
        shapes: Sequence[tuple[int, ...]],
        stencils: Sequence[torch.Tensor] | None = None,
        weights: Sequence[float] | None = None,
    ):
        self.matrices = list(matrices)
        self.shapes = [tuple(s) for s in shapes]
        self.stencils = None if stencils is None else list(stencils)
        self.weights = None if weights is None else [float(w) for w in weights]

    def loss(self, model, batch) -> tuple[torch.Tensor, int]:
        k, r = batch
        kw = {} if self.stencils is None else {"coefficients": self.stencils[k]}
        d = model(r.view(-1, 1, *self.shapes[k]), **kw).reshape(len(r), -1)
        loss = dcdm_loss(r, d, self.matrices[k])
        return (loss if self.weights is None else self.weights[k] * loss), len(r)


class _VectorBatches(BatchSource):
    """Batches ``(k, vectors)`` of one training size each; with ``shuffle`` the vectors of
    every size are permuted and the batches of all sizes shuffled together, from
    ``(seed, epoch)``; without, the vectors in order (for validation)."""

    def __init__(self, sets: Sequence[torch.Tensor], batch_size: int, *, seed=0, shuffle=True):
        self.sets = list(sets)
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle

    def __len__(self) -> int:
        return sum(max(1, math.ceil(len(X) / self.batch_size)) for X in self.sets)

    def batches(self, epoch: int):
        bs = self.batch_size
        if not self.shuffle:
            return [
                (k, X[i : i + bs]) for k, X in enumerate(self.sets) for i in range(0, len(X), bs)
            ]
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        out = []
        for k, X in enumerate(self.sets):
            perm = torch.randperm(len(X), generator=gen)
            out += [(k, perm[i : i + bs]) for i in range(0, len(X), bs)]
        if len(self.sets) > 1:
            order = torch.randperm(len(out), generator=gen).tolist()
            out = [out[j] for j in order]
        return [(k, self.sets[k][idx]) for k, idx in out]


def _data_grid(data) -> tuple[int, ...] | None:
    """The grid a training set was stored on: the per-sample shape of field ``"r"`` of a
    file or dataset (:func:`write_ritz_dataset` writes ``(sample, x, y[, z])``), or of a
    grid-shaped array ``(n_samples, *grid)``; None for flat vectors ``(n_samples, n)``."""
    if isinstance(data, np.ndarray):
        return tuple(int(s) for s in data.shape[1:]) if data.ndim >= 3 else None
    from pdesurrogates.datasets import open_dataset

    ds = open_dataset(data) if isinstance(data, str | os.PathLike) else data
    if "r" not in getattr(ds, "fields", {}):
        return None
    grid = tuple(int(s) for s in ds.shape("r")[1:])  # (C, *grid), C = 1
    return grid if len(grid) >= 2 else None


def _grid(model, A, data, shape, label: str):
    """``(matrix, grid)`` of one training size: ``shape`` if given, else the grid the
    Problem or gallery matrix carries, else the training file's; checked (and, for a
    bare square/cube matrix, inferred) by :func:`~pdesurrogates.solvers.grid_shape_for`."""
    from pdesurrogates.solvers._checks import grid_shape_for, unwrap_grid

    A, grid, _ = unwrap_grid(A, shape)
    if grid is None:
        grid = _data_grid(data)
    dim = getattr(model, "dim", None) or (len(grid) if grid is not None else None)
    if dim is None:
        raise ValueError(
            f"train_dcdm: the model has no 'dim' attribute and {label} carries no grid; pass "
            "shape=<grid array shape>, e.g. shape=(96, 64)"
        )
    return A, grid_shape_for(A.shape[0], int(dim), grid, A=A, who=f"train_dcdm ({label})")


def _training_sets(model, A, data, shape, dev, dtype):
    """``(matrices, train vectors, valid vectors or None, shapes, stencils or None)`` per
    training size (stencils for a coefficient-aware model)."""
    from pdesurrogates.solvers import grid_stencil

    several = isinstance(A, list | tuple)
    if several:
        if not isinstance(data, list | tuple):
            raise ValueError(
                "with several training sizes, A and data must be lists with one entry per size"
            )
        shapes = [None] * len(A) if shape is None else list(shape)
        if _is_shape(shapes) or not (len(A) == len(data) == len(shapes)) or not shapes:
            raise ValueError(
                f"A ({len(A)}), data ({len(data)}) and shape "
                f"({'-' if shape is None else len(shapes)}) need the same non-zero number of "
                "entries (shape: one grid per training size, or None)"
            )
        mats, datas = list(A), list(data)
    else:
        if shape is not None and not _is_shape(shape):
            raise ValueError(
                "with several training shapes, A and data must be lists with one entry per shape"
            )
        shapes, mats, datas = [shape], [A], [data]
    out_m, out_x, out_v, grids, sten = [], [], [], [], []
    coefficients = getattr(model, "coefficients", False)
    for k, (Ak, Dk, sk) in enumerate(zip(mats, datas, shapes, strict=True)):
        Ak, grid = _grid(model, Ak, Dk, sk, f"A[{k}]" if several else "A")
        n = int(np.prod(grid))
        train, valid = _load_vectors(Dk, grid)
        if train.shape[1] != n:
            raise TrainingError(f"training vectors have {train.shape[1]} entries; expected {n}")
        if not np.all(np.isfinite(train)):
            raise TrainingError("training vectors contain NaN/Inf")
        out_m.append(sparse_to_torch(Ak, dtype=dtype, device=dev))
        out_x.append(torch.from_numpy(train).to(dev, dtype))
        has_valid = valid is not None and len(valid)
        out_v.append(torch.from_numpy(valid).to(dev, dtype) if has_valid else None)
        grids.append(grid)
        if coefficients:
            S = grid_stencil(Ak, grid, who=f"train_dcdm (A[{k}])" if several else "train_dcdm")
            sten.append(torch.from_numpy(S[None]).to(dev))
    return out_m, out_x, out_v, grids, (sten if coefficients else None)


_D = DCDMConfig  # the defaults


def train_dcdm(
    model: torch.nn.Module,
    A,
    data,
    *,
    shape: Sequence[int] | Sequence[Sequence[int] | None] | None = None,
    epochs: int = _D.epochs,
    batch_size: int = _D.batch_size,
    lr: float = _D.lr,
    seed: int = _D.seed,
    progress: bool = True,
    max_seconds: float | None = _D.max_seconds,
    device: str | None = None,
    balance: bool = False,
    weights: Sequence[float] | None = None,
) -> list[dict]:
    """Train a direction network with the DCDM loss (Adam, cosine learning rate).

    The loop is the :class:`~pdesurrogates.training.Trainer`'s, with :class:`DCDMStep`;
    the defaults are those of :class:`~pdesurrogates.training.DCDMConfig`.

    The grid of the training matrix is known wherever we made it: a
    :class:`~pdesurrogates.solvers.gallery.Problem` or a gallery matrix carries it
    (``A.grid_shape``), and so does a training file of :func:`write_ritz_dataset` (its
    field ``r`` is ``(sample, x, y[, z])``) or a grid-shaped array. ``shape=`` is needed
    only for a bare matrix of your own with flat training vectors, when its grid is not
    a square or cube; a clear error says so.

    One network can be trained on several grid sizes at once: pass lists of matrices and
    training sets (``A=[A64, A128]``, ``data=[X64, X128]``, and, for bare matrices,
    ``shape=[(64, 64), (128, 128)]``). Every batch holds vectors of one size; the batches
    of all sizes are shuffled together, and every training vector counts equally in the
    loss. Training on several sizes keeps a network with level-shared weights from
    fitting the level count of one grid. The entries may also be different matrices of
    one size: a coefficient-aware network (``ConjugateDirectionNet(coefficients=True)``)
    is trained on a mix of problem families this way, and gets each matrix's stencil.

    Parameters
    ----------
    model : torch.nn.Module
        ``(batch, 1, *shape) -> (batch, 1, *shape)``, e.g. ``ConjugateDirectionNet``.
    A : sparse matrix, shape (n, n), gallery Problem, or a list of them
        The training matrix (one per training size).
    data : ndarray (n_samples, n), path to a pdesurrogates-h5 file, or FieldDataset
        Training vectors (field ``"r"`` in a file; its ``valid`` split is used for
        validation); a list of them with one entry per training size.
    shape : tuple of int, or a list of tuples, optional
        Grid shape of the training matrix (one per training size); default: the grid
        ``A`` or ``data`` carries (see above).
    epochs, batch_size, lr, seed
        Optimiser settings; ``seed`` fixes the shuffling.
    progress : bool
        Show a progress bar.
    max_seconds : float, optional
        Wall-clock budget: training stops once it is spent or after ``epochs``,
        whichever comes first, and the cosine schedule follows the fraction of the
        epochs done, or the budget's elapsed fraction once that leads by more than
        5 %, so it decays to its end either way. Training that
        ``epochs`` ends is reproducible (same seed, CPU, one thread); training that the
        budget ends is not.
    device : str, optional
        Default: the model's device.
    balance : bool
        Divide each training matrix's loss by its loss under the initial network (on its
        first 64 training vectors), so that the relative gain on every matrix counts
        alike; unbalanced, the matrices the initial network does worst on dominate.
    weights : sequence of float, optional
        One positive factor per training matrix on its loss (after ``balance``), e.g. to
        give a hard family more weight than the balanced loss does.

    Returns
    -------
    list of dict
        One entry per epoch: ``epoch``, ``loss`` (train), ``valid_loss``, ``seconds``
        and ``lr``; the first also ``initial_valid_loss`` (before training).
    """
    DCDMConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, max_seconds=max_seconds)
    dev = torch.device(device) if device else next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    mats, train, valid, shapes, stencils = _training_sets(model, A, data, shape, dev, dtype)
    has_valid = all(V is not None for V in valid)
    factors = [1.0] * len(mats)
    if weights is not None:
        factors = [float(w) for w in weights]
        if len(factors) != len(mats) or not all(np.isfinite(w) and w > 0 for w in factors):
            raise ValueError(
                f"weights must hold one positive finite number per training matrix "
                f"({len(mats)}); got {list(weights)!r}"
            )
    step = DCDMStep(mats, shapes, stencils)
    if balance:
        with torch.no_grad():
            initial = [float(step.loss(model, (k, X[:64]))[0]) for k, X in enumerate(train)]
        factors = [f / max(v, 1e-12) for f, v in zip(factors, initial, strict=True)]
    if balance or weights is not None:
        step.weights = factors
    trainer = Trainer(
        model,
        step=step,
        lr=lr,
        epochs=epochs,
        scheduler="cosine",
        seed=seed,
        device=dev,
        progress=progress,
        max_time=max_seconds,
        validate_start=has_valid,
        restore_best=False,
    )
    history = trainer.fit(
        _VectorBatches(train, batch_size, seed=seed),
        _VectorBatches(valid, 64, shuffle=False) if has_valid else None,
    )
    model.eval()
    out = []
    for rec in history:
        out.append(
            {
                "epoch": rec["epoch"],
                "loss": rec["train_loss"],
                "valid_loss": rec.get("valid_loss"),
                "seconds": rec["time"],
                "lr": rec["lr"],
            }
        )
    if out:
        out[0]["initial_valid_loss"] = trainer.initial_valid["loss"] if has_valid else None
    return out
