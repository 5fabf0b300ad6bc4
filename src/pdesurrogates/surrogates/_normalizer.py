"""Normalisers: fitted on the train split, invertible, saved with a model.

A :class:`Normalizer` is a (tiny) registered model, so it lives with the models and is
saved inside a :class:`~pdesurrogates.surrogates.NormalizedModel`.
"""

from __future__ import annotations

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

    def __init__(self, *, mean: Any = 0.0, std: Any = 1.0, dim: int = 1, eps: float = 1e-8):
        super().__init__()
        mean_t = torch.as_tensor(np.asarray(mean, dtype=np.float64), dtype=torch.float32)
        std_t = torch.as_tensor(np.asarray(std, dtype=np.float64), dtype=torch.float32)
        if mean_t.shape != std_t.shape or mean_t.dim() > 1:
            raise ValueError(
                f"mean and std must be scalars or equal-length vectors, got shapes "
                f"{tuple(mean_t.shape)} and {tuple(std_t.shape)}"
            )
        if (std_t < 0).any() or not torch.isfinite(std_t).all() or not torch.isfinite(mean_t).all():
            raise ValueError("std must be finite and >= 0, and mean finite")
        if eps <= 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.dim = int(dim)
        self.eps = float(eps)
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)

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
