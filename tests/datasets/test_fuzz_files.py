"""Mutated dataset files through every reader: rejected clearly or read back exactly."""

from __future__ import annotations

import pytest

from pdesurrogates.testing import fuzz_datasets

BAD = ("traceback", "crash", "hang", "silent_acceptance")


def _check(result, n):
    assert result["cases"] == n
    assert result["rejected_clearly"] + result["accepted_correct"] == n, result["examples"]
    assert all(result[k] == 0 for k in BAD), result["examples"]


def test_fuzz_small_budget(tmp_path):
    result = fuzz_datasets(40, seed=0, workdir=tmp_path)
    _check(result, 40)
    assert result["rejected_clearly"] >= 25  # most mutations break something


@pytest.mark.slow
def test_fuzz_big_budget(tmp_path):
    _check(fuzz_datasets(700, seed=1, workdir=tmp_path), 700)
