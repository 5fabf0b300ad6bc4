"""Acoustics commands: ``generate acoustics1d|acoustics2d`` and ``train deeponet``.

The Python functions behind them (:func:`generate_acoustics`, :func:`train_deeponet`,
:func:`evaluate_deeponet`) are usable directly; the commands are thin wrappers.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import typer

from pdesurrogates.cli._app import generate_app, train_app
from pdesurrogates.cli._data import _parse_split, check_workers
from pdesurrogates.errors import DatasetError

__all__ = [
    "SourceFields",
    "evaluate_deeponet",
    "generate_acoustics",
    "load_source_fields",
    "plot_field_snapshots",
    "plot_impulse_responses",
    "train_deeponet",
]

_AXES = ("x", "y", "z")


# --------------------------------------------------------------------------- generation
def generate_acoustics(
    output,
    *,
    dim: int,
    n_sources: int,
    fmax: float = 500.0,
    duration: float = 0.05,
    size=None,
    margin: float | None = None,
    receivers=None,
    resolution=None,
    ppw: float = 20.0,
    n_times: int | None = None,
    seed: int = 0,
    workers: int = 1,
    scheduler: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    split=(0.8, 0.1, 0.1),
    compression: str | None = None,
) -> Path:
    """Simulate ``n_sources`` Gaussian-pulse sources by FDTD into a dataset file.

    Each sample holds the pressure field ``p`` (time, x[, y]) on the stored grid and the
    impulse responses ``ir`` (time, component = receiver) at the receivers; the source
    position is in ``/params`` (``xs``[, ``ys``], uniform within the margin). See
    :func:`pdesurrogates.solvers.reference.acoustics_setup` for the grid choices.
    """
    from pdesurrogates.datasets import generate_dataset
    from pdesurrogates.solvers.reference import (
        acoustics_dataset_layout,
        acoustics_sample,
        acoustics_setup,
    )

    if dim not in (1, 2, 3):
        raise ValueError(f"dim must be 1, 2 or 3; got {dim!r}")
    if size is None:
        size = [2.0] * dim
    size = [float(v) for v in np.atleast_1d(size)]
    if len(size) == 1 and dim > 1:
        size = size * dim
    if len(size) != dim:
        raise ValueError(f"size must give {dim} room dimensions (m); got {size}")
    setup = acoustics_setup(
        size,
        fmax=fmax,
        duration=duration,
        margin=margin,
        receivers=receivers,
        resolution=resolution,
        ppw=ppw,
        n_times=n_times,
    )
    layout = acoustics_dataset_layout(setup)
    source = {"generator": f"acoustics{dim}d", "solver": "fdtd-leapfrog", "seed": seed}
    source.update(setup.to_dict())
    return generate_dataset(
        output,
        functools.partial(acoustics_sample, setup=setup),
        n_samples=n_sources,
        seed=seed,
        workers=workers,
        scheduler=scheduler,
        resume=resume,
        overwrite=overwrite,
        progress=progress,
        split=split,
        compression=compression,
        source=source,
        **layout,
    )


def _parse_floats(text: str | None, name: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise typer.BadParameter(f"{name} must be comma-separated numbers, got {text!r}") from None


def _parse_receivers(text: str | None, dim: int):
    if text is None:
        return None
    try:
        rec = [[float(v) for v in part.split(",")] for part in text.split(";") if part.strip()]
    except ValueError:
        rec = []
    if not rec or any(len(r) != dim for r in rec):
        raise typer.BadParameter(
            f"--receivers must be ';'-separated points of {dim} comma-separated coordinates "
            f"(m), e.g. {'0.5,0.5;1.5,0.4' if dim == 2 else '0.3;1.7'}; got {text!r}"
        )
    return rec


def _generate_command(dim: int):
    def command(
        output: Path = typer.Option(..., "-o", "--output", help="Output file (.h5)."),
        n_sources: int = typer.Option(200, "--n-sources", "-n", min=1, help="Source positions."),
        fmax: float = typer.Option(500.0, "--fmax", help="Maximum frequency (Hz)."),
        duration: float = typer.Option(0.05, "--duration", "-T", help="Response length (s)."),
        size: str = typer.Option(
            None, "--size", help="Room dimensions in m, comma-separated (default 2 m each)."
        ),
        margin: float = typer.Option(
            None, "--margin", help="Minimum source distance from the walls (m)."
        ),
        receivers: str = typer.Option(
            None, "--receivers", help="Receiver points 'x,y;x,y;...' in m (default: 5 points)."
        ),
        resolution: int = typer.Option(
            None, "--resolution", "-r", help="Cells per axis of the stored field."
        ),
        ppw: float = typer.Option(20.0, "--ppw", help="Solver points per wavelength at fmax."),
        n_times: int = typer.Option(None, "--n-times", help="Time samples (default 4 fmax T + 1)."),
        seed: int = typer.Option(0, "--seed", help="Base seed; source i uses (seed, i)."),
        workers: int = typer.Option(1, "--workers", "-w", help="Worker processes (dask)."),
        scheduler: str = typer.Option(
            None, "--scheduler", help="Address of an existing dask scheduler."
        ),
        resume: bool = typer.Option(False, "--resume", help="Finish an interrupted run."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing file."),
        split: str = typer.Option("0.8,0.1,0.1", "--split", help="Train,valid,test fractions."),
        compression: str = typer.Option(None, "--compression", help="None, lzf or gzip."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    ) -> None:
        check_workers(workers, scheduler)
        path = generate_acoustics(
            output,
            dim=dim,
            n_sources=n_sources,
            fmax=fmax,
            duration=duration,
            size=_parse_floats(size, "--size"),
            margin=margin,
            receivers=_parse_receivers(receivers, dim),
            resolution=resolution,
            ppw=ppw,
            n_times=n_times,
            seed=seed,
            workers=workers,
            scheduler=scheduler,
            resume=resume,
            overwrite=overwrite,
            progress=not quiet,
            split=_parse_split(split),
            compression=compression,
        )
        typer.echo(f"wrote {path}")

    room = "tube [0, L]" if dim == 1 else "room [0, Lx] x [0, Ly]"
    command.__doc__ = (
        f"Generate {dim}D acoustics data: Gaussian pulses in a rigid {room}, solved by FDTD.\n\n"
        "Each sample is one source position (uniform, --margin from the walls, stored in "
        "/params) with the pressure field p(time, x...) and the impulse responses "
        "ir(time, receiver). The solver runs at --ppw points per wavelength (a CFL and "
        "resolution check runs first); --workers starts a dask cluster."
    )
    return command


generate_app.command("acoustics1d")(_generate_command(1))
generate_app.command("acoustics2d")(_generate_command(2))


# --------------------------------------------------------------------------- training data
class SourceFields(torch.utils.data.Dataset):
    """In-memory dataset of pressure fields and source positions (for DeepONet training).

    Items are ``{"p": Tensor (T, n_1, ..., n_D), "params": {"xs": Tensor(()), ...}}``,
    the :class:`~pdesurrogates.datasets.FieldDataset` format, held in memory because
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
        (impulse responses, (N, T, R)), ``indices``.
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
            "'pdesurrogates generate acoustics1d|acoustics2d')"
        )
    splits = ds.splits
    if split not in splits or len(splits[split]) == 0:
        raise DatasetError(
            f"{path}: split {split!r} is missing or empty (splits: {sorted(splits)}); "
            "regenerate with --split giving it a non-zero fraction"
        )
    idx = np.sort(np.asarray(splits[split]))
    dim = len(setup["lengths"])
    import h5py

    with h5py.File(ds.path, "r") as f:
        p = np.asarray(f["fields/p"][idx])
        ir = np.asarray(f["fields/ir"][idx]) if "ir" in f["fields"] else None
        src = np.stack([np.asarray(f[f"params/{a}s"][idx]) for a in _AXES[:dim]], axis=-1)
    coords = {k: np.asarray(v) for k, v in ds.coords.items()}
    info = {"coords": coords, "setup": setup, "ir": ir, "indices": idx, "sources": src}
    return SourceFields(torch.from_numpy(p), torch.from_numpy(src.astype(np.float32))), info


