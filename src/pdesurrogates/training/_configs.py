"""Training settings, one dataclass per family: the only place their defaults live.

The training functions take their keyword defaults from these classes (e.g.
``train_dcdm(..., epochs=DCDMConfig.epochs)``), and the command line and TOML files read
them too, so a default is changed in one place. Build the keyword arguments of a call
from a config with :meth:`to_dict`, and a config from a TOML table with :meth:`from_dict`
(which names an unknown key).

Examples
--------
>>> cfg = DCDMConfig.from_dict({"epochs": 2, "lr": 3e-3})
>>> cfg.epochs, cfg.batch_size == DCDMConfig.batch_size
(2, True)
>>> DCDMConfig.from_dict({"epoch": 2})
Traceback (most recent call last):
...
ValueError: DCDMConfig: unknown setting 'epoch'; known: batch_size, epochs, lr, max_seconds, seed
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DCDMConfig", "MultiFidelityConfig", "TrainerConfig", "VCycleConfig"]


class _Config:
    """``to_dict`` / ``from_dict`` for the config dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        """The settings as keyword arguments (a shallow copy)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]):
        """A config from a mapping (e.g. a TOML table); unknown keys are an error."""
        names = sorted(f.name for f in dataclasses.fields(cls))
        for key in values:
            if key not in names:
                raise ValueError(
                    f"{cls.__name__}: unknown setting {key!r}; known: {', '.join(names)}"
                )
        return cls(**dict(values))


SCHEDULERS = ("onecycle", "cosine", None)


def scheduler_setting(owner: str, value: Any) -> str | None:
    """The learning-rate schedule ``value`` as the Trainer takes it: ``"onecycle"``,
    ``"cosine"`` or None (a constant rate), which a TOML file, having no None, writes
    ``"none"``; ``ValueError`` naming ``owner`` otherwise."""
    if isinstance(value, str) and value.lower() == "none":
        return None
    if value not in SCHEDULERS:
        raise ValueError(
            f"{owner}: scheduler must be 'onecycle', 'cosine' or 'none' (a constant rate), "
            f"got {value!r}"
        )
    return value


def _check_int(owner: str, name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}")


def _check_positive(owner: str, name: str, value: Any, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{owner}: {name} must be a positive number, got {value!r}")


@dataclass
class TrainerConfig(_Config):
    """Generic defaults of :class:`~pdesurrogates.training.Trainer` (see its parameters)."""

    loss: str = "rel_l2"
    optimizer: str = "adam"
    lr: float = 1e-3
    epochs: int = 100
    batch_size: int = 16
    scheduler: str | None = "onecycle"
    pct_start: float = 0.2
    min_lr: float = 0.0
    patience: int | None = None
    seed: int = 0
    weight_decay: float = 0.0
    grad_clip: float | None = None
    max_time: float | None = None
    num_workers: int = 0


@dataclass
class DCDMConfig(_Config):
    """Training settings of the DCDM direction network (:func:`train_dcdm`).

    Attributes
    ----------
    epochs : int
        Passes over the training vectors.
    batch_size : int
        Vectors per Adam step.
    lr : float
        Peak Adam learning rate (cosine decay to 0 over the run).
    seed : int
        Seed of the shuffling.
    max_seconds : float or None
        Wall-clock budget; the cosine schedule then follows the fraction of the epochs
        done, or the budget's elapsed fraction once that leads by more than 5 %.
    """

    epochs: int = 4
    batch_size: int = 16
    lr: float = 1e-3
    seed: int = 0
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        _check_int("DCDMConfig", "epochs", self.epochs, 1)
        _check_int("DCDMConfig", "batch_size", self.batch_size, 1)
        _check_positive("DCDMConfig", "lr", self.lr)
        _check_positive("DCDMConfig", "max_seconds", self.max_seconds, allow_none=True)


@dataclass
class VCycleConfig(_Config):
    """Training settings of the learned V-cycle (:func:`train_vcycle`).

    Attributes
    ----------
    shape : tuple of int
        Training grid (small: the loss uses dense algebra), for callers that choose one.
    steps : int
        Adam steps, each on a fresh batch of random error vectors.
    batch_size : int
        Random vectors per step.
    power : int
        V-cycles ``k`` in the loss ``log(||E^k e||_A^2 / ||e||_A^2)``.
    lr : float
        Adam learning rate (constant).
    seed : int
        Seed of the random vectors.
    """

    shape: tuple[int, ...] = (32, 32)
    steps: int = 200
    batch_size: int = 16
    power: int = 3
    lr: float = 1e-2
    seed: int = 0

    def __post_init__(self) -> None:
        self.shape = tuple(self.shape)
        for name in ("steps", "batch_size", "power"):
            _check_int("VCycleConfig", name, getattr(self, name), 1)
        _check_positive("VCycleConfig", "lr", self.lr)


@dataclass
class MultiFidelityConfig(_Config):
    """Training settings of the multi-fidelity network (MF-DNN).

    The first group is one net's fit (:func:`fit_mfnet`), the second the validated
    ensemble (:func:`fit_multifidelity_net`); see those functions for the meaning.

    Attributes
    ----------
    l2, linear_l2 : float
        L2 weights on the nonlinear corrections and on the linear parts' x-weights.
    adam_steps, lbfgs_steps, lm_steps : int
        Adam steps, L-BFGS iterations and Levenberg–Marquardt iterations per stage.
    lr : float
        Adam learning rate (cosine decay to ``lr / 20``).
    stagewise, joint : bool
        Train level by level, then all levels together.
    low_holdout : float
        Fraction of the low-fidelity points held out to early-stop NN_L.
    n_members, keep : int
        Members trained and kept (``keep=None``: half of them).
    criterion : str
        ``"auto"``, ``"holdout"``, ``"kfold"`` or ``"consensus"``.
    holdout : float
        High-fidelity fraction held out by ``"holdout"``.
    folds : int
        Folds of ``"kfold"``.
    low_arch : str
        NN_L form, or ``"auto"``.
    l2_grid : tuple of float or None
        Candidate penalties of the top correction.
    seed : int
        Base seed (member ``i`` uses ``seed + i``).
    """

    l2: float = 1e-5
    linear_l2: float = 0.0
    adam_steps: int = 1000
    lbfgs_steps: int = 200
    lm_steps: int = 100
    lr: float = 3e-3
    stagewise: bool = True
    joint: bool = True
    low_holdout: float = 0.0
    n_members: int = 6
    keep: int | None = None
    criterion: str = "auto"
    holdout: float = 0.2
    folds: int = 5
    low_arch: str = "auto"
    l2_grid: tuple[float, ...] | None = (1e-5, 1e-3, 1e-1)
    seed: int = 0

    #: The settings of one net's fit (the rest select and combine members).
    FIT_KEYS = (
        "l2",
        "linear_l2",
        "adam_steps",
        "lbfgs_steps",
        "lm_steps",
        "lr",
        "stagewise",
        "joint",
        "low_holdout",
    )

    def fit_kwargs(self) -> dict[str, Any]:
        """The settings of one net's fit, as keyword arguments of :func:`fit_mfnet`."""
        return {k: getattr(self, k) for k in self.FIT_KEYS}
