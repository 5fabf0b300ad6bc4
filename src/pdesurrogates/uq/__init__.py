"""Uncertainty quantification: predictions, metrics, the common evaluator, propagation."""

from __future__ import annotations

from pdesurrogates.uq import conformal, metrics, plots
from pdesurrogates.uq._evaluate import evaluate
from pdesurrogates.uq._io import load_prediction, save_prediction
from pdesurrogates.uq._prediction import Prediction
from pdesurrogates.uq._propagate import PropagationResult, propagate
from pdesurrogates.uq._report import UQReport, compare
from pdesurrogates.uq._sampling import make_distribution, sample_inputs
from pdesurrogates.uq._sobol import SobolResult, ishigami, ishigami_indices, sobol_indices
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