def _query_grid(coords: dict, dim: int) -> torch.Tensor:
    """Physical (x..., t) of every field entry, in the field's (time, x, ...) order."""
    axes = [coords["time"]] + [coords[a] for a in _AXES[:dim]]
    mesh = np.meshgrid(*axes, indexing="ij")
    pts = np.stack([m.reshape(-1) for m in mesh[1:]] + [mesh[0].reshape(-1)], axis=-1)
    return torch.from_numpy(pts.astype(np.float32))


class FieldPointStep:
    """``step_fn`` for :class:`~pdesurrogates.training.Trainer`: random (x, t) points.

    In training mode every step draws ``n_points`` entries of the field (shared by the
    sources of the batch, so the trunk runs once per step); in evaluation mode a fixed,
    evenly spread subset of ``n_eval`` entries is used.
    """

    def __init__(self, grid: torch.Tensor, dim: int, *, n_points: int = 2048, n_eval: int = 4096):
        self.grid = grid
        self.dim = dim
        self.n_points = int(n_points)
        n = grid.shape[0]
        self.eval_idx = torch.linspace(0, n - 1, min(n, int(n_eval))).round().long()

    def __call__(self, model, batch):
        field = batch["p"]
        s = field.shape[0]
        flat = field.reshape(s, -1)
        src = torch.stack([batch["params"][f"{a}s"] for a in _AXES[: self.dim]], dim=-1)
        if model.training:
            idx = torch.randint(0, flat.shape[1], (self.n_points,))
        else:
            idx = self.eval_idx
        grid = self.grid.to(flat.device)
        pred = model(model.encode_source(src.to(flat.dtype)), grid[idx])
        return pred, flat[:, idx]


