"""The package's one tensor convention: fields are channel-first, ``(N, C, *grid)``.

A ``pdesurrogates-h5`` file stores a field with dims ordered as
``(sample, [time], [x, [y, [z]]], [component])``. Everything the package hands to a model
or takes from one (dataset items and batches, :meth:`FieldDataset.load`,
:class:`~pdesurrogates.uq.Prediction`, :func:`~pdesurrogates.uq.evaluate`) puts a channel
axis right after the sample axis:

* a scalar field (no ``component`` dim) gets a channel axis of length 1:
  ``(N, X, Y)`` in the file -> ``(N, 1, X, Y)``; a field with only a sample axis
  (one number per sample) -> ``(N, 1)``;
* a field with a ``component`` dim keeps it as the channel axis: ``(N, X, Y, C)`` in
  the file -> ``(N, C, X, Y)``;
* the remaining axes (``time``, then the grid) keep the file's order.

:func:`to_channel_first` and :func:`from_channel_first` are the only conversions
between the two layouts; the reader and the prediction file call them, nothing else
squeezes or inserts channel axes.

Examples
--------
>>> import numpy as np
>>> to_channel_first(np.zeros((5, 8, 6)), ("sample", "x", "y")).shape
(5, 1, 8, 6)
>>> to_channel_first(np.zeros((5, 8, 6, 2)), ("sample", "x", "y", "component")).shape
(5, 2, 8, 6)
>>> from_channel_first(np.zeros((5, 1, 8, 6)), ("sample", "x", "y")).shape
(5, 8, 6)
>>> from_channel_first(np.zeros((5, 8, 6)), ("sample", "x", "y")).shape  # C = 1 left out
(5, 8, 6)
>>> channel_first_shape((8, 6, 2), ("sample", "x", "y", "component"))
(2, 8, 6)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["channel_first_shape", "from_channel_first", "to_channel_first"]


def _has_component(dims: Sequence[str]) -> bool:
    return len(dims) > 0 and dims[-1] == "component"


def _moveaxis(arr: Any, src: int, dst: int) -> Any:
    if isinstance(arr, np.ndarray):
        return np.moveaxis(arr, src, dst)
    return arr.movedim(src, dst)  # torch


def _check_ndim(arr: Any, want: int, dims: Sequence[str], lead: int, what: str) -> None:
    if arr.ndim != want:
        raise ValueError(
            f"an array of shape {tuple(arr.shape)} cannot hold a field with dims "
            f"{tuple(dims)} ({what}, {lead} leading axes before the sample axis)"
        )


def to_channel_first(arr: Any, dims: Sequence[str], *, lead: int = 0) -> Any:
    """A field in the file's layout (``dims``, starting with ``sample``) as channel-first.

    ``lead`` axes before the sample axis (e.g. ensemble members) are kept. Works on numpy
    arrays (a view, no copy) and torch tensors.
    """
    dims = tuple(dims)
    _check_ndim(arr, lead + len(dims), dims, lead, "in the file's layout")
    if _has_component(dims):
        return _moveaxis(arr, -1, lead + 1)
    return arr[(slice(None),) * (lead + 1) + (None,)]


def from_channel_first(arr: Any, dims: Sequence[str], *, lead: int = 0) -> Any:
    """A channel-first field back in the file's layout (``dims``, starting with ``sample``).

    A field without a ``component`` dim may also be given without its channel axis of
    length 1 (``(N, X, Y)`` for ``(N, 1, X, Y)``); it is then returned as it is.
    """
    dims = tuple(dims)
    if _has_component(dims):
        _check_ndim(arr, lead + len(dims), dims, lead, "channel-first")
        return _moveaxis(arr, lead + 1, -1)
    if arr.ndim == lead + len(dims):
        return arr
    _check_ndim(arr, lead + len(dims) + 1, dims, lead, "channel-first")
    if arr.shape[lead + 1] != 1:
        raise ValueError(
            f"an array of shape {tuple(arr.shape)} has {arr.shape[lead + 1]} channels but the "
            f"field with dims {tuple(dims)} has one (no 'component' dim)"
        )
    return arr[(slice(None),) * (lead + 1) + (0,)]


def channel_first_shape(shape: Sequence[int], dims: Sequence[str]) -> tuple[int, ...]:
    """Channel-first shape ``(C, *grid)`` of one sample of a field stored with ``dims``
    (``shape`` is the file's per-sample shape, the sample axis removed)."""
    shape = tuple(int(s) for s in shape)
    if _has_component(dims):
        return (shape[-1], *shape[:-1])
    return (1, *shape)
