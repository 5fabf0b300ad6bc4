"""Uncertainty quantification: predictions, metrics, the common evaluator, propagation."""

from __future__ import annotations

from pdesurrogates.uq import conformal, metrics, plots
from pdesurrogates.uq._evaluate import evaluate
from pdesurrogates.uq._io import load_prediction, save_prediction
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
from pdesurrogates.uq._report import UQReport, compare
from pdesurrogates.uq.conformal import ConformalCalibrator, conformalize

__all__ = [
    "ConformalCalibrator",
    "Prediction",
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
    "sample_inputs",
    "save_prediction",
    "sobol_indices",
]
