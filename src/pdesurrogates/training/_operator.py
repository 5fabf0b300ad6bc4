"""Training settings of the neural-operator family (MgNO, FNO): one dataclass, one set of
defaults, read by Python, the TOML ``[training]`` table and the ``train mgno|fno`` flags."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pdesurrogates.errors import ConfigError
from pdesurrogates.training._configs import scheduler_setting

__all__ = ["OperatorConfig"]


@dataclass(frozen=True)
class OperatorConfig:
    """How an MgNO or FNO (or each member of an ensemble of them) is trained.

    This is the only place the operator family's training defaults live: the
    ``[training]`` table of a run configuration, the ``--epochs``, ``--lr`` and
    ``--batch-size`` flags of ``pdesurrogates train mgno|fno`` and Python code all start
    from it.

    Parameters
    ----------
    loss : str
        ``"rel_l2"``, ``"rel_h1"`` or ``"mse"`` (see :func:`pdesurrogates.training.get_loss`).
    lr : float
        Peak learning rate of Adam.
    epochs : int
        Passes over the train split (an upper bound with ``max_time`` or ``patience``).
    batch_size : int
        Samples per optimiser step.
    scheduler : str or None
        ``"onecycle"``, ``"cosine"`` or None (constant rate; ``"none"`` in a TOML file).
    patience : int or None
        Stop after this many epochs without a better validation error.
    seed : int
        Seed of the data order and of the initialisation (member ``i`` of an ensemble
        uses ``seed + i``).
    weight_decay : float
        Adam weight decay.
    grad_clip : float or None
        Largest gradient norm (None: no clipping).
    max_time : float or None
        Wall-clock budget in seconds per model.
    num_workers : int
        ``DataLoader`` worker processes.
    pct_start : float
        Fraction of the one-cycle schedule spent warming up.

    Examples
    --------
    >>> cfg = OperatorConfig.from_mapping({"epochs": 5, "lr": 3e-3})
    >>> cfg.epochs, cfg.batch_size
    (5, 8)
    >>> cfg.with_overrides(batch_size=4, lr=None).batch_size  # None: not given
    4
    """

    loss: str = "rel_l2"
    lr: float = 1e-3
    epochs: int = 30
    batch_size: int = 8
    scheduler: str | None = "onecycle"
    patience: int | None = None
    seed: int = 0
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    max_time: float | None = None
    num_workers: int = 0
    pct_start: float = 0.2

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"OperatorConfig: {name} must be an integer >= 1, got {v!r}")
        if not (isinstance(self.lr, int | float) and self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"OperatorConfig: lr must be a positive number, got {self.lr!r}")
        object.__setattr__(self, "scheduler", scheduler_setting("OperatorConfig", self.scheduler))

    @classmethod
    def types(cls) -> dict[str, tuple[type, ...]]:
        """Allowed Python types of each setting (as TOML gives them)."""
        hints = typing.get_type_hints(cls)
        out = {}
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
            out[f.name] = tuple(args)
        return out

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, source: str = "config") -> OperatorConfig:
        """Build from a mapping (a TOML ``[training]`` table), checking keys and types.

        Raises
        ------
        ConfigError
            An unknown key or a value of the wrong type; the message names ``source``
            and the key.
        """
        allowed = cls.types()
        clean = {}
        for key, value in values.items():
            if key not in allowed:
                raise ConfigError(
                    f"{source}: unknown key {key!r} in table 'training'; allowed: {sorted(allowed)}"
                )
            kinds = allowed[key]
            if float in kinds and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, kinds) or isinstance(value, bool):
                raise ConfigError(
                    f"{source}: training.{key} = {value!r} has the wrong type; expected "
                    + " or ".join("None" if t is type(None) else t.__name__ for t in kinds)
                )
            clean[key] = value
        try:
            return cls(**clean)
        except ValueError as exc:
            raise ConfigError(f"{source}: {exc}") from exc

    def with_overrides(self, **overrides: Any) -> OperatorConfig:
        """A copy with the settings that are not None replaced (e.g. from CLI flags)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return self.from_mapping({**self.to_dict(), **given}, source="overrides")

    def to_dict(self) -> dict[str, Any]:
        """Every setting, JSON-ready (stored in ``run.json``)."""
        return dataclasses.asdict(self)

    def trainer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :class:`pdesurrogates.training.Trainer` (all but ``seed``)."""
        kw = self.to_dict()
        kw.pop("seed")
        return kw
