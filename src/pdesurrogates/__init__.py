"""pdesurrogates: learned surrogates for operators and PDEs.

Three jobs, one package:

* train neural operators (MgNO, FNO, DeepONet) on HDF5 simulation data
  (:mod:`pdesurrogates.datasets`, :mod:`pdesurrogates.surrogates`,
  :mod:`pdesurrogates.training`);
* use learned networks as linear-solver preconditioners (:mod:`pdesurrogates.solvers`);
* run uncertainty-quantification studies (:mod:`pdesurrogates.uq`).
"""

from __future__ import annotations

from pdesurrogates import io as _io
from pdesurrogates._version import __version__
from pdesurrogates.errors import (
    CheckpointError,
    ConfigError,
    DatasetError,
    PdeSurrogatesError,
    SchemaError,
    SolverError,
    TrainingError,
)

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DatasetError",
    "PdeSurrogatesError",
    "SchemaError",
    "SolverError",
    "TrainingError",
    "__version__",
    "load",
    "save",
]

load = _io.load
save = _io.save
