"""Normalisers: fitted on the train split, invertible, saved with a model.

A :class:`Normalizer` is a (tiny) registered model, so it lives with the models and is
saved inside a :class:`~pdesurrogates.surrogates.NormalizedModel`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from pdesurrogates.io import register_model

__all__ = ["Normalizer"]


@register_model
class Normalizer(torch.nn.Module):
    """Affine map ``encode(x) = (x - mean) / (std + eps)`` with its inverse ``decode``.

    ``mean`` and ``std`` are scalars or per-channel vectors; per-channel statistics are
    broadcast along ``dim`` (1 for channel-first ``(batch, channel, ...)`` tensors). The
    statistics are buffers, so a model that holds a Normalizer saves it with its weights.

    Parameters
    ----------
    mean, std : float or sequence of float
        Statistics (use :meth:`from_dataset` to take them from a file's train split).
    dim : int
        Channel axis the vector statistics apply to.
    eps : float
        Added to ``std`` so constant fields do not divide by zero.

    Examples
    --------
    >>> import torch
    >>> from pdesurrogates.surrogates import Normalizer
    >>> n = Normalizer(mean=2.0, std=4.0)
    >>> x = torch.tensor([2.0, 6.0])
    >>> n.encode(x).tolist(), n.decode(n.encode(x)).tolist()
    ([0.0, 1.0], [2.0, 6.0])
    """

    def __init__(
        self,
        *,
        mean: float | Sequence[float] = 0.0,
        std: float | Sequence[float] = 1.0,
        dim: int = 1,
        eps: float = 1e-8,
    ):
        super().__init__()
        stats = {}
        for name, value in (("mean", mean), ("std", std)):
            if torch.is_tensor(value):
                value = value.detach().cpu().numpy()
            try:
                stats[name] = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"Normalizer: {name} must be a number or a list of numbers; got "
                    f"{repr(value)[:80]}"
                ) from exc
        mean_np, std_np = stats["mean"], stats["std"]
        if mean_np.shape != std_np.shape or mean_np.ndim > 1:
            raise ValueError(
                f"Normalizer: mean and std must be scalars or equal-length vectors, got shapes "
                f"{mean_np.shape} and {std_np.shape}"
            )
        for name, arr in (("mean", mean_np), ("std", std_np)):
            bad = np.flatnonzero(~np.isfinite(arr) | ((arr < 0) if name == "std" else False))
            if bad.size:
                what = "finite and >= 0" if name == "std" else "finite"
                raise ValueError(
                    f"Normalizer: {name} must be {what}; entry {int(bad[0])} is "
                    f"{arr.reshape(-1)[bad[0]]!r}"
                )
        if isinstance(dim, bool) or not isinstance(dim, int | np.integer):
            raise ValueError(f"Normalizer: dim must be an integer; got {dim!r}")
        if isinstance(eps, bool) or not isinstance(eps, int | float) or not 0 < eps < np.inf:
            raise ValueError(f"Normalizer: eps must be a positive finite number; got {eps!r}")
        self.dim = int(dim)
        self.eps = float(eps)
        self.register_buffer("mean", torch.as_tensor(mean_np, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std_np, dtype=torch.float32))

    def zero_std_channels(self) -> list[int]:
        """Channels (entries of ``std``; ``[0]`` for a scalar) whose std is 0."""
        return [int(i) for i in np.flatnonzero(self._std_np == 0)]

    @property
    def _std_np(self) -> np.ndarray:
        return self.std.detach().cpu().numpy().reshape(-1)

    def get_config(self) -> dict[str, Any]:
        return {
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "dim": self.dim,
            "eps": self.eps,
        }

    @classmethod
    def from_dataset(cls, dataset, field: str, *, dim: int = 1) -> Normalizer:
        """Normaliser from the train-split statistics of a dataset.

        ``dataset`` is a :class:`pdesurrogates.datasets.FieldDataset` (or anything with
        ``stats(field) -> (mean, std)``).
        """
        mean, std = dataset.stats(field)
        return cls(mean=mean, std=std, dim=dim)

    def _shaped(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        t = t.to(dtype=x.dtype, device=x.device)
        if t.dim() == 0:
            return t
        shape = [1] * x.dim()
        shape[self.dim] = t.numel()
        return t.reshape(shape)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise: ``(x - mean) / (std + eps)``."""
        return (x - self._shaped(self.mean, x)) / (self._shaped(self.std, x) + self.eps)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """Undo :meth:`encode`."""
        return x * (self._shaped(self.std, x) + self.eps) + self._shaped(self.mean, x)

    def decode_std(self, s: torch.Tensor) -> torch.Tensor:
        """Map a standard deviation in normalised units back to physical units."""
        return s * (self._shaped(self.std, s) + self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)
