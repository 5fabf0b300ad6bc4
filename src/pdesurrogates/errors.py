"""Exceptions raised by pdesurrogates.

Every error the package raises on purpose derives from :class:`PdeSurrogatesError`, so
callers can catch the package's errors in one place. Messages say what happened, name the
file, object or argument involved, and say what to do about it.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DatasetError",
    "OutputError",
    "PdeSurrogatesError",
    "RolloutError",
    "SchemaError",
    "SolverError",
    "TrainingError",
]


class PdeSurrogatesError(Exception):
    """Base class of every error raised by pdesurrogates."""


class DatasetError(PdeSurrogatesError):
    """A dataset file is missing, unreadable, truncated or holds bad values."""


class SchemaError(DatasetError):
    """A file does not follow the ``pdesurrogates-h5`` schema (or the layout it claims)."""


class CheckpointError(PdeSurrogatesError):
    """A saved model or checkpoint directory is missing, corrupt or of another kind."""


class SolverError(PdeSurrogatesError, ValueError):
    """A solver was given a bad argument (wrong shape or type, NaN/Inf, rtol < 0, ...).

    Also a ``ValueError``, so ``except ValueError`` around a solver call keeps working.
    Numerical trouble met while solving (indefinite matrix, breakdown, overflow, maxiter)
    is not an error: the solver returns a ``SolveResult`` whose ``status`` says what
    happened.
    """


class TrainingError(PdeSurrogatesError):
    """Training cannot go on (non-finite loss or batch, missing split, ...)."""


class OutputError(PdeSurrogatesError):
    """An output cannot be written safely: it is one of the command's inputs, or another
    writer holds its lock (a live one, or a dead one whose stale lock must be removed)."""


class ConfigError(PdeSurrogatesError, ValueError):
    """A configuration file or value is invalid."""


class RolloutError(PdeSurrogatesError, FloatingPointError):
    """An autoregressive rollout produced NaN or Inf; ``step`` is the model call (from 1)
    that did."""

    def __init__(self, message: str, step: int | None = None) -> None:
        super().__init__(message)
        self.step = step