# --------------------------------------------------------------------------- training
def _build_model(setup: dict, model_kwargs: dict, seed: int):
    from pdesurrogates.surrogates import DeepONet

    kwargs = {
        "lengths": setup["lengths"],
        "duration": setup["duration"],
        "c": setup["c"],
        "fmax": setup["fmax"],
        "sigma": setup["sigma"],
        "source_bounds": setup["source_bounds"],
    }
    kwargs.update(model_kwargs)
    with torch.random.fork_rng(devices=[]):  # seeded initialisation, global state untouched
        torch.manual_seed(seed)
        return DeepONet(**kwargs)


def _fit(setup, model_kwargs, ensemble, train, valid, seed, out_dir, resume, trainer_kwargs):
    from pdesurrogates.training import Trainer, fit_ensemble

    if ensemble > 1:
        return fit_ensemble(
            lambda s: _build_model(setup, model_kwargs, s),
            ensemble,
            train,
            valid,
            seed=seed,
            out_dir=out_dir,
            resume=resume,
            **trainer_kwargs,
        )
    model = _build_model(setup, model_kwargs, seed)
    trainer = Trainer(model, seed=seed, out_dir=out_dir, **trainer_kwargs)
    history = trainer.fit(train, valid, resume=resume)
    return trainer.model, [history]


