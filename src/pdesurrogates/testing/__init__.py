"""Contract test mix-ins that every surrogate, preconditioner, importer and metric must pass,
and the fuzz drivers of the hardening tests."""

from __future__ import annotations

from pdesurrogates.testing._contracts import SurrogateContract
from pdesurrogates.testing._fuzz_datasets import fuzz_datasets
from pdesurrogates.testing._fuzz_models import fuzz_models
from pdesurrogates.testing._fuzz_solvers import fuzz_solvers
from pdesurrogates.testing._importer import ImporterContract
from pdesurrogates.testing._metric import MetricContract
from pdesurrogates.testing._preconditioner import PreconditionerContract

__all__ = [
    "ImporterContract",
    "MetricContract",
    "PreconditionerContract",
    "SurrogateContract",
    "fuzz_datasets",
    "fuzz_models",
    "fuzz_solvers",
]
