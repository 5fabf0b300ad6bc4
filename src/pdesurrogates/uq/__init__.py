"""Uncertainty quantification: predictions, metrics, the common evaluator, propagation."""

from __future__ import annotations

__all__: list[str] = []
