"""Uncertainty quantification: predictions, metrics, the common evaluator, propagation."""

from __future__ import annotations

from pdesurrogates.uq import conformal, metrics, plots
from pdesurrogates.uq._evaluate import UQReport, compare, evaluate
from pdesurrogates.uq._io import (
    PREDICTION_FORMAT_VERSION,
    PredictionInfo,
    load_prediction,
    read_prediction_info,
    save_prediction,
)
from pdesurrogates.uq._prediction import Prediction
from pdesurrogates.uq._propagate import (
    PropagationResult,
    SobolResult,
    ishigami,
    ishigami_indices,
    make_distribution,
    propagate,
    sample_inputs,
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
