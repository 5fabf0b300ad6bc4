"""Contract test mix-ins every surrogate, preconditioner and metric must pass."""

from __future__ import annotations

from pdesurrogates.testing._contracts import SurrogateContract
from pdesurrogates.testing._metric import MetricContract

__all__ = ["MetricContract", "SurrogateContract"]
