"""The one training loop: optimiser and schedule, early stopping, checkpoints, resume,
progress, a wall-clock budget and DDP, for every network family.

A :class:`Trainer` fits an ``nn.Module``. What a batch means is the family's business: a
:class:`~pdesurrogates.training.TrainingStep` returns the loss of one batch (DCDM, the
learned V-cycle and MF-DNN have their own); without one, a :class:`SupervisedStep`
compares ``step_fn(model, batch) -> (prediction, target)`` under ``loss`` (the default
feeds the field(s) ``input_key`` of a :class:`pdesurrogates.datasets.FieldDataset` batch
to the model and compares with ``target_key``). Batches come from a map-style dataset or
from a :class:`~pdesurrogates.training.BatchSource` (e.g. full-batch training).

Reproducibility: the shuffling of epoch ``e`` depends only on ``(seed, e)``, and the
checkpoint written after every epoch holds the weights, optimiser and scheduler state, the
global torch RNG state, the best weights and the history, so a run killed at any point and
restarted with ``resume=True`` ends with the same weights as an uninterrupted run (bit for
bit on CPU with the same thread count).
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from pdesurrogates._progress import ProgressBar, TimeBudget, logger
from pdesurrogates.errors import TrainingError
from pdesurrogates.io import save
from pdesurrogates.training import _distributed
from pdesurrogates.training._checkpoint import (
    CHECKPOINT_FILE,
    MODEL_DIR,
    checkpoint_state,
    model_spec_or_none,
    restore,
    write_checkpoint,
)
from pdesurrogates.training._configs import TrainerConfig, scheduler_setting
from pdesurrogates.training._looptools import (
    Bars,
    Clock,
    check_arguments,
    epoch_loader,
    first_nonfinite,
    largest_magnitude,
    make_optimizer,
    nonfinite_error,
    state_copy,
    time_lr,
    to_device,
)
from pdesurrogates.training._losses import get_loss, rel_h1, rel_l2
from pdesurrogates.training._steps import (
    BatchSource,
    SupervisedStep,
    TrainingStep,
    default_step,
)

__all__ = ["Trainer"]

_METRICS = {"rel_l2": rel_l2, "rel_h1": rel_h1}
_C = TrainerConfig  # the defaults


def _sum_over_processes(ctx, *values) -> list[float]:
    """``values`` summed over every DDP process (as they are in a single process)."""
    if not ctx.enabled:
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64)
    return _distributed.all_reduce_sum(t, ctx).tolist()


class Trainer:
    """Fit a model: the training loop shared by every network family.

    Parameters
    ----------
    model : nn.Module
        The model to train (in place). Wrap it in
        :class:`pdesurrogates.surrogates.NormalizedModel` to train in normalised units
        and keep the normalisers with the saved model.
    loss : {"rel_l2", "rel_h1", "mse"} or callable
        Loss ``loss(pred, target) -> scalar`` of the supervised step. ``rel_l2``/``rel_h1``
        are the per-sample relative errors averaged over the batch (2-D grids by default,
        see ``spatial_dims``). Unused with ``step``.
    optimizer : {"adam", "lbfgs"}
        Adam (one step per batch), or L-BFGS (one ``optimizer.step(closure)`` per batch,
        which runs up to ``optimizer_kwargs["max_iter"]`` iterations; meant for
        full-batch training).
    lr : float
        Peak learning rate.
    epochs : int
        Maximum number of epochs (passes over the data; with a
        :class:`~pdesurrogates.training.FullBatch` source, optimisation steps).
    batch_size : int
        Samples per optimisation step (per process under DDP) of a dataset.
    scheduler : {"onecycle", "cosine", None}
        Learning-rate schedule, stepped every batch.
    patience : int or None
        Stop when the validation loss has not improved for this many validations (needs
        a validation dataset).
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
    step : TrainingStep or None
        The family's step: the loss of a batch and the validation sums (instead of
        ``step_fn`` and ``loss``). Step models on time series: the default step on
        ``TimePairs`` is teacher forcing, :class:`PushforwardStep` multi-step training.
    progress : bool or ProgressBar
        Show a progress bar (rank 0 only); a running :class:`ProgressBar` gets this
        trainer's bars as tasks (removed at the end), e.g. below a caller's own bar.
    input_key : str or sequence of str
        Field(s) fed to the model by the default step: the batch's channel-first
        fields ``(B, C, *grid)`` concatenated along the channel axis.
    target_key : str
        Field the default step compares with.
    weight_decay : float
        Adam weight decay.
    grad_clip : float or None
        Clip the global gradient norm to this value.
    metrics : sequence of {"rel_l2", "rel_h1"}
        Validation metrics of the supervised step logged besides the loss.
    spatial_dims : int
        Number of trailing spatial axes for the relative losses.
    max_time : float, TimeBudget or None
        Wall-clock training budget in seconds (or a :class:`TimeBudget` shared with
        other work). Training stops (mid-epoch if need be) once it is spent or after
        ``epochs``, whichever comes first, and the learning-rate schedule follows the
        fraction of the ``epochs`` x steps-per-epoch steps done, or the *elapsed
        fraction of the budget* once that leads it by more than 5 % (never moving
        back), so the schedule completes by whichever end comes first, whatever the
        machine's speed. A run that the budget ends is not bit-reproducible; one that
        ``epochs`` ends is, when the budget never leads the step count by 5 % (a
        generous budget as a safety cap).
    num_workers : int
        DataLoader worker processes.
    pct_start : float
        Fraction of the steps warming up with ``onecycle`` (none if that is one step or less).
    min_lr : float
        Final learning rate of ``cosine``.
    optimizer_kwargs : dict or None
        Further arguments of the optimiser (e.g. L-BFGS ``max_iter``, ``history_size``;
        L-BFGS uses the strong-Wolfe line search unless told otherwise).
    params : iterable of nn.Parameter or None
        Train only these parameters; the model's others are frozen during :meth:`fit`.
    valid_every : int
        Validate every this many epochs (and after the last).
    validate_start : bool
        Also validate the starting weights; they are then a candidate for the best.
    restore_best : bool
        Load the best validation weights at the end (when validating).

    Attributes
    ----------
    history : list of dict
        One record per epoch: ``epoch``, ``train_loss``, ``lr``, ``time`` and, after a
        validation, ``valid_loss`` and ``valid_<metric>``.
    best_epoch, best_loss : int or None, float
        Epoch (0: the start) and validation loss of the best weights.
    initial_valid : dict or None
        Validation of the starting weights (with ``validate_start``).
    stop_reason : str
        ``"epochs"``, ``"early_stopping"`` or ``"max_time"``.

    Examples
    --------
    >>> import torch
    >>> from torch.utils.data import Dataset
    >>> class Pairs(Dataset):
    ...     def __len__(self): return 32
    ...     def __getitem__(self, i):
    ...         a = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(i))  # (C, X, Y)
    ...         return {"a": a, "u": 2 * a}
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Conv2d(1, 1, 1)
    >>> trainer = Trainer(model, loss="rel_l2", lr=0.05, epochs=30, batch_size=8,
    ...                   progress=False)
    >>> history = trainer.fit(Pairs())
    >>> history[-1]["train_loss"] < 0.05
    True
    """

    announce_last_epoch = True  # say once that no validation keeps the last epoch

    def __init__(
        self,
        model: nn.Module,
        *,
        loss: str | Callable = _C.loss,
        optimizer: str = _C.optimizer,
        lr: float = _C.lr,
        epochs: int = _C.epochs,
        batch_size: int = _C.batch_size,
        scheduler: str | None = _C.scheduler,
        patience: int | None = _C.patience,
        out_dir: str | os.PathLike | None = None,
        seed: int = _C.seed,
        device: str | torch.device | None = None,
        step_fn: Callable | None = None,
        step: TrainingStep | None = None,
        progress: bool | ProgressBar = True,
        input_key: str | Sequence[str] = "a",
        target_key: str = "u",
        weight_decay: float = _C.weight_decay,
        grad_clip: float | None = _C.grad_clip,
        metrics: Sequence[str] = ("rel_l2",),
        spatial_dims: int = 2,
        max_time: float | TimeBudget | None = _C.max_time,
        num_workers: int = _C.num_workers,
        pct_start: float = _C.pct_start,
        min_lr: float = _C.min_lr,
        optimizer_kwargs: Mapping[str, Any] | None = None,
        params: Iterable[nn.Parameter] | None = None,
        valid_every: int = 1,
        validate_start: bool = False,
        restore_best: bool = True,
    ):
        check_arguments(locals(), _METRICS)
        if step is not None and not isinstance(step, TrainingStep):
            raise ValueError(f"Trainer: step must be a TrainingStep, got {type(step)}")
        self.model = model
        self.loss_name = loss if isinstance(loss, str) else getattr(loss, "__name__", "custom")
        self.loss_fn = get_loss(loss)
        if loss in ("rel_l2", "rel_h1"):
            self.loss_fn = partial(self.loss_fn, spatial_dims=spatial_dims)
        self.optimizer_name = optimizer
        self.optimizer_kwargs = dict(optimizer_kwargs or {})
        self.lr = float(lr)
        self.min_lr = float(min_lr)
        self.epochs = epochs
        self.batch_size = batch_size
        self.scheduler_name = scheduler_setting("Trainer", scheduler)
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
        self.max_time = (
            max_time if max_time is None or isinstance(max_time, TimeBudget) else float(max_time)
        )
        self.num_workers = num_workers
        self.pct_start = pct_start
        self.params = None if params is None else list(params)
        self.valid_every = valid_every
        self.validate_start = bool(validate_start)
        self.restore_best = bool(restore_best)
        if step is None:
            fns = {
                m: partial(_METRICS[m], spatial_dims=spatial_dims, reduction="sum")
                for m in self.metrics
            }
            step = SupervisedStep(self._predict, self.loss_fn, fns)
        self.step = step
        self.history: list[dict[str, Any]] = []
        self.best_epoch: int | None = None
        self.best_loss = math.inf
        self.best_state: dict[str, torch.Tensor] | None = None
        self.initial_valid: dict[str, float] | None = None
        self.stop_reason = "epochs"
        self._bad_epochs = 0
        self._ctx = None

    # -- configuration record -----------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """The trainer's settings (JSON-serialisable; stored with checkpoints and models)."""
        return {
            "loss": self.loss_name,
            "optimizer": self.optimizer_name,
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
    def _predict(self, model, batch):
        if self.step_fn is not None:
            return self.step_fn(model, batch)
        return default_step(model, batch, input_key=self.input_key, target_key=self.target_key)

    def _check_dataset(self, ds, name):
        if ds is None:
            return
        if isinstance(ds, BatchSource):
            if len(ds) < 1:
                raise TrainingError(f"{name} yields no batches; give it data")
            return
        if not isinstance(ds, Dataset) and not hasattr(ds, "__getitem__"):
            raise ValueError(
                f"Trainer: {name} must be a map-style torch Dataset or a BatchSource, "
                f"got {type(ds)}"
            )
        if len(ds) == 0:
            raise TrainingError(
                f"{name} is empty; check the split exists and holds samples "
                "(FieldDataset.split('train') / 'valid')"
            )

    def _trained_params(self) -> list[nn.Parameter]:
        return list(self.model.parameters()) if self.params is None else self.params

    def _make_optimizer(self, steps_per_epoch):
        return make_optimizer(self, self._trained_params(), self.epochs * steps_per_epoch)

    def _time_lr(self, fraction: float, steps: int = 0) -> float:
        """Learning rate at ``fraction`` of a run of ``steps`` steps (see :func:`time_lr`)."""
        return time_lr(self.scheduler_name, self.lr, self.min_lr, self.pct_start, fraction, steps)

    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.out_dir is None else self.out_dir / CHECKPOINT_FILE

    def _model_spec(self) -> dict | None:
        return model_spec_or_none(self.model)

    # -- evaluation ---------------------------------------------------------------------
    def _eval_batches(self, dataset, batch_size, ctx):
        if isinstance(dataset, BatchSource):
            return dataset.batches(0)
        idx = list(range(ctx.rank, len(dataset), ctx.world_size))
        return DataLoader(
            Subset(dataset, idx), batch_size=batch_size or self.batch_size, shuffle=False
        )

    @torch.no_grad()
    def evaluate(self, dataset, *, batch_size: int | None = None) -> dict[str, float]:
        """Mean loss and metrics of the model on ``dataset`` (eval mode, no gradients)."""
        ctx = self._ctx or _distributed.DistContext()
        self._check_dataset(dataset, "dataset")
        model = self.model
        was_training = model.training
        model.eval()
        names = tuple(self.step.metric_names)
        sums = torch.zeros(len(names) + 1, dtype=torch.float64)
        for batch in self._eval_batches(dataset, batch_size, ctx):
            values, n = self.step.evaluate(model, to_device(batch, self.device))
            for j, name in enumerate(names):
                sums[j] += values[name]
            sums[-1] += n
        _distributed.all_reduce_sum(sums, ctx)
        model.train(was_training)
        count = max(float(sums[-1]), 1.0)
        return {name: float(sums[j]) / count for j, name in enumerate(names)}

    # -- the loop -----------------------------------------------------------------------
    def fit(self, train_dataset, valid_dataset=None, resume: bool = False) -> list[dict[str, Any]]:
        """Train; return the history (one dict per epoch).

        ``train_dataset`` and ``valid_dataset`` are map-style datasets or
        :class:`~pdesurrogates.training.BatchSource` objects.

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
        # freeze the parameters not trained, so that they are left exactly as they are
        ids = {id(p) for p in self._trained_params()}
        frozen = [p for p in self.model.parameters() if id(p) not in ids and p.requires_grad]
        for p in frozen:
            p.requires_grad_(False)
        try:
            return self._fit(train_dataset, valid_dataset, resume, ctx)
        finally:
            for p in frozen:
                p.requires_grad_(True)
            self._ctx = None
            ctx.close()

    def _fit(self, train_dataset, valid_dataset, resume, ctx):
        model = self.model.to(self.device)
        epoch_batches, steps_per_epoch = epoch_loader(
            train_dataset, ctx, self.batch_size, self.seed, self.num_workers
        )
        opt, sched = self._make_optimizer(steps_per_epoch)
        if self.max_time is not None:
            sched = None  # the learning rate follows the elapsed fraction of max_time
        self.history, self.best_epoch, self.best_loss, self.best_state = [], None, math.inf, None
        self._bad_epochs, self.initial_valid, self.stop_reason = 0, None, "epochs"
        start_epoch, elapsed = restore(self, opt, sched, ctx.world_size) if resume else (0, 0.0)
        clock = Clock(self.max_time, elapsed, self.epochs * steps_per_epoch)
        train_model = model
        if ctx.enabled:
            from torch.nn.parallel import DistributedDataParallel

            train_model = DistributedDataParallel(
                model, device_ids=None if self.device.type == "cpu" else [self.device]
            )
        if self.out_dir is not None and ctx.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        if valid_dataset is None and self.announce_last_epoch and ctx.is_main and not resume:
            logger.info(
                "no validation data: the model keeps the weights of its last epoch "
                "(no best-epoch selection; a 'valid' split selects the best one)"
            )
        if self.validate_start and valid_dataset is not None and start_epoch == 0:
            self.initial_valid = self.evaluate(valid_dataset)
            self._track_best(self.initial_valid["loss"], 0)
        finished = start_epoch >= self.epochs or self._patience_spent()
        show = ctx.is_main and not finished
        if not finished:
            train_model.train()
        bars = Bars(
            self.progress,
            show=show,
            clock=clock,
            epochs=self.epochs,
            start=start_epoch,
            steps=steps_per_epoch,
        )
        try:
            for epoch in range(start_epoch, self.epochs):
                if finished:
                    break
                # all stop together (an untimed run, the same in every process, skips it)
                if clock.timed and _sum_over_processes(ctx, clock.exhausted())[0] > 0:
                    self.stop_reason = "max_time"
                    break
                batches, order = epoch_batches(epoch)
                if not model.training:  # (evaluate() restores the mode it found)
                    train_model.train()
                bars.start_epoch(epoch)
                mean = self._train_epoch(
                    epoch, batches, order, train_model, opt, sched, clock, ctx, bars
                )
                self._end_epoch(epoch, mean, opt, sched, clock, valid_dataset, ctx, bars)
                if self._patience_spent():
                    self.stop_reason = "early_stopping"
                if self.stop_reason != "epochs":
                    break
        finally:
            bars.close()
        if self.restore_best and self.best_state is not None:
            model.load_state_dict(self.best_state)
        if self.out_dir is not None and ctx.is_main and self._model_spec() is not None:
            save(
                model,
                self.out_dir / MODEL_DIR,
                metadata={
                    "trainer": self.get_config(),
                    "best_epoch": self.best_epoch,
                    "stop_reason": self.stop_reason,
                    "history": copy.deepcopy(self.history),
                },
            )
        ctx.barrier()
        return self.history

    def _patience_spent(self) -> bool:
        return self.patience is not None and self._bad_epochs >= self.patience

    def _track_best(self, loss: float, epoch: int) -> None:
        if loss < self.best_loss:
            self.best_loss = loss
            self.best_state = state_copy(self.model)
            self.best_epoch = epoch
            self._bad_epochs = 0
        else:
            self._bad_epochs += 1

    # -- one epoch ----------------------------------------------------------------------
    def _train_epoch(self, epoch, batches, order, train_model, opt, sched, clock, ctx, bars):
        total, count = 0.0, 0
        self._epoch_lr = opt.param_groups[0]["lr"]
        for b, batch in enumerate(batches):
            if clock.timed:
                # all stop together, and follow one schedule (the processes' mean time)
                stop, spent = _sum_over_processes(ctx, clock.exhausted(), clock.fraction())
                if stop > 0:
                    self.stop_reason = "max_time"
                    break
                step = epoch * clock.total_steps // self.epochs + b
                f = clock.schedule_fraction(step, spent / max(ctx.world_size, 1))
                for group in opt.param_groups:
                    group["lr"] = self._time_lr(f, clock.total_steps)
            batch = to_device(batch, self.device)
            self._epoch_lr = opt.param_groups[0]["lr"]  # the rate this step uses
            lv, n = self._optimise(train_model, opt, batch, epoch, b, order, ctx)
            if sched is not None:
                sched.step()
            total += lv * n
            count += n
            bars.batch(lv)
        total, count = _sum_over_processes(ctx, total, max(count, 1))
        return total / count

    def _optimise(self, train_model, opt, batch, epoch, b, order, ctx):
        """One optimisation step on ``batch``; returns the batch's loss (float) and size."""
        bad_field = first_nonfinite(batch)
        lbfgs = self.optimizer_name == "lbfgs"
        loss, n = None, 0
        if not bad_field:
            loss, n = (
                self._lbfgs_step(train_model, opt, batch)
                if lbfgs
                else self.step.loss(train_model, batch)
            )
        lv = math.nan if loss is None else float(loss.detach())
        flags = _sum_over_processes(
            ctx, bool(bad_field), loss is not None and not math.isfinite(lv)
        )
        if any(flags):
            where = f"batch {b} (epoch {epoch}"
            if order is not None:
                idx = order[b * self.batch_size : (b + 1) * self.batch_size]
                where += f", dataset indices {idx[:8]}{'...' if len(idx) > 8 else ''}"
            largest = 0.0 if bad_field else largest_magnitude(batch)
            raise nonfinite_error(bad_field, flags[0] > 0, where + ")", self.lr, largest)
        if not lbfgs:
            opt.zero_grad(set_to_none=True)
            loss.backward()
            self._clip()
            opt.step()
        return lv, n

    def _lbfgs_step(self, train_model, opt, batch):
        size = []

        def closure():
            opt.zero_grad(set_to_none=True)
            loss, n = self.step.loss(train_model, batch)
            size.append(n)
            if torch.isfinite(loss).all():  # a trial point of the line search may not be
                loss.backward()
                self._clip()
            return loss

        loss = opt.step(closure)  # the loss at the starting point
        return loss, size[0]

    def _clip(self) -> None:
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)

    def _end_epoch(self, epoch, mean, opt, sched, clock, valid_dataset, ctx, bars):
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "train_loss": mean,
            "lr": self._epoch_lr,  # the rate of the epoch's last step
        }
        last = epoch + 1 == self.epochs or self.stop_reason != "epochs"
        if valid_dataset is not None and ((epoch + 1) % self.valid_every == 0 or last):
            val = self.evaluate(valid_dataset)
            for name, v in val.items():
                record[f"valid_{name}"] = v
            self._track_best(val["loss"], epoch + 1)
        record["time"] = clock.spent()
        self.history.append(record)
        info = f"train {record['train_loss']:.3e}"
        if "valid_loss" in record:
            info += f"  valid {record['valid_loss']:.3e}"
        bars.end_epoch(epoch, info)
        if self.out_dir is not None:
            if ctx.is_main:
                state = checkpoint_state(self, opt, sched, epoch + 1, clock.spent(), ctx.world_size)
                write_checkpoint(self.out_dir, state, self.history)
            ctx.barrier()
