"""Shared pytest fixtures."""

from __future__ import annotations

import os

import matplotlib
import pytest

matplotlib.use("Agg")

# Tests run on 2 shared cores: keep torch from oversubscribing them.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _torch_threads():
    import torch

    torch.set_num_threads(1)
    yield
