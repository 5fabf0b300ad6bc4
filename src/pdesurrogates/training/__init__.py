"""Training loops, losses and checkpoints."""

from __future__ import annotations

from pdesurrogates.training._acoustics_plots import plot_field_snapshots, plot_impulse_responses
from pdesurrogates.training._configs import (
    DCDMConfig,
    MultiFidelityConfig,
    TrainerConfig,
    VCycleConfig,
)
from pdesurrogates.training._dcdm import (
    DCDMStep,
    check_ritz_dataset,
    dcdm_loss,
    lanczos,
    ritz_training_vectors,
    ritz_vectors,
    sparse_to_torch,
    train_dcdm,
    write_ritz_dataset,
)
from pdesurrogates.training._deeponet import (
    FieldPointStep,
    SourceFields,
    check_deeponet_model,
    evaluate_deeponet,
    impulse_response_scores,
    load_source_fields,
    predict_deeponet_members,
    query_grid,
    train_deeponet,
)
from pdesurrogates.training._deeponet_config import DeepONetConfig
from pdesurrogates.training._ensemble import fit_ensemble
from pdesurrogates.training._learned_amg import amg_cycle_loss, train_neural_amg
from pdesurrogates.training._losses import (
    RelH1Loss,
    RelL2Loss,
    get_loss,
    grid_gradient,
    rel_h1,
    rel_l2,
)
from pdesurrogates.training._mf_auto import (
    MultiFidelityModel,
    fit_multifidelity,
    fit_multifidelity_levels,
)
from pdesurrogates.training._mf_fit import fit_mfnet
from pdesurrogates.training._multifidelity import MultiFidelityFit, fit_multifidelity_net
from pdesurrogates.training._neural_ic import (
    fem_training_matrices,
    pcg_proxy_loss,
    train_neural_ic,
)
from pdesurrogates.training._operator import OperatorConfig
from pdesurrogates.training._rollout_train import PushforwardStep
from pdesurrogates.training._rundir import (
    RUN_FILE,
    RUN_RECORDS,
    ResumeRules,
    new_run_dir,
    read_run_record,
    refuse_existing_run,
    resume_record,
)
from pdesurrogates.training._steps import (
    BatchSource,
    FullBatch,
    SupervisedStep,
    TrainingStep,
    default_step,
    fields_to_channels,
)
from pdesurrogates.training._trainer import Trainer
from pdesurrogates.training._vcycle import VCycleStep, train_vcycle

__all__ = [
    "RUN_FILE",
    "RUN_RECORDS",
    "BatchSource",
    "DCDMConfig",
    "DCDMStep",
    "DeepONetConfig",
    "FieldPointStep",
    "FullBatch",
    "MultiFidelityConfig",
    "MultiFidelityFit",
    "MultiFidelityModel",
    "OperatorConfig",
    "PushforwardStep",
    "RelH1Loss",
    "RelL2Loss",
    "ResumeRules",
    "SourceFields",
    "SupervisedStep",
    "Trainer",
    "TrainerConfig",
    "TrainingStep",
    "VCycleConfig",
    "VCycleStep",
    "amg_cycle_loss",
    "check_deeponet_model",
    "check_ritz_dataset",
    "dcdm_loss",
    "default_step",
    "evaluate_deeponet",
    "fem_training_matrices",
    "fields_to_channels",
    "fit_ensemble",
    "fit_mfnet",
    "fit_multifidelity",
    "fit_multifidelity_levels",
    "fit_multifidelity_net",
    "get_loss",
    "grid_gradient",
    "impulse_response_scores",
    "lanczos",
    "load_source_fields",
    "new_run_dir",
    "pcg_proxy_loss",
    "plot_field_snapshots",
    "plot_impulse_responses",
    "predict_deeponet_members",
    "query_grid",
    "read_run_record",
    "refuse_existing_run",
    "rel_h1",
    "rel_l2",
    "resume_record",
    "ritz_training_vectors",
    "ritz_vectors",
    "sparse_to_torch",
    "train_dcdm",
    "train_deeponet",
    "train_neural_amg",
    "train_neural_ic",
    "train_vcycle",
    "write_ritz_dataset",
]
