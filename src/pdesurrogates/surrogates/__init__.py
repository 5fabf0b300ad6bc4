"""Learned surrogate models: pure ``torch.nn.Module`` s with config round trips.

Every model takes keyword-only hyper-parameters, validates them eagerly, and offers
``get_config()`` / ``from_config()`` so :func:`pdesurrogates.save` and
:func:`pdesurrogates.load` can store it as JSON + safetensors.
"""

from __future__ import annotations

from pdesurrogates.surrogates._adaptive import (
    AdaptiveResult,
    MFStudyResult,
    adaptive_cokriging,
    mf_uq_study,
    plot_uq_study,
)
from pdesurrogates.surrogates._cokriging import CoKrigingGP
from pdesurrogates.surrogates._dcdm_net import ConjugateDirectionNet, LearnedVCycle
from pdesurrogates.surrogates._deeponet import DeepONet
from pdesurrogates.surrogates._ensemble import Ensemble
from pdesurrogates.surrogates._fno import FNO
from pdesurrogates.surrogates._interactions import screen_interactions
from pdesurrogates.surrogates._learned_amg import NeuralAMG
from pdesurrogates.surrogates._mfnet import MultiFidelityNet
from pdesurrogates.surrogates._mgno import MgNO
from pdesurrogates.surrogates._neural_if import NeuralIncompleteCholesky
from pdesurrogates.surrogates._normalized import NormalizedModel
from pdesurrogates.surrogates._normalizer import Normalizer
from pdesurrogates.surrogates._rollout import rollout

__all__ = [
    "FNO",
    "AdaptiveResult",
    "CoKrigingGP",
    "ConjugateDirectionNet",
    "DeepONet",
    "Ensemble",
    "LearnedVCycle",
    "MFStudyResult",
    "MgNO",
    "MultiFidelityNet",
    "NeuralAMG",
    "NeuralIncompleteCholesky",
    "NormalizedModel",
    "Normalizer",
    "adaptive_cokriging",
    "mf_uq_study",
    "plot_uq_study",
    "rollout",
    "screen_interactions",
]