def train_deeponet(
    data,
    out_dir,
    *,
    ensemble: int = 1,
    epochs: int = 300,
    batch_size: int = 16,
    n_points: int = 2048,
    lr: float = 2e-3,
    seed: int = 0,
    max_time: float | None = None,
    progress: bool = True,
    evaluate: bool = True,
    resume: bool = False,
    **model_kwargs,
):
    """Train a DeepONet (or a deep ensemble of ``ensemble`` members) on an acoustics file.

    Uses :class:`pdesurrogates.training.Trainer` with :class:`FieldPointStep`, MSE loss,
    one-cycle schedule and gradient clipping; the model is saved to ``out_dir/model``.
    With ``evaluate=True`` the test split is scored by :func:`evaluate_deeponet` (report
    and plots in ``out_dir``).

    Returns
    -------
    model : DeepONet or Ensemble
    summary : dict
        Training time (s), the histories and, if evaluated, the test metrics.
    """
    from pdesurrogates.io import save

    out_dir = Path(out_dir)
    train, info = load_source_fields(data, "train")
    try:
        valid, _ = load_source_fields(data, "valid")
    except DatasetError:
        valid = None
    setup = info["setup"]
    dim = len(setup["lengths"])
    step = FieldPointStep(_query_grid(info["coords"], dim), dim, n_points=n_points)
    trainer_kwargs = {
        "loss": "mse",
        "lr": lr,
        "epochs": epochs,
        "batch_size": min(batch_size, len(train)),
        "scheduler": "onecycle",
        "step_fn": step,
        "progress": progress,
        "grad_clip": 1.0,
        "metrics": ("rel_l2",),
        "spatial_dims": 1,
        "max_time": max_time,
        "pct_start": 0.1,
    }
    t0 = time.perf_counter()
    # the random (x, t) points come from torch's global generator, which the Trainer saves
    # in its checkpoints (exact resume); seed it for this run only and restore it after
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model, histories = _fit(
            setup, model_kwargs, ensemble, train, valid, seed, out_dir, resume, trainer_kwargs
        )
    train_seconds = time.perf_counter() - t0
    model.eval()
    summary: dict[str, Any] = {
        "train_seconds": train_seconds,
        "n_train": len(train),
        "epochs_run": [len(h) for h in histories],
        "final_train_loss": [h[-1]["train_loss"] if h else None for h in histories],
    }
    save(model, out_dir / "model", metadata={"data": str(data), "training": summary})
    if evaluate:
        summary["test"] = evaluate_deeponet(model, data, out_dir=out_dir)
    from pdesurrogates.io import atomic_write_text

    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2, default=float))
    return model, summary


# --------------------------------------------------------------------------- evaluation
def _members(model):
    return list(model.members) if hasattr(model, "members") else [model]


