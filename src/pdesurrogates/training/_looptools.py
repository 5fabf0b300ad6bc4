"""Pieces of the :class:`~pdesurrogates.training.Trainer` loop: argument checks, the
optimiser and schedule, the clock of the wall-clock budget, the progress bars and the
non-finite checks. Only the Trainer uses them."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from pdesurrogates._progress import ProgressBar, TimeBudget
from pdesurrogates.errors import TrainingError
from pdesurrogates.training._configs import scheduler_setting
from pdesurrogates.training._steps import BatchSource

__all__: list[str] = []

OPTIMIZERS = ("adam", "lbfgs")


def check_arguments(trainer_args: Mapping[str, Any], metric_names) -> None:
    """``ValueError`` naming the first bad Trainer argument."""
    a = trainer_args
    if not isinstance(a["model"], nn.Module):
        raise ValueError(f"Trainer: model must be a torch.nn.Module, got {type(a['model'])}")
    lr = a["lr"]
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"Trainer: lr must be a positive number, got {lr!r}")
    for name in ("epochs", "batch_size", "valid_every"):
        v = a[name]
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"Trainer: {name} must be an integer >= 1, got {v!r}")
    scheduler_setting("Trainer", a["scheduler"])
    if a["optimizer"] not in OPTIMIZERS:
        raise ValueError(f"Trainer: optimizer must be 'adam' or 'lbfgs', got {a['optimizer']!r}")
    if a["optimizer"] == "lbfgs" and a["weight_decay"]:
        raise ValueError("Trainer: weight_decay is an Adam setting; L-BFGS takes none")
    patience = a["patience"]
    if patience is not None and (not isinstance(patience, int) or patience < 1):
        raise ValueError(f"Trainer: patience must be None or an integer >= 1, got {patience!r}")
    if not 0 < a["pct_start"] < 1:
        raise ValueError(f"Trainer: pct_start must be in (0, 1), got {a['pct_start']}")
    for m in a["metrics"]:
        if m not in metric_names:
            raise ValueError(f"Trainer: unknown metric {m!r}; choose from 'rel_l2', 'rel_h1'")
    mt = a["max_time"]
    if isinstance(mt, bool) or not (
        mt is None or isinstance(mt, TimeBudget) or (isinstance(mt, numbers.Real) and mt > 0)
    ):
        raise ValueError(f"Trainer: max_time must be None or > 0 seconds, got {mt!r}")
    if a["step"] is not None and a["step_fn"] is not None:
        raise ValueError("Trainer: give step (a TrainingStep) or step_fn, not both")


def make_optimizer(trainer, params, total_steps: int):
    """The trainer's optimiser on ``params`` and its schedule over ``total_steps``."""
    t = trainer
    if t.optimizer_name == "lbfgs":
        kw = {"line_search_fn": "strong_wolfe", **t.optimizer_kwargs}
        opt = torch.optim.LBFGS(params, lr=t.lr, **kw)
    else:
        kw = {"weight_decay": t.weight_decay, **t.optimizer_kwargs}
        opt = torch.optim.Adam(params, lr=t.lr, **kw)
    if t.scheduler_name == "onecycle":
        pct = t.pct_start  # a warm-up ending at step 0 divides by zero in torch: none
        pct = math.nextafter(pct, 0.0) if pct * total_steps == 1.0 else pct
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt,
            max_lr=t.lr,
            total_steps=total_steps,
            pct_start=pct,
            div_factor=10.0,
            final_div_factor=100.0,
            cycle_momentum=False,
        )
    elif t.scheduler_name == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps, eta_min=t.min_lr)
    else:
        sched = None
    return opt, sched


def time_lr(
    scheduler: str | None, lr: float, min_lr: float, pct_start: float, f: float, steps: int = 0
) -> float:
    """Learning rate at fraction ``f`` of a run (the shapes of the schedulers).

    With ``steps`` (the run's optimisation steps), ``f = s / steps`` gives the rate the
    step-driven scheduler of :func:`make_optimizer` uses at step ``s``: one-cycle peaks
    at step ``pct_start * steps - 1`` (no warm-up when that is not after step 0) and ends
    at step ``steps - 1``, as torch's ``OneCycleLR`` does. Without it, the continuous
    shape."""
    f = min(max(f, 0.0), 1.0)
    if scheduler == "onecycle":
        lo, end = lr / 10.0, lr / 1000.0
        peak, last, pos = pct_start, 1.0, f
        if steps >= 1:
            peak, last, pos = pct_start * steps - 1, steps - 1.0, f * steps
        if pos <= peak and peak > 0:
            return _cos_anneal(lo, lr, pos / peak)
        return _cos_anneal(lr, end, min(1.0, (pos - peak) / (last - peak)))
    if scheduler == "cosine":
        return _cos_anneal(lr, min_lr, f)
    return lr


