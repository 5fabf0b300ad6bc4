"""The Trainer's checkpoint file: written atomically after every epoch, checked on resume.

Each file goes to a uniquely named temporary file beside it (``.<name>.<pid>.<random>.partial``),
is flushed to disk and renamed over the old one, and the directory entry is flushed: a kill
at any point leaves either the previous checkpoint or the new one, never a torn file.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pdesurrogates.errors import CheckpointError
from pdesurrogates.io import atomic_write_bytes, atomic_write_text, model_spec

__all__ = [
    "CHECKPOINT_FILE",
    "CHECKPOINT_FORMAT",
    "CONSTANT_RATE_FREE",
    "METRICS_FILE",
    "MODEL_DIR",
    "SCHEDULE_SETTINGS",
    "checkpoint_state",
    "model_spec_or_none",
    "read_checkpoint",
    "restore",
    "schedule_settings",
    "write_checkpoint",
]

CHECKPOINT_FILE = "checkpoint.pt"
METRICS_FILE = "metrics.jsonl"
MODEL_DIR = "model"
CHECKPOINT_FORMAT = "pdesurrogates-checkpoint"


def model_spec_or_none(model: nn.Module) -> dict | None:
    """The model's saved-class spec, or ``None`` for a model :func:`pdesurrogates.save`
    cannot save (then no final model is written)."""
    try:
        return model_spec(model)
    except CheckpointError:
        return None


def write_checkpoint(out_dir: Path, state: dict[str, Any], history: list[dict]) -> None:
    """Write ``checkpoint.pt`` and ``metrics.jsonl`` in ``out_dir``, each atomically."""
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(out_dir / CHECKPOINT_FILE, buf.getvalue())
    lines = "".join(json.dumps(h) + "\n" for h in history)
    atomic_write_text(out_dir / METRICS_FILE, lines)


def read_checkpoint(path: Path | None, spec: dict | None) -> dict[str, Any]:
    """Load a checkpoint and check it belongs to a model of spec ``spec``."""
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
    if spec is not None and state.get("model_spec") is not None:
        saved = json.loads(state["model_spec"])
        if saved.get("class") != spec.get("class"):
            raise CheckpointError(
                f"{path}: checkpoint is of a {saved.get('class')} model but the trainer "
                f"holds a {spec.get('class')}; use the matching model or a new out_dir"
            )
        if saved != spec:
            raise CheckpointError(
                f"{path}: checkpoint was written for a {saved.get('class')} with another "
                "configuration; use the same configuration or a new out_dir"
            )
    return state


#: Trainer settings that shape the optimiser and learning-rate schedule. A resumed run
#: continues the checkpoint's schedule step by step, so these must equal the checkpoint's
#: (with a constant learning rate, no scheduler, see :data:`CONSTANT_RATE_FREE`).
SCHEDULE_SETTINGS = (
    "optimizer_name",
    "lr",
    "min_lr",
    "scheduler_name",
    "pct_start",
    "epochs",
    "batch_size",
    "weight_decay",
    "max_time",
)
#: Settings a run with a constant learning rate (no scheduler) may change on resume: the
#: rate is the same at every step, so the epochs and the time budget only decide when it
#: stops (and the schedule's shape settings are unused).
CONSTANT_RATE_FREE = ("epochs", "max_time", "pct_start", "min_lr")
_CONFIG_NAME = {"optimizer_name": "optimizer", "scheduler_name": "scheduler"}


def schedule_settings(trainer) -> dict[str, Any]:
    """The trainer's :data:`SCHEDULE_SETTINGS` (a shared time budget as its seconds)."""
    out = {k: getattr(trainer, k) for k in SCHEDULE_SETTINGS}
    out["max_time"] = getattr(out["max_time"], "seconds", out["max_time"])
    return out


def _check_schedule(path: Path, state: dict, trainer) -> None:
    """Refuse to resume with settings that would change the schedule mid-run."""
    saved = json.loads(state.get("schedule") or "null")
    if saved is None:  # checkpoints written before the settings were stored
        config = json.loads(state.get("trainer") or "{}")
        keys = [(k, _CONFIG_NAME.get(k, k)) for k in SCHEDULE_SETTINGS]
        saved = {k: config[c] for k, c in keys if c in config}
    now = schedule_settings(trainer)
    keys = [k for k in saved if k in now]
    constant = all(d.get("scheduler_name") is None for d in (saved, now))
    if constant:  # a constant learning rate: more (or fewer) epochs continue it exactly
        keys = [k for k in keys if k not in CONSTANT_RATE_FREE]
    diff = [k for k in keys if saved[k] != now[k]]
    if diff:
        was = ", ".join(f"{_CONFIG_NAME.get(k, k)}={saved[k]!r}" for k in diff)
        asked = ", ".join(f"{_CONFIG_NAME.get(k, k)}={now[k]!r}" for k in diff)
        raise CheckpointError(
            f"{path}: the checkpoint's run used {was}; this run asks for {asked}. A resumed "
            "run continues the checkpoint's learning-rate schedule, so resume with its "
            "settings, or train afresh in a new output folder"
        )


def checkpoint_state(trainer, opt, sched, epoch: int, elapsed: float, world_size: int) -> dict:
    """Everything a resumed run needs: weights, optimiser and schedule, RNG, best, history."""
    return {
        "format": CHECKPOINT_FORMAT,
        "model_spec": json.dumps(model_spec_or_none(trainer.model)),
        "trainer": json.dumps(trainer.get_config()),
        "schedule": json.dumps(schedule_settings(trainer)),
        "model": trainer.model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": None if sched is None else sched.state_dict(),
        "rng": torch.get_rng_state(),
        "epoch": epoch,
        "best_loss": trainer.best_loss,
        "best_state": trainer.best_state,
        "best_epoch": trainer.best_epoch,
        "bad_epochs": trainer._bad_epochs,
        "elapsed": elapsed,
        "history": json.dumps(trainer.history),
        "initial_valid": json.dumps(trainer.initial_valid),
        "world_size": world_size,
    }


def restore(trainer, opt, sched, world_size: int) -> tuple[int, float]:
    """Load the trainer's checkpoint into it; returns (epochs done, seconds spent)."""
    path = trainer.checkpoint_path
    state = read_checkpoint(path, model_spec_or_none(trainer.model))
    _check_schedule(path, state, trainer)
    trainer.model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    if sched is not None and state.get("scheduler") is not None:
        sched.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    trainer.best_loss = float(state["best_loss"])
    trainer.best_state = state.get("best_state")
    trainer._bad_epochs = int(state["bad_epochs"])
    trainer.history = json.loads(state["history"])
    trainer.best_epoch = state.get("best_epoch")
    trainer.initial_valid = json.loads(state.get("initial_valid") or "null")
    if int(state.get("world_size", 1)) != world_size:
        raise CheckpointError(
            f"{path}: written by a {state.get('world_size')}-process run; resume it with "
            f"the same number of processes ({world_size} now)"
        )
    return int(state["epoch"]), float(state["elapsed"])
