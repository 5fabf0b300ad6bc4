"""Split-conformal intervals: ``from pdesurrogates.uq import conformal``."""

from __future__ import annotations

from pdesurrogates.uq._conformal import ConformalCalibrator, conformalize

__all__ = ["ConformalCalibrator", "conformalize"]