def _cos_anneal(start: float, end: float, pct: float) -> float:
    """Cosine from ``start`` (pct 0) to ``end`` (pct 1)."""
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * pct))


#: How far the budget's elapsed fraction must lead the step count before it drives the
#: learning-rate schedule (see :meth:`Clock.schedule_fraction`).
SCHEDULE_LEAD = 0.05


class Clock:
    """Time spent by a run (across resumes) against its budget, if any.

    A number of seconds is this run's own budget (``offset``: the time spent before a
    resume); a shared :class:`TimeBudget` (several trainers in turn) counts itself.
    ``total_steps`` (the epoch cap times the steps per epoch) is the other end of a timed
    run: :meth:`schedule_fraction` follows the step count, and the budget's elapsed
    fraction once that leads it by more than 5 % (or a step).
    """

    def __init__(
        self, max_time: float | TimeBudget | None, offset: float, total_steps: int = 0
    ) -> None:
        self.shared = max_time if isinstance(max_time, TimeBudget) else None
        self.seconds = None if self.shared is not None else max_time
        self.offset = offset
        self.total_steps = int(total_steps)
        self.timer = TimeBudget(None)

    @property
    def timed(self) -> bool:
        return self.shared is not None or self.seconds is not None

    def spent(self) -> float:
        """Seconds this run has trained (resumes included)."""
        return self.offset + self.timer.elapsed()

    def total(self) -> float | None:
        """The budget in seconds (``None``: none, or a shared budget without a limit)."""
        return self.shared.seconds if self.shared is not None else self.seconds

    def fraction(self) -> float:
        if self.shared is not None:
            return self.shared.fraction()
        return 0.0 if self.seconds is None else min(1.0, self.spent() / self.seconds)

    def schedule_fraction(self, step: int, fraction: float | None = None) -> float:
        """Where the learning-rate schedule of a timed run stands before optimisation step
        ``step`` (0-based, over all epochs): ``max(step / total_steps, (t - lead) /
        (1 - lead))``, with ``t`` the elapsed fraction of the budget and ``lead`` the
        larger of :data:`SCHEDULE_LEAD` and one step (at most 1/2). It never moves back;
        whichever of the budget and the epoch cap ends training also ends the schedule;
        and a run whose budget never leads the step count by ``lead`` (a generous budget,
        as a safety cap) follows the step count alone, so its learning rates do not
        depend on how long its start-up took. ``fraction``: the elapsed fraction to use
        (agreed among processes), else this process's own."""
        t = self.fraction() if fraction is None else fraction
        if self.total_steps <= 0:
            return min(1.0, t)
        lead = min(max(SCHEDULE_LEAD, 1 / self.total_steps), 0.5)
        return min(1.0, max(step / self.total_steps, (t - lead) / (1 - lead)))

    def exhausted(self) -> bool:
        if self.shared is not None:
            return self.shared.exhausted()
        return self.seconds is not None and self.spent() >= self.seconds


class Bars:
    """The trainer's bars (epochs or seconds, and batches of the epoch) on a
    :class:`ProgressBar`, its own or a caller's (then the bars are removed at the end)."""

    def __init__(self, progress, *, show: bool, clock: Clock, epochs: int, start: int, steps: int):
        self.shared = isinstance(progress, ProgressBar)
        if self.shared and show:
            self.bar = progress
        else:
            self.bar = ProgressBar(enabled=bool(progress) and show).start()
            self.shared = False
        self.clock = clock
        if not clock.timed:
            self.main = self.bar.add_task("epochs", total=epochs, completed=start)
        else:
            total = clock.total()
            self.main = self.bar.add_task("seconds", total=None if total is None else round(total))
        self.inner = self.bar.add_task("epoch", total=steps) if steps > 1 else None

    def start_epoch(self, epoch: int) -> None:
        if self.inner is not None:
            self.bar.update(self.inner, completed=0, description=f"epoch {epoch + 1}")

    def batch(self, loss: float) -> None:
        if self.inner is not None:
            self.bar.advance(self.inner, info=f"loss {loss:.3e}")

    def end_epoch(self, epoch: int, info: str) -> None:
        if not self.clock.timed:
            self.bar.advance(self.main, info=info)
        else:
            done = round(self.clock.fraction() * (self.clock.total() or 0))
            self.bar.update(self.main, completed=done, info=f"epoch {epoch + 1}  {info}")

    def close(self) -> None:
        if self.shared:
            for task in (self.main, self.inner):
                if task is not None:
                    self.bar.remove_task(task)
        else:
            self.bar.stop()


