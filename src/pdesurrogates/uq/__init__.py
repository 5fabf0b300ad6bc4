"""Uncertainty quantification: predictions, metrics, the common evaluator, propagation."""

from __future__ import annotations

from pdesurrogates.uq import conformal, metrics, plots
from pdesurrogates.uq._evaluate import evaluate
from pdesurrogates.uq._io import (
    PREDICTION_FORMAT_VERSION,
    PredictionInfo,
    load_prediction,
    read_prediction_info,
    save_prediction,
)
from pdesurrogates.uq._prediction import Prediction
from pdesurrogates.uq._propagate import PropagationResult, propagate
from pdesurrogates.uq._report import UQReport, compare
from pdesurrogates.uq._sampling import make_distribution, sample_inputs
from pdesurrogates.uq._sobol import (
    SobolResult,
    g_function,
    g_function_indices,
    ishigami,
    ishigami_indices,
    sobol_indices,
)
from pdesurrogates.uq.conformal import ConformalCalibrator, conformalize

__all__ = [
    "PREDICTION_FORMAT_VERSION",
    "ConformalCalibrator",
    "Prediction",
    "PredictionInfo",
    "PropagationResult",
    "SobolResult",
    "UQReport",
    "compare",
    "conformal",
    "conformalize",
    "evaluate",
    "g_function",
    "g_function_indices",
    "ishigami",
    "ishigami_indices",
    "load_prediction",
    "make_distribution",
    "metrics",
    "plots",
    "propagate",
    "read_prediction_info",
    "sample_inputs",
    "save_prediction",
    "sobol_indices",
]
