"""DeepONet training on acoustics data: in-memory source fields, random-point steps,
training and evaluation.

:func:`train_deeponet` is the function behind ``pdesurrogates train deeponet``; its
settings are one :class:`~pdesurrogates.training.DeepONetConfig`; the data come from
:func:`pdesurrogates.datasets.generate_acoustics`. Plots are in
:mod:`pdesurrogates.training._acoustics_plots`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pdesurrogates.errors import ConfigError, DatasetError
from pdesurrogates.training._acoustics_plots import plot_field_snapshots, plot_impulse_responses
from pdesurrogates.training._deeponet_config import DeepONetConfig
from pdesurrogates.training._rundir import (
    RUN_FILE,
    ResumeRules,
    new_run_dir,
    read_run_record,
    resume_record,
)

__all__ = [
    "DEEPONET_RULES",
    "FieldPointStep",
    "SourceFields",
    "check_deeponet_model",
    "evaluate_deeponet",
    "impulse_response_scores",
    "load_source_fields",
    "train_deeponet",
]

_AXES = ("x", "y", "z")


# --------------------------------------------------------------------------- training data
class SourceFields(torch.utils.data.Dataset):
    """In-memory dataset of pressure fields and source positions (for DeepONet training).

    Items are ``{"p": Tensor (1, T, n_1, ..., n_D), "params": {"xs": Tensor(()), ...}}``,
    the :class:`~pdesurrogates.datasets.FieldDataset` format (channel-first), held in memory because
    DeepONet training draws a few thousand random points from each field every step.
    """

    def __init__(self, fields: torch.Tensor, sources: torch.Tensor):
        if fields.shape[0] != sources.shape[0]:
            raise ValueError("fields and sources need the same number of samples")
        self.fields_data = fields
        self.sources = sources

    def __len__(self) -> int:
        return self.fields_data.shape[0]

    def __getitem__(self, i):
        params = {f"{a}s": self.sources[i, d] for d, a in enumerate(_AXES[: self.sources.shape[1]])}
        return {"p": self.fields_data[i], "params": params}


def load_source_fields(path, split: str) -> tuple[SourceFields, dict[str, Any]]:
    """Read split ``split`` of an acoustics dataset into memory, with its set-up.

    Returns
    -------
    dataset : SourceFields
    info : dict
        ``coords`` (time, x, ...), ``setup`` (the generator's parameters), ``ir``
        (impulse responses, channel-first with the receivers as channels: (N, R, T)),
        ``indices``.
    """
    from pdesurrogates.datasets import open_dataset

    ds = open_dataset(path)
    try:
        setup = json.loads(ds.attrs.get("source", "") or "{}")
    except ValueError:
        setup = {}
    if not str(setup.get("generator", "")).startswith("acoustics") or "p" not in ds.fields:
        raise DatasetError(
            f"{path}: not an acoustics dataset (needs field 'p' and a source written by "
            "'pdesurrogates generate acoustics1d|2d|3d')"
        )
    splits = ds.splits
    if split not in splits or len(splits[split]) == 0:
        raise DatasetError(
            f"{path}: split {split!r} is missing or empty (splits: {sorted(splits)}); "
            "regenerate with --split giving it a non-zero fraction"
        )
    idx = np.sort(np.asarray(splits[split]))
    dim = len(setup["lengths"])
    sub = ds.subset(idx)  # ds holds every sample: positions are the file's rows
    p = sub.load("p")
    ir = sub.load("ir") if "ir" in ds.fields else None
    src = np.stack([sub.param_values(f"{a}s") for a in _AXES[:dim]], axis=-1)
    coords = {k: np.asarray(v) for k, v in ds.coords.items()}
    info = {"coords": coords, "setup": setup, "ir": ir, "indices": idx, "sources": src}
    return SourceFields(torch.from_numpy(p), torch.from_numpy(src.astype(np.float32))), info


def query_grid(coords: dict, dim: int) -> torch.Tensor:
    """Physical (x..., t) of every field entry, in the field's (time, x, ...) order."""
    axes = [coords["time"]] + [coords[a] for a in _AXES[:dim]]
    mesh = np.meshgrid(*axes, indexing="ij")
    pts = np.stack([m.reshape(-1) for m in mesh[1:]] + [mesh[0].reshape(-1)], axis=-1)
    return torch.from_numpy(pts.astype(np.float32))


class FieldPointStep:
    """``step_fn`` for :class:`~pdesurrogates.training.Trainer`: random (x, t) points.

    In training mode every step draws about ``n_points`` entries of the field, shared by
    the sources of the batch so the trunk runs once per step. For a separable trunk the
    entries are a random sub-grid (``n_points // n_times`` positions x ``n_times``
    times), so the space net runs on the positions and the time net on the times only;
    otherwise they are ``n_points`` independent entries. In evaluation mode a fixed,
    evenly spread subset of ``n_eval`` entries is used.

    Parameters
    ----------
    grid : Tensor, shape (T * N, D+1)
        ``(x..., t)`` of every field entry in the field's (time, x, ...) order.
    dim : int
    n_points, n_eval, n_times : int
    """

    def __init__(
        self,
        grid: torch.Tensor,
        dim: int,
        *,
        n_points: int = DeepONetConfig.n_points,
        n_eval: int = DeepONetConfig.n_eval,
        n_times: int = DeepONetConfig.n_times,
    ):
        self.grid = grid
        self.dim = dim
        self.n_points = int(n_points)
        n = grid.shape[0]
        self.eval_idx = torch.linspace(0, n - 1, min(n, int(n_eval))).round().long()
        times = torch.unique(grid[:, dim])
        self.n_t = len(times)
        self.n_x = n // self.n_t
        self.times = grid[:: self.n_x, dim]
        self.points = grid[: self.n_x, :dim]
        self.n_times = max(1, min(int(n_times), self.n_t, self.n_points))

    def __call__(self, model, batch):
        field = batch["p"]
        s = field.shape[0]
        flat = field.reshape(s, -1)
        src = torch.stack([batch["params"][f"{a}s"] for a in _AXES[: self.dim]], dim=-1)
        branch = model.encode_source(src.to(flat.dtype))
        if model.training and getattr(model, "trunk_kind", "joint") == "separable":
            tt = torch.randperm(self.n_t)[: self.n_times]
            xx = torch.randint(0, self.n_x, (max(1, self.n_points // self.n_times),))
            pred = model.forward_grid(branch, self.points[xx].to(flat), self.times[tt].to(flat))
            target = flat.reshape(s, self.n_t, self.n_x)[:, tt][:, :, xx].transpose(1, 2)
            return pred.reshape(s, -1), target.reshape(s, -1)
        if model.training:
            idx = torch.randint(0, flat.shape[1], (self.n_points,))
        else:
            idx = self.eval_idx
        grid = self.grid.to(flat.device)
        pred = model(branch, grid[idx])
        return pred, flat[:, idx]


# --------------------------------------------------------------------------- training
_SETUP_KEYS = ("lengths", "duration", "c", "fmax", "sigma", "source_bounds")


def check_deeponet_model(model_kwargs: dict) -> None:
    """Raise ConfigError naming the keys of ``model_kwargs`` that DeepONet does not take."""
    import inspect

    from pdesurrogates.surrogates import DeepONet

    allowed = set(inspect.signature(DeepONet).parameters)
    bad = sorted(set(model_kwargs) - allowed)
    if bad:
        raise ConfigError(
            f"unknown DeepONet argument(s) {bad}; training settings are "
            f"{sorted(DeepONetConfig.training_fields())}, model arguments {sorted(allowed)}"
        )


def _build_model(setup: dict, model_kwargs: dict, seed: int):
    from pdesurrogates.surrogates import DeepONet

    kwargs = {k: setup[k] for k in _SETUP_KEYS}
    if setup.get("room", {}).get("kind", "box") != "box":
        kwargs["room"] = {k: v for k, v in setup["room"].items() if k in ("kind", "notch")}
    kwargs.update(model_kwargs)
    with torch.random.fork_rng(devices=[]):  # seeded initialisation, global state untouched
        torch.manual_seed(seed)
        return DeepONet(**kwargs)


def _fit(setup, config: DeepONetConfig, train, valid, out_dir, resume, trainer_kwargs):
    from pdesurrogates.training._ensemble import fit_ensemble
    from pdesurrogates.training._trainer import Trainer

    if config.ensemble > 1:
        return fit_ensemble(
            lambda s: _build_model(setup, config.model, s),
            config.ensemble,
            train,
            valid,
            seed=config.seed,
            out_dir=out_dir,
            resume=resume,
            **trainer_kwargs,
        )
    model = _build_model(setup, config.model, config.seed)
    trainer = Trainer(model, seed=config.seed, out_dir=out_dir, **trainer_kwargs)
    history = trainer.fit(train, valid, resume=resume)
    return trainer.model, [history]


#: How the settings of a DeepONet run's record are named when a resume is refused.
DEEPONET_RULES = ResumeRules(
    keys=("kind", "data", "dim", "n_train", "n_valid", "training"),
    flags={
        "kind": "the model (train deeponet)",
        "data": "--data",
        "dim": "--data (dimension)",
        "n_train": "--data (train sources)",
        "n_valid": "--data (valid sources)",
        **{f"training.training.{k}": f"--{k.replace('_', '-')}"
           for k in ("ensemble", "epochs", "batch_size", "lr", "seed")},
        "training.training.n_points": "--points",
        "training.training.max_time": "--max-seconds",
        **{f"training.model.{k}": f"--{k.replace('_', '-')}"
           for k in ("width", "depth", "latent", "architecture", "activation", "encoding",
                     "trunk", "rank", "source_input")},
    },
    tables={"training.model.": "[model] ", "training.training.": "[training] "},
    training="training.training.",
)  # fmt: skip


def deeponet_run_record(data, config: DeepONetConfig, n_train: int, n_valid: int) -> dict:
    """The settings part of a DeepONet run's ``run.json`` (what ``predict``/``evaluate``
    read, and a resume is checked against)."""
    from pdesurrogates.datasets import open_dataset

    setup = json.loads(open_dataset(data).attrs.get("source", "") or "{}")
    return {
        "kind": "deeponet",
        "data": str(Path(data).resolve()),
        "input": ["source"],
        "target": "p",
        "dim": len(setup.get("lengths", ())) or None,
        "ensemble": config.ensemble,
        "n_train": n_train,
        "n_valid": n_valid,
        "training": config.to_dict(),
    }


def train_deeponet(
    data,
    out_dir,
    config: DeepONetConfig | None = None,
    *,
    progress: bool = True,
    evaluate: bool = True,
    resume: bool = False,
    **overrides,
):
    """Train a DeepONet (or a deep ensemble) on an acoustics file into a run directory.

    Uses :class:`pdesurrogates.training.Trainer` with :class:`FieldPointStep`, the loss,
    schedule and gradient clipping of ``config``; the model is saved to
    ``out_dir/model`` and the run recorded in ``out_dir/run.json`` (which ``predict`` and
    ``evaluate`` read). With ``evaluate=True`` the test split is scored by
    :func:`evaluate_deeponet` (report and plots in ``out_dir``).

    A directory that already holds a run is refused (:func:`new_run_dir`) unless
    ``resume=True`` continues it: then ``config=None`` means the run's own settings, and
    every setting asked for must be the run's, except those a resumed run may change
    (:meth:`ResumeRules.may_change`); a differing one is refused naming it, before
    anything is written. ``run.json`` records the settings used and each resume.

    Parameters
    ----------
    data : path
        Acoustics dataset (``pdesurrogates generate acoustics1d|acoustics2d|acoustics3d``).
    out_dir : path
        Run directory (new, or the run to continue with ``resume=True``).
    config : DeepONetConfig, optional
        All settings (default ``DeepONetConfig()``; on resume, the run's).
    progress, evaluate, resume : bool
        Show progress; score the test split; continue the run in ``out_dir``.
    **overrides
        Changes to ``config``: its training fields by name (``epochs=...``), anything
        else a :class:`~pdesurrogates.surrogates.DeepONet` argument (``width=...``).

    Returns
    -------
    model : DeepONet or Ensemble
    summary : dict
        Training time (s), the histories, the configuration and, if evaluated, the test
        metrics.
    """
    check_deeponet_model((config or DeepONetConfig()).with_overrides(**overrides).model)
    with new_run_dir(out_dir, resume=resume, inputs=[data]) as out_dir:
        old = read_run_record(out_dir) if resume else None
        resume_record(out_dir, old, {"kind": "deeponet"}, DEEPONET_RULES)
        if config is None and old is not None:  # continue with the run's own settings
            config = DeepONetConfig.from_dict(old["training"], source=str(out_dir / RUN_FILE))
        config = (config or DeepONetConfig()).with_overrides(**overrides)
        return _train_in(data, out_dir, config, old, progress, evaluate, resume)


def _train_in(data, out_dir, config, old, progress, evaluate, resume):
    from pdesurrogates.io import atomic_write_text, save

    train, info = load_source_fields(data, "train")
    try:
        valid, _ = load_source_fields(data, "valid")
    except DatasetError:
        valid = None
    setup = info["setup"]
    dim = len(setup["lengths"])
    # the rate this run uses, recorded in summary.json / run.json (None: by dimension)
    config = config.with_overrides(lr=config.peak_lr(dim))
    record = deeponet_run_record(data, config, len(train), 0 if valid is None else len(valid))
    record = resume_record(out_dir, old, record, DEEPONET_RULES, members=config.ensemble)
    if not (resume and old is None):
        # recorded before training, so an interrupted run is checked on resume; a run
        # without a record (an older version's, interrupted) gets one only once its
        # checkpoint has accepted these settings, so a wrong guess never becomes the record
        atomic_write_text(out_dir / RUN_FILE, json.dumps(record, indent=2, default=float))
    step = FieldPointStep(
        query_grid(info["coords"], dim),
        dim,
        n_points=config.n_points,
        n_eval=config.n_eval,
        n_times=config.n_times,
    )
    trainer_kwargs = {
        **config.trainer_kwargs(len(train)),
        "step_fn": step,
        "progress": progress,
    }
    t0 = time.perf_counter()
    # the random (x, t) points come from torch's global generator, which the Trainer saves
    # in its checkpoints (exact resume); seed it for this run only and restore it after
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model, histories = _fit(setup, config, train, valid, out_dir, resume, trainer_kwargs)
    train_seconds = time.perf_counter() - t0
    model.eval()
    summary: dict[str, Any] = {
        "train_seconds": train_seconds,
        "n_train": len(train),
        "epochs_run": [len(h) for h in histories],
        "final_train_loss": [h[-1]["train_loss"] if h else None for h in histories],
        "config": config.to_dict(),
    }
    save(model, out_dir / "model", metadata={"data": str(data), "training": summary})
    if evaluate:
        summary["test"] = evaluate_deeponet(model, data, out_dir=out_dir)
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2, default=float))
    record["train_seconds"] = train_seconds
    if "test" in summary:
        record["test"] = summary["test"]
    atomic_write_text(out_dir / RUN_FILE, json.dumps(record, indent=2, default=float))
    return model, summary


# --------------------------------------------------------------------------- evaluation
def _members(model):
    return list(model.members) if hasattr(model, "members") else [model]


def predict_deeponet_members(model, sources: np.ndarray, grid: torch.Tensor, chunk: int = 65536):
    """Per-member predictions (K, N, Q) on the whole grid, trunk evaluated in chunks."""
    outs = []
    with torch.no_grad():
        for m in _members(model):
            b = m.encode_source(torch.as_tensor(sources, dtype=torch.float32))
            if getattr(m, "trunk_kind", "joint") == "separable":
                # the grid is (time, x...) in time-major order: space x time product
                dim = grid.shape[1] - 1
                n_t = len(torch.unique(grid[:, dim]))
                n_x = grid.shape[0] // n_t
                pred = m.forward_grid(b, grid[:n_x, :dim], grid[::n_x, dim])
                outs.append(pred.transpose(1, 2).reshape(len(b), -1))
                continue
            parts = [m(b, grid[i : i + chunk]) for i in range(0, grid.shape[0], chunk)]
            outs.append(torch.cat(parts, dim=1))
    return torch.stack(outs)


def _impulse_scores(model, sources, setup, info) -> tuple[dict, np.ndarray, np.ndarray]:
    """Paper-style impulse-response errors at the dataset's receivers.

    Returns the scores, the reference and the (ensemble-mean) predicted responses,
    both ``(N, R, T)``.
    """
    rec = np.asarray(setup["receivers"])
    times = info["coords"]["time"]
    ir_ref = info["ir"]  # (N, R, T): receivers are the channels
    ir_pred = np.mean([m.impulse_response(sources, rec, times) for m in _members(model)], axis=0)
    return impulse_response_scores(ir_pred, ir_ref, times), ir_ref, ir_pred


def impulse_response_scores(predicted, reference, times) -> dict:
    """Paper-style and room-acoustic errors of impulse responses ``(..., T)`` (Pa).

    ``peak_normalised_rmse`` (RMSE over time divided by the reference peak of each
    response, mean over responses) and its max, ``ir_rel_l2``, ``ir_rmse_pa`` (RMSE in
    Pa: the sources have a 1 Pa peak), and the Schroeder decay-curve and EDT errors of
    :func:`pdesurrogates.solvers.reference.decay_errors` (``edc_*_db``, ``edt_*``).
    """
    from pdesurrogates.solvers.reference import decay_errors

    pred, ref = np.asarray(predicted, dtype=float), np.asarray(reference, dtype=float)
    peak = np.abs(ref).max(axis=-1, keepdims=True)
    pn_rmse = np.sqrt(np.mean(((pred - ref) / peak) ** 2, axis=-1))
    ir_rel = np.linalg.norm(pred - ref, axis=-1) / np.linalg.norm(ref, axis=-1)
    return {
        "peak_normalised_rmse": float(pn_rmse.mean()),
        "peak_normalised_rmse_max": float(pn_rmse.max()),
        "ir_rel_l2": float(ir_rel.mean()),
        "ir_rmse_pa": float(np.sqrt(np.mean((pred - ref) ** 2))),
        **decay_errors(pred, ref, times),
    }


def evaluate_deeponet(model, data, *, split: str = "test", out_dir=None, n_plots: int = 2):
    """Score a trained DeepONet (or ensemble) on a split with :func:`pdesurrogates.uq.evaluate`.

    Fields are compared on the whole stored grid; impulse responses at the dataset's
    receivers are compared paper-style: RMSE of the responses normalised by the
    reference peak at each receiver. With ``out_dir``, writes ``report.json`` and plots
    (``impulse_responses.png``, ``field_snapshots.png``).

    Returns
    -------
    dict
        ``rel_l2`` (mean over sources, whole field), ``peak_normalised_rmse``,
        ``ir_rel_l2``, ``rmse_pa`` and the evaluator's pooled scalars.
    """
    from pdesurrogates.uq import Prediction, evaluate

    ds, info = load_source_fields(data, split)
    setup = info["setup"]
    grid = query_grid(info["coords"], len(setup["lengths"]))
    sources = ds.sources.numpy().astype(np.float64)
    truth = ds.fields_data.reshape(len(ds), -1)
    samples = predict_deeponet_members(model, sources, grid)
    mean = samples.mean(0)
    pred = Prediction(mean) if samples.shape[0] == 1 else Prediction(mean, samples=samples)
    report = evaluate(pred, truth, meta={"model": "DeepONet", "dataset": str(data), "split": split})
    ir_scores, ir_ref, ir_pred = _impulse_scores(model, sources, setup, info)
    result = {
        "n_sources": len(ds),
        "rel_l2": float(np.mean(report.per_sample["rel_l2"])),
        **ir_scores,
        "rmse_pa": float(report.scalars.get("rmse", float("nan"))),
        "uq": {k: float(v) for k, v in report.scalars.items() if isinstance(v, (int, float))},
    }
    if out_dir is not None:
        field = mean[0].numpy()
        _write_report(Path(out_dir), result, report, info, ds, field, ir_ref, ir_pred, n_plots)
    return result


def _write_report(out_dir, result, report, info, ds, field, ir_ref, ir_pred, n_plots) -> None:
    """``report.json`` and the plots of the first test source."""
    from pdesurrogates.io import atomic_write_text

    full = {"summary": result, "report": report.to_dict()}
    atomic_write_text(out_dir / "report.json", json.dumps(full, indent=2, default=float))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    coords, setup = info["coords"], info["setup"]
    times = coords["time"]
    rec = np.asarray(setup["receivers"])
    source = ds.sources[0].numpy().astype(np.float64)
    dim = len(setup["lengths"])
    shape = (len(times), *[len(coords[a]) for a in _AXES[:dim]])
    k = len(times)
    chosen = [k // 8, k // 3, k - 1][: max(1, n_plots + 1)]
    reference = ds.fields_data[0, 0].numpy()  # the one channel of sample 0: (T, ...)
    if dim == 3:
        from pdesurrogates.training import _acoustics3d_plots as plots3d

        figs = {
            "impulse_responses.png": plots3d.plot_room_responses(
                times, ir_ref[0], ir_pred[0], rec, source=source
            ),
            "field_snapshots.png": plots3d.plot_field_slices(
                coords, reference, field.reshape(shape), chosen, at=float(source[2])
            ),
            "decay_curves.png": plots3d.plot_decay_curves(times, ir_ref[0], ir_pred[0], rec),
        }
    else:
        figs = {
            "impulse_responses.png": plot_impulse_responses(
                times, ir_ref[0], ir_pred[0], rec, source=source
            ),
            "field_snapshots.png": plot_field_snapshots(
                coords,
                reference,
                field.reshape(shape),
                chosen,
                sample=int(info["indices"][0]),
                split=report.meta.get("split"),
            ),
        }
    for name, fig in figs.items():
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)