def to_device(obj, device):
    """Tensors of a (nested) batch moved to ``device``."""
    if torch.is_tensor(obj):
        return obj.to(device)
    if isinstance(obj, Mapping):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj


def first_nonfinite(batch, prefix="") -> str | None:
    """Name of the first floating tensor of a (nested) batch holding NaN/Inf, or ``None``."""
    if torch.is_tensor(batch):
        if batch.is_floating_point() and not torch.isfinite(batch).all():
            return prefix or "batch"
        return None
    if isinstance(batch, Mapping):
        for k, v in batch.items():
            bad = first_nonfinite(v, f"{prefix}.{k}" if prefix else str(k))
            if bad:
                return bad
    elif isinstance(batch, (list, tuple)):
        for i, v in enumerate(batch):
            bad = first_nonfinite(v, f"{prefix}[{i}]")
            if bad:
                return bad
    return None


def state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def largest_magnitude(batch) -> float:
    """The largest absolute value of the floating-point tensors in a (nested) batch."""
    if isinstance(batch, torch.Tensor):
        if batch.is_floating_point() and batch.numel():
            return float(batch.detach().abs().max())
        return 0.0
    if isinstance(batch, dict):
        batch = list(batch.values())
    if isinstance(batch, list | tuple):
        return max((largest_magnitude(v) for v in batch), default=0.0)
    return 0.0


# beyond this, squares and sums of float32 data overflow (float32 max is about 3.4e38)
_OVERFLOW_PRONE = 1e15


def nonfinite_error(
    bad_field, other_process: bool, where: str, lr: float, largest: float = 0.0
) -> TrainingError:
    """The error for NaN/Inf in a batch (``bad_field``) or, with finite inputs, the loss.

    ``largest`` is the batch's largest magnitude: finite but huge inputs overflow the loss,
    and then the data, not the learning rate, are to blame."""
    if not (bad_field or other_process) and largest > _OVERFLOW_PRONE:
        return TrainingError(
            f"the loss became non-finite (NaN/Inf) at {where}: the batch holds values as "
            f"large as {largest:.3g}, whose squares overflow float32; normalise the data "
            "(wrap the model in NormalizedModel, as `pdesurrogates train` does) or check "
            "the file for corrupt values with pdesurrogates.datasets.validate"
        )
    if bad_field or other_process:
        return TrainingError(
            f"non-finite values (NaN/Inf) in {bad_field or 'a batch on another process'} "
            f"of {where}; likely cause: corrupt samples in the data; check the file with "
            "pdesurrogates.datasets.validate and regenerate them"
        )
    return TrainingError(
        f"the loss became non-finite (NaN/Inf) at {where}; the inputs were finite, so "
        f"the likely cause is a too-high learning rate (lr={lr:g}) or unnormalised "
        "data; lower lr, set grad_clip, or wrap the model in NormalizedModel"
    )


def epoch_loader(train_dataset, ctx, batch_size: int, seed: int, num_workers: int):
    """``(epoch -> (batches, sample order or None), batches per epoch)``: a
    :class:`BatchSource` as it is, a dataset through a DataLoader with a
    DistributedSampler (shuffled from ``(seed, epoch)``, sharded under DDP)."""
    if isinstance(train_dataset, BatchSource):
        return (lambda epoch: (train_dataset.batches(epoch), None)), len(train_dataset)
    sampler = DistributedSampler(
        train_dataset,
        num_replicas=ctx.world_size,
        rank=ctx.rank,
        shuffle=True,
        seed=seed,
        drop_last=False,
    )
    loader = DataLoader(
        train_dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        drop_last=False,
    )

    def epoch_batches(epoch):
        sampler.set_epoch(epoch)
        return loader, list(iter(sampler))

    return epoch_batches, len(loader)
