"""Uncertainty quantification: predictions, metrics, the common evaluator, propagation."""

from __future__ import annotations

from pdesurrogates.uq import metrics
from pdesurrogates.uq._evaluate import UQReport, compare, evaluate
from pdesurrogates.uq._prediction import Prediction

__all__: list[str] = ["Prediction", "UQReport", "compare", "evaluate", "metrics"]
