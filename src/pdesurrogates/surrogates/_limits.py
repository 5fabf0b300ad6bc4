"""Upper bounds of the structural hyper-parameters of the surrogate models.

A config read from a file may ask for any size. Widths and channel counts are bounded
by the parameter limit of :func:`pdesurrogates.load` (the model is sized on the ``meta``
device before it is built); counts that repeat work or modules (layers, levels,
smoothing steps, blocks, ensemble members) are bounded here, in the constructors, before
anything is allocated: a million layers of one channel are few parameters but a long
build and a slow forward pass.
"""

from __future__ import annotations

__all__ = ["MAX_LEVELS", "MAX_REPEAT", "check_at_most"]

#: Largest number of layers, blocks, smoothing steps per level, depth, ensemble members.
MAX_REPEAT = 1024
#: Largest number of multigrid or fidelity levels.
MAX_LEVELS = 32


def check_at_most(owner: str, name: str, value, high: int) -> None:
    """``ValueError`` naming ``owner.name`` if the integer ``value`` exceeds ``high``."""
    if isinstance(value, int) and not isinstance(value, bool) and value > high:
        raise ValueError(
            f"{owner}: {name}={value} is more than the supported maximum of {high}; "
            "the config is corrupt or asks for an unreasonably large model"
        )
