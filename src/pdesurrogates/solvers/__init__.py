"""Reference simulators, sparse problem gallery and (learned) linear solvers."""

from __future__ import annotations

import sys as _sys

from pdesurrogates.solvers import _gallery as gallery
from pdesurrogates.solvers import _krylov as krylov
from pdesurrogates.solvers._aggregation import SmoothedAggregation
from pdesurrogates.solvers._dcdm import dcdm, grid_stencil
from pdesurrogates.solvers._factor import FactoredPreconditioner
from pdesurrogates.solvers._krylov import cg, fcg
from pdesurrogates.solvers._multigrid import MultigridHierarchy
from pdesurrogates.solvers._precond_base import Preconditioner
from pdesurrogates.solvers._preconditioners import (
    AMG,
    IncompleteCholesky,
    Jacobi,
    LearnedPreconditioner,
    amg,
    jacobi,
)
from pdesurrogates.solvers._result import SolveResult, SolveStatus
from pdesurrogates.solvers._sequence import solve_sequence
from pdesurrogates.solvers._solve import MODEL_METHODS, SOLVE_METHODS, solve_with

_sys.modules[__name__ + ".gallery"] = gallery
_sys.modules[__name__ + ".krylov"] = krylov

__all__ = [
    "AMG",
    "MODEL_METHODS",
    "SOLVE_METHODS",
    "FactoredPreconditioner",
    "IncompleteCholesky",
    "Jacobi",
    "LearnedPreconditioner",
    "MultigridHierarchy",
    "Preconditioner",
    "SmoothedAggregation",
    "SolveResult",
    "SolveStatus",
    "amg",
    "cg",
    "dcdm",
    "fcg",
    "gallery",
    "grid_stencil",
    "jacobi",
    "krylov",
    "solve_sequence",
    "solve_with",
]
