"""Contract test mix-ins every surrogate, preconditioner and importer must pass."""

from __future__ import annotations

from pdesurrogates.testing._contracts import SurrogateContract
from pdesurrogates.testing._importer import ImporterContract

__all__ = ["ImporterContract", "SurrogateContract"]
