"""The predictor of each model family: how a run reads a data file and predicts.

Every family takes the same path: data file -> the run's model -> a
:class:`~pdesurrogates.uq.Prediction` (:class:`Predicted`) -> one prediction file
(:func:`pdesurrogates.runs.predict_run`) -> one evaluator
(:func:`pdesurrogates.runs.evaluate_files`). A family is found from the ``kind`` its
run records in ``run.json``, or, for a bare model directory, from the model's class.

A new family registers one :class:`Family` with :func:`register_family`; nothing else
changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["FAMILIES", "Family", "Predicted", "family_of", "register_family"]


@dataclass
class Predicted:
    """A family's prediction of one field on the samples of one split.

    Attributes
    ----------
    prediction : pdesurrogates.uq.Prediction
        Channel-first, ``(N, C, *grid)`` (the package's one tensor convention); a field
        without a ``component`` dim may leave its channel axis of 1 out (the multi-fidelity
        family predicts ``(N,)``). Ensemble members as samples.
    field : str
        The predicted field (its name in the data file).
    dims : tuple of str
        Dims of the field, starting with ``"sample"``.
    coords : dict
        Coordinates of the non-sample dims.
    units : str
    source_index : array of int
        Rows of the data file that were predicted, in the order of the data file's split.
    truth : array, optional
        The true field on those rows when the data file holds it, as
        :meth:`FieldDataset.load` reads it (channel-first).
    """

    prediction: Any
    field: str
    dims: tuple[str, ...]
    coords: dict[str, Any]
    units: str = ""
    source_index: np.ndarray | None = None
    truth: Any = None


@dataclass(frozen=True)
class Family:
    """One model family's predictor.

    Attributes
    ----------
    name : str
        Family name (``operator``, ``deeponet``, ``multifidelity``).
    kinds : tuple of str
        Run kinds (``run.json`` ``kind``) of the family.
    expects : callable
        ``expects(record) -> str``: what data file the run reads (for error messages).
    check : callable
        ``check(dataset, record) -> str or None``: why the opened data file cannot be
        read by the run (None when it can).
    predict : callable
        ``predict(model, record, dataset, split, batch_size) -> Predicted``.
    infer : callable
        ``infer(model) -> dict or None``: the run record of a bare model directory of the
        family (None when the model is not of the family).
    """

    name: str
    kinds: tuple[str, ...]
    expects: Callable[[dict], str]
    check: Callable[[Any, dict], str | None]
    predict: Callable[..., Predicted]
    infer: Callable[[Any], dict | None] = field(default=lambda model: None)


FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Add ``family`` to :data:`FAMILIES` (its kinds must be new)."""
    for other in FAMILIES.values():
        clash = set(other.kinds) & set(family.kinds)
        if clash and other.name != family.name:
            raise ValueError(f"run kinds {sorted(clash)} already belong to family {other.name!r}")
    FAMILIES[family.name] = family
    return family


def family_of(record: dict) -> Family:
    """The family of a run record (by its ``kind``)."""
    kind = record.get("kind")
    for fam in FAMILIES.values():
        if kind in fam.kinds:
            return fam
    known = sorted(k for f in FAMILIES.values() for k in f.kinds)
    raise ValueError(f"run kind {kind!r} belongs to no model family; known kinds: {known}")
