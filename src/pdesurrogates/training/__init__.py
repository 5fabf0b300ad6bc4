"""Training loops, losses and checkpoints."""

from __future__ import annotations

from pdesurrogates.training._losses import (
    RelH1Loss,
    RelL2Loss,
    get_loss,
    grid_gradient,
    rel_h1,
    rel_l2,
)
from pdesurrogates.training._trainer import Trainer, default_step, fields_to_channels

__all__: list[str] = [
    "RelH1Loss",
    "RelL2Loss",
    "Trainer",
    "default_step",
    "fields_to_channels",
    "get_loss",
    "grid_gradient",
    "rel_h1",
    "rel_l2",
]
