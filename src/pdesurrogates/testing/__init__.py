"""Contract test mix-ins every surrogate and preconditioner must pass."""

from __future__ import annotations

from pdesurrogates.testing._contracts import SurrogateContract
from pdesurrogates.testing._preconditioner import PreconditionerContract

__all__ = ["PreconditionerContract", "SurrogateContract"]