def _predict_fields(model, sources: np.ndarray, grid: torch.Tensor, chunk: int = 65536):
    """Per-member predictions (K, N, Q) on the whole grid, trunk evaluated in chunks."""
    outs = []
    with torch.no_grad():
        for m in _members(model):
            b = m.encode_source(torch.as_tensor(sources, dtype=torch.float32))
            parts = [m(b, grid[i : i + chunk]) for i in range(0, grid.shape[0], chunk)]
            outs.append(torch.cat(parts, dim=1))
    return torch.stack(outs)


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
    dim = len(setup["lengths"])
    grid = _query_grid(info["coords"], dim)
    sources = ds.sources.numpy().astype(np.float64)
    truth = ds.fields_data.reshape(len(ds), -1)
    samples = _predict_fields(model, sources, grid)
    mean = samples.mean(0)
    pred = Prediction(mean) if samples.shape[0] == 1 else Prediction(mean, samples=samples)
    report = evaluate(pred, truth, meta={"model": "DeepONet", "dataset": str(data), "split": split})

    rec = np.asarray(setup["receivers"])
    times = info["coords"]["time"]
    ir_ref = np.transpose(info["ir"], (0, 2, 1))  # (N, R, T)
    ir_pred = np.mean(
        [m.impulse_response(sources, rec, times) for m in _members(model)], axis=0
    )  # (N, R, T)
    peak = np.abs(ir_ref).max(axis=-1, keepdims=True)
    pn_rmse = np.sqrt(np.mean(((ir_pred - ir_ref) / peak) ** 2, axis=-1))  # (N, R)
    ir_rel = np.linalg.norm(ir_pred - ir_ref, axis=-1) / np.linalg.norm(ir_ref, axis=-1)
    result = {
        "n_sources": len(ds),
        "rel_l2": float(np.mean(report.per_sample["rel_l2"])),
        "peak_normalised_rmse": float(pn_rmse.mean()),
        "peak_normalised_rmse_max": float(pn_rmse.max()),
        "ir_rel_l2": float(ir_rel.mean()),
        "rmse_pa": float(report.scalars.get("rmse", float("nan"))),
        "uq": {k: float(v) for k, v in report.scalars.items() if isinstance(v, (int, float))},
    }
    if out_dir is not None:
        from pdesurrogates.io import atomic_write_text

        out_dir = Path(out_dir)
        full = {"summary": result, "report": report.to_dict()}
        atomic_write_text(out_dir / "report.json", json.dumps(full, indent=2, default=float))
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig = plot_impulse_responses(times, ir_ref[0], ir_pred[0], rec, source=sources[0])
        fig.savefig(out_dir / "impulse_responses.png", dpi=110)
        plt.close(fig)
        shape = (len(times), *[len(info["coords"][a]) for a in _AXES[:dim]])
        k = len(times)
        chosen = [k // 8, k // 3, k - 1][: max(1, n_plots + 1)]
        fig = plot_field_snapshots(
            info["coords"],
            ds.fields_data[0].numpy(),
            samples.mean(0)[0].reshape(shape).numpy(),
            chosen,
        )
        fig.savefig(out_dir / "field_snapshots.png", dpi=110)
        plt.close(fig)
    return result


def plot_impulse_responses(times, reference, predicted, receivers, *, source=None):
    """Predicted vs reference impulse responses, one panel per receiver.

    Parameters
    ----------
    times : (T,) array, s
    reference, predicted : (R, T) arrays, Pa
    receivers : (R, D) array, m

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    r = len(receivers)
    fig, axes = plt.subplots(r, 1, figsize=(7, 1.6 * r + 0.6), sharex=True, squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        ax.plot(1e3 * np.asarray(times), reference[i], "k-", lw=1.2, label="reference (FDTD)")
        ax.plot(1e3 * np.asarray(times), predicted[i], "C1--", lw=1.2, label="DeepONet")
        ax.set_ylabel("p (Pa)")
        pos = ", ".join(f"{v:.2f}" for v in np.atleast_1d(receivers[i]))
        ax.set_title(f"receiver ({pos}) m", fontsize=9)
    axes[-1, 0].set_xlabel("time (ms)")
    axes[0, 0].legend(fontsize=8, loc="upper right")
    if source is not None:
        src = ", ".join(f"{v:.2f}" for v in np.atleast_1d(source))
        fig.suptitle(f"impulse responses, source at ({src}) m", fontsize=10)
    fig.tight_layout()
    return fig


def plot_field_snapshots(coords, reference, predicted, time_indices):
    """Reference, predicted and error fields at chosen times (1D: curves; 2D: images).

    Parameters
    ----------
    coords : dict with "time", "x"[, "y"]
    reference, predicted : arrays of shape (T, n_x[, n_y]), Pa
    time_indices : sequence of int

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    times = np.asarray(coords["time"])
    n = len(time_indices)
    if reference.ndim == 2:
        fig, axes = plt.subplots(1, n, figsize=(4 * n, 3), squeeze=False)
        for ax, k in zip(axes[0], time_indices, strict=True):
            ax.plot(coords["x"], reference[k], "k-", label="reference")
            ax.plot(coords["x"], predicted[k], "C1--", label="DeepONet")
            ax.set_title(f"t = {1e3 * times[k]:.1f} ms", fontsize=9)
            ax.set_xlabel("x (m)")
        axes[0, 0].set_ylabel("p (Pa)")
        axes[0, 0].legend(fontsize=8)
        fig.tight_layout()
        return fig
    fig, axes = plt.subplots(3, n, figsize=(3.3 * n, 9), squeeze=False)
    ext = [coords["x"][0], coords["x"][-1], coords["y"][0], coords["y"][-1]]
    for j, k in enumerate(time_indices):
        vmax = float(np.abs(reference[k]).max()) or 1.0
        panels = (
            (reference[k], "reference"),
            (predicted[k], "DeepONet"),
            (predicted[k] - reference[k], "error"),
        )
        for i, (img, name) in enumerate(panels):
            im = axes[i, j].imshow(
                img.T, origin="lower", extent=ext, cmap="RdBu_r", vmin=-vmax, vmax=vmax
            )
            axes[i, j].set_title(f"{name}, t = {1e3 * times[k]:.1f} ms", fontsize=9)
            fig.colorbar(im, ax=axes[i, j], shrink=0.8)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- command
@train_app.command("deeponet")
def train_deeponet_cmd(
    data: Path = typer.Option(..., "--data", "-d", help="Acoustics dataset (.h5)."),
    output: Path = typer.Option(..., "-o", "--output", help="Run directory, e.g. runs/NAME."),
    ensemble: int = typer.Option(1, "--ensemble", "-k", min=1, help="Deep-ensemble members."),
    epochs: int = typer.Option(300, "--epochs", min=1, help="Epochs (passes over sources)."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Sources per step."),
    points: int = typer.Option(2048, "--points", min=1, help="(x, t) points per step."),
    lr: float = typer.Option(2e-3, "--lr", help="Peak learning rate."),
    width: int = typer.Option(128, "--width", help="Hidden width of the trunk and branch."),
    depth: int = typer.Option(3, "--depth", help="Hidden layers of the trunk and branch."),
    latent: int = typer.Option(128, "--latent", "-p", help="Latent width p."),
    architecture: str = typer.Option("modified", "--architecture", help="modified or mlp."),
    activation: str = typer.Option("tanh", "--activation", help="sin, tanh, gelu, silu, relu."),
    encoding: str = typer.Option(
        "periodic", "--encoding", help="Trunk encoding: periodic, fourier, random or none."
    ),
    source_input: str = typer.Option(
        "pulse", "--source-input", help="Branch input: pulse (sampled) or coordinates."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of initialisation and data order."),
    max_time: float = typer.Option(
        None,
        "--max-time",
        help="Wall-clock budget (s) per member; the learning-rate schedule follows it and "
        "--epochs becomes an upper bound.",
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run."),
    no_eval: bool = typer.Option(False, "--no-eval", help="Skip the test-split evaluation."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train a DeepONet (source -> pressure p(x, t)) on an acoustics dataset.

    Writes OUTPUT/model (pdesurrogates.load), metrics.jsonl, checkpoints, and, unless
    --no-eval, report.json with the test-split scores (whole-field relative L2, peak-
    normalised RMSE of the impulse responses) and plots of predicted vs reference
    impulse responses and fields. --ensemble K trains K members (seeds seed..seed+K-1).
    """
    if not Path(data).is_file():
        raise DatasetError(
            f"{data}: no such dataset file; create one with "
            "'pdesurrogates generate acoustics2d -o FILE'"
        )
    _model, summary = train_deeponet(
        data,
        output,
        ensemble=ensemble,
        epochs=epochs,
        batch_size=batch_size,
        n_points=points,
        lr=lr,
        seed=seed,
        max_time=max_time,
        progress=not quiet,
        evaluate=not no_eval,
        resume=resume,
        width=width,
        depth=depth,
        latent=latent,
        architecture=architecture,
        activation=activation,
        encoding=encoding,
        source_input=source_input,
    )
    msg = f"trained in {summary['train_seconds']:.1f} s; model in {Path(output) / 'model'}"
    if "test" in summary:
        t = summary["test"]
        msg += (
            f"\ntest: field rel L2 {t['rel_l2']:.4f}, impulse-response peak-normalised RMSE "
            f"{t['peak_normalised_rmse']:.4f} ({t['n_sources']} sources)"
        )
    typer.echo(msg)
