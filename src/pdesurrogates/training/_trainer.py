"""The training loop: Adam + schedule, early stopping, checkpoints, resume, DDP.

A :class:`Trainer` fits any ``nn.Module`` on map-style datasets of dict samples (the
:class:`pdesurrogates.datasets.FieldDataset` format). What a batch means is decided by
``step_fn(model, batch) -> (prediction, target)``; the default feeds the field(s)
``input_key`` to the model and compares with ``target_key``.

Reproducibility: the shuffling of epoch ``e`` depends only on ``(seed, e)``, and the
checkpoint written after every epoch holds the weights, optimiser and scheduler state, the
global torch RNG state, the best weights and the history, so a run killed at any point and
restarted with ``resume=True`` ends with the same weights as an uninterrupted run (bit for
bit on CPU with the same thread count).
"""

from __future__ import annotations

import copy
import io
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from pdesurrogates.errors import CheckpointError, TrainingError
from pdesurrogates.io import atomic_write_bytes, atomic_write_text, model_spec, save
from pdesurrogates.training import _distributed
from pdesurrogates.training._losses import get_loss, rel_h1, rel_l2

__all__ = ["Trainer", "default_step", "fields_to_channels"]

CHECKPOINT_FILE = "checkpoint.pt"
METRICS_FILE = "metrics.jsonl"
MODEL_DIR = "model"
CHECKPOINT_FORMAT = "pdesurrogates-checkpoint"

_SCHEDULERS = ("onecycle", "cosine", None)


def fields_to_channels(
    batch: Mapping[str, Any], keys: str | Sequence[str], component: Mapping[str, bool]
) -> torch.Tensor:
    """Stack batched fields channel-first: ``(B, X, Y)`` -> ``(B, 1, X, Y)``,
    ``(B, X, Y, C)`` with a trailing ``component`` axis -> ``(B, C, X, Y)``; several keys
    are concatenated along the channel axis."""
    if isinstance(keys, str):
        keys = [keys]
    parts = []
    for k in keys:
        if k not in batch:
            raise TrainingError(
                f"batch has no field {k!r} (fields: {sorted(x for x in batch if x != 'params')}); "
                "set input_key/target_key to field names of the dataset"
            )
        t = batch[k]
        if component.get(k, False):
            t = torch.movedim(t, -1, 1)
        else:
            t = t.unsqueeze(1)
        parts.append(t)
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


