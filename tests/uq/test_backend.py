"""uq._backend: the member sort (a sorting network for small ensembles) sorts exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pdesurrogates.uq._backend import _merge_network, sort_members


@pytest.mark.parametrize("m", range(2, 13))
def test_merge_network_sorts_every_zero_one_input(m):
    # 0-1 principle: a comparator network that sorts all 2^m binary inputs sorts any input
    cols = np.arange(2**m)
    bits = ((cols[None, :] >> np.arange(m)[:, None]) & 1).astype(np.float32)
    out = sort_members(torch.from_numpy(bits)).numpy()
    np.testing.assert_array_equal(out, np.sort(bits, axis=0))


def test_merge_network_is_smaller_than_transposition():
    assert [len(_merge_network(m)) for m in (2, 4, 8, 10, 16)] == [1, 5, 19, 32, 63]


@pytest.mark.parametrize("m", [2, 5, 10, 17, 24, 25, 40])
def test_sort_members_equals_numpy_sort_with_ties(m):
    rng = np.random.default_rng(m)
    x = rng.integers(-3, 4, size=(m, 7, 40000)).astype(np.float32)
    x[:, 0] = rng.normal(size=(m, 40000))
    np.testing.assert_array_equal(sort_members(torch.from_numpy(x)).numpy(), np.sort(x, axis=0))
