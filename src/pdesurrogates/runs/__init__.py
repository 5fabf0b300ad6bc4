"""Train, predict and evaluate: one path from data to a UQ report for every family.

* :func:`train_run` trains an MgNO or FNO (or a deep ensemble of them) into a run
  directory; :func:`fit_mf_run` fits a multi-fidelity model (co-kriging, NARGP,
  MF-DNN) into one, with its high-fidelity test points as a dataset file (a DeepONet
  run is :func:`pdesurrogates.training.train_deeponet`'s); :func:`run_mf_study`
  compares a multi-fidelity model's output distribution with the truth
  (``study.json``, ``study.png``);
* :data:`FAMILIES` holds one predictor per model family (operators, DeepONet,
  multi-fidelity), chosen by the run's ``kind``;
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
from pdesurrogates.runs._mf import (
    MF_KINDS,
    MF_METHODS,
    TEST_FILE,
    fit_mf_run,
    load_mf_data,
    mf_config,
    plot_mf_fit,
    write_mf_test_data,
)
from pdesurrogates.runs._mf_adapt import adapt_mf_run
from pdesurrogates.runs._mf_study import run_mf_study, study_moments
from pdesurrogates.runs._predict import check_output, load_run, predict_run, select_split
from pdesurrogates.runs._predictors import predict_fields
from pdesurrogates.runs._propagate import (
    DEFAULT_PROPAGATE_DIR,
    load_model_or_function,
    output_quantity,
    propagate_from_files,
    read_inputs,
)
from pdesurrogates.runs._registry import FAMILIES, Family, Predicted, family_of, register_family
from pdesurrogates.runs._report import (
    field_quantities,
    plot_sample,
    plot_snapshots,
    summarize,
    summary_line,
    time_quantity,
    write_run_report,
)
from pdesurrogates.runs._train import (
    MODEL_KINDS,
    RUN_FILE,
    build_surrogate,
    default_levels,
    load_config,
    new_run_dir,
    refuse_existing_run,
    resolve_fields,
    train_run,
)

__all__ = [
    "DEFAULT_LEVELS",
    "DEFAULT_PROPAGATE_DIR",
    "FAMILIES",
    "MF_KINDS",
    "MF_METHODS",
    "MODEL_KINDS",
    "RUN_FILE",
    "TEST_FILE",
    "Family",
    "Predicted",
    "adapt_mf_run",
    "build_surrogate",
    "check_output",
    "default_levels",
    "evaluate_files",
    "evaluate_run",
    "family_of",
    "field_quantities",
    "fit_mf_run",
    "grid_coords",
    "load_config",
    "load_mf_data",
    "load_model_or_function",
    "load_run",
    "mf_config",
    "new_run_dir",
    "output_quantity",
    "plot_mf_fit",
    "plot_sample",
    "plot_snapshots",
    "predict_fields",
    "predict_run",
    "propagate_from_files",
    "read_inputs",
    "refuse_existing_run",
    "register_family",
    "resolve_fields",
    "run_mf_study",
    "select_split",
    "study_moments",
    "summarize",
    "summary_line",
    "time_quantity",
    "train_run",
    "write_mf_test_data",
    "write_run_report",
]
