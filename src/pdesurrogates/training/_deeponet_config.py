"""The one configuration of DeepONet training: :class:`DeepONetConfig`.

Every default of a DeepONet run lives here (training) or in the signature of
:class:`~pdesurrogates.surrogates.DeepONet` (architecture; :attr:`DeepONetConfig.model`
only holds what differs from it). :func:`~pdesurrogates.training.train_deeponet`, the
``pdesurrogates train deeponet`` command and TOML files all read it::

    # deeponet.toml
    [model]            # DeepONet keyword arguments
    width = 64
    trunk = "separable"

    [training]         # DeepONetConfig fields
    epochs = 200
    lr = 1e-3

This module needs only the standard library.

Examples
--------
>>> cfg = DeepONetConfig().with_overrides(epochs=5, width=32)
>>> cfg.epochs, cfg.model
(5, {'width': 32})
>>> DeepONetConfig.from_dict({"training": {"lr": 1e-3}, "model": {"depth": 2}}).lr
0.001
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from pathlib import Path
from typing import Any

from pdesurrogates.errors import ConfigError
from pdesurrogates.training._configs import scheduler_setting

__all__ = ["DeepONetConfig"]

_LOSSES = ("mse", "rel_l2", "rel_h1")


@dataclasses.dataclass(frozen=True)
class DeepONetConfig:
    """Settings of a DeepONet training run (the only place their defaults live).

    Parameters
    ----------
    model : dict
        Keyword arguments of :class:`~pdesurrogates.surrogates.DeepONet` beyond the
        physical set-up read from the dataset (room, duration, ``c``, ``fmax``, pulse
        width, source box); what is not given takes the model's own default.
    ensemble : int
        Deep-ensemble members (seeds ``seed .. seed + ensemble - 1``).
    epochs : int
        Maximum epochs (passes over the training sources).
    batch_size : int
        Sources per optimisation step.
    n_points : int
        Random ``(x, t)`` field entries per training step.
    n_eval : int
        Fixed, evenly spread field entries of the validation loss.
    n_times : int
        Times of the random sub-grid of a separable-trunk step.
    lr : float or None
        Peak learning rate (Adam). ``None`` (the default): 2e-3 for 1D and 2D data,
        1e-3 for 3D rooms, where 2e-3 diverged after 9,000-14,000 steps
        (:meth:`peak_lr`).
    scheduler : {"onecycle", "cosine", None}
        Learning-rate schedule.
    pct_start : float
        Warm-up share of the one-cycle schedule.
    grad_clip : float or None
        Gradient-norm clip.
    loss : {"mse", "rel_l2", "rel_h1"}
        Training loss on the sampled entries.
    seed : int
        Seed of initialisation and data order.
    max_time : float or None
        Wall-clock budget (s) per member; the schedule follows it and ``epochs`` becomes
        an upper bound.
    """

    model: dict = dataclasses.field(default_factory=dict)
    ensemble: int = 1
    epochs: int = 300
    batch_size: int = 16
    n_points: int = 2048
    n_eval: int = 4096
    n_times: int = 32
    lr: float | None = None
    scheduler: str | None = "onecycle"
    pct_start: float = 0.1
    grad_clip: float | None = 1.0
    loss: str = "mse"
    seed: int = 0
    max_time: float | None = None

    def __post_init__(self) -> None:
        for name in ("ensemble", "epochs", "batch_size", "n_points", "n_eval", "n_times"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"DeepONetConfig.{name} must be an integer >= 1; got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"DeepONetConfig.seed must be an integer; got {self.seed!r}")
        if self.lr is not None:
            _positive("lr", self.lr)
        if self.max_time is not None:
            _positive("max_time", self.max_time)
        if self.grad_clip is not None:
            _positive("grad_clip", self.grad_clip)
        if not (isinstance(self.pct_start, (int, float)) and 0 < self.pct_start < 1):
            raise ConfigError(f"DeepONetConfig.pct_start must be in (0, 1); got {self.pct_start!r}")
        try:
            scheduler = scheduler_setting("DeepONetConfig", self.scheduler)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        object.__setattr__(self, "scheduler", scheduler)
        if self.loss not in _LOSSES:
            raise ConfigError(f"DeepONetConfig.loss must be one of {_LOSSES}; got {self.loss!r}")
        if not isinstance(self.model, dict):
            raise ConfigError("DeepONetConfig.model must be a dict of DeepONet keyword arguments")

    # -- construction ----------------------------------------------------------------
    @classmethod
    def training_fields(cls) -> tuple[str, ...]:
        """Names of the training settings (every field but ``model``)."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.name != "model")

    def with_overrides(self, **overrides: Any) -> DeepONetConfig:
        """A copy with ``overrides``: training fields by name, anything else a model argument.

        ``model={...}`` updates the model arguments as a whole.
        """
        training, model = {}, dict(self.model)
        for key, value in overrides.items():
            if key in self.training_fields():
                training[key] = value
            elif key == "model":
                model.update(value or {})
            else:
                model[key] = value
        return dataclasses.replace(self, model=model, **training)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> DeepONetConfig:
        """Build from ``{"model": {...}, "training": {...}}`` (tables of a TOML file)."""
        unknown = set(data) - {"model", "training"}
        if unknown:
            raise ConfigError(
                f"{source}: unknown table(s) {sorted(unknown)}; use the tables model and training"
            )
        training = dict(data.get("training", {}))
        allowed = set(cls.training_fields())
        bad = sorted(set(training) - allowed)
        if bad:
            raise ConfigError(
                f"{source}: unknown key(s) {bad} in table 'training'; allowed: {sorted(allowed)}"
            )
        for key in ("lr", "max_time", "grad_clip", "pct_start"):
            if isinstance(training.get(key), int) and not isinstance(training[key], bool):
                training[key] = float(training[key])
        try:
            return cls(model=dict(data.get("model", {})), **training)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> DeepONetConfig:
        """Read a TOML file with the tables ``[model]`` and ``[training]``.

        Raises
        ------
        ConfigError
            A missing or unreadable file, an unknown table or key, or a bad value (the
            message names the file and the key).
        """
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        try:
            data = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
        return cls.from_dict(data, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        """``{"model": {...}, "training": {...}}``, the layout of :meth:`from_dict`."""
        training = {k: getattr(self, k) for k in self.training_fields()}
        return {"model": dict(self.model), "training": training}

    def peak_lr(self, dim: int) -> float:
        """The peak learning rate for ``dim``-dimensional data: :attr:`lr`, or its default."""
        if self.lr is not None:
            return self.lr
        return 1e-3 if dim >= 3 else 2e-3

    def trainer_kwargs(self, n_train: int, dim: int = 2) -> dict[str, Any]:
        """Keyword arguments of :class:`~pdesurrogates.training.Trainer` for this run
        (``dim``: the data's dimension, which sets the default :attr:`lr`)."""
        return {
            "loss": self.loss,
            "lr": self.peak_lr(dim),
            "epochs": self.epochs,
            "batch_size": min(self.batch_size, n_train),
            "scheduler": self.scheduler,
            "grad_clip": self.grad_clip,
            "metrics": ("rel_l2",),
            "spatial_dims": 1,
            "max_time": self.max_time,
            "pct_start": self.pct_start,
        }


def _positive(name: str, value) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and value > 0):
        raise ConfigError(f"DeepONetConfig.{name} must be a positive number; got {value!r}")
