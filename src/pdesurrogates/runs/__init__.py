"""Train, predict and evaluate: one path from data to a UQ report for every family.

* :func:`train_run` trains an MgNO or FNO (or a deep ensemble of them) into a run
  directory;
* :func:`predict_run` writes the one prediction file of :mod:`pdesurrogates.uq`
  (ensemble members kept, the predicted split recorded);
* :func:`evaluate_files` scores a prediction file with :func:`pdesurrogates.uq.evaluate`;
* :func:`evaluate_run` is :func:`predict_run` followed by :func:`evaluate_files`, plus a
  markdown report with figures.

The ``pdesurrogates train / predict / evaluate / uq evaluate / uq propagate`` commands
are thin wrappers over these functions.
"""

from __future__ import annotations

from pdesurrogates.runs._evaluate import DEFAULT_LEVELS, evaluate_files, evaluate_run, grid_coords
from pdesurrogates.runs._predict import (
    check_output,
    load_run,
    predict_fields,
    predict_run,
    select_split,
)
from pdesurrogates.runs._propagate import (
    load_model_or_function,
    propagate_from_files,
    read_inputs,
)
from pdesurrogates.runs._report import plot_sample, summarize, write_run_report
from pdesurrogates.runs._train import (
    MODEL_KINDS,
    RUN_FILE,
    build_surrogate,
    default_levels,
    load_config,
    resolve_fields,
    train_run,
)

__all__ = [
    "DEFAULT_LEVELS",
    "MODEL_KINDS",
    "RUN_FILE",
    "build_surrogate",
    "check_output",
    "default_levels",
    "evaluate_files",
    "evaluate_run",
    "grid_coords",
    "load_config",
    "load_model_or_function",
    "load_run",
    "plot_sample",
    "predict_fields",
    "predict_run",
    "propagate_from_files",
    "read_inputs",
    "resolve_fields",
    "select_split",
    "summarize",
    "train_run",
    "write_run_report",
]
