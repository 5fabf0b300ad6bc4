"""pdesurrogates: learned surrogates for operators and PDEs.

Three jobs, one package:

* train neural operators (MgNO, FNO, DeepONet) on HDF5 simulation data
  (:mod:`pdesurrogates.datasets`, :mod:`pdesurrogates.surrogates`,
  :mod:`pdesurrogates.training`);
* use learned networks as linear-solver preconditioners (:mod:`pdesurrogates.solvers`);
* run uncertainty-quantification studies (:mod:`pdesurrogates.uq`).
"""

from __future__ import annotations

import os

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

save = _io.save


def load(directory: str | os.PathLike, *, map_location="cpu"):
    """Rebuild a model saved with :func:`save` (``config.json`` + ``weights.safetensors``).

    Imports :mod:`pdesurrogates.surrogates` first so that every built-in model class is
    registered. See :func:`pdesurrogates.io.load`.
    """
    import pdesurrogates.surrogates  # noqa: F401  (registers the built-in models)

    return _io.load(directory, map_location=map_location)
