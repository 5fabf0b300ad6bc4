"""Small in-memory datasets of dict samples for the trainer tests."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


class SmoothingPairs(Dataset):
    """``a`` random on an n x n grid, ``u`` = a 3x3 box smoothing of ``a`` (a linear operator
    any convolutional operator can learn). Channel-first like a FieldDataset: items
    ``(1, n, n)``."""

    def __init__(self, n_samples=32, n=16, seed=0, dtype=torch.float32):
        g = torch.Generator().manual_seed(seed)
        self.a = torch.randn(n_samples, 1, n, n, generator=g, dtype=dtype)
        k = torch.ones(1, 1, 3, 3, dtype=dtype) / 9
        self.u = torch.nn.functional.conv2d(self.a, k, padding=1) + 1.0

    def __len__(self):
        return len(self.a)

    def __getitem__(self, i):
        return {"a": self.a[i], "u": self.u[i]}
