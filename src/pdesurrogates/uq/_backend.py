"""Array plumbing shared by the UQ modules: numpy in, numpy out; torch in, torch out.

All computation happens in torch (numpy arrays are wrapped without copying), and results
are handed back in the caller's array type.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "as_tensor",
    "check_finite",
    "check_levels",
    "inputs_validated",
    "is_torch",
    "member_std",
    "ndtri",
    "sort_members",
    "sorted_quantile",
    "sorted_quantile_row",
    "to_output",
]


def is_torch(*arrays: Any) -> bool:
    """True if any of ``arrays`` is a torch tensor (results are then returned as tensors)."""
    return any(isinstance(a, torch.Tensor) for a in arrays)


def as_tensor(x: Any, name: str, *, like: torch.Tensor | None = None) -> torch.Tensor:
    """Return ``x`` as a floating-point tensor, sharing memory with numpy input when possible.

    Integer and boolean input becomes float64 (or ``like``'s dtype); floating input keeps its
    dtype. ``like`` also fixes the device.
    """
    if isinstance(x, torch.Tensor):
        t = x
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # pragma: no cover - exotic objects
            raise ValueError(f"{name} must be an array or tensor, got {type(x).__name__}") from exc
        if arr.dtype == object:
            raise ValueError(f"{name} must be a numeric array or tensor, got dtype=object")
        if not arr.flags.writeable or any(st < 0 for st in arr.strides):
            arr = np.array(arr)
        if arr.dtype.byteorder not in ("=", "|", "<" if np.little_endian else ">"):
            arr = arr.astype(arr.dtype.newbyteorder("="))
        t = torch.from_numpy(arr) if arr.dtype.kind in "fiub" else None
        if t is None:
            raise ValueError(f"{name} must hold real numbers, got dtype={arr.dtype}")
    if t.is_complex():
        raise ValueError(f"{name} must hold real numbers, got a complex {t.dtype} array")
    if not t.is_floating_point():
        t = t.to(like.dtype if like is not None else torch.float64)
    if like is not None and t.device != like.device:
        t = t.to(like.device)
    return t


def to_output(t: torch.Tensor, as_numpy: bool) -> Any:
    """Hand ``t`` back as numpy (detached, on the CPU) if ``as_numpy`` else as is."""
    if as_numpy:
        return t.detach().cpu().numpy()
    return t


_VALIDATED = contextvars.ContextVar("pdesurrogates_uq_inputs_validated", default=False)


@contextlib.contextmanager
def inputs_validated() -> Iterator[None]:
    """Within the block :func:`check_finite` passes every array without looking at it.

    For a caller that has checked its inputs once and hands the metrics only those and
    values derived from them (:func:`pdesurrogates.uq.evaluate`), so that each metric does
    not re-scan the same arrays.
    """
    token = _VALIDATED.set(True)
    try:
        yield
    finally:
        _VALIDATED.reset(token)


def check_finite(t: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` naming ``name`` if ``t`` holds NaN or infinity."""
    if not t.numel() or _VALIDATED.get():
        return
    # fast path: a finite sum means no NaN or inf (an overflowing sum falls through)
    total = t.detach().sum(dtype=torch.float64) if t.is_floating_point() else t.sum()
    if bool(torch.isfinite(total)):
        return
    if not bool(torch.isfinite(t).all()):
        n_bad = int((~torch.isfinite(t)).sum())
        raise ValueError(
            f"{name} holds {n_bad} non-finite value(s) (NaN or inf); remove or mask them first"
        )


def check_levels(levels: Any, name: str = "levels") -> np.ndarray:
    """Validate a level or sequence of levels in the open interval (0, 1); return a 1-D array."""
    arr = np.atleast_1d(np.asarray(levels, dtype=np.float64))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a number or a 1-D sequence of numbers in (0, 1)")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0.0) or np.any(arr >= 1.0):
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {arr.tolist()}")
    return arr


def ndtri(p: torch.Tensor | float) -> torch.Tensor:
    """Inverse of the standard normal CDF, in float64."""
    return torch.special.ndtri(torch.as_tensor(p, dtype=torch.float64))


def sorted_quantile_row(sorted_x: torch.Tensor, q: float) -> torch.Tensor:
    """Empirical ``q`` quantile of data sorted along axis 0 (a view when it is a member)."""
    n = sorted_x.shape[0]
    pos = float(q) * (n - 1)
    lo = min(max(math.floor(pos), 0), n - 1)
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    if frac == 0.0 or hi == lo:
        return sorted_x[lo]
    return sorted_x[lo] + frac * (sorted_x[hi] - sorted_x[lo])


def sorted_quantile(sorted_x: torch.Tensor, q: Sequence[float] | np.ndarray) -> torch.Tensor:
    """Empirical quantiles of data already sorted along axis 0 (linear interpolation).

    Uses the same definition as ``numpy.quantile(method="linear")``: position ``q (n - 1)``.
    Returns shape ``(len(q), *sorted_x.shape[1:])``. Avoids ``torch.quantile``'s size limit.
    """
    qs = np.asarray(q, dtype=np.float64).ravel()
    return torch.stack([sorted_quantile_row(sorted_x, float(qi)) for qi in qs], 0)


_NETWORK_MAX = 24  # members up to which a sorting network beats a general sort
_NETWORK_BLOCK = 16384  # columns per block: keeps the working set in cache


@functools.cache
def _merge_network(m: int) -> tuple[tuple[int, int], ...]:
    """Comparators ``(i, j)``, ``i < j``, of Batcher's odd-even merge sort for ``m`` inputs.

    The network for the next power of two with the comparators that touch a missing input
    dropped (they would compare against +inf): 32 comparators for 10 members instead of the
    45 of odd-even transposition.
    """
    p2 = 1 << max(m - 1, 0).bit_length()
    out = []
    p = 1
    while p < p2:
        k = p
        while k >= 1:
            for j in range(k % p, p2 - k, 2 * k):
                for i in range(min(k, p2 - j - k)):
                    a, b = i + j, i + j + k
                    if a // (2 * p) == b // (2 * p) and b < m:
                        out.append((a, b))
            k //= 2
        p *= 2
    return tuple(out)


def _network_sort_np(x: np.ndarray, out: np.ndarray) -> None:
    """Sort the columns of ``x`` (M, P) into ``out`` with a sorting network.

    One vectorised compare-exchange per comparator of :func:`_merge_network`, on blocks of
    columns; for the small ``M`` of ensembles this is several times faster than
    ``np.sort(axis=0)``.
    """
    m, p = x.shape
    comparators = _merge_network(m)
    for c0 in range(0, p, _NETWORK_BLOCK):
        c1 = min(c0 + _NETWORK_BLOCK, p)
        rows = [np.array(x[i, c0:c1]) for i in range(m)]
        tmp = np.empty_like(rows[0])
        for i, j in comparators:
            np.minimum(rows[i], rows[j], out=tmp)
            np.maximum(rows[i], rows[j], out=rows[j])
            rows[i], tmp = tmp, rows[i]
        for i in range(m):
            out[i, c0:c1] = rows[i]


def sort_members(x: torch.Tensor) -> torch.Tensor:
    """Sort along axis 0 (members); numpy on the CPU, which is much faster than torch here."""
    if x.device.type == "cpu" and not x.requires_grad:
        xn = x.detach().numpy()
        if 2 <= x.shape[0] <= _NETWORK_MAX and x.ndim >= 1:
            flat = xn.reshape(x.shape[0], -1)
            out = np.empty(flat.shape, dtype=flat.dtype)
            _network_sort_np(flat, out)
            return torch.from_numpy(out.reshape(xn.shape))
        return torch.from_numpy(np.sort(xn, axis=0))
    return torch.sort(x, dim=0).values


def member_std(s: torch.Tensor) -> torch.Tensor:
    """Unbiased (``ddof=1``) standard deviation over the member axis 0.

    Accumulated member by member: much faster than ``Tensor.std(0)`` for the few members
    of an ensemble over large fields.
    """
    m = s.shape[0]
    mean = s[0].clone()
    for i in range(1, m):
        mean += s[i]
    mean /= m
    var = (s[0] - mean).square()
    for i in range(1, m):
        var += (s[i] - mean).square()
    return (var / (m - 1)).sqrt()