def default_step(
    model: nn.Module,
    batch: Mapping[str, Any],
    *,
    input_key: str | Sequence[str] = "a",
    target_key: str = "u",
    component: Mapping[str, bool] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``model(inputs) , target`` with fields stacked channel-first (see
    :func:`fields_to_channels`)."""
    component = component or {}
    x = fields_to_channels(batch, input_key, component)
    y = fields_to_channels(batch, target_key, component)
    return model(x), y


def _to_device(obj, device):
    if torch.is_tensor(obj):
        return obj.to(device)
    if isinstance(obj, Mapping):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj


def _first_nonfinite(batch, prefix="") -> str | None:
    if torch.is_tensor(batch):
        if batch.is_floating_point() and not torch.isfinite(batch).all():
            return prefix or "batch"
        return None
    if isinstance(batch, Mapping):
        for k, v in batch.items():
            bad = _first_nonfinite(v, f"{prefix}.{k}" if prefix else str(k))
            if bad:
                return bad
    elif isinstance(batch, (list, tuple)):
        for i, v in enumerate(batch):
            bad = _first_nonfinite(v, f"{prefix}[{i}]")
            if bad:
                return bad
    return None


def _state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class _Progress:
    """A rich progress bar (epochs and batches) that can be switched off."""

    def __init__(
        self, enabled: bool, total_epochs: int, start_epoch: int, budget: float | None = None
    ):
        self.enabled = enabled
        self.budget = budget  # with a wall-clock budget the bar counts seconds, not epochs
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.p = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=Console(stderr=True),
            transient=False,
        )
        self.p.start()
        if budget is None:
            self.epoch_task = self.p.add_task(
                "epochs", total=total_epochs, completed=start_epoch, info=""
            )
        else:
            self.epoch_task = self.p.add_task("seconds", total=round(budget), info="")
        self.batch_task = None

    def start_epoch(self, epoch: int, n_batches: int) -> None:
        if not self.enabled:
            return
        if self.batch_task is not None:
            self.p.remove_task(self.batch_task)
        self.batch_task = self.p.add_task(f"epoch {epoch + 1}", total=n_batches, info="")

    def batch(self, loss: float) -> None:
        if self.enabled:
            self.p.update(self.batch_task, advance=1, info=f"loss {loss:.3e}")

    def end_epoch(self, info: str, *, epoch: int = 0, elapsed: float = 0.0) -> None:
        if not self.enabled:
            return
        if self.budget is None:
            self.p.update(self.epoch_task, advance=1, info=info)
        else:
            done = round(min(elapsed, self.budget))
            self.p.update(self.epoch_task, completed=done, info=f"epoch {epoch + 1}  {info}")

    def close(self) -> None:
        if self.enabled:
            self.p.stop()


class Trainer:
    """Fit a model on datasets of dict samples.

    Parameters
    ----------
    model : nn.Module
        The model to train (in place). Wrap it in
        :class:`pdesurrogates.surrogates.NormalizedModel` to train in normalised units
        and keep the normalisers with the saved model.
    loss : {"rel_l2", "rel_h1", "mse"} or callable
        Training loss ``loss(pred, target) -> scalar``. ``rel_l2``/``rel_h1`` are the
        per-sample relative errors averaged over the batch (2-D grids by default, see
        ``spatial_dims``).
    lr : float
        Peak learning rate of Adam.
    epochs : int
        Maximum number of epochs.
    batch_size : int
        Samples per optimisation step (per process under DDP).
    scheduler : {"onecycle", "cosine", None}
        Learning-rate schedule, stepped every batch.
    patience : int or None
        Stop when the validation loss has not improved for this many epochs (needs a
        validation dataset). The best weights are restored at the end whenever a
        validation set is given.
    out_dir : path or None
        Directory for ``checkpoint.pt`` (every epoch, atomic), ``metrics.jsonl`` and the
        final model (``model/``, via :func:`pdesurrogates.save`). ``None``: nothing is
        written and ``resume`` is unavailable.
    seed : int
        Seed of the shuffling (the model's initialisation is the caller's business).
    device : str, torch.device or None
        ``None`` picks CUDA when available, else CPU.
    step_fn : callable or None
        ``step_fn(model, batch) -> (prediction, target)``; ``batch`` is the collated dict
        already on ``device``. Default: :func:`default_step` with ``input_key`` /
        ``target_key``.
    progress : bool
        Show a progress bar (rank 0 only).
    input_key : str or sequence of str
        Field(s) fed to the model by the default step, stacked as channels.
    target_key : str
        Field the default step compares with.
    weight_decay : float
        Adam weight decay.
    grad_clip : float or None
        Clip the global gradient norm to this value.
    metrics : sequence of {"rel_l2", "rel_h1"}
        Validation metrics logged besides the loss.
    spatial_dims : int
        Number of trailing spatial axes for the relative losses.
    max_time : float or None
        Wall-clock training budget in seconds. Training stops (mid-epoch if need be) once
        it is spent, and the learning-rate schedule follows the *elapsed fraction of the
        budget* instead of the step count, so the schedule completes within the budget
        whatever the machine's speed (``epochs`` is then only an upper bound). Runs with
        a budget are not bit-reproducible.
    num_workers : int
        DataLoader worker processes.
    pct_start : float
        Fraction of the steps spent warming up with ``onecycle``.

    Examples
    --------
    >>> import torch
    >>> from torch.utils.data import Dataset
    >>> class Pairs(Dataset):
    ...     def __len__(self): return 32
    ...     def __getitem__(self, i):
    ...         a = torch.rand(8, 8, generator=torch.Generator().manual_seed(i))
    ...         return {"a": a, "u": 2 * a}
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Conv2d(1, 1, 1)
    >>> trainer = Trainer(model, loss="rel_l2", lr=0.05, epochs=30, batch_size=8,
    ...                   progress=False)
    >>> history = trainer.fit(Pairs())
    >>> history[-1]["train_loss"] < 0.05
    True
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        loss: str | Callable = "rel_l2",
        lr: float = 1e-3,
        epochs: int = 100,
        batch_size: int = 16,
        scheduler: str | None = "onecycle",
        patience: int | None = None,
        out_dir: str | os.PathLike | None = None,
        seed: int = 0,
        device: str | torch.device | None = None,
        step_fn: Callable | None = None,
        progress: bool = True,
        input_key: str | Sequence[str] = "a",
        target_key: str = "u",
        weight_decay: float = 0.0,
        grad_clip: float | None = None,
        metrics: Sequence[str] = ("rel_l2",),
        spatial_dims: int = 2,
        max_time: float | None = None,
        num_workers: int = 0,
        pct_start: float = 0.2,
    ):
        if not isinstance(model, nn.Module):
            raise ValueError(f"Trainer: model must be a torch.nn.Module, got {type(model)}")
        if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
            raise ValueError(f"Trainer: lr must be a positive number, got {lr!r}")
        for name, v in (("epochs", epochs), ("batch_size", batch_size)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"Trainer: {name} must be an integer >= 1, got {v!r}")
        if scheduler not in _SCHEDULERS:
            raise ValueError(
                f"Trainer: scheduler must be 'onecycle', 'cosine' or None, got {scheduler!r}"
            )
        if patience is not None and (not isinstance(patience, int) or patience < 1):
            raise ValueError(f"Trainer: patience must be None or an integer >= 1, got {patience!r}")
        if not 0 < pct_start < 1:
            raise ValueError(f"Trainer: pct_start must be in (0, 1), got {pct_start}")
        for m in metrics:
            if m not in ("rel_l2", "rel_h1"):
                raise ValueError(f"Trainer: unknown metric {m!r}; choose from 'rel_l2', 'rel_h1'")
        if max_time is not None and not max_time > 0:
            raise ValueError(f"Trainer: max_time must be None or > 0 seconds, got {max_time!r}")
        self.model = model
        self.loss_name = loss if isinstance(loss, str) else getattr(loss, "__name__", "custom")
        self.loss_fn = get_loss(loss)
        if loss in ("rel_l2", "rel_h1"):
            base = self.loss_fn
            self.loss_fn = lambda p, t: base(p, t, spatial_dims=spatial_dims)
        self.lr = float(lr)
        self.epochs = epochs
        self.batch_size = batch_size
        self.scheduler_name = scheduler
        self.patience = patience
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.seed = int(seed)
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.step_fn = step_fn
        self.progress = progress
        self.input_key = input_key
        self.target_key = target_key
        self.weight_decay = float(weight_decay)
        self.grad_clip = grad_clip
        self.metrics = tuple(metrics)
        self.spatial_dims = spatial_dims
        self.max_time = max_time
        self.num_workers = num_workers
        self.pct_start = pct_start
        self.history: list[dict[str, Any]] = []
        self.best_epoch: int | None = None
        self._component: dict[str, bool] = {}

    # -- configuration record -----------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """The trainer's settings (JSON-serialisable; stored with checkpoints and models)."""
        return {
            "loss": self.loss_name,
            "lr": self.lr,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "scheduler": self.scheduler_name,
            "patience": self.patience,
            "seed": self.seed,
            "input_key": self.input_key
            if isinstance(self.input_key, str)
            else list(self.input_key),
            "target_key": self.target_key,
            "weight_decay": self.weight_decay,
            "grad_clip": self.grad_clip,
            "pct_start": self.pct_start,
        }

    # -- helpers ------------------------------------------------------------------------
    def _step(self, model, batch):
        if self.step_fn is not None:
            return self.step_fn(model, batch)
        return default_step(
            model,
            batch,
            input_key=self.input_key,
            target_key=self.target_key,
            component=self._component,
        )

    def _check_dataset(self, ds, name):
        if ds is None:
            return
        if not isinstance(ds, Dataset) and not hasattr(ds, "__getitem__"):
            raise ValueError(f"Trainer: {name} must be a map-style torch Dataset, got {type(ds)}")
        if len(ds) == 0:
            raise TrainingError(
                f"{name} is empty; check the split exists and holds samples "
                "(FieldDataset.split('train') / 'valid')"
            )
        fields = getattr(ds, "fields", None)
        if isinstance(fields, Mapping):
            for k, spec in fields.items():
                dims = tuple(getattr(spec, "dims", ()))
                self._component[k] = bool(dims) and dims[-1] == "component"

    def _make_optimizer(self, steps_per_epoch):
        opt = torch.optim.Adam(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        total = self.epochs * steps_per_epoch
        if self.scheduler_name == "onecycle":
            sched = torch.optim.lr_scheduler.OneCycleLR(
                opt,
                max_lr=self.lr,
                total_steps=total,
                pct_start=self.pct_start,
                div_factor=10.0,
                final_div_factor=100.0,
                cycle_momentum=False,
            )
        elif self.scheduler_name == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=0.0)
        else:
            sched = None
        return opt, sched

    def _time_lr(self, fraction: float) -> float:
        """Learning rate at ``fraction`` of the time budget (same shapes as the schedulers)."""
        f = min(max(fraction, 0.0), 1.0)
        if self.scheduler_name == "onecycle":
            lo, end = self.lr / 10.0, self.lr / 1000.0
            if f < self.pct_start:
                return lo + (self.lr - lo) * 0.5 * (1 - math.cos(math.pi * f / self.pct_start))
            g = (f - self.pct_start) / (1 - self.pct_start)
            return end + (self.lr - end) * 0.5 * (1 + math.cos(math.pi * g))
        if self.scheduler_name == "cosine":
            return self.lr * 0.5 * (1 + math.cos(math.pi * f))
        return self.lr

    def _batch_indices(self, sampler_indices: list[int], b: int) -> list[int]:
        return sampler_indices[b * self.batch_size : (b + 1) * self.batch_size]

    # -- checkpoints --------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.out_dir is None else self.out_dir / CHECKPOINT_FILE

    def _write_checkpoint(self, state: dict[str, Any]) -> None:
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(self.checkpoint_path, buf.getvalue())
        lines = "".join(json.dumps(h) + "\n" for h in self.history)
        atomic_write_text(self.out_dir / METRICS_FILE, lines)

    def _read_checkpoint(self) -> dict[str, Any]:
        path = self.checkpoint_path
        if path is None:
            raise ValueError("Trainer: resume=True needs out_dir (where the checkpoint lives)")
        if not path.is_file():
            raise CheckpointError(
                f"{path}: no checkpoint to resume from; start without --resume/resume=True"
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # corrupt/truncated file or unpickling refusal
            raise CheckpointError(
                f"{path}: cannot read the checkpoint ({exc}); delete it to start afresh"
            ) from exc
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path}: not a pdesurrogates training checkpoint")
        spec = self._model_spec()
        if spec is not None and state.get("model_spec") is not None:
            saved, ours = json.loads(state["model_spec"]), spec
            if saved.get("class") != ours.get("class"):
                raise CheckpointError(
                    f"{path}: checkpoint is of a {saved.get('class')} model but the trainer "
                    f"holds a {ours.get('class')}; use the matching model or a new out_dir"
                )
            if saved != ours:
                raise CheckpointError(
                    f"{path}: checkpoint was written for a {saved.get('class')} with another "
                    "configuration; use the same configuration or a new out_dir"
                )
        return state

    def _model_spec(self) -> dict | None:
        try:
            return model_spec(self.model)
        except CheckpointError:
            return None

    # -- evaluation ---------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, dataset: Dataset, *, batch_size: int | None = None) -> dict[str, float]:
        """Mean loss and metrics of the model on ``dataset`` (eval mode, no gradients)."""
        ctx = getattr(self, "_ctx", None) or _distributed.DistContext()
        self._check_dataset(dataset, "dataset")
        model = self.model
        was_training = model.training
        model.eval()
        idx = list(range(ctx.rank, len(dataset), ctx.world_size))
        loader = DataLoader(
            Subset(dataset, idx), batch_size=batch_size or self.batch_size, shuffle=False
        )
        sums = torch.zeros(2 + len(self.metrics), dtype=torch.float64)
        for batch in loader:
            batch = _to_device(batch, self.device)
            pred, target = self._step(model, batch)
            n = target.shape[0]
            sums[0] += float(self.loss_fn(pred, target)) * n
            for j, m in enumerate(self.metrics):
                fn = rel_l2 if m == "rel_l2" else rel_h1
                sums[1 + j] += float(
                    fn(pred, target, spatial_dims=self.spatial_dims, reduction="sum")
                )
            sums[-1] += n
        _distributed.all_reduce_sum(sums, ctx)
        model.train(was_training)
        count = max(float(sums[-1]), 1.0)
        out = {"loss": float(sums[0]) / count}
        for j, m in enumerate(self.metrics):
            out[m] = float(sums[1 + j]) / count
        return out

    # -- the loop -----------------------------------------------------------------------
    def fit(
        self,
        train_dataset: Dataset,
        valid_dataset: Dataset | None = None,
        resume: bool = False,
    ) -> list[dict[str, Any]]:
        """Train; return the history (one dict per epoch).

        Raises
        ------
        TrainingError
            On an empty dataset, a batch with NaN/Inf, or a non-finite loss.
        CheckpointError
            When resuming from a missing, corrupt or foreign checkpoint.
        """
        self._check_dataset(train_dataset, "train_dataset")
        self._check_dataset(valid_dataset, "valid_dataset")
        if self.patience is not None and valid_dataset is None:
            raise ValueError("Trainer: patience (early stopping) needs a valid_dataset")
        ctx = _distributed.setup(self.device)
        self._ctx = ctx
        try:
            return self._fit(train_dataset, valid_dataset, resume, ctx)
        finally:
            self._ctx = None
            ctx.close()

    def _fit(self, train_dataset, valid_dataset, resume, ctx):
        model = self.model.to(self.device)
        sampler = DistributedSampler(
            train_dataset,
            num_replicas=ctx.world_size,
            rank=ctx.rank,
            shuffle=True,
            seed=self.seed,
            drop_last=False,
        )
        loader = DataLoader(
            train_dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            drop_last=False,
        )
        steps_per_epoch = len(loader)
        opt, sched = self._make_optimizer(steps_per_epoch)
        timed = self.max_time is not None
        if timed:
            sched = None  # the learning rate follows the elapsed fraction of max_time
        start_epoch = 0
        best_loss = math.inf
        best_state = None
        bad_epochs = 0
        elapsed = 0.0
        self.history = []
        self.best_epoch = None
        if resume:
            state = self._read_checkpoint()
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            if sched is not None and state.get("scheduler") is not None:
                sched.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["rng"])
            start_epoch = int(state["epoch"])
            best_loss = float(state["best_loss"])
            best_state = state.get("best_state")
            bad_epochs = int(state["bad_epochs"])
            elapsed = float(state["elapsed"])
            self.history = json.loads(state["history"])
            self.best_epoch = state.get("best_epoch")
            if int(state.get("world_size", 1)) != ctx.world_size:
                raise CheckpointError(
                    f"{self.checkpoint_path}: written by a {state.get('world_size')}-process "
                    f"run; resume it with the same number of processes ({ctx.world_size} now)"
                )
        train_model = model
        if ctx.enabled:
            from torch.nn.parallel import DistributedDataParallel

            train_model = DistributedDataParallel(
                model, device_ids=None if self.device.type == "cpu" else [self.device]
            )
        if self.out_dir is not None and ctx.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)

        stop_reason = "epochs"
        finished = start_epoch >= self.epochs or (
            self.patience is not None and bad_epochs >= self.patience
        )
        bar = _Progress(
            self.progress and ctx.is_main and not finished, self.epochs, start_epoch, self.max_time
        )
        try:
            for epoch in range(start_epoch, self.epochs):
                if finished:
                    break
                if self.max_time is not None and elapsed >= self.max_time:
                    stop_reason = "max_time"
                    break
                t0 = time.perf_counter()
                sampler.set_epoch(epoch)
                order = list(iter(sampler))
                train_model.train()
                bar.start_epoch(epoch, steps_per_epoch)
                total, count = 0.0, 0
                for b, batch in enumerate(loader):
                    if timed:
                        spent = elapsed + time.perf_counter() - t0
                        up = torch.tensor([float(spent >= self.max_time)], dtype=torch.float64)
                        _distributed.all_reduce_sum(up, ctx)  # every process stops together
                        if up.item() > 0:
                            stop_reason = "max_time"
                            break
                        for group in opt.param_groups:
                            group["lr"] = self._time_lr(spent / self.max_time)
                    batch = _to_device(batch, self.device)
                    bad_field = _first_nonfinite(batch)
                    pred, target = (None, None) if bad_field else self._step(train_model, batch)
                    loss = None if bad_field else self.loss_fn(pred, target)
                    bad_loss = loss is not None and not torch.isfinite(loss).all()
                    flags = torch.tensor(
                        [float(bool(bad_field)), float(bad_loss)], dtype=torch.float64
                    )
                    _distributed.all_reduce_sum(flags, ctx)
                    if flags.any():
                        idx = self._batch_indices(order, b)
                        if bad_field or flags[0] > 0:
                            raise TrainingError(
                                f"non-finite values (NaN/Inf) in "
                                f"{bad_field or 'a batch on another process'} of batch {b} "
                                f"(epoch {epoch}, dataset indices {idx[:8]}"
                                f"{'...' if len(idx) > 8 else ''}); likely cause: corrupt "
                                "samples in the data; check the file with "
                                "pdesurrogates.datasets.validate and regenerate them"
                            )
                        raise TrainingError(
                            f"the loss became non-finite (NaN/Inf) at batch {b} of epoch {epoch} "
                            f"(dataset indices {idx[:8]}); the "
                            f"inputs were finite, so the likely cause is a too-high learning "
                            f"rate (lr={self.lr:g}) or unnormalised data; lower lr, set "
                            "grad_clip, or wrap the model in NormalizedModel"
                        )
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if self.grad_clip is not None:
                        nn.utils.clip_grad_norm_(model.parameters(), self.grad_clip)
                    opt.step()
                    if sched is not None:
                        sched.step()
                    n = target.shape[0]
                    lv = float(loss.detach())
                    total += lv * n
                    count += n
                    bar.batch(lv)
                sums = torch.tensor([total, float(max(count, 1))], dtype=torch.float64)
                _distributed.all_reduce_sum(sums, ctx)
                record: dict[str, Any] = {
                    "epoch": epoch + 1,
                    "train_loss": float(sums[0] / sums[1]),
                    "lr": opt.param_groups[0]["lr"],
                }
                if valid_dataset is not None:
                    val = self.evaluate(valid_dataset)
                    record["valid_loss"] = val["loss"]
                    for m in self.metrics:
                        record[f"valid_{m}"] = val[m]
                    if val["loss"] < best_loss:
                        best_loss = val["loss"]
                        best_state = _state_copy(model)
                        self.best_epoch = epoch + 1
                        bad_epochs = 0
                    else:
                        bad_epochs += 1
                elapsed += time.perf_counter() - t0
                record["time"] = elapsed
                self.history.append(record)
                info = f"train {record['train_loss']:.3e}"
                if "valid_loss" in record:
                    info += f"  valid {record['valid_loss']:.3e}"
                bar.end_epoch(info, epoch=epoch, elapsed=elapsed)
                if self.out_dir is not None:
                    if ctx.is_main:
                        self._write_checkpoint(
                            {
                                "format": CHECKPOINT_FORMAT,
                                "model_spec": json.dumps(self._model_spec()),
                                "trainer": json.dumps(self.get_config()),
                                "model": model.state_dict(),
                                "optimizer": opt.state_dict(),
                                "scheduler": None if sched is None else sched.state_dict(),
                                "rng": torch.get_rng_state(),
                                "epoch": epoch + 1,
                                "best_loss": best_loss,
                                "best_state": best_state,
                                "best_epoch": self.best_epoch,
                                "bad_epochs": bad_epochs,
                                "elapsed": elapsed,
                                "history": json.dumps(self.history),
                                "world_size": ctx.world_size,
                            }
                        )
                    ctx.barrier()
                if self.patience is not None and bad_epochs >= self.patience:
                    stop_reason = "early_stopping"
                    break
                if stop_reason == "max_time":
                    break
        finally:
            bar.close()
        if best_state is not None:
            model.load_state_dict(best_state)
        self.stop_reason = stop_reason
        if self.out_dir is not None and ctx.is_main and self._model_spec() is not None:
            save(
                model,
                self.out_dir / MODEL_DIR,
                metadata={
                    "trainer": self.get_config(),
                    "best_epoch": self.best_epoch,
                    "stop_reason": stop_reason,
                    "history": copy.deepcopy(self.history),
                },
            )
        ctx.barrier()
        return self.history
